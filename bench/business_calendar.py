"""Benchmark: business-time arithmetic of services.sla.calendar against businesstimedelta.

BusinessClock runs its compiled core (services/sla/_clock_core.pyx) once the project is installed;
the interpreted core it was written from is timed too, as a figure to watch.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as wall_time
from typing import Any, NamedTuple

import businesstimedelta

from services.sla.calendar import COMPILED, BusinessClock, Calendar, _InterpretedClockCore

SEED = 20_260_101
SAMPLE_SIZE = 2_000
FIRST = datetime(2026, 1, 1, tzinfo=UTC)
# Start instants spread over two years.
RANGE_SECONDS = 2 * 365 * 86_400
DAY = 86_400
BUSINESS_DAY = 8 * 3_600


class Workload(NamedTuple):
    """How far apart the compared instants are and how large the added budgets are."""

    name: str
    max_span_seconds: int
    max_budget_seconds: int


WORKLOADS = (
    # Ticket SLA timers: a target of up to two weeks.
    Workload("ticket", max_span_seconds=14 * DAY, max_budget_seconds=10 * BUSINESS_DAY),
    # Quarterly availability and SLA reports: spans of up to a quarter.
    Workload("quarter", max_span_seconds=92 * DAY, max_budget_seconds=65 * BUSINESS_DAY),
)


class InterpretedClock(_InterpretedClockCore, BusinessClock):
    """BusinessClock with the Python versions of its two hot methods."""

    __slots__ = ()


def ours(clock_class: type[BusinessClock] = BusinessClock) -> BusinessClock:
    """Monday to Friday 09:00-17:00 UTC without holidays."""
    return clock_class(
        Calendar.from_config(
            {
                "name": "bench",
                "timezone": "UTC",
                "weekly": {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
            }
        )
    )


def theirs() -> businesstimedelta.Rules:
    """The same calendar in businesstimedelta, which takes naive datetimes as UTC."""
    workday = businesstimedelta.WorkDayRule(
        start_time=wall_time(9), end_time=wall_time(17), working_days=[0, 1, 2, 3, 4]
    )
    return businesstimedelta.Rules([workday])


def draw_pairs(rng: random.Random, workload: Workload, count: int) -> list[tuple[datetime, datetime]]:
    starts = (FIRST + timedelta(seconds=rng.randrange(RANGE_SECONDS)) for _ in range(count))
    return [(start, start + timedelta(seconds=rng.randrange(workload.max_span_seconds))) for start in starts]


def draw_budgets(rng: random.Random, workload: Workload, count: int) -> list[tuple[datetime, int]]:
    return [
        (FIRST + timedelta(seconds=rng.randrange(RANGE_SECONDS)), rng.randrange(workload.max_budget_seconds))
        for _ in range(count)
    ]


def naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


def their_seconds(rules: businesstimedelta.Rules, start: datetime, end: datetime) -> int:
    delta = rules.difference(start, end)
    return int(delta.timedelta.total_seconds())


def their_deadline(rules: businesstimedelta.Rules, start: datetime, seconds: int) -> datetime:
    deadline: datetime = start + businesstimedelta.BusinessTimeDelta(rules, seconds=seconds)
    return deadline.astimezone(UTC)


def check_agreement(
    clock: BusinessClock, rules: businesstimedelta.Rules, rng: random.Random, workload: Workload
) -> None:
    """Refuse to time two implementations that do not compute the same thing."""
    for start, end in draw_pairs(rng, workload, SAMPLE_SIZE):
        mine = clock.business_seconds_between(start=start, end=end)
        other = their_seconds(rules, naive(start), naive(end))
        assert mine == other, f"between {start} and {end}: ours {mine}, theirs {other}"
    for start, budget in draw_budgets(rng, workload, SAMPLE_SIZE):
        mine_deadline = clock.add_business_seconds(start=start, seconds=budget)
        other_deadline = their_deadline(rules, naive(start), budget)
        assert mine_deadline == other_deadline, (
            f"{start} + {budget}s: ours {mine_deadline}, theirs {other_deadline}"
        )


def rate(calls: Sequence[Callable[[], object]]) -> float:
    """Calls per second over one pass through the prepared calls."""
    began = time.perf_counter()
    for call in calls:
        call()
    return len(calls) / (time.perf_counter() - began)


def measure(
    clocks: Sequence[BusinessClock],
    rules: businesstimedelta.Rules,
    rng: random.Random,
    workload: Workload,
    count: int,
) -> list[tuple[str, list[float], float]]:
    """Ops/s of both operations in each of our clocks and in businesstimedelta, on the same drawn inputs."""
    pairs = draw_pairs(rng, workload, count)
    budgets = draw_budgets(rng, workload, count)

    def between_ours(clock: BusinessClock, start: datetime, end: datetime) -> Callable[[], object]:
        return lambda: clock.business_seconds_between(start=start, end=end)

    def add_ours(clock: BusinessClock, start: datetime, seconds: int) -> Callable[[], object]:
        return lambda: clock.add_business_seconds(start=start, seconds=seconds)

    def between_theirs(start: datetime, end: datetime) -> Callable[[], object]:
        return lambda: rules.difference(start, end)

    def add_theirs(start: datetime, seconds: int) -> Callable[[], object]:
        return lambda: start + businesstimedelta.BusinessTimeDelta(rules, seconds=seconds)

    return [
        (
            "business_seconds_between",
            [rate([between_ours(clock, start, end) for start, end in pairs]) for clock in clocks],
            rate([between_theirs(naive(start), naive(end)) for start, end in pairs]),
        ),
        (
            "add_business_seconds",
            [rate([add_ours(clock, start, seconds) for start, seconds in budgets]) for clock in clocks],
            rate([add_theirs(naive(start), seconds) for start, seconds in budgets]),
        ),
    ]


def run(count: int = 20_000) -> list[dict[str, Any]]:
    """Check that both libraries agree, then time both operations in each, on each workload."""
    rng = random.Random(SEED)
    clock, interpreted, rules = ours(), ours(InterpretedClock), theirs()
    for workload in WORKLOADS:
        # The agreement check also fills our per-year cache, so the timing sees the steady state.
        check_agreement(clock, rules, rng, workload)
        check_agreement(interpreted, rules, rng, workload)
    return [
        {
            "workload": workload.name,
            "operation": operation,
            "core": "compiled" if COMPILED else "interpreted",
            "ours_per_s": mine,
            "interpreted_per_s": mine_interpreted,
            "businesstimedelta_per_s": other,
            "ratio": mine / other,
        }
        for workload in WORKLOADS
        for operation, (mine, mine_interpreted), other in measure(
            [clock, interpreted], rules, rng, workload, count
        )
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Print the comparison as a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "-n", type=int, default=20_000, help="calls timed per operation, library and workload"
    )
    count = parser.parse_args(argv).n
    figures = run(count)
    print(
        f"Mon-Fri 09:00-17:00 UTC, no holidays; start instants in 2026-2027; {count} calls per cell; "
        f"agreement asserted first on {SAMPLE_SIZE} pairs and {SAMPLE_SIZE} deadlines per workload; "
        f"BusinessClock runs the {'compiled' if COMPILED else 'interpreted'} core"
    )
    print(
        f"{'workload':<34} {'operation':<26} {'ours ops/s':>12} {'interpreted ops/s':>18}"
        f" {'businesstimedelta ops/s':>24} {'ours/theirs':>12}"
    )
    spans = {w.name: w for w in WORKLOADS}
    for row in figures:
        workload = spans[row["workload"]]
        label = (
            f"{workload.name} (span<{workload.max_span_seconds // DAY}d, "
            f"budget<{workload.max_budget_seconds // 3600}h)"
        )
        print(
            f"{label:<34} {row['operation']:<26} {row['ours_per_s']:>12,.0f} {row['interpreted_per_s']:>18,.0f}"
            f" {row['businesstimedelta_per_s']:>24,.0f} {row['ratio']:>11,.0f}x"
        )


if __name__ == "__main__":
    main()
