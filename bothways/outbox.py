"""Transactional outbox: events are written with their cause, and a relay publishes them in order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence

import asyncpg
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import TypeAdapter

from bothways.db import UNAVAILABLE_ERRORS, Connection, Pool, check_schema_name
from bothways.events import Envelope, Topic
from bothways.kafka import missing_topics, renew_topics
from bothways.metrics import OUTBOX_PUBLISH_FAILURES, OUTBOX_PUBLISHED

log = logging.getLogger(__name__)

INSERT_OUTBOX = """
INSERT INTO outbox (event_id, topic, key, value, headers)
SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::jsonb[])
"""
CLAIM_BATCH = """
SELECT id, topic, key, value, headers FROM outbox
WHERE sent_at IS NULL ORDER BY id LIMIT $1
FOR UPDATE SKIP LOCKED
"""
MARK_SENT = "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])"
PURGE_SENT = "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1)"


def channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes the relay of one schema."""
    return f"{check_schema_name(schema)}_outbox"


# pydantic's encoder writes an event's attributes in half the time of json.dumps, per event in ingest.
ATTRIBUTES_JSON = TypeAdapter(list[tuple[str, str]])


def outbox_columns(
    envelopes: Sequence[Envelope],
) -> tuple[list[str], list[str], list[bytes], list[bytes], list[str]]:
    """The outbox's columns (event_id, topic, key, value, headers) as arrays, for an unnest insert."""
    return (
        [e.id for e in envelopes],
        [e.topic.value for e in envelopes],
        [e.key_bytes() for e in envelopes],
        [e.value_bytes() for e in envelopes],
        [ATTRIBUTES_JSON.dump_json(e.attributes()).decode() for e in envelopes],
    )


async def enqueue(conn: Connection, envelopes: Sequence[Envelope]) -> None:
    """Add events to the outbox inside the caller's transaction; they leave only if it commits."""
    if not envelopes:
        return
    await conn.execute(INSERT_OUTBOX, *outbox_columns(envelopes))
    # NOTIFY is delivered at commit, so the relay never wakes for rows it cannot see yet.
    await conn.execute("SELECT pg_notify(current_schema() || '_outbox', '')")


class OutboxRelay:
    """Publishes committed outbox rows to Kafka in id order, then marks them sent.

    Several replicas may run: a transaction-scoped advisory lock lets one relay publish at a
    time, which keeps the per-key order that SKIP LOCKED alone would give up between batches.

    A broker that restarts empty has lost the topics, and may still acknowledge records sent to
    them, or to partitions a topic created again lacks (Tansu 0.6 does, and shows the former only
    if a later record reaches their partition, the latter never). So a batch is sent only when
    fresh metadata shows its topics, and marked sent only when it still shows them and every
    partition that acknowledged; after any failure `ensure_topics` runs and the producer's
    metadata is refreshed before the next batch.
    """

    def __init__(
        self,
        *,
        pool: Pool,
        dsn: str,
        producer: AIOKafkaProducer,
        schema: str,
        topic_name: Callable[[Topic], str],
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        retention_seconds: float = 86_400.0,
        ensure_topics: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.pool = pool
        self.dsn = dsn
        self.producer = producer
        self.schema = check_schema_name(schema)
        self.topic_name = topic_name
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.retention_seconds = retention_seconds
        self.ensure_topics = ensure_topics
        self._topics_checked = True  # the service created them at start
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_purge = 0.0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.schema}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_listener()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        backoff = 0.0
        while True:
            # Cleared before publishing: a NOTIFY that arrives during the publish must wake the next round.
            self._wake.clear()
            try:
                await self._ensure_listener()
                if not self._topics_checked:
                    await renew_topics(self.producer, self.ensure_topics)
                self._topics_checked = True
                published = await self.publish_batch()
                await self._purge_sent_now_and_then()
                backoff = 0.0
                if published == self.batch_size:
                    continue  # more is waiting: do not sleep
            except (KafkaError, *UNAVAILABLE_ERRORS, TimeoutError) as exc:
                OUTBOX_PUBLISH_FAILURES.inc()
                self._topics_checked = False
                backoff = min(max(backoff * 2, 0.5), 30.0)
                log.warning("outbox relay cannot publish; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(backoff)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def publish_batch(self) -> int:
        """Publish the oldest unsent rows; returns how many were published (0 if another relay holds the lock)."""
        async with self.pool.acquire() as conn, conn.transaction():
            lock_key = f"bothways.outbox.{self.schema}"
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", lock_key):
                return 0
            rows = await conn.fetch(CLAIM_BATCH, self.batch_size)
            if not rows:
                return 0
            topics = {self.topic_name(Topic(row["topic"])) for row in rows}
            # Nothing goes in flight to a broker that is away or lost the topics: the producer would
            # hold the records and hand them to an empty broker the moment it is back.
            await self._confirm_topics(topics)
            sends = [
                await self.producer.send(
                    self.topic_name(Topic(row["topic"])),
                    value=row["value"],
                    key=row["key"],
                    headers=[(name, value.encode()) for name, value in json.loads(row["headers"])],
                )
                for row in rows
            ]
            # All acknowledged before any is marked sent; a crash in between republishes, and
            # consumers drop the duplicates by event id.
            acked = {sent.topic_partition for sent in await asyncio.gather(*sends)}
            # A broker that restarted empty meanwhile may have acknowledged records it has no topic,
            # or no partition, for.
            await self._confirm_topics(topics, acked=acked)
            await conn.execute(MARK_SENT, [row["id"] for row in rows])
        for topic, count in Counter(row["topic"] for row in rows).items():
            OUTBOX_PUBLISHED.labels(topic).inc(count)
        return len(rows)

    async def _confirm_topics(self, names: set[str], *, acked: Iterable[TopicPartition] = ()) -> None:
        """Fail the batch (nothing is marked sent) when the broker lacks a topic or partition it went to."""
        if missing := await missing_topics(self.producer, names, acked=acked):
            # The run loop renews the topics and publishes the batch again.
            raise KafkaError(f"the broker lacks {sorted(missing)}")

    async def _purge_sent_now_and_then(self) -> None:
        if time.monotonic() - self._last_purge < 60:
            return
        self._last_purge = time.monotonic()
        await self.pool.execute(PURGE_SENT, self.retention_seconds)

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.add_listener(channel(self.schema), lambda *_: self._wake.set())
        except BaseException:
            conn.terminate()  # also when stop() cancels us right here: never leave it open
            raise
        self._listener = conn

    async def _close_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            with contextlib.suppress(*UNAVAILABLE_ERRORS):
                await self._listener.close(timeout=2)
        self._listener = None
