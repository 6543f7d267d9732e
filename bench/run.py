"""`make bench`: every benchmark of issue 9, one table of figures each next to a baseline measured in the
same run, and bench/results.json.

Run: .venv/bin/python bench/run.py [--quick] [--only NAME ...]

Each bench module exposes a function returning its figures; this runner calls them one after the
other (never two at once: they would share the 2 cores), turns the figures into rows (figure, value,
baseline, ratio, target, met?), prints the table and writes bench/results.json with the machine, the
date, the commit and the command. `--quick` runs reduced sizes (minutes); the default is the full size
(the SLA firing bench at 1,000,000 running timers). A bench that fails is reported in the table and the
others still run.

bench/sla_firing.py is run as its own process (its figures are read from the JSON it writes), so its
million loaded rows do not stay in this process and its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import business_calendar
import history_import
import ingest
import pipeline
import reporting

from bothways import devstack

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"

# The sizes of each bench: the full run is what issue 9 asks for; --quick keeps every part, smaller.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "ingest": {"webhooks": 5000, "concurrency": 32, "rounds": 3},
        "pipeline": {"webhooks": 5000, "concurrency": 32, "offered_rate": 100.0},
        "sla_firing": {"timers": 1_000_000, "spread_seconds": 600, "capacity_timers": 100_000},
        "business_calendar": {"count": 20_000},
        "history_import": {"rows": 100_000, "repeat": 3},
        "reporting": {"events": 1_000_000, "services": 40, "queries": 200, "compare": 0},
    },
    "quick": {
        "ingest": {"webhooks": 2000, "concurrency": 32, "rounds": 3},
        "pipeline": {"webhooks": 2000, "concurrency": 32, "offered_rate": 100.0},
        # The same offered rate as the full size (1,667 timers due per second), over a tenth of the time.
        "sla_firing": {"timers": 100_000, "spread_seconds": 60, "capacity_timers": 20_000},
        "business_calendar": {"count": 5_000},
        "history_import": {"rows": 20_000, "repeat": 2},
        "reporting": {"events": 100_000, "services": 40, "queries": 50, "compare": 0},
    },
}


@dataclass
class Row:
    """One line of the table: a figure, its same-run baseline, and the target where issue 9 sets one."""

    figure: str
    value: float | None
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    # value / baseline_value, unless the figure is better when lower (then the same, read as "x the baseline").
    ratio: float | None = None
    target: str = ""
    met: bool | None = None

    def __post_init__(self) -> None:
        if self.ratio is None and self.value is not None and self.baseline_value:
            self.ratio = self.value / self.baseline_value


# --- the benches, each to rows ---------------------------------------------------------------------------


def ingest_rows(size: dict[str, Any]) -> tuple[dict[str, Any], list[Row]]:
    f = ingest.run(**size)
    ratio = f["ratio_ingest_to_bare"]
    rows = [
        Row(
            "ingest: signed webhooks accepted, one process",
            f["ingest_per_s"],
            "/s",
            "bare FastAPI 202, same uvicorn",
            f["bare_per_s"],
            ratio,
            ">= 0.5 x bare",
            ratio >= 0.5,
        ),
        Row(
            "ingest: CPU per webhook (ingest process)",
            f["ingest"]["cpu_ms_per_request_server"],
            "ms",
            "bare app CPU per request",
            f["bare"]["cpu_ms_per_request_server"],
        ),
    ]
    return f, rows


def pipeline_rows(size: dict[str, Any]) -> tuple[dict[str, Any], list[Row]]:
    args = argparse.Namespace(settle_timeout=300.0, **size)
    f = pipeline.run(args)
    raw = f["raw_consume_per_s"]
    offered = f"at {f['offered_rate']:.0f}/s offered"
    rows = [
        Row(
            "sla consumer: events/s draining a backlog",
            f["sla_backlog_recorded_per_s"],
            "/s",
            "raw aiokafka consume, same broker",
            raw,
        ),
        Row(
            "survey consumer: events/s draining a backlog",
            f["survey_backlog_processed_per_s"],
            "/s",
            "raw aiokafka consume, same broker",
            raw,
        ),
        Row(
            f"end to end webhook -> sla state p50, {offered}",
            f["end_to_end_ms"]["p50"],
            "ms",
            "raw produce -> consume p50",
            f["raw_latency_ms"]["p50"],
        ),
        Row(
            f"end to end webhook -> sla state p99, {offered}",
            f["end_to_end_ms"]["p99"],
            "ms",
            "raw produce -> consume p99",
            f["raw_latency_ms"]["p99"],
        ),
    ]
    return f, rows


def sla_firing_rows(size: dict[str, Any]) -> tuple[dict[str, Any], list[Row]]:
    command = [
        sys.executable,
        str(ROOT / "bench" / "sla_firing.py"),
        *(f"--{name.replace('_', '-')}={value}" for name, value in size.items()),
    ]
    process = subprocess.Popen(command, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"{shlex.join(command)} exited with {process.returncode}")
    f = json.loads((ROOT / "bench" / "results" / "sla_firing.json").read_text())
    f["bench_process_peak_rss_mib"] = usage.ru_maxrss / 1024  # Linux: KiB
    p99_ms = f["lateness_p99_s"] * 1000
    rows = [
        # No bare baseline of lateness is measured; the capacity row below is the same-run baseline.
        Row(
            f"SLA firing lateness p99, {f['timers']:,} running timers",
            p99_ms,
            "ms",
            "(capacity below)",
            None,
            None,
            "< 1000 ms",
            p99_ms < 1000,
        ),
        Row(
            "SLA firing: catch-up capacity of fire_due",
            f["capacity_fire_due_per_s"],
            "timers/s",
            "bare claim + update loop",
            f["capacity_bare_per_s"],
        ),
    ]
    return f, rows


def calendar_rows(size: dict[str, Any]) -> tuple[dict[str, Any], list[Row]]:
    figures = business_calendar.run(size["count"])
    rows = [
        Row(
            f"calendar: {r['operation']} ({r['workload']})",
            r["ours_per_s"],
            "ops/s",
            "businesstimedelta",
            r["businesstimedelta_per_s"],
            r["ratio"],
            ">= 100 x",
            r["ratio"] >= 100,
        )
        for r in figures
    ]
    return {"cells": figures, **size}, rows


def history_rows(size: dict[str, Any]) -> tuple[dict[str, Any], list[Row]]:
    f = history_import.run(**size)
    baseline = f["dict_reader_rows_per_s"]
    rows = [
        Row(
            "history import: read and normalise",
            f["read_history_rows_per_s"],
            "rows/s",
            "csv.DictReader",
            baseline,
        ),
        Row(
            "history import: full import into PostgreSQL",
            f["full_import_rows_per_s"],
            "rows/s",
            "csv.DictReader",
            baseline,
        ),
    ]
    return f, rows


def reporting_rows(size: dict[str, Any]) -> tuple[dict[str, Any], list[Row]]:
    f = reporting.measure(argparse.Namespace(fold_timeout=3600.0, **size))
    health = f["query_ms"]["GET /healthz (baseline)"]["p99"]
    rows = [
        Row(
            f"reporting: rebuild from {f['events']:,} events",
            f["fold_events_per_s"],
            "events/s",
            "raw aiokafka consume, same broker",
            f["raw_consume_per_s"],
        ),
        Row(
            "reporting: scorecards of all services p99",
            f["query_ms"]["GET /scorecards (all services)"]["p99"],
            "ms",
            "GET /healthz p99",
            health,
        ),
        Row(
            "reporting: one service's scorecard p99",
            f["query_ms"]["GET /scorecards/{service}"]["p99"],
            "ms",
            "GET /healthz p99",
            health,
        ),
    ]
    return f, rows


BENCHES: dict[str, Callable[[dict[str, Any]], tuple[dict[str, Any], list[Row]]]] = {
    "ingest": ingest_rows,
    "pipeline": pipeline_rows,
    "sla_firing": sla_firing_rows,
    "business_calendar": calendar_rows,
    "history_import": history_rows,
    "reporting": reporting_rows,
}


def memory_rows(figures: dict[str, dict[str, Any]]) -> list[Row]:
    """Peak RSS of each service process under its bench's load, against the bare FastAPI app's."""
    bare = figures.get("ingest", {}).get("bare_peak_rss_mib")
    peaks = {
        "ingest": figures.get("ingest", {}).get("ingest_peak_rss_mib"),
        "sla": figures.get("pipeline", {}).get("peak_rss_mib", {}).get("sla"),
        "survey": figures.get("pipeline", {}).get("peak_rss_mib", {}).get("survey"),
        "reporting": figures.get("reporting", {}).get("reporting_peak_rss_mib"),
    }
    where = {
        "ingest": "ingest bench",
        "sla": "pipeline",
        "survey": "pipeline",
        "reporting": "rebuild + queries",
    }
    return [
        Row(f"peak RSS: {name} ({where[name]})", peak, "MiB", "bare FastAPI app", bare)
        for name, peak in peaks.items()
        if peak is not None
    ]


# --- the table and the results file ------------------------------------------------------------------


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
    return f"{text} {unit}".rstrip()


def table(rows: Sequence[Row]) -> str:
    header = ("figure", "value", "baseline", "baseline value", "ratio", "target", "met?")
    lines = [
        (
            r.figure,
            number(r.value, r.unit),
            r.baseline,
            number(r.baseline_value, r.unit),
            "-" if r.ratio is None else f"{r.ratio:,.3g}",
            r.target or "-",
            {True: "yes", False: "NO", None: "-"}[r.met],
        )
        for r in rows
    ]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *lines, strict=True)]
    right = {1, 3, 4}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            f"{c:>{w}}" if i in right else f"{c:<{w}}"
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(cells) for cells in lines)])


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "postgresql": postgres_version(),
    }


def postgres_version() -> str:
    async def ask(url: str) -> str:
        conn = await asyncpg.connect(url)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        with devstack.postgres(os.environ.get("DATABASE_URL")) as url:
            return asyncio.run(ask(url))
    except Exception as exc:
        return f"unknown ({type(exc).__name__})"


def commit() -> str:
    return subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()


def wait_quiet(within: float, *, threshold: float = 0.25) -> float:
    """Wait (up to `within` seconds) for two consecutive 10 s windows under `threshold` busy; the last share."""
    deadline = time.monotonic() + within
    quiet = 0
    while True:
        share = pipeline.machine_busy_share(10.0)
        quiet = quiet + 1 if share < threshold else 0
        if quiet >= 2 or time.monotonic() >= deadline:
            return share


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="reduced sizes (minutes instead of the full run)"
    )
    parser.add_argument("--only", nargs="+", choices=list(BENCHES), help="run only these benches")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="MINUTES",
        help="before each bench, wait up to MINUTES for two 10 s windows with the machine under 25%% busy",
    )
    args = parser.parse_args(argv)
    size_name = "quick" if args.quick else "full"
    started, revision = datetime.now(UTC), commit()  # what is measured: the tree as the run starts
    busy = pipeline.machine_busy_share()
    busy_before: dict[str, float] = {}
    rows: list[Row] = []
    figures: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for name in args.only or BENCHES:
        busy_before[name] = round(wait_quiet(args.wait_quiet * 60), 3)
        print(
            f"\n=== {name} ({size_name}: {SIZES[size_name][name]}), machine {busy_before[name]:.0%} busy before",
            flush=True,
        )
        began = time.monotonic()
        try:
            figures[name], bench_rows = BENCHES[name](SIZES[size_name][name])
            rows += bench_rows
        except Exception as exc:
            traceback.print_exc()
            failures[name] = f"{type(exc).__name__}: {exc}"
            rows.append(Row(f"{name}: FAILED ({failures[name][:80]})", None, ""))
        seconds[name] = round(time.monotonic() - began, 1)
    rows += memory_rows(figures)
    results = {
        "date": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": revision,
        "command": shlex.join([os.path.relpath(sys.executable), *sys.argv]),
        "size": size_name,
        "sizes": {name: SIZES[size_name][name] for name in args.only or BENCHES},
        "machine": machine(),
        "machine_busy_before_run": round(busy, 3),
        # Share of both cores busy in the 10 s before each bench (other tenants skew every figure).
        "machine_busy_before_each_bench": busy_before,
        "seconds_per_bench": seconds,
        "table": [asdict(r) for r in rows],
        "failures": failures,
        "figures": figures,
    }
    box = results["machine"]
    print(f"\nBothways benchmarks ({size_name}), {results['date']}, commit {results['commit']}")
    print(
        f"machine: {box['cpu']}, {box['cores']} cores, {box['memory_gib']} GiB, Python {box['python']}, "
        f"PostgreSQL {box['postgresql']}; busy before each bench: "
        + ", ".join(f"{name} {share:.0%}" for name, share in busy_before.items())
        + "\n"
    )
    print(table(rows))
    print(f"\ncommand: {results['command']}")
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results: {os.path.relpath(RESULTS)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
