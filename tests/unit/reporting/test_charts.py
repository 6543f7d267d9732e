"""The dashboard chart's geometry: months spread between the axes, values on their scales, gaps kept."""

from __future__ import annotations

import itertools

import pytest

from services.reporting.charts import (
    HEIGHT,
    LEFT,
    PANEL_HEIGHT,
    RIGHT,
    TOP,
    WIDTH,
    Month,
    Scale,
    availability_floor,
    month_positions,
    series,
    two_sided_chart,
)

pytestmark = pytest.mark.unit


def month(period: str, sla=None, availability=None, objective=None, csat=None, nps=None) -> Month:
    return Month(period, sla, availability, objective, csat, nps)


def test_months_are_spread_evenly_from_the_left_axis_to_the_right_one() -> None:
    xs = month_positions(12)
    assert (xs[0], xs[-1]) == (LEFT, WIDTH - RIGHT)
    gaps = [b - a for a, b in itertools.pairwise(xs)]
    assert max(gaps) - min(gaps) < 0.02, "even, up to the rounding of coordinates to 1/100"
    assert month_positions(1) == [LEFT + (WIDTH - LEFT - RIGHT) / 2]


def test_a_scale_puts_its_high_end_at_the_top_and_clamps_outside_values() -> None:
    scale = Scale(low=0, high=100, top=10, height=100)
    assert (scale.y(100), scale.y(0), scale.y(25)) == (10, 110, 85)
    assert (scale.y(150), scale.y(-5)) == (10, 110)


def test_a_month_without_a_figure_breaks_the_line_instead_of_dropping_to_zero() -> None:
    drawn = series(
        "CSAT", "csat", [0, 10, 20, 30], [50.0, None, 60.0, 70.0], Scale(0, 100, 0, 100), "{:.0f}%"
    )
    assert drawn.lines == ["0,50", "20,40 30,30"]
    assert [m.label for m in drawn.markers] == ["50%", "60%", "70%"]


def test_the_availability_axis_starts_a_little_under_the_lowest_figure_or_objective() -> None:
    assert availability_floor([month("2026-10", availability=99.95, objective=99.9)]) == pytest.approx(99.8)
    assert availability_floor([month("2026-10", availability=97.25, objective=99.9)]) == pytest.approx(97.1)
    assert availability_floor([month("2026-10")]) == 99.0


def test_the_provider_panel_sits_above_the_customer_panel_with_nps_on_its_own_axis() -> None:
    chart = two_sided_chart(
        [month("2026-09", 90.0, 99.95, 99.9, 80.0, -20.0), month("2026-10", 95.0, 99.99, 99.9, 60.0, 10.0)]
    )
    provider, customer = chart.panels
    assert provider.top == TOP
    assert customer.top > provider.top + PANEL_HEIGHT
    assert chart.height == HEIGHT
    nps = next(s for s in customer.series if s.css == "nps")
    zero = customer.top + PANEL_HEIGHT / 2
    assert nps.markers[0].y > zero > nps.markers[1].y, "-20 below the middle, +10 above it"
    assert [m.label for m in chart.months] == ["26-09", "26-10"]
