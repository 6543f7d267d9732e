"""Ticket counts per status category: every category present, zero when empty."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from bothways.events import StatusCategory


class TicketCounts(BaseModel):
    total: int
    by_status_category: dict[StatusCategory, int]


def ticket_counts(counted: Mapping[str, int]) -> TicketCounts:
    by_category = {category: counted.get(category.value, 0) for category in StatusCategory}
    return TicketCounts(total=sum(by_category.values()), by_status_category=by_category)
