"""Receipt retention: old raw deliveries are deleted by `bothways purge`, source by source."""

from __future__ import annotations

from datetime import datetime

from bothways.db import Connection
from bothways.retention import delete_in_batches

# A loose index scan over receipt (source, received_at): the few distinct sources without reading the table.
SOURCES = """
WITH RECURSIVE s AS (
    SELECT min(source) AS source FROM ingest.receipt
    UNION ALL
    SELECT (SELECT min(source) FROM ingest.receipt WHERE source > s.source) FROM s WHERE s.source IS NOT NULL)
SELECT source FROM s WHERE source IS NOT NULL
"""
# One source at a time, so each batch is found through the (source, received_at) index.
PURGE_RECEIPTS = """
DELETE FROM ingest.receipt WHERE id IN (
    SELECT id FROM ingest.receipt WHERE source = $1 AND received_at < $2 LIMIT $3)
"""


async def purge_receipts(conn: Connection, *, before: datetime, batch_size: int) -> int:
    """Delete the receipts received before `before`; the number deleted."""
    sources = [row["source"] for row in await conn.fetch(SOURCES)]
    return sum(
        [
            await delete_in_batches(conn, PURGE_RECEIPTS, source, before, batch_size=batch_size)
            for source in sources
        ]
    )
