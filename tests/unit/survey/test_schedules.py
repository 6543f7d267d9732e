"""Follow-up due times on a business calendar, campaign schedules and the delivery retry schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.survey.campaigns import next_run_after
from services.survey.delivery import RetryPolicy
from services.survey.followups import due_at
from services.survey.rules import parse_rules

pytestmark = pytest.mark.unit

OFFICE = {
    "name": "office-berlin",
    "timezone": "Europe/Berlin",
    "weekly": {day: ["08:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": {"country": "DE", "subdivision": "BE"},
}


def test_a_follow_up_is_due_48_hours_later_on_the_default_around_the_clock_calendar() -> None:
    opened = datetime(2026, 11, 6, 16, 0, tzinfo=UTC)  # a Friday
    assert due_at(parse_rules({}).followup, opened_at=opened) == opened + timedelta(hours=48)


def test_on_an_office_calendar_the_follow_up_skips_nights_weekends_and_holidays() -> None:
    policy = parse_rules({"followup": {"due": "9h", "calendar": OFFICE}}).followup
    # Thursday 24 December 2026, 16:00 Berlin: one hour left that day; the 25th and 26th are holidays
    # and a weekend follows; the remaining eight hours are Monday 28th, 08:00 to 16:00 Berlin.
    opened = datetime(2026, 12, 24, 15, 0, tzinfo=UTC)
    assert due_at(policy, opened_at=opened) == datetime(2026, 12, 28, 15, 0, tzinfo=UTC)


def test_a_one_off_campaign_runs_once_and_a_periodic_one_skips_missed_runs() -> None:
    first = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_run_after(first_run_at=first, every_days=None, now=first) is None
    assert next_run_after(first_run_at=first, every_days=90, now=first) == first + timedelta(days=90)
    # Down for 200 days: the next run is the next slot, not three runs in a row.
    assert next_run_after(
        first_run_at=first, every_days=90, now=first + timedelta(days=200)
    ) == first + timedelta(days=270)


def test_retries_back_off_exponentially_up_to_a_cap_and_then_give_up() -> None:
    policy = RetryPolicy(max_attempts=6, base=timedelta(minutes=1), factor=4, cap=timedelta(hours=6))
    now = datetime(2026, 11, 2, tzinfo=UTC)
    waits = [policy.next_attempt(attempt=n, now=now) for n in range(1, 7)]
    assert [w - now for w in waits[:5]] == [
        timedelta(minutes=1),
        timedelta(minutes=4),
        timedelta(minutes=16),
        timedelta(minutes=64),
        timedelta(minutes=256),
    ]
    assert waits[5] is None
    assert RetryPolicy(max_attempts=20).next_attempt(attempt=10, now=now) == now + timedelta(hours=6)
