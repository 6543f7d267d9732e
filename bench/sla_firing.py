"""SLA firing benchmark: N running timers due over the next minutes, fired by the real scheduler.

Run: .venv/bin/python bench/sla_firing.py [--timers 1000000] [--spread-seconds 600] [--concurrency 2]

A fresh database on DATABASE_URL's server (or the embedded fallback) gets N stored timers, each with
its breach mark due at an instant spread evenly over the window starting a little after the load.
The sla service's own scheduler step (`tracker.fire_due`: claim with SKIP LOCKED, build the events,
write them to the outbox and the audit trail) then runs in this process until every timer fired.

Lateness of a timer = the instant its transaction committed minus its due instant. Baseline, in the
same run: the bare claim-and-update loop on the same table shape without building any event, which
is the most the database itself allows. Publishing the outbox to Kafka is measured by bench/pipeline.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bothways import db, devstack
from bothways.cli import ensure_database, migrate_all
from bothways.scheduler import Scheduler, StepResult
from bothways.settings import ServiceSettings
from services.sla import tracker
from services.sla.store import TIMER_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "sla_firing.json"
BATCH = 500


def timer_records(count: int, *, first_due: datetime, spread: float) -> list[tuple[Any, ...]]:
    """Stored running timers, one breach mark each, due evenly over the window."""
    started = first_due - timedelta(hours=4)
    records = []
    for i in range(count):
        due = first_due + timedelta(seconds=spread * i / count)
        due = due.replace(microsecond=0)
        mark = {"kind": "breached", "at": due.isoformat(), "elapsed": 14401, "percent": None}
        records.append(
            (
                f"bench:{i}",
                "resolution/1/P3/x",
                "resolution",
                1,
                "P3",
                "standard",
                1,
                "office",
                "running",
                False,
                started,
                started,
                None,
                due,
                due,
                None,
                started,
                14400,
                0,
                "[50.0, 75.0, 90.0]",
                json.dumps([mark]),
                due,
                0,
                "bench",
                "incident",
                f"service-{i % 20}",
                f"group-{i % 7}",
                None,
                None,
            )
        )
    return records


COLUMNS = [column.strip() for column in TIMER_COLUMNS.split(",")]


async def load(pool: db.Pool, records: list[tuple[Any, ...]]) -> float:
    started = time.perf_counter()
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE sla_timer, sla_emission, outbox")
        await conn.copy_records_to_table("sla_timer", records=records, columns=COLUMNS, schema_name="sla")
        await conn.execute("ANALYZE sla_timer")
    return time.perf_counter() - started


async def baseline_step(conn: db.Connection, now: datetime) -> StepResult:
    rows = await conn.fetch(
        "SELECT ticket_key, timer_key FROM sla_timer WHERE next_due_at <= $1 ORDER BY next_due_at LIMIT $2 "
        "FOR UPDATE SKIP LOCKED",
        now,
        BATCH,
    )
    await conn.execute(
        "UPDATE sla_timer SET next_due_at = NULL WHERE ticket_key = ANY($1) AND timer_key = ANY($2)",
        [r["ticket_key"] for r in rows],
        [r["timer_key"] for r in rows],
    )
    return StepResult(
        done=len(rows),
        next_due=await conn.fetchval("SELECT min(next_due_at) FROM sla_timer WHERE next_due_at IS NOT NULL"),
    )


async def run(pool: db.Pool, dsn: str, step: Any, *, timers: int, concurrency: int) -> dict[str, Any]:
    """Run the scheduler until every timer fired; returns when each step's transaction committed."""
    commits: list[tuple[datetime, float]] = []  # (the step's now, commit time) per step
    fired = 0

    class Measured(Scheduler):
        async def run_once(self) -> StepResult:
            nonlocal fired
            now = datetime.now(UTC)  # taken here: concurrent steps share the scheduler object
            async with self.pool.acquire() as conn, conn.transaction():
                result = await self.step(conn, now)
            commits.append((now, time.time()))
            fired += result.done
            return result

    scheduler = Measured(
        pool=pool, dsn=dsn, schema="sla", step=step, batch_size=BATCH, concurrency=concurrency
    )
    started = time.perf_counter()
    await scheduler.start()
    # Counted in this process: polling the table would put a scan of a million rows on the same
    # two cores every second, which is the benchmark's load, not the product's.
    while fired < timers:  # noqa: ASYNC110 - a counter updated by the scheduler's own steps
        await asyncio.sleep(0.2)
    seconds = time.perf_counter() - started
    await scheduler.stop()
    return {"seconds": seconds, "commits": commits}


async def lateness_of_emissions(pool: db.Pool, commits: list[tuple[datetime, float]]) -> list[float]:
    """Per fired timer: commit instant of its step minus its due instant."""
    commit_at = {now: committed for now, committed in commits}
    rows = await pool.fetch("SELECT emitted_at, extract(epoch FROM occurred_at) AS due FROM sla_emission")
    return [
        commit_at[row["emitted_at"]] - float(row["due"]) for row in rows if row["emitted_at"] in commit_at
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def capacity(pool: db.Pool, dsn: str, step: Any, *, timers: int, concurrency: int) -> float:
    """Timers fired per second when all are overdue (a scheduler catching up after downtime)."""
    await load(pool, timer_records(timers, first_due=datetime.now(UTC) - timedelta(hours=1), spread=60))
    outcome = await run(pool, dsn, step, timers=timers, concurrency=concurrency)
    seconds: float = outcome["seconds"]
    return timers / seconds


async def lateness_run(
    pool: db.Pool, dsn: str, *, timers: int, spread: float, concurrency: int
) -> dict[str, Any]:
    """Fire timers due over a window as they fall due; the lateness of each."""
    lead = max(20.0, timers / 40_000)  # the table is loaded before the first is due
    first_due = datetime.now(UTC) + timedelta(seconds=lead)
    loaded = await load(pool, timer_records(timers, first_due=first_due, spread=spread))
    print(
        f"{timers:,} running timers loaded in {loaded:.1f} s, due from {first_due:%H:%M:%S} over {spread:.0f} s"
    )
    outcome = await run(pool, dsn, _fire_due, timers=timers, concurrency=concurrency)
    lateness = await lateness_of_emissions(pool, outcome["commits"])
    return {
        "fired": await pool.fetchval("SELECT count(*) FROM sla_emission"),
        "outbox_rows": await pool.fetchval("SELECT count(*) FROM outbox"),
        "lateness_p50_s": percentile(lateness, 0.5),
        "lateness_p99_s": percentile(lateness, 0.99),
        "lateness_max_s": max(lateness),
    }


async def _fire_due(conn: db.Connection, now: datetime) -> StepResult:
    return await tracker.fire_due(conn, now, limit=BATCH)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timers", type=int, default=1_000_000)
    parser.add_argument("--spread-seconds", type=float, default=600.0)
    parser.add_argument("--capacity-timers", type=int, default=100_000)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=ServiceSettings.model_fields["scheduler_concurrency"].default,
        help="scheduler steps side by side, as BOTHWAYS_SCHEDULER_CONCURRENCY (the service's default)",
    )
    args = parser.parse_args()
    with devstack.postgres(os.environ.get("DATABASE_URL")) as server:
        asyncio.run(measure(args, server))


async def measure(args: argparse.Namespace, server: str) -> None:
    """Capacity against the bare baseline, then lateness under the offered load."""
    name = f"bw_bench_sla_{uuid.uuid4().hex[:8]}"
    dsn = await ensure_database(server, name)
    await migrate_all(dsn)
    pool = await db.create_pool(dsn, schema="sla", min_size=2, max_size=4)
    try:
        bare = await capacity(
            pool, dsn, baseline_step, timers=args.capacity_timers, concurrency=args.concurrency
        )
        full = await capacity(pool, dsn, _fire_due, timers=args.capacity_timers, concurrency=args.concurrency)
        figures = await lateness_run(
            pool, dsn, timers=args.timers, spread=args.spread_seconds, concurrency=args.concurrency
        )
        offered = args.timers / args.spread_seconds
        rows = [
            ("catch-up capacity, bare claim + update", f"{bare:,.0f} timers/s"),
            ("catch-up capacity, sla fire_due", f"{full:,.0f} timers/s ({full / bare:.2f} of bare)"),
            (
                "offered load",
                f"{args.timers:,} timers over {args.spread_seconds:.0f} s = {offered:,.0f}/s",
            ),
            ("fired (events in outbox)", f"{figures['fired']:,} ({figures['outbox_rows']:,})"),
            (
                "firing lateness p50 / p99 / max",
                f"{figures['lateness_p50_s'] * 1000:.0f} / {figures['lateness_p99_s'] * 1000:.0f} / "
                f"{figures['lateness_max_s'] * 1000:.0f} ms",
            ),
            (
                "peak RSS of the scheduler process",
                f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB",
            ),
        ]
        print(
            f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{args.concurrency} scheduler steps side by side"
        )
        for label, value in rows:
            print(f"  {label:<42} {value}")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "timers": args.timers,
                    "spread_seconds": args.spread_seconds,
                    "concurrency": args.concurrency,
                    "capacity_bare_per_s": bare,
                    "capacity_fire_due_per_s": full,
                    **figures,
                },
                indent=2,
            )
        )
    finally:
        await pool.close()
        conn = await asyncpg.connect(server)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    main()
