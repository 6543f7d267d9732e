"""Rendered webhooks pass ingest's own authentication and normalisers, meaning what the world meant."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bothways.events import OutageEnded, OutageImpact, OutageStarted, TicketChanged
from bothways.signing import SignatureRejected, decode_secret
from services.ingest import authentication
from services.ingest.mapping import load_mapping
from services.ingest.normalizers import NORMALIZERS
from simulator.organisation import build_organisation
from simulator.platforms import MAPPING_OVERRIDES, Credentials, Renderer, Webhook, sign, ticket_key
from simulator.world import (
    CANCELING_PLATFORMS,
    Change,
    Ledger,
    OutageFact,
    Status,
    TicketFact,
    TicketState,
    build_world,
    timeline,
)

pytestmark = pytest.mark.unit

START = datetime(2026, 10, 5, tzinfo=UTC)
END = START + timedelta(days=14)
RECEIVED_AT = END + timedelta(hours=1)
MAPPING = load_mapping(overrides=MAPPING_OVERRIDES)
CREDENTIALS = Credentials(
    jira_secret="jira-secret",
    zendesk_secret="zendesk-secret",
    servicenow_secret="whsec_" + base64.b64encode(b"servicenow-secret-24-byte").decode(),
    alertmanager_token="am-token",
)
# What each fact should become, written here rather than taken from the renderer.
CANONICAL_CHANGES = {
    Change.OPENED: "created",
    Change.TAKEN: "status_changed",
    Change.REPLIED: "commented_public_agent",
    Change.AWAITING_CUSTOMER: "status_changed",
    Change.CUSTOMER_REPLIED: "commented_requester",
    Change.RESUMED: "status_changed",
    Change.REASSIGNED: "assigned",
    Change.REPRIORITIZED: "priority_changed",
    Change.RESOLVED: "status_changed",
    Change.REOPENED: "status_changed",
    Change.CANCELED: "status_changed",
}
CATEGORIES = {
    Status.NEW: "new",
    Status.OPEN: "open",
    Status.PENDING: "pending",
    Status.RESOLVED: "resolved",
    Status.CANCELED: "canceled",
}


def rendered(seed: int = 11) -> Iterator[tuple[Webhook, TicketState | None]]:
    """Two weeks of webhooks, each with the ticket state the world says it shows."""
    organisation = build_organisation(seed=seed, services=6, agents=10, customers=150)
    world = build_world(organisation, seed=seed, tickets_per_weekday=40)
    renderer, states = Renderer(), Ledger()
    for fact in timeline(world, start=START, end=END):
        state = states.ticket(fact)[1] if isinstance(fact, TicketFact) else None
        yield renderer.render(fact), state


WEBHOOKS = list(rendered())


def normalized(webhook: Webhook, mapping: Any = MAPPING) -> list[Any]:
    source = webhook.source
    return list(
        NORMALIZERS[source](
            json.loads(webhook.body), mapping=mapping.for_source(source), received_at=RECEIVED_AT
        )
    )


def authenticate(webhook: Webhook, credentials: Credentials = CREDENTIALS) -> None:
    now = RECEIVED_AT
    headers = sign(webhook, credentials, now=now)
    body = webhook.body
    if webhook.source == "jira":
        authentication.jira(headers, body, keys=[b"old-secret", b"jira-secret"])
    elif webhook.source == "zendesk":
        authentication.zendesk(headers, body, keys=[b"zendesk-secret"], now=now)
    elif webhook.source == "servicenow":
        keys = [decode_secret(CREDENTIALS.servicenow_secret)]
        assert (
            authentication.standard_or_bearer(headers, body, keys=keys, tokens=[], now=now)
            == webhook.delivery_id
        )
    else:
        authentication.bearer_or_basic(headers, tokens=[b"am-token"], basic=[], source="alertmanager")


def test_every_kind_of_fact_is_rendered_for_every_platform() -> None:
    seen = {(w.source, w.fact.change) for w, _ in WEBHOOKS}
    expected = {
        (platform, change)
        for platform in ("jira", "zendesk", "servicenow")
        for change in CANONICAL_CHANGES
        if change is not Change.CANCELED or platform in CANCELING_PLATFORMS
    }
    assert expected <= seen
    assert ("alertmanager", Change.OUTAGE_STARTED) in seen
    assert ("alertmanager", Change.OUTAGE_ENDED) in seen


@pytest.mark.parametrize("platform", ["jira", "zendesk", "servicenow"])
def test_each_ticket_webhook_becomes_the_snapshot_the_world_meant(platform: str) -> None:
    checked = 0
    for webhook, state in WEBHOOKS:
        if webhook.source != platform:
            continue
        assert isinstance(webhook.fact, TicketFact)
        assert state is not None
        [event] = normalized(webhook)
        assert isinstance(event, TicketChanged)
        assert_snapshot(event, webhook.fact, state)
        checked += 1
    assert checked > 300


def assert_snapshot(event: TicketChanged, fact: TicketFact, state: TicketState) -> None:
    ticket = fact.ticket
    where = (event.ticket_key, fact.change)
    assert event.ticket_key == ticket_key(ticket)
    assert event.change == CANONICAL_CHANGES[fact.change], where
    assert event.occurred_at == fact.occurred_at, where
    assert event.created_at == state.created_at, where
    assert event.status_category == CATEGORIES[state.status], where
    assert event.priority == state.priority, where
    assert event.business_service == ticket.service.id, where
    assert event.kind == ticket.kind, where
    assert event.title == ticket.title
    assert event.assignee == (state.agent.name if state.agent else None), where
    if ticket.platform == "jira":  # the issue lists every comment
        assert event.first_public_agent_response_at == state.first_response_at, where
    else:  # a trigger or business rule body carries only the comment just added
        replied = fact.occurred_at if fact.change is Change.REPLIED else None
        assert event.first_public_agent_response_at == replied, where
    assert event.requester is not None
    assert event.requester.email == ticket.customer.email
    if state.status is Status.RESOLVED:
        assert event.resolved_at == state.resolved_at, where
    if ticket.platform == "jira":
        assert event.assignment_group is None  # the default Jira mapping reads no group
    else:
        assert event.assignment_group == state.group, where
        assert event.organization == ticket.customer.organisation
    if ticket.platform == "servicenow":
        assert event.reopen_count == state.reopen_count, where


def test_outage_notifications_become_the_outage_signals_meant() -> None:
    outages = [w for w, _ in WEBHOOKS if w.source == "alertmanager"]
    starts: dict[str, datetime] = {}
    for webhook in outages:
        fact = webhook.fact
        assert isinstance(fact, OutageFact)
        [signal] = normalized(webhook)
        assert signal.business_service == fact.outage.service.id
        assert signal.impact == (
            OutageImpact.MAJOR if fact.outage.severity == "critical" else OutageImpact.PARTIAL
        )
        if fact.change is Change.OUTAGE_STARTED:
            assert isinstance(signal, OutageStarted)
            starts[fact.outage.id] = signal.started_at
            assert signal.started_at == fact.occurred_at
            assert signal.ended_at is None
        else:
            assert isinstance(signal, OutageEnded)
            assert signal.started_at == starts[fact.outage.id]
            assert signal.ended_at == fact.occurred_at
    assert len(starts) >= 2


def test_every_webhook_is_signed_as_its_platform_signs() -> None:
    sources = set()
    for webhook, _ in WEBHOOKS:
        authenticate(webhook)
        sources.add(webhook.source)
    assert sources == {"jira", "zendesk", "servicenow", "alertmanager"}


@pytest.mark.parametrize("source", ["jira", "zendesk", "servicenow", "alertmanager"])
def test_a_webhook_signed_with_another_secret_is_refused(source: str) -> None:
    webhook = next(w for w, _ in WEBHOOKS if w.source == source)
    other = Credentials(
        jira_secret="nope",
        zendesk_secret="nope",
        servicenow_secret="whsec_" + base64.b64encode(b"another-secret-of-24-byte").decode(),
        alertmanager_token="nope",
    )
    with pytest.raises(SignatureRejected):
        authenticate(webhook, other)


def test_zendesk_needs_the_business_service_field_mapped() -> None:
    webhook = next(w for w, _ in WEBHOOKS if w.source == "zendesk")
    [event] = normalized(webhook, load_mapping())
    assert event.business_service is None
    [event] = normalized(webhook)
    assert event.business_service == webhook.fact.ticket.service.id


def test_the_same_seed_renders_the_same_bodies_and_delivery_ids() -> None:
    again = list(rendered())
    assert [(w.body, w.delivery_id) for w, _ in again] == [(w.body, w.delivery_id) for w, _ in WEBHOOKS]
    other = list(rendered(seed=12))
    assert {w.body for w, _ in other}.isdisjoint({w.body for w, _ in WEBHOOKS})


def test_delivery_ids_are_unique_per_source() -> None:
    ids = [(w.source, w.delivery_id) for w, _ in WEBHOOKS]
    assert len(ids) == len(set(ids))


def test_a_reopened_servicenow_incident_counts_its_reopens() -> None:
    reopened = [
        w
        for w, s in WEBHOOKS
        if w.source == "servicenow" and w.fact.change is Change.REOPENED and s is not None
    ]
    assert reopened
    record = json.loads(reopened[0].body)["record"]
    assert record["reopen_count"] == "1"
    assert record["state"] == "2"
