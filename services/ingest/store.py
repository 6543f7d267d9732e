"""The SQL of the ingest service."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from bothways.db import Connection

INSERT_RECEIPT = """
INSERT INTO receipt (source, delivery_id, received_at, headers, body, outcome, event_ids, note)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)
ON CONFLICT (source, delivery_id) DO NOTHING
RETURNING id
"""
SELECT_RECEIPT_EVENTS = "SELECT event_ids FROM receipt WHERE source = $1 AND delivery_id = $2"


async def insert_receipt(
    conn: Connection,
    *,
    source: str,
    delivery_id: str,
    received_at: datetime,
    headers: Mapping[str, str],
    body: bytes,
    outcome: str,
    event_ids: Sequence[str],
    note: str | None = None,
) -> bool:
    """Store a delivery; False when the same delivery was stored before."""
    row_id = await conn.fetchval(
        INSERT_RECEIPT,
        source,
        delivery_id,
        received_at,
        json.dumps(dict(headers)),
        body,
        outcome,
        list(event_ids),
        note,
    )
    return row_id is not None


async def receipt_event_ids(conn: Connection, *, source: str, delivery_id: str) -> list[str]:
    """The event ids a stored delivery produced."""
    ids: list[str] | None = await conn.fetchval(SELECT_RECEIPT_EVENTS, source, delivery_id)
    return ids or []
