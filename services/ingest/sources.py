"""The webhook sources: how each is authenticated, how its deliveries are identified, how it is read.

Routing is data: one entry per platform, read at a glance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bothways import signing
from bothways.events import Event
from services.ingest import authentication as auth
from services.ingest import generic
from services.ingest.mapping import Mapping as SourceMappings
from services.ingest.normalizers import NORMALIZERS, MissingField, alertmanager
from services.ingest.settings import IngestSettings, raw

# (headers, body, settings, now) -> the platform's delivery id when authentication yields one.
Authenticate = Callable[[Mapping[str, str], bytes, IngestSettings, datetime], str | None]
# (headers, payload, body) -> a delivery id, identical for a redelivery of the same delivery.
DeliveryId = Callable[[Mapping[str, str], Any, bytes], str]
# (payload, mappings, received_at) -> canonical events.
Normalize = Callable[[Any, SourceMappings, datetime], list[Event]]


@dataclass(frozen=True)
class Source:
    authenticate: Authenticate
    delivery_id: DeliveryId
    normalize: Normalize


def _header_or_digest(name: str) -> DeliveryId:
    return lambda headers, _payload, body: headers.get(name) or auth.body_digest(body)


def _platform(name: str) -> Normalize:
    """A platform normaliser from the routing table, with its own section of the mapping."""

    def normalize(payload: Any, mappings: SourceMappings, received_at: datetime) -> list[Event]:
        if not isinstance(payload, dict):
            raise MissingField("(root object)")
        return list(NORMALIZERS[name](payload, mapping=mappings.for_source(name), received_at=received_at))

    return normalize


def _pagerduty_delivery(headers: Mapping[str, str], payload: Any, body: bytes) -> str:
    event = payload.get("event") if isinstance(payload, dict) else None
    event_id = event.get("id") if isinstance(event, dict) else None
    return str(event_id) if event_id else auth.body_digest(body)


def _alertmanager_delivery(headers: Mapping[str, str], payload: Any, body: bytes) -> str:
    # Alertmanager repeats a notification with the same alerts: the delivery is what it says, not when.
    return alertmanager.delivery_id(payload) if isinstance(payload, dict) else auth.body_digest(body)


SOURCES: dict[str, Source] = {
    "generic": Source(
        authenticate=lambda h, b, s, now: signing.verify(h, b, keys=s.generic_keys(), now=now),
        delivery_id=_header_or_digest("webhook-id"),
        normalize=lambda payload, _m, _at: list(generic.normalize(payload)),
    ),
    "jira": Source(
        authenticate=lambda h, b, s, now: auth.jira(h, b, keys=raw(s.jira_webhook_secrets)),
        delivery_id=_header_or_digest("x-atlassian-webhook-identifier"),
        normalize=_platform("jira"),
    ),
    "zendesk": Source(
        authenticate=lambda h, b, s, now: auth.zendesk(h, b, keys=raw(s.zendesk_webhook_secrets), now=now),
        delivery_id=_header_or_digest("x-zendesk-webhook-invocation-id"),
        normalize=_platform("zendesk"),
    ),
    "servicenow": Source(
        authenticate=lambda h, b, s, now: auth.standard_or_bearer(
            h,
            b,
            keys=s.standard_keys(s.servicenow_webhook_secrets),
            tokens=raw(s.servicenow_bearer_tokens),
            now=now,
        ),
        delivery_id=_header_or_digest("webhook-id"),
        normalize=_platform("servicenow"),
    ),
    "freshservice": Source(
        authenticate=lambda h, b, s, now: auth.bearer_or_basic(
            h,
            tokens=raw(s.freshservice_bearer_tokens),
            basic=raw(s.freshservice_basic_auth),
            source="freshservice",
        ),
        delivery_id=_header_or_digest("x-freshservice-delivery-id"),
        normalize=_platform("freshservice"),
    ),
    "pagerduty": Source(
        authenticate=lambda h, b, s, now: auth.pagerduty(h, b, keys=raw(s.pagerduty_webhook_secrets)),
        delivery_id=_pagerduty_delivery,
        normalize=_platform("pagerduty"),
    ),
    "alertmanager": Source(
        authenticate=lambda h, b, s, now: auth.bearer_or_basic(
            h,
            tokens=raw(s.alertmanager_bearer_tokens),
            basic=raw(s.alertmanager_basic_auth),
            source="alertmanager",
        ),
        delivery_id=_alertmanager_delivery,
        normalize=_platform("alertmanager"),
    ),
}
