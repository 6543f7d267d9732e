"""Retention: how long processed-event ids (`inbox`) are kept, and the batched purge behind `bothways purge`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bothways.db import Connection, check_schema_name


class RetentionSettings(BaseSettings):
    """The purge job's settings (BOTHWAYS_* environment variables), read once by `bothways purge`."""

    model_config = SettingsConfigDict(env_prefix="BOTHWAYS_", extra="ignore", frozen=True)

    database_url: str = Field(validation_alias=AliasChoices("BOTHWAYS_DATABASE_URL", "DATABASE_URL"))
    # An inbox row only deduplicates a redelivery: Kafka redelivers what was consumed but not yet
    # committed (seconds), or everything after an operator resets a group's offsets. A month covers
    # any reset an operator would make without also rebuilding the service (which empties its inbox).
    inbox_retention_days: int = Field(default=30, ge=1)
    # Receipts are what `bothways replay` re-derives events from after a mapping fix, and what makes a
    # platform's retry of an old delivery a duplicate: the retention is the replay window.
    receipt_retention_days: int = Field(default=90, ge=1)
    # Rows deleted per transaction: short locks and bounded WAL, and an interrupted job keeps its progress.
    purge_batch_size: int = Field(default=5_000, ge=1, le=100_000)


async def delete_in_batches(conn: Connection, delete_sql: str, *args: object, batch_size: int) -> int:
    """Run a `DELETE ... LIMIT $n` statement (its last parameter) until it deletes fewer rows; the total."""
    total = 0
    while True:
        status = await conn.execute(delete_sql, *args, batch_size)
        deleted = int(status.rsplit(" ", 1)[1])
        total += deleted
        if deleted < batch_size:
            return total


def purge_inbox_sql(schema: str) -> str:
    return f"""
DELETE FROM {check_schema_name(schema)}.inbox WHERE event_id IN (
    SELECT event_id FROM {schema}.inbox WHERE processed_at < $1 LIMIT $2)"""


async def purge_inbox(
    conn: Connection, *, schemas: Sequence[str], before: datetime, batch_size: int
) -> dict[str, int]:
    """Delete the processed-event ids older than `before` from each schema's inbox; rows deleted per schema."""
    return {
        f"{schema}.inbox": await delete_in_batches(
            conn, purge_inbox_sql(schema), before, batch_size=batch_size
        )
        for schema in schemas
    }
