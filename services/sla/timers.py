"""SLA timers as a pure function of a policy version, calendars, a ticket's history and now; and their events.

The rules, precisely (all instants are whole UTC seconds; business time is counted on the metric's calendar):

- History: snapshots dated after `now` are not yet in effect and are ignored. The rest are ordered by
  (occurred_at, updated_at, `created` changes first, full content) and exact duplicates are dropped, so
  any delivery order and any number of redeliveries give the same result.
- A cycle starts at the ticket's creation (cycle 1) or at a reopen (later cycles). Before the first known
  snapshot the ticket is taken as open, with that snapshot's priority.
- Business elapsed at an instant t is the business time in [start, t) minus the business time in pauses.
  A pause lasts from the snapshot entering a pause status or category to the snapshot leaving it.
- `due_at` is the earliest instant at which business elapsed equals the target: a clock stopped at or
  before it is met. `breaches_at` is the earliest instant at which business elapsed exceeds the target by
  one second: a clock stopped at or after it is breached. The decision compares whole business seconds
  (`elapsed <= target` is met), never the percentage. When `due_at` is a closing time, a stop after it
  but before the next opening is still met.
- A warning for fraction f fires at the earliest instant at which business elapsed reaches ceil(f x target).
- `first_response` stops at the first public agent response after the cycle start (the snapshot field
  `first_public_agent_response_at`, or a `commented_public_agent` snapshot), or at resolution if nobody
  answered first. `resolution` stops when the status category becomes resolved or closed. A canceled
  ticket cancels the running timers of every metric.
- Priority change while the clock runs: the timer of the old priority is cancelled (superseded) at the
  change, and a timer for the new priority is attached at the change, counting from the cycle start with
  the same pauses. Its warnings or breach that fall before the attachment are marked retroactive.
- Reopen (the status category leaves resolved/closed/canceled for new/open/pending): `new_cycle` starts
  a fresh clock at the reopen; `resume` continues the stopped clock, the time between stop and reopen
  not counting. A first response that happened stays met under `resume`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from math import ceil
from typing import Final
from zoneinfo import ZoneInfo

from bothways.events import Priority, StatusCategory, TicketChange, TicketChanged
from services.sla.calendar import BusinessClock, Calendar
from services.sla.policy import Metric, MetricPolicy, Policy, ReopenRule, Target

__all__ = [
    "BreachSummary",
    "Pause",
    "PauseKind",
    "TimerState",
    "TimerStatus",
    "TimerTransition",
    "TransitionKind",
    "UnknownCalendarError",
    "WarningMark",
    "breach_summary",
    "compute_timers",
    "next_due",
    "ordered_history",
    "target_seconds",
    "transitions",
]

_DONE: Final = frozenset({StatusCategory.RESOLVED, StatusCategory.CLOSED})
_ENDED: Final = _DONE | {StatusCategory.CANCELED}
_ONE_DAY: Final = timedelta(days=1)
# A business-day target further than this many working days away is a configuration mistake.
_MAX_BUSINESS_DAYS: Final = 3660


class UnknownCalendarError(LookupError):
    """A policy counts on a calendar that was not given."""


class TimerStatus(StrEnum):
    """Where a timer stands; `breached` wins over running, paused and met, `cancelled` over all."""

    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    BREACHED = "breached"
    CANCELLED = "cancelled"


class PauseKind(StrEnum):
    """Why the clock did not count: a pause status, or the stretch between a resolve and a resumed reopen."""

    PAUSE = "pause"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Pause:
    """A stretch in which the clock did not count; an open one has no end yet."""

    start: datetime
    end: datetime | None
    reason: str
    kind: PauseKind = PauseKind.PAUSE


@dataclass(frozen=True, slots=True)
class WarningMark:
    """The instant a warning threshold is (or, when pending, will be) crossed."""

    percent: float
    at: datetime
    # Crossed before the timer was attached (a priority change): shown, never announced.
    retroactive: bool = False


@dataclass(frozen=True, slots=True)
class TimerState:
    """One timer as of an instant: a metric of a cycle, for the priority it was attached for."""

    key: str
    metric: Metric
    cycle: int
    priority: Priority | None
    policy: str
    policy_version: int
    calendar: str
    status: TimerStatus
    started_at: datetime
    attached_at: datetime
    # When the clock stopped: met or breached stop, cancellation, or supersession; None while it runs.
    stopped_at: datetime | None
    evaluated_at: datetime
    due_at: datetime
    breaches_at: datetime
    breached_at: datetime | None
    breach_retroactive: bool
    superseded: bool
    target: Target
    target_business_seconds: int
    business_elapsed_seconds: int
    paused_business_seconds: int
    actual_elapsed_seconds: int
    remaining_business_seconds: int
    overdue_business_seconds: int
    percent_elapsed: float
    warnings: tuple[WarningMark, ...]
    pending_warnings: tuple[WarningMark, ...]
    pauses: tuple[Pause, ...]
    explanation: tuple[str, ...]

    @property
    def is_paused(self) -> bool:
        """Whether the clock is in a pause right now (and not stopped)."""
        return self.stopped_at is None and any(p.end is None for p in self.pauses)

    @property
    def is_breached(self) -> bool:
        """Whether the target was exceeded, whatever the clock does now."""
        return self.breached_at is not None


class TransitionKind(StrEnum):
    """The events a timer emits, each at most once per change of state."""

    STARTED = "started"
    PAUSED = "paused"
    RESUMED = "resumed"
    WARNED = "warned"
    BREACHED = "breached"
    BREACH_RETRACTED = "breach_retracted"
    MET = "met"
    # A breached timer's clock stopped: it stays breached, with its final elapsed time.
    STOPPED = "stopped"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class TimerTransition:
    """A change of a timer worth an event: what happened, when it happened, and the timer afterwards."""

    kind: TransitionKind
    key: str
    at: datetime
    timer: TimerState
    percent: float | None = None
    retroactive: bool = False


@dataclass(frozen=True, slots=True)
class BreachSummary:
    """Whether the latest cycle of a metric breached, and whether any cycle did."""

    cycles: int
    last_cycle_breached: bool
    ever_breached: bool


def compute_timers(
    history: Iterable[TicketChanged],
    *,
    policy: Policy,
    calendars: Mapping[str, Calendar | BusinessClock],
    now: datetime,
) -> list[TimerState]:
    """Every timer of a ticket as of `now`, from its snapshots, in metric, cycle and attachment order."""
    moment = _second(now)
    snapshots = ordered_history(history, now=moment)
    if not snapshots:
        return []
    states: list[TimerState] = []
    for rules in policy.metrics:
        clock = _clock(calendars, rules.calendar)
        for cycle in _Tracker.cycles_of(snapshots, rules=rules, now=moment):
            states.extend(_cycle_states(cycle, rules=rules, policy=policy, clock=clock, now=moment))
    return states


def ordered_history(history: Iterable[TicketChanged], *, now: datetime | None = None) -> list[TicketChanged]:
    """Snapshots in effect at `now`, in a delivery-independent order, exact duplicates removed."""
    keyed = {
        _order_key(snapshot): snapshot for snapshot in history if now is None or snapshot.occurred_at <= now
    }
    return [keyed[key] for key in sorted(keyed)]


def target_seconds(clock: BusinessClock, target: Target, *, start: datetime) -> int:
    """A target in business seconds for a clock starting at `start` (business days are converted here)."""
    if target.seconds is not None:
        return target.seconds
    days = target.business_days or 0
    zone = ZoneInfo(clock.calendar.timezone)
    day = clock.next_opening(at=start).astimezone(zone).date()
    for _ in range(days):
        day = clock.next_opening(at=_local_midnight(day + _ONE_DAY, zone)).astimezone(zone).date()
    return clock.business_seconds_between(start=start, end=_close_of_day(clock, day, zone))


def transitions(
    previous: Sequence[TimerState], current: Sequence[TimerState], *, now: datetime
) -> list[TimerTransition]:
    """The events to emit going from the previously computed timers to the current ones."""
    before = {state.key: state for state in previous}
    after = {state.key for state in current}
    vanished = [_vanished(state, now=_second(now)) for state in previous if state.key not in after]
    emitted = [event for event in vanished if event is not None]
    for state in current:
        emitted.extend(_timer_transitions(before.get(state.key), state, now=_second(now)))
    return emitted


def next_due(states: Iterable[TimerState]) -> datetime | None:
    """The next instant at which a running timer crosses a warning or breaches, for the scheduler."""
    instants = [
        instant
        for state in states
        if state.status is TimerStatus.RUNNING
        for instant in (state.breaches_at, *(mark.at for mark in state.pending_warnings))
    ]
    return min(instants, default=None)


def breach_summary(states: Iterable[TimerState], *, metric: Metric) -> BreachSummary:
    """Whether the last cycle and any cycle of a metric breached, superseded timers left out."""
    effective = [s for s in states if s.metric is metric and not s.superseded]
    if not effective:
        return BreachSummary(cycles=0, last_cycle_breached=False, ever_breached=False)
    last = max(state.cycle for state in effective)
    return BreachSummary(
        cycles=last,
        last_cycle_breached=any(s.is_breached for s in effective if s.cycle == last),
        ever_breached=any(s.is_breached for s in effective),
    )


# History


def _order_key(snapshot: TicketChanged) -> tuple[datetime, datetime, bool, str]:
    # Content last, so two different snapshots of the same second still sort the same way every time.
    content = json.dumps(snapshot.model_dump(mode="json"), sort_keys=True, default=str)
    updated = snapshot.updated_at or snapshot.occurred_at
    return (snapshot.occurred_at, updated, snapshot.change != TicketChange.CREATED, content)


def _second(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"expected a timezone-aware datetime, got {moment!r}")
    return moment.astimezone(UTC).replace(microsecond=0)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clock(calendars: Mapping[str, Calendar | BusinessClock], name: str) -> BusinessClock:
    found = calendars.get(name)
    if found is None:
        raise UnknownCalendarError(f"calendar {name!r} is not among the calendars given")
    return found if isinstance(found, BusinessClock) else BusinessClock(found)


# Business days


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def _close_of_day(clock: BusinessClock, day: date, zone: ZoneInfo) -> datetime:
    """The instant the last business second of a local date ends."""
    midnight = _local_midnight(day, zone)
    seconds = clock.business_seconds_between(start=midnight, end=_local_midnight(day + _ONE_DAY, zone))
    return clock.add_business_seconds(start=midnight, seconds=seconds)


# Cycles: the walk through the history


class _StopKind(StrEnum):
    RESPONDED = "responded"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class _Attachment:
    priority: Priority | None
    attached_at: datetime
    ended_at: datetime | None = None


@dataclass(slots=True)
class _Stop:
    at: datetime
    kind: _StopKind


@dataclass(slots=True)
class _Cycle:
    number: int
    start: datetime
    attachments: list[_Attachment]
    holds: list[Pause] = field(default_factory=list)
    stop: _Stop | None = None
    trail: list[tuple[datetime, str]] = field(default_factory=list)

    def note(self, at: datetime, text: str) -> None:
        self.trail.append((at, text))

    def open_hold(self) -> Pause | None:
        return self.holds[-1] if self.holds and self.holds[-1].end is None else None

    def close_hold(self, at: datetime) -> None:
        hold = self.open_hold()
        if hold is not None:
            self.holds[-1] = replace(hold, end=at)


@dataclass(frozen=True, slots=True)
class _Step:
    at: datetime
    # None: a public agent response (first_response only).
    snapshot: TicketChanged | None


class _Tracker:
    """Walks one metric through the ordered history, building its cycles."""

    def __init__(self, rules: MetricPolicy) -> None:
        self.rules = rules
        self.cycles: list[_Cycle] = []
        self.ended = False

    @classmethod
    def cycles_of(
        cls, snapshots: Sequence[TicketChanged], *, rules: MetricPolicy, now: datetime
    ) -> list[_Cycle]:
        """The cycles of one metric over an ordered history."""
        tracker = cls(rules)
        first = snapshots[0]
        start = min(_second(snapshots[-1].created_at), _second(first.occurred_at))
        tracker.begin(start, first)
        for step in _steps(snapshots, rules=rules, floor=start, now=now):
            if step.snapshot is None:
                tracker.respond(step.at)
            else:
                tracker.follow(step.at, step.snapshot)
        return tracker.cycles

    def begin(self, at: datetime, snapshot: TicketChanged) -> None:
        cycle = _Cycle(len(self.cycles) + 1, at, [_Attachment(snapshot.priority, at)])
        what = "ticket created" if cycle.number == 1 else f"reopened to status {snapshot.status}"
        cycle.note(
            at, f"cycle {cycle.number} started at {_stamp(at)} ({what}, priority {_label(snapshot.priority)})"
        )
        self.cycles.append(cycle)

    def respond(self, at: datetime) -> None:
        cycle = self.cycles[-1]
        if cycle.stop is None and at >= cycle.start:
            self.stop(
                cycle, at, _StopKind.RESPONDED, f"stopped by the first public agent response at {_stamp(at)}"
            )

    def follow(self, at: datetime, snapshot: TicketChanged) -> None:
        category = snapshot.status_category
        reopened = self.ended and category not in _ENDED
        self.ended = category in _ENDED
        cycle = self.cycles[-1]
        if reopened and cycle.stop is not None:
            self.reopen(cycle, at, snapshot)
        elif cycle.stop is None:
            self.track(cycle, at, snapshot)

    def track(self, cycle: _Cycle, at: datetime, snapshot: TicketChanged) -> None:
        category = snapshot.status_category
        cause = f"at {_stamp(at)} (change {snapshot.change})"
        if category is StatusCategory.CANCELED:
            self.stop(cycle, at, _StopKind.CANCELLED, f"cancelled by status {snapshot.status} {cause}")
        elif category in _DONE:
            self.stop(cycle, at, _StopKind.RESOLVED, f"stopped by status {snapshot.status} {cause}")
        else:
            self.track_priority(cycle, at, snapshot)
            self.track_pause(cycle, at, snapshot)

    def track_priority(self, cycle: _Cycle, at: datetime, snapshot: TicketChanged) -> None:
        current = cycle.attachments[-1]
        if snapshot.priority == current.priority:
            return
        if current.attached_at == at:
            # A priority held for no time at all never counted: the one of this instant replaces it
            # (snapshots of one second can disagree; otherwise they would flap between timers).
            cycle.attachments.pop()
            if not cycle.attachments:
                cycle.attachments.append(_Attachment(snapshot.priority, at))
                return
            current = cycle.attachments[-1]
            current.ended_at = None
            if snapshot.priority == current.priority:
                return
        current.ended_at = at
        cycle.attachments.append(_Attachment(snapshot.priority, at))
        cycle.note(
            at,
            f"priority changed from {_label(current.priority)} to {_label(snapshot.priority)} at {_stamp(at)} "
            f"(change {snapshot.change}): the new target counts from {_stamp(cycle.start)}",
        )

    def track_pause(self, cycle: _Cycle, at: datetime, snapshot: TicketChanged) -> None:
        pausing = self.rules.pauses_on(status=snapshot.status, category=snapshot.status_category)
        cause = f"by status {snapshot.status} at {_stamp(at)} (change {snapshot.change})"
        if pausing and cycle.open_hold() is None:
            cycle.holds.append(Pause(at, None, f"paused {cause}"))
            cycle.note(at, f"paused {cause}")
        elif not pausing and cycle.open_hold() is not None:
            cycle.close_hold(at)
            cycle.note(at, f"resumed {cause}")

    def stop(self, cycle: _Cycle, at: datetime, kind: _StopKind, text: str) -> None:
        cycle.close_hold(at)
        cycle.stop = _Stop(at, kind)
        cycle.note(at, text)

    def reopen(self, cycle: _Cycle, at: datetime, snapshot: TicketChanged) -> None:
        assert cycle.stop is not None
        rule = self.rules.reopen
        if rule is ReopenRule.NEW_CYCLE:
            self.begin(at, snapshot)
            self.track_pause(self.cycles[-1], at, snapshot)
        elif cycle.stop.kind is not _StopKind.RESPONDED:
            text = f"resumed by reopen to status {snapshot.status} at {_stamp(at)} (change {snapshot.change})"
            cycle.holds.append(Pause(cycle.stop.at, at, text, PauseKind.RESOLVED))
            cycle.stop = None
            cycle.note(at, text)
            self.track_priority(cycle, at, snapshot)
            self.track_pause(cycle, at, snapshot)


def _steps(
    snapshots: Sequence[TicketChanged], *, rules: MetricPolicy, floor: datetime, now: datetime
) -> list[_Step]:
    steps = [_Step(_second(snapshot.occurred_at), snapshot) for snapshot in snapshots]
    if rules.metric is Metric.FIRST_RESPONSE:
        steps += [_Step(max(at, floor), None) for at in _responses(snapshots, now=now)]
    # Stable: responses go before snapshots of the same second, snapshots keep their history order.
    return sorted(steps, key=lambda step: (step.at, step.snapshot is not None))


def _responses(snapshots: Sequence[TicketChanged], *, now: datetime) -> set[datetime]:
    fields = {
        _second(s.first_public_agent_response_at) for s in snapshots if s.first_public_agent_response_at
    }
    comments = {_second(s.occurred_at) for s in snapshots if s.change == TicketChange.COMMENTED_PUBLIC_AGENT}
    # A response stamped after now (a skewed platform clock) has not happened yet.
    return {at for at in fields | comments if at <= now}


def _label(priority: Priority | None) -> str:
    return priority.value if priority is not None else "none"


# Evaluation: from a cycle to timer states


@dataclass(frozen=True, slots=True)
class _Span:
    """Business time counted from a start, skipping holds (sorted, disjoint, closed)."""

    clock: BusinessClock
    start: datetime
    holds: tuple[tuple[datetime, datetime], ...]

    def held(self, until: datetime) -> int:
        """Business seconds in holds before `until`."""
        return sum(
            self.clock.business_seconds_between(start=max(begin, self.start), end=min(end, until))
            for begin, end in self.holds
        )

    def elapsed(self, until: datetime) -> int:
        """Counted business seconds in [start, until)."""
        return self.clock.business_seconds_between(start=self.start, end=until) - self.held(until)

    def instant_of(self, seconds: int) -> datetime:
        """The earliest instant at which `seconds` business seconds have been counted (seconds >= 1)."""
        cursor, needed = self.start, seconds
        for begin, end in self.holds:
            available = self.clock.business_seconds_between(start=cursor, end=begin)
            if needed <= available:
                return self.clock.add_business_seconds(start=cursor, seconds=needed)
            needed -= available
            cursor = max(cursor, end)
        return self.clock.add_business_seconds(start=cursor, seconds=needed)


def _cycle_states(
    cycle: _Cycle, *, rules: MetricPolicy, policy: Policy, clock: BusinessClock, now: datetime
) -> list[TimerState]:
    states = []
    for attachment in cycle.attachments:
        target = rules.target_for(attachment.priority)
        if target is not None:
            states.append(
                _evaluate(cycle, attachment, target=target, rules=rules, policy=policy, clock=clock, now=now)
            )
    return states


def _evaluate(
    cycle: _Cycle,
    attachment: _Attachment,
    *,
    target: Target,
    rules: MetricPolicy,
    policy: Policy,
    clock: BusinessClock,
    now: datetime,
) -> TimerState:
    stopped_at = attachment.ended_at or (cycle.stop.at if cycle.stop is not None else None)
    evaluated_at = max(stopped_at or now, cycle.start)
    pauses = _pauses_until(cycle.holds, evaluated_at, stopped=stopped_at is not None)
    # An open pause is closed at the evaluation instant: projections then read "if it resumed now".
    span = _Span(clock, cycle.start, tuple((p.start, p.end or evaluated_at) for p in pauses))
    goal = target_seconds(clock, target, start=cycle.start)
    elapsed = span.elapsed(evaluated_at)
    breaches_at = span.instant_of(goal + 1)
    breached_at = breaches_at if elapsed > goal else None
    marks = [
        WarningMark(float(fraction * 100), at, retroactive=at < attachment.attached_at)
        for fraction in rules.warnings
        for at in (span.instant_of(max(1, ceil(fraction * goal))),)
    ]
    crossed = tuple(mark for mark in marks if mark.at <= evaluated_at)
    superseded = attachment.ended_at is not None
    cancelled = superseded or (cycle.stop is not None and cycle.stop.kind is _StopKind.CANCELLED)
    status = _status(
        cancelled=cancelled, breached=breached_at is not None, stopped=stopped_at is not None, pauses=pauses
    )
    due_at = span.instant_of(goal)
    return TimerState(
        key=f"{rules.metric}/{cycle.number}/{_label(attachment.priority)}/{_stamp(attachment.attached_at)}",
        metric=rules.metric,
        cycle=cycle.number,
        priority=attachment.priority,
        policy=policy.name,
        policy_version=policy.version,
        calendar=rules.calendar,
        status=status,
        started_at=cycle.start,
        attached_at=attachment.attached_at,
        stopped_at=stopped_at,
        evaluated_at=evaluated_at,
        due_at=due_at,
        breaches_at=breaches_at,
        breached_at=breached_at,
        breach_retroactive=breached_at is not None and breached_at < attachment.attached_at,
        superseded=superseded,
        target=target,
        target_business_seconds=goal,
        business_elapsed_seconds=elapsed,
        paused_business_seconds=span.held(evaluated_at),
        actual_elapsed_seconds=int((evaluated_at - cycle.start).total_seconds()),
        remaining_business_seconds=max(0, goal - elapsed),
        overdue_business_seconds=max(0, elapsed - goal),
        percent_elapsed=100 * elapsed / goal,
        warnings=crossed,
        pending_warnings=() if stopped_at is not None else tuple(m for m in marks if m not in crossed),
        pauses=pauses,
        explanation=_explain(
            cycle,
            attachment,
            target=target,
            goal=goal,
            until=evaluated_at,
            crossed=crossed,
            due_at=due_at,
            breached_at=breached_at,
        ),
    )


def _pauses_until(holds: Sequence[Pause], until: datetime, *, stopped: bool) -> tuple[Pause, ...]:
    """The holds begun before `until`, cut there; an open one stays open unless the clock has stopped."""
    kept = []
    for hold in holds:
        if hold.start >= until:
            break
        runs_past = hold.end > until if hold.end is not None else stopped
        kept.append(replace(hold, end=until) if runs_past else hold)
    return tuple(kept)


def _status(*, cancelled: bool, breached: bool, stopped: bool, pauses: Sequence[Pause]) -> TimerStatus:
    if cancelled:
        return TimerStatus.CANCELLED
    if breached:
        return TimerStatus.BREACHED
    if stopped:
        return TimerStatus.MET
    if pauses and pauses[-1].end is None:
        return TimerStatus.PAUSED
    return TimerStatus.RUNNING


def _explain(
    cycle: _Cycle,
    attachment: _Attachment,
    *,
    target: Target,
    goal: int,
    until: datetime,
    crossed: Sequence[WarningMark],
    due_at: datetime,
    breached_at: datetime | None,
) -> tuple[str, ...]:
    entries = [(at, text) for at, text in cycle.trail if at <= until]
    entries.append(
        (
            attachment.attached_at,
            f"target {target} ({goal} business seconds) for priority "
            f"{_label(attachment.priority)}, due at {_stamp(due_at)}",
        )
    )
    entries += [(m.at, f"warning {m.percent:g}% crossed at {_stamp(m.at)}") for m in crossed]
    if breached_at is not None:
        entries.append((breached_at, f"breached at {_stamp(breached_at)}"))
    if attachment.ended_at is not None:
        entries.append(
            (attachment.ended_at, f"superseded at {_stamp(attachment.ended_at)} by a priority change")
        )
    # Stable sort: same-instant entries keep the order in which they happened.
    return tuple(text for _, text in sorted(entries, key=lambda entry: entry[0]))


# Transitions


def _vanished(state: TimerState, *, now: datetime) -> TimerTransition | None:
    """A timer the new history no longer holds (a corrected creation, a late reopen) is cancelled.

    Even a stopped one: readers counted it as met or breached, and must stop counting it.
    """
    if state.status is TimerStatus.CANCELLED:
        return None
    return TimerTransition(TransitionKind.CANCELLED, state.key, now, state)


def _timer_transitions(
    before: TimerState | None, after: TimerState, *, now: datetime
) -> list[TimerTransition]:
    events: list[TimerTransition] = []
    if before is None:
        events.append(TimerTransition(TransitionKind.STARTED, after.key, after.attached_at, after))
    events += _pause_transitions(before, after)
    events += _reopen_transitions(before, after)
    events += _warning_transitions(before, after)
    events += _breach_transitions(before, after, now=now)
    events += _end_transitions(before, after)
    return events


def _pause_transitions(before: TimerState | None, after: TimerState) -> list[TimerTransition]:
    known = {p.start: p for p in before.pauses} if before is not None else {}
    events = []
    for pause in after.pauses:
        if pause.kind is not PauseKind.PAUSE:
            continue
        old = known.get(pause.start)
        # Pauses over before a timer was attached belong to the timer it replaced.
        if old is None and (pause.end is None or pause.end > after.attached_at):
            events.append(TimerTransition(TransitionKind.PAUSED, after.key, pause.start, after))
        ended = pause.end is not None and pause.end != after.stopped_at
        if (
            ended
            and pause.end is not None
            and pause.end > after.attached_at
            and (old is None or old.end is None)
        ):
            events.append(TimerTransition(TransitionKind.RESUMED, after.key, pause.end, after))
    return events


def _reopen_transitions(before: TimerState | None, after: TimerState) -> list[TimerTransition]:
    if before is None or before.stopped_at is None or after.stopped_at is not None:
        return []
    reopened = [p.end for p in after.pauses if p.kind is PauseKind.RESOLVED and p.end is not None]
    return [
        TimerTransition(TransitionKind.RESUMED, after.key, max(reopened, default=after.evaluated_at), after)
    ]


def _warning_transitions(before: TimerState | None, after: TimerState) -> list[TimerTransition]:
    if before is None:
        # A timer first seen with warnings already crossed (a late start, a history import): they are
        # history, shown on the timer but not announced.
        return []
    announced = {mark.percent for mark in before.warnings}
    fresh = [m for m in after.warnings if not m.retroactive and m.percent not in announced]
    newly_breached = after.is_breached and (before is None or not before.is_breached)
    # No storm: a breach supersedes the warnings not yet announced, and of several only the highest is news.
    if newly_breached or not fresh:
        return []
    mark = fresh[-1]
    return [TimerTransition(TransitionKind.WARNED, after.key, mark.at, after, percent=mark.percent)]


def _breach_transitions(
    before: TimerState | None, after: TimerState, *, now: datetime
) -> list[TimerTransition]:
    was = before is not None and before.breached_at is not None
    if (
        was
        and after.breached_at is not None
        and before is not None
        and before.breached_at != after.breached_at
    ):
        # A late event moved the breach instant (e.g. a pause found after the breach fired): the
        # announced breach is retracted and the true one announced, as when they come in two batches.
        return [
            TimerTransition(TransitionKind.BREACH_RETRACTED, after.key, now, after),
            TimerTransition(
                TransitionKind.BREACHED,
                after.key,
                after.breached_at,
                after,
                retroactive=after.breach_retroactive,
            ),
        ]
    if after.breached_at is not None and not was:
        # Retroactive: the breach instant precedes the moment this timer became known.
        retroactive = after.breach_retroactive or (before is None and after.breached_at < now)
        return [
            TimerTransition(
                TransitionKind.BREACHED, after.key, after.breached_at, after, retroactive=retroactive
            )
        ]
    if after.breached_at is None and was:
        return [TimerTransition(TransitionKind.BREACH_RETRACTED, after.key, now, after)]
    return []


def _end_transitions(before: TimerState | None, after: TimerState) -> list[TimerTransition]:
    previous = before.status if before is not None else None
    if after.status is TimerStatus.MET and previous is not TimerStatus.MET and after.stopped_at is not None:
        return [TimerTransition(TransitionKind.MET, after.key, after.stopped_at, after)]
    stopped_breach = before is not None and before.is_breached and before.stopped_at is not None
    if after.status is TimerStatus.BREACHED and after.stopped_at is not None and not stopped_breach:
        return [TimerTransition(TransitionKind.STOPPED, after.key, after.stopped_at, after)]
    if (
        after.status is TimerStatus.CANCELLED
        and previous is not TimerStatus.CANCELLED
        and after.stopped_at is not None
    ):
        return [TimerTransition(TransitionKind.CANCELLED, after.key, after.stopped_at, after)]
    return []
