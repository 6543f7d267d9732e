"""`bothways purge` against a real, migrated database: old inbox rows and receipts go, recent ones stay."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from pydantic import ValidationError

from bothways import devstack
from bothways.cli import main
from bothways.retention import RetentionSettings

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


async def add_inbox_rows(
    conn: asyncpg.Connection, schema: str, *, prefix: str, age: timedelta, count: int
) -> None:
    await conn.executemany(
        f"INSERT INTO {schema}.inbox (event_id, topic, processed_at) VALUES ($1, 'bothways.tickets.v1', $2)",
        [(f"{prefix}-{i}", NOW - age) for i in range(count)],
    )


async def add_receipts(
    conn: asyncpg.Connection, source: str, *, prefix: str, age: timedelta, count: int
) -> None:
    await conn.executemany(
        "INSERT INTO ingest.receipt (source, delivery_id, received_at, headers, body, outcome)"
        " VALUES ($1, $2, $3, '{}', '\\x7b7d', 'accepted')",
        [(source, f"{prefix}-{i}", NOW - age) for i in range(count)],
    )


async def count(conn: asyncpg.Connection, table: str, prefix: str) -> int:
    key = "delivery_id" if table.endswith("receipt") else "event_id"
    return int(await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {key} LIKE $1", f"{prefix}-%"))


async def purge(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **env: str
) -> dict[str, int]:
    """Run the command as the CronJob does (its own event loop, hence a thread)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert await asyncio.to_thread(main, ["purge"]) == 0
    deleted: dict[str, int] = json.loads(capsys.readouterr().out)
    return deleted


async def test_purge_deletes_inbox_rows_and_receipts_past_their_retention_and_keeps_the_rest(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for schema in devstack.SERVICES:
            await add_inbox_rows(conn, schema, prefix="old", age=timedelta(days=31), count=7)
            await add_inbox_rows(conn, schema, prefix="recent", age=timedelta(days=29), count=3)
        for source in ("jira", "zendesk", "alertmanager"):
            await add_receipts(conn, source, prefix=f"old-{source}", age=timedelta(days=91), count=5)
            await add_receipts(conn, source, prefix=f"recent-{source}", age=timedelta(days=89), count=2)

        # A batch smaller than the rows to delete: the job must loop, not stop after one batch.
        deleted = await purge(
            monkeypatch,
            capsys,
            BOTHWAYS_DATABASE_URL=database_url,
            BOTHWAYS_INBOX_RETENTION_DAYS="30",
            BOTHWAYS_RECEIPT_RETENTION_DAYS="90",
            BOTHWAYS_PURGE_BATCH_SIZE="2",
        )

        assert deleted == {**{f"{schema}.inbox": 7 for schema in devstack.SERVICES}, "ingest.receipt": 15}
        for schema in devstack.SERVICES:
            assert await count(conn, f"{schema}.inbox", "old") == 0
            assert await count(conn, f"{schema}.inbox", "recent") == 3
        for source in ("jira", "zendesk", "alertmanager"):
            assert await count(conn, "ingest.receipt", f"old-{source}") == 0
            assert await count(conn, "ingest.receipt", f"recent-{source}") == 2
    finally:
        await conn.close()


async def test_a_second_purge_deletes_nothing_more(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await add_inbox_rows(conn, "sla", prefix="old", age=timedelta(days=40), count=3)
        await add_receipts(conn, "jira", prefix="old", age=timedelta(days=100), count=3)
    finally:
        await conn.close()
    first = await purge(monkeypatch, capsys, DATABASE_URL=database_url)
    again = await purge(monkeypatch, capsys, DATABASE_URL=database_url)
    assert first["sla.inbox"] == 3
    assert first["ingest.receipt"] == 3
    assert set(again.values()) == {0}


async def test_the_retention_follows_the_settings(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await add_inbox_rows(conn, "reporting", prefix="week-old", age=timedelta(days=8), count=4)
        await add_receipts(conn, "generic", prefix="week-old", age=timedelta(days=8), count=4)
        # The defaults (30 and 90 days) keep a week-old row ...
        kept = await purge(monkeypatch, capsys, DATABASE_URL=database_url)
        assert set(kept.values()) == {0}
        # ... a seven-day retention does not.
        deleted = await purge(
            monkeypatch,
            capsys,
            DATABASE_URL=database_url,
            BOTHWAYS_INBOX_RETENTION_DAYS="7",
            BOTHWAYS_RECEIPT_RETENTION_DAYS="7",
        )
        assert deleted["reporting.inbox"] == 4
        assert deleted["ingest.receipt"] == 4
    finally:
        await conn.close()


def test_a_retention_below_one_day_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTHWAYS_DATABASE_URL", "postgresql://unused")
    monkeypatch.setenv("BOTHWAYS_INBOX_RETENTION_DAYS", "0")
    with pytest.raises(ValidationError, match="inbox_retention_days"):
        RetentionSettings()  # type: ignore[call-arg]


def test_purge_without_a_database_url_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("BOTHWAYS_DATABASE_URL", raising=False)
    assert main(["purge"]) == 2
    assert "BOTHWAYS_DATABASE_URL" in capsys.readouterr().err
