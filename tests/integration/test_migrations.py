"""The migrations runner against a real, empty PostgreSQL database."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from bothways import devstack
from bothways.cli import migrate_all, service_spec
from bothways.db import migrate_database, read_migrations

pytestmark = pytest.mark.integration


@pytest.fixture
async def empty_database(postgres_server: str):
    name = f"bw_empty_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    yield devstack.with_database(postgres_server, name)
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


async def test_every_migration_applies_to_an_empty_database_into_its_own_schema(empty_database: str) -> None:
    await migrate_all(empty_database)
    conn = await asyncpg.connect(empty_database)
    tables = {
        (r["table_schema"], r["table_name"])
        for r in await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema <> ALL($1)",
            ["pg_catalog", "information_schema"],
        )
    }
    await conn.close()
    for service in devstack.SERVICES:
        assert {(service, "outbox"), (service, "inbox"), (service, "schema_migration")} <= tables
    assert ("ingest", "receipt") in tables
    assert ("sla", "ticket_event") in tables
    assert not {t for t in tables if t[0] == "public"}, "nothing lands in the public schema"


async def test_migrating_again_applies_nothing(empty_database: str) -> None:
    spec = service_spec("sla")
    first = await migrate_database(empty_database, schema="sla", migrations=spec.migrations)
    again = await migrate_database(empty_database, schema="sla", migrations=spec.migrations)
    assert [m.name for m in first] == [m.name for m in spec.migrations]
    assert again == []


async def test_replicas_starting_at_once_apply_each_migration_exactly_once(empty_database: str) -> None:
    migrations = service_spec("ingest").migrations
    results = await asyncio.gather(
        *(migrate_database(empty_database, schema="ingest", migrations=migrations) for _ in range(4))
    )
    assert sorted(len(applied) for applied in results) == [0, 0, 0, len(migrations)]


async def test_a_failing_migration_leaves_no_trace_and_stops_the_start(
    empty_database: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    with pytest.raises(asyncpg.UndefinedFunctionError):
        await migrate_database(empty_database, schema="demo", migrations=read_migrations("demo", tmp_path))
    conn = await asyncpg.connect(empty_database)
    applied = await conn.fetch("SELECT version FROM demo.schema_migration")
    half = await conn.fetchval("SELECT to_regclass('demo.half')")
    await conn.close()
    assert [r["version"] for r in applied] == [1]
    assert half is None


@pytest.mark.parametrize(
    ("files", "message"),
    [(["0001_a.sql", "0003_c.sql"], "without gaps"), (["1_a.sql"], "NNNN_slug.sql")],
)
def test_migration_files_must_be_numbered_without_gaps(
    tmp_path: Path, files: list[str], message: str
) -> None:
    for name in files:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(ValueError, match=message):
        read_migrations("demo", tmp_path)


async def test_bothways_migrate_reads_the_services_database_variable(
    empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service container has BOTHWAYS_DATABASE_URL, not DATABASE_URL: `bothways migrate` runs in it as is."""
    from bothways.cli import main

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("BOTHWAYS_DATABASE_URL", empty_database)
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    conn = await asyncpg.connect(empty_database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM ingest.schema_migration") == len(
            service_spec("ingest").migrations
        )
    finally:
        await conn.close()
