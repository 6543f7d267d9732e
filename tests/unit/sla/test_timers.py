"""SLA timers computed from ticket histories: business time, pauses, priority changes, reopens, events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bothways.events import Priority, StatusCategory, TicketChanged
from services.sla.calendar import BusinessClock, Calendar
from services.sla.policy import Metric, Policy
from services.sla.timers import (
    PauseKind,
    TimerState,
    TimerStatus,
    TimerTransition,
    TransitionKind,
    UnknownCalendarError,
    breach_summary,
    compute_timers,
    next_due,
    ordered_history,
    transitions,
)

pytestmark = pytest.mark.unit

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def office(name: str, hours: str, **extra: Any) -> Calendar:
    return Calendar.from_config(
        {"name": name, "timezone": "Europe/Berlin", "weekly": {day: [hours] for day in WEEKDAYS}, **extra}
    )


# Clocks built once: each keeps its cached openings across the tests, as the sla service will.
CLOCKS: dict[str, BusinessClock] = {
    "office-8-17": BusinessClock(office("office-8-17", "08:00-17:00")),
    "office-9-17": BusinessClock(office("office-9-17", "09:00-17:00")),
    "office-9-17-holidays": BusinessClock(
        office("office-9-17-holidays", "09:00-17:00", holidays={"country": "DE", "subdivision": "BE"})
    ),
    "24x7": BusinessClock(Calendar.always_open("24x7")),
    "24x7-berlin": BusinessClock(Calendar.always_open("24x7-berlin", timezone="Europe/Berlin")),
}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=BERLIN)


def make_policy(
    *,
    calendar: str = "24x7",
    resolution: Mapping[str, str] | None = None,
    first_response: Mapping[str, str] | None = None,
    **rules: Any,
) -> Policy:
    """A policy measuring the metrics given targets for, on one calendar, with the same extra rules."""
    metrics = {
        name: {"calendar": calendar, "targets": dict(targets), **rules}
        for name, targets in (("first_response", first_response), ("resolution", resolution))
        if targets is not None
    }
    return Policy.from_config({"name": "standard", "version": 3, "metrics": metrics})


@dataclass
class Story:
    """A ticket's history told step by step: each step is a full snapshot derived from the previous one."""

    created_at: datetime
    priority: Priority | None = Priority.P3
    snapshots: list[TicketChanged] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.snapshots.append(
            TicketChanged(
                ticket_key="jira:SUP-42",
                source="jira",
                external_id="SUP-42",
                occurred_at=self.created_at,
                change="created",
                status="Open",
                status_category=StatusCategory.OPEN,
                priority=self.priority,
                created_at=self.created_at,
            )
        )

    def then(self, at: datetime, change: str = "status_changed", **fields: Any) -> Story:
        """Add the snapshot of a change at an instant."""
        last = self.snapshots[-1]
        self.snapshots.append(last.model_copy(update={"occurred_at": at, "change": change, **fields}))
        return self

    def status(self, at: datetime, status: str, category: StatusCategory) -> Story:
        return self.then(at, status=status, status_category=category)

    def pending(self, at: datetime) -> Story:
        return self.status(at, "Pending", StatusCategory.PENDING)

    def open(self, at: datetime) -> Story:
        return self.status(at, "In Progress", StatusCategory.OPEN)

    def resolve(self, at: datetime) -> Story:
        return self.status(at, "Resolved", StatusCategory.RESOLVED)

    def reprioritize(self, at: datetime, priority: Priority) -> Story:
        return self.then(at, "priority_changed", priority=priority)


def timers(story: Story | Sequence[TicketChanged], policy: Policy, now: datetime) -> list[TimerState]:
    history = story.snapshots if isinstance(story, Story) else story
    return compute_timers(history, policy=policy, calendars=CLOCKS, now=now)


def only(states: Sequence[TimerState], **wanted: Any) -> TimerState:
    found = [s for s in states if all(getattr(s, name) == value for name, value in wanted.items())]
    assert len(found) == 1, f"expected one timer with {wanted}, got {found}"
    return found[0]


def kinds(events: Sequence[TimerTransition]) -> list[tuple[TransitionKind, str]]:
    return [(event.kind, event.key.split("/")[2]) for event in events]


# Business time, pauses, calendars


def test_created_friday_night_observed_monday_0930_counts_ninety_business_minutes_and_sixty_and_a_half_hours() -> (
    None
):
    story = Story(berlin(2026, 11, 6, 21))
    state = only(
        timers(
            story, make_policy(calendar="office-8-17", resolution={"P3": "8h"}), berlin(2026, 11, 9, 9, 30)
        )
    )
    assert state.status is TimerStatus.RUNNING
    assert state.business_elapsed_seconds == 90 * 60
    assert state.actual_elapsed_seconds == 60 * HOUR + 30 * 60
    assert state.remaining_business_seconds == 8 * HOUR - 90 * 60
    assert state.due_at == berlin(2026, 11, 9, 16)


def test_pause_over_the_weekend_shifts_the_deadline_by_exactly_two_business_hours() -> None:
    policy = make_policy(calendar="office-9-17", resolution={"P3": "16h"})
    now = berlin(2026, 11, 10, 9)
    plain = only(timers(Story(berlin(2026, 11, 6, 10)), policy, now))
    paused = only(
        timers(
            Story(berlin(2026, 11, 6, 10)).pending(berlin(2026, 11, 6, 16)).open(berlin(2026, 11, 9, 10)),
            policy,
            now,
        )
    )
    assert plain.due_at == berlin(2026, 11, 10, 10)
    assert paused.due_at == berlin(2026, 11, 10, 12)
    assert CLOCKS["office-9-17"].business_seconds_between(start=plain.due_at, end=paused.due_at) == 2 * HOUR
    assert paused.paused_business_seconds == 2 * HOUR


def test_paused_timer_projects_its_due_instant_as_if_it_resumed_now() -> None:
    story = Story(utc(2026, 11, 2, 8)).pending(utc(2026, 11, 2, 9))
    state = only(timers(story, make_policy(resolution={"P3": "2h"}), utc(2026, 11, 2, 12)))
    assert state.status is TimerStatus.PAUSED
    assert state.is_paused
    assert state.business_elapsed_seconds == HOUR
    assert state.due_at == utc(2026, 11, 2, 13)
    assert next_due([state]) is None


def test_office_hours_across_the_autumn_dst_change_count_the_hour_the_clocks_go_back_once() -> None:
    story = Story(berlin(2026, 10, 23, 15))
    state = only(
        timers(story, make_policy(calendar="office-9-17", resolution={"P3": "4h"}), berlin(2026, 10, 26, 12))
    )
    assert state.due_at == berlin(2026, 10, 26, 11) == utc(2026, 10, 26, 10)
    assert state.business_elapsed_seconds == 5 * HOUR
    # 69 real hours from Friday 15:00 CEST to Monday 12:00 CET, though the wall clock moved 69 - 1 + 1.
    assert state.actual_elapsed_seconds == (utc(2026, 10, 26, 11) - utc(2026, 10, 23, 13)).total_seconds()


def test_around_the_clock_calendar_counts_the_twenty_five_hour_dst_day_in_full() -> None:
    story = Story(berlin(2026, 10, 24, 12))
    hours = only(
        timers(story, make_policy(calendar="24x7-berlin", resolution={"P3": "24h"}), utc(2026, 10, 24, 11))
    )
    days = only(
        timers(story, make_policy(calendar="24x7-berlin", resolution={"P3": "2d"}), utc(2026, 10, 24, 11))
    )
    assert hours.due_at == utc(2026, 10, 25, 10) == berlin(2026, 10, 25, 11)
    # Two business days after Saturday end at midnight closing Monday, local time: 61 real hours.
    assert days.due_at == berlin(2026, 10, 27, 0)
    assert days.target_business_seconds == 61 * HOUR


def test_public_holiday_is_skipped_by_the_deadline() -> None:
    story = Story(berlin(2026, 12, 24, 16))
    policy = make_policy(calendar="office-9-17-holidays", resolution={"P3": "4h"})
    state = only(timers(story, policy, berlin(2026, 12, 24, 16, 30)))
    assert state.due_at == berlin(2026, 12, 28, 12)


@pytest.mark.parametrize(
    ("created", "due"),
    [
        (berlin(2026, 11, 2, 10), berlin(2026, 11, 4, 17)),
        (berlin(2026, 11, 6, 21), berlin(2026, 11, 11, 17)),
        (berlin(2026, 11, 6, 16, 59), berlin(2026, 11, 10, 17)),
    ],
    ids=["monday-morning", "friday-night-counts-from-monday", "friday-last-minute-counts-friday"],
)
def test_business_day_target_ends_at_the_close_of_the_nth_working_day_after_the_start_day(
    created: datetime, due: datetime
) -> None:
    state = only(
        timers(Story(created), make_policy(calendar="office-9-17", resolution={"P3": "2d"}), created)
    )
    assert state.due_at == due


# The breach instant


@pytest.mark.parametrize(
    ("offset", "status"),
    [(-1, TimerStatus.MET), (0, TimerStatus.MET), (1, TimerStatus.BREACHED)],
    ids=["one-second-before", "exactly-at-the-target", "one-second-after"],
)
def test_stop_at_or_before_the_target_second_is_met_and_one_second_later_is_breached(
    offset: int, status: TimerStatus
) -> None:
    created = utc(2026, 11, 2, 8)
    resolved = created + timedelta(hours=1, seconds=offset)
    state = only(
        timers(Story(created).resolve(resolved), make_policy(resolution={"P3": "1h"}), utc(2026, 11, 3))
    )
    assert state.status is status
    assert state.due_at == created + timedelta(hours=1)
    assert state.breaches_at == created + timedelta(hours=1, seconds=1)
    assert state.breached_at == (state.breaches_at if status is TimerStatus.BREACHED else None)
    assert state.overdue_business_seconds == max(0, offset)


def test_stop_after_a_closing_time_deadline_but_before_the_next_opening_is_still_met() -> None:
    created = berlin(2026, 11, 2, 9)
    story = Story(created).resolve(berlin(2026, 11, 2, 20))
    state = only(
        timers(story, make_policy(calendar="office-9-17", resolution={"P3": "8h"}), berlin(2026, 11, 3))
    )
    assert state.status is TimerStatus.MET
    assert state.due_at == berlin(2026, 11, 2, 17)
    assert state.breaches_at == berlin(2026, 11, 3, 9, 0, 1)
    assert state.percent_elapsed == 100.0


def test_pause_beginning_exactly_at_the_deadline_holds_the_timer_met_not_breached() -> None:
    story = Story(utc(2026, 11, 2, 8)).pending(utc(2026, 11, 2, 10))
    state = only(timers(story, make_policy(resolution={"P3": "2h"}), utc(2026, 11, 2, 15)))
    assert (state.status, state.breached_at) == (TimerStatus.PAUSED, None)
    assert state.due_at == utc(2026, 11, 2, 10)
    assert state.breaches_at == utc(2026, 11, 2, 15, 0, 1)


# Metrics and stops


def test_first_response_stops_at_the_first_public_agent_response_and_resolution_keeps_running() -> None:
    created = utc(2026, 11, 2, 8)
    story = Story(created).then(
        utc(2026, 11, 2, 8, 40),
        "commented_public_agent",
        first_public_agent_response_at=utc(2026, 11, 2, 8, 40),
    )
    states = timers(
        story, make_policy(first_response={"P3": "1h"}, resolution={"P3": "8h"}), utc(2026, 11, 2, 10)
    )
    response = only(states, metric=Metric.FIRST_RESPONSE)
    assert (response.status, response.stopped_at) == (TimerStatus.MET, utc(2026, 11, 2, 8, 40))
    assert only(states, metric=Metric.RESOLUTION).status is TimerStatus.RUNNING


def test_cancelled_ticket_cancels_every_running_timer() -> None:
    story = Story(utc(2026, 11, 2, 8)).status(utc(2026, 11, 2, 9), "Canceled", StatusCategory.CANCELED)
    states = timers(
        story, make_policy(first_response={"P3": "1h"}, resolution={"P3": "8h"}), utc(2026, 11, 2, 10)
    )
    assert [s.status for s in states] == [TimerStatus.CANCELLED, TimerStatus.CANCELLED]


def test_unknown_calendar_is_reported_by_name() -> None:
    with pytest.raises(UnknownCalendarError, match="nowhere"):
        timers(
            Story(utc(2026, 11, 2, 8)),
            make_policy(calendar="nowhere", resolution={"P3": "1h"}),
            utc(2026, 11, 3),
        )


def test_explanation_tells_when_and_why_the_clock_paused() -> None:
    story = Story(utc(2026, 11, 2, 8)).pending(utc(2026, 11, 2, 11))
    state = only(timers(story, make_policy(resolution={"P3": "8h"}), utc(2026, 11, 2, 12)))
    assert "paused by status Pending at 2026-11-02T11:00:00Z (change status_changed)" in state.explanation


# Priority changes


def test_priority_upgrade_three_hours_in_emits_one_retroactive_breach_and_no_warnings() -> None:
    created = utc(2026, 11, 2, 8)
    policy = make_policy(resolution={"P1": "2h", "P3": "8h"})
    story = Story(created)
    before = timers(story, policy, utc(2026, 11, 2, 10, 59))
    story.reprioritize(utc(2026, 11, 2, 11), Priority.P1)
    after = timers(story, policy, utc(2026, 11, 2, 11))

    events = transitions(before, after, now=utc(2026, 11, 2, 11))
    assert kinds(events) == [
        (TransitionKind.CANCELLED, "P3"),
        (TransitionKind.STARTED, "P1"),
        (TransitionKind.BREACHED, "P1"),
    ]
    breach = events[-1]
    assert breach.retroactive
    assert breach.at == utc(2026, 11, 2, 10, 0, 1)
    p1 = only(after, priority=Priority.P1)
    assert (p1.started_at, p1.attached_at) == (created, utc(2026, 11, 2, 11))
    assert all(mark.retroactive for mark in p1.warnings)
    assert only(after, priority=Priority.P3).superseded
    later = timers(story, policy, utc(2026, 11, 2, 11, 5))
    assert transitions(after, later, now=utc(2026, 11, 2, 11, 5)) == []


def test_snapshots_of_one_second_that_disagree_on_the_priority_give_one_timer_per_metric() -> None:
    created = utc(2026, 11, 2, 8)
    story = (
        Story(created, priority=Priority.P1)
        .reprioritize(created, Priority.P2)
        .then(created, "status_changed", priority=Priority.P1, status="New")
    )
    policy = make_policy(resolution={"P1": "4h", "P2": "8h"})
    first = timers(story, policy, created + timedelta(minutes=1))
    later = timers(story, policy, created + timedelta(hours=1))
    assert [(s.priority, s.status) for s in later] == [(Priority.P1, TimerStatus.RUNNING)]
    assert transitions(first, later, now=created + timedelta(hours=1)) == []


def test_priority_change_during_a_pause_keeps_the_pause_and_counts_from_creation() -> None:
    created = utc(2026, 11, 2, 8)
    policy = make_policy(resolution={"P1": "2h", "P3": "8h"})
    story = Story(created).pending(utc(2026, 11, 2, 9)).reprioritize(utc(2026, 11, 2, 9, 30), Priority.P1)

    during = only(timers(story, policy, utc(2026, 11, 2, 9, 45)), priority=Priority.P1)
    assert during.status is TimerStatus.PAUSED
    assert during.business_elapsed_seconds == HOUR
    assert during.due_at == utc(2026, 11, 2, 10, 45)

    story.open(utc(2026, 11, 2, 10))
    after = only(timers(story, policy, utc(2026, 11, 2, 10, 30)), priority=Priority.P1)
    assert after.status is TimerStatus.RUNNING
    assert (after.business_elapsed_seconds, after.paused_business_seconds) == (90 * 60, HOUR)
    assert after.due_at == utc(2026, 11, 2, 11)


# Reopen


def reopened_story() -> Story:
    """Breached in cycle 1 (resolved after 3h against 2h), reopened, then resolved within an hour."""
    return (
        Story(utc(2026, 11, 2, 8))
        .resolve(utc(2026, 11, 2, 11))
        .open(utc(2026, 11, 2, 12))
        .resolve(utc(2026, 11, 2, 13))
    )


def test_reopen_with_a_new_cycle_tells_last_cycle_breached_apart_from_ever_breached() -> None:
    states = timers(reopened_story(), make_policy(resolution={"P3": "2h"}), utc(2026, 11, 2, 14))
    assert [(s.cycle, s.status) for s in states] == [(1, TimerStatus.BREACHED), (2, TimerStatus.MET)]
    assert only(states, cycle=2).started_at == utc(2026, 11, 2, 12)
    summary = breach_summary(states, metric=Metric.RESOLUTION)
    assert (summary.cycles, summary.last_cycle_breached, summary.ever_breached) == (2, False, True)


def test_reopen_with_resume_continues_the_same_clock_without_the_resolved_stretch() -> None:
    policy = make_policy(resolution={"P3": "5h"}, reopen="resume")
    state = only(timers(reopened_story(), policy, utc(2026, 11, 2, 14)))
    assert (state.cycle, state.status, state.business_elapsed_seconds) == (1, TimerStatus.MET, 4 * HOUR)
    assert [p.kind for p in state.pauses] == [PauseKind.RESOLVED]


def test_reopen_with_resume_leaves_an_answered_first_response_met() -> None:
    story = Story(utc(2026, 11, 2, 8)).then(utc(2026, 11, 2, 8, 30), "commented_public_agent")
    story.resolve(utc(2026, 11, 2, 9)).open(utc(2026, 11, 2, 10))
    state = only(timers(story, make_policy(first_response={"P3": "1h"}), utc(2026, 11, 2, 14)))
    assert (state.status, state.stopped_at) == (TimerStatus.MET, utc(2026, 11, 2, 8, 30))


def test_resumed_reopen_emits_resumed_once() -> None:
    policy = make_policy(resolution={"P3": "5h"}, reopen="resume")
    story = Story(utc(2026, 11, 2, 8)).resolve(utc(2026, 11, 2, 11))
    resolved = timers(story, policy, utc(2026, 11, 2, 11, 30))
    story.open(utc(2026, 11, 2, 12))
    reopened = timers(story, policy, utc(2026, 11, 2, 12))
    events = transitions(resolved, reopened, now=utc(2026, 11, 2, 12))
    assert [(e.kind, e.at) for e in events] == [(TransitionKind.RESUMED, utc(2026, 11, 2, 12))]


# Late events


def test_late_pause_that_happened_before_the_breach_retracts_it() -> None:
    policy = make_policy(resolution={"P1": "2h"})
    story = Story(utc(2026, 11, 2, 8), priority=Priority.P1)
    breached = timers(story, policy, utc(2026, 11, 2, 10, 30))
    assert only(breached).status is TimerStatus.BREACHED

    story.pending(utc(2026, 11, 2, 9))
    late = timers(story, policy, utc(2026, 11, 2, 10, 31))
    state = only(late)
    assert (state.status, state.breached_at, state.business_elapsed_seconds) == (
        TimerStatus.PAUSED,
        None,
        HOUR,
    )
    events = transitions(breached, late, now=utc(2026, 11, 2, 10, 31))
    assert [(e.kind, e.at) for e in events] == [
        (TransitionKind.PAUSED, utc(2026, 11, 2, 9)),
        (TransitionKind.BREACH_RETRACTED, utc(2026, 11, 2, 10, 31)),
    ]
    assert (
        transitions(late, timers(story, policy, utc(2026, 11, 2, 10, 40)), now=utc(2026, 11, 2, 10, 40)) == []
    )


def test_a_late_pause_that_moves_an_announced_breach_retracts_it_and_announces_the_true_instant() -> None:
    policy = make_policy(resolution={"P3": "4h"})
    story = Story(utc(2026, 11, 2, 8))
    announced = timers(story, policy, utc(2026, 11, 2, 15))
    # Both the pause and its end arrive in one batch, after the breach at 12:00:01 was announced.
    story.pending(utc(2026, 11, 2, 9)).open(utc(2026, 11, 2, 9, 30))
    moved = timers(story, policy, utc(2026, 11, 2, 15))
    events = transitions(announced, moved, now=utc(2026, 11, 2, 15))
    assert [(e.kind, e.at) for e in events] == [
        (TransitionKind.PAUSED, utc(2026, 11, 2, 9)),
        (TransitionKind.RESUMED, utc(2026, 11, 2, 9, 30)),
        (TransitionKind.BREACH_RETRACTED, utc(2026, 11, 2, 15)),
        (TransitionKind.BREACHED, utc(2026, 11, 2, 12, 30, 1)),
    ]


def test_a_corrected_creation_cancels_the_timers_of_the_old_one_even_those_already_met() -> None:
    policy = make_policy(first_response={"P3": "1h"}, resolution={"P3": "8h"})
    created = utc(2026, 11, 2, 8)
    story = Story(created).then(
        utc(2026, 11, 2, 8, 20),
        "commented_public_agent",
        first_public_agent_response_at=utc(2026, 11, 2, 8, 20),
    )
    first = timers(story, policy, utc(2026, 11, 2, 9))
    story.then(utc(2026, 11, 2, 9), "updated", created_at=created - timedelta(minutes=5))
    corrected = timers(story, policy, utc(2026, 11, 2, 9))
    events = transitions(first, corrected, now=utc(2026, 11, 2, 9))
    cancelled = {e.key for e in events if e.kind is TransitionKind.CANCELLED}
    assert cancelled == {state.key for state in first}
    assert {e.key for e in events if e.kind is TransitionKind.STARTED} == {state.key for state in corrected}


def test_snapshots_dated_after_now_are_not_yet_in_effect() -> None:
    story = Story(utc(2026, 11, 2, 8)).resolve(utc(2026, 11, 2, 12))
    state = only(timers(story, make_policy(resolution={"P3": "8h"}), utc(2026, 11, 2, 10)))
    assert state.status is TimerStatus.RUNNING


STATUSES = [
    ("New", StatusCategory.NEW),
    ("In Progress", StatusCategory.OPEN),
    ("Pending", StatusCategory.PENDING),
    ("Resolved", StatusCategory.RESOLVED),
    ("Closed", StatusCategory.CLOSED),
    ("Canceled", StatusCategory.CANCELED),
]


@st.composite
def histories(draw: st.DrawFn) -> list[TicketChanged]:
    """A ticket's ordered history: status, priority and response changes, some in the same second."""
    story = Story(utc(2026, 10, 23, 14), priority=draw(st.sampled_from(Priority)))
    moment = story.created_at
    for _ in range(draw(st.integers(0, 8))):
        moment += timedelta(minutes=draw(st.sampled_from([0, 1, 17, 90, 600, 3000])))
        choice = draw(st.integers(0, 3))
        if choice == 0:
            story.reprioritize(moment, draw(st.sampled_from(Priority)))
        elif choice == 1:
            story.then(moment, "commented_public_agent")
        else:
            story.status(moment, *draw(st.sampled_from(STATUSES)))
    return story.snapshots


SHUFFLE_POLICY = make_policy(
    calendar="office-9-17",
    first_response={"P1": "30m", "P2": "1h", "P3": "4h", "P5": "2d"},
    resolution={"P1": "4h", "P2": "8h", "P3": "2d", "P4": "5d"},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), data=st.data())
def test_duplicated_and_shuffled_deliveries_give_the_same_timers_as_ordered_ones(
    history: list[TicketChanged], data: st.DataObject
) -> None:
    duplicates = data.draw(st.lists(st.sampled_from(history), max_size=5))
    delivered = data.draw(st.permutations(history + duplicates))
    now = utc(2026, 11, 6, 12)
    assert ordered_history(delivered) == ordered_history(history)
    assert timers(delivered, SHUFFLE_POLICY, now) == timers(history, SHUFFLE_POLICY, now)


# Events over time


def run_scheduler(story: Story, policy: Policy, *, until: datetime, step: timedelta) -> list[TimerTransition]:
    """Recompute at every scheduler wake-up and every regular tick, collecting the transitions."""
    now = story.created_at
    previous: list[TimerState] = []
    events: list[TimerTransition] = []
    while now <= until:
        current = timers(story, policy, now)
        events += transitions(previous, current, now=now)
        previous = current
        due = next_due(current)
        now = min(due, now + step) if due is not None else now + step
    return events


def test_each_warning_and_the_breach_fire_exactly_once_at_their_instants() -> None:
    created = utc(2026, 11, 2, 8)
    events = run_scheduler(
        Story(created),
        make_policy(resolution={"P3": "4h"}),
        until=utc(2026, 11, 2, 14),
        step=timedelta(minutes=7),
    )
    assert [(e.kind, e.percent, e.at) for e in events] == [
        (TransitionKind.STARTED, None, created),
        (TransitionKind.WARNED, 50.0, utc(2026, 11, 2, 10)),
        (TransitionKind.WARNED, 75.0, utc(2026, 11, 2, 11)),
        (TransitionKind.WARNED, 90.0, utc(2026, 11, 2, 11, 36)),
        (TransitionKind.BREACHED, None, utc(2026, 11, 2, 12, 0, 1)),
    ]
    assert not events[-1].retroactive


def test_wake_up_after_several_thresholds_announces_only_the_highest_warning() -> None:
    policy = make_policy(resolution={"P3": "4h"})
    story = Story(utc(2026, 11, 2, 8))
    first = timers(story, policy, utc(2026, 11, 2, 8))
    late = timers(story, policy, utc(2026, 11, 2, 11, 40))
    events = transitions(first, late, now=utc(2026, 11, 2, 11, 40))
    assert [(e.kind, e.percent) for e in events] == [(TransitionKind.WARNED, 90.0)]


def test_timer_first_seen_already_breached_reports_one_retroactive_breach() -> None:
    story = Story(utc(2026, 11, 2, 8)).resolve(utc(2026, 11, 2, 13))
    current = timers(story, make_policy(resolution={"P3": "4h"}), utc(2026, 11, 3))
    events = transitions([], current, now=utc(2026, 11, 3))
    assert [(e.kind, e.retroactive) for e in events] == [
        (TransitionKind.STARTED, False),
        (TransitionKind.BREACHED, True),
        (TransitionKind.STOPPED, False),
    ]
    assert events[-1].at == utc(2026, 11, 2, 13)


def test_a_breached_clock_that_stops_late_announces_its_final_elapsed_time_once() -> None:
    policy = make_policy(resolution={"P3": "4h"})
    story = Story(utc(2026, 11, 2, 8))
    breached = timers(story, policy, utc(2026, 11, 2, 12, 30))
    story.resolve(utc(2026, 11, 2, 14))
    stopped = timers(story, policy, utc(2026, 11, 2, 14))
    later = timers(story, policy, utc(2026, 11, 3))
    events = transitions(breached, stopped, now=utc(2026, 11, 2, 14))
    assert [(e.kind, e.at) for e in events] == [(TransitionKind.STOPPED, utc(2026, 11, 2, 14))]
    final = only(stopped)
    assert (final.status, final.business_elapsed_seconds) == (TimerStatus.BREACHED, 6 * HOUR)
    assert final.breached_at == utc(2026, 11, 2, 12, 0, 1)
    assert transitions(stopped, later, now=utc(2026, 11, 3)) == []


def test_pause_and_resume_and_met_are_each_emitted_once() -> None:
    policy = make_policy(resolution={"P3": "4h"})
    story = Story(utc(2026, 11, 2, 8))
    states = [timers(story, policy, utc(2026, 11, 2, 8))]
    story.pending(utc(2026, 11, 2, 9))
    states.append(timers(story, policy, utc(2026, 11, 2, 9)))
    story.open(utc(2026, 11, 2, 9, 30))
    states.append(timers(story, policy, utc(2026, 11, 2, 9, 30)))
    story.resolve(utc(2026, 11, 2, 9, 45))
    states.append(timers(story, policy, utc(2026, 11, 2, 9, 45)))
    states.append(timers(story, policy, utc(2026, 11, 2, 18)))
    events = [
        e for before, after in pairwise(states) for e in transitions(before, after, now=after[0].evaluated_at)
    ]
    assert [e.kind for e in events] == [TransitionKind.PAUSED, TransitionKind.RESUMED, TransitionKind.MET]


def test_next_due_is_the_first_pending_warning_of_a_running_timer() -> None:
    states = timers(Story(utc(2026, 11, 2, 8)), make_policy(resolution={"P3": "4h"}), utc(2026, 11, 2, 9))
    assert next_due(states) == utc(2026, 11, 2, 10)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), step_minutes=st.sampled_from([61, 240]))
def test_replaying_any_history_emits_every_event_at_most_once_and_decides_breach_by_whole_seconds(
    history: list[TicketChanged], step_minutes: int
) -> None:
    events: list[TimerTransition] = []
    previous: list[TimerState] = []
    now = history[0].created_at
    # The scheduler's own wake-ups (next_due) come on top of the regular ticks.
    while now <= history[-1].occurred_at + timedelta(days=3):
        current = timers(history, SHUFFLE_POLICY, now)
        events += transitions(previous, current, now=now)
        previous = current
        due = next_due(current)
        now = (
            min(due, now + timedelta(minutes=step_minutes))
            if due is not None
            else now + timedelta(minutes=step_minutes)
        )
    once = [
        (e.key, e.kind, e.percent)
        for e in events
        if e.kind
        not in (TransitionKind.PAUSED, TransitionKind.RESUMED, TransitionKind.MET, TransitionKind.CANCELLED)
    ]
    assert len(once) == len(set(once))
    # A clock resumed by a reopen can stop again: it ends (met or cancelled) once per stretch it ran.
    for state in previous:
        stretches = 1 + sum(1 for pause in state.pauses if pause.kind is PauseKind.RESOLVED)
        ends = [
            e
            for e in events
            if e.key == state.key and e.kind in (TransitionKind.MET, TransitionKind.CANCELLED)
        ]
        assert len(ends) <= stretches
    assert TransitionKind.BREACH_RETRACTED not in {e.kind for e in events}
    for state in previous:
        assert (state.breached_at is not None) == (
            state.business_elapsed_seconds > state.target_business_seconds
        )
        assert state.due_at < state.breaches_at
        assert state.remaining_business_seconds - state.overdue_business_seconds == (
            state.target_business_seconds - state.business_elapsed_seconds
        )
