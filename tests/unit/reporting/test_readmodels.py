"""Folding a batch of events into read-model rows: newest wins, breach and warning instants carried."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bothways.events import (
    FollowupClosed,
    FollowupOpened,
    SlaBreached,
    SlaBreachRetracted,
    SlaMet,
    SlaPaused,
    SlaStarted,
    SlaStopped,
    SlaWarned,
    SurveyAnswered,
    SurveyDeliveryFailed,
    SurveySent,
    TicketChanged,
)
from services.reporting.readmodels import answer_band, survey_rows, ticket_facts, timer_rows

pytestmark = pytest.mark.unit

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


def ticket(at: datetime, category: str, **fields: Any) -> TicketChanged:
    return TicketChanged(
        ticket_key="jira:SUP-1",
        source="jira",
        external_id="SUP-1",
        occurred_at=at,
        status=category,
        status_category=category,
        created_at=T0,
        business_service="email",
        **fields,
    )


def timer(kind: type, at: datetime, state: str, **fields: Any):
    return kind(
        **{
            "ticket_key": "jira:SUP-1",
            "timer_key": "resolution/1/P3/2026-10-05T09:00:00Z",
            "metric": "resolution",
            "cycle": 1,
            "priority": "P3",
            "policy": "standard",
            "policy_version": 1,
            "calendar": "office",
            "state": state,
            "occurred_at": at,
            "started_at": T0,
            "due_at": T0 + timedelta(hours=8),
            "target_business_seconds": 28800,
            "business_elapsed_seconds": 100,
            "remaining_business_seconds": 28700,
            "percent_elapsed": 0.3,
            **fields,
        }
    )


def test_the_newest_snapshot_of_a_ticket_wins_whatever_the_delivery_order() -> None:
    resolved = ticket(T0 + timedelta(hours=3), "resolved", resolved_at=T0 + timedelta(hours=3))
    [fact] = ticket_facts([ticket(T0, "open"), resolved, ticket(T0 + timedelta(hours=1), "pending")])
    assert (fact.status_category, fact.resolved_at) == ("resolved", T0 + timedelta(hours=3))


def test_a_reopened_ticket_has_no_standing_resolution_and_a_closed_one_falls_back_to_closed_at() -> None:
    [reopened] = ticket_facts([ticket(T0, "open", resolved_at=T0 - timedelta(hours=1))])
    [closed] = ticket_facts([ticket(T0, "closed", closed_at=T0 - timedelta(minutes=5))])
    assert reopened.resolved_at is None
    assert closed.resolved_at == T0 - timedelta(minutes=5)


def test_a_breach_instant_survives_later_changes_while_the_timer_stays_breached() -> None:
    breach = T0 + timedelta(hours=8, seconds=1)
    [row] = timer_rows(
        [
            timer(SlaStarted, T0, "running"),
            timer(SlaWarned, T0 + timedelta(hours=6), "running", threshold_percent=75),
            timer(SlaBreached, breach, "breached"),
            timer(SlaPaused, breach + timedelta(hours=2), "breached"),
        ]
    )
    assert (row.state, row.breached_at, row.warned_at) == ("breached", breach, T0 + timedelta(hours=6))


def test_a_breached_clock_stopping_late_keeps_the_breach_and_records_the_real_elapsed_time() -> None:
    breach = T0 + timedelta(hours=8, seconds=1)
    resolved = T0 + timedelta(hours=11)
    [row] = timer_rows(
        [
            timer(SlaBreached, breach, "breached", business_elapsed_seconds=28801),
            timer(SlaStopped, resolved, "breached", stopped_at=resolved, business_elapsed_seconds=39600),
        ]
    )
    assert (row.state, row.breached_at, row.stopped_at) == ("breached", breach, resolved)
    assert row.business_elapsed_seconds == 39600


def test_a_retracted_breach_leaves_no_breach_instant() -> None:
    breach = T0 + timedelta(hours=8, seconds=1)
    [row] = timer_rows(
        [
            timer(SlaBreached, breach, "breached"),
            timer(SlaBreachRetracted, breach + timedelta(minutes=1), "running"),
            timer(SlaMet, T0 + timedelta(hours=7), "met", stopped_at=T0 + timedelta(hours=7)),
        ]
    )
    assert (row.state, row.breached_at, row.stopped_at) == ("met", None, T0 + timedelta(hours=7))


def test_an_unknown_state_or_metric_from_a_newer_producer_is_kept_as_text() -> None:
    [row] = timer_rows([timer(SlaStarted, T0, "escalated", metric="next_reply")])
    assert (row.state, row.metric) == ("escalated", "next_reply")


def survey(kind: type, at: datetime, **fields: Any):
    base = {
        "invitation_id": "inv-1",
        "survey_kind": "csat",
        "occurred_at": at,
        "ticket_key": "jira:SUP-1",
        "business_service": "email",
    }
    return kind(**{**base, **fields})


def test_an_invitation_keeps_the_first_instant_of_each_step_and_the_latest_answer() -> None:
    rows = survey_rows(
        [
            survey(SurveyDeliveryFailed, T0, channel="email", attempts=1, error="421"),
            survey(SurveySent, T0 + timedelta(minutes=15), channel="email"),
            survey(SurveySent, T0 + timedelta(minutes=30), channel="email", business_service=None),
            survey(SurveyAnswered, T0 + timedelta(hours=2), score=2, scale="1-5"),
            survey(SurveyAnswered, T0 + timedelta(hours=1), score=5, scale="1-5"),  # older, delivered late
        ]
    )
    [invitation] = rows.invitations
    assert invitation.delivery_failed_at == T0
    assert invitation.sent_at == T0 + timedelta(minutes=15)
    assert invitation.business_service == "email", "a step without attribution keeps the earlier one"
    [answer] = rows.answers
    assert (answer.score, answer.band) == (2, "dissatisfied")


def test_a_followup_is_open_until_closed() -> None:
    due = T0 + timedelta(days=2)
    opened = survey(FollowupOpened, T0, followup_id="fu-1", due_at=due)
    closed = survey(
        FollowupClosed, T0 + timedelta(days=1), followup_id="fu-1", due_at=due, outcome="called back"
    )
    [row] = survey_rows([opened, closed]).followups
    assert (row.opened_at, row.closed_at, row.outcome) == (T0, T0 + timedelta(days=1), "called back")
    assert survey_rows([opened]).followups[0].closed_at is None


@pytest.mark.parametrize(
    ("fields", "band"),
    [
        ({"score": 4, "scale": "1-5"}, "satisfied"),
        ({"score": 3, "scale": "1-5"}, "neutral"),
        ({"score": 2, "scale": "1-5"}, "dissatisfied"),
        ({"score": 2, "scale": "2-point"}, "satisfied"),
        ({"score": 1, "scale": "2-point"}, "dissatisfied"),
        ({"score": 7, "scale": "1-7", "satisfied": True}, "satisfied"),  # unknown scale: the survey's verdict
        ({"score": 4, "scale": "1-7"}, "neutral"),
        ({"survey_kind": "nps", "score": 9, "scale": "0-10"}, "promoter"),
        ({"survey_kind": "nps", "score": 7, "scale": "0-10"}, "passive"),
        ({"survey_kind": "nps", "score": 6, "scale": "0-10", "nps_band": "detractor"}, "detractor"),
    ],
)
def test_answers_are_banded_as_the_survey_service_bands_them(fields: dict[str, Any], band: str) -> None:
    assert answer_band(survey(SurveyAnswered, T0, **fields)) == band
