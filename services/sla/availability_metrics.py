"""Prometheus metrics of business services: figures read from PostgreSQL at scrape time, restore durations.

The two counters are what burn-rate rules take a rate of (Sloth, Pyrra and
deploy/prometheus/rules/availability.yml): agreed service seconds and weighted downtime seconds, both
counted from the first month the service was in the catalogue. They are computed from the stored
figures, so every replica exposes the same values; a correction that lowers a total (a withdrawn outage)
is held at the highest value exposed, because a falling counter reads as a reset and a false burn.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

SERVICE = "business_service"
RESTORE_DURATION = Histogram(
    "bothways_business_service_restore_duration_seconds",
    "Wall-clock seconds from failure to restoration of merged business service outages, observed on closing.",
    [SERVICE],
    buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200),
)


def record_restored(service_id: str, seconds: float) -> None:
    RESTORE_DURATION.labels(service_id).observe(max(0.0, seconds))


@dataclass(frozen=True)
class ServiceGauges:
    """One service's figures at scrape time."""

    service_id: str
    up: bool
    objective: float
    # Period ("month", "7d", "30d", "90d") -> availability ratio; None without agreed service time.
    ratios: dict[str, float | None]
    budget_remaining_seconds: float
    agreed_seconds_total: float
    weighted_downtime_seconds_total: float


# eq=False: the registry keys collectors by identity.
@dataclass(eq=False)
class AvailabilityCollector(Collector):
    """Serves the figures of the last refresh; counters never go down (see the module docstring)."""

    services: Sequence[ServiceGauges] = ()
    anomalies: dict[str, int] = field(default_factory=dict)
    _highest: dict[tuple[str, str], float] = field(default_factory=dict)

    def update(self, services: Iterable[ServiceGauges], *, anomalies: dict[str, int]) -> None:
        """Replace the figures served."""
        self.services = tuple(services)
        self.anomalies = dict(anomalies)

    def _monotone(self, service_id: str, name: str, value: float) -> float:
        key = (service_id, name)
        self._highest[key] = max(self._highest.get(key, 0.0), value)
        return self._highest[key]

    def collect(self) -> Iterator[Metric]:
        agreed = CounterMetricFamily(
            "bothways_business_service_agreed_service_seconds",
            "Agreed service seconds elapsed (maintenance windows excluded): the total of the availability ratio.",
            labels=[SERVICE],
        )
        weighted = CounterMetricFamily(
            "bothways_business_service_weighted_downtime_seconds",
            "Downtime seconds within agreed service time, weighted by impact: the bad part of the ratio.",
            labels=[SERVICE],
        )
        up = GaugeMetricFamily(
            "bothways_business_service_up", "1 unless an outage that counts is open.", labels=[SERVICE]
        )
        ratio = GaugeMetricFamily(
            "bothways_business_service_availability_ratio",
            "Availability (agreed time minus weighted downtime, over agreed time) of the current calendar month "
            "(service time zone) or the rolling 7, 30 and 90 days.",
            labels=[SERVICE, "period"],
        )
        budget = GaugeMetricFamily(
            "bothways_business_service_error_budget_remaining_seconds",
            "Downtime the objective still allows in the current calendar month; negative once overspent.",
            labels=[SERVICE, "period"],
        )
        objective = GaugeMetricFamily(
            "bothways_business_service_objective_ratio",
            "The availability objective (0.999 for 99.9 %).",
            labels=[SERVICE],
        )
        for service in self.services:
            sid = service.service_id
            agreed.add_metric([sid], self._monotone(sid, "agreed", service.agreed_seconds_total))
            weighted.add_metric(
                [sid], self._monotone(sid, "weighted", service.weighted_downtime_seconds_total)
            )
            up.add_metric([sid], 1.0 if service.up else 0.0)
            for period, value in service.ratios.items():
                if value is not None:
                    ratio.add_metric([sid, period], value)
            budget.add_metric([sid, "month"], service.budget_remaining_seconds)
            objective.add_metric([sid], service.objective)
        anomalies = GaugeMetricFamily(
            "bothways_availability_anomalies",
            "Outage input kept but not counted as sent (unmapped service, end before start ...), by kind.",
            labels=["kind"],
        )
        for kind, count in sorted(self.anomalies.items()):
            anomalies.add_metric([kind], float(count))
        yield from (agreed, weighted, up, ratio, budget, objective, anomalies)


COLLECTOR = AvailabilityCollector()
REGISTRY.register(COLLECTOR)
