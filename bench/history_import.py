"""History import benchmark: a ServiceNow incident history CSV parsed into snapshots, against csv.DictReader.

Run: .venv/bin/python bench/history_import.py [--rows N] [--seed S] [--repeat R]

It writes a seeded ServiceNow-style export to a temporary file, then reads it with plain
`csv.DictReader` (the baseline: the cost of reading the CSV at all) and with
`services.ingest.history.read_history` (reading plus normalising into `TicketChanged` snapshots),
and prints rows per second for each (best of R runs), their ratio, and peak memory: the tracemalloc
peak of each, in a separate run since tracing slows it, and the process's maxrss. Last, the whole
import (`bothways import servicenow-csv`: reading, normalising, batched writes to the outbox) into a
fresh database on DATABASE_URL's server (or the local/embedded one), once.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from bothways import devstack
from bothways.cli import migrate_all
from bothways.db import create_pool
from services.ingest.history import HistorySummary, read_history, row_delivery_id
from services.ingest.imports import ImportFile, import_file
from services.ingest.mapping import load_mapping
from services.ingest.readers import reader_for

ZONE = ZoneInfo("Europe/Paris")
DATE_FORMAT = "%d-%m-%Y %H:%M"
COLUMNS = (
    "number",
    "incident_state",
    "active",
    "reassignment_count",
    "reopen_count",
    "sys_mod_count",
    "made_sla",
    "caller_id",
    "opened_by",
    "opened_at",
    "sys_created_by",
    "sys_created_on",
    "sys_updated_by",
    "sys_updated_at",
    "contact_type",
    "location",
    "category",
    "subcategory",
    "u_symptom",
    "cmdb_ci",
    "business_service",
    "impact",
    "urgency",
    "priority",
    "assignment_group",
    "assigned_to",
    "short_description",
    "resolved_at",
    "closed_at",
    "",
)
PRIORITIES = ("1 - Critical", "2 - High", "3 - Moderate", "3 - Moderate", "4 - Low", "5 - Planning")
GROUPS = ("Service Desk", "Network Operations", "Desktop Support", "Database Team", "Messaging")
SERVICES = ("Email", "VPN", "ERP", "Intranet", "?")
CATEGORIES = (("Software", "Mail client"), ("Network", "VPN"), ("Hardware", "Laptop"), ("Database", "?"))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the export (default 100000)")
    parser.add_argument("--seed", type=int, default=20240331, help="random seed (default 20240331)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each reader (default 3)")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be at least 1")
    return args


# --- the export ---------------------------------------------------------------------------------------


def lifecycle(rng: random.Random) -> list[tuple[str, int]]:
    """One incident's states and the minutes each update comes after the previous one."""
    steps = [("New", 0), ("Active", rng.randint(1, 90))]
    steps += [("Active", rng.randint(5, 600)) for _ in range(rng.randint(0, 2))]  # reassignments, notes
    if rng.random() < 0.3:
        steps += [("Awaiting User Info", rng.randint(10, 300)), ("Active", rng.randint(60, 2880))]
    steps.append(("Resolved", rng.randint(30, 1440)))
    if rng.random() < 0.1:  # a reopen
        steps += [("Active", rng.randint(60, 4320)), ("Resolved", rng.randint(30, 1440))]
    steps.append(("Closed", 3 * 1440))
    return steps


def incident_rows(rng: random.Random, n: int, opened: datetime) -> Iterator[dict[str, str]]:
    """The rows of one incident, one per update, as an export gives them."""
    category, subcategory = rng.choice(CATEGORIES)
    fixed = {
        "number": f"INC{n:07d}",
        "caller_id": f"Caller {rng.randint(1, 5000)}",
        "opened_by": f"Agent {rng.randint(1, 200)}",
        "opened_at": opened.strftime(DATE_FORMAT),
        "sys_created_by": "Service Desk Bot",
        "sys_created_on": opened.strftime(DATE_FORMAT),
        "contact_type": rng.choice(("Phone", "Email", "Self-service")),
        "location": f"Location {rng.randint(1, 40)}",
        "category": category,
        "subcategory": subcategory,
        "u_symptom": rng.choice(("Cannot log in", "Slow", "Error message", "?")),
        "cmdb_ci": f"CI-{rng.randint(1, 300):04d}",
        "business_service": rng.choice(SERVICES),
        "impact": "2 - Medium",
        "urgency": "2 - Medium",
        "short_description": f"Incident {n}: {category.lower()} issue",
    }
    at, priority, group, assignee, resolved, reopens = opened, rng.choice(PRIORITIES), "?", "?", "?", 0
    for mod_count, (state, minutes) in enumerate(lifecycle(rng)):
        at += timedelta(minutes=minutes)
        if state == "Active" and (group == "?" or rng.random() < 0.3):
            group, assignee = rng.choice(GROUPS), f"Agent {rng.randint(1, 200)}"
        if rng.random() < 0.05:
            priority = rng.choice(PRIORITIES)
        if state == "Active" and resolved != "?":
            reopens, resolved = reopens + 1, "?"
        if state == "Resolved":
            resolved = at.strftime(DATE_FORMAT)
        yield {
            **fixed,
            "incident_state": state,
            "active": "false" if state in ("Resolved", "Closed") else "true",
            "reassignment_count": "0",
            "reopen_count": str(reopens),
            "sys_mod_count": str(mod_count),
            "made_sla": "true",
            "sys_updated_by": assignee if assignee != "?" else "Service Desk Bot",
            "sys_updated_at": at.strftime(DATE_FORMAT),
            "priority": priority,
            "assignment_group": group,
            "assigned_to": assignee,
            "resolved_at": resolved,
            "closed_at": at.strftime(DATE_FORMAT) if state == "Closed" else "?",
        }


def write_export(path: Path, *, rows: int, seed: int) -> int:
    """Write `rows` rows of seeded incidents to `path`; returns the number of incidents."""
    rng = random.Random(seed)
    opened = datetime(2024, 1, 2, 8, 0)
    written = incidents = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        while written < rows:
            incidents += 1
            opened += timedelta(minutes=rng.randint(1, 45))
            for row in incident_rows(rng, incidents, opened):
                if written == rows:
                    break
                writer.writerow(row)
                written += 1
    return incidents


# --- the readers ----------------------------------------------------------------------------------------


def dict_reader(path: Path) -> int:
    """The baseline: every row read into a dict, nothing more."""
    with path.open(encoding="utf-8", newline="") as export:
        return sum(1 for _ in csv.DictReader(export))


def history_reader(path: Path) -> int:
    """Every row normalised into a snapshot, with its delivery id, as an importer would."""
    mapping = load_mapping().for_source("servicenow")
    with path.open("rb") as raw:
        digest = hashlib.file_digest(raw, "sha256").hexdigest()
    summary = HistorySummary()
    with path.open(encoding="utf-8", newline="") as export:
        for result in summary.counted(read_history(export, mapping=mapping, zone=ZONE)):
            row_delivery_id(digest, result.line_number)
    if summary.rejected:
        raise SystemExit(f"the generated export has rejected rows: {summary.rejections[:3]}")
    return summary.rows_read


def best_rate(reader: Callable[[Path], int], path: Path, *, repeat: int) -> float:
    """Rows per second of the fastest of `repeat` runs."""
    rates = []
    for _ in range(repeat):
        started = time.perf_counter()
        rows = reader(path)
        rates.append(rows / (time.perf_counter() - started))
    return max(rates)


def traced_peak(reader: Callable[[Path], int], path: Path) -> int:
    """The tracemalloc peak of one run, in bytes."""
    tracemalloc.start()
    try:
        reader(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def maxrss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def full_import(path: Path, server: str) -> tuple[float, int]:
    """The whole import (read, normalise, batched outbox writes) into a fresh database: rows/s, outbox rows."""
    name = f"bw_bench_import_{os.getpid()}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = devstack.with_database(server, name)
        await migrate_all(url)
        pool = await create_pool(url, schema="ingest")
        read = reader_for(
            "servicenow-csv", mappings=load_mapping(), time_zone=str(ZONE), date_formats=[DATE_FORMAT]
        )
        started = time.perf_counter()
        summary = await import_file(pool, ImportFile("servicenow-csv", path.name, path), read=read)
        elapsed = time.perf_counter() - started
        outbox = await pool.fetchval("SELECT count(*) FROM outbox")
        await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return summary.rows_read / elapsed, outbox


def run(*, rows: int = 100_000, seed: int = 20240331, repeat: int = 3) -> dict[str, Any]:
    """The export written, both readers timed, the full import into a fresh database; the figures."""
    with tempfile.TemporaryDirectory(prefix="bothways-history-") as tmp:
        path = Path(tmp) / "incident_history.csv"
        incidents = write_export(path, rows=rows, seed=seed)
        history_reader(path)  # warm-up: imports, pydantic schemas, the mapping
        rss_before = maxrss_mib()
        baseline = best_rate(dict_reader, path, repeat=repeat)
        rate = best_rate(history_reader, path, repeat=repeat)
        baseline_peak, peak = traced_peak(dict_reader, path), traced_peak(history_reader, path)
        size = path.stat().st_size
        with devstack.postgres(os.environ.get("DATABASE_URL")) as server:
            imported, outbox = asyncio.run(full_import(path, server))
    return {
        "rows": rows,
        "incidents": incidents,
        "seed": seed,
        "repeat": repeat,
        "export_mib": size / 2**20,
        "dict_reader_rows_per_s": baseline,
        "read_history_rows_per_s": rate,
        "dict_reader_traced_peak_mib": baseline_peak / 2**20,
        "read_history_traced_peak_mib": peak / 2**20,
        "full_import_rows_per_s": imported,
        "outbox_events": outbox,
        "maxrss_mib_after_warmup": rss_before,
        "maxrss_mib_at_end": maxrss_mib(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    f = run(rows=args.rows, seed=args.seed, repeat=args.repeat)
    baseline, rate = f["dict_reader_rows_per_s"], f["read_history_rows_per_s"]
    print(
        f"export: {args.rows} rows, {f['incidents']} incidents, {f['export_mib']:.1f} MiB (seed {args.seed})"
    )
    print(
        f"csv.DictReader   {baseline:>10,.0f} rows/s   tracemalloc peak {f['dict_reader_traced_peak_mib']:6.2f} MiB"
    )
    print(
        f"read_history     {rate:>10,.0f} rows/s   tracemalloc peak {f['read_history_traced_peak_mib']:6.2f} MiB"
    )
    print(f"normalising costs {baseline / rate:.1f}x the plain CSV read (best of {args.repeat} runs each)")
    print(
        f"full import      {f['full_import_rows_per_s']:>10,.0f} rows/s   into PostgreSQL's outbox"
        f" ({f['outbox_events']:,} events, batches of 1000)"
    )
    print(
        f"maxrss: {f['maxrss_mib_after_warmup']:.1f} MiB after warm-up, {f['maxrss_mib_at_end']:.1f} MiB at the end"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
