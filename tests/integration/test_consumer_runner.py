"""The consumer runner against the real broker and database: exactly-once effect, retries, dead letters."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from bothways import db, kafka
from bothways.events import TicketChanged, Topic, decode_record
from tests.integration.test_outbox import ticket_envelopes
from tests.support import eventually, read_topic

pytestmark = pytest.mark.integration


class Effects:
    """Handlers that leave a row per application, so a double application shows as two rows."""

    def __init__(self, *, fail_times: dict[str, int] | None = None) -> None:
        self.fail_times = dict(fail_times or {})
        self.attempts: Counter[str] = Counter()

    async def apply(self, conn, event, envelope) -> None:
        self.attempts[envelope.id] += 1
        await conn.execute(
            "INSERT INTO applied (event_id, status) VALUES ($1, $2)", envelope.id, event.status
        )
        if self.fail_times.get(envelope.id, 0) >= self.attempts[envelope.id]:
            raise ValueError(f"handler refuses {envelope.id}")


class Deadlocking:
    """A batch handler whose first call deadlocks in PostgreSQL with a rival transaction of the test.

    It locks row a, waits until the rival (which holds row b) waits for a, then asks for b. Its session
    checks for deadlocks after 20 ms and the rival's after 10 s, so PostgreSQL aborts the handler's
    transaction to break the cycle.
    """

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.holds_a = asyncio.Event()
        self.rival_pid = 0

    async def apply(self, conn, batch) -> None:
        self.calls.append([envelope.id for _, envelope in batch])
        await conn.executemany(
            "INSERT INTO applied (event_id, status) VALUES ($1, $2)",
            [(envelope.id, event.status) for event, envelope in batch],
        )
        await conn.execute("SET LOCAL deadlock_timeout = '20ms'")
        await conn.execute("SELECT FROM lock_row WHERE id = 'a' FOR UPDATE")
        if len(self.calls) == 1:
            self.holds_a.set()
            await eventually(lambda: self._rival_waits_for(conn), timeout=5)
        await conn.execute("SELECT FROM lock_row WHERE id = 'b' FOR UPDATE")

    async def _rival_waits_for(self, conn) -> bool:
        return await conn.fetchval("SELECT pg_backend_pid() = ANY(pg_blocking_pids($1))", self.rival_pid)


@pytest.fixture
async def pool(database_url: str):
    pool = await db.create_pool(database_url, schema="sla")
    await pool.execute("CREATE TABLE applied (event_id text NOT NULL, status text NOT NULL)")
    yield pool
    await pool.close()


@pytest.fixture
async def producer(settings_for):
    settings = settings_for("sla")
    await kafka.ensure_topics(
        settings.kafka_bootstrap_servers,
        [settings.topic(Topic.TICKETS), settings.topic(Topic.DEADLETTER)],
        partitions=3,
    )
    producer = kafka.create_producer(settings)
    await producer.start()
    yield producer
    await producer.stop()


async def publish(producer, settings, envelopes) -> None:
    for e in envelopes:
        await producer.send_and_wait(
            settings.topic(Topic.TICKETS), value=e.value_bytes(), key=e.key_bytes(), headers=e.headers()
        )


async def applied(pool) -> list[str]:
    return [r["event_id"] for r in await pool.fetch("SELECT event_id FROM applied ORDER BY event_id")]


def runner(settings, pool, effects, producer, **overrides):
    return kafka.ConsumerRunner(
        settings=settings.model_copy(update=overrides),
        service="sla",
        topics=[Topic.TICKETS],
        pool=pool,
        handlers={TicketChanged: effects.apply},
        dead_letters=producer,
    )


async def count_is(pool, expected: int) -> bool:
    return len(await applied(pool)) >= expected


async def test_a_redelivered_event_is_applied_once(pool, producer, settings_for) -> None:
    settings = settings_for("sla")
    envelopes = ticket_envelopes(10)
    await publish(producer, settings, envelopes + envelopes[:4])  # redelivered, in a later batch or the same
    effects = Effects()
    consumer = runner(settings, pool, effects, producer)
    await consumer.start()
    try:
        await eventually(lambda: count_is(pool, 10))
        await asyncio.sleep(0.5)
        assert await applied(pool) == sorted(e.id for e in envelopes)
    finally:
        await consumer.stop()


async def test_a_failing_event_is_retried_and_applied_once_when_it_succeeds(
    pool, producer, settings_for
) -> None:
    settings = settings_for("sla")
    envelopes = ticket_envelopes(5)
    await publish(producer, settings, envelopes)
    effects = Effects(fail_times={"e-2": 2})
    consumer = runner(settings, pool, effects, producer)
    await consumer.start()
    try:
        await eventually(lambda: count_is(pool, 5))
        assert await applied(pool) == sorted(e.id for e in envelopes)
        assert effects.attempts["e-2"] >= 3
    finally:
        await consumer.stop()
    assert (
        await read_topic(
            settings.kafka_bootstrap_servers, settings.topic(Topic.DEADLETTER), count=1, timeout=1
        )
        == []
    )


async def test_a_record_that_keeps_failing_is_dead_lettered_and_the_partition_moves_on(
    pool, producer, settings_for
) -> None:
    settings = settings_for("sla")
    envelopes = ticket_envelopes(6)
    await publish(producer, settings, envelopes)
    effects = Effects(fail_times={"e-3": 99})
    consumer = runner(settings, pool, effects, producer)
    await consumer.start()
    try:
        await eventually(lambda: count_is(pool, 5))
        [parked] = await read_topic(
            settings.kafka_bootstrap_servers, settings.topic(Topic.DEADLETTER), count=1
        )
    finally:
        await consumer.stop()
    assert await applied(pool) == ["e-0", "e-1", "e-2", "e-4", "e-5"], "the failed effect was rolled back"
    assert effects.attempts["e-3"] == 1 + settings.consumer_max_attempts  # the batch try, then each retry
    headers = dict(parked.headers)
    assert decode_record(parked.headers, parked.value).id == "e-3"
    assert b"handler refuses e-3" in headers["dlq_error"]
    assert headers["dlq_topic"] == settings.topic(Topic.TICKETS).encode()
    assert headers["dlq_attempts"] == str(settings.consumer_max_attempts).encode()
    assert headers["dlq_consumer_group"] == settings.consumer_group("sla").encode()


async def test_records_that_are_not_events_are_dead_lettered_and_the_next_one_is_applied(
    pool, producer, settings_for
) -> None:
    settings = settings_for("sla")
    [good] = ticket_envelopes(1)
    topic = settings.topic(Topic.TICKETS)
    key = good.key_bytes()  # same key: same partition, so the good record comes after the bad ones
    await producer.send_and_wait(topic, value=b"{not json", key=key, headers=good.headers())
    await producer.send_and_wait(topic, value=good.value_bytes(), key=key, headers=[])
    await producer.send_and_wait(
        topic, value=json.dumps({"status": 1}).encode(), key=key, headers=good.headers()
    )
    await publish(producer, settings, [good])
    consumer = runner(settings, pool, Effects(), producer)
    await consumer.start()
    try:
        await eventually(lambda: count_is(pool, 1))
        parked = await read_topic(settings.kafka_bootstrap_servers, settings.topic(Topic.DEADLETTER), count=3)
    finally:
        await consumer.stop()
    errors = sorted(dict(r.headers)["dlq_error"].decode() for r in parked)
    assert len(errors) == 3
    assert any("value is not JSON" in e for e in errors)
    assert any("missing CloudEvents header" in e for e in errors)
    assert any("invalid io.bothways.ticket.changed" in e for e in errors)
    assert await applied(pool) == ["e-0"]


async def test_while_the_database_is_down_the_consumer_waits_and_then_applies_everything(
    producer, settings_for, cuttable_database, database_url
) -> None:
    via_proxy, database_link = cuttable_database
    setup = await db.create_pool(database_url, schema="sla")
    await setup.execute("CREATE TABLE applied (event_id text NOT NULL, status text NOT NULL)")
    pool = await db.create_pool(via_proxy, schema="sla")
    settings = settings_for("sla")
    consumer = runner(settings, pool, Effects(), producer)
    await consumer.start()
    try:
        await database_link.cut()
        envelopes = ticket_envelopes(30)
        await publish(producer, settings, envelopes)
        await asyncio.sleep(2)
        assert await applied(setup) == []
        await database_link.restore()
        await eventually(lambda: count_is(setup, 30), timeout=30)
        assert await applied(setup) == sorted(e.id for e in envelopes)
    finally:
        await consumer.stop()
        await pool.close()
        await setup.close()
    dead = await read_topic(
        settings.kafka_bootstrap_servers, settings.topic(Topic.DEADLETTER), count=1, timeout=1
    )
    assert dead == [], "an outage is not a bad record"


async def test_a_restarted_consumer_resumes_after_the_last_commit_without_reapplying(
    pool, producer, settings_for
) -> None:
    settings = settings_for("sla")
    first_half, second_half = ticket_envelopes(40)[:20], ticket_envelopes(40)[20:]
    await publish(producer, settings, first_half)
    consumer = runner(settings, pool, Effects(), producer, consumer_batch_size=5)
    await consumer.start()
    await eventually(lambda: count_is(pool, 20))
    await consumer.stop()
    await publish(producer, settings, second_half)
    consumer = runner(settings, pool, Effects(), producer, consumer_batch_size=5)
    await consumer.start()
    try:
        await eventually(lambda: count_is(pool, 40))
        await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
    assert Counter(await applied(pool)) == Counter(e.id for e in first_half + second_half)


async def test_a_deadlocked_batch_is_run_again_whole_and_applied_once(
    pool, producer, settings_for, caplog
) -> None:
    settings = settings_for("sla")
    await pool.execute(
        "CREATE TABLE lock_row (id text PRIMARY KEY); INSERT INTO lock_row VALUES ('a'), ('b')"
    )
    envelopes = ticket_envelopes(5)  # one key: one partition, so the first three come as one batch
    first, later = envelopes[:3], envelopes[3:]
    await publish(producer, settings, first)
    deadlocking = Deadlocking()
    consumer = kafka.ConsumerRunner(
        settings=settings,
        service="sla",
        topics=[Topic.TICKETS],
        pool=pool,
        handlers={},
        batch_handlers={TicketChanged: deadlocking.apply},
        dead_letters=producer,
    )
    try:
        async with pool.acquire() as rival, rival.transaction():
            await rival.execute("SET LOCAL deadlock_timeout = '10s'")
            await rival.execute("SELECT FROM lock_row WHERE id = 'b' FOR UPDATE")
            deadlocking.rival_pid = rival.get_server_pid()
            await consumer.start()
            await asyncio.wait_for(deadlocking.holds_a.wait(), 15)
            # Granted once PostgreSQL has broken the deadlock by aborting the handler's transaction.
            await asyncio.wait_for(rival.execute("SELECT FROM lock_row WHERE id = 'a' FOR UPDATE"), 5)
        await eventually(lambda: count_is(pool, 3))
        await publish(producer, settings, later)
        await eventually(lambda: count_is(pool, 5))
    finally:
        await consumer.stop()
    ids = [e.id for e in envelopes]
    assert deadlocking.calls[:2] == [ids[:3], ids[:3]], "the whole batch again, not record by record"
    # The later records come in one batch or several, as the broker hands them out.
    assert [event_id for call in deadlocking.calls[2:] for event_id in call] == ids[3:], "then moves on"
    assert await applied(pool) == ids, "the aborted transaction left nothing behind"
    [conflict] = [r for r in caplog.records if r.getMessage() == "transaction conflict; retrying"]
    assert "DeadlockDetectedError" in conflict.error, "a real deadlock, detected by PostgreSQL"
    dead = await read_topic(
        settings.kafka_bootstrap_servers, settings.topic(Topic.DEADLETTER), count=1, timeout=1
    )
    assert dead == [], "a deadlock is not a bad record"
