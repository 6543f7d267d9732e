"""What-if: how a draft policy would have scored on the tickets of a period, emitting nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bothways.events import TicketChanged
from services.sla.calendar import BusinessClock
from services.sla.policy import Policy
from services.sla.timers import TimerState, TimerStatus, compute_timers

__all__ = ["Compliance", "simulate"]


@dataclass
class Compliance:
    """Met and breached timers per metric, overall and by priority and business service."""

    tickets: int = 0
    matched: int = 0
    met: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    breached: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    running: Counter[str] = field(default_factory=Counter)

    def add(self, states: Iterable[TimerState], *, business_service: str | None) -> None:
        for state in states:
            if state.superseded or state.status is TimerStatus.CANCELLED:
                continue
            metric = state.metric.value
            if state.is_breached:
                outcome = self.breached
            elif state.status is TimerStatus.MET:
                outcome = self.met
            else:
                self.running[metric] += 1
                continue
            priority = state.priority.value if state.priority else "none"
            outcome[(metric, "priority", priority)] += 1
            outcome[(metric, "business_service", business_service or "none")] += 1
            outcome[(metric, "overall", "all")] += 1

    def report(self) -> dict[str, Any]:
        """Compliance = met / (met + breached), per metric, overall and by each breakdown."""
        rows: dict[str, dict[str, Any]] = {}
        for metric, breakdown, value in sorted({*self.met, *self.breached}):
            met, breached = self.met[(metric, breakdown, value)], self.breached[(metric, breakdown, value)]
            entry = {
                "met": met,
                "breached": breached,
                "compliance_percent": round(100 * met / (met + breached), 2),
            }
            section = rows.setdefault(metric, {"overall": None, "priority": {}, "business_service": {}})
            if breakdown == "overall":
                section["overall"] = entry
            else:
                section[breakdown][value] = entry
        return {
            "tickets": self.tickets,
            "matched": self.matched,
            "still_running": dict(self.running),
            "metrics": rows,
        }


def simulate(
    histories: Iterable[list[TicketChanged]],
    *,
    policy: Policy,
    clocks: Mapping[str, BusinessClock],
    now: datetime,
    into: Compliance,
) -> Compliance:
    """Add the timers a draft policy would have given each ticket it matches to the tally."""
    for history in histories:
        into.tickets += 1
        latest = max(history, key=lambda snapshot: snapshot.occurred_at)
        if not policy.matches(latest):
            continue
        into.matched += 1
        into.add(
            compute_timers(history, policy=policy, calendars=clocks, now=now),
            business_service=latest.business_service,
        )
    return into
