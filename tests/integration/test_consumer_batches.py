"""Batch handlers in the consumer runner: one call per partition batch, in order, once, failures isolated."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bothways import db, kafka
from bothways.events import Event, TicketChanged, Topic
from tests.integration.test_outbox import ticket_envelopes
from tests.support import eventually, read_topic

pytestmark = pytest.mark.integration


class BatchEffects:
    """A batch handler that leaves a row per application and remembers each call's size and order."""

    def __init__(self, *, refuse: str | None = None) -> None:
        self.refuse = refuse
        self.calls: list[list[str]] = []

    async def apply(self, conn, batch) -> None:
        ids = [envelope.id for _, envelope in batch]
        self.calls.append(ids)
        await conn.executemany(
            "INSERT INTO applied (event_id, status) VALUES ($1, $2)",
            [(envelope.id, event.status) for event, envelope in batch],
        )
        if self.refuse in ids:
            raise ValueError(f"batch handler refuses {self.refuse}")


@pytest.fixture
async def pool(database_url: str):
    pool = await db.create_pool(database_url, schema="reporting")
    await pool.execute("CREATE TABLE applied (event_id text NOT NULL, status text NOT NULL)")
    yield pool
    await pool.close()


@pytest.fixture
async def producer(settings_for):
    settings = settings_for("reporting")
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


def runner(settings, pool, producer, batch_handlers, **overrides) -> kafka.ConsumerRunner:
    return kafka.ConsumerRunner(
        settings=settings.model_copy(update=overrides),
        service="reporting",
        topics=[Topic.TICKETS],
        pool=pool,
        handlers={},
        batch_handlers=batch_handlers,
        dead_letters=producer,
    )


async def applied(pool) -> list[str]:
    return [r["event_id"] for r in await pool.fetch("SELECT event_id FROM applied ORDER BY event_id")]


async def test_a_batch_handler_gets_a_partition_batch_at_once_in_offset_order_and_each_event_once(
    pool, producer, settings_for
) -> None:
    settings = settings_for("reporting")
    envelopes = ticket_envelopes(30)  # one key: one partition, so the offset order is the list order
    await publish(producer, settings, envelopes + envelopes[:5])  # the first five redelivered
    effects = BatchEffects()
    consumer = runner(settings, pool, producer, {Event: effects.apply}, consumer_batch_size=500)
    await consumer.start()
    try:
        await eventually(lambda: _count_is(pool, 30))
        await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
    assert Counter(await applied(pool)) == Counter(e.id for e in envelopes), "each event applied once"
    flattened = [event_id for call in effects.calls for event_id in call]
    assert flattened == [e.id for e in envelopes], "in offset order, duplicates left out"
    assert len(effects.calls) < len(envelopes), "called per batch, not per event"


async def test_the_handler_of_the_nearest_base_class_takes_the_event(pool, producer, settings_for) -> None:
    settings = settings_for("reporting")
    await publish(producer, settings, ticket_envelopes(3))
    generic, specific = BatchEffects(), BatchEffects()
    consumer = runner(settings, pool, producer, {Event: generic.apply, TicketChanged: specific.apply})
    await consumer.start()
    try:
        await eventually(lambda: _count_is(pool, 3))
    finally:
        await consumer.stop()
    assert generic.calls == []
    assert [event_id for call in specific.calls for event_id in call] == ["e-0", "e-1", "e-2"]


async def test_a_failing_batch_is_retried_event_by_event_and_only_the_bad_one_is_dead_lettered(
    pool, producer, settings_for
) -> None:
    settings = settings_for("reporting")
    envelopes = ticket_envelopes(8)
    await publish(producer, settings, envelopes)
    effects = BatchEffects(refuse="e-5")
    consumer = runner(settings, pool, producer, {TicketChanged: effects.apply})
    await consumer.start()
    try:
        await eventually(lambda: _count_is(pool, 7))
        [parked] = await read_topic(
            settings.kafka_bootstrap_servers, settings.topic(Topic.DEADLETTER), count=1
        )
    finally:
        await consumer.stop()
    assert await applied(pool) == [e.id for e in envelopes if e.id != "e-5"], "the failed batch rolled back"
    assert b"batch handler refuses e-5" in dict(parked.headers)["dlq_error"]


async def _count_is(pool, expected: int) -> bool:
    return len(await applied(pool)) >= expected
