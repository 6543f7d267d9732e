"""The sla service's metrics: timers by state (read from PostgreSQL), transitions, firing lateness."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import prometheus_client
from prometheus_client import Gauge, Histogram

from bothways.db import Pool
from bothways.events import SlaTimerEvent
from services.sla import store

SLA_TIMERS = Gauge("bothways_sla_timers", "SLA timers by state.", ["state"])
SLA_TRANSITIONS = prometheus_client.Counter(
    "bothways_sla_transitions_total",
    "SLA events emitted, by kind (started, warned, breached, met, ...), metric and priority.",
    ["kind", "metric", "priority"],
)
SLA_OUTCOMES = prometheus_client.Counter(
    "bothways_sla_outcomes_total",
    "SLA timers met or breached, by metric, priority and business service.",
    ["outcome", "metric", "priority", "business_service"],
)
SLA_FIRING_LATENESS = Histogram(
    "bothways_sla_firing_lateness_seconds",
    "Seconds between a warning or breach instant and the moment its event was emitted.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
_STATES = ("running", "paused", "met", "breached", "cancelled")


def record_transitions(events: Iterable[SlaTimerEvent]) -> None:
    """Count a batch of emitted events, one increment per label set (a label lookup is not free)."""
    transitions: Counter[tuple[str, str, str]] = Counter()
    outcomes: Counter[tuple[str, str, str, str]] = Counter()
    for event in events:
        kind = event.type.rsplit(".", 1)[1]
        priority = str(event.priority or "none")
        transitions[(kind, str(event.metric), priority)] += 1
        if kind in ("met", "breached"):
            outcomes[(kind, str(event.metric), priority, event.business_service or "none")] += 1
    for labels, count in transitions.items():
        SLA_TRANSITIONS.labels(*labels).inc(count)
    for outcome_labels, count in outcomes.items():
        SLA_OUTCOMES.labels(*outcome_labels).inc(count)


def record_fired(lateness_seconds: Iterable[float]) -> None:
    for seconds in lateness_seconds:
        SLA_FIRING_LATENESS.observe(max(0.0, seconds))


async def refresh_timer_counts(pool: Pool) -> None:
    async with pool.acquire() as conn:
        counts = await store.timers_by_state(conn)
    for state in _STATES:
        SLA_TIMERS.labels(state).set(counts.get(state, 0))
