"""`bothways reporting rebuild`: refused while reporting runs; afterwards the topics fold into the same read models."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime

import asyncpg
import pytest

from services.reporting.store import READ_MODEL_TABLES
from tests.reporting_month import applied_events, generate_month, publish
from tests.support import eventually

pytestmark = pytest.mark.integration


async def read_models(database_url: str) -> dict[str, list[tuple]]:
    """Every row of every read model, in a fixed order."""
    conn = await asyncpg.connect(database_url)
    try:
        return {
            table: sorted(tuple(row.values()) for row in await conn.fetch(f"SELECT * FROM reporting.{table}"))
            for table in READ_MODEL_TABLES
        }
    finally:
        await conn.close()


async def bothways(service_env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run the `bothways` command in a process of its own, with the test's environment."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bothways.cli",
        *args,
        env={**os.environ, **service_env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_rebuild_from_offset_zero_gives_the_same_read_models(
    run_service, settings_for, database_url, service_env
) -> None:
    plan = generate_month(now=datetime.now(UTC))
    unique = len(plan.unique_event_ids())

    async def all_applied() -> bool:
        return await applied_events(database_url) == unique

    async with run_service("reporting") as client:
        await publish(settings_for("reporting"), plan.events)
        await eventually(all_applied, timeout=60)
        before = await read_models(database_url)
        scorecards = (await client.get(f"/scorecards?period={plan.start:%Y-%m}")).json()
        refused = await bothways(service_env, "reporting", "rebuild", "--wait", "5")
    assert refused[0] == 2, refused
    assert "stop every reporting replica first" in refused[2]
    assert await read_models(database_url) == before, "a refused rebuild changes nothing"

    code, out, err = await bothways(service_env, "reporting", "rebuild")
    assert code == 0, err
    assert "12 partition(s) of 4 topic(s) rewound to their first offset" in out
    assert await applied_events(database_url) == 0
    assert all(rows == [] for rows in (await read_models(database_url)).values())

    async with run_service("reporting") as client:
        await eventually(all_applied, timeout=90)
        after = await read_models(database_url)
        rebuilt_scorecards = (await client.get(f"/scorecards?period={plan.start:%Y-%m}")).json()
    assert sum(len(rows) for rows in before.values()) > 1000
    assert after == before
    assert rebuilt_scorecards == scorecards
