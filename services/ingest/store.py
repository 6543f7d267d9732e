"""The SQL of the ingest service."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


SELECT_RECEIPTS_PAGE = """
SELECT id, source, delivery_id, received_at, headers, body FROM receipt
WHERE received_at >= $1 AND received_at < $2 AND ($3::text IS NULL OR source = $3) AND id > $4
ORDER BY id LIMIT $5
"""
UPDATE_RECEIPT_OUTCOME = "UPDATE receipt SET outcome = $2, event_ids = $3, note = $4 WHERE id = $1"


@dataclass(frozen=True)
class StoredReceipt:
    id: int
    source: str
    delivery_id: str
    received_at: datetime
    headers: dict[str, str]
    body: bytes


async def receipts_page(
    conn: Connection, *, since: datetime, until: datetime, source: str | None, after_id: int, limit: int
) -> list[StoredReceipt]:
    """One page of stored deliveries in arrival order (keyset pagination by id)."""
    rows = await conn.fetch(SELECT_RECEIPTS_PAGE, since, until, source, after_id, limit)
    return [StoredReceipt(**{**dict(row), "headers": json.loads(row["headers"])}) for row in rows]


async def update_receipt_outcomes(
    conn: Connection, outcomes: list[tuple[int, str, list[str], str | None]]
) -> None:
    """Record what a replay derived from each receipt."""
    await conn.executemany(UPDATE_RECEIPT_OUTCOME, outcomes)


SELECT_IMPORT_RUN = "SELECT last_line, finished_at, rows_read, events_emitted, rejected FROM import_run WHERE file_digest = $1"
UPSERT_IMPORT_PROGRESS = """
INSERT INTO import_run AS r (file_digest, kind, name, last_line, rows_read, events_emitted, rejected)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (file_digest) DO UPDATE SET
    last_line = excluded.last_line,
    rows_read = r.rows_read + excluded.rows_read,
    events_emitted = r.events_emitted + excluded.events_emitted,
    rejected = r.rejected + excluded.rejected
"""
FINISH_IMPORT_RUN = "UPDATE import_run SET finished_at = now() WHERE file_digest = $1"


async def import_run(conn: Connection, *, file_digest: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(SELECT_IMPORT_RUN, file_digest)
    return dict(row) if row else None


async def record_import_progress(
    conn: Connection,
    *,
    file_digest: str,
    kind: str,
    name: str,
    last_line: int,
    rows_read: int,
    events_emitted: int,
    rejected: int,
) -> None:
    """Add one committed batch to the file's progress (in the batch's own transaction)."""
    await conn.execute(
        UPSERT_IMPORT_PROGRESS, file_digest, kind, name, last_line, rows_read, events_emitted, rejected
    )


async def finish_import_run(conn: Connection, *, file_digest: str) -> None:
    await conn.execute(FINISH_IMPORT_RUN, file_digest)
