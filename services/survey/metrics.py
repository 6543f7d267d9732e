"""The survey service's metrics: event counters by kind and business service, follow-up gauges at scrape time."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from bothways.db import Pool
from services.survey import store

SENT = Counter(
    "bothways_surveys_sent_total",
    "Survey invitations delivered, by kind, business service and channel.",
    ["kind", "business_service", "channel"],
)
ANSWERED = Counter(
    "bothways_surveys_answered_total",
    "Survey answers recorded (a changed answer counts again), by kind, business service and band.",
    ["kind", "business_service", "band"],
)
THROTTLED = Counter(
    "bothways_surveys_throttled_total",
    "Survey candidates not sent (fatigue budget, sampling, a rule, a reopen), by kind, business service and reason.",
    ["kind", "business_service", "reason"],
)
DELIVERY_FAILURES = Counter(
    "bothways_survey_delivery_failures_total",
    "Failed delivery attempts, by channel and whether the invitation was given up (final) or retried.",
    ["channel", "outcome"],
)
FOLLOWUPS_OPENED = Counter(
    "bothways_followups_opened_total",
    "Follow-ups opened after an unhappy answer.",
    ["kind", "business_service"],
)
FOLLOWUPS_OVERDUE = Counter(
    "bothways_followups_overdue_total",
    "Follow-ups that passed their due time open.",
    ["kind", "business_service"],
)
FOLLOWUPS = Gauge("bothways_followups", "Follow-ups not closed, by state (open, overdue).", ["state"])


def service_label(business_service: str | None) -> str:
    """The business_service label; empty when the ticket named none."""
    return business_service or ""


async def refresh_followups(pool: Pool) -> None:
    """The open and overdue follow-ups, as PostgreSQL counts them now."""
    async with pool.acquire() as conn:
        counts = await store.followup_counts(conn)
    for state in ("open", "overdue"):
        FOLLOWUPS.labels(state).set(counts.get(state, 0))
