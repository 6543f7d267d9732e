"""Prometheus Alertmanager: webhook notifications (payload version 4), one outage signal per alert.

A notification carries one group of alerts::

    {"version": "4", "groupKey": "{}:{alertname=\\"ProbeFailure\\"}", "truncatedAlerts": 0,
     "status": "firing", "receiver": "bothways", "groupLabels": {...}, "commonLabels": {...},
     "commonAnnotations": {...}, "externalURL": "http://alertmanager.example:9093",
     "alerts": [{"status": "firing", "labels": {"alertname": "ProbeFailure", "severity": "critical", ...},
                 "annotations": {"summary": "..."}, "startsAt": "2024-06-03T09:12:45.828Z",
                 "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "...", "fingerprint": "1a30ba71cca2921f"}]}

A firing alert starts (or restates) its outage at `startsAt`; a resolved one ends it at `endsAt`. The
group's own status says nothing of each alert and is not read. Alertmanager repeats a notification
every `repeat_interval` and whenever one alert of the group changes, so every field of an event comes
from its alert, never from the delivery: the same alert state always yields the same event. A firing
alert's `endsAt` is no end: Go's zero time ("0001-01-01T00:00:00Z"), or from some senders an estimated
expiry that moves with every resend; it is not read. Events come out ordered by alert, not by their
place in the payload, so the index the event ids are derived from does not depend on the listing order.
The payload version is not checked: the alert shape is what is read, and Grafana's
Alertmanager-compatible payload (version "1") reads the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bothways.events import OutageEnded, OutageSignal, OutageStarted
from services.ingest.mapping import AlertmanagerMapping, fold
from services.ingest.normalizers import (
    MAX_RAW_SEVERITY,
    MAX_TITLE,
    IgnoredEvent,
    InvalidField,
    MissingField,
    clipped,
    first_text,
    flag_of,
    joined,
    labels_of,
    outage_signal,
    required_text,
    time_of,
)

SOURCE = "alertmanager"
KINDS: dict[str, type[OutageSignal]] = {"firing": OutageStarted, "resolved": OutageEnded}
# Go's zero time.Time, which Alertmanager sends for "no end (yet)".
ZERO_TIME = "0001-01-01T00:00:00"
# The label every Prometheus alert has: the reference of an alert that names no service.
ALERTNAME = "alertname"


def normalize(
    payload: dict[str, Any], *, mapping: AlertmanagerMapping, received_at: datetime
) -> list[OutageSignal]:
    """One outage signal per alert of an Alertmanager notification, ordered by alert."""
    alerts = _alerts(payload)
    ordered = sorted(range(len(alerts)), key=lambda index: _identity(alerts[index]))
    return [_signal(alerts[index], mapping=mapping, path=f"alerts.{index}") for index in ordered]


def delivery_id(payload: dict[str, Any]) -> str:
    """A delivery id that repeats whenever the same alerts are notified in the same states."""
    alerts = payload.get("alerts")
    parts = sorted(map(_identity, alerts)) if isinstance(alerts, list) else [_canonical(payload)]
    return "alerts:sha256:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _alerts(payload: dict[str, Any]) -> list[Any]:
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise MissingField("alerts")
    if not alerts:
        raise IgnoredEvent(first_text(payload, ("status",)) or "notification", "it lists no alerts")
    return alerts


def _identity(alert: Any) -> str:
    """What makes two notifications of an alert the same: its fingerprint, status and times, as sent."""
    if not isinstance(alert, dict):
        return _canonical(alert)
    status = alert.get("status")
    resolved = isinstance(status, str) and fold(status) == "resolved"
    # A firing alert's endsAt is not read (see the module docstring), so it cannot tell deliveries apart.
    ends_at = alert.get("endsAt") if resolved else None
    return _canonical([alert.get("fingerprint"), status, alert.get("startsAt"), ends_at])


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def _signal(alert: Any, *, mapping: AlertmanagerMapping, path: str) -> OutageSignal:
    if not isinstance(alert, dict):
        raise InvalidField(path, "not an alert object")
    fingerprint = required_text(alert, "fingerprint", prefix=path)
    status = required_text(alert, "status", prefix=path)
    kind = KINDS.get(fold(status))
    if kind is None:
        raise InvalidField(joined(path, "status"), f"not firing or resolved: {status!r}")
    started_at = _required_time(alert, "startsAt", prefix=path)
    ended_at = _required_time(alert, "endsAt", prefix=path) if kind is OutageEnded else None
    if ended_at is not None and ended_at < started_at:
        raise InvalidField(joined(path, "endsAt"), f"ends at {ended_at} before it starts at {started_at}")
    raw_labels = alert.get("labels")
    labels: dict[str, Any] = raw_labels if isinstance(raw_labels, dict) else {}
    reference = _label(labels, mapping.service_labels)
    severity = _label(labels, mapping.severity_labels)
    return outage_signal(
        kind,
        signal_key=f"{SOURCE}:{fingerprint}",
        source=SOURCE,
        business_service=mapping.business_service(reference) if reference else None,
        service_reference=reference or _label(labels, (ALERTNAME,)) or fingerprint,
        occurred_at=ended_at or started_at,
        started_at=started_at,
        ended_at=ended_at,
        impact=mapping.impact(severity),
        planned=any(flag_of(labels.get(name)) is True for name in mapping.planned_labels),
        title=clipped(first_text(alert, ("annotations.summary", f"labels.{ALERTNAME}")), MAX_TITLE),
        raw_severity=clipped(severity, MAX_RAW_SEVERITY),
        labels=labels_of(labels),
    )


def _label(labels: dict[str, Any], names: Iterable[str]) -> str | None:
    """The value of the first of `names` the alert has; label values are strings."""
    for name in names:
        value = labels.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _required_time(alert: dict[str, Any], name: str, *, prefix: str) -> datetime:
    value = alert.get(name)
    if isinstance(value, str) and value.strip().startswith(ZERO_TIME):
        value = None
    found = time_of(value, path=joined(prefix, name))
    if found is None:
        raise MissingField(joined(prefix, name))
    return found
