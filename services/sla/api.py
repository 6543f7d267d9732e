"""HTTP routes of the sla service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Path
from pydantic import BaseModel

from bothways.errors import NotFound
from bothways.web import Conn, ReadScope
from services.sla import store

router = APIRouter(tags=["tickets"], dependencies=[ReadScope])

TicketKey = Path(min_length=3, max_length=300, pattern=r"^[a-z0-9_-]+:.+$", examples=["jira:SUP-42"])


class HistoryEntry(BaseModel):
    event_id: str
    occurred_at: datetime
    change: str
    status_category: str
    recorded_at: datetime


class TicketOut(BaseModel):
    ticket_key: str
    as_of: datetime
    status_category: str
    current: dict[str, Any]
    history: list[HistoryEntry]


@router.get("/tickets/{ticket_key}", response_model=TicketOut)
async def read_ticket(conn: Conn, ticket_key: str = TicketKey) -> dict[str, Any]:
    """A ticket's current state (its newest snapshot by occurred_at) and its history."""
    ticket = await store.ticket_with_history(conn, ticket_key=ticket_key)
    if ticket is None:
        raise NotFound(f"no ticket {ticket_key!r} has been seen")
    return ticket
