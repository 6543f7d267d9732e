"""The SQL of the ingest service."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bothways.db import Connection

INSERT_RECEIPT = """
INSERT INTO receipt (source, delivery_id, received_at, headers, body, outcome, event_ids, note)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)
ON CONFLICT (source, delivery_id) DO NOTHING
RETURNING id
"""
SELECT_RECEIPT = "SELECT event_ids, outcome, note FROM receipt WHERE source = $1 AND delivery_id = $2"


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


async def stored_receipt(conn: Connection, *, source: str, delivery_id: str) -> dict[str, Any]:
    """What a stored delivery produced: its event ids, outcome and note."""
    row = await conn.fetchrow(SELECT_RECEIPT, source, delivery_id)
    return dict(row) if row else {"event_ids": [], "outcome": "accepted", "note": None}
