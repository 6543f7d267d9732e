"""The experience score: one 0-100 figure for both sides of a service, with its formula spelled out.

Four components, each on 0..100 (higher is better):

- provider `sla_compliance`: met / (met + breached) over every SLA metric, in percent;
- provider `availability`: the share of the month's error budget left, 100 x remaining / budget, clamped
  to 0..100 (a service that used none of its budget scores 100, one that overspent it scores 0);
- customer `csat`: the percentage of satisfied CSAT answers;
- customer `nps`: the NPS moved from -100..100 onto 0..100, (NPS + 100) / 2.

The score is the weighted mean of the components that have a figure, the weights renormalised over
them. A figure withheld for too few answers has none. Without at least one figure from each side there
is no score: a provider-only number would present half the picture as the whole.
Bands: good above 75, poor below 45, average in between (both limits configurable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel


class Side(StrEnum):
    PROVIDER = "provider"
    CUSTOMER = "customer"


class Band(StrEnum):
    GOOD = "good"
    AVERAGE = "average"
    POOR = "poor"


COMPONENT_SIDES: dict[str, Side] = {
    "sla_compliance": Side.PROVIDER,
    "availability": Side.PROVIDER,
    "csat": Side.CUSTOMER,
    "nps": Side.CUSTOMER,
}
DEFINITIONS: dict[str, str] = {
    "sla_compliance": "met / (met + breached) over every SLA metric, in percent",
    "availability": "100 x error budget remaining / error budget, clamped to 0..100",
    "csat": "satisfied CSAT answers / all CSAT answers, in percent",
    "nps": "(NPS + 100) / 2",
}
DEFAULT_WEIGHTS: dict[str, float] = {"sla_compliance": 0.30, "availability": 0.20, "csat": 0.35, "nps": 0.15}


@dataclass(frozen=True)
class ExperienceRules:
    """The weights of the components and the limits of the bands."""

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    good_above: float = 75.0
    poor_below: float = 45.0

    def __post_init__(self) -> None:
        if unknown := set(self.weights) - set(COMPONENT_SIDES):
            raise ValueError(
                f"unknown experience component(s) {sorted(unknown)}; known: {sorted(COMPONENT_SIDES)}"
            )
        if any(weight < 0 for weight in self.weights.values()):
            raise ValueError("experience weights must not be negative")
        for side in Side:
            if not any(self.weights.get(name, 0) > 0 for name, s in COMPONENT_SIDES.items() if s is side):
                raise ValueError(f"the {side} side needs a component with a positive weight")
        if not 0 <= self.poor_below <= self.good_above <= 100:
            raise ValueError("experience bands need 0 <= poor_below <= good_above <= 100")


class Component(BaseModel):
    name: str
    side: Side
    weight: float
    value: float | None
    definition: str


class Experience(BaseModel):
    """The score, its band, and how it was computed."""

    score: float | None
    band: Band | None
    formula: str
    components: list[Component]
    good_above: float
    poor_below: float
    missing: list[str]


def availability_component(*, error_budget_seconds: float, budget_remaining_seconds: float) -> float:
    """The share of the error budget left, 0..100; a zero budget (a 100% objective) is all or nothing."""
    if error_budget_seconds <= 0:
        return 100.0 if budget_remaining_seconds >= 0 else 0.0
    return 100 * min(max(budget_remaining_seconds / error_budget_seconds, 0.0), 1.0)


def nps_component(nps: float) -> float:
    """An NPS on -100..100 moved onto 0..100."""
    return (nps + 100) / 2


def experience(values: Mapping[str, float | None], *, rules: ExperienceRules) -> Experience:
    """The weighted mean of the components present, its band, and the formula with the figures used."""
    components = [
        Component(
            name=name,
            side=COMPONENT_SIDES[name],
            weight=weight,
            value=values.get(name),
            definition=DEFINITIONS[name],
        )
        for name, weight in rules.weights.items()
        if weight > 0
    ]
    present = [c for c in components if c.value is not None]
    missing = [c.name for c in components if c.value is None]
    sides = {c.side for c in present}
    total_weight = sum(c.weight for c in present)
    if sides != set(Side) or total_weight <= 0:
        absent = sorted(side.value for side in set(Side) - sides)
        formula = f"no score: no figure on the {' and '.join(absent)} side"
        return Experience(
            score=None,
            band=None,
            formula=formula,
            components=components,
            good_above=rules.good_above,
            poor_below=rules.poor_below,
            missing=missing,
        )
    # Rounded to 1e-9 so that equal components give exactly their value (75, not 75.00000000000001).
    score = round(sum(c.weight * c.value for c in present if c.value is not None) / total_weight, 9)
    terms = " + ".join(f"{c.weight:.2f} x {c.name} {c.value:.1f}" for c in present)
    return Experience(
        score=score,
        band=band(score, rules=rules),
        formula=f"experience = ({terms}) / {total_weight:.2f} = {score:.1f}",
        components=components,
        good_above=rules.good_above,
        poor_below=rules.poor_below,
        missing=missing,
    )


def band(score: float, *, rules: ExperienceRules) -> Band:
    """Good above the upper limit, poor below the lower one, average from one to the other inclusive."""
    if score > rules.good_above:
        return Band.GOOD
    if score < rules.poor_below:
        return Band.POOR
    return Band.AVERAGE
