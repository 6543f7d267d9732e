"""Scorecards from counts: compliance, gating, ranking, breakdowns, trends, and their CSV."""

from __future__ import annotations

import csv
import io

import pytest

from services.reporting.periods import Period
from services.reporting.scorecard import (
    CsatCount,
    GroupCounts,
    MonthCounts,
    ScorecardRules,
    SlaCount,
    breakdown,
    ranked,
    scorecard,
    trend,
)
from services.reporting.tables import SCORECARD_COLUMNS, cell, scorecard_rows, to_csv
from services.survey.scoring import NpsTally

pytestmark = pytest.mark.unit

OCTOBER = Period(2026, 10)
RULES = ScorecardRules()


def counts(**fields) -> MonthCounts:
    base = {
        "sla": {
            ("first_response", "P1"): SlaCount(met=4, breached=1),
            ("first_response", "P3"): SlaCount(met=40, breached=0),
            ("resolution", "P3"): SlaCount(met=44, breached=1),
        },
        "csat": CsatCount(satisfied=8, neutral=3, dissatisfied=9),
        "nps": NpsTally(promoters=2, passives=3, detractors=10),
    }
    return MonthCounts(**{**base, **fields})


def test_compliance_is_met_over_decided_outcomes_per_metric_pooled_and_per_priority() -> None:
    card = scorecard(service="email", period=OCTOBER, counts=counts(), rules=RULES)
    first = card.provider.sla["first_response"]
    assert first.compliance_percent == pytest.approx(100 * 44 / 45)
    assert first.by_priority["P3"].compliance_percent == 100.0
    assert first.by_priority["P1"].compliance_percent is None, "five outcomes: below the minimum of ten"
    assert first.by_priority["P1"].met == 4
    assert card.provider.sla_compliance_percent == pytest.approx(100 * 88 / 90)
    assert card.provider.breaches == 2


def test_a_service_without_outcomes_shows_both_metrics_empty_not_perfect() -> None:
    card = scorecard(service="email", period=OCTOBER, counts=MonthCounts(), rules=RULES)
    assert set(card.provider.sla) == {"first_response", "resolution"}
    assert card.provider.sla["resolution"].compliance_percent is None
    assert card.provider.sla_compliance_percent is None
    assert not card.watermelon.flagged


def test_green_slas_and_unhappy_answers_make_the_card_a_watermelon() -> None:
    card = scorecard(service="email", period=OCTOBER, counts=counts(), rules=RULES)
    assert card.customer.csat.csat_percent == pytest.approx(40.0)
    assert card.customer.csat.interval is not None
    assert card.customer.csat.interval.upper < 85
    assert card.watermelon.flagged


def test_the_response_rate_is_answers_over_invitations_sent() -> None:
    card = scorecard(service="email", period=OCTOBER, counts=counts(csat_invitations_sent=40), rules=RULES)
    assert card.customer.response_rate_percent == pytest.approx(50.0)
    assert (
        scorecard(service="e", period=OCTOBER, counts=counts(), rules=RULES).customer.response_rate_percent
        is None
    )


def test_services_are_ranked_by_experience_with_unscored_ones_last() -> None:
    happy = counts(csat=CsatCount(satisfied=20), nps=NpsTally(15, 0, 0))
    cards = [
        scorecard(service="b-unscored", period=OCTOBER, counts=MonthCounts(), rules=RULES),
        scorecard(service="c-sad", period=OCTOBER, counts=counts(), rules=RULES),
        scorecard(service="a-happy", period=OCTOBER, counts=happy, rules=RULES),
    ]
    assert [c.business_service for c in ranked(cards)] == ["a-happy", "c-sad", "b-unscored"]


def test_a_breakdown_withholds_every_figure_of_a_small_group() -> None:
    groups = {
        "network": GroupCounts(
            tickets_resolved=30, sla={"resolution": SlaCount(27, 3)}, csat=CsatCount(9, 1, 2)
        ),
        "apps": GroupCounts(tickets_resolved=3, sla={"resolution": SlaCount(3, 0)}, csat=CsatCount(2, 0, 0)),
    }
    result = breakdown(service="email", period=OCTOBER, by="assignment_group", groups=groups, rules=RULES)
    network, apps = result.rows
    assert network.key == "network"
    assert network.sla["resolution"].compliance_percent == pytest.approx(90.0)
    assert network.csat.csat_percent == pytest.approx(75.0)
    assert (apps.sla["resolution"].compliance_percent, apps.csat.csat_percent) == (None, None)
    assert (apps.sla["resolution"].met, apps.csat.satisfied) == (3, 2), "the counts stay visible"


def test_a_trend_compares_each_month_with_the_one_before() -> None:
    september, october = Period(2026, 9), OCTOBER
    before = counts(sla={("resolution", "P3"): SlaCount(met=60, breached=40)})
    after = counts(sla={("resolution", "P3"): SlaCount(met=95, breached=5)})
    result = trend(
        service="email",
        periods=[Period(2026, 8), september, october],
        counts={september: before, october: after},
        rules=RULES,
    )
    assert [p.period for p in result.points] == ["2026-09", "2026-10"]
    august_to_september, september_to_october = result.points
    assert august_to_september.sla_change.change is None, "no outcomes in August"
    assert september_to_october.sla_change.change == pytest.approx(35.0)
    assert september_to_october.sla_change.beyond_noise is True
    assert september_to_october.csat_change.beyond_noise is False, "the same answers both months"


def test_the_csv_has_one_row_per_scorecard_with_empty_cells_for_withheld_figures() -> None:
    cards = [scorecard(service="=cmd|' /C calc'!A0", period=OCTOBER, counts=MonthCounts(), rules=RULES)]
    text = to_csv(scorecard_rows(cards), columns=SCORECARD_COLUMNS)
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert list(row) == list(SCORECARD_COLUMNS)
    assert row["business_service"] == "'=cmd|' /C calc'!A0", "a formula is defused"
    assert row["csat_percent"] == ""
    assert row["watermelon"] == "false"
    assert text.endswith("\r\n")


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (-12.5, -12.5),
        (3, 3),
        (None, ""),
        (True, "true"),
        ("+1", "'+1"),
        ("@x", "'@x"),
        ("-x", "'-x"),
        ("ok", "ok"),
    ],
)
def test_cells_keep_numbers_and_defuse_text_a_spreadsheet_would_run(value, written) -> None:
    assert cell(value) == written
