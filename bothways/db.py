"""PostgreSQL access: one asyncpg pool per service, bound to its own schema, and the migrations runner."""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import asyncpg.pool

log = logging.getLogger(__name__)

CORE_MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# asyncpg raises these when the server is gone or refuses connections: an outage, not bad data.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)

# PostgreSQL rolled the transaction back to break a deadlock or a serialization conflict with another
# one: neither an outage nor bad data, the same transaction can simply run again.
CONFLICT_ERRORS: tuple[type[Exception], ...] = (asyncpg.TransactionRollbackError,)

# A pooled connection is a proxy of a Connection; code takes either.
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
Pool = asyncpg.Pool


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str


def conflict_pause() -> float:
    """Seconds to wait before running a conflicting transaction again; random, so rivals fall out of step."""
    return random.uniform(0.02, 0.3)


def check_schema_name(schema: str) -> str:
    """Schema names are interpolated into SQL, so only plain identifiers are allowed."""
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


async def create_pool(dsn: str, *, schema: str, min_size: int = 1, max_size: int = 10) -> Pool:
    """A pool whose connections see the service's own schema first."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": f"{check_schema_name(schema)},public", "application_name": schema},
    )
    assert pool is not None
    return pool


def read_migrations(component: str, directory: Path) -> list[Migration]:
    """The numbered `NNNN_slug.sql` files of a directory, in order; gaps and strays are errors."""
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise ValueError(f"migration file name {path.name!r} is not NNNN_slug.sql")
        migrations.append(Migration(component, int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"{component} migrations must be numbered 1..n without gaps, got {versions}")
    return migrations


async def migrate(conn: Connection, *, schema: str, migrations: Sequence[Migration]) -> list[Migration]:
    """Apply pending migrations into `schema`; safe when several replicas start at once."""
    schema = check_schema_name(schema)
    applied_now: list[Migration] = []
    # A session advisory lock serialises concurrent migrators of the same schema.
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"bothways.migrate.{schema}")
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {schema}.schema_migration (
                   component text NOT NULL,
                   version integer NOT NULL,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (component, version))"""
        )
        rows = await conn.fetch(f"SELECT component, version FROM {schema}.schema_migration")
        done = {(r["component"], r["version"]) for r in rows}
        for migration in migrations:
            if (migration.component, migration.version) in done:
                continue
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {schema}, public")
                await conn.execute(migration.sql)
                await conn.execute(
                    f"INSERT INTO {schema}.schema_migration (component, version, name) VALUES ($1, $2, $3)",
                    migration.component,
                    migration.version,
                    migration.name,
                )
            applied_now.append(migration)
            log.info("migration applied", extra={"schema": schema, "migration": migration.name})
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"bothways.migrate.{schema}")
    return applied_now


def service_migrations(service: str, directory: Path) -> list[Migration]:
    """The core tables (outbox, inbox) followed by the service's own migrations."""
    return read_migrations("core", CORE_MIGRATIONS) + read_migrations(service, directory)


async def migrate_database(dsn: str, *, schema: str, migrations: Sequence[Migration]) -> list[Migration]:
    """Open one connection, migrate one schema, close."""
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn, schema=schema, migrations=migrations)
    finally:
        await conn.close()
