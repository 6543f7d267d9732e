"""HTTP routes of the reporting service."""

from __future__ import annotations

from fastapi import APIRouter

from bothways.web import Conn, ReadScope
from services.reporting import store
from services.reporting.tickets import TicketCounts, ticket_counts

router = APIRouter(tags=["reports"], dependencies=[ReadScope])


@router.get("/reports/tickets", response_model=TicketCounts)
async def read_ticket_counts(conn: Conn) -> TicketCounts:
    """How many tickets are in each status category right now."""
    return ticket_counts(await store.tickets_by_status_category(conn))
