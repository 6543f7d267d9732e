"""The SQL of the reporting service."""

from __future__ import annotations

from datetime import datetime

from bothways.db import Connection

UPSERT_TICKET_STATUS = """
INSERT INTO ticket_status AS t (ticket_key, status_category, occurred_at) VALUES ($1, $2, $3)
ON CONFLICT (ticket_key) DO UPDATE SET status_category = excluded.status_category, occurred_at = excluded.occurred_at
WHERE excluded.occurred_at >= t.occurred_at
"""
COUNT_BY_CATEGORY = "SELECT status_category, count(*) AS tickets FROM ticket_status GROUP BY status_category"


async def track_ticket_status(
    conn: Connection, *, ticket_key: str, status_category: str, occurred_at: datetime
) -> None:
    """Keep the newest status category of a ticket; an older, late snapshot changes nothing."""
    await conn.execute(UPSERT_TICKET_STATUS, ticket_key, status_category, occurred_at)


async def tickets_by_status_category(conn: Connection) -> dict[str, int]:
    return {row["status_category"]: row["tickets"] for row in await conn.fetch(COUNT_BY_CATEGORY)}
