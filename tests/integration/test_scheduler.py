"""The durable scheduler against the real PostgreSQL: on time, once, woken early, caught up after downtime."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from bothways import db
from bothways.scheduler import Scheduler, StepResult, wake_scheduler
from tests.support import eventually

pytestmark = pytest.mark.integration

CREATE = """
CREATE TABLE chore (id int PRIMARY KEY, due_at timestamptz NOT NULL, done_at timestamptz, done_by text,
                    runs int NOT NULL DEFAULT 0)
"""


def chore_step(worker: str):
    async def step(conn: db.Connection, now: datetime) -> StepResult:
        due = await conn.fetch(
            "SELECT id FROM chore WHERE done_at IS NULL AND due_at <= $1 ORDER BY due_at LIMIT 50 "
            "FOR UPDATE SKIP LOCKED",
            now,
        )
        await conn.execute(
            "UPDATE chore SET done_at = clock_timestamp(), done_by = $2, runs = runs + 1 WHERE id = ANY($1)",
            [row["id"] for row in due],
            worker,
        )
        upcoming = await conn.fetchval("SELECT min(due_at) FROM chore WHERE done_at IS NULL")
        return StepResult(done=len(due), next_due=upcoming)

    return step


@pytest.fixture
async def pool(database_url: str):
    pool = await db.create_pool(database_url, schema="sla")
    await pool.execute(CREATE)
    yield pool
    await pool.close()


def scheduler(pool, database_url: str, worker: str = "a", **options) -> Scheduler:
    return Scheduler(
        pool=pool, dsn=database_url, schema="sla", step=chore_step(worker), batch_size=50, **options
    )


async def add_chores(pool, *due: datetime, first_id: int = 1) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            "INSERT INTO chore (id, due_at) VALUES ($1, $2)", list(enumerate(due, start=first_id))
        )
        await wake_scheduler(conn)


async def test_work_is_done_at_its_due_instant_and_not_before(pool, database_url) -> None:
    running = scheduler(pool, database_url)
    await running.start()
    try:
        due = datetime.now(UTC) + timedelta(seconds=1.5)
        await add_chores(pool, due)
        await eventually(lambda: pool.fetchval("SELECT done_at FROM chore WHERE id = 1"), timeout=5)
        done_at = await pool.fetchval("SELECT done_at FROM chore WHERE id = 1")
        assert due <= done_at < due + timedelta(seconds=0.5)
    finally:
        await running.stop()


async def test_a_notify_wakes_a_scheduler_sleeping_towards_a_later_deadline(pool, database_url) -> None:
    await add_chores(pool, datetime.now(UTC) + timedelta(hours=1))
    running = scheduler(pool, database_url, max_sleep_seconds=60)
    await running.start()
    try:
        await asyncio.sleep(0.3)  # asleep until the hour, or the next NOTIFY
        await add_chores(pool, datetime.now(UTC), first_id=2)
        await eventually(lambda: pool.fetchval("SELECT done_at FROM chore WHERE id = 2"), timeout=2)
        assert await pool.fetchval("SELECT done_at FROM chore WHERE id = 1") is None
    finally:
        await running.stop()


async def test_overdue_work_is_caught_up_after_downtime_in_full_batches(pool, database_url) -> None:
    past = datetime.now(UTC) - timedelta(minutes=5)
    await add_chores(pool, *(past + timedelta(milliseconds=i) for i in range(430)))
    running = scheduler(pool, database_url)
    await running.start()
    try:

        async def all_done() -> bool:
            return await pool.fetchval("SELECT count(*) FROM chore WHERE done_at IS NULL") == 0

        await eventually(all_done, timeout=5)
    finally:
        await running.stop()


async def test_two_replicas_share_the_work_and_never_do_an_item_twice(pool, database_url) -> None:
    now = datetime.now(UTC)
    await add_chores(pool, *(now + timedelta(milliseconds=2 * i) for i in range(1000)))
    replicas = [scheduler(pool, database_url, worker) for worker in ("a", "b")]
    for replica in replicas:
        await replica.start()
    try:

        async def all_done() -> bool:
            return await pool.fetchval("SELECT count(*) FROM chore WHERE done_at IS NULL") == 0

        await eventually(all_done, timeout=10)
    finally:
        for replica in replicas:
            await replica.stop()
    assert await pool.fetchval("SELECT max(runs) FROM chore") == 1
    workers = {row["done_by"] for row in await pool.fetch("SELECT DISTINCT done_by FROM chore")}
    assert workers <= {"a", "b"}


async def test_after_commit_work_sees_the_committed_claim_and_is_skipped_on_rollback(
    pool, database_url
) -> None:
    await add_chores(pool, datetime.now(UTC) - timedelta(seconds=1))
    seen: list[object] = []

    async def step(conn: db.Connection, now: datetime) -> StepResult:
        await conn.execute("UPDATE chore SET runs = runs + 1 WHERE id = 1")

        async def after() -> None:
            # Another connection: only committed work is visible to it.
            seen.append(await pool.fetchval("SELECT runs FROM chore WHERE id = 1"))

        return StepResult(done=1, next_due=None, after_commit=after)

    running = Scheduler(pool=pool, dsn=database_url, schema="sla", step=step, batch_size=50)
    await running.run_once()
    assert seen == [1]

    async def failing_step(conn: db.Connection, now: datetime) -> StepResult:
        await step(conn, now)
        raise RuntimeError("the step fails after claiming")

    failing = Scheduler(pool=pool, dsn=database_url, schema="sla", step=failing_step, batch_size=50)
    with pytest.raises(RuntimeError):
        await failing.run_once()
    assert seen == [1]
    assert await pool.fetchval("SELECT runs FROM chore WHERE id = 1") == 1


async def test_concurrent_steps_of_one_scheduler_overlap_and_never_do_an_item_twice(
    pool, database_url
) -> None:
    await add_chores(pool, *(datetime.now(UTC) - timedelta(milliseconds=i) for i in range(600)))
    in_step = 0
    overlapped = 0

    async def slow_step(conn: db.Connection, now: datetime) -> StepResult:
        nonlocal in_step, overlapped
        in_step += 1
        overlapped = max(overlapped, in_step)
        try:
            await conn.execute("SELECT pg_sleep(0.05)")  # time on the database, as a real step spends
            return await chore_step("a")(conn, now)
        finally:
            in_step -= 1

    running = Scheduler(
        pool=pool, dsn=database_url, schema="sla", step=slow_step, batch_size=50, concurrency=2
    )
    await running.start()
    try:

        async def all_done() -> bool:
            return await pool.fetchval("SELECT count(*) FROM chore WHERE done_at IS NULL") == 0

        await eventually(all_done, timeout=10)
    finally:
        await running.stop()
    assert await pool.fetchval("SELECT max(runs) FROM chore") == 1
    assert overlapped == 2


async def test_a_step_rolled_back_by_a_deadlock_is_run_again_soon_with_a_warning(
    pool, database_url, caplog
) -> None:
    await add_chores(pool, datetime.now(UTC) - timedelta(seconds=1))
    steps = 0

    async def step(conn: db.Connection, now: datetime) -> StepResult:
        nonlocal steps
        steps += 1
        if steps == 1:
            raise asyncpg.DeadlockDetectedError("deadlock detected")
        return await chore_step("a")(conn, now)

    running = Scheduler(pool=pool, dsn=database_url, schema="sla", step=step, batch_size=50)
    await running.start()
    try:
        await eventually(lambda: pool.fetchval("SELECT done_at FROM chore WHERE id = 1"), timeout=5)
    finally:
        await running.stop()
    # The conflict's own branch (a short random pause), not the backoff and traceback of a failing step.
    logged = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "bothways.scheduler"]
    assert logged == [("WARNING", "scheduler transaction conflict; retrying")]
