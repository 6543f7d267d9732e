"""Fixtures of the reliability suite: more databases of the test's own, for reference runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from bothways import devstack


@pytest.fixture
async def another_database(
    postgres_server: str, template_database: str
) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Make more clean, migrated databases for this test (a reference run beside the faulty one)."""
    names: list[str] = []

    async def create() -> str:
        name = f"bw_test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(postgres_server)
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        finally:
            await conn.close()
        names.append(name)
        return devstack.with_database(postgres_server, name)

    yield create
    conn = await asyncpg.connect(postgres_server)
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
