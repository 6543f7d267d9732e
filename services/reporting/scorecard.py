"""Scorecards: a business service's month from both sides, computed from counts (pure, no I/O).

The store counts (tickets, SLA outcomes, answers, follow-ups) per service and month; this module turns
counts into figures: compliance, intervals, the experience score, the watermelon flag, breakdowns and
trends. Figures over small groups are withheld below a minimum count, never shown as 0% or 100%.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise

from pydantic import BaseModel

from services.reporting.experience import (
    Experience,
    ExperienceRules,
    availability_component,
    experience,
    nps_component,
)
from services.reporting.periods import Period
from services.reporting.trends import Change, measured_change, nps_change, proportion_change
from services.reporting.watermelon import CustomerSide, ProviderSide, Watermelon, WatermelonRules, assess
from services.survey.scoring import (
    DEFAULT_MIN_RESPONSES,
    NpsTally,
    nps_figure,
    response_rate,
    wilson_interval,
)

METRICS = ("first_response", "resolution")


@dataclass(frozen=True)
class ScorecardRules:
    """Everything configurable about the figures (see docs/reporting.md)."""

    experience: ExperienceRules = field(default_factory=ExperienceRules)
    watermelon: WatermelonRules = field(default_factory=WatermelonRules)
    # CSAT and NPS of a service are withheld below this many answers (as the survey service does).
    min_responses: int = DEFAULT_MIN_RESPONSES
    # Every figure of a breakdown row (and of a priority) is withheld below this many counts.
    breakdown_min_count: int = 10


# --- counts, as the store reads them -----------------------------------------------------------------


@dataclass(frozen=True)
class SlaCount:
    met: int = 0
    breached: int = 0

    def __add__(self, other: SlaCount) -> SlaCount:
        return SlaCount(self.met + other.met, self.breached + other.breached)


@dataclass(frozen=True)
class ResolutionCount:
    """Business seconds to resolve the tickets resolved in the month (percentile_cont, linear)."""

    tickets: int = 0
    median_seconds: float | None = None
    p90_seconds: float | None = None
    # A breached timer whose stop no event reported: its time is the last one reported (the breach's),
    # not its time to resolve.
    unstopped_breaches: int = 0


@dataclass(frozen=True)
class AvailabilityCount:
    objective_percent: float
    agreed_seconds: int
    downtime_seconds: float
    availability_percent: float | None
    error_budget_seconds: float
    budget_remaining_seconds: float
    outages: int
    mtrs_seconds: float | None
    mtbf_seconds: float | None
    correction: bool


@dataclass(frozen=True)
class CsatCount:
    satisfied: int = 0
    neutral: int = 0
    dissatisfied: int = 0

    @property
    def responses(self) -> int:
        return self.satisfied + self.neutral + self.dissatisfied


@dataclass(frozen=True)
class FollowupCount:
    opened: int = 0
    open: int = 0
    overdue: int = 0


@dataclass(frozen=True)
class MonthCounts:
    """Everything counted for one business service and month."""

    tickets_opened: int = 0
    tickets_resolved: int = 0
    backlog: int = 0
    # (metric, priority or None) -> outcomes decided in the month
    sla: Mapping[tuple[str, str | None], SlaCount] = field(default_factory=dict)
    resolution: ResolutionCount = field(default_factory=ResolutionCount)
    availability: AvailabilityCount | None = None
    csat: CsatCount = field(default_factory=CsatCount)
    nps: NpsTally = field(default_factory=lambda: NpsTally(0, 0, 0))
    csat_invitations_sent: int = 0
    followups: FollowupCount = field(default_factory=FollowupCount)
    watermelon_tickets: int = 0


@dataclass(frozen=True)
class GroupCounts:
    """What a breakdown row counts for one assignment group or priority."""

    tickets_resolved: int = 0
    sla: Mapping[str, SlaCount] = field(default_factory=dict)
    csat: CsatCount = field(default_factory=CsatCount)


# --- figures, as the API answers them ----------------------------------------------------------------


class Interval(BaseModel):
    lower: float
    upper: float


class SlaFigure(BaseModel):
    met: int
    breached: int
    sufficient: bool
    compliance_percent: float | None


class MetricFigure(SlaFigure):
    by_priority: dict[str, SlaFigure]


class ResolutionFigure(BaseModel):
    tickets: int
    median_business_hours: float | None
    p90_business_hours: float | None
    unstopped_breaches: int


class AvailabilityFigure(BaseModel):
    availability_percent: float | None
    objective_percent: float
    meets_objective: bool | None
    agreed_seconds: int
    downtime_seconds: float
    error_budget_seconds: float
    budget_remaining_seconds: float
    budget_remaining_percent: float
    outages: int
    mtrs_seconds: float | None
    mtbf_seconds: float | None
    correction: bool


class Provider(BaseModel):
    tickets_opened: int
    tickets_resolved: int
    backlog: int
    sla_target_percent: float
    sla_compliance_percent: float | None
    breaches: int
    sla: dict[str, MetricFigure]
    resolution_time: ResolutionFigure
    availability: AvailabilityFigure | None


class CsatFigure(BaseModel):
    responses: int
    satisfied: int
    neutral: int
    dissatisfied: int
    sufficient: bool
    csat_percent: float | None
    interval: Interval | None
    target_percent: float


class NpsFigure(BaseModel):
    responses: int
    promoters: int
    passives: int
    detractors: int
    sufficient: bool
    nps: float | None
    interval: Interval | None
    target: float


class Followups(BaseModel):
    opened: int
    open: int
    overdue: int


class Customer(BaseModel):
    csat: CsatFigure
    nps: NpsFigure
    invitations_sent: int
    response_rate_percent: float | None
    followups: Followups


class Scorecard(BaseModel):
    """One business service's month, both sides, the experience score and the watermelon flag."""

    business_service: str
    period: str
    period_start: datetime
    period_end: datetime
    provider: Provider
    customer: Customer
    experience: Experience
    watermelon: Watermelon
    watermelon_tickets: int


class BreakdownRow(BaseModel):
    """One assignment group or priority of a service's month; figures withheld below the minimum count."""

    key: str
    tickets_resolved: int
    sla: dict[str, SlaFigure]
    csat: CsatFigure


class Breakdown(BaseModel):
    business_service: str
    period: str
    by: str
    min_count: int
    rows: list[BreakdownRow]


class TrendPoint(BaseModel):
    """One month of a trend, and its change from the month before."""

    period: str
    sla_met: int
    sla_breached: int
    sla_compliance_percent: float | None
    sla_change: Change
    availability_percent: float | None
    availability_objective_percent: float | None
    availability_change: Change
    csat_responses: int
    csat_percent: float | None
    csat_change: Change
    nps_responses: int
    nps: float | None
    nps_change: Change
    experience_score: float | None
    watermelon: bool


class Trend(BaseModel):
    business_service: str
    months: int
    points: list[TrendPoint]


# --- computation --------------------------------------------------------------------------------------


def scorecard(*, service: str, period: Period, counts: MonthCounts, rules: ScorecardRules) -> Scorecard:
    """The scorecard of one service and month from its counts."""
    provider = provider_figures(counts, rules=rules)
    customer = customer_figures(counts, rules=rules)
    compliance = {metric: figure.compliance_percent for metric, figure in provider.sla.items()}
    availability = provider.availability
    return Scorecard(
        business_service=service,
        period=str(period),
        period_start=period.start,
        period_end=period.end,
        provider=provider,
        customer=customer,
        experience=experience(
            {
                "sla_compliance": provider.sla_compliance_percent,
                "availability": _availability_value(counts.availability),
                "csat": customer.csat.csat_percent,
                "nps": nps_component(customer.nps.nps) if customer.nps.nps is not None else None,
            },
            rules=rules.experience,
        ),
        watermelon=assess(
            ProviderSide(
                compliance_by_metric=compliance,
                availability_percent=availability.availability_percent if availability else None,
                availability_objective_percent=availability.objective_percent if availability else None,
            ),
            CustomerSide(
                csat_upper=customer.csat.interval.upper if customer.csat.interval else None,
                nps_upper=customer.nps.interval.upper if customer.nps.interval else None,
            ),
            rules=rules.watermelon,
        ),
        watermelon_tickets=counts.watermelon_tickets,
    )


def ranked(scorecards: Sequence[Scorecard]) -> list[Scorecard]:
    """Best experience first; services without a score last, then by name."""
    return sorted(
        scorecards,
        key=lambda s: (s.experience.score is None, -(s.experience.score or 0.0), s.business_service),
    )


def provider_figures(counts: MonthCounts, *, rules: ScorecardRules) -> Provider:
    """The provider side: tickets, SLA compliance per metric and priority, resolution time, availability."""
    metrics = sorted({metric for metric, _ in counts.sla} | set(METRICS))
    sla = {
        metric: metric_figure(counts.sla, metric=metric, min_count=rules.breakdown_min_count)
        for metric in metrics
    }
    pooled = sum((count for count in counts.sla.values()), SlaCount())
    return Provider(
        tickets_opened=counts.tickets_opened,
        tickets_resolved=counts.tickets_resolved,
        backlog=counts.backlog,
        sla_target_percent=rules.watermelon.sla_target_percent,
        sla_compliance_percent=compliance(pooled),
        breaches=pooled.breached,
        sla=sla,
        resolution_time=ResolutionFigure(
            tickets=counts.resolution.tickets,
            median_business_hours=_hours(counts.resolution.median_seconds),
            p90_business_hours=_hours(counts.resolution.p90_seconds),
            unstopped_breaches=counts.resolution.unstopped_breaches,
        ),
        availability=availability_figure(counts.availability),
    )


def metric_figure(
    sla: Mapping[tuple[str, str | None], SlaCount], *, metric: str, min_count: int
) -> MetricFigure:
    """One metric's compliance overall (never withheld: it counts every timer) and per priority (gated)."""
    of_metric = {priority: count for (m, priority), count in sla.items() if m == metric}
    total = sum(of_metric.values(), SlaCount())
    by_priority = {
        priority or "none": sla_figure(count, min_count=min_count)
        for priority, count in sorted(of_metric.items(), key=lambda i: i[0] or "~")
    }
    return MetricFigure(
        met=total.met,
        breached=total.breached,
        sufficient=total.met + total.breached > 0,
        compliance_percent=compliance(total),
        by_priority=by_priority,
    )


def sla_figure(count: SlaCount, *, min_count: int) -> SlaFigure:
    """Compliance of a group, withheld below `min_count` outcomes."""
    sufficient = count.met + count.breached >= max(min_count, 1)
    return SlaFigure(
        met=count.met,
        breached=count.breached,
        sufficient=sufficient,
        compliance_percent=compliance(count) if sufficient else None,
    )


def compliance(count: SlaCount) -> float | None:
    """met / (met + breached) in percent; None without outcomes."""
    outcomes = count.met + count.breached
    return 100 * count.met / outcomes if outcomes else None


def availability_figure(count: AvailabilityCount | None) -> AvailabilityFigure | None:
    """The month's availability against its objective, as the SLA service computed it."""
    if count is None:
        return None
    percent = count.availability_percent
    return AvailabilityFigure(
        availability_percent=percent,
        objective_percent=count.objective_percent,
        meets_objective=percent >= count.objective_percent if percent is not None else None,
        agreed_seconds=count.agreed_seconds,
        downtime_seconds=count.downtime_seconds,
        error_budget_seconds=count.error_budget_seconds,
        budget_remaining_seconds=count.budget_remaining_seconds,
        budget_remaining_percent=availability_component(
            error_budget_seconds=count.error_budget_seconds,
            budget_remaining_seconds=count.budget_remaining_seconds,
        ),
        outages=count.outages,
        mtrs_seconds=count.mtrs_seconds,
        mtbf_seconds=count.mtbf_seconds,
        correction=count.correction,
    )


def customer_figures(counts: MonthCounts, *, rules: ScorecardRules) -> Customer:
    """The customer side: CSAT and NPS with their intervals, response rate, follow-ups."""
    return Customer(
        csat=csat_figure(
            counts.csat, min_count=rules.min_responses, target=rules.watermelon.csat_target_percent
        ),
        nps=nps_out(counts.nps, min_count=rules.min_responses, target=rules.watermelon.nps_target),
        invitations_sent=counts.csat_invitations_sent,
        response_rate_percent=response_rate(
            responses=counts.csat.responses, invitations=counts.csat_invitations_sent
        ),
        followups=Followups(
            opened=counts.followups.opened, open=counts.followups.open, overdue=counts.followups.overdue
        ),
    )


def csat_figure(count: CsatCount, *, min_count: int, target: float) -> CsatFigure:
    """Satisfied share with its Wilson interval, withheld below `min_count` answers."""
    n = count.responses
    sufficient = n >= max(min_count, 1)
    interval = wilson_interval(successes=count.satisfied, trials=n) if sufficient else None
    return CsatFigure(
        responses=n,
        satisfied=count.satisfied,
        neutral=count.neutral,
        dissatisfied=count.dissatisfied,
        sufficient=sufficient,
        csat_percent=100 * count.satisfied / n if sufficient else None,
        interval=Interval(lower=interval.lower, upper=interval.upper) if interval else None,
        target_percent=target,
    )


def nps_out(tally: NpsTally, *, min_count: int, target: float) -> NpsFigure:
    """The NPS with its adjusted-Wald interval, withheld below `min_count` answers."""
    figure = nps_figure(tally, min_responses=max(min_count, 1))
    return NpsFigure(
        responses=tally.responses,
        promoters=tally.promoters,
        passives=tally.passives,
        detractors=tally.detractors,
        sufficient=figure.sufficient,
        nps=figure.nps,
        interval=Interval(lower=figure.interval.lower, upper=figure.interval.upper)
        if figure.interval
        else None,
        target=target,
    )


def breakdown(
    *, service: str, period: Period, by: str, groups: Mapping[str, GroupCounts], rules: ScorecardRules
) -> Breakdown:
    """A service's month per assignment group or priority, largest groups first, small ones withheld."""
    min_count = rules.breakdown_min_count
    rows = [
        BreakdownRow(
            key=key,
            tickets_resolved=group.tickets_resolved,
            sla={
                metric: sla_figure(group.sla.get(metric, SlaCount()), min_count=min_count)
                for metric in sorted(set(group.sla) | set(METRICS))
            },
            csat=csat_figure(group.csat, min_count=min_count, target=rules.watermelon.csat_target_percent),
        )
        for key, group in groups.items()
    ]
    rows.sort(key=lambda row: (-row.tickets_resolved, -row.csat.responses, row.key))
    return Breakdown(business_service=service, period=str(period), by=by, min_count=min_count, rows=rows)


def trend(
    *, service: str, periods: Sequence[Period], counts: Mapping[Period, MonthCounts], rules: ScorecardRules
) -> Trend:
    """The months of `periods` after the first, each with its change from the month before it."""
    points = []
    for previous, period in pairwise(periods):
        before, after = counts.get(previous, MonthCounts()), counts.get(period, MonthCounts())
        card = scorecard(service=service, period=period, counts=after, rules=rules)
        earlier = scorecard(service=service, period=previous, counts=before, rules=rules)
        sla_before = sum(before.sla.values(), SlaCount())
        sla_after = sum(after.sla.values(), SlaCount())
        availability = card.provider.availability
        earlier_availability = earlier.provider.availability
        points.append(
            TrendPoint(
                period=str(period),
                sla_met=sla_after.met,
                sla_breached=sla_after.breached,
                sla_compliance_percent=card.provider.sla_compliance_percent,
                sla_change=proportion_change(
                    before=(sla_before.met, sla_before.met + sla_before.breached),
                    after=(sla_after.met, sla_after.met + sla_after.breached),
                    min_count=rules.breakdown_min_count,
                ),
                availability_percent=availability.availability_percent if availability else None,
                availability_objective_percent=availability.objective_percent if availability else None,
                availability_change=measured_change(
                    before=earlier_availability.availability_percent if earlier_availability else None,
                    after=availability.availability_percent if availability else None,
                ),
                csat_responses=after.csat.responses,
                csat_percent=card.customer.csat.csat_percent,
                csat_change=proportion_change(
                    before=(before.csat.satisfied, before.csat.responses),
                    after=(after.csat.satisfied, after.csat.responses),
                    min_count=rules.min_responses,
                ),
                nps_responses=after.nps.responses,
                nps=card.customer.nps.nps,
                nps_change=nps_change(before=before.nps, after=after.nps, min_count=rules.min_responses),
                experience_score=card.experience.score,
                watermelon=card.watermelon.flagged,
            )
        )
    return Trend(business_service=service, months=len(points), points=points)


def _availability_value(count: AvailabilityCount | None) -> float | None:
    if count is None:
        return None
    return availability_component(
        error_budget_seconds=count.error_budget_seconds,
        budget_remaining_seconds=count.budget_remaining_seconds,
    )


def _hours(seconds: float | None) -> float | None:
    return seconds / 3600 if seconds is not None else None
