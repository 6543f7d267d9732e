"""What a timer announces over time: its pending marks, which of them fire at an instant, and the events.

A running timer's future is known when it is computed: the instants it will cross each warning and
breach, as long as nothing happens to the ticket. Those instants are stored as marks; the scheduler
fires them without reading the history, and any new ticket event recomputes them. Firing follows the
same rules as `timers.transitions`: when several marks are due at once (the scheduler was late or
down), a breach supersedes the warnings, and of several warnings only the highest is announced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from math import ceil
from typing import Any, Final

from bothways.events import (
    SlaBreached,
    SlaBreachRetracted,
    SlaCancelled,
    SlaMet,
    SlaPaused,
    SlaResumed,
    SlaStarted,
    SlaStopped,
    SlaTimerEvent,
    SlaWarned,
    TicketChanged,
    deterministic_id,
)
from services.sla.timers import TimerState, TimerStatus, TimerTransition, TransitionKind

__all__ = [
    "EVENT_TYPES",
    "TICKET_FIELDS",
    "TIMER_FIELDS",
    "Mark",
    "due_marks",
    "event_id",
    "mark_event",
    "marks_of",
    "ticket_fields",
    "timer_fields",
    "transition_event",
]

EVENT_TYPES: Final[Mapping[TransitionKind, type[SlaTimerEvent]]] = {
    TransitionKind.STARTED: SlaStarted,
    TransitionKind.PAUSED: SlaPaused,
    TransitionKind.RESUMED: SlaResumed,
    TransitionKind.WARNED: SlaWarned,
    TransitionKind.BREACHED: SlaBreached,
    TransitionKind.BREACH_RETRACTED: SlaBreachRetracted,
    TransitionKind.MET: SlaMet,
    TransitionKind.STOPPED: SlaStopped,
    TransitionKind.CANCELLED: SlaCancelled,
}


@dataclass(frozen=True, slots=True)
class Mark:
    """An instant a running timer will cross a warning threshold or breach, and its elapsed time then."""

    kind: TransitionKind
    at: datetime
    elapsed: int
    percent: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "at": self.at.isoformat(),
            "elapsed": self.elapsed,
            "percent": self.percent,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Mark:
        return cls(
            kind=TransitionKind(data["kind"]),
            at=datetime.fromisoformat(data["at"]),
            elapsed=int(data["elapsed"]),
            percent=data.get("percent"),
        )


def marks_of(state: TimerState) -> tuple[Mark, ...]:
    """The marks still ahead of a timer, in time order; none unless it runs."""
    if state.status is not TimerStatus.RUNNING:
        return ()
    goal = state.target_business_seconds
    warnings = [
        Mark(TransitionKind.WARNED, mark.at, _threshold_seconds(mark.percent, goal), mark.percent)
        for mark in state.pending_warnings
    ]
    breach = Mark(TransitionKind.BREACHED, state.breaches_at, goal + 1)
    return tuple(sorted((*warnings, breach), key=lambda mark: mark.at))


def due_marks(marks: Sequence[Mark], *, now: datetime) -> tuple[Mark | None, tuple[Mark, ...]]:
    """The one mark to announce at `now` (or None) and the marks still ahead."""
    due = [mark for mark in marks if mark.at <= now]
    ahead = tuple(mark for mark in marks if mark.at > now)
    breach = next((mark for mark in due if mark.kind is TransitionKind.BREACHED), None)
    if breach is not None:
        # The breach makes the pending warnings moot: they are not announced afterwards either.
        return breach, ()
    return (due[-1] if due else None), ahead


def event_id(*, ticket_key: str, timer_key: str, kind: TransitionKind, at: datetime, ordinal: int) -> str:
    """The same transition always gets the same id; `ordinal` tells a breach after a retraction apart."""
    return deterministic_id("sla", ticket_key, timer_key, kind.value, at.isoformat(), str(ordinal))


def transition_event(transition: TimerTransition, *, ticket: TicketChanged) -> SlaTimerEvent:
    """The event announcing a computed transition, with the timer's figures as of the evaluation."""
    timer = transition.timer
    return _event(
        transition.kind,
        ticket_key=ticket.ticket_key,
        timer=timer_fields(timer),
        at=transition.at,
        state=_state_after(transition),
        elapsed=timer.business_elapsed_seconds,
        percent=transition.percent,
        retroactive=transition.retroactive,
        ticket=ticket_fields(ticket),
    )


def mark_event(
    mark: Mark, *, ticket_key: str, timer: Mapping[str, Any], ticket: Mapping[str, Any]
) -> SlaTimerEvent:
    """The event announcing a stored mark fired by the scheduler."""
    state = TimerStatus.BREACHED if mark.kind is TransitionKind.BREACHED else TimerStatus.RUNNING
    return _event(
        mark.kind,
        ticket_key=ticket_key,
        timer=timer,
        at=mark.at,
        state=state,
        elapsed=mark.elapsed,
        percent=mark.percent,
        retroactive=False,
        ticket=ticket,
    )


def _event(
    kind: TransitionKind,
    *,
    ticket_key: str,
    timer: Mapping[str, Any],
    at: datetime,
    state: TimerStatus,
    elapsed: int,
    percent: float | None,
    retroactive: bool,
    ticket: Mapping[str, Any],
) -> SlaTimerEvent:
    goal = int(timer["target_business_seconds"])
    fields: dict[str, Any] = {
        **ticket,
        **timer,
        "ticket_key": ticket_key,
        "state": state.value,
        "occurred_at": at,
        "business_elapsed_seconds": elapsed,
        "remaining_business_seconds": max(0, goal - elapsed),
        "percent_elapsed": 100 * elapsed / goal,
        "retroactive": retroactive,
    }
    if kind is TransitionKind.WARNED:
        fields["threshold_percent"] = percent
    return EVENT_TYPES[kind].model_validate(fields)


# The fields of an SLA event that describe the timer itself, and the ticket's attribution.
TIMER_FIELDS: Final = (
    "timer_key",
    "metric",
    "cycle",
    "priority",
    "policy",
    "policy_version",
    "calendar",
    "started_at",
    "due_at",
    "stopped_at",
    "target_business_seconds",
)
TICKET_FIELDS: Final = ("source", "kind", "business_service", "assignment_group", "assignee", "organization")


def timer_fields(state: TimerState) -> dict[str, Any]:
    """The fields of an SLA event that describe the timer itself (TIMER_FIELDS)."""
    return {
        "timer_key": state.key,
        "metric": state.metric.value,
        "cycle": state.cycle,
        "priority": state.priority.value if state.priority is not None else None,
        "policy": state.policy,
        "policy_version": state.policy_version,
        "calendar": state.calendar,
        "started_at": state.started_at,
        "due_at": state.due_at,
        "stopped_at": state.stopped_at,
        "target_business_seconds": state.target_business_seconds,
    }


def ticket_fields(ticket: TicketChanged) -> dict[str, Any]:
    """The attribution an SLA event carries: the ticket's service, group and assignee (TICKET_FIELDS)."""
    return {
        "source": ticket.source,
        "kind": ticket.kind.value,
        "business_service": ticket.business_service,
        "assignment_group": ticket.assignment_group,
        "assignee": ticket.assignee,
        "organization": ticket.organization,
    }


def _state_after(transition: TimerTransition) -> TimerStatus:
    timer = transition.timer
    # A breached timer stays breached while its clock pauses and resumes (as the stored state says);
    # a reader folding the events in order must not see it running again.
    breached = timer.breached_at is not None and timer.breached_at <= transition.at
    match transition.kind:
        case TransitionKind.PAUSED:
            return TimerStatus.BREACHED if breached else TimerStatus.PAUSED
        case TransitionKind.STARTED:
            return TimerStatus.PAUSED if timer.is_paused else TimerStatus.RUNNING
        case TransitionKind.RESUMED | TransitionKind.WARNED:
            return TimerStatus.BREACHED if breached else TimerStatus.RUNNING
        case TransitionKind.BREACHED | TransitionKind.STOPPED:
            return TimerStatus.BREACHED
        case TransitionKind.MET:
            return TimerStatus.MET
        case TransitionKind.CANCELLED:
            return TimerStatus.CANCELLED
        case _:
            return timer.status


def _threshold_seconds(percent: float, goal: int) -> int:
    # The same rounding as the timers: the earliest whole second at or past the fraction of the target.
    fraction = Fraction(percent).limit_denominator(1_000_000) / 100
    return max(1, ceil(fraction * goal))
