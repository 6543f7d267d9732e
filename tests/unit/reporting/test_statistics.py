"""Periods, the experience score, the watermelon rule and the noise of month-over-month changes."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reporting.experience import Band, ExperienceRules, availability_component, experience
from services.reporting.periods import InvalidPeriod, Period
from services.reporting.trends import measured_change, nps_change, proportion_change
from services.reporting.watermelon import CustomerSide, ProviderSide, WatermelonRules, assess
from services.survey.scoring import NpsTally

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


# --- periods ------------------------------------------------------------------------------------------


def test_a_period_is_a_utc_month_from_its_first_instant_to_the_next_months() -> None:
    period = Period.parse("2026-12", now=datetime(2027, 1, 2, tzinfo=UTC))
    assert (period.start, period.end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert str(period) == "2026-12"
    assert [str(p) for p in Period(2026, 2).back(3)] == ["2025-12", "2026-01", "2026-02"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-13", "not a month as YYYY-MM"),
        ("2026-00", "not a month as YYYY-MM"),
        ("2026-1", "not a month as YYYY-MM"),
        ("26-10", "not a month as YYYY-MM"),
        ("1999-12", "before 2000"),
        ("2026-12", "has not begun"),
    ],
)
def test_a_bad_period_is_refused_naming_why(text: str, message: str) -> None:
    with pytest.raises(InvalidPeriod, match=message) as refused:
        Period.parse(text, now=NOW)
    assert refused.value.field == "period"
    assert refused.value.status_code == 422


@given(st.integers(min_value=2000 * 12, max_value=2200 * 12), st.integers(min_value=-500, max_value=500))
def test_shifting_months_agrees_with_counting_them(index: int, months: int) -> None:
    period = Period(index // 12, index % 12 + 1)
    shifted = period.shifted(months)
    assert (shifted.year * 12 + shifted.month) - (period.year * 12 + period.month) == months
    assert shifted.shifted(-months) == period


# --- experience ---------------------------------------------------------------------------------------


def test_the_score_is_the_weighted_mean_of_the_components_and_the_formula_shows_it() -> None:
    result = experience(
        {"sla_compliance": 96.0, "availability": 50.0, "csat": 70.0, "nps": 60.0}, rules=ExperienceRules()
    )
    expected = (0.30 * 96 + 0.20 * 50 + 0.35 * 70 + 0.15 * 60) / 1.0
    assert result.score == pytest.approx(expected)
    assert result.band is Band.AVERAGE
    assert result.formula == (
        "experience = (0.30 x sla_compliance 96.0 + 0.20 x availability 50.0 + 0.35 x csat 70.0"
        f" + 0.15 x nps 60.0) / 1.00 = {expected:.1f}"
    )


def test_a_missing_component_renormalises_the_weights_over_those_present() -> None:
    result = experience(
        {"sla_compliance": 90.0, "availability": None, "csat": 40.0, "nps": None}, rules=ExperienceRules()
    )
    assert result.score == pytest.approx((0.30 * 90 + 0.35 * 40) / 0.65)
    assert result.missing == ["availability", "nps"]
    assert result.formula.endswith(f"/ 0.65 = {result.score:.1f}")


def test_without_a_customer_figure_there_is_no_score() -> None:
    result = experience({"sla_compliance": 99.0, "availability": 100.0}, rules=ExperienceRules())
    assert result.score is None
    assert result.band is None
    assert result.formula == "no score: no figure on the customer side"


@pytest.mark.parametrize(
    ("score", "band"), [(75.01, Band.GOOD), (75.0, Band.AVERAGE), (45.0, Band.AVERAGE), (44.99, Band.POOR)]
)
def test_bands_good_above_75_poor_below_45_average_in_between_inclusive(score: float, band: Band) -> None:
    result = experience({"sla_compliance": score, "csat": score}, rules=ExperienceRules())
    assert result.band is band


def test_weights_and_bands_are_configurable_and_checked() -> None:
    rules = ExperienceRules(weights={"sla_compliance": 1, "csat": 3}, good_above=90, poor_below=20)
    result = experience({"sla_compliance": 100.0, "csat": 80.0, "nps": 0.0}, rules=rules)
    assert result.score == pytest.approx(85.0)
    assert result.band is Band.AVERAGE
    assert [c.name for c in result.components] == ["sla_compliance", "csat"]
    with pytest.raises(ValueError, match="unknown experience component"):
        ExperienceRules(weights={"sla_compliance": 1, "csat": 1, "mood": 1})
    with pytest.raises(ValueError, match="the customer side needs a component"):
        ExperienceRules(weights={"sla_compliance": 1, "csat": 0})
    with pytest.raises(ValueError, match="poor_below <= good_above"):
        ExperienceRules(good_above=40, poor_below=60)


@pytest.mark.parametrize(
    ("budget", "remaining", "value"),
    [(100.0, 100.0, 100.0), (100.0, 25.0, 25.0), (100.0, -50.0, 0.0), (0.0, 0.0, 100.0), (0.0, -1.0, 0.0)],
)
def test_availability_scores_the_share_of_the_error_budget_left(
    budget: float, remaining: float, value: float
) -> None:
    assert availability_component(error_budget_seconds=budget, budget_remaining_seconds=remaining) == value


# --- the watermelon -----------------------------------------------------------------------------------

GREEN = ProviderSide({"first_response": 99.0, "resolution": 96.0}, 99.95, 99.9)


def test_green_slas_with_an_upper_csat_bound_below_target_is_a_watermelon() -> None:
    verdict = assess(GREEN, CustomerSide(csat_upper=70.0, nps_upper=None), rules=WatermelonRules())
    assert verdict.flagged
    assert "customer: CSAT upper bound 70.0% below the 85% target" in verdict.reasons


@pytest.mark.parametrize(
    ("provider", "customer", "flagged"),
    [
        (GREEN, CustomerSide(csat_upper=86.0, nps_upper=None), False),  # the customers might be happy enough
        (GREEN, CustomerSide(csat_upper=None, nps_upper=-5.0), True),  # the NPS alone is red
        (GREEN, CustomerSide(csat_upper=None, nps_upper=None), False),  # too few answers: no verdict
        (
            ProviderSide({"first_response": 99.0, "resolution": 94.9}, None, None),
            CustomerSide(50.0, None),
            False,
        ),
        (
            ProviderSide({"resolution": 99.0}, 99.0, 99.9),
            CustomerSide(50.0, None),
            False,
        ),  # availability missed
        (ProviderSide({"resolution": 99.0}, None, None), CustomerSide(50.0, None), True),  # not measured
        (ProviderSide({"resolution": None}, None, None), CustomerSide(50.0, None), False),  # no SLA outcomes
    ],
)
def test_only_green_outside_and_red_inside_is_flagged(provider, customer, flagged) -> None:
    assert assess(provider, customer, rules=WatermelonRules()).flagged is flagged


def test_the_targets_are_configurable() -> None:
    strict = WatermelonRules(sla_target_percent=99.5, csat_target_percent=60.0)
    assert not assess(GREEN, CustomerSide(csat_upper=70.0, nps_upper=None), rules=strict).flagged


# --- noise --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "lower", "upper"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10 (as differences after-before).
        ((48, 80), (56, 70), 5.24, 33.39),
        ((3, 10), (9, 10), 17.05, 80.90),
        ((0, 10), (10, 10), 60.75, 100.0),
    ],
)
def test_the_proportion_change_interval_is_newcombes_published_one(before, after, lower, upper) -> None:
    change = proportion_change(before=before, after=after, min_count=1)
    assert change.interval_lower == pytest.approx(lower, abs=0.01)
    assert change.interval_upper == pytest.approx(upper, abs=0.01)
    assert change.beyond_noise is True


def test_a_small_change_on_few_counts_is_within_the_noise() -> None:
    change = proportion_change(before=(18, 20), after=(16, 20), min_count=10)
    assert change.change == pytest.approx(-10.0)
    assert change.beyond_noise is False
    assert change.interval_lower is not None
    assert change.interval_lower < 0 < (change.interval_upper or 0)


def test_a_change_over_too_few_counts_is_not_assessed() -> None:
    change = proportion_change(before=(3, 4), after=(40, 50), min_count=10)
    assert change.change is None
    assert change.beyond_noise is None
    assert "too few" in change.method


def test_the_nps_change_uses_the_adjusted_wald_variances_of_both_months() -> None:
    before, after = (
        NpsTally(promoters=20, passives=10, detractors=20),
        NpsTally(promoters=40, passives=5, detractors=5),
    )
    change = nps_change(before=before, after=after, min_count=10)
    assert change.change == pytest.approx(70.0 - 0.0)

    def adjusted(p: int, d: int, n: int) -> tuple[float, float]:
        m = n + 3
        pp, pd = (p + 0.75) / m, (d + 0.75) / m
        return pp - pd, (pp + pd - (pp - pd) ** 2) / m

    (n1, v1), (n2, v2) = adjusted(20, 20, 50), adjusted(40, 5, 50)
    margin = 1.959963984540054 * math.sqrt(v1 + v2)
    assert change.interval_lower == pytest.approx(100 * (n2 - n1 - margin))
    assert change.interval_upper == pytest.approx(100 * (n2 - n1 + margin))
    assert change.beyond_noise is True
    same = nps_change(before=before, after=NpsTally(21, 10, 19), min_count=10)
    assert same.beyond_noise is False


def test_availability_changes_are_measured_not_tested() -> None:
    change = measured_change(before=99.9, after=99.5)
    assert change.change == pytest.approx(-0.4)
    assert change.beyond_noise is None
