"""ServiceNow Table API records and business-rule deliveries become canonical ticket snapshots."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bothways.events import Person, Priority, StatusCategory, TicketChange, TicketChanged, TicketKind
from services.ingest.mapping import SourceMapping, load_mapping
from services.ingest.normalizers import NORMALIZERS, IgnoredEvent, InvalidField, MissingField, servicenow

pytestmark = pytest.mark.unit

PAYLOADS = Path(__file__).parent / "payloads" / "servicenow"
RECEIVED_AT = datetime(2024, 6, 5, 12, 0, tzinfo=UTC)
MAPPING = load_mapping().servicenow
FIXTURES = sorted(path.stem for path in PAYLOADS.glob("*.json"))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
DANA = "62826bf03710200044e0bfc8bcbe5df1"
BERLIN_ACME = {"servicenow": {"instances": {"acme": {"time_zone": "Europe/Berlin"}}}}
ZONED = {
    zone: load_mapping(None, {"servicenow": {"time_zone": zone}}).servicenow
    for zone in ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")
}


def payload(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def normalized(body: dict[str, Any], mapping: SourceMapping = MAPPING) -> TicketChanged:
    (event,) = servicenow.normalize(body, mapping=mapping, received_at=RECEIVED_AT)
    return event


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_routing_table_sends_servicenow_payloads_to_the_servicenow_normaliser() -> None:
    assert NORMALIZERS["servicenow"] is servicenow.normalize


def test_an_inserted_incident_is_a_new_ticket_keyed_by_its_number() -> None:
    event = normalized(payload("incident_inserted"))

    assert event.ticket_key == "servicenow:INC0010042"
    assert event.change == TicketChange.CREATED
    assert event.kind is TicketKind.INCIDENT
    assert (event.status, event.status_category) == ("1", StatusCategory.NEW)
    assert (event.raw_priority, event.priority) == ("3", Priority.P3)
    assert event.business_service == "27d32778c0a8000b00db970eeaa60f16"
    assert event.assignment_group == "287ebd7da9fe198100f92cc8d1d2154e"
    assert event.requester == Person(id=DANA)
    assert event.created_at == at("2024-06-03T09:05:12")
    assert event.occurred_at == at("2024-06-03T09:05:12")


def test_on_hold_is_a_status_change_to_pending() -> None:
    event = normalized(payload("incident_on_hold"))

    assert event.change == TicketChange.STATUS_CHANGED
    assert event.status_category is StatusCategory.PENDING


def test_resolving_takes_resolved_at_from_the_record() -> None:
    event = normalized(payload("incident_resolved"))

    assert event.change == TicketChange.STATUS_CHANGED
    assert event.status_category is StatusCategory.RESOLVED
    assert event.resolved_at == at("2024-06-03T11:15:00")


def test_a_reopen_is_a_status_change_and_the_reopen_count_is_servicenows() -> None:
    event = normalized(payload("incident_reopened"))

    assert event.change == TicketChange.STATUS_CHANGED
    assert event.status_category is StatusCategory.OPEN
    assert event.reopen_count == 1
    assert event.resolved_at is None


def test_a_priority_change_maps_priority_1_to_p1() -> None:
    event = normalized(payload("incident_priority_changed"))

    assert event.change == TicketChange.PRIORITY_CHANGED
    assert event.priority is Priority.P1


def test_an_agents_additional_comment_sets_the_first_response() -> None:
    event = normalized(payload("incident_commented_by_agent"))

    assert event.change == TicketChange.COMMENTED_PUBLIC_AGENT
    assert event.first_public_agent_response_at == at("2024-06-03T09:31:40")


def test_the_callers_comment_does_not_set_the_first_response() -> None:
    event = normalized(payload("incident_commented_by_caller"))

    assert event.change == TicketChange.COMMENTED_REQUESTER
    assert event.first_public_agent_response_at is None


def test_a_work_note_does_not_set_the_first_response() -> None:
    event = normalized(payload("incident_work_note"))

    assert event.change == TicketChange.COMMENTED_PRIVATE_AGENT
    assert event.first_public_agent_response_at is None


def test_display_values_give_names_and_the_journal_gives_the_first_response() -> None:
    event = normalized(payload("table_api_display_all"), load_mapping(None, BERLIN_ACME).servicenow)

    assert (event.status, event.status_category) == ("In Progress", StatusCategory.OPEN)
    assert (event.raw_priority, event.priority) == ("2 - High", Priority.P2)
    assert event.business_service == "Corporate VPN"
    assert event.assignment_group == "Network Operations"
    assert event.organization == "Globex Corporation"
    assert event.assignee == "Sam Okafor"
    assert event.requester == Person(id=DANA, name="Dana Whitfield")
    assert event.created_at == at("2024-06-03T09:05:12")
    assert event.change == TicketChange.COMMENTED_REQUESTER
    assert event.first_public_agent_response_at == at("2024-06-03T09:31:40")


def test_a_journal_entry_not_stamped_with_this_update_is_not_what_changed() -> None:
    event = normalized(payload("table_api_display_all"))

    assert event.change == TicketChange.UPDATED


def test_an_instance_mapping_reads_naive_times_in_its_own_zone() -> None:
    berlin = load_mapping(None, BERLIN_ACME).servicenow
    body = payload("incident_priority_changed")

    assert normalized(body, berlin).occurred_at == at("2024-06-03T07:50:00")
    body["instance"] = "globex"
    assert normalized(body, berlin).occurred_at == at("2024-06-03T09:50:00")


def test_an_instance_can_map_its_own_custom_states() -> None:
    mapping = load_mapping(
        None, {"servicenow": {"instances": {"acme": {"statuses": {"9": "pending"}}}}}
    ).servicenow
    body = payload("incident_on_hold")
    body["record"]["state"] = "9"

    assert normalized(body, mapping).status_category is StatusCategory.PENDING
    with pytest.raises(InvalidField) as raised:
        normalized(body)
    assert raised.value.path == "record.state"


def test_an_empty_business_service_falls_back_on_the_configuration_item() -> None:
    body = payload("incident_inserted")
    body["record"]["business_service"] = ""

    assert normalized(body).business_service == "b0c25d1bc0a800090168be1bfcdcd759"


def test_a_custom_field_can_hold_the_business_service() -> None:
    mapping = load_mapping(
        None, {"servicenow": {"paths": {"business_service": "u_business_service"}}}
    ).servicenow
    body = payload("incident_inserted")
    body["record"]["u_business_service"] = {"display_value": "Payroll", "value": "6f0bd2e1"}

    assert normalized(body, mapping).business_service == "Payroll"


def test_a_problem_record_uses_the_problem_states_and_kind() -> None:
    body = payload("incident_resolved")
    body["table"] = "problem"
    body["record"].update({"sys_class_name": "problem", "number": "PRB0040007", "state": "106"})

    event = normalized(body)

    assert event.kind is TicketKind.PROBLEM
    assert event.status_category is StatusCategory.RESOLVED


def test_a_bare_record_never_modified_is_a_creation() -> None:
    event = normalized(payload("incident_inserted")["record"])

    assert event.change == TicketChange.CREATED


def test_a_record_without_its_number_names_the_missing_field() -> None:
    body = payload("incident_inserted")
    del body["record"]["number"]

    with pytest.raises(MissingField) as raised:
        normalized(body)

    assert raised.value.path == "record.number"


def test_a_table_api_result_without_a_number_names_the_record_in_the_list() -> None:
    body = payload("table_api_display_all")
    del body["result"][0]["number"]

    with pytest.raises(MissingField) as raised:
        normalized(body)

    assert raised.value.path == "result.0.number"


def test_a_deletion_is_ignored() -> None:
    with pytest.raises(IgnoredEvent) as raised:
        normalized(payload("incident_deleted"))

    assert raised.value.event_type == "delete"


def test_a_table_api_answer_with_several_records_gives_one_snapshot_each() -> None:
    record = payload("incident_inserted")["record"]
    other = {**record, "number": "INC0010043", "sys_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90"}

    events = servicenow.normalize({"result": [record, other]}, mapping=MAPPING, received_at=RECEIVED_AT)

    assert [e.ticket_key for e in events] == ["servicenow:INC0010042", "servicenow:INC0010043"]


# Generation is cheap; the health check only trips when a shared machine is busy.
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(sorted(ZONED)),
)
def test_a_servicenow_local_time_is_the_same_moment_in_utc(moment: datetime, zone: str) -> None:
    mapping = ZONED[zone]
    local = moment.replace(microsecond=0).astimezone(mapping.zone).replace(tzinfo=None)
    # In the hour a clock falls back, a local time names two moments; ServiceNow's text cannot say which.
    assume(local.replace(tzinfo=mapping.zone).astimezone(UTC) == moment.replace(microsecond=0))
    body = payload("incident_priority_changed")
    body["record"]["sys_updated_on"] = local.strftime("%Y-%m-%d %H:%M:%S")

    occurred_at = normalized(body, mapping).occurred_at

    assert occurred_at == moment.replace(microsecond=0)
    assert occurred_at.tzinfo is UTC


def normalized_or_refused(
    body: dict[str, Any],
) -> list[TicketChanged] | MissingField | InvalidField | IgnoredEvent:
    try:
        return servicenow.normalize(body, mapping=MAPPING, received_at=RECEIVED_AT)
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
