"""Every report as flat rows, and rows as CSV (pure, no I/O).

Cells that a spreadsheet would run as a formula (text starting with = + - @, tab or carriage return:
a service or group name, a survey comment) are prefixed with a quote, as OWASP advises for CSV
injection. Numbers are written as numbers, so a negative NPS stays a number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from services.reporting.reports import WatermelonReport
from services.reporting.scorecard import Breakdown, Scorecard, Trend

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

SCORECARD_COLUMNS = (
    "business_service",
    "period",
    "tickets_opened",
    "tickets_resolved",
    "backlog",
    "sla_compliance_percent",
    "first_response_compliance_percent",
    "resolution_compliance_percent",
    "breaches",
    "resolution_median_business_hours",
    "resolution_p90_business_hours",
    "availability_percent",
    "availability_objective_percent",
    "error_budget_remaining_seconds",
    "mtrs_seconds",
    "csat_responses",
    "csat_percent",
    "csat_lower",
    "csat_upper",
    "nps_responses",
    "nps",
    "nps_lower",
    "nps_upper",
    "invitations_sent",
    "response_rate_percent",
    "followups_open",
    "followups_overdue",
    "experience_score",
    "experience_band",
    "experience_formula",
    "watermelon",
    "watermelon_tickets",
)


def scorecard_rows(cards: Iterable[Scorecard]) -> list[dict[str, Any]]:
    """One row per scorecard."""
    return [scorecard_row(card) for card in cards]


def scorecard_row(card: Scorecard) -> dict[str, Any]:
    """A scorecard flattened into SCORECARD_COLUMNS."""
    provider, customer = card.provider, card.customer
    availability = provider.availability
    csat, nps = customer.csat, customer.nps
    return {
        "business_service": card.business_service,
        "period": card.period,
        "tickets_opened": provider.tickets_opened,
        "tickets_resolved": provider.tickets_resolved,
        "backlog": provider.backlog,
        "sla_compliance_percent": provider.sla_compliance_percent,
        "first_response_compliance_percent": _metric(card, "first_response"),
        "resolution_compliance_percent": _metric(card, "resolution"),
        "breaches": provider.breaches,
        "resolution_median_business_hours": provider.resolution_time.median_business_hours,
        "resolution_p90_business_hours": provider.resolution_time.p90_business_hours,
        "availability_percent": availability.availability_percent if availability else None,
        "availability_objective_percent": availability.objective_percent if availability else None,
        "error_budget_remaining_seconds": availability.budget_remaining_seconds if availability else None,
        "mtrs_seconds": availability.mtrs_seconds if availability else None,
        "csat_responses": csat.responses,
        "csat_percent": csat.csat_percent,
        "csat_lower": csat.interval.lower if csat.interval else None,
        "csat_upper": csat.interval.upper if csat.interval else None,
        "nps_responses": nps.responses,
        "nps": nps.nps,
        "nps_lower": nps.interval.lower if nps.interval else None,
        "nps_upper": nps.interval.upper if nps.interval else None,
        "invitations_sent": customer.invitations_sent,
        "response_rate_percent": customer.response_rate_percent,
        "followups_open": customer.followups.open,
        "followups_overdue": customer.followups.overdue,
        "experience_score": card.experience.score,
        "experience_band": card.experience.band.value if card.experience.band else None,
        "experience_formula": card.experience.formula,
        "watermelon": card.watermelon.flagged,
        "watermelon_tickets": card.watermelon_tickets,
    }


BREAKDOWN_COLUMNS = (
    "business_service",
    "period",
    "by",
    "key",
    "tickets_resolved",
    "first_response_met",
    "first_response_breached",
    "first_response_compliance_percent",
    "resolution_met",
    "resolution_breached",
    "resolution_compliance_percent",
    "csat_responses",
    "csat_percent",
    "csat_lower",
    "csat_upper",
)


def breakdown_rows(breakdown: Breakdown) -> list[dict[str, Any]]:
    """One row per assignment group or priority."""
    rows = []
    for row in breakdown.rows:
        flat: dict[str, Any] = {
            "business_service": breakdown.business_service,
            "period": breakdown.period,
            "by": breakdown.by,
            "key": row.key,
            "tickets_resolved": row.tickets_resolved,
            "csat_responses": row.csat.responses,
            "csat_percent": row.csat.csat_percent,
            "csat_lower": row.csat.interval.lower if row.csat.interval else None,
            "csat_upper": row.csat.interval.upper if row.csat.interval else None,
        }
        for metric in ("first_response", "resolution"):
            figure = row.sla.get(metric)
            flat[f"{metric}_met"] = figure.met if figure else 0
            flat[f"{metric}_breached"] = figure.breached if figure else 0
            flat[f"{metric}_compliance_percent"] = figure.compliance_percent if figure else None
        rows.append(flat)
    return rows


TREND_COLUMNS = (
    "business_service",
    "period",
    "sla_met",
    "sla_breached",
    "sla_compliance_percent",
    "sla_change",
    "sla_change_beyond_noise",
    "availability_percent",
    "availability_change",
    "csat_responses",
    "csat_percent",
    "csat_change",
    "csat_change_beyond_noise",
    "nps_responses",
    "nps",
    "nps_change",
    "nps_change_beyond_noise",
    "experience_score",
    "watermelon",
)


def trend_rows(trend: Trend) -> list[dict[str, Any]]:
    """One row per month."""
    return [
        {
            "business_service": trend.business_service,
            "period": p.period,
            "sla_met": p.sla_met,
            "sla_breached": p.sla_breached,
            "sla_compliance_percent": p.sla_compliance_percent,
            "sla_change": p.sla_change.change,
            "sla_change_beyond_noise": p.sla_change.beyond_noise,
            "availability_percent": p.availability_percent,
            "availability_change": p.availability_change.change,
            "csat_responses": p.csat_responses,
            "csat_percent": p.csat_percent,
            "csat_change": p.csat_change.change,
            "csat_change_beyond_noise": p.csat_change.beyond_noise,
            "nps_responses": p.nps_responses,
            "nps": p.nps,
            "nps_change": p.nps_change.change,
            "nps_change_beyond_noise": p.nps_change.beyond_noise,
            "experience_score": p.experience_score,
            "watermelon": p.watermelon,
        }
        for p in trend.points
    ]


WATERMELON_COLUMNS = (
    "period",
    "ticket_key",
    "business_service",
    "service_flagged",
    "assignment_group",
    "priority",
    "answered_at",
    "score",
    "scale",
    "met_timers",
    "reason",
    "comment",
)


def watermelon_rows(report: WatermelonReport) -> list[dict[str, Any]]:
    """One row per drill-down ticket."""
    return [{"period": report.period, **ticket.model_dump(mode="json")} for ticket in report.tickets]


def to_csv(rows: Iterable[Mapping[str, Any]], *, columns: Sequence[str]) -> str:
    """RFC 4180 CSV with a header line; empty cells for missing figures."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(column)) for column in columns])
    return out.getvalue()


def cell(value: Any) -> str | int | float:
    """One CSV cell: numbers as they are, booleans as true/false, text made safe for spreadsheets."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _metric(card: Scorecard, metric: str) -> float | None:
    figure = card.provider.sla.get(metric)
    return figure.compliance_percent if figure else None
