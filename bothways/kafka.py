"""Kafka plumbing: the producer, topic creation, and the consumer runner (inbox, retries, dead letters)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, KafkaError

from bothways.db import CONFLICT_ERRORS, UNAVAILABLE_ERRORS, Connection, Pool, conflict_pause
from bothways.events import Envelope, Event, Topic, UndecodableRecord, decode_record
from bothways.metrics import CONSUMER_EVENTS, CONSUMER_FAILURES, CONSUMER_LAG
from bothways.settings import ServiceSettings

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
# Failures of the database, not of the record at hand: the runner runs the transaction again.
_NOT_THE_RECORDS_FAULT: tuple[type[Exception], ...] = (*UNAVAILABLE_ERRORS, *CONFLICT_ERRORS)

# A handler applies one event inside the runner's transaction: (connection, event, envelope).
Handler = Callable[[Connection, Any, Envelope], Awaitable[None]]
Handlers = Mapping[type[Event], Handler]
# A batch handler applies every new event of its types in one partition batch, in offset order, inside
# the same transaction: (connection, [(event, envelope), ...]). It is found by the event's class or any
# base class (e.g. SlaTimerEvent for every SLA event), so one handler sees a family's events in order.
BatchHandler = Callable[[Connection, Sequence[tuple[Any, Envelope]]], Awaitable[None]]
BatchHandlers = Mapping[type[Event], BatchHandler]

INSERT_INBOX = """
INSERT INTO inbox (event_id, topic) SELECT unnest($1::text[]), $2
ON CONFLICT DO NOTHING RETURNING event_id
"""


def create_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    """A producer that waits for all in-sync replicas; idempotent wherever the broker supports it."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=settings.kafka_idempotent_producer,
        linger_ms=2,
        request_timeout_ms=15_000,
        client_id=settings.kafka_namespace or "bothways",
    )


async def ensure_topics(bootstrap_servers: str, names: Iterable[str], *, partitions: int) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15_000)
    await admin.start()
    try:
        wanted = sorted(set(names) - set(await admin.list_topics()))
        if not wanted:
            return
        response = await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in wanted]
        )
        for topic, code, message in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise KafkaError(f"cannot create topic {topic}: {code} {message}")
    finally:
        await admin.close()


async def missing_topics(
    producer: AIOKafkaProducer, names: Iterable[str], *, acked: Iterable[TopicPartition] = ()
) -> set[str]:
    """The topics, and the partitions that acknowledged, that fresh metadata from the broker lacks.

    A broker that restarted empty (Tansu 0.6 is memory-only) acknowledges records produced to topics
    and partitions it no longer has, and does not show them: a record to a lost topic appears only
    once the topic is created again and a later record reaches the same partition; one to a partition
    the topic does not have, never.
    """
    cluster = await producer.client.fetch_all_metadata()
    known: set[str] = cluster.topics()
    return (set(names) - known) | {
        f"{tp.topic}[{tp.partition}]"
        for tp in acked
        if tp.partition not in (cluster.partitions_for_topic(tp.topic) or ())
    }


async def renew_topics(
    producer: AIOKafkaProducer, create_missing: Callable[[], Awaitable[None]] | None
) -> None:
    """After a broker lost topics: create the missing ones, then make the producer send by the
    broker's view of them (what it knew of a lost topic may name partitions the new one lacks)."""
    if create_missing is not None:
        await create_missing()
    await producer.client.force_metadata_update()


@dataclass(frozen=True)
class Decoded:
    record: ConsumerRecord[bytes, bytes]
    envelope: Envelope | None
    error: str | None


class RecordFailed(Exception):
    """Raised around a handler failure so the runner knows which record caused it."""


class ConsumerRunner:
    """Consumes topics in batches and applies each event exactly once in effect.

    Per partition batch: one transaction records the event ids in `inbox` (duplicates are
    skipped) and applies the handlers; offsets are committed after the transaction commits.
    Per-event handlers run first, in offset order; then each batch handler gets its events at
    once (one statement per batch instead of one per event), so a service should route one
    family of events to one kind of handler, never both.
    If the batch fails, its records are retried one by one with backoff, and a record that
    keeps failing goes to the dead-letter topic. A database outage is not a record failure:
    the runner waits for the database and retries without committing anything. Nor is a
    transaction conflict (a deadlock, a serialization failure): the same transaction runs again.
    """

    def __init__(
        self,
        *,
        settings: ServiceSettings,
        service: str,
        topics: Sequence[Topic],
        pool: Pool,
        handlers: Handlers,
        dead_letters: AIOKafkaProducer,
        batch_handlers: BatchHandlers | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.topics = [settings.topic(t) for t in topics]
        self.pool = pool
        self.handlers = handlers
        self.batch_handlers = batch_handlers or {}
        self.dead_letters = dead_letters
        self.dead_letter_topic = settings.topic(Topic.DEADLETTER)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=self.settings.consumer_group(self.service),
            client_id=f"{self.settings.kafka_namespace}{self.service}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.consumer_batch_size,
            session_timeout_ms=self.settings.consumer_session_timeout_ms,
            fetch_max_wait_ms=self.settings.consumer_fetch_max_wait_ms,
            heartbeat_interval_ms=self.settings.consumer_session_timeout_ms // 4,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.service}")

    async def stop(self, *, grace_seconds: float = 10.0) -> None:
        """Finish the batch in hand (or abandon it uncommitted after the grace period), then leave the group."""
        self._stopping.set()
        if self._task:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace_seconds)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        if self._consumer:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while not self._stopping.is_set():
            try:
                batch = await self._consumer.getmany(
                    timeout_ms=200, max_records=self.settings.consumer_batch_size
                )
                for tp, records in batch.items():
                    if self._stopping.is_set():
                        self._consumer.seek(tp, records[0].offset)
                        continue
                    await self._process_partition(tp, records)
            except KafkaError as exc:
                log.warning("consumer cannot reach the broker; retrying", extra={"error": repr(exc)})
                await self._sleep(1.0)

    async def _process_partition(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        assert self._consumer is not None
        decoded = [_decode(record) for record in records]
        try:
            await self._apply_or_isolate(tp.topic, decoded)
        except _Abandoned:
            # Nothing after the last commit is kept: read the batch again once running resumes.
            self._consumer.seek(tp, records[0].offset)
            return
        next_offset = records[-1].offset + 1
        try:
            await self._consumer.commit({tp: next_offset})
        except CommitFailedError as exc:
            # The partition moved to another member during a rebalance; it re-reads from the
            # last commit and the inbox drops what was already applied.
            log.warning(
                "offset commit rejected after rebalance", extra={"topic": tp.topic, "error": repr(exc)}
            )
            return
        highwater = self._consumer.highwater(tp)
        if highwater is not None:
            CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(highwater - next_offset, 0))

    async def _apply_or_isolate(self, topic: str, decoded: list[Decoded]) -> None:
        for item in decoded:
            if item.error is not None:
                await self._dead_letter(item.record, item.error, attempts=1)
        valid = [item for item in decoded if item.envelope is not None]
        if not valid:
            return
        try:
            await self._until_committed(lambda: self._apply(topic, valid))
            return
        except RecordFailed:
            pass  # isolate the failing record below, one transaction per record
        for item in valid:
            await self._apply_with_retries(topic, item)

    async def _apply_with_retries(self, topic: str, item: Decoded) -> None:
        for attempt in range(1, self.settings.consumer_max_attempts + 1):
            try:
                await self._until_committed(lambda: self._apply(topic, [item]))
                return
            except RecordFailed as failure:
                error = repr(failure.__cause__)
                CONSUMER_FAILURES.labels(topic).inc()
                log.warning(
                    "event failed",
                    extra={"event_id": _event_id(item), "topic": topic, "attempt": attempt, "error": error},
                )
                if attempt == self.settings.consumer_max_attempts:
                    await self._dead_letter(item.record, error, attempts=attempt)
                    return
                await self._sleep(self.settings.consumer_retry_backoff_seconds * 2 ** (attempt - 1))

    async def _apply(self, topic: str, items: list[Decoded]) -> None:
        """One transaction: record the ids in the inbox, apply the events that are new."""
        envelopes = [item.envelope for item in items if item.envelope is not None]
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = {
                row["event_id"] for row in await conn.fetch(INSERT_INBOX, [e.id for e in envelopes], topic)
            }
            outcomes = {"applied": 0, "duplicate": 0, "ignored": 0}
            batches: dict[BatchHandler, list[tuple[Any, Envelope]]] = {}
            for envelope in envelopes:
                if envelope.id not in fresh:
                    outcomes["duplicate"] += 1
                    continue
                fresh.discard(envelope.id)  # the same id twice in one batch applies once
                handler = self.handlers.get(type(envelope.data))
                if handler is None:
                    batch_handler = self._batch_handler_for(type(envelope.data))
                    if batch_handler is None:
                        outcomes["ignored"] += 1
                    else:
                        batches.setdefault(batch_handler, []).append((envelope.data, envelope))
                    continue
                try:
                    await handler(conn, envelope.data, envelope)
                except _NOT_THE_RECORDS_FAULT:
                    raise
                except Exception as exc:
                    raise RecordFailed(envelope.id) from exc
                outcomes["applied"] += 1
            for batch_handler, batch in batches.items():
                try:
                    await batch_handler(conn, batch)
                except _NOT_THE_RECORDS_FAULT:
                    raise
                except Exception as exc:
                    # Which record failed is found by retrying the records one by one.
                    raise RecordFailed(batch[0][1].id) from exc
                outcomes["applied"] += len(batch)
        for outcome, count in outcomes.items():
            if count:
                CONSUMER_EVENTS.labels(topic, outcome).inc(count)

    def _batch_handler_for(self, event_type: type[Event]) -> BatchHandler | None:
        """The batch handler registered for the event's class or the nearest base class."""
        for cls in event_type.__mro__:
            if cls in self.batch_handlers:
                return self.batch_handlers[cls]
        return None

    async def _until_committed(self, attempt: Callable[[], Awaitable[None]]) -> None:
        """Run a transaction until it commits, through database outages and transaction conflicts."""
        delay = 0.5
        while True:
            try:
                await attempt()
                return
            except CONFLICT_ERRORS as exc:
                if self._stopping.is_set():
                    raise _Abandoned from exc
                log.warning("transaction conflict; retrying", extra={"error": repr(exc)})
                await self._sleep(conflict_pause())
            except UNAVAILABLE_ERRORS as exc:
                if self._stopping.is_set():
                    raise _Abandoned from exc
                log.warning("database unavailable; consumer paused", extra={"error": repr(exc)})
                await self._sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], error: str, *, attempts: int) -> None:
        """Park a record on the dead-letter topic with its origin and error; acknowledged before moving on."""
        headers = [
            *list(record.headers or ()),
            ("dlq_error", error[:4000].encode()),
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
            ("dlq_consumer_group", self.settings.consumer_group(self.service).encode()),
            ("dlq_attempts", str(attempts).encode()),
        ]
        while True:
            try:
                await self._park(record, headers)
                break
            except KafkaError as exc:
                if self._stopping.is_set():
                    raise _Abandoned from exc
                log.warning("dead-letter topic unreachable; retrying", extra={"error": repr(exc)})
                await self._sleep(1.0)
        CONSUMER_EVENTS.labels(record.topic, "dead_lettered").inc()
        log.error(
            "record dead-lettered",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "error": error,
            },
        )

    async def _park(self, record: ConsumerRecord[bytes, bytes], headers: list[tuple[str, bytes]]) -> None:
        """Send a record to the dead-letter topic; parked only once fresh metadata shows where it went."""
        topics = [self.dead_letter_topic]
        if await missing_topics(self.dead_letters, topics):
            # Lost in an empty broker restart; a service without an outbox relay (reporting) has
            # nothing else that creates it again.
            log.warning("dead-letter topic lost by the broker; creating it", extra={"topic": topics[0]})
            await self._renew_dead_letter_topic()
        sent = await self.dead_letters.send_and_wait(
            self.dead_letter_topic, value=record.value, key=record.key, headers=headers
        )
        if missing := await missing_topics(self.dead_letters, topics, acked=[sent.topic_partition]):
            await self._renew_dead_letter_topic()
            raise KafkaError(f"the broker acknowledged a dead letter, then lacked {sorted(missing)}")

    async def _renew_dead_letter_topic(self) -> None:
        await renew_topics(
            self.dead_letters,
            lambda: ensure_topics(
                self.settings.kafka_bootstrap_servers,
                [self.dead_letter_topic],
                partitions=self.settings.kafka_topic_partitions,
            ),
        )

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


class _Abandoned(Exception):
    """The runner is stopping while the database or broker is away: keep nothing, commit nothing."""


def _decode(record: ConsumerRecord[bytes, bytes]) -> Decoded:
    try:
        return Decoded(record, decode_record(record.headers, record.value), None)
    except UndecodableRecord as exc:
        return Decoded(record, None, str(exc))


def _event_id(item: Decoded) -> str | None:
    return item.envelope.id if item.envelope else None
