"""PagerDuty v3 incident webhooks become outage signals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bothways.events import OutageEnded, OutageImpact, OutageSignal, OutageStarted, OutageUpdated
from services.ingest.mapping import MappingError, PagerDutyMapping, load_mapping
from services.ingest.normalizers import NORMALIZERS, IgnoredEvent, InvalidField, MissingField, pagerduty

pytestmark = pytest.mark.unit

PAYLOADS = Path(__file__).parent / "payloads" / "pagerduty"
RECEIVED_AT = datetime(2024, 6, 5, 12, 0, tzinfo=UTC)
MAPPING = load_mapping(None, {"pagerduty": {"services": {"PF9KMXH": "webshop"}}}).pagerduty
FIXTURES = sorted(path.stem for path in PAYLOADS.glob("*.json"))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def payload(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def normalized(body: dict[str, Any], mapping: PagerDutyMapping = MAPPING) -> OutageSignal:
    (event,) = pagerduty.normalize(body, mapping=mapping, received_at=RECEIVED_AT)
    return event


def incident(body: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = body["event"]["data"]
    return data


def with_priority(body: dict[str, Any], summary: str | None) -> dict[str, Any]:
    incident(body)["priority"] = None if summary is None else {"id": "PX0001", "summary": summary}
    return body


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_the_routing_table_sends_pagerduty_payloads_to_the_pagerduty_normaliser() -> None:
    assert NORMALIZERS["pagerduty"] is pagerduty.normalize


def test_a_triggered_incident_starts_an_outage_of_its_business_service_when_it_was_created() -> None:
    event = normalized(payload("incident_triggered"))

    assert isinstance(event, OutageStarted)
    assert event.signal_key == "pagerduty:Q0RIJJZL24RC6W"
    assert event.source == "pagerduty"
    assert (event.business_service, event.service_reference) == ("webshop", "PF9KMXH")
    assert event.key() == "webshop"
    assert event.started_at == at("2024-06-03T09:14:05Z")
    assert event.occurred_at == at("2024-06-03T09:14:07.112Z")
    assert event.ended_at is None
    assert event.title == "Checkout API error rate above 5% for 5 minutes"
    assert event.planned is False


def test_an_incident_without_priority_takes_its_impact_from_its_urgency() -> None:
    low = normalized(payload("incident_triggered"))
    high_body = payload("incident_triggered")
    incident(high_body)["urgency"] = "high"

    assert (low.impact, low.raw_severity) == (OutageImpact.PARTIAL, "low")
    assert normalized(high_body).impact is OutageImpact.MAJOR


@pytest.mark.parametrize(
    ("priority", "impact"),
    [
        ("P1", OutageImpact.MAJOR),
        ("P2", OutageImpact.MAJOR),
        ("P3", OutageImpact.PARTIAL),
        ("P4", OutageImpact.DEGRADED),
        ("P5", OutageImpact.DEGRADED),
    ],
)
def test_the_priority_decides_the_impact_over_the_urgency(priority: str, impact: OutageImpact) -> None:
    event = normalized(with_priority(payload("incident_triggered"), priority))

    assert (event.impact, event.raw_severity) == (impact, priority)


def test_a_priority_the_mapping_does_not_list_falls_back_on_the_urgency() -> None:
    event = normalized(with_priority(payload("incident_triggered"), "SEV-2"))

    assert (event.impact, event.raw_severity) == (OutageImpact.PARTIAL, "SEV-2")


def test_a_site_maps_its_own_priorities_and_urgencies() -> None:
    mapping = load_mapping(
        None,
        {"pagerduty": {"priorities": {"sev-1": "major", "P3": "major"}, "urgencies": {"low": "degraded"}}},
    ).pagerduty

    assert (
        normalized(with_priority(payload("incident_triggered"), "SEV-1"), mapping).impact
        is OutageImpact.MAJOR
    )
    assert (
        normalized(with_priority(payload("incident_triggered"), "P3"), mapping).impact is OutageImpact.MAJOR
    )
    assert normalized(payload("incident_triggered"), mapping).impact is OutageImpact.DEGRADED


def test_an_incident_with_neither_known_priority_nor_urgency_has_the_default_impact() -> None:
    body = payload("incident_triggered")
    incident(body)["urgency"] = None
    mapping = load_mapping(None, {"pagerduty": {"default_impact": "partial"}}).pagerduty

    assert normalized(body).impact is OutageImpact.MAJOR
    assert normalized(body, mapping).impact is OutageImpact.PARTIAL


def test_a_priority_update_restates_the_impact_of_the_running_outage() -> None:
    event = normalized(payload("incident_priority_updated"))

    assert isinstance(event, OutageUpdated)
    assert (event.impact, event.raw_severity) == (OutageImpact.MAJOR, "P1")
    assert event.started_at == at("2024-06-03T09:14:05Z")
    assert event.occurred_at == at("2024-06-03T09:20:12.004Z")
    assert event.ended_at is None


def test_a_priority_update_on_a_resolved_incident_is_ignored() -> None:
    body = payload("incident_priority_updated")
    incident(body)["status"] = "resolved"

    with pytest.raises(IgnoredEvent) as raised:
        normalized(body)

    assert raised.value.event_type == "incident.priority_updated"


def test_a_resolved_incident_ends_the_outage_when_it_was_resolved() -> None:
    event = normalized(payload("incident_resolved"))

    assert isinstance(event, OutageEnded)
    assert event.signal_key == "pagerduty:Q0RIJJZL24RC6W"
    assert event.started_at == at("2024-06-03T09:14:05Z")
    assert event.ended_at == event.occurred_at == at("2024-06-03T10:02:31.871Z")
    assert event.impact is OutageImpact.MAJOR


def test_a_reopened_incident_starts_a_new_stretch_at_the_reopen_time() -> None:
    event = normalized(payload("incident_reopened"))

    assert isinstance(event, OutageStarted)
    assert event.signal_key == "pagerduty:Q0RIJJZL24RC6W"
    assert event.started_at == event.occurred_at == at("2024-06-03T10:30:00.250Z")
    assert event.ended_at is None


@pytest.mark.parametrize(
    ("fixture", "event_type"),
    [
        ("incident_acknowledged", "incident.acknowledged"),
        ("incident_annotated", "incident.annotated"),
        ("pagey_ping", "pagey.ping"),
    ],
)
def test_events_that_change_no_outage_are_ignored(fixture: str, event_type: str) -> None:
    with pytest.raises(IgnoredEvent) as raised:
        normalized(payload(fixture))

    assert raised.value.event_type == event_type


@pytest.mark.parametrize(
    "event_type",
    ["incident.delegated", "incident.escalated", "incident.reassigned", "incident.unacknowledged"],
)
def test_routing_events_on_a_running_incident_are_ignored(event_type: str) -> None:
    body = payload("incident_acknowledged")
    body["event"]["event_type"] = event_type

    with pytest.raises(IgnoredEvent):
        normalized(body)


def test_an_incident_on_an_unmapped_service_is_kept_keyed_by_its_pagerduty_service_id() -> None:
    event = normalized(payload("incident_triggered"), load_mapping().pagerduty)

    assert event.business_service is None
    assert event.service_reference == "PF9KMXH"
    assert event.key() == "unmapped:PF9KMXH"


def test_a_service_may_be_mapped_by_its_name_and_an_entry_for_its_id_wins() -> None:
    by_name = load_mapping(None, {"pagerduty": {"services": {"checkout api": "webshop"}}}).pagerduty
    both = load_mapping(
        None, {"pagerduty": {"services": {"Checkout API": "webshop", "pf9kmxh": "payments"}}}
    ).pagerduty

    assert normalized(payload("incident_triggered"), by_name).business_service == "webshop"
    assert normalized(payload("incident_triggered"), both).business_service == "payments"


def test_the_incident_facts_travel_as_labels() -> None:
    event = normalized(with_priority(payload("incident_triggered"), "P2"))

    assert event.labels == {
        "escalation_policy": "Payments on-call",
        "html_url": "https://globex.pagerduty.com/incidents/Q0RIJJZL24RC6W",
        "incident_number": "4321",
        "priority": "P2",
        "service_name": "Checkout API",
        "status": "triggered",
        "urgency": "low",
    }


def test_an_event_without_its_time_happened_when_it_was_received() -> None:
    body = payload("incident_resolved")
    del body["event"]["occurred_at"]

    assert normalized(body).ended_at == RECEIVED_AT


def test_a_delivery_without_an_incident_id_names_the_missing_field() -> None:
    body = payload("incident_triggered")
    del incident(body)["id"]

    with pytest.raises(MissingField) as raised:
        normalized(body)

    assert raised.value.path == "event.data.id"


def test_an_incident_without_a_service_names_the_missing_field() -> None:
    body = payload("incident_triggered")
    incident(body)["service"] = None

    with pytest.raises(MissingField) as raised:
        normalized(body)

    assert raised.value.path == "event.data.service.id"


def test_a_body_that_is_not_a_v3_event_names_the_missing_field() -> None:
    with pytest.raises(MissingField) as raised:
        normalized({"messages": [{"event": "incident.trigger"}]})

    assert raised.value.path == "event"


def test_a_resolution_before_the_incident_was_created_is_refused_naming_the_field() -> None:
    body = payload("incident_resolved")
    body["event"]["occurred_at"] = "2024-06-03T09:00:00Z"

    with pytest.raises(InvalidField) as raised:
        normalized(body)

    assert raised.value.path == "event.occurred_at"


def test_an_unparsable_creation_time_is_refused_naming_the_field() -> None:
    body = payload("incident_triggered")
    incident(body)["created_at"] = "yesterday"

    with pytest.raises(InvalidField) as raised:
        normalized(body)

    assert raised.value.path == "event.data.created_at"


def test_a_misspelt_pagerduty_setting_or_impact_names_the_bad_key() -> None:
    with pytest.raises(MappingError, match=r"pagerduty\.servics"):
        load_mapping(None, {"pagerduty": {"servics": {"PF9KMXH": "webshop"}}})
    with pytest.raises(MappingError, match=r"pagerduty\.priorities\.p1"):
        load_mapping(None, {"pagerduty": {"priorities": {"P1": "catastrophic"}}})


def normalized_or_refused(
    body: dict[str, Any],
) -> list[OutageSignal] | MissingField | InvalidField | IgnoredEvent:
    try:
        return pagerduty.normalize(body, mapping=MAPPING, received_at=RECEIVED_AT)
    except (MissingField, InvalidField, IgnoredEvent) as refused:
        return refused


def slots(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON document, so a test can replace any value in place."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    return [slot for key, child in children for slot in [(node, key), *slots(child)]]


# Generation is cheap; the health check only trips when a shared machine is busy.
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_any_value_of_any_shape_gives_signals_or_a_refusal_naming_the_field(data: st.DataObject) -> None:
    body = payload(data.draw(st.sampled_from(FIXTURES)))
    container, key = data.draw(st.sampled_from(slots(body)))
    container[key] = data.draw(JSON)

    result = normalized_or_refused(body)

    if isinstance(result, IgnoredEvent):
        assert result.event_type
    elif isinstance(result, MissingField | InvalidField):
        assert result.field
    else:
        assert all(event.occurred_at.tzinfo is UTC and event.started_at.tzinfo is UTC for event in result)
