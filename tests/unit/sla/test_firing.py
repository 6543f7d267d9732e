"""Stored marks fired by the scheduler announce exactly what recomputing the timers from the history would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.sla.calendar import BusinessClock
from services.sla.firing import (
    TICKET_FIELDS,
    TIMER_FIELDS,
    Mark,
    due_marks,
    mark_event,
    marks_of,
    ticket_fields,
    timer_fields,
    transition_event,
)
from services.sla.timers import TimerStatus, TransitionKind, compute_timers, transitions
from tests.unit.sla.test_timers import CLOCKS, Story, make_policy, office, only, timers, utc

pytestmark = pytest.mark.unit


def test_marks_are_the_pending_warnings_then_the_breach_with_the_elapsed_time_at_each() -> None:
    policy = make_policy(calendar="office-9-17", resolution={"P3": "4h"})
    [state] = timers(Story(utc(2026, 11, 2, 8)), policy, utc(2026, 11, 2, 8))  # Monday, 09:00 Berlin
    marks = marks_of(state)
    assert [(m.kind, m.percent, m.elapsed) for m in marks] == [
        (TransitionKind.WARNED, 50.0, 7200),
        (TransitionKind.WARNED, 75.0, 10800),
        (TransitionKind.WARNED, 90.0, 12960),
        (TransitionKind.BREACHED, None, 14401),
    ]
    # Each mark's instant is where the recomputed timer has counted exactly that much.
    for mark in marks:
        [at_mark] = timers(Story(utc(2026, 11, 2, 8)), policy, mark.at)
        assert at_mark.business_elapsed_seconds == mark.elapsed


def test_paused_met_and_breached_timers_have_no_marks_ahead() -> None:
    policy = make_policy(resolution={"P3": "4h"})
    story = Story(utc(2026, 11, 2, 8))
    paused = only(
        timers(Story(utc(2026, 11, 2, 8)).pending(utc(2026, 11, 2, 9)), policy, utc(2026, 11, 2, 10))
    )
    met = only(timers(Story(utc(2026, 11, 2, 8)).resolve(utc(2026, 11, 2, 9)), policy, utc(2026, 11, 2, 10)))
    breached = only(timers(story, policy, utc(2026, 11, 2, 13)))
    assert (paused.status, met.status, breached.status) == (
        TimerStatus.PAUSED,
        TimerStatus.MET,
        TimerStatus.BREACHED,
    )
    assert marks_of(paused) == marks_of(met) == marks_of(breached) == ()


def test_a_late_wake_announces_the_highest_warning_and_a_breach_supersedes_the_warnings() -> None:
    [state] = timers(Story(utc(2026, 11, 2, 8)), make_policy(resolution={"P3": "4h"}), utc(2026, 11, 2, 8))
    marks = marks_of(state)
    fired, ahead = due_marks(marks, now=utc(2026, 11, 2, 11, 40))
    assert fired is not None
    assert (fired.kind, fired.percent) == (TransitionKind.WARNED, 90.0)
    assert [m.kind for m in ahead] == [TransitionKind.BREACHED]
    fired, ahead = due_marks(marks, now=utc(2026, 11, 3))
    assert fired is not None
    assert (fired.kind, ahead) == (TransitionKind.BREACHED, ())
    assert due_marks(marks, now=utc(2026, 11, 2, 9)) == (None, marks)


@settings(max_examples=60, deadline=None)
@given(
    target_minutes=st.integers(min_value=1, max_value=600),
    wakes=st.lists(st.integers(min_value=0, max_value=2000), min_size=1, max_size=8),
)
def test_firing_stored_marks_announces_what_recomputing_from_the_history_does(
    target_minutes: int, wakes: list[int]
) -> None:
    """The scheduler's fast path and the consumer's full path agree, whenever the scheduler wakes."""
    policy = make_policy(calendar="office-9-17", resolution={"P3": f"{target_minutes}m"})
    story = Story(utc(2026, 11, 2, 7))
    start = utc(2026, 11, 2, 7)
    previous = timers(story, policy, start)
    marks = marks_of(only(previous))
    for minutes in sorted(wakes):
        now = start + timedelta(minutes=minutes)
        current = timers(story, policy, now)
        recomputed = [(e.kind, e.at, e.percent) for e in transitions(previous, current, now=now)]
        fired, marks = due_marks(marks, now=now)
        assert recomputed == ([(fired.kind, fired.at, fired.percent)] if fired else [])
        previous = current


def test_a_holiday_added_while_a_timer_runs_moves_its_deadline_by_a_working_day() -> None:
    policy = make_policy(calendar="office", resolution={"P3": "16h"})
    story = Story(utc(2026, 11, 2, 8))  # Monday 09:00 Berlin: two working days, due Tuesday 17:00
    now = utc(2026, 11, 2, 12)
    before = compute_timers(
        story.snapshots, policy=policy, calendars={"office": CLOCKS["office-9-17"]}, now=now
    )
    holiday = BusinessClock(office("office", "09:00-17:00", custom_holidays=["2026-11-03"]))
    after = compute_timers(story.snapshots, policy=policy, calendars={"office": holiday}, now=now)
    assert only(before).due_at == utc(2026, 11, 3, 16)
    assert only(after).due_at == utc(2026, 11, 4, 16)
    assert transitions(before, after, now=now) == []
    # Met up to the close on Wednesday; breached from the first second of Thursday's opening.
    assert [m.at for m in marks_of(only(after))][-1] == utc(2026, 11, 5, 8, 0, 1)


def test_events_carry_the_timer_and_the_ticket_attribution() -> None:
    story = Story(utc(2026, 11, 2, 8)).then(utc(2026, 11, 2, 8, 5), "assigned", business_service="email")
    policy = make_policy(resolution={"P3": "4h"})
    # First seen five seconds after its breach: the breach is announced as retroactive.
    [state] = timers(story, policy, utc(2026, 11, 2, 12, 0, 5))
    [started, breached] = transitions([], [state], now=utc(2026, 11, 2, 12, 0, 5))
    ticket = story.snapshots[-1]
    event = transition_event(breached, ticket=ticket)
    assert event.type == "io.bothways.sla.breached"
    assert (event.business_service, event.state, event.retroactive) == ("email", "breached", True)
    assert event.business_elapsed_seconds == 4 * 3600 + 5
    fired = mark_event(
        Mark(TransitionKind.WARNED, utc(2026, 11, 2, 10), 7200, 50.0),
        ticket_key=ticket.ticket_key,
        timer=timer_fields(state),
        ticket=ticket_fields(ticket),
    )
    assert (fired.threshold_percent, fired.percent_elapsed, fired.remaining_business_seconds) == (
        50.0,
        50.0,
        7200,
    )
    assert started.kind is TransitionKind.STARTED
    # The scheduler rebuilds these from stored columns named by the same lists.
    assert (tuple(timer_fields(state)), tuple(ticket_fields(ticket))) == (TIMER_FIELDS, TICKET_FIELDS)


def test_a_breached_timer_paused_and_resumed_is_still_announced_as_breached() -> None:
    policy = make_policy(resolution={"P3": "4h"})
    story = Story(utc(2026, 11, 2, 8))
    breached = timers(story, policy, utc(2026, 11, 2, 12, 30))
    story.pending(utc(2026, 11, 2, 13))
    paused = timers(story, policy, utc(2026, 11, 2, 13))
    story.open(utc(2026, 11, 2, 14))
    resumed = timers(story, policy, utc(2026, 11, 2, 14))
    changes = [
        *transitions(breached, paused, now=utc(2026, 11, 2, 13)),
        *transitions(paused, resumed, now=utc(2026, 11, 2, 14)),
    ]
    events = [transition_event(change, ticket=story.snapshots[-1]) for change in changes]
    assert [(e.type.rsplit(".", 1)[1], e.state) for e in events] == [
        ("paused", "breached"),
        ("resumed", "breached"),
    ]
    assert only(resumed).status is TimerStatus.BREACHED


def test_a_pause_before_a_breach_found_late_is_announced_as_paused() -> None:
    policy = make_policy(resolution={"P3": "4h"})
    story = Story(utc(2026, 11, 2, 8)).pending(utc(2026, 11, 2, 9)).open(utc(2026, 11, 2, 10))
    [state] = timers(story, policy, utc(2026, 11, 2, 14))
    events = [
        transition_event(change, ticket=story.snapshots[-1])
        for change in transitions([], [state], now=utc(2026, 11, 2, 14))
    ]
    assert [(e.type.rsplit(".", 1)[1], e.state) for e in events] == [
        ("started", "running"),
        ("paused", "paused"),
        ("resumed", "running"),
        ("breached", "breached"),
    ]
