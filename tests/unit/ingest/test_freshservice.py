"""Freshservice ticket webhooks become canonical ticket snapshots."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bothways.events import Person, Priority, StatusCategory, TicketChange, TicketChanged, TicketKind
from services.ingest.mapping import SourceMapping, load_mapping
from services.ingest.normalizers import NORMALIZERS, IgnoredEvent, InvalidField, MissingField, freshservice

pytestmark = pytest.mark.unit

PAYLOADS = Path(__file__).parent / "payloads" / "freshservice"
RECEIVED_AT = datetime(2024, 6, 5, 12, 0, tzinfo=UTC)
MAPPING = load_mapping().freshservice
FIXTURES = sorted(path.stem for path in PAYLOADS.glob("*.json"))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def payload(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def normalized(body: dict[str, Any], mapping: SourceMapping = MAPPING) -> TicketChanged:
    (event,) = freshservice.normalize(body, mapping=mapping, received_at=RECEIVED_AT)
    return event


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_routing_table_sends_freshservice_payloads_to_the_freshservice_normaliser() -> None:
    assert NORMALIZERS["freshservice"] is freshservice.normalize


def test_a_created_ticket_is_an_open_incident_keyed_by_its_id() -> None:
    event = normalized(payload("ticket_created"))

    assert event.ticket_key == "freshservice:42"
    assert event.change == TicketChange.CREATED
    assert event.kind is TicketKind.INCIDENT
    assert (event.status, event.status_category) == ("2", StatusCategory.OPEN)
    assert (event.raw_priority, event.priority) == ("2", Priority.P3)
    assert event.business_service == "Network"
    assert event.requester == Person(
        id="14000098765", email="dana.whitfield@globex.example", name="Dana Whitfield"
    )
    assert event.created_at == at("2024-06-03T09:05:12")
    assert event.occurred_at == at("2024-06-03T09:05:12")


def test_pending_is_a_status_change_to_pending() -> None:
    event = normalized(payload("ticket_pending"))

    assert event.change == TicketChange.STATUS_CHANGED
    assert event.status_category is StatusCategory.PENDING
    assert event.assignee == "14000011223"


def test_resolving_takes_resolved_at_from_the_ticket_stats() -> None:
    event = normalized(payload("ticket_resolved"))

    assert event.change == TicketChange.STATUS_CHANGED
    assert event.status_category is StatusCategory.RESOLVED
    assert event.resolved_at == at("2024-06-03T11:15:00")


def test_a_reopen_is_a_status_change_back_to_open_that_counts_no_reopen_by_itself() -> None:
    event = normalized(payload("ticket_reopened"))

    assert event.change == TicketChange.STATUS_CHANGED
    assert event.status_category is StatusCategory.OPEN
    assert event.reopen_count == 0
    assert event.resolved_at is None


def test_a_priority_change_maps_urgent_to_p1() -> None:
    event = normalized(payload("ticket_priority_changed"))

    assert event.change == TicketChange.PRIORITY_CHANGED
    assert (event.raw_priority, event.priority) == ("4", Priority.P1)


def test_an_agents_reply_sets_the_first_response() -> None:
    event = normalized(payload("reply_by_agent"))

    assert event.change == TicketChange.COMMENTED_PUBLIC_AGENT
    assert event.first_public_agent_response_at == at("2024-06-03T09:31:40")


def test_the_requesters_reply_does_not_set_the_first_response() -> None:
    event = normalized(payload("reply_by_requester"))

    assert event.change == TicketChange.COMMENTED_REQUESTER
    assert event.first_public_agent_response_at is None


def test_a_private_note_does_not_set_the_first_response() -> None:
    event = normalized(payload("private_note"))

    assert event.change == TicketChange.COMMENTED_PRIVATE_AGENT
    assert event.first_public_agent_response_at is None


def test_freshservices_own_first_response_time_is_used_as_given() -> None:
    body = payload("reply_by_agent")
    body["ticket"]["stats"] = {"first_responded_at": "2024-06-03T09:25:00Z"}

    assert normalized(body).first_public_agent_response_at == at("2024-06-03T09:25:00")
    assert normalized(payload("ticket_pending")).first_public_agent_response_at == at("2024-06-03T09:31:40")


def test_placeholder_labels_and_display_ids_are_read_like_api_codes() -> None:
    event = normalized(payload("workflow_labels"))

    assert event.ticket_key == "freshservice:42"
    assert (event.status, event.status_category) == ("Pending", StatusCategory.PENDING)
    assert (event.raw_priority, event.priority) == ("Urgent", Priority.P1)
    assert event.change == TicketChange.STATUS_CHANGED
    assert event.assignee == "Sam Okafor"
    assert event.assignment_group == "Network Operations"
    assert event.organization == "Finance"
    assert event.requester == Person(email="dana.whitfield@globex.example", name="Dana Whitfield")


def test_a_custom_field_can_hold_the_business_service() -> None:
    mapping = load_mapping(
        None, {"freshservice": {"paths": {"business_service": "custom_fields.business_service"}}}
    )

    assert normalized(payload("ticket_created"), mapping.freshservice).business_service == "Corporate VPN"


def test_without_an_event_name_the_changes_say_what_happened() -> None:
    body = payload("ticket_pending")
    del body["event"]

    assert normalized(body).change == TicketChange.STATUS_CHANGED


def test_a_ticket_without_its_id_names_the_missing_field() -> None:
    body = payload("ticket_created")
    del body["ticket"]["id"]

    with pytest.raises(MissingField) as raised:
        normalized(body)

    assert raised.value.path == "ticket.id"


def test_a_product_event_without_the_ticket_id_names_the_field_under_data() -> None:
    data = payload("ticket_pending")
    del data["ticket"]["id"]
    body = {"event": "onTicketUpdate", "data": data}

    with pytest.raises(MissingField) as raised:
        normalized(body)

    assert raised.value.path == "data.ticket.id"


def test_an_id_that_is_no_ticket_number_is_refused_naming_the_field() -> None:
    body = payload("ticket_created")
    body["ticket"]["id"] = "{{ticket.id}}"

    with pytest.raises(InvalidField) as raised:
        normalized(body)

    assert raised.value.path == "ticket.id"


def test_an_unknown_event_is_ignored() -> None:
    with pytest.raises(IgnoredEvent) as raised:
        normalized(payload("ticket_deleted"))

    assert raised.value.event_type == "onTicketDelete"


def normalized_or_refused(
    body: dict[str, Any],
) -> list[TicketChanged] | MissingField | InvalidField | IgnoredEvent:
    try:
        return freshservice.normalize(body, mapping=MAPPING, received_at=RECEIVED_AT)
    except (MissingField, InvalidField, IgnoredEvent) as refused:
        return refused


def slots(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON document, so a test can replace any value in place."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    return [slot for key, child in children for slot in [(node, key), *slots(child)]]


# Generation is cheap; the health check only trips when a shared machine is busy.
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_any_value_of_any_shape_gives_snapshots_or_a_refusal_naming_the_field(data: st.DataObject) -> None:
    body = payload(data.draw(st.sampled_from(FIXTURES)))
    container, key = data.draw(st.sampled_from(slots(body)))
    container[key] = data.draw(JSON)

    result = normalized_or_refused(body)

    if isinstance(result, IgnoredEvent):
        assert result.event_type
    elif isinstance(result, MissingField | InvalidField):
        assert result.field
    else:
        assert all(event.occurred_at.tzinfo is UTC and event.created_at.tzinfo is UTC for event in result)
