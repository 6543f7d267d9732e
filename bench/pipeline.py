"""Pipeline benchmark: signed webhooks into ingest, end-to-end latency to sla, against raw Kafka rates.

Run: .venv/bin/python bench/pipeline.py [--webhooks N] [--concurrency C] [--offered-rate R]

It brings up its own stack (a Tansu broker or KAFKA_BOOTSTRAP_SERVERS, a fresh database on
DATABASE_URL's server, ingest, sla and survey as real processes), measures, prints a table, writes
bench/results/pipeline.json, and tears everything down. Linux only: CPU time is read from /proc.

Phases: the raw aiokafka baseline (nothing else on the broker); the live pipeline (N webhooks offered
at a fixed R per second, sla and survey consuming as they arrive: end-to-end latency); a backlog
drain (sla and survey stopped, N more webhooks, then sla started alone, then survey alone), because a
live consumer can only go as fast as ingest feeds it. Each service's peak RSS (VmHWM) is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import platform
import secrets
import shlex
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from bothways import devstack
from bothways.cli import ensure_database, migrate_all
from bothways.events import deterministic_id, envelope_for
from bothways.kafka import ensure_topics
from bothways.settings import ServiceSettings
from bothways.signing import signed_headers
from services.ingest import generic

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "pipeline.json"
PARTITIONS = 3
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# When each consumer's batch transactions recorded the events (inbox.processed_at), for its drain rate.
PROCESSED_AT_SQL = (
    "SELECT extract(epoch FROM processed_at) FROM {schema}.inbox WHERE event_id = ANY($1::text[]) ORDER BY 1"
)
COUNT_PROCESSED_SQL = "SELECT count(*) FROM {schema}.inbox WHERE event_id = ANY($1::text[])"
# Per event, on the database's clock: the relay's transaction began (outbox.sent_at), sla's batch
# transaction began (inbox.processed_at), sla inserted the row (ticket_event.recorded_at).
STAGES_SQL = """
SELECT te.event_id, extract(epoch FROM o.sent_at) AS relayed, extract(epoch FROM i.processed_at) AS batched,
       extract(epoch FROM te.recorded_at) AS recorded
FROM sla.ticket_event te
JOIN sla.inbox i USING (event_id)
JOIN ingest.outbox o USING (event_id)
WHERE te.event_id = ANY($1::text[])
"""
RECORDED_AT_SQL = (
    "SELECT extract(epoch FROM recorded_at) FROM sla.ticket_event WHERE event_id = ANY($1::text[]) ORDER BY 1"
)
COUNT_RECORDED_SQL = "SELECT count(*) FROM sla.ticket_event WHERE event_id = ANY($1::text[])"
BACKENDS_SQL = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
# sla's batches (one transaction per partition batch): how much of the drain is spent inside them.
BATCHES_SQL = """
WITH batch AS (
    SELECT i.processed_at AS began, count(*) AS events, max(te.recorded_at) AS last_insert
    FROM sla.ticket_event te JOIN sla.inbox i USING (event_id)
    WHERE te.event_id = ANY($1::text[])
    GROUP BY i.processed_at
)
SELECT count(*) AS batches, avg(events)::float AS mean_events,
       extract(epoch FROM sum(last_insert - began))::float AS inside,
       extract(epoch FROM max(last_insert) - min(began))::float AS total
FROM batch
"""


class BenchFailed(Exception):
    """The benchmark could not measure what it promised; the message says what went wrong."""


@dataclass(frozen=True)
class Record:
    """One Kafka record as ingest publishes it: key, CloudEvents headers, JSON value."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass
class Posting:
    """What the load generator saw: the 202 time of each event, and each request's duration."""

    accepted_at: dict[str, float] = field(default_factory=dict)
    request_seconds: list[float] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def rate(self) -> float:
        return len(self.accepted_at) / (self.finished - self.started)


@dataclass
class Stack:
    """The parts the benchmark runs against, and the service processes it started."""

    bootstrap: str
    database_url: str
    secret: str
    logs: Path
    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    services: dict[str, devstack.ServiceProcess] = field(default_factory=dict)
    # Each service's high-water mark of resident memory over its processes so far, in MiB.
    peak_rss_mib: dict[str, float] = field(default_factory=dict)

    def note_peak_rss(self, name: str) -> None:
        pid = self.services[name].process.pid
        self.peak_rss_mib[name] = max(self.peak_rss_mib.get(name, 0.0), peak_rss_mib(pid))


def peak_rss_mib(pid: int) -> float:
    """A process's high-water mark of resident memory (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise BenchFailed(f"no VmHWM for process {pid}")


# --- inputs -------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--webhooks", type=int, default=5000, help="webhooks per phase (default 5000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument(
        "--offered-rate", type=float, default=100.0, help="webhooks/s offered in the live phase (default 100)"
    )
    parser.add_argument(
        "--settle-timeout", type=float, default=120.0, help="seconds to wait for sla after the last 202"
    )
    args = parser.parse_args(argv)
    if args.webhooks < 2 or args.concurrency < 1:
        parser.error("--webhooks must be at least 2 and --concurrency at least 1")
    return args


def ticket_body(external_id: str) -> dict[str, Any]:
    """A canonical ticket as the generic webhook takes it (the shape of tests.support.ticket_body)."""
    created = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    return {
        "source": "generic",
        "external_id": external_id,
        "occurred_at": (created + timedelta(minutes=5)).isoformat(),
        "created_at": created.isoformat(),
        "change": "created",
        "status": "Open",
        "status_category": "open",
        "priority": "P3",
        "business_service": "email",
        "title": "Cannot send mail",
    }


def sample_records(count: int) -> list[Record]:
    """Records built exactly as ingest builds them, for the raw Kafka baseline."""
    records = []
    for i in range(count):
        ticket = generic.normalize(ticket_body(f"raw-{i}"))[0]
        envelope = envelope_for(ticket, event_id=deterministic_id("bench", str(i)), source="/bothways/bench")
        records.append(Record(envelope.key_bytes(), envelope.value_bytes(), envelope.headers()))
    return records


def service_env(stack: Stack, namespace: str) -> dict[str, str]:
    """The environment the service processes run with (as `service_env` in tests/conftest.py)."""
    return {
        "BOTHWAYS_DATABASE_URL": stack.database_url,
        "BOTHWAYS_KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "BOTHWAYS_KAFKA_IDEMPOTENT_PRODUCER": "false",
        "BOTHWAYS_KAFKA_NAMESPACE": namespace,
        "BOTHWAYS_KAFKA_TOPIC_PARTITIONS": str(PARTITIONS),
        "BOTHWAYS_API_KEYS": json.dumps({stack.api_key: ["read"]}),
        "BOTHWAYS_GENERIC_WEBHOOK_SECRETS": json.dumps([stack.secret]),
        "BOTHWAYS_SURVEY_TOKEN_SECRETS": json.dumps([stack.secret * 2]),
        "BOTHWAYS_CONSUMER_SESSION_TIMEOUT_MS": "2000",
        "BOTHWAYS_LOG_LEVEL": "WARNING",
    }


# --- the stack ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A database of this run's own, migrated, dropped at the end."""
    name = f"bw_bench_{uuid.uuid4().hex[:12]}"
    url = asyncio.run(ensure_database(server_url, name))
    try:
        asyncio.run(migrate_all(url))
        yield url
    finally:
        asyncio.run(drop_database(server_url, name))


async def drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.contextmanager
def stopping_services(stack: Stack) -> Iterator[None]:
    """Whatever service processes the block starts are stopped when it ends, newest first."""
    try:
        yield
    finally:
        for name, service in reversed(stack.services.items()):
            with contextlib.suppress(OSError, BenchFailed):
                stack.note_peak_rss(name)
            devstack.stop_process(service.process)


async def start(stack: Stack, name: str, env: Mapping[str, str]) -> devstack.ServiceProcess:
    """Start a service process on a free port and wait until it is ready."""
    log_path = stack.logs / f"{name}.log"
    service = devstack.start_service(name, port=devstack.free_port(), env=env, log_path=log_path)
    stack.services[name] = service
    await wait_ready(service, log_path)
    return service


def stop(stack: Stack, name: str) -> None:
    stack.note_peak_rss(name)
    devstack.stop_process(stack.services.pop(name).process)


async def wait_ready(service: devstack.ServiceProcess, log_path: Path, within: float = 60.0) -> None:
    """Poll /readyz until it answers 200; fail with the log's path if the process dies or stalls."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=service.url, timeout=1) as client:
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise BenchFailed(f"{service.name} exited with {service.process.returncode}; see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise BenchFailed(f"{service.name} is not ready after {within:.0f} s; see {log_path}")


# --- the pipeline -------------------------------------------------------------------------------------


async def post_webhooks(
    url: str, secret: str, *, count: int, concurrency: int, prefix: str, rate: float | None = None
) -> Posting:
    """Post `count` signed tickets from `concurrency` senders; every one must be a fresh 202.

    With a `rate`, webhook i is sent no earlier than i / rate seconds after the start (a fixed offered
    load, as long as the senders keep up); without, as fast as the senders go."""
    posting = Posting()
    pending = iter(range(count))  # shared by the senders: each index is taken once
    began = time.monotonic()

    async def sender() -> None:
        # A client per sender, like independent platforms. One shared pool of 32 connections doubled
        # the client's CPU per request, and twice in a run a request failed with httpx.ReadError (most
        # likely a connection left idle past uvicorn's 5 s keep-alive, closed as it was reused).
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for i in pending:
                if rate:
                    await asyncio.sleep(began + i / rate - time.monotonic())
                await post_one(client, secret, external_id=f"{prefix}{i}", posting=posting)

    posting.started = time.time()
    try:
        async with asyncio.TaskGroup() as senders:
            for _ in range(concurrency):
                senders.create_task(sender())
    except* BenchFailed as failed:
        raise failed.exceptions[0] from None
    posting.finished = time.time()
    return posting


async def post_one(client: httpx.AsyncClient, secret: str, *, external_id: str, posting: Posting) -> None:
    """One signed generic webhook; records when its 202 arrived under its event id."""
    body = json.dumps(ticket_body(external_id)).encode()
    headers = signed_headers(secret, msg_id=f"msg_{external_id}", timestamp=int(time.time()), body=body)
    sent = time.perf_counter()
    try:
        response = await client.post(
            "/webhooks/generic", content=body, headers={"content-type": "application/json", **headers}
        )
    except httpx.HTTPError as exc:
        raise BenchFailed(f"webhook {external_id}: {exc!r} after {time.perf_counter() - sent:.3f} s") from exc
    accepted_at = time.time()
    if response.status_code != 202 or response.json()["duplicate"]:
        raise BenchFailed(f"webhook {external_id}: {response.status_code} {response.text[:300]}")
    posting.request_seconds.append(time.perf_counter() - sent)
    posting.accepted_at[response.json()["event_ids"][0]] = accepted_at


async def wait_recorded(conn: asyncpg.Connection, event_ids: list[str], *, within: float) -> None:
    """Block until sla recorded every event, or fail saying how many it got."""
    deadline = time.monotonic() + within
    recorded = 0
    while time.monotonic() < deadline:
        recorded = await conn.fetchval(COUNT_RECORDED_SQL, event_ids)
        if recorded == len(event_ids):
            return
        await asyncio.sleep(0.2)
    raise BenchFailed(f"sla recorded {recorded} of {len(event_ids)} events within {within:.0f} s")


async def event_stages(conn: asyncpg.Connection, posting: Posting) -> dict[str, list[float]]:
    """Per event, in seconds: 202 to relay, relay to sla batch, batch start to insert, and 202 to insert."""
    stages: dict[str, list[float]] = {"relay": [], "transport": [], "in_batch": [], "end_to_end": []}
    for row in await conn.fetch(STAGES_SQL, list(posting.accepted_at)):
        accepted = posting.accepted_at[row["event_id"]]
        relayed, batched, recorded = float(row["relayed"]), float(row["batched"]), float(row["recorded"])
        stages["relay"].append(relayed - accepted)
        stages["transport"].append(batched - relayed)
        stages["in_batch"].append(recorded - batched)
        stages["end_to_end"].append(recorded - accepted)
    return stages


async def webhook_time_in_app(service: devstack.ServiceProcess, api_key: str) -> tuple[float, float]:
    """(seconds, requests) so far of webhook requests inside the app, from its request histogram."""
    async with httpx.AsyncClient(base_url=service.url, timeout=5) as client:
        response = await client.get("/metrics", headers={"authorization": f"Bearer {api_key}"})
    response.raise_for_status()
    totals = {"_sum": 0.0, "_count": 0.0}
    for family in text_string_to_metric_families(response.text):
        if family.name == "bothways_http_request_duration_seconds":
            for sample in family.samples:
                suffix = sample.name.removeprefix(family.name)
                if suffix in totals and sample.labels["route"].startswith("/webhooks/"):
                    totals[suffix] += sample.value
    return totals["_sum"], totals["_count"]


async def recorded_rate(conn: asyncpg.Connection, event_ids: list[str]) -> tuple[float, float]:
    """Events recorded per second between the first and the last recorded_at, and when the last was."""
    times = [float(t) for (t,) in await conn.fetch(RECORDED_AT_SQL, event_ids)]
    return (len(times) - 1) / (times[-1] - times[0]), times[-1]


async def run_live(stack: Stack, conn: asyncpg.Connection, args: argparse.Namespace) -> dict[str, Any]:
    """N webhooks with sla consuming as they arrive: ingest rate, end-to-end latency, CPU per process."""
    ingest = stack.services["ingest"]
    cpu_before = await cpu_snapshot(stack, conn)
    in_app_before = await webhook_time_in_app(ingest, stack.api_key)
    posting = await post_webhooks(
        ingest.url,
        stack.secret,
        count=args.webhooks,
        concurrency=args.concurrency,
        prefix="live-",
        rate=args.offered_rate,
    )
    in_app = await webhook_time_in_app(ingest, stack.api_key)
    event_ids = list(posting.accepted_at)
    await wait_recorded(conn, event_ids, within=args.settle_timeout)
    await wait_processed(conn, "survey", event_ids, within=args.settle_timeout)
    cpu_used = cpu_delta(cpu_before, await cpu_snapshot(stack, conn))
    stages = await event_stages(conn, posting)
    sla_rate, last_recorded = await recorded_rate(conn, event_ids)
    return {
        "ingest_accepted_per_s": posting.rate(),
        "ingest_request_ms": summary_ms(posting.request_seconds),
        "ingest_request_mean_ms": statistics.fmean(posting.request_seconds) * 1000,
        "ingest_in_app_mean_ms": (in_app[0] - in_app_before[0]) / (in_app[1] - in_app_before[1]) * 1000,
        "end_to_end_ms": summary_ms(stages.pop("end_to_end")),
        "stages_ms": {name: summary_ms(values) for name, values in stages.items()},
        "sla_live_recorded_per_s": sla_rate,
        "live_phase_seconds": last_recorded - posting.started,
        "cpu_seconds": cpu_used,
    }


async def wait_processed(
    conn: asyncpg.Connection, schema: str, event_ids: list[str], *, within: float
) -> None:
    """Block until a consumer's inbox holds every event, or fail saying how many it got."""
    deadline = time.monotonic() + within
    processed = 0
    while time.monotonic() < deadline:
        processed = await conn.fetchval(COUNT_PROCESSED_SQL.format(schema=schema), event_ids)
        if processed == len(event_ids):
            return
        await asyncio.sleep(0.2)
    raise BenchFailed(f"{schema} processed {processed} of {len(event_ids)} events within {within:.0f} s")


async def processed_rate(conn: asyncpg.Connection, schema: str, event_ids: list[str]) -> float:
    """Events per second between a consumer's first and last batch transaction over these events."""
    times = [float(t) for (t,) in await conn.fetch(PROCESSED_AT_SQL.format(schema=schema), event_ids)]
    return (len(times) - 1) / (times[-1] - times[0])


async def run_backlog(
    stack: Stack, conn: asyncpg.Connection, env: Mapping[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    """N webhooks while sla and survey are stopped, then each drains them alone: its rate when not
    waiting for input (one after the other, so neither shares the 2 cores with the other)."""
    stop(stack, "sla")
    stop(stack, "survey")
    posting = await post_webhooks(
        stack.services["ingest"].url,
        stack.secret,
        count=args.webhooks,
        concurrency=args.concurrency,
        prefix="backlog-",
    )
    await start(stack, "sla", env)
    event_ids = list(posting.accepted_at)
    await wait_recorded(conn, event_ids, within=args.settle_timeout)
    rate, _ = await recorded_rate(conn, event_ids)
    batches = await conn.fetchrow(BATCHES_SQL, event_ids)
    assert batches is not None  # an aggregate always has a row
    await start(stack, "survey", env)
    await wait_processed(conn, "survey", event_ids, within=args.settle_timeout)
    survey_rate = await processed_rate(conn, "survey", event_ids)
    return {
        "survey_backlog_processed_per_s": survey_rate,
        "sla_backlog_recorded_per_s": rate,
        "sla_backlog_batches": batches["batches"],
        "sla_backlog_mean_batch_events": batches["mean_events"],
        "sla_backlog_share_inside_transactions": batches["inside"] / batches["total"],
        "sla_backlog_ms_per_event_inside_transactions": batches["inside"] / len(event_ids) * 1000,
        "ingest_accepted_per_s_backlog_phase": posting.rate(),
    }


async def run_pipeline(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """Start ingest and sla, warm up until sla has joined its group, then the live and backlog phases."""
    env = service_env(stack, namespace=f"bench{uuid.uuid4().hex[:8]}.")
    ingest = await start(stack, "ingest", env)
    await start(stack, "sla", env)
    await start(stack, "survey", env)
    conn = await asyncpg.connect(stack.database_url)
    try:
        warmup = await post_webhooks(
            ingest.url, stack.secret, count=args.concurrency, concurrency=args.concurrency, prefix="warmup-"
        )
        await wait_recorded(conn, list(warmup.accepted_at), within=60)
        await wait_processed(conn, "survey", list(warmup.accepted_at), within=60)
        live = await run_live(stack, conn, args)
        backlog = await run_backlog(stack, conn, env, args)
    finally:
        await conn.close()
    return {**live, **backlog}


# --- the raw Kafka baseline ---------------------------------------------------------------------------


def raw_producer(bootstrap: str) -> AIOKafkaProducer:
    """A producer set up as bothways.kafka.create_producer, idempotence off (as against Tansu)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=2,
        request_timeout_ms=15_000,
    )


def raw_consumer(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """A fresh consumer group set up as bothways.kafka.ConsumerRunner's consumer."""
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}.raw",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
        fetch_max_wait_ms=ServiceSettings.model_fields["consumer_fetch_max_wait_ms"].default,
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
    )


async def raw_produce(bootstrap: str, topic: str, records: Sequence[Record]) -> float:
    """Records/s of a plain aiokafka producer: send all, then wait for every acknowledgement."""
    producer = raw_producer(bootstrap)
    await producer.start()
    try:
        started = time.perf_counter()
        sends = [await producer.send(topic, value=r.value, key=r.key, headers=r.headers) for r in records]
        await asyncio.gather(*sends)
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def raw_consume(bootstrap: str, topic: str, count: int, within: float = 60.0) -> float:
    """Records/s read back with getmany and a manual commit per partition batch.

    Timed from the first batch (the group join is not throughput), which is then left out of the count."""
    consumer = raw_consumer(bootstrap, topic)
    await consumer.start()
    try:
        seen, first_batch, started = 0, 0, 0.0
        deadline = time.monotonic() + within
        while seen < count and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=200, max_records=500)).items():
                await consumer.commit({tp: records[-1].offset + 1})
                if not started:
                    started, first_batch = time.perf_counter(), len(records)
                seen += len(records)
        if seen < count:
            raise BenchFailed(f"the raw consumer read {seen} of {count} records within {within:.0f} s")
        return (seen - first_batch) / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def raw_latency(bootstrap: str, topic: str, samples: int = 100) -> dict[str, float]:
    """Produce-to-consume latency of single records, one every 20 ms, with the same consumer settings."""
    consumer, producer = raw_consumer(bootstrap, topic), raw_producer(bootstrap)
    await consumer.start()
    await producer.start()
    try:
        while not consumer.assignment():  # joined the group: what follows is steady state
            await consumer.getmany(timeout_ms=100)
        reading = asyncio.create_task(read_latencies(consumer, samples))
        for i in range(samples):
            await producer.send_and_wait(topic, str(time.time()).encode(), key=str(i).encode())
            await asyncio.sleep(0.02)
        return summary_ms(await asyncio.wait_for(reading, 30))
    finally:
        await producer.stop()
        await consumer.stop()


async def read_latencies(consumer: AIOKafkaConsumer, samples: int) -> list[float]:
    """Seconds from each record's send time (its value) to the getmany that returned it."""
    latencies: list[float] = []
    while len(latencies) < samples:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            arrived = time.time()
            latencies += [arrived - float(r.value) for r in records]
    return latencies


async def run_baseline(bootstrap: str, count: int) -> dict[str, Any]:
    """Raw produce and consume rates of `count` ingest-sized records, and single-record latency."""
    topics = [f"bench{uuid.uuid4().hex[:8]}.raw.v1", f"bench{uuid.uuid4().hex[:8]}.latency.v1"]
    await ensure_topics(bootstrap, topics, partitions=PARTITIONS)
    records = sample_records(count)
    produce = await raw_produce(bootstrap, topics[0], records)
    consume = await raw_consume(bootstrap, topics[0], count)
    return {
        "raw_produce_per_s": produce,
        "raw_consume_per_s": consume,
        "raw_latency_ms": await raw_latency(bootstrap, topics[1]),
        "record_bytes": sum(len(r.value) + len(r.key) + sum(len(v) for _, v in r.headers) for r in records)
        / count,
    }


# --- CPU accounting -----------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time spent on anything but idle and iowait, all cores together."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS


def child_pids() -> list[int]:
    """This process's direct children (the services and, unless KAFKA_BOOTSTRAP_SERVERS is set, the broker)."""
    me, children = str(os.getpid()), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if stat.read_text().rpartition(")")[2].split()[1] == me:
                children.append(int(stat.parent.name))
    return children


async def cpu_snapshot(stack: Stack, conn: asyncpg.Connection) -> dict[str, float]:
    """CPU seconds so far of the bench, each service, the broker, this database's backends, the machine."""
    service_pids = {s.process.pid: s.name for s in stack.services.values()}
    snapshot = {"bench client": process_cpu_seconds(os.getpid()), "machine": machine_busy_seconds()}
    for pid in child_pids():
        snapshot[service_pids.get(pid, "broker")] = process_cpu_seconds(pid)
    snapshot["postgres backends"] = 0.0
    for row in await conn.fetch(BACKENDS_SQL):
        with contextlib.suppress(OSError):  # gone since, or a server on another machine
            snapshot["postgres backends"] += process_cpu_seconds(row["pid"])
    return snapshot


def cpu_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds used in between; `other` is what no measured process used (other tenants, PostgreSQL's own)."""
    used = {name: after[name] - before.get(name, 0.0) for name in after}
    used["other"] = used["machine"] - sum(v for k, v in used.items() if k != "machine")
    ordered = sorted(used.items(), key=lambda item: item[0] == "machine")  # the total last
    return {name: round(seconds, 2) for name, seconds in ordered}


# --- reporting ----------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)) - 1, 0)]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    return {
        "p50": percentile(seconds, 50) * 1000,
        "p99": percentile(seconds, 99) * 1000,
        "max": max(seconds) * 1000,
    }


def machine() -> dict[str, str | int]:
    return {
        "nproc": os.cpu_count() or 0,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def command_line() -> str:
    return shlex.join([os.path.relpath(sys.executable), *sys.argv])


def revision() -> str:
    """The commit measured, `-dirty` when the work tree had changes."""
    git = ["git", "describe", "--always", "--dirty"]
    try:
        return subprocess.run(git, cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "unknown"


def machine_busy_share(seconds: float = 3.0) -> float:
    """How busy the machine is before the run starts (0..1 of all cores): anything else running skews it."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    return (machine_busy_seconds() - before) / seconds / (os.cpu_count() or 1)


def ms(summary: Mapping[str, float]) -> str:
    return "{p50:,.1f} / {p99:,.1f} / {max:,.1f}".format(**summary)


def print_report(figures: Mapping[str, Any]) -> None:
    """The figures as a table, then the CPU each part used during the live phase."""
    rows = [
        ("ingest accepted webhooks/s (live: the offered load)", f"{figures['ingest_accepted_per_s']:,.0f}"),
        ("raw aiokafka produce records/s", f"{figures['raw_produce_per_s']:,.0f}"),
        ("  ratio ingest / raw produce", f"{figures['ratio_ingest_to_raw_produce']:.4f}"),
        ("sla recorded events/s, live", f"{figures['sla_live_recorded_per_s']:,.0f}"),
        ("sla recorded events/s, draining a backlog", f"{figures['sla_backlog_recorded_per_s']:,.0f}"),
        ("survey events/s, draining a backlog", f"{figures['survey_backlog_processed_per_s']:,.0f}"),
        ("raw aiokafka consume records/s", f"{figures['raw_consume_per_s']:,.0f}"),
        ("  ratio sla live / raw consume", f"{figures['ratio_sla_live_to_raw_consume']:.4f}"),
        ("  ratio sla backlog / raw consume", f"{figures['ratio_sla_backlog_to_raw_consume']:.4f}"),
        ("  ratio survey backlog / raw consume", f"{figures['ratio_survey_backlog_to_raw_consume']:.4f}"),
        ("webhook request ms p50 / p99 / max", ms(figures["ingest_request_ms"])),
        (
            "  mean ms: seen by the client / inside the app",
            f"{figures['ingest_request_mean_ms']:,.1f} / {figures['ingest_in_app_mean_ms']:,.1f}",
        ),
        ("end-to-end 202 -> sla ms p50 / p99 / max", ms(figures["end_to_end_ms"])),
        *((f"  stage {name} ms p50 / p99 / max", ms(v)) for name, v in figures["stages_ms"].items()),
        ("raw produce -> consume ms p50 / p99 / max", ms(figures["raw_latency_ms"])),
        (
            "sla backlog: batches, mean events per batch",
            f"{figures['sla_backlog_batches']}, {figures['sla_backlog_mean_batch_events']:,.0f}",
        ),
        (
            "  share of the drain inside batch transactions",
            f"{figures['sla_backlog_share_inside_transactions']:.0%}",
        ),
        ("  ms per event inside them", f"{figures['sla_backlog_ms_per_event_inside_transactions']:.2f}"),
        *((f"peak RSS MiB, {name}", f"{mib:,.0f}") for name, mib in figures["peak_rss_mib"].items()),
    ]
    width = max(len(label) for label, _ in rows)
    print(
        f"\nPipeline benchmark, {figures['webhooks']} webhooks per phase at concurrency {figures['concurrency']},"
        f" live phase offered at {figures['offered_rate']:,.0f}/s"
    )
    for label, value in rows:
        print(f"  {label:<{width}}  {value:>24}")
    phase, count = figures["live_phase_seconds"], figures["webhooks"]
    print(f"\n  CPU during the live phase ({phase:.1f} s wall, {figures['machine']['nproc']} cores):")
    for name, seconds in figures["cpu_seconds"].items():
        per_event = f"{seconds / count * 1000:5.2f} ms per webhook" if name != "machine" else ""
        print(f"    {name:<18} {seconds:6.1f} s  {seconds / phase:5.0%} of one core  {per_event}".rstrip())
    box = figures["machine"]
    print(f"\n  machine  {box['nproc']} cores, Python {box['python']}, {box['platform']}")
    print(
        f"           {figures['machine_busy_before_run']:.0%} busy before the run (other work skews every figure)"
    )
    print(f"  command  {figures['command']}\n  revision {figures['revision']}")


def write_results(figures: Mapping[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"  results  {os.path.relpath(RESULTS)}")


# --- main ---------------------------------------------------------------------------------------------


def measure(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """Baseline first (nothing else on the broker), then the pipeline through the two services."""
    busy_before = machine_busy_share()
    baseline = asyncio.run(run_baseline(stack.bootstrap, args.webhooks))
    with stopping_services(stack):
        pipeline = asyncio.run(run_pipeline(stack, args))
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "webhooks": args.webhooks,
        "concurrency": args.concurrency,
        "offered_rate": args.offered_rate,
        "partitions": PARTITIONS,
        **pipeline,
        **baseline,
        "peak_rss_mib": stack.peak_rss_mib,
        "ratio_ingest_to_raw_produce": pipeline["ingest_accepted_per_s"] / baseline["raw_produce_per_s"],
        "ratio_sla_live_to_raw_consume": pipeline["sla_live_recorded_per_s"] / baseline["raw_consume_per_s"],
        "ratio_sla_backlog_to_raw_consume": pipeline["sla_backlog_recorded_per_s"]
        / baseline["raw_consume_per_s"],
        "ratio_survey_backlog_to_raw_consume": pipeline["survey_backlog_processed_per_s"]
        / baseline["raw_consume_per_s"],
        "machine": machine(),
        "machine_busy_before_run": busy_before,
        "command": command_line(),
        "revision": revision(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the stack, measure, tear it down; returns the figures (bench/run.py calls this)."""
    logs = ROOT / ".bothways" / "bench" / f"pipeline-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    logs.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.ExitStack() as cleanup:
            bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or cleanup.enter_context(
                devstack.tansu_broker(devstack.free_port(), log_path=logs / "broker.log")
            )
            server_url = cleanup.enter_context(devstack.postgres(os.environ.get("DATABASE_URL")))
            database_url = cleanup.enter_context(fresh_database(server_url))
            secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
            return measure(Stack(bootstrap, database_url, secret, logs), args)
    except BenchFailed as exc:
        raise BenchFailed(f"{exc} (logs in {os.path.relpath(logs)})") from exc


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        figures = run(args)
    except (BenchFailed, devstack.StackError) as exc:
        print(f"bench/pipeline.py: {exc}", file=sys.stderr)
        return 1
    print_report(figures)
    write_results(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
