"""The SQL of the ingest service."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bothways.db import Connection
from bothways.events import Envelope
from bothways.outbox import outbox_columns

# A batch of deliveries in one statement, so in one round trip and one transaction of its own: the
# new receipts, the events of those (into the outbox, in batch order) and the NOTIFY that wakes the
# relay, all or nothing. A delivery stored before is skipped; the new ones are returned.
# event_ids travel as one JSON array per receipt (unnest would flatten a text[][]); each event
# carries its receipt's key, to be queued only if that receipt is new.
STORE_RECEIPTS = """
WITH new AS (
    INSERT INTO receipt (source, delivery_id, received_at, headers, body, outcome, event_ids, note)
    SELECT s, d, r, h, b, o, ARRAY(SELECT jsonb_array_elements_text(e)), n
    FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::jsonb[], $5::bytea[], $6::text[], $7::jsonb[], $8::text[])
        AS t(s, d, r, h, b, o, e, n)
    ON CONFLICT (source, delivery_id) DO NOTHING
    RETURNING source, delivery_id
), queued AS (
    INSERT INTO outbox (event_id, topic, key, value, headers)
    SELECT event_id, topic, key, value, headers
    FROM unnest($9::text[], $10::text[], $11::text[], $12::text[], $13::bytea[], $14::bytea[], $15::jsonb[])
        WITH ORDINALITY AS e(source, delivery_id, event_id, topic, key, value, headers, position)
    WHERE (source, delivery_id) IN (SELECT source, delivery_id FROM new)
    ORDER BY position
    RETURNING 1
)
SELECT source, delivery_id, (SELECT pg_notify(current_schema() || '_outbox', '') FROM queued LIMIT 1)
FROM new
"""
SELECT_RECEIPTS = """
SELECT source, delivery_id, event_ids, outcome, note FROM receipt
JOIN unnest($1::text[], $2::text[]) AS k(source, delivery_id) USING (source, delivery_id)
"""

DeliveryKey = tuple[str, str]


@dataclass(frozen=True)
class NewReceipt:
    """A delivery as it is stored: where from, its id, what it carried and what it yielded."""

    source: str
    delivery_id: str
    received_at: datetime
    headers: Mapping[str, str]
    body: bytes
    outcome: str
    event_ids: Sequence[str]
    note: str | None = None


async def store_receipts(
    conn: Connection, receipts: Sequence[NewReceipt], events: Sequence[tuple[DeliveryKey, Envelope]]
) -> set[DeliveryKey]:
    """Store deliveries (each key at most once) and the events of the new ones; returns the new keys."""
    columns = outbox_columns([envelope for _, envelope in events])
    rows = await conn.fetch(
        STORE_RECEIPTS,
        [r.source for r in receipts],
        [r.delivery_id for r in receipts],
        [r.received_at for r in receipts],
        [json.dumps(dict(r.headers)) for r in receipts],
        [r.body for r in receipts],
        [r.outcome for r in receipts],
        [json.dumps(list(r.event_ids)) for r in receipts],
        [r.note for r in receipts],
        [key[0] for key, _ in events],
        [key[1] for key, _ in events],
        *columns,
    )
    return {(row["source"], row["delivery_id"]) for row in rows}


async def stored_receipts(conn: Connection, keys: Sequence[DeliveryKey]) -> dict[DeliveryKey, dict[str, Any]]:
    """What stored deliveries produced: their event ids, outcome and note."""
    rows = await conn.fetch(SELECT_RECEIPTS, [k[0] for k in keys], [k[1] for k in keys])
    return {
        (row["source"], row["delivery_id"]): {
            "event_ids": row["event_ids"],
            "outcome": row["outcome"],
            "note": row["note"],
        }
        for row in rows
    }


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
