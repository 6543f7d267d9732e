"""Benchmark: the availability computations the sla service runs per change and per /metrics scrape.

Pure computation, no database: what one recomputation of a month costs for a busy service, and what a
scrape costs per business service (current month, 7/30/90 days, the live part of the counters).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from services.sla.availability import Impact, calendar_month
from services.sla.availability_reads import gauges
from services.sla.calendar import BusinessClock, Calendar
from services.sla.catalogue import BusinessService
from services.sla.maintenance import MaintenanceWindow
from services.sla.outages import ServiceContext
from services.sla.signals import Episode, SignalEvent, SignalKind, fold_signal

SEED = 20_261_001
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
OFFICE = Calendar.from_config(
    {
        "name": "office-berlin",
        "timezone": "Europe/Berlin",
        "weekly": {day: ["08:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": {"country": "DE", "subdivision": "BE"},
    }
)
WINDOW = MaintenanceWindow.model_validate(
    {"weekly_on": ["sun"], "at": "02:00", "duration_minutes": 120, "timezone": "Europe/Berlin"}
)


def episodes(count: int, *, days: int, rng: random.Random) -> dict[str, tuple[Episode, ...]]:
    """`count` outages of 1 to 90 minutes spread over the last `days` days, each its own signal."""
    impacts = (Impact.MAJOR, Impact.PARTIAL, Impact.DEGRADED)
    found = {}
    for index in range(count):
        start = NOW - timedelta(seconds=rng.randrange(days * 86_400))
        end = start + timedelta(minutes=rng.randint(1, 90))
        found[f"alertmanager:{index}"] = (Episode(start, end, rng.choice(impacts)),)
    return found


def context(signals: dict[str, tuple[Episode, ...]], *, office: bool) -> ServiceContext:
    service = BusinessService(id="webshop", name="Web shop", objective_percent=99.9, timezone="Europe/Berlin")
    return ServiceContext(
        service=service,
        timezone="Europe/Berlin",
        windows=(WINDOW,),
        episodes=signals,
        clock=BusinessClock(OFFICE) if office else None,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def timed(label: str, repeat: int, work: Callable[[], object]) -> None:
    work()  # warm caches (calendar years, holidays) as a running service has them
    started = time.perf_counter()
    for _ in range(repeat):
        work()
    per_call = (time.perf_counter() - started) / repeat
    print(f"{label:<62} {per_call * 1000:9.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rng = random.Random(SEED)
    october = calendar_month("2026-10", tz="Europe/Berlin")
    for count, office in ((100, False), (100, True), (1_000, True)):
        service = context(episodes(count, days=90, rng=rng), office=office)
        hours = "office hours" if office else "24x7"
        timed(
            f"month figures, {count} outages in 90 days, {hours}",
            args.repeat,
            lambda s=service: s.figures(october, now=NOW),
        )
        timed(
            f"scrape figures per service, {count} outages, {hours}",
            args.repeat,
            lambda s=service: gauges(s, months=[], now=NOW),
        )
    events = []
    for index in range(500):
        start = NOW - timedelta(hours=1_000 - 2 * index)
        events.append(SignalEvent(f"s{index}", SignalKind.STARTED, start, start, None, Impact.MAJOR))
        end = start + timedelta(minutes=30)
        events.append(SignalEvent(f"e{index}", SignalKind.ENDED, end, start, end, Impact.MAJOR))
    rng.shuffle(events)
    timed("fold one signal of 1,000 events (500 firings), shuffled", args.repeat, lambda: fold_signal(events))


if __name__ == "__main__":
    main()
