"""A small SVG line-chart layout for the dashboard: the two sides of a service over the months (pure).

It computes geometry only (scales, polylines, markers, ticks); the template draws it as inline SVG,
so the chart needs no JavaScript, no network and no third-party script. The provider side (SLA
compliance, availability) is the upper panel, the customer side (CSAT, NPS) the lower one, on a
shared month axis. A month without a figure leaves a gap in its line rather than a fake zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 640
PANEL_HEIGHT = 130
GAP = 34
LEFT, RIGHT, TOP = 44, 44, 22
HEIGHT = TOP + 2 * PANEL_HEIGHT + GAP + 26


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class Series:
    """One line: its name, css class, polylines (split at gaps) and markers with their exact values."""

    name: str
    css: str
    lines: list[str]
    markers: list[Marker]


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Panel:
    title: str
    top: float
    left_ticks: list[Tick]
    right_ticks: list[Tick]
    series: list[Series]


@dataclass(frozen=True)
class MonthTick:
    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: int
    panel_height: int
    panels: list[Panel]
    months: list[MonthTick]


@dataclass(frozen=True)
class Month:
    """One month's figures; None where there is none."""

    period: str
    sla_compliance: float | None
    availability: float | None
    availability_objective: float | None
    csat: float | None
    nps: float | None


@dataclass(frozen=True)
class Scale:
    """A linear map from [low, high] onto the panel's height, high at the top."""

    low: float
    high: float
    top: float
    height: float

    def y(self, value: float) -> float:
        share = (min(max(value, self.low), self.high) - self.low) / (self.high - self.low)
        return round(self.top + self.height * (1 - share), 2)


def two_sided_chart(months: Sequence[Month]) -> Chart:
    """The provider panel above the customer panel, one x position per month."""
    xs = month_positions(len(months))
    provider_top, customer_top = TOP, TOP + PANEL_HEIGHT + GAP
    availability_scale = Scale(availability_floor(months), 100.0, provider_top, PANEL_HEIGHT)
    percent_provider = Scale(0.0, 100.0, provider_top, PANEL_HEIGHT)
    percent_customer = Scale(0.0, 100.0, customer_top, PANEL_HEIGHT)
    nps_scale = Scale(-100.0, 100.0, customer_top, PANEL_HEIGHT)
    provider = Panel(
        title="Provider: SLA compliance (left axis) and availability (right axis)",
        top=provider_top,
        left_ticks=ticks(percent_provider, (0, 50, 100), "{:g}%"),
        right_ticks=ticks(availability_scale, _availability_ticks(availability_scale.low), "{:g}%"),
        series=[
            series(
                "SLA compliance", "sla", xs, [m.sla_compliance for m in months], percent_provider, "{:.1f}%"
            ),
            series(
                "Availability",
                "availability",
                xs,
                [m.availability for m in months],
                availability_scale,
                "{:.3f}%",
            ),
            series(
                "Availability objective",
                "objective",
                xs,
                [m.availability_objective for m in months],
                availability_scale,
                "{:g}%",
            ),
        ],
    )
    customer = Panel(
        title="Customer: CSAT (left axis) and NPS (right axis)",
        top=customer_top,
        left_ticks=ticks(percent_customer, (0, 50, 100), "{:g}%"),
        right_ticks=ticks(nps_scale, (-100, 0, 100), "{:+g}"),
        series=[
            series("CSAT", "csat", xs, [m.csat for m in months], percent_customer, "{:.1f}%"),
            series("NPS", "nps", xs, [m.nps for m in months], nps_scale, "{:+.0f}"),
        ],
    )
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=RIGHT,
        panel_height=PANEL_HEIGHT,
        panels=[provider, customer],
        months=[MonthTick(x, m.period[2:]) for x, m in zip(xs, months, strict=True)],
    )


def month_positions(count: int) -> list[float]:
    """Evenly spaced x positions between the two axes."""
    if count == 1:
        return [LEFT + (WIDTH - LEFT - RIGHT) / 2]
    step = (WIDTH - LEFT - RIGHT) / (count - 1)
    return [round(LEFT + i * step, 2) for i in range(count)]


def availability_floor(months: Sequence[Month]) -> float:
    """The lowest percent the availability axis shows: a little under the lowest figure or objective."""
    values = [v for m in months for v in (m.availability, m.availability_objective) if v is not None]
    if not values:
        return 99.0
    lowest = min(values)
    # A tenth of a percent under the lowest figure, on whole tenths: 99.95 -> 99.8, 97.2 -> 97.1.
    floor = math.floor(lowest * 10) / 10 - 0.1
    return max(min(floor, 99.9), 0.0)


def series(
    name: str, css: str, xs: Sequence[float], values: Sequence[float | None], scale: Scale, fmt: str
) -> Series:
    """A line through the months that have a value, broken where one has none."""
    lines: list[list[str]] = [[]]
    markers = []
    for x, value in zip(xs, values, strict=True):
        if value is None:
            if lines[-1]:
                lines.append([])
            continue
        y = scale.y(value)
        lines[-1].append(f"{x:g},{y:g}")
        markers.append(Marker(x, y, fmt.format(value)))
    return Series(name=name, css=css, lines=[" ".join(line) for line in lines if line], markers=markers)


def ticks(scale: Scale, values: Sequence[float], fmt: str) -> list[Tick]:
    return [Tick(scale.y(v), fmt.format(v)) for v in values]


def _availability_ticks(low: float) -> tuple[float, ...]:
    return (round(low, 1), round((low + 100) / 2, 2), 100.0)
