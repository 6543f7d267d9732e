"""PagerDuty: incident events of Webhooks v3 subscriptions, as outage signals.

Each delivery carries one event::

    {"event": {"id": "5ac64822-...", "event_type": "incident.triggered", "resource_type": "incident",
               "occurred_at": "2024-06-03T09:14:07.112Z", "agent": {...}, "client": {...},
               "data": {"id": "Q2KJ4XH7N1A3", "type": "incident", "number": 1234, "status": "triggered",
                        "title": "...", "created_at": "2024-06-03T09:14:05Z", "urgency": "high",
                        "service": {"id": "PF9KMXH", "summary": "Checkout API", ...},
                        "priority": {"id": "PSO75BM", "summary": "P1", ...} or null, ...}}}

`incident.triggered` starts the outage at the incident's `created_at`; `incident.resolved` ends it at
the event's `occurred_at` (the incident object carries no resolution time). `incident.reopened` starts a
new stretch at the reopen time rather than at `created_at`: the service was up between the resolution
and the reopen, and counting from creation would charge that gap as downtime. A later `resolved` still
carries `created_at` as its start, the only one the payload knows; it ends the open stretch.
`incident.priority_updated` restates the impact of a running outage; on an incident already resolved it
changes no outage and is ignored. Every other event (acknowledged, annotated, delegated, escalated,
reassigned, responder and status-update events, service events, `pagey.ping`) is ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bothways.events import OutageEnded, OutageSignal, OutageStarted, OutageUpdated
from services.ingest.mapping import PagerDutyMapping, fold
from services.ingest.normalizers import (
    MAX_RAW_SEVERITY,
    MAX_TITLE,
    IgnoredEvent,
    InvalidField,
    as_utc,
    clipped,
    dig,
    labels_of,
    outage_signal,
    required_object,
    required_text,
    required_time,
    text_of,
    time_of,
)

SOURCE = "pagerduty"
INCIDENT = "event.data"
TRIGGERED = "incident.triggered"
REOPENED = "incident.reopened"
PRIORITY_UPDATED = "incident.priority_updated"
RESOLVED = "incident.resolved"
TRACKED: dict[str, type[OutageSignal]] = {
    TRIGGERED: OutageStarted,
    REOPENED: OutageStarted,
    PRIORITY_UPDATED: OutageUpdated,
    RESOLVED: OutageEnded,
}


def normalize(
    payload: dict[str, Any], *, mapping: PagerDutyMapping, received_at: datetime
) -> list[OutageSignal]:
    """The outage signal a PagerDuty v3 webhook event carries, when it is one Bothways tracks."""
    event = required_object(payload, "event")
    declared = required_text(event, "event_type", prefix="event")
    event_type = fold(declared)
    kind = TRACKED.get(event_type)
    if kind is None:
        raise IgnoredEvent(declared, f"not one of {', '.join(TRACKED)}")
    incident = required_object(event, "data", prefix="event")
    incident_id = required_text(incident, "id", prefix=INCIDENT)
    if event_type == PRIORITY_UPDATED and fold(text_of(incident.get("status")) or "") == "resolved":
        raise IgnoredEvent(declared, "the incident is resolved: no running outage to update")
    # PagerDuty always stamps its events; the receipt time is within seconds of it otherwise.
    occurred_at = time_of(event.get("occurred_at"), path="event.occurred_at") or as_utc(received_at)
    started_at = (
        occurred_at if event_type == REOPENED else required_time(incident, "created_at", prefix=INCIDENT)
    )
    ended_at = occurred_at if event_type == RESOLVED else None
    if ended_at is not None and ended_at < started_at:
        raise InvalidField("event.occurred_at", f"resolved at {ended_at} before created at {started_at}")
    service_id = required_text(incident, "service.id", prefix=INCIDENT)
    service_name = text_of(dig(incident, "service.summary"))
    priority = text_of(dig(incident, "priority.summary"))
    urgency = text_of(incident.get("urgency"))
    signal = outage_signal(
        kind,
        signal_key=f"{SOURCE}:{incident_id}",
        source=SOURCE,
        business_service=mapping.business_service(service_id, service_name),
        service_reference=service_id,
        occurred_at=occurred_at,
        started_at=started_at,
        ended_at=ended_at,
        impact=mapping.impact(priority=priority, urgency=urgency),
        title=clipped(text_of(incident.get("title")), MAX_TITLE),
        raw_severity=clipped(priority or urgency, MAX_RAW_SEVERITY),
        labels=_labels(incident, service_name=service_name, priority=priority, urgency=urgency),
    )
    return [signal]


def _labels(
    incident: dict[str, Any], *, service_name: str | None, priority: str | None, urgency: str | None
) -> dict[str, str]:
    raw = {
        "service_name": service_name,
        "priority": priority,
        "urgency": urgency,
        "status": text_of(incident.get("status")),
        "incident_number": text_of(incident.get("number")),
        "escalation_policy": text_of(dig(incident, "escalation_policy.summary")),
        "html_url": text_of(incident.get("html_url")),
    }
    return labels_of({name: value for name, value in raw.items() if value is not None})
