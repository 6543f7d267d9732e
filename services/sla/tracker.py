"""Keeping every ticket's SLA timers: recomputed from the history on each ticket event, fired on time.

Two paths change a timer, and both announce exactly what `timers.transitions` defines:
- a ticket event (or a recalculation) recomputes the ticket's timers from its whole history, first
  firing any mark already due, then comparing the timers computed from the history without the new
  snapshot with those computed with it, both at the same instant;
- the scheduler fires stored marks (warnings, breaches) at their instants without reading the history.
A ticket's row is locked while it is recomputed, and a timer's row while it fires, so the two paths
never announce the same change twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bothways.db import Connection
from bothways.events import Envelope, SlaTimerEvent, TicketChanged, envelope_for
from bothways.outbox import enqueue
from bothways.scheduler import StepResult, wake_scheduler
from services.sla import store
from services.sla.calendar import Calendar
from services.sla.firing import (
    TICKET_FIELDS,
    TIMER_FIELDS,
    Mark,
    due_marks,
    event_id,
    mark_event,
    marks_of,
    ticket_fields,
    transition_event,
)
from services.sla.metrics import record_fired, record_transitions
from services.sla.policy import Policy
from services.sla.rulebook import Rulebook
from services.sla.timers import (
    TimerState,
    TimerStatus,
    TransitionKind,
    compute_timers,
    ordered_history,
    transitions,
)

EVENT_SOURCE = "/bothways/sla"
# A snapshot stamped this far ahead of our clock (a platform clock running fast) counts as now.
_CLOCK_SKEW_TOLERANCE = timedelta(seconds=60)


class RulebookCache:
    """The stored rules, reloaded when they change (checked at most once per `refresh_seconds`).

    Clocks are kept across reloads: a (calendar, version) never changes once stored."""

    def __init__(self, *, refresh_seconds: float = 1.0) -> None:
        self.refresh_seconds = refresh_seconds
        self._book: Rulebook | None = None
        self._stamp: int | None = None
        self._checked = 0.0

    async def get(self, conn: Connection, *, fresh: bool = False) -> Rulebook:
        """The rules; `fresh` checks the store now rather than trusting the last check."""
        recent = time.monotonic() - self._checked < self.refresh_seconds
        if self._book is not None and recent and not fresh:
            return self._book
        stamp = await store.config_stamp(conn)
        if self._book is None or stamp != self._stamp:
            self._book = await load_rulebook(conn, previous=self._book)
            self._stamp = stamp
        self._checked = time.monotonic()
        return self._book


async def load_rulebook(conn: Connection, *, previous: Rulebook | None = None) -> Rulebook:
    """Every stored calendar and policy version, and the order in force."""
    stored = await store.stored_config(conn)
    return Rulebook(
        calendars={
            (r["name"], r["version"]): Calendar.from_config(r["definition"]) for r in stored["calendars"]
        },
        policies={(r["name"], r["version"]): Policy.from_config(r["definition"]) for r in stored["policies"]},
        order=[(r["name"], r["version"]) for r in stored["order"]],
        _clocks=previous._clocks if previous is not None else {},
    )


RULES = RulebookCache()


async def track_tickets(
    conn: Connection, *, snapshots: Sequence[tuple[str, TicketChanged]], now: datetime
) -> None:
    """Record new snapshots and announce what they change on their tickets' timers, each ticket once.

    Evaluating a batch's snapshots of a ticket together matters after downtime: the backlog then
    holds both a ticket's creation and its answer, and the timer must not breach in between."""
    await store.record_ticket_events(conn, snapshots=snapshots)
    fresh: dict[str, set[str]] = {}
    moments: dict[str, datetime] = {}
    for identifier, ticket in snapshots:
        fresh.setdefault(ticket.ticket_key, set()).add(identifier)
        moments[ticket.ticket_key] = max(moments.get(ticket.ticket_key, now), _effective_now(now, ticket))
    await _evaluate(conn, rulebook=await RULES.get(conn), now=moments, new_events=fresh, repin=False)


async def recalculate(conn: Connection, *, ticket_key: str, now: datetime) -> bool:
    """Move a ticket's timers to the policy and calendar versions now in force; False if unknown."""
    rulebook = await RULES.get(conn, fresh=True)
    return bool(await _evaluate(conn, rulebook=rulebook, now={ticket_key: now}, new_events={}, repin=True))


def _effective_now(now: datetime, ticket: TicketChanged) -> datetime:
    """Now, or a little later when a platform's clock runs ahead of ours."""
    return ticket.occurred_at if now < ticket.occurred_at <= now + _CLOCK_SKEW_TOLERANCE else now


@dataclass(frozen=True, slots=True)
class _Choice:
    policy: Policy | None
    pins: dict[str, int]


@dataclass(slots=True)
class _Outcome:
    rows: list[dict[str, Any]]
    pin: dict[str, Any]
    announcements: list[tuple[SlaTimerEvent, str, Mark | None]]


async def _evaluate(
    conn: Connection,
    *,
    rulebook: Rulebook,
    now: dict[str, datetime],
    new_events: dict[str, set[str]],
    repin: bool,
) -> int:
    """Recompute the timers of some tickets and announce the transitions; returns how many were known."""
    keys = sorted(now)  # the same lock order in every transaction
    tickets = await store.lock_tickets(conn, ticket_keys=keys)
    stored: dict[str, dict[str, dict[str, Any]]] = {key: {} for key in keys}
    for row in await store.timers_for_update(conn, ticket_keys=keys):
        stored[row["ticket_key"]][row["timer_key"]] = row
    histories = await store.snapshots_of(conn, ticket_keys=keys)
    outcomes = [
        _evaluate_ticket(
            key,
            pins=tickets[key],
            stored=stored[key],
            snapshots=histories[key],
            new_events=new_events.get(key, set()),
            rulebook=rulebook,
            now=now[key].replace(microsecond=0),
            repin=repin,
        )
        for key in keys
        if key in tickets
    ]
    done = [outcome for outcome in outcomes if outcome is not None]
    rows = [row for outcome in done for row in outcome.rows]
    await store.save_timers(conn, ticket_keys=[outcome.pin["ticket_key"] for outcome in done], rows=rows)
    await store.pin_tickets(conn, pins=[outcome.pin for outcome in done])
    announcements = [item for outcome in done for item in outcome.announcements]
    await _announce(conn, announcements, now=max(now.values()).replace(microsecond=0))
    if any(row["next_due_at"] is not None for row in rows):
        await wake_scheduler(conn)
    return len(outcomes)


def _evaluate_ticket(
    ticket_key: str,
    *,
    pins: dict[str, Any],
    stored: dict[str, dict[str, Any]],
    snapshots: list[tuple[str, TicketChanged]],
    new_events: set[str],
    rulebook: Rulebook,
    now: datetime,
    repin: bool,
) -> _Outcome | None:
    """One ticket: fire what is due, recompute with and without the new snapshots, diff."""
    announcements = _catch_up(stored.values(), now=now)
    history = [snapshot for _, snapshot in snapshots]
    in_effect = ordered_history(history, now=now)
    if not in_effect:
        return None
    latest = in_effect[-1]
    old = _Choice(
        rulebook.policy(pins["policy"], pins["policy_version"]) if pins["policy"] else None,
        pins["calendar_versions"],
    )
    new = _choose_policy(rulebook, latest=latest, current=old, repin=repin)
    before = _compute([s for event, s in snapshots if event not in new_events], old, rulebook, now=now)
    after = _compute(history, new, rulebook, now=now)
    retracted: set[str] = set()
    for change in transitions(before, after, now=now):
        ordinal = stored[change.key]["retractions"] if change.key in stored else 0
        identifier = event_id(
            ticket_key=ticket_key, timer_key=change.key, kind=change.kind, at=change.at, ordinal=ordinal
        )
        announcements.append((transition_event(change, ticket=latest), identifier, None))
        if change.kind is TransitionKind.BREACH_RETRACTED:
            retracted.add(change.key)
    rows = []
    for state in after:
        kept = stored.get(state.key)
        retractions = (kept["retractions"] if kept else 0) + (1 if state.key in retracted else 0)
        rows.append(_timer_row(state, ticket=latest, retractions=retractions))
    pin = {
        "ticket_key": ticket_key,
        "policy": new.policy.name if new.policy else None,
        "policy_version": new.policy.version if new.policy else None,
        "calendar_versions": new.pins,
        "evaluated_at": now,
    }
    return _Outcome(rows=rows, pin=pin, announcements=announcements)


async def fire_due(conn: Connection, now: datetime, *, limit: int) -> StepResult:
    """The scheduler's step: fire the marks due at `now`, then tell when the next one is due."""
    rows = await store.claim_due_timers(conn, now=now, limit=limit)
    announcements = _catch_up(rows, now=now)
    await store.update_fired(conn, rows=rows)
    await _announce(conn, announcements, now=now)
    return StepResult(done=len(rows), next_due=await store.next_due(conn))


# Announcing


def _catch_up(
    rows: Iterable[dict[str, Any]], *, now: datetime
) -> list[tuple[SlaTimerEvent, str, Mark | None]]:
    """Fire the due marks of stored timers, updating the rows in place; returns what to announce."""
    announced: list[tuple[SlaTimerEvent, str, Mark | None]] = []
    for row in rows:
        marks = [Mark.from_json(mark) for mark in row["marks"]]
        mark, ahead = due_marks(marks, now=now)
        if mark is None:
            continue
        row["marks"] = [m.to_json() for m in ahead]
        row["next_due_at"] = ahead[0].at if ahead else None
        row["business_elapsed_seconds"] = mark.elapsed
        row["evaluated_at"] = mark.at
        if mark.kind is TransitionKind.BREACHED:
            row["state"] = TimerStatus.BREACHED.value
            row["breached_at"] = mark.at
        row["announced_warnings"] = sorted(
            {*row["announced_warnings"], *(m.percent for m in marks if m.at <= now and m.percent is not None)}
        )
        event = mark_event(
            mark,
            ticket_key=row["ticket_key"],
            timer=_stored_timer_fields(row),
            ticket=_stored_ticket_fields(row),
        )
        ordinal = row["retractions"]
        announced.append(
            (
                event,
                event_id(
                    ticket_key=row["ticket_key"],
                    timer_key=row["timer_key"],
                    kind=mark.kind,
                    at=mark.at,
                    ordinal=ordinal,
                ),
                mark,
            )
        )
    return announced


async def _announce(
    conn: Connection, announcements: Sequence[tuple[SlaTimerEvent, str, Mark | None]], *, now: datetime
) -> None:
    envelopes: list[Envelope] = []
    emissions = []
    lateness = []
    for event, identifier, mark in announcements:
        envelopes.append(envelope_for(event, event_id=identifier, source=EVENT_SOURCE))
        late = (now - mark.at).total_seconds() if mark is not None else None
        if late is not None:
            lateness.append(late)
        emissions.append(
            {
                "event_id": identifier,
                "ticket_key": event.ticket_key,
                "timer_key": event.timer_key,
                "kind": event.type.rsplit(".", 1)[1],
                "occurred_at": event.occurred_at,
                "threshold_percent": getattr(event, "threshold_percent", None),
                "retroactive": event.retroactive,
                "emitted_at": now,
                "lateness_seconds": late,
            }
        )
    await enqueue(conn, envelopes)
    await store.record_emissions(conn, rows=emissions)
    record_transitions(event for event, _, _ in announcements)
    record_fired(lateness)


# Choosing and computing


def _choose_policy(rulebook: Rulebook, *, latest: TicketChanged, current: _Choice, repin: bool) -> _Choice:
    """The policy matching the ticket now: the pinned version while the same policy matches."""
    matched = rulebook.match(latest)
    if matched is None:
        return _Choice(None, {})
    if not repin and current.policy is not None and current.policy.name == matched.name:
        return _Choice(current.policy, rulebook.pins_for(current.policy, keep=current.pins))
    return _Choice(matched, rulebook.pins_for(matched, keep={} if repin else current.pins))


def _compute(
    history: Sequence[TicketChanged], choice: _Choice, rulebook: Rulebook, *, now: datetime
) -> list[TimerState]:
    if choice.policy is None or not history:
        return []
    return compute_timers(history, policy=choice.policy, calendars=rulebook.clocks(choice.pins), now=now)


def compute_for_ticket(
    history: Sequence[TicketChanged],
    *,
    policy: Policy,
    pins: dict[str, int],
    rulebook: Rulebook,
    now: datetime,
) -> list[TimerState]:
    """A ticket's timers as of `now` under its pinned versions."""
    return _compute(history, _Choice(policy, pins), rulebook, now=now)


# Rows


def _timer_row(state: TimerState, *, ticket: TicketChanged, retractions: int) -> dict[str, Any]:
    marks = marks_of(state)
    return {
        "ticket_key": ticket.ticket_key,
        "timer_key": state.key,
        "metric": state.metric.value,
        "cycle": state.cycle,
        "priority": state.priority.value if state.priority is not None else None,
        "policy": state.policy,
        "policy_version": state.policy_version,
        "calendar": state.calendar,
        "state": state.status.value,
        "superseded": state.superseded,
        "started_at": state.started_at,
        "attached_at": state.attached_at,
        "stopped_at": state.stopped_at,
        "due_at": state.due_at,
        "breaches_at": state.breaches_at,
        "breached_at": state.breached_at,
        "evaluated_at": state.evaluated_at,
        "target_business_seconds": state.target_business_seconds,
        "business_elapsed_seconds": state.business_elapsed_seconds,
        "announced_warnings": sorted(mark.percent for mark in state.warnings),
        "marks": [mark.to_json() for mark in marks],
        "next_due_at": marks[0].at if marks else None,
        "retractions": retractions,
        **ticket_fields(ticket),
    }


def _stored_timer_fields(row: dict[str, Any]) -> dict[str, Any]:
    # The stored columns are named as the event's fields (see _timer_row).
    return {key: row[key] for key in TIMER_FIELDS}


def _stored_ticket_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in TICKET_FIELDS}
