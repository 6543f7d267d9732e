"""Reporting benchmark: read models built from 1,000,000 events, against raw Kafka consumption; scorecard query times.

Run: .venv/bin/python bench/reporting.py [--events N] [--services S] [--queries Q] [--compare E]

It brings up its own stack (a Tansu broker or KAFKA_BOOTSTRAP_SERVERS, a fresh database on
DATABASE_URL's server), measures, prints a table, writes bench/results/reporting.json and tears
everything down. Linux only: CPU time is read from /proc.

Phases:
1. N events generated as the producing services publish them: ticket snapshots, SLA timer events,
   survey steps and follow-ups, NPS answers and availability computations, for S business services
   over the twelve months before the current one; produced onto the four topics (3 partitions each).
2. Baseline: a plain aiokafka consumer group reads the same N records from the same broker, with the
   reporting consumer's settings (getmany of 500, a commit per partition batch), doing nothing else.
3. The reporting service as a real process folds the N events from offset zero (what `bothways
   reporting rebuild` makes it do). Events/s is measured on the database's clock: N over the span
   between the first and the last batch transaction (inbox.processed_at).
4. Q requests of each report (a month's scorecards of every service, one service's scorecard with its
   breakdowns, a 12-month trend, the watermelons, the dashboard page) over HTTP, one at a time:
   p50/p99, against GET /healthz (the HTTP floor) in the same run.
5. Handlers compared on the first E events: the runner applying them with the reporting batch
   handlers, and with the same fold called one event at a time (what a per-event handler does),
   in-process, each into an emptied schema.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import (
    BenchFailed,
    command_line,
    fresh_database,
    machine,
    machine_busy_share,
    peak_rss_mib,
    process_cpu_seconds,
    raw_producer,
    revision,
    summary_ms,
)

from bothways import db, devstack, kafka
from bothways.events import (
    AvailabilityComputed,
    Envelope,
    Event,
    FollowupClosed,
    FollowupOpened,
    SlaBreached,
    SlaMet,
    SlaStarted,
    SlaWarned,
    SurveyAnswered,
    SurveyScheduled,
    SurveySent,
    TicketChanged,
    Topic,
    deterministic_id,
    envelope_for,
)
from services.reporting.consumer import BATCH_HANDLERS
from services.reporting.settings import ReportingSettings
from services.reporting.store import READ_MODEL_TABLES

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "reporting.json"
PARTITIONS = 3
TOPICS = (Topic.TICKETS, Topic.SLA, Topic.AVAILABILITY, Topic.SURVEYS)
TARGETS = {"first_response": 4 * 3600, "resolution": 16 * 3600}
GROUPS = ("service-desk", "network", "apps", "database", "workplace")
PRIORITIES = ("P1", "P2", "P3", "P4")


@dataclass(frozen=True)
class Record:
    topic: Topic
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


# --- the events ---------------------------------------------------------------------------------------


def month_starts(now: datetime, months: int) -> list[datetime]:
    """The first instants of the `months` months before the current one, oldest first."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    starts = []
    for _ in range(months):
        first = (first - timedelta(days=1)).replace(day=1)
        starts.append(first)
    return starts[::-1]


def generate(count: int, *, services: int, now: datetime, seed: int = 11) -> list[Record]:
    """`count` events over the twelve months before `now`, in each aggregate's order."""
    rng = random.Random(seed)
    names = [f"service-{i:02d}" for i in range(services)]
    months = month_starts(now, 12)
    records: list[Record] = []
    serial = 0

    def emit(event: Event) -> None:
        nonlocal serial
        serial += 1
        envelope: Envelope = envelope_for(
            event, event_id=deterministic_id("bench-reporting", str(serial)), source="/bench/reporting"
        )
        records.append(Record(event.topic, envelope.key_bytes(), envelope.value_bytes(), envelope.headers()))

    for month in months:  # service-wide events: availability and an NPS campaign per service and month
        end = (month + timedelta(days=32)).replace(day=1)
        for name in names:
            for computed_at in (month + timedelta(days=10), end - timedelta(hours=1)):
                emit(availability(name, month, end, computed_at, downtime=rng.choice((0, 300, 1800, 7200))))
            for i in range(20):
                emit_nps(emit, rng, name, month, i)
    ticket = 0
    while len(records) < count:
        emit_ticket(emit, rng, ticket, service=names[ticket % services], month=rng.choice(months))
        ticket += 1
    return records[:count]


def availability(
    name: str, start: datetime, end: datetime, at: datetime, *, downtime: float
) -> AvailabilityComputed:
    agreed = int((end - start).total_seconds())
    budget = agreed * 0.001
    return AvailabilityComputed(
        business_service=name,
        period=f"{start:%Y-%m}",
        period_start=start,
        period_end=end,
        occurred_at=at,
        objective_percent=99.9,
        agreed_seconds=agreed,
        downtime_seconds=downtime,
        availability_percent=100 * (agreed - downtime) / agreed,
        error_budget_seconds=budget,
        budget_remaining_seconds=budget - downtime,
        outages=1 if downtime else 0,
        mtrs_seconds=downtime or None,
        mtbf_seconds=None,
    )


def emit_nps(emit: Any, rng: random.Random, name: str, month: datetime, i: int) -> None:
    ids = {
        "invitation_id": f"nps-{name}-{month:%Y%m}-{i}",
        "survey_kind": "nps",
        "campaign_id": f"nps-{month:%Y-%m}",
        "business_service": name,
    }
    sent = month + timedelta(days=2, minutes=i)
    score = rng.randrange(0, 11)
    emit(SurveySent(**ids, occurred_at=sent, channel="email"))
    band = "promoter" if score >= 9 else "detractor" if score <= 6 else "passive"
    emit(
        SurveyAnswered(**ids, occurred_at=sent + timedelta(hours=5), score=score, scale="0-10", nps_band=band)
    )


def emit_ticket(emit: Any, rng: random.Random, number: int, *, service: str, month: datetime) -> None:
    """One ticket's life: snapshots, two SLA timers, a CSAT survey and, when unhappy, a follow-up."""
    key = f"bench:T-{number}"
    group, priority = GROUPS[number % len(GROUPS)], PRIORITIES[number % len(PRIORITIES)]
    created = month + timedelta(seconds=rng.randrange(25 * 86400))
    base = {
        "ticket_key": key,
        "source": "bench",
        "external_id": f"T-{number}",
        "priority": priority,
        "business_service": service,
        "assignment_group": group,
        "created_at": created,
        "title": "Something does not work",
    }
    emit(TicketChanged(**base, occurred_at=created, change="created", status="Open", status_category="open"))
    timer = {
        "ticket_key": key,
        "cycle": 1,
        "priority": priority,
        "policy": "standard",
        "policy_version": 1,
        "calendar": "office",
        "started_at": created,
        "business_service": service,
        "assignment_group": group,
        "source": "bench",
    }
    response = rng.randrange(300, TARGETS["first_response"])
    first = {**timer, "timer_key": "first_response/1", "metric": "first_response"}
    first_due = created + timedelta(seconds=TARGETS["first_response"])
    emit(
        SlaStarted(
            **first, **clock(0, "first_response"), state="running", occurred_at=created, due_at=first_due
        )
    )
    responded = created + timedelta(seconds=response)
    emit(
        SlaMet(
            **first,
            **clock(response, "first_response"),
            state="met",
            occurred_at=responded,
            due_at=first_due,
            stopped_at=responded,
        )
    )
    resolution = {**timer, "timer_key": "resolution/1", "metric": "resolution"}
    due = created + timedelta(seconds=TARGETS["resolution"])
    emit(SlaStarted(**resolution, **clock(0, "resolution"), state="running", occurred_at=created, due_at=due))
    if rng.random() < 0.2:
        warned = int(TARGETS["resolution"] * 0.75)
        emit(
            SlaWarned(
                **resolution,
                **clock(warned, "resolution"),
                state="running",
                occurred_at=created + timedelta(seconds=warned),
                due_at=due,
                threshold_percent=75,
            )
        )
    if rng.random() < 0.1:
        breach = due + timedelta(seconds=1)
        emit(
            SlaBreached(
                **resolution,
                **clock(TARGETS["resolution"] + 1, "resolution"),
                state="breached",
                occurred_at=breach,
                due_at=due,
            )
        )
        resolved = breach + timedelta(hours=rng.randrange(1, 20))
    else:
        elapsed = rng.randrange(1800, TARGETS["resolution"])
        resolved = created + timedelta(seconds=elapsed)
        emit(
            SlaMet(
                **resolution,
                **clock(elapsed, "resolution"),
                state="met",
                occurred_at=resolved,
                due_at=due,
                stopped_at=resolved,
            )
        )
    emit(
        TicketChanged(
            **base,
            occurred_at=resolved,
            change="status_changed",
            status="Resolved",
            status_category="resolved",
            resolved_at=resolved,
        )
    )
    ids = {
        "invitation_id": f"inv-{key}",
        "survey_kind": "csat",
        "ticket_key": key,
        "business_service": service,
        "assignment_group": group,
        "priority": priority,
    }
    emit(SurveyScheduled(**ids, occurred_at=resolved, send_at=resolved + timedelta(minutes=5)))
    sent = resolved + timedelta(minutes=5)
    emit(SurveySent(**ids, occurred_at=sent, channel="email"))
    if rng.random() < 0.6:
        score = rng.choice((5, 5, 4, 4, 4, 3, 2, 1))
        answered = sent + timedelta(hours=rng.randrange(1, 48))
        emit(SurveyAnswered(**ids, occurred_at=answered, score=score, scale="1-5", satisfied=score >= 4))
        if score <= 2:
            followup = {**ids, "followup_id": f"fu-{key}", "due_at": answered + timedelta(days=2)}
            emit(FollowupOpened(**followup, occurred_at=answered + timedelta(minutes=10)))
            if rng.random() < 0.5:
                emit(
                    FollowupClosed(
                        **followup, occurred_at=answered + timedelta(days=1), outcome="called back"
                    )
                )


def clock(elapsed: int, metric: str) -> dict[str, Any]:
    target = TARGETS[metric]
    return {
        "target_business_seconds": target,
        "business_elapsed_seconds": elapsed,
        "remaining_business_seconds": max(target - elapsed, 0),
        "percent_elapsed": 100 * elapsed / target,
    }


# --- Kafka --------------------------------------------------------------------------------------------


async def produce(bootstrap: str, namespace: str, records: Sequence[Record]) -> float:
    """Records/s of a plain producer writing the records to their topics (each aggregate in order)."""
    await kafka.ensure_topics(bootstrap, [f"{namespace}{t.value}" for t in TOPICS], partitions=PARTITIONS)
    producer = raw_producer(bootstrap)
    await producer.start()
    try:
        started = time.perf_counter()
        pending = []
        for record in records:
            pending.append(
                await producer.send(
                    f"{namespace}{record.topic.value}",
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                )
            )
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def raw_consume(bootstrap: str, namespace: str, count: int, within: float = 600.0) -> float:
    """Records/s a plain consumer group reads the four topics at, set up as the reporting consumer."""
    consumer = AIOKafkaConsumer(
        *(f"{namespace}{t.value}" for t in TOPICS),
        bootstrap_servers=bootstrap,
        group_id=f"{namespace}raw-baseline",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
        fetch_max_wait_ms=100,
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    try:
        seen, first_batch, started = 0, 0, 0.0
        deadline = time.monotonic() + within
        while seen < count and time.monotonic() < deadline:
            for tp, batch in (await consumer.getmany(timeout_ms=200, max_records=500)).items():
                await consumer.commit({tp: batch[-1].offset + 1})
                if not started:
                    started, first_batch = time.perf_counter(), len(batch)
                seen += len(batch)
        if seen < count:
            raise BenchFailed(f"the raw consumer read {seen} of {count} records within {within:.0f} s")
        return (seen - first_batch) / (time.perf_counter() - started)
    finally:
        await consumer.stop()


# --- the reporting service ----------------------------------------------------------------------------

FOLD_SPAN_SQL = """
SELECT count(*) AS events, extract(epoch FROM max(processed_at) - min(processed_at))::float AS seconds,
       count(DISTINCT processed_at) AS batches
FROM reporting.inbox
"""


def service_env(bootstrap: str, database_url: str, namespace: str, api_key: str) -> dict[str, str]:
    return {
        "BOTHWAYS_DATABASE_URL": database_url,
        "BOTHWAYS_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "BOTHWAYS_KAFKA_IDEMPOTENT_PRODUCER": "false",
        "BOTHWAYS_KAFKA_NAMESPACE": namespace,
        "BOTHWAYS_KAFKA_TOPIC_PARTITIONS": str(PARTITIONS),
        "BOTHWAYS_API_KEYS": json.dumps({api_key: ["read"]}),
        "BOTHWAYS_CONSUMER_SESSION_TIMEOUT_MS": "2000",
        "BOTHWAYS_LOG_LEVEL": "WARNING",
    }


@contextlib.contextmanager
def reporting_process(env: dict[str, str], logs: Path) -> Iterator[devstack.ServiceProcess]:
    service = devstack.start_service(
        "reporting", port=devstack.free_port(), env=env, log_path=logs / "reporting.log"
    )
    try:
        yield service
    finally:
        devstack.stop_process(service.process)


async def wait_ready(service: devstack.ServiceProcess, logs: Path, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=service.url, timeout=1) as client:
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise BenchFailed(f"reporting exited with {service.process.returncode}; see {logs}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise BenchFailed(f"reporting is not ready after {within:.0f} s; see {logs}")


async def fold(
    service: devstack.ServiceProcess, database_url: str, count: int, within: float
) -> dict[str, float]:
    """Wait until the service applied every event; the fold's rate on the database's clock, and its CPU."""
    conn = await asyncpg.connect(database_url)
    try:
        cpu_before = process_cpu_seconds(service.process.pid)
        started = time.perf_counter()
        applied = 0
        while time.perf_counter() - started < within:
            applied = await conn.fetchval("SELECT count(*) FROM reporting.inbox")
            if applied >= count:
                break
            await asyncio.sleep(1.0)
        if applied < count:
            raise BenchFailed(f"reporting applied {applied} of {count} events within {within:.0f} s")
        wall = time.perf_counter() - started
        cpu = process_cpu_seconds(service.process.pid) - cpu_before
        span = await conn.fetchrow(FOLD_SPAN_SQL)
        rows = {
            table: await conn.fetchval(f"SELECT count(*) FROM reporting.{table}")
            for table in READ_MODEL_TABLES
        }
    finally:
        await conn.close()
    return {
        "events_per_s": span["events"] / span["seconds"],
        "fold_seconds": span["seconds"],
        "wall_seconds_from_ready": wall,
        "batches": span["batches"],
        "reporting_cpu_seconds": cpu,
        "read_model_rows": rows,
    }


async def query_times(
    url: str, api_key: str, *, routes: dict[str, str], repeat: int
) -> dict[str, dict[str, float]]:
    """p50/p99/max of each route, requested one at a time, routes interleaved."""
    seconds: dict[str, list[float]] = {name: [] for name in routes}
    async with httpx.AsyncClient(
        base_url=url, timeout=60, headers={"authorization": f"Bearer {api_key}"}
    ) as client:
        for path in routes.values():  # warm-up: prepared statements, caches
            (await client.get(path)).raise_for_status()
        for _ in range(repeat):
            for name, path in routes.items():
                started = time.perf_counter()
                response = await client.get(path)
                seconds[name].append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise BenchFailed(f"{path}: {response.status_code} {response.text[:200]}")
    return {name: summary_ms(values) for name, values in seconds.items()}


# --- handlers compared --------------------------------------------------------------------------------


async def compare_handlers(bootstrap: str, database_url: str, namespace: str, count: int) -> dict[str, float]:
    """Events/s of the runner with the batch handlers, and with the same fold one event at a time."""
    settings = ReportingSettings(
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        kafka_namespace=namespace,
        kafka_idempotent_producer=False,
        consumer_session_timeout_ms=2000,
    )
    one_at_a_time = {
        event_type: one_event_at_a_time(handler) for event_type, handler in BATCH_HANDLERS.items()
    }
    per_event_handlers = {
        concrete: one_at_a_time[base] for base in one_at_a_time for concrete in _subclasses(base)
    }
    rates = {}
    pool = await db.create_pool(database_url, schema="reporting", min_size=1, max_size=4)
    producer = raw_producer(bootstrap)
    await producer.start()
    try:
        for mode, handlers, batch_handlers in (
            ("per_event", per_event_handlers, {}),
            ("batch", {}, BATCH_HANDLERS),
        ):
            await pool.execute(f"TRUNCATE {', '.join(READ_MODEL_TABLES)}, inbox")
            runner = kafka.ConsumerRunner(
                settings=settings,
                service=f"reporting-{mode}",
                topics=list(TOPICS),
                pool=pool,
                handlers=handlers,
                batch_handlers=batch_handlers,
                dead_letters=producer,
            )
            await runner.start()
            try:
                deadline = time.monotonic() + 900
                while await pool.fetchval("SELECT count(*) FROM inbox") < count:
                    if time.monotonic() > deadline:
                        raise BenchFailed(f"the {mode} runner did not apply {count} events within 900 s")
                    await asyncio.sleep(0.5)
            finally:
                await runner.stop()
            span = await pool.fetchrow(FOLD_SPAN_SQL.replace("reporting.inbox", "inbox"))
            rates[f"{mode}_events_per_s"] = span["events"] / span["seconds"]
    finally:
        await producer.stop()
        await pool.close()
    rates["ratio_batch_to_per_event"] = rates["batch_events_per_s"] / rates["per_event_events_per_s"]
    return rates


def one_event_at_a_time(fold: kafka.BatchHandler) -> kafka.Handler:
    """A per-event handler doing what the batch handler does, for a batch of one."""

    async def handle(conn: Any, event: Any, envelope: Envelope) -> None:
        await fold(conn, [(event, envelope)])

    return handle


def _subclasses(cls: type) -> list[type]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


# --- main ---------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events to fold (default 1,000,000)")
    parser.add_argument("--services", type=int, default=40, help="business services (default 40)")
    parser.add_argument("--queries", type=int, default=200, help="requests per report (default 200)")
    parser.add_argument(
        "--compare", type=int, default=50_000, help="events for the handler comparison (0: skip)"
    )
    parser.add_argument("--fold-timeout", type=float, default=3600.0, help="seconds to wait for the fold")
    args = parser.parse_args(argv)
    if args.events < 1000 or args.services < 1 or args.queries < 10:
        parser.error("--events must be at least 1000, --services at least 1, --queries at least 10")
    return args


async def run(args: argparse.Namespace, bootstrap: str, database_url: str, logs: Path) -> dict[str, Any]:
    now = datetime.now(UTC)
    started = time.perf_counter()
    records = generate(args.events, services=args.services, now=now)
    generated = time.perf_counter() - started
    counts: dict[str, int] = {}
    for record in records:
        counts[record.topic.value] = counts.get(record.topic.value, 0) + 1
    namespace = f"b{uuid.uuid4().hex[:8]}."
    produce_rate = await produce(bootstrap, namespace, records)
    baseline = await raw_consume(bootstrap, namespace, len(records))
    api_key = secrets.token_urlsafe(24)
    months = month_starts(now, 12)
    period = f"{months[6]:%Y-%m}"
    with reporting_process(service_env(bootstrap, database_url, namespace, api_key), logs) as service:
        await wait_ready(service, logs)
        folded = await fold(service, database_url, len(records), args.fold_timeout)
        routes = {
            "GET /healthz (baseline)": "/healthz",
            "GET /scorecards (all services)": f"/scorecards?period={period}",
            "GET /scorecards/{service}": f"/scorecards/service-07?period={period}",
            "GET /scorecards/{service}/trend (12 months)": f"/scorecards/service-07/trend?period={period}",
            "GET /watermelons": f"/watermelons?period={period}",
            "GET / (dashboard)": f"/?period={period}",
        }
        queries = await query_times(service.url, api_key, routes=routes, repeat=args.queries)
        peak_rss = peak_rss_mib(service.process.pid)
    compared = {}
    if args.compare:
        subset = records[: args.compare]
        compare_namespace = f"c{uuid.uuid4().hex[:8]}."
        await produce(bootstrap, compare_namespace, subset)
        compared = await compare_handlers(bootstrap, database_url, compare_namespace, len(subset))
    return {
        "events": len(records),
        "events_by_topic": counts,
        "services": args.services,
        "months": 12,
        "partitions": PARTITIONS,
        "generate_seconds": generated,
        "raw_produce_per_s": produce_rate,
        "raw_consume_per_s": baseline,
        **{f"fold_{k}": v for k, v in folded.items()},
        "ratio_fold_to_raw_consume": folded["events_per_s"] / baseline,
        "query_period": period,
        "queries_per_route": args.queries,
        "query_ms": queries,
        "reporting_peak_rss_mib": peak_rss,
        "handlers": compared,
    }


def print_report(figures: dict[str, Any]) -> None:
    rows = [
        ("events (tickets, sla, availability, surveys)", f"{figures['events']:,}"),
        ("raw aiokafka consume records/s (baseline)", f"{figures['raw_consume_per_s']:,.0f}"),
        ("reporting fold events/s", f"{figures['fold_events_per_s']:,.0f}"),
        ("  ratio fold / raw consume", f"{figures['ratio_fold_to_raw_consume']:.3f}"),
        ("  fold seconds, batches", f"{figures['fold_fold_seconds']:,.1f} s, {figures['fold_batches']:,}"),
        ("  reporting CPU seconds", f"{figures['fold_reporting_cpu_seconds']:,.1f}"),
        ("reporting peak RSS MiB", f"{figures['reporting_peak_rss_mib']:,.0f}"),
    ]
    for name, summary in figures["query_ms"].items():
        rows.append((f"{name} ms p50 / p99 / max", "{p50:,.1f} / {p99:,.1f} / {max:,.1f}".format(**summary)))
    if figures["handlers"]:
        handlers = figures["handlers"]
        rows += [
            ("handlers: per event, events/s", f"{handlers['per_event_events_per_s']:,.0f}"),
            ("handlers: batch, events/s", f"{handlers['batch_events_per_s']:,.0f}"),
            ("  ratio batch / per event", f"{handlers['ratio_batch_to_per_event']:.2f}"),
        ]
    width = max(len(label) for label, _ in rows)
    print(f"\nReporting benchmark, {figures['events']:,} events, {figures['services']} services, 12 months")
    for label, value in rows:
        print(f"  {label:<{width}}  {value:>28}")
    print(f"\n  events by topic  {figures['events_by_topic']}")
    print(f"  read-model rows  {figures['fold_read_model_rows']}")
    box = figures["machine"]
    print(f"\n  machine  {box['nproc']} cores, Python {box['python']}, {box['platform']}")
    print(
        f"           {figures['machine_busy_before_run']:.0%} busy before the run (other work skews every figure)"
    )
    print(f"  command  {figures['command']}\n  revision {figures['revision']}")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Start the stack, measure, tear it down; returns the figures (bench/run.py calls this)."""
    logs = ROOT / ".bothways" / "bench" / f"reporting-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    logs.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as cleanup:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or cleanup.enter_context(
            devstack.tansu_broker(devstack.free_port(), log_path=logs / "broker.log")
        )
        server_url = cleanup.enter_context(devstack.postgres(os.environ.get("DATABASE_URL")))
        database_url = cleanup.enter_context(fresh_database(server_url))
        busy = machine_busy_share()
        try:
            figures = asyncio.run(run(args, bootstrap, database_url, logs))
        except BenchFailed as exc:
            raise BenchFailed(f"{exc} (logs in {os.path.relpath(logs)})") from exc
    figures.update(
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=machine(),
        machine_busy_before_run=busy,
        command=command_line(),
        revision=revision(),
    )
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        figures = measure(args)
    except (BenchFailed, devstack.StackError) as exc:
        print(f"bench/reporting.py: {exc}", file=sys.stderr)
        return 1
    print_report(figures)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"  results  {os.path.relpath(RESULTS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
