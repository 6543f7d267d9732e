"""The fatigue budget: one budget per person across CSAT and NPS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bothways.events import SurveyKind
from services.survey.fatigue import PastInvitation, ThrottleCode, verdict
from services.survey.rules import FatigueBudget

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CSAT, NPS = SurveyKind.CSAT, SurveyKind.NPS
BUDGET = FatigueBudget()


def days_ago(days: float, kind: SurveyKind = CSAT) -> PastInvitation:
    return PastInvitation(kind, NOW - timedelta(days=days))


def test_a_person_never_surveyed_may_be_invited() -> None:
    assert verdict(BUDGET, kind=CSAT, at=NOW, history=[]) is None


def test_a_csat_within_thirty_days_of_another_is_throttled_and_after_it_is_not() -> None:
    throttle = verdict(BUDGET, kind=CSAT, at=NOW, history=[days_ago(29)])
    assert throttle is not None
    assert throttle.code is ThrottleCode.COOLDOWN
    assert "29 day(s)" in throttle.reason
    assert "csat cooldown is 30 days" in throttle.reason
    assert verdict(BUDGET, kind=CSAT, at=NOW, history=[days_ago(30)]) is None


def test_the_budget_crosses_kinds_an_nps_blocks_a_csat_and_a_csat_blocks_an_nps() -> None:
    after_nps = verdict(BUDGET, kind=CSAT, at=NOW, history=[days_ago(10, NPS)])
    assert after_nps is not None
    assert "a nps survey was sent 10 day(s) before" in after_nps.reason
    after_csat = verdict(BUDGET, kind=NPS, at=NOW, history=[days_ago(60, CSAT)])
    assert after_csat is not None
    assert "nps cooldown is 90 days" in after_csat.reason
    assert verdict(BUDGET, kind=NPS, at=NOW, history=[days_ago(91, CSAT)]) is None


def test_an_invitation_scheduled_later_counts_too() -> None:
    later = PastInvitation(NPS, NOW + timedelta(days=3))
    throttle = verdict(BUDGET, kind=CSAT, at=NOW, history=[later])
    assert throttle is not None
    assert "is scheduled 3 day(s) after" in throttle.reason


def test_the_rolling_cap_counts_every_thirty_day_window_holding_the_invitation() -> None:
    budget = FatigueBudget(cooldown={CSAT: timedelta(days=1), NPS: timedelta(days=1)}, max_per_30_days=2)
    assert verdict(budget, kind=CSAT, at=NOW, history=[days_ago(20)]) is None
    capped = verdict(budget, kind=CSAT, at=NOW, history=[days_ago(20), days_ago(5)])
    assert capped is not None
    assert capped.code is ThrottleCode.CAP
    # 31 and 2 days ago are never in one 30-day window with today... but 2 days ago is, alone.
    assert verdict(budget, kind=CSAT, at=NOW, history=[days_ago(31), days_ago(2)]) is None
    # One before and one after: the window from the earlier one holds all three.
    spread = [days_ago(10), PastInvitation(CSAT, NOW + timedelta(days=10))]
    assert verdict(budget, kind=CSAT, at=NOW, history=spread) is not None


def test_a_follow_up_re_survey_is_exempt() -> None:
    assert verdict(BUDGET, kind=CSAT, at=NOW, history=[days_ago(1)], exempt=True) is None
