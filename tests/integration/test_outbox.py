"""The outbox and its relay against the real PostgreSQL and the real broker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bothways import db, kafka
from bothways.events import TicketChanged, Topic, decode_record, envelope_for
from bothways.outbox import OutboxRelay, enqueue
from tests.support import eventually, read_topic

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def ticket_envelopes(count: int, *, key: str = "generic:1", prefix: str = "e"):
    return [
        envelope_for(
            TicketChanged(
                ticket_key=key,
                source="generic",
                external_id=key.split(":")[1],
                occurred_at=T0 + timedelta(seconds=i),
                created_at=T0,
                status=f"step {i}",
                status_category="open",
            ),
            event_id=f"{prefix}-{i}",
            source="/test",
        )
        for i in range(count)
    ]


@pytest.fixture
async def pool(database_url: str):
    pool = await db.create_pool(database_url, schema="ingest")
    yield pool
    await pool.close()


def make_relay(pool, producer, settings, database_url):
    return OutboxRelay(
        pool=pool,
        dsn=database_url,
        producer=producer,
        schema="ingest",
        topic_name=settings.topic,
        poll_seconds=0.2,
    )


@pytest.fixture
async def producer(settings_for):
    settings = settings_for("ingest")
    await kafka.ensure_topics(settings.kafka_bootstrap_servers, [settings.topic(Topic.TICKETS)], partitions=3)
    producer = kafka.create_producer(settings)
    await producer.start()
    yield producer
    await producer.stop()


async def unsent(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")


async def test_committed_events_are_published_in_order_and_marked_sent(
    pool, producer, settings_for, database_url
):
    settings = settings_for("ingest")
    envelopes = ticket_envelopes(50)
    async with pool.acquire() as conn, conn.transaction():
        await enqueue(conn, envelopes)
    relay = make_relay(pool, producer, settings, database_url)
    await relay.start()
    try:
        records = await read_topic(settings.kafka_bootstrap_servers, settings.topic(Topic.TICKETS), count=50)
        assert [decode_record(r.headers, r.value).id for r in records] == [e.id for e in envelopes]
        assert {r.key for r in records} == {b"generic:1"}
        assert await eventually(lambda: _is_zero(unsent(pool)))
    finally:
        await relay.stop()


async def _is_zero(count) -> bool:
    return await count == 0


async def test_events_of_a_rolled_back_transaction_never_leave(pool, producer, settings_for, database_url):
    settings = settings_for("ingest")
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, ticket_envelopes(3, prefix="rolled-back"))
            raise RuntimeError("the effect failed")
    async with pool.acquire() as conn, conn.transaction():
        await enqueue(conn, ticket_envelopes(1, prefix="kept"))
    relay = make_relay(pool, producer, settings, database_url)
    await relay.start()
    try:
        records = await read_topic(
            settings.kafka_bootstrap_servers, settings.topic(Topic.TICKETS), count=4, timeout=3
        )
        assert [decode_record(r.headers, r.value).id for r in records] == ["kept-0"]
    finally:
        await relay.stop()


async def test_a_commit_wakes_the_relay_without_waiting_for_the_poll(
    pool, producer, settings_for, database_url
):
    settings = settings_for("ingest")
    relay = OutboxRelay(
        pool=pool,
        dsn=database_url,
        producer=producer,
        schema="ingest",
        topic_name=settings.topic,
        poll_seconds=60,
    )
    await relay.start()
    try:
        await asyncio.sleep(0.5)  # the relay is now asleep for a minute unless NOTIFY wakes it
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, ticket_envelopes(1))
        records = await read_topic(
            settings.kafka_bootstrap_servers, settings.topic(Topic.TICKETS), count=1, timeout=5
        )
        assert len(records) == 1
    finally:
        await relay.stop()


async def test_several_relays_publish_each_event_once_and_in_order(
    pool, producer, settings_for, database_url
):
    settings = settings_for("ingest")
    relays = [make_relay(pool, producer, settings, database_url) for _ in range(3)]
    for relay in relays:
        await relay.start()
    envelopes = ticket_envelopes(300)
    try:
        for start in range(0, 300, 10):  # committed in many small transactions while all relays run
            async with pool.acquire() as conn, conn.transaction():
                await enqueue(conn, envelopes[start : start + 10])
        await eventually(lambda: _is_zero(unsent(pool)))
        records = await read_topic(settings.kafka_bootstrap_servers, settings.topic(Topic.TICKETS), count=300)
        assert [decode_record(r.headers, r.value).id for r in records] == [e.id for e in envelopes]
    finally:
        for relay in relays:
            await relay.stop()


async def test_while_the_broker_is_down_rows_wait_and_are_published_when_it_returns(
    pool, settings_for, database_url, cuttable_broker
):
    bootstrap, broker_link = cuttable_broker
    settings = settings_for("ingest", kafka_bootstrap_servers=bootstrap)
    await kafka.ensure_topics(bootstrap, [settings.topic(Topic.TICKETS)], partitions=3)
    producer = kafka.create_producer(settings)
    await producer.start()
    relay = make_relay(pool, producer, settings, database_url)
    await relay.start()
    try:
        await broker_link.cut()
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, ticket_envelopes(20))
        await asyncio.sleep(2)
        assert await unsent(pool) == 20, "nothing is marked sent while the broker is unreachable"
        await broker_link.restore()
        await eventually(lambda: _is_zero(unsent(pool)), timeout=40)
        records = await read_topic(bootstrap, settings.topic(Topic.TICKETS), count=20)
        ids = [decode_record(r.headers, r.value).id for r in records]
        assert sorted(set(ids)) == sorted(f"e-{i}" for i in range(20))
    finally:
        await relay.stop()
        await producer.stop()


async def test_a_commit_during_a_publish_is_not_left_waiting_for_the_poll(
    pool, producer, settings_for, database_url
) -> None:
    settings = settings_for("ingest")
    relay = OutboxRelay(
        pool=pool,
        dsn=database_url,
        producer=producer,
        schema="ingest",
        topic_name=settings.topic,
        poll_seconds=60,
    )
    await relay.start()
    envelopes = ticket_envelopes(200)
    try:
        await asyncio.sleep(0.5)
        for envelope in envelopes:  # each commit's NOTIFY may land while the relay is publishing
            async with pool.acquire() as conn, conn.transaction():
                await enqueue(conn, [envelope])
        await eventually(lambda: _is_zero(unsent(pool)), timeout=10)
    finally:
        await relay.stop()
