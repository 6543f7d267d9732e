"""Result figures against hand-computed values, the gating of small breakdowns, and reporting periods."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.survey.results import Count, InvalidPeriod, breakdown, figures, parse_period

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def nps(promoters: int, passives: int, detractors: int, *, key: str | None = None) -> list[Count]:
    return [
        Count(key, "nps", "nps", "promoter", promoters, promoters, 10 * promoters),
        Count(key, "nps", "nps", "passive", passives, passives, 8 * passives),
        Count(key, "nps", "nps", "detractor", detractors, detractors, 3 * detractors),
    ]


def test_thirty_promoters_ten_passives_ten_detractors_give_nps_40() -> None:
    out = figures([*nps(30, 10, 10), Count(None, "nps", None, None, 50, 0, 0)], min_responses=10)["nps"]
    assert out["nps"] == pytest.approx(40.0)
    assert out["bands"] == {"promoters": 30, "passives": 10, "detractors": 10}
    assert (out["invitations_sent"], out["responses"], out["response_rate_percent"]) == (100, 50, 50.0)
    # Adjusted-Wald by hand: n = 53, p = 30.75/53, d = 10.75/53, NPS_adj = 20/53 = 0.37736,
    # var = p + d - NPS_adj^2 = 0.78302 - 0.14240 = 0.64062, margin = 1.959964 * sqrt(0.64062/53) = 0.21548.
    assert out["interval"]["lower"] == pytest.approx(16.19, abs=0.01)
    assert out["interval"]["upper"] == pytest.approx(59.28, abs=0.01)


def test_csat_is_the_share_satisfied_with_its_wilson_interval_and_mean() -> None:
    counts = [
        Count(None, "csat", "five_point", "satisfied", 40, 40, 40 * 5 - 10),  # 30 fives, 10 fours: 190
        Count(None, "csat", "five_point", "neutral", 5, 5, 15),
        Count(None, "csat", "five_point", "dissatisfied", 5, 5, 7),  # 3 ones, 2 twos
    ]
    out = figures(counts, min_responses=10)["csat"]
    assert out["csat_percent"] == pytest.approx(80.0)
    # Wilson by hand for 40/50: centre (40 + 1.92073) / 53.84146 = 0.77860,
    # half width 1.959964 * sqrt(40 * 10 / 50 + 0.96036) / 53.84146 = 0.10897.
    assert out["interval"]["lower"] == pytest.approx(66.96, abs=0.01)
    assert out["interval"]["upper"] == pytest.approx(88.76, abs=0.01)
    assert out["mean_score"] == pytest.approx((190 + 15 + 7) / 50)


def test_two_point_answers_count_in_csat_but_not_in_the_mean() -> None:
    counts = [
        Count(None, "csat", "five_point", "satisfied", 10, 10, 50),
        Count(None, "csat", "two_point", "satisfied", 5, 5, 10),
        Count(None, "csat", "two_point", "dissatisfied", 5, 5, 5),
    ]
    out = figures(counts, min_responses=10)["csat"]
    assert out["csat_percent"] == pytest.approx(75.0)
    assert out["mean_score"] == pytest.approx(5.0)


def test_a_breakdown_below_the_minimum_is_marked_too_few_without_numbers() -> None:
    rows = breakdown(nps(30, 10, 10, key="email") + nps(5, 2, 2, key="vpn"), min_responses=10)
    by_key = {row["key"]: row["nps"] for row in rows}
    assert by_key["email"]["nps"] == pytest.approx(40.0)
    vpn = by_key["vpn"]
    assert vpn["too_few_responses"] is True
    assert (vpn["nps"], vpn["interval"], vpn["bands"]) == (None, None, None)
    assert vpn["responses"] == 9


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026", datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("2026-Q4", datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("2026-12", datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("2026-11-05", datetime(2026, 11, 5, tzinfo=UTC), datetime(2026, 11, 6, tzinfo=UTC)),
        ("2026-11-01..2026-11-15", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC)),
        ("30d", datetime(2026, 10, 24, 12, 0, tzinfo=UTC), NOW),
    ],
)
def test_periods(text: str, start: datetime, end: datetime) -> None:
    period = parse_period(text, now=NOW)
    assert (period.start, period.end) == (start, end)


@pytest.mark.parametrize("text", ["", "last month", "2026-13", "2026-Q5", "0d", "2026-02-30"])
def test_other_periods_are_refused_naming_the_forms(text: str) -> None:
    with pytest.raises(InvalidPeriod, match="YYYY-MM"):
        parse_period(text, now=NOW)


def test_a_range_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(InvalidPeriod, match="ends before it starts"):
        parse_period("2026-11-15..2026-11-01", now=NOW)
