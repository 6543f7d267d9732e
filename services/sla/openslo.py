"""A business service's availability objective as OpenSLO v1 documents (a Service and its SLO).

Pure. The indicator is the ratio of the two counters the sla service exports, so a tool reading the
document (Sloth, Pyrra, an OpenSLO converter) computes the same error ratio as the recording rules in
deploy/prometheus/rules/availability.yml; the alert policy carries the SRE workbook burn-rate pairs.
"""

from __future__ import annotations

from typing import Any

from services.sla.availability import SRE_BURN_ALERTS
from services.sla.catalogue import BusinessService

API_VERSION = "openslo/v1"
BAD = "bothways_business_service_weighted_downtime_seconds_total"
TOTAL = "bothways_business_service_agreed_service_seconds_total"


def _duration(seconds: float) -> str:
    """An OpenSLO duration: whole minutes as "5m", whole hours as "1h"."""
    whole = int(seconds)
    return f"{whole // 3600}h" if whole % 3600 == 0 else f"{whole // 60}m"


def _query(metric: str, service_id: str) -> dict[str, Any]:
    return {"type": "Prometheus", "spec": {"query": f'{metric}{{business_service="{service_id}"}}'}}


def openslo_documents(service: BusinessService, *, timezone: str) -> list[dict[str, Any]]:
    """The Service and SLO documents of one business service's availability objective."""
    name = service.id.replace("_", "-").replace(".", "-")
    return [
        {
            "apiVersion": API_VERSION,
            "kind": "Service",
            "metadata": {"name": name, "displayName": service.name},
            "spec": {"description": service.description or f"{service.name} (owner: {service.owner_group})"},
        },
        {
            "apiVersion": API_VERSION,
            "kind": "SLO",
            "metadata": {"name": f"{name}-availability", "displayName": f"{service.name} availability"},
            "spec": {
                "description": (
                    f"Weighted availability within agreed service time ({service.calendar}): "
                    "agreed seconds not lost to outages, maintenance windows excluded."
                ),
                "service": name,
                "indicator": {
                    "metadata": {"name": f"{name}-weighted-uptime"},
                    "spec": {
                        "ratioMetric": {
                            "counter": True,
                            "bad": {"metricSource": _query(BAD, service.id)},
                            "total": {"metricSource": _query(TOTAL, service.id)},
                        }
                    },
                },
                "timeWindow": [
                    {
                        "duration": "1M",
                        "isRolling": False,
                        "calendar": {"startTime": "2020-01-01 00:00:00", "timeZone": timezone},
                    }
                ],
                "budgetingMethod": "Occurrences",
                "objectives": [
                    {"displayName": f"{service.objective_percent:g} %", "target": service.objective}
                ],
                "alertPolicies": [_alert_policy(name)],
            },
        },
    ]


def _alert_policy(name: str) -> dict[str, Any]:
    """The multiwindow burn-rate pairs of the Google SRE workbook, inline."""
    return {
        "kind": "AlertPolicy",
        "metadata": {"name": f"{name}-burn-rate"},
        "spec": {
            "alertWhenBreaching": True,
            "conditions": [
                {
                    "kind": "AlertCondition",
                    "metadata": {"name": f"{name}-{alert.name}"},
                    "spec": {
                        # OpenSLO has no short window: the multiwindow pair is spelt out for the reader.
                        "description": (
                            f"burn rate above {alert.threshold:g} over {_duration(alert.long_window.total_seconds())}"
                            f" and over {_duration(alert.short_window.total_seconds())}"
                        ),
                        "severity": alert.severity,
                        "condition": {
                            "kind": "burnrate",
                            "op": "gt",
                            "threshold": alert.threshold,
                            "lookbackWindow": _duration(alert.long_window.total_seconds()),
                        },
                    },
                }
                for alert in SRE_BURN_ALERTS
            ],
        },
    }
