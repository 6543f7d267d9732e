"""The SQL of the sla service."""

from __future__ import annotations

import json
from typing import Any

from bothways.db import Connection
from bothways.events import TicketChanged

INSERT_TICKET_EVENT = """
INSERT INTO ticket_event (event_id, ticket_key, occurred_at, change, status_category, snapshot)
VALUES ($1, $2, $3, $4, $5, $6::jsonb)
ON CONFLICT (event_id) DO NOTHING
"""
UPSERT_TICKET = """
INSERT INTO ticket AS t (ticket_key, occurred_at, status_category, snapshot)
VALUES ($1, $2, $3, $4::jsonb)
ON CONFLICT (ticket_key) DO UPDATE SET
    occurred_at = CASE WHEN excluded.occurred_at >= t.occurred_at THEN excluded.occurred_at ELSE t.occurred_at END,
    status_category = CASE WHEN excluded.occurred_at >= t.occurred_at
                           THEN excluded.status_category ELSE t.status_category END,
    snapshot = CASE WHEN excluded.occurred_at >= t.occurred_at THEN excluded.snapshot ELSE t.snapshot END,
    event_count = t.event_count + 1
"""
SELECT_TICKET = (
    "SELECT ticket_key, occurred_at, status_category, snapshot, event_count FROM ticket WHERE ticket_key = $1"
)
SELECT_HISTORY = """
SELECT event_id, occurred_at, change, status_category, recorded_at FROM ticket_event
WHERE ticket_key = $1 ORDER BY occurred_at, event_id
"""


async def record_ticket_event(conn: Connection, *, event_id: str, ticket: TicketChanged) -> None:
    """Add a snapshot to the ticket's history and keep the newest one as its current state."""
    snapshot = ticket.model_dump_json()
    await conn.execute(
        INSERT_TICKET_EVENT,
        event_id,
        ticket.ticket_key,
        ticket.occurred_at,
        str(ticket.change),
        ticket.status_category.value,
        snapshot,
    )
    await conn.execute(
        UPSERT_TICKET, ticket.ticket_key, ticket.occurred_at, ticket.status_category.value, snapshot
    )


async def ticket_with_history(conn: Connection, *, ticket_key: str) -> dict[str, Any] | None:
    """The current snapshot of a ticket and its history, oldest first; None if unknown."""
    row = await conn.fetchrow(SELECT_TICKET, ticket_key)
    if row is None:
        return None
    history = await conn.fetch(SELECT_HISTORY, ticket_key)
    return {
        "ticket_key": row["ticket_key"],
        "as_of": row["occurred_at"],
        "status_category": row["status_category"],
        "current": json.loads(row["snapshot"]),
        "history": [dict(h) for h in history],
    }
