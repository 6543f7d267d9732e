"""The reporting service's business gauges, read from PostgreSQL at scrape time.

The scorecard figures are those of the current UTC month, one series per business service (and per
SLA metric where it applies): low-cardinality labels only, never a period, ticket or person. A custom
collector yields what the last refresh read, so a service or metric that has no figure any more
disappears from the scrape instead of keeping a stale value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import REGISTRY, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bothways.db import Pool
from bothways.scheduler import Clock, utc_now
from services.reporting import reports, store
from services.reporting.periods import Period
from services.reporting.scorecard import Scorecard, ScorecardRules
from services.reporting.tickets import ticket_counts

TICKETS = Gauge("bothways_tickets", "Tickets by their current status category.", ["status_category"])

SERVICE = ["business_service"]
SERVICE_METRIC = ["business_service", "metric"]
# name, help, labels: the families the scorecard collector yields, in this order.
FAMILIES: dict[str, tuple[str, list[str]]] = {
    "bothways_scorecard_tickets_opened": ("Tickets opened this month.", SERVICE),
    "bothways_scorecard_tickets_resolved": ("Tickets resolved this month.", SERVICE),
    "bothways_scorecard_backlog_tickets": ("Tickets open now.", SERVICE),
    "bothways_scorecard_sla_compliance_ratio": (
        "SLA outcomes met / (met + breached) this month, per metric.",
        SERVICE_METRIC,
    ),
    "bothways_scorecard_sla_breaches": ("SLA breaches decided this month, per metric.", SERVICE_METRIC),
    "bothways_scorecard_resolution_p50_business_seconds": (
        "Median business time to resolve the tickets resolved this month.",
        SERVICE,
    ),
    "bothways_scorecard_resolution_p90_business_seconds": (
        "90th percentile business time to resolve the tickets resolved this month.",
        SERVICE,
    ),
    "bothways_scorecard_availability_ratio": ("Availability this month.", SERVICE),
    "bothways_scorecard_availability_objective_ratio": ("Availability objective this month.", SERVICE),
    "bothways_scorecard_error_budget_seconds": ("Downtime the objective allows this month.", SERVICE),
    "bothways_scorecard_error_budget_remaining_seconds": (
        "Error budget left this month (negative when overspent).",
        SERVICE,
    ),
    "bothways_scorecard_mtrs_seconds": ("Mean time to restore service this month.", SERVICE),
    "bothways_scorecard_csat_responses": ("CSAT answers this month.", SERVICE),
    "bothways_scorecard_csat_ratio": ("Satisfied CSAT answers / all CSAT answers this month.", SERVICE),
    "bothways_scorecard_csat_lower_ratio": ("Lower bound of the 95% Wilson interval of CSAT.", SERVICE),
    "bothways_scorecard_csat_upper_ratio": ("Upper bound of the 95% Wilson interval of CSAT.", SERVICE),
    "bothways_scorecard_csat_target_ratio": ("The CSAT target of the watermelon flag.", SERVICE),
    "bothways_scorecard_nps_responses": ("NPS answers this month.", SERVICE),
    "bothways_scorecard_nps": ("Net promoter score this month (-100..100).", SERVICE),
    "bothways_scorecard_nps_upper": ("Upper bound of the 95% adjusted-Wald interval of the NPS.", SERVICE),
    "bothways_scorecard_response_ratio": ("CSAT answers / CSAT invitations sent this month.", SERVICE),
    "bothways_scorecard_followups_open": ("Follow-ups of this month's answers still open.", SERVICE),
    "bothways_scorecard_followups_overdue": ("Follow-ups of this month's answers open past due.", SERVICE),
    "bothways_scorecard_experience_score": ("Experience score this month (0..100).", SERVICE),
    "bothways_scorecard_watermelon": (
        "1 when SLAs and availability are on target while customers are unhappy.",
        SERVICE,
    ),
    "bothways_scorecard_watermelon_tickets": (
        "Tickets this month with every SLA met and a dissatisfied answer.",
        SERVICE,
    ),
}


class ScorecardCollector(Collector):
    """Yields the scorecard figures the last refresh read from PostgreSQL."""

    def __init__(self) -> None:
        self.rules = ScorecardRules()
        self.clock: Clock = utc_now
        self._families: list[GaugeMetricFamily] = []

    def configure(self, *, rules: ScorecardRules, clock: Clock = utc_now) -> None:
        """Use the service's rules (set once, by the lifespan)."""
        self.rules = rules
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(name, help_text, labels=labels)
            for name, (help_text, labels) in FAMILIES.items()
        ]

    def update(self, cards: Iterable[Scorecard]) -> None:
        """Replace the figures yielded at the next collection."""
        families = {
            name: GaugeMetricFamily(name, text, labels=labels) for name, (text, labels) in FAMILIES.items()
        }
        for card in cards:
            for name, labels, value in scorecard_samples(card):
                if value is not None:
                    families[name].add_metric(labels, float(value))
        self._families = list(families.values())


SCORECARDS = ScorecardCollector()
REGISTRY.register(SCORECARDS)


def scorecard_samples(card: Scorecard) -> Iterator[tuple[str, list[str], float | int | bool | None]]:
    """(family, label values, value) of one scorecard; ratios from percentages."""
    service = [card.business_service]
    provider, customer = card.provider, card.customer
    availability, csat, nps = provider.availability, customer.csat, customer.nps
    yield "bothways_scorecard_tickets_opened", service, provider.tickets_opened
    yield "bothways_scorecard_tickets_resolved", service, provider.tickets_resolved
    yield "bothways_scorecard_backlog_tickets", service, provider.backlog
    for metric, figure in provider.sla.items():
        yield "bothways_scorecard_sla_compliance_ratio", [*service, metric], _ratio(figure.compliance_percent)
        yield "bothways_scorecard_sla_breaches", [*service, metric], figure.breached
    yield (
        "bothways_scorecard_resolution_p50_business_seconds",
        service,
        _seconds(provider.resolution_time.median_business_hours),
    )
    yield (
        "bothways_scorecard_resolution_p90_business_seconds",
        service,
        _seconds(provider.resolution_time.p90_business_hours),
    )
    if availability is not None:
        yield "bothways_scorecard_availability_ratio", service, _ratio(availability.availability_percent)
        yield (
            "bothways_scorecard_availability_objective_ratio",
            service,
            _ratio(availability.objective_percent),
        )
        yield "bothways_scorecard_error_budget_seconds", service, availability.error_budget_seconds
        yield (
            "bothways_scorecard_error_budget_remaining_seconds",
            service,
            availability.budget_remaining_seconds,
        )
        yield "bothways_scorecard_mtrs_seconds", service, availability.mtrs_seconds
    yield "bothways_scorecard_csat_responses", service, csat.responses
    yield "bothways_scorecard_csat_ratio", service, _ratio(csat.csat_percent)
    yield (
        "bothways_scorecard_csat_lower_ratio",
        service,
        _ratio(csat.interval.lower if csat.interval else None),
    )
    yield (
        "bothways_scorecard_csat_upper_ratio",
        service,
        _ratio(csat.interval.upper if csat.interval else None),
    )
    yield "bothways_scorecard_csat_target_ratio", service, _ratio(csat.target_percent)
    yield "bothways_scorecard_nps_responses", service, nps.responses
    yield "bothways_scorecard_nps", service, nps.nps
    yield "bothways_scorecard_nps_upper", service, nps.interval.upper if nps.interval else None
    yield "bothways_scorecard_response_ratio", service, _ratio(customer.response_rate_percent)
    yield "bothways_scorecard_followups_open", service, customer.followups.open
    yield "bothways_scorecard_followups_overdue", service, customer.followups.overdue
    yield "bothways_scorecard_experience_score", service, card.experience.score
    yield "bothways_scorecard_watermelon", service, card.watermelon.flagged
    yield "bothways_scorecard_watermelon_tickets", service, card.watermelon_tickets


async def refresh_ticket_counts(pool: Pool) -> None:
    async with pool.acquire() as conn:
        counts = ticket_counts(await store.tickets_by_status_category(conn))
    for category, tickets in counts.by_status_category.items():
        TICKETS.labels(category.value).set(tickets)


async def refresh_scorecards(pool: Pool) -> None:
    """Read the current month's scorecards for the collector."""
    now = SCORECARDS.clock()
    async with pool.acquire() as conn, reports.snapshot(conn):
        listed = await reports.scorecards(conn, period=Period.of(now), rules=SCORECARDS.rules, now=now)
    SCORECARDS.update(listed.scorecards)


def _ratio(percent: float | None) -> float | None:
    return percent / 100 if percent is not None else None


def _seconds(hours: float | None) -> float | None:
    return hours * 3600 if hours is not None else None
