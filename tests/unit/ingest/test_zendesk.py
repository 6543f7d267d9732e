"""Zendesk ticket events and trigger-style ticket JSON become canonical ticket snapshots."""

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
from services.ingest.normalizers import NORMALIZERS, IgnoredEvent, InvalidField, MissingField, zendesk

pytestmark = pytest.mark.unit

PAYLOADS = Path(__file__).parent / "payloads" / "zendesk"
RECEIVED_AT = datetime(2024, 6, 5, 12, 0, tzinfo=UTC)
MAPPING = load_mapping().zendesk
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
    (event,) = zendesk.normalize(body, mapping=mapping, received_at=RECEIVED_AT)
    return event


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_routing_table_sends_zendesk_payloads_to_the_zendesk_normaliser() -> None:
    assert NORMALIZERS["zendesk"] is zendesk.normalize


def test_a_created_ticket_event_is_a_new_ticket_keyed_by_its_id() -> None:
    event = normalized(payload("ticket_created"))

    assert event.ticket_key == "zendesk:5158"
    assert event.change == TicketChange.CREATED
    assert event.kind is TicketKind.INCIDENT
    assert (event.status, event.status_category) == ("NEW", StatusCategory.NEW)
    assert (event.raw_priority, event.priority) == ("HIGH", Priority.P2)
    assert event.requester == Person(id="8447388090123")
    assert event.assignment_group == "360006789012"
    assert event.organization == "360043211234"
    assert event.created_at == at("2024-06-03T09:05:12")
    assert event.occurred_at == at("2024-06-03T09:05:12.481516")


def test_pending_is_a_status_change_to_pending() -> None:
    event = normalized(payload("status_changed_pending"))

    assert event.change == TicketChange.STATUS_CHANGED
    assert event.status_category is StatusCategory.PENDING


def test_solved_is_resolved_at_the_time_of_the_change() -> None:
    event = normalized(payload("status_changed_solved"))

    assert event.change == TicketChange.STATUS_CHANGED
    assert event.status_category is StatusCategory.RESOLVED
    assert event.resolved_at == at("2024-06-03T11:15:00")


def test_a_reopen_is_a_status_change_back_to_open_that_counts_no_reopen_by_itself() -> None:
    event = normalized(payload("status_changed_reopened"))

    assert event.change == TicketChange.STATUS_CHANGED
    assert event.status_category is StatusCategory.OPEN
    assert event.reopen_count == 0
    assert event.resolved_at is None


def test_on_hold_counts_as_open_unless_the_mapping_pauses_it() -> None:
    body = payload("status_changed_pending")
    body["detail"]["status"] = "HOLD"
    pausing = load_mapping(None, {"zendesk": {"statuses": {"hold": "pending"}}}).zendesk

    assert normalized(body).status_category is StatusCategory.OPEN
    assert normalized(body, pausing).status_category is StatusCategory.PENDING


def test_a_priority_change_maps_urgent_to_p1() -> None:
    event = normalized(payload("priority_changed"))

    assert event.change == TicketChange.PRIORITY_CHANGED
    assert (event.raw_priority, event.priority) == ("URGENT", Priority.P1)


def test_a_public_agent_comment_sets_the_first_response() -> None:
    event = normalized(payload("comment_added_public_agent"))

    assert event.change == TicketChange.COMMENTED_PUBLIC_AGENT
    assert event.first_public_agent_response_at == at("2024-06-03T09:31:40.210")
    assert event.assignee == "8447388090495"


def test_an_end_user_comment_does_not_set_the_first_response() -> None:
    event = normalized(payload("comment_added_end_user"))

    assert event.change == TicketChange.COMMENTED_REQUESTER
    assert event.first_public_agent_response_at is None


def test_an_internal_note_does_not_set_the_first_response() -> None:
    event = normalized(payload("comment_added_private_note"))

    assert event.change == TicketChange.COMMENTED_PRIVATE_AGENT
    assert event.first_public_agent_response_at is None


def test_staff_commenting_on_their_own_ticket_speak_as_the_requester() -> None:
    body = payload("comment_added_public_agent")
    body["detail"]["requester_id"] = body["event"]["comment"]["author"]["id"]

    event = normalized(body)

    assert event.change == TicketChange.COMMENTED_REQUESTER
    assert event.first_public_agent_response_at is None


def test_an_event_without_the_ticket_id_names_the_missing_field() -> None:
    body = payload("status_changed_pending")
    del body["detail"]["id"]

    with pytest.raises(MissingField) as raised:
        normalized(body)

    assert raised.value.path == "detail.id"


def test_a_user_event_is_ignored() -> None:
    with pytest.raises(IgnoredEvent) as raised:
        normalized(payload("user_active_changed"))

    assert raised.value.event_type == "zen:event-type:user.active_changed"


def test_a_ticket_event_bothways_does_not_track_is_ignored() -> None:
    body = payload("priority_changed")
    body["type"] = "zen:event-type:ticket.tags_changed"

    with pytest.raises(IgnoredEvent, match="tags_changed"):
        normalized(body)


def test_a_trigger_body_is_read_with_names_and_a_custom_field_holding_the_business_service() -> None:
    mapping = load_mapping(
        None, {"zendesk": {"paths": {"business_service": "custom_fields.360012345678"}}}
    ).zendesk

    event = normalized(payload("trigger_ticket_solved"), mapping)

    assert event.change == TicketChange.STATUS_CHANGED
    assert (event.status, event.status_category) == ("Solved", StatusCategory.RESOLVED)
    assert event.priority is Priority.P2
    assert event.business_service == "corporate_vpn"
    assert event.assignment_group == "Network Operations"
    assert event.organization == "Globex Corporation"
    assert event.assignee == "Sam Okafor"
    assert event.requester == Person(
        id="8447388090123", email="dana.whitfield@globex.example", name="Dana Whitfield"
    )
    assert event.created_at == at("2024-06-03T09:05")
    assert event.occurred_at == at("2024-06-03T11:15")


def test_an_empty_custom_field_is_no_business_service_rather_than_its_id() -> None:
    mapping = load_mapping(
        None, {"zendesk": {"paths": {"business_service": "custom_fields.360012345679"}}}
    ).zendesk

    assert normalized(payload("trigger_ticket_solved"), mapping).business_service is None


def test_a_trigger_comment_by_an_agent_sets_the_first_response() -> None:
    event = normalized(payload("trigger_comment"))

    assert event.change == TicketChange.COMMENTED_PUBLIC_AGENT
    assert event.first_public_agent_response_at == at("2024-06-03T09:31")


def test_a_trigger_comment_that_does_not_say_who_wrote_it_is_no_response() -> None:
    body = payload("trigger_comment")
    del body["comment"]["author"]["role"]

    event = normalized(body)

    assert event.change == TicketChange.UPDATED
    assert event.first_public_agent_response_at is None


def test_a_flat_trigger_body_without_the_ticket_id_names_the_missing_field() -> None:
    body = payload("trigger_ticket_solved")["ticket"]
    del body["id"]

    with pytest.raises(MissingField) as raised:
        normalized(body)

    assert raised.value.path == "id"


def test_a_trigger_body_with_an_unknown_event_is_ignored() -> None:
    body = payload("trigger_ticket_solved")
    body["event"] = "satisfaction_rated"

    with pytest.raises(IgnoredEvent, match="satisfaction_rated"):
        normalized(body)


def normalized_or_refused(
    body: dict[str, Any],
) -> list[TicketChanged] | MissingField | InvalidField | IgnoredEvent:
    try:
        return zendesk.normalize(body, mapping=MAPPING, received_at=RECEIVED_AT)
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
