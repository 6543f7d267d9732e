"""The reports: counts read from the read models, turned into figures by the pure modules."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel

from bothways.db import Connection
from bothways.errors import NotFound
from services.reporting import store
from services.reporting.periods import Period
from services.reporting.scorecard import (
    AvailabilityCount,
    Breakdown,
    CsatCount,
    FollowupCount,
    GroupCounts,
    MonthCounts,
    ResolutionCount,
    Scorecard,
    ScorecardRules,
    SlaCount,
    Trend,
    breakdown,
    ranked,
    scorecard,
    trend,
)
from services.survey.scoring import NpsTally

BREAKDOWNS = tuple(store.GROUP_COLUMNS)


class UnknownService(NotFound):
    """No event ever named the business service."""


class ServiceScorecard(Scorecard):
    """A service's scorecard with its breakdowns by assignment group and by priority."""

    breakdowns: dict[str, Breakdown]


class ScorecardList(BaseModel):
    period: str
    scorecards: list[Scorecard]


class WatermelonTicket(BaseModel):
    """A ticket whose SLAs were all met and whose customer was dissatisfied."""

    ticket_key: str
    business_service: str
    service_flagged: bool
    assignment_group: str | None
    priority: str | None
    answered_at: datetime
    score: int
    scale: str
    reason: str | None
    comment: str | None
    met_timers: int


class WatermelonService(BaseModel):
    business_service: str
    sla_compliance_percent: float | None
    availability_percent: float | None
    csat_percent: float | None
    csat_upper: float | None
    nps: float | None
    nps_upper: float | None
    reasons: list[str]


class WatermelonReport(BaseModel):
    """The flagged services of a month and the drill-down: met SLAs, dissatisfied answers."""

    period: str
    services: list[WatermelonService]
    tickets: list[WatermelonTicket]


@asynccontextmanager
async def snapshot(conn: Connection) -> AsyncIterator[Connection]:
    """A read-only, repeatable-read transaction: every count of one report sees the same events."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        # JIT compilation costs these sub-second aggregates more than it saves (197 against 96 ms for a
        # 12-month count of 40 services over 1,000,000 events).
        await conn.execute("SET LOCAL jit = off")
        yield conn


@dataclass
class _Month:
    """Counts being gathered for one service and month."""

    tickets_opened: int = 0
    tickets_resolved: int = 0
    backlog: int = 0
    sla: dict[tuple[str, str | None], SlaCount] = field(default_factory=dict)
    resolution: ResolutionCount = field(default_factory=ResolutionCount)
    availability: AvailabilityCount | None = None
    csat: dict[str, int] = field(default_factory=dict)
    nps: dict[str, int] = field(default_factory=dict)
    csat_invitations_sent: int = 0
    followups: FollowupCount = field(default_factory=FollowupCount)
    watermelon_tickets: int = 0

    def frozen(self) -> MonthCounts:
        return MonthCounts(
            tickets_opened=self.tickets_opened,
            tickets_resolved=self.tickets_resolved,
            backlog=self.backlog,
            sla=dict(self.sla),
            resolution=self.resolution,
            availability=self.availability,
            csat=CsatCount(
                satisfied=self.csat.get("satisfied", 0),
                neutral=self.csat.get("neutral", 0),
                dissatisfied=self.csat.get("dissatisfied", 0),
            ),
            nps=NpsTally(
                promoters=self.nps.get("promoter", 0),
                passives=self.nps.get("passive", 0),
                detractors=self.nps.get("detractor", 0),
            ),
            csat_invitations_sent=self.csat_invitations_sent,
            followups=self.followups,
            watermelon_tickets=self.watermelon_tickets,
        )


async def month_counts(
    conn: Connection, *, periods: Sequence[Period], services: Sequence[str], now: datetime, full: bool = True
) -> dict[tuple[str, Period], MonthCounts]:
    """What the scorecards count, per service and month, over consecutive months.

    Without `full`, only what the experience score, the watermelon flag and the trends read (SLA
    outcomes, availability, answers): a 12-month trend of every service then skips the costly rest."""
    by_name = {str(p): p for p in periods}
    months: dict[tuple[str, str], _Month] = defaultdict(_Month)
    span = store.Span(start=periods[0].start, end=periods[-1].end, services=services)
    await _count_both_sides(conn, months, span=span, periods=list(by_name))
    if full:
        await _count_details(conn, months, span=span, periods=periods, now=now)
    return {
        (service, by_name[period]): month.frozen()
        for (service, period), month in months.items()
        if period in by_name
    }


async def _count_both_sides(
    conn: Connection, months: dict[tuple[str, str], _Month], *, span: store.Span, periods: list[str]
) -> None:
    for row in await store.sla_outcomes(conn, span=span):
        count = SlaCount(met=row["met"], breached=row["breached"])
        months[row["business_service"], row["period"]].sla[row["metric"], row["priority"]] = count
    for row in await store.availability(conn, periods=periods, services=span.services):
        months[row["business_service"], row["period"]].availability = AvailabilityCount(
            objective_percent=row["objective_percent"],
            agreed_seconds=row["agreed_seconds"],
            downtime_seconds=row["downtime_seconds"],
            availability_percent=row["availability_percent"],
            error_budget_seconds=row["error_budget_seconds"],
            budget_remaining_seconds=row["budget_remaining_seconds"],
            outages=row["outages"],
            mtrs_seconds=row["mtrs_seconds"],
            mtbf_seconds=row["mtbf_seconds"],
            correction=row["correction"],
        )
    for row in await store.answers(conn, span=span):
        month = months[row["business_service"], row["period"]]
        (month.csat if row["survey_kind"] == "csat" else month.nps)[row["band"]] = row["n"]


async def _count_details(
    conn: Connection,
    months: dict[tuple[str, str], _Month],
    *,
    span: store.Span,
    periods: Sequence[Period],
    now: datetime,
) -> None:
    for row in await store.tickets_opened(conn, span=span):
        months[row["business_service"], row["period"]].tickets_opened = row["n"]
    for row in await store.tickets_resolved(conn, span=span):
        months[row["business_service"], row["period"]].tickets_resolved = row["n"]
    until = [(str(p), min(p.end, now)) for p in periods]
    for row in await store.backlog(conn, until=until, services=span.services):
        months[row["business_service"], row["period"]].backlog = row["n"]
    for row in await store.resolution_times(conn, span=span):
        months[row["business_service"], row["period"]].resolution = ResolutionCount(
            tickets=row["tickets"],
            median_seconds=row["median_seconds"],
            p90_seconds=row["p90_seconds"],
            unstopped_breaches=row["unstopped_breaches"],
        )
    for row in await store.invitations_sent(conn, span=span):
        months[row["business_service"], row["period"]].csat_invitations_sent = row["n"]
    for row in await store.followups(conn, span=span, now=now):
        months[row["business_service"], row["period"]].followups = FollowupCount(
            opened=row["opened"], open=row["open"], overdue=row["overdue"]
        )
    for row in await store.watermelon_ticket_counts(conn, span=span):
        months[row["business_service"], row["period"]].watermelon_tickets = row["n"]


async def known_service(conn: Connection, *, service: str) -> str:
    """The service's name if any event named it, else UnknownService."""
    if not await store.service_known(conn, name=service):
        raise UnknownService(f"unknown business service {service!r}: no event has named it", field="service")
    return service


async def scorecards(
    conn: Connection, *, period: Period, rules: ScorecardRules, now: datetime
) -> ScorecardList:
    """Every business service's scorecard of the month, best experience first."""
    services = await store.business_services(conn)
    counts = await month_counts(conn, periods=[period], services=services, now=now)
    cards = [
        scorecard(
            service=service, period=period, counts=counts.get((service, period), MonthCounts()), rules=rules
        )
        for service in services
    ]
    return ScorecardList(period=str(period), scorecards=ranked(cards))


async def service_scorecard(
    conn: Connection, *, service: str, period: Period, rules: ScorecardRules, now: datetime
) -> ServiceScorecard:
    """One service's scorecard of the month, with its breakdowns."""
    await known_service(conn, service=service)
    counts = await month_counts(conn, periods=[period], services=[service], now=now)
    card = scorecard(
        service=service, period=period, counts=counts.get((service, period), MonthCounts()), rules=rules
    )
    breakdowns = {
        by: await service_breakdown(conn, service=service, period=period, by=by, rules=rules)
        for by in BREAKDOWNS
    }
    return ServiceScorecard(**card.model_dump(), breakdowns=breakdowns)


async def service_breakdown(
    conn: Connection, *, service: str, period: Period, by: str, rules: ScorecardRules
) -> Breakdown:
    """A service's month per assignment group or per priority."""
    await known_service(conn, service=service)
    span = store.GroupSpan(by=by, start=period.start, end=period.end, service=service)
    resolved: dict[str, int] = {}
    sla: dict[str, dict[str, SlaCount]] = defaultdict(dict)
    csat: dict[str, dict[str, int]] = defaultdict(dict)
    for row in await store.group_resolved(conn, span=span):
        resolved[row["key"]] = row["n"]
    for row in await store.group_sla(conn, span=span):
        sla[row["key"]][row["metric"]] = SlaCount(met=row["met"], breached=row["breached"])
    for row in await store.group_csat(conn, span=span):
        csat[row["key"]][row["band"]] = row["n"]
    groups = {
        key: GroupCounts(
            tickets_resolved=resolved.get(key, 0),
            sla=sla.get(key, {}),
            csat=CsatCount(
                satisfied=csat.get(key, {}).get("satisfied", 0),
                neutral=csat.get(key, {}).get("neutral", 0),
                dissatisfied=csat.get(key, {}).get("dissatisfied", 0),
            ),
        )
        for key in sorted(set(resolved) | set(sla) | set(csat))
    }
    return breakdown(service=service, period=period, by=by, groups=groups, rules=rules)


async def service_trend(
    conn: Connection, *, service: str, period: Period, months: int, rules: ScorecardRules, now: datetime
) -> Trend:
    """A service's last `months` months up to `period`, each with its change from the month before."""
    await known_service(conn, service=service)
    return (await trends(conn, services=[service], period=period, months=months, rules=rules, now=now))[
        service
    ]


async def trends(
    conn: Connection,
    *,
    services: Sequence[str],
    period: Period,
    months: int,
    rules: ScorecardRules,
    now: datetime,
) -> dict[str, Trend]:
    """The trends of several services, read in one pass."""
    periods = period.back(months + 1)  # one month more: the first month's change needs the one before
    counts = await month_counts(conn, periods=periods, services=services, now=now, full=False)
    return {
        service: trend(
            service=service,
            periods=periods,
            counts={p: counts[service, p] for p in periods if (service, p) in counts},
            rules=rules,
        )
        for service in services
    }


async def watermelons(
    conn: Connection, *, period: Period, rules: ScorecardRules, now: datetime, service: str | None = None
) -> WatermelonReport:
    """The month's flagged services, and every ticket with met SLAs and a dissatisfied answer."""
    if service is not None:
        await known_service(conn, service=service)
    cards = (await scorecards(conn, period=period, rules=rules, now=now)).scorecards
    if service is not None:
        cards = [c for c in cards if c.business_service == service]
    return await watermelon_report(conn, period=period, cards=cards)


async def watermelon_report(
    conn: Connection, *, period: Period, cards: Sequence[Scorecard]
) -> WatermelonReport:
    """The flagged services among the scorecards, and the drill-down tickets of all of them."""
    flagged = {c.business_service: c for c in cards if c.watermelon.flagged}
    span = store.Span(start=period.start, end=period.end, services=[c.business_service for c in cards])
    rows = await store.watermelon_tickets(conn, span=span)
    return WatermelonReport(
        period=str(period),
        services=[watermelon_service(card) for card in flagged.values()],
        tickets=[
            WatermelonTicket(**dict(row), service_flagged=row["business_service"] in flagged) for row in rows
        ],
    )


def watermelon_service(card: Scorecard) -> WatermelonService:
    """A flagged service's figures on both sides, and the reasons."""
    availability, csat, nps = card.provider.availability, card.customer.csat, card.customer.nps
    return WatermelonService(
        business_service=card.business_service,
        sla_compliance_percent=card.provider.sla_compliance_percent,
        availability_percent=availability.availability_percent if availability else None,
        csat_percent=csat.csat_percent,
        csat_upper=csat.interval.upper if csat.interval else None,
        nps=nps.nps,
        nps_upper=nps.interval.upper if nps.interval else None,
        reasons=card.watermelon.reasons,
    )


class OpenFollowup(BaseModel):
    followup_id: str
    ticket_key: str | None
    business_service: str | None
    assignment_group: str | None
    opened_at: datetime | None
    due_at: datetime
    overdue: bool


class TimerAtRisk(BaseModel):
    ticket_key: str
    metric: str
    priority: str | None
    business_service: str | None
    assignment_group: str | None
    due_at: datetime
    percent_elapsed: float
    remaining_business_seconds: int


class Dashboard(BaseModel):
    """Everything the dashboard page shows for a month."""

    period: str
    scorecards: list[Scorecard]
    trends: dict[str, Trend]
    watermelons: WatermelonReport
    open_followups: list[OpenFollowup]
    timers_at_risk: list[TimerAtRisk]


async def dashboard(
    conn: Connection,
    *,
    period: Period,
    rules: ScorecardRules,
    now: datetime,
    months: int = 12,
    limit: int = 50,
) -> Dashboard:
    """The month's scorecards, each service's last months, watermelons, follow-ups and timers at risk."""
    listed = await scorecards(conn, period=period, rules=rules, now=now)
    services = [card.business_service for card in listed.scorecards]
    return Dashboard(
        period=str(period),
        scorecards=listed.scorecards,
        trends=await trends(conn, services=services, period=period, months=months, rules=rules, now=now),
        watermelons=await watermelon_report(conn, period=period, cards=listed.scorecards),
        open_followups=[
            OpenFollowup(**dict(r)) for r in await store.open_followups(conn, now=now, limit=limit)
        ],
        timers_at_risk=[TimerAtRisk(**dict(r)) for r in await store.timers_at_risk(conn, limit=limit)],
    )
