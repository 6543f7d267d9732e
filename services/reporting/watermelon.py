"""The watermelon detector: green outside (SLAs and availability on target), red inside (customers unhappy).

A service is flagged for a month when
- the provider side is green: it has SLA outcomes, each SLA metric's compliance reaches the SLA target,
  and its availability, where measured, reaches its objective; and
- the customer side is red beyond doubt: the upper bound of the 95% interval of CSAT (or of NPS) is below
  its target, so even the most favourable reading of the answers misses it. A figure withheld for too
  few answers cannot make a service red.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel


@dataclass(frozen=True)
class WatermelonRules:
    """The targets each side is held to."""

    sla_target_percent: float = 95.0
    csat_target_percent: float = 85.0
    nps_target: float = 0.0


class Watermelon(BaseModel):
    """The flag, each side's verdict, and why."""

    flagged: bool
    provider_green: bool
    customer_red: bool
    reasons: list[str]


@dataclass(frozen=True)
class ProviderSide:
    """What the provider verdict reads: compliance per metric (None without outcomes), availability."""

    compliance_by_metric: Mapping[str, float | None]
    availability_percent: float | None
    availability_objective_percent: float | None


@dataclass(frozen=True)
class CustomerSide:
    """What the customer verdict reads: the upper interval bounds, None when withheld."""

    csat_upper: float | None
    nps_upper: float | None


def assess(provider: ProviderSide, customer: CustomerSide, *, rules: WatermelonRules) -> Watermelon:
    """Flag the service when the provider side is green and the customer side is red."""
    green, green_reasons = provider_verdict(provider, rules=rules)
    red, red_reasons = customer_verdict(customer, rules=rules)
    return Watermelon(
        flagged=green and red, provider_green=green, customer_red=red, reasons=green_reasons + red_reasons
    )


def provider_verdict(provider: ProviderSide, *, rules: WatermelonRules) -> tuple[bool, list[str]]:
    """Green when every SLA metric with outcomes reaches the target and availability its objective."""
    measured = {m: c for m, c in provider.compliance_by_metric.items() if c is not None}
    if not measured:
        return False, ["provider: no SLA outcomes this month"]
    reasons = []
    green = True
    for metric, compliance in sorted(measured.items()):
        meets = compliance >= rules.sla_target_percent
        green = green and meets
        verb = "meets" if meets else "misses"
        reasons.append(
            f"provider: {metric} compliance {compliance:.1f}% {verb} the {rules.sla_target_percent:g}% target"
        )
    if provider.availability_percent is not None and provider.availability_objective_percent is not None:
        meets = provider.availability_percent >= provider.availability_objective_percent
        green = green and meets
        verb = "meets" if meets else "misses"
        reasons.append(
            f"provider: availability {provider.availability_percent:.3f}% {verb} "
            f"the {provider.availability_objective_percent:g}% objective"
        )
    return green, reasons


def customer_verdict(customer: CustomerSide, *, rules: WatermelonRules) -> tuple[bool, list[str]]:
    """Red when the upper bound of CSAT or of NPS is below its target."""
    reasons = []
    red = False
    if customer.csat_upper is not None:
        below = customer.csat_upper < rules.csat_target_percent
        red = red or below
        relation = "below" if below else "not below"
        reasons.append(
            f"customer: CSAT upper bound {customer.csat_upper:.1f}% {relation} the {rules.csat_target_percent:g}% target"
        )
    if customer.nps_upper is not None:
        below = customer.nps_upper < rules.nps_target
        red = red or below
        relation = "below" if below else "not below"
        reasons.append(
            f"customer: NPS upper bound {customer.nps_upper:.1f} {relation} the {rules.nps_target:g} target"
        )
    if customer.csat_upper is None and customer.nps_upper is None:
        reasons.append("customer: too few answers for a verdict")
    return red, reasons
