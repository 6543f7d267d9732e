"""Jira Service Management webhooks become canonical ticket snapshots."""

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
from services.ingest.normalizers import NORMALIZERS, IgnoredEvent, InvalidField, MissingField, jira

pytestmark = pytest.mark.unit

PAYLOADS = Path(__file__).parent / "payloads" / "jira"
RECEIVED_AT = datetime(2024, 6, 5, 12, 0, tzinfo=UTC)
MAPPING = load_mapping().jira
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
    (event,) = jira.normalize(body, mapping=mapping, received_at=RECEIVED_AT)
    return event


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_routing_table_sends_jira_payloads_to_the_jira_normaliser() -> None:
    assert NORMALIZERS["jira"] is jira.normalize


def test_a_created_issue_is_a_new_incident_keyed_by_its_issue_key() -> None:
    event = normalized(payload("issue_created"))

    assert event.ticket_key == "jira:SUP-42"
    assert (event.source, event.external_id) == ("jira", "SUP-42")
    assert event.change == TicketChange.CREATED
    assert event.kind is TicketKind.INCIDENT
    assert (event.status, event.status_category) == ("Open", StatusCategory.NEW)
    assert (event.raw_priority, event.priority) == ("High", Priority.P2)
    assert event.title == "VPN disconnects every 10 minutes"
    assert event.business_service == "Remote Access"
    assert event.requester == Person(
        id="qm:8c2e7a1d-5b0f-4c1e-9d6a-3f0b2a1c9e77:5f1d2c3b-aa10-4c55-9b1e-0d9f8e7c6b5a",
        email="dana.whitfield@globex.example",
        name="Dana Whitfield",
    )
    assert event.created_at == at("2024-06-03T09:05:12.300")
    assert event.occurred_at == at("2024-06-03T09:05:12.345")
    assert event.first_public_agent_response_at is None
    assert event.resolved_at is None


def test_waiting_for_customer_is_a_status_change_to_pending() -> None:
    event = normalized(payload("issue_updated_waiting_for_customer"))

    assert event.change == TicketChange.STATUS_CHANGED
    assert (event.status, event.status_category) == ("Waiting for customer", StatusCategory.PENDING)
    assert event.assignee == "Sam Okafor"


def test_resolving_sets_resolved_at_from_the_resolution_date() -> None:
    event = normalized(payload("issue_updated_resolved"))

    assert event.change == TicketChange.STATUS_CHANGED
    assert event.status_category is StatusCategory.RESOLVED
    assert event.resolved_at == at("2024-06-03T11:15:00")
    assert event.closed_at is None


def test_a_reopen_is_a_status_change_back_to_open_that_counts_no_reopen_by_itself() -> None:
    event = normalized(payload("issue_updated_reopened"))

    assert event.change == TicketChange.STATUS_CHANGED
    assert (event.status, event.status_category) == ("Reopened", StatusCategory.OPEN)
    assert event.reopen_count == 0
    assert event.resolved_at is None


def test_a_priority_change_maps_highest_to_p1() -> None:
    event = normalized(payload("issue_updated_priority"))

    assert event.change == TicketChange.PRIORITY_CHANGED
    assert (event.raw_priority, event.priority) == ("Highest", Priority.P1)


def test_an_assignee_in_the_changelog_is_an_assignment() -> None:
    body = payload("issue_updated_priority")
    body["changelog"]["items"] = [
        {"field": "assignee", "fieldtype": "jira", "from": None, "to": "5b10ac8d82e05b22cc7d4ef5"}
    ]

    assert normalized(body).change == TicketChange.ASSIGNED


def test_a_public_agent_comment_sets_the_first_response() -> None:
    event = normalized(payload("comment_created_public_agent"))

    assert event.change == TicketChange.COMMENTED_PUBLIC_AGENT
    assert event.first_public_agent_response_at == at("2024-06-03T09:31:40.210")


def test_a_customer_comment_does_not_set_the_first_response() -> None:
    event = normalized(payload("comment_created_customer"))

    assert event.change == TicketChange.COMMENTED_REQUESTER
    assert event.first_public_agent_response_at is None


def test_an_internal_note_does_not_set_the_first_response() -> None:
    event = normalized(payload("comment_created_internal_note"))

    assert event.change == TicketChange.COMMENTED_PRIVATE_AGENT
    assert event.first_public_agent_response_at is None


def test_a_comment_event_with_jiras_reduced_issue_says_the_snapshot_is_incomplete() -> None:
    event = normalized(payload("comment_created_public_agent"))

    assert event.custom == {"incomplete": True}
    assert event.created_at == at("2024-06-03T09:31:40.210")
    assert event.requester is None


def test_an_issue_commented_update_is_the_agent_comment_with_the_full_issue() -> None:
    event = normalized(payload("issue_commented_public_agent"))

    assert event.change == TicketChange.COMMENTED_PUBLIC_AGENT
    assert event.first_public_agent_response_at == at("2024-06-03T09:31:40.210")
    assert event.created_at == at("2024-06-03T09:05:12.300")
    assert "incomplete" not in event.custom


def test_an_edited_comment_is_an_update_not_a_new_comment() -> None:
    body = payload("issue_commented_public_agent")
    body["issue_event_type_name"] = "issue_comment_edited"

    event = normalized(body)

    assert event.change == TicketChange.UPDATED
    assert event.first_public_agent_response_at == at("2024-06-03T09:31:40.210")


def test_the_first_response_is_the_earliest_public_agent_comment_in_the_issue_history() -> None:
    event = normalized(payload("issue_updated_waiting_for_customer"))

    assert event.first_public_agent_response_at == at("2024-06-03T09:31:40.210")


def test_a_comment_by_the_reporter_is_the_requester_even_from_a_licensed_account() -> None:
    body = payload("issue_commented_public_agent")
    reporter = body["issue"]["fields"]["reporter"]
    body["comment"]["author"] = {**reporter, "accountType": "atlassian"}
    body["issue"]["fields"]["comment"]["comments"] = []

    event = normalized(body)

    assert event.change == TicketChange.COMMENTED_REQUESTER
    assert event.first_public_agent_response_at is None


def test_an_automation_comment_is_neither_a_response_nor_the_customer_speaking() -> None:
    body = payload("comment_created_public_agent")
    body["comment"]["author"] = {
        "accountId": "557058:f58131cb",
        "accountType": "app",
        "displayName": "Automation",
    }

    event = normalized(body)

    assert event.change == TicketChange.UPDATED
    assert event.first_public_agent_response_at is None


def test_a_comment_restricted_to_a_role_is_internal() -> None:
    body = payload("comment_created_public_agent")
    del body["comment"]["jsdPublic"]
    body["comment"]["visibility"] = {"type": "role", "value": "Service Desk Team"}

    assert normalized(body).change == TicketChange.COMMENTED_PRIVATE_AGENT


def test_the_sla_first_response_field_wins_when_the_mapping_names_it() -> None:
    mapping = load_mapping(None, {"jira": {"paths": {"first_response": "fields.customfield_10030"}}}).jira
    body = payload("issue_updated_priority")
    body["issue"]["fields"]["customfield_10030"] = {
        "id": "1",
        "name": "Time to first response",
        "completedCycles": [
            {
                "startTime": {"iso8601": "2024-06-03T11:05:12+0200", "epochMillis": 1717405512000},
                "stopTime": {"iso8601": "2024-06-03T11:25:00+0200", "epochMillis": 1717406700000},
                "breached": False,
            }
        ],
    }

    assert normalized(body, mapping).first_public_agent_response_at == at("2024-06-03T09:25:00")


def test_custom_fields_can_hold_the_business_service_and_the_organisation() -> None:
    mapping = load_mapping(
        None,
        {
            "jira": {
                "paths": {
                    "business_service": "fields.customfield_10050",
                    "organization": "fields.customfield_10002",
                    "custom": {"request_type": "fields.customfield_10010.requestType.name"},
                }
            }
        },
    ).jira

    event = normalized(payload("issue_created"), mapping)

    assert event.business_service == "Corporate VPN"
    assert event.organization == "Globex Corporation"
    assert event.custom == {"request_type": "Report a system problem"}


def test_a_mapped_reopen_count_field_is_used_as_given() -> None:
    mapping = load_mapping(None, {"jira": {"paths": {"reopen_count": "fields.customfield_10060"}}}).jira
    body = payload("issue_updated_reopened")
    body["issue"]["fields"]["customfield_10060"] = 1.0

    assert normalized(body, mapping).reopen_count == 1


def test_an_unmapped_status_name_falls_back_on_jiras_status_category() -> None:
    body = payload("issue_updated_waiting_for_customer")
    body["issue"]["fields"]["status"]["name"] = "Awaiting vendor"

    assert normalized(body).status_category is StatusCategory.OPEN


def test_a_service_request_issue_type_is_a_request() -> None:
    body = payload("issue_created")
    body["issue"]["fields"]["issuetype"]["name"] = "Service Request"

    assert normalized(body).kind is TicketKind.REQUEST


def test_offsets_are_converted_to_utc() -> None:
    body = payload("issue_created")
    body["issue"]["fields"]["created"] = "2024-06-03T11:05:12.300+0200"

    created_at = normalized(body).created_at

    assert created_at == at("2024-06-03T09:05:12.300")
    assert created_at.utcoffset() is not None
    assert created_at.tzinfo is UTC


def test_without_a_timestamp_the_issue_update_time_is_when_it_happened() -> None:
    body = payload("issue_updated_priority")
    del body["timestamp"]

    assert normalized(body).occurred_at == at("2024-06-03T09:50:00")


def test_without_any_timestamp_the_receipt_time_is_when_it_happened() -> None:
    body = payload("issue_updated_priority")
    del body["timestamp"]
    del body["issue"]["fields"]["updated"]

    assert normalized(body).occurred_at == RECEIVED_AT


def test_a_payload_without_the_issue_key_names_the_missing_field() -> None:
    body = payload("issue_created")
    del body["issue"]["key"]

    with pytest.raises(MissingField) as raised:
        normalized(body)

    assert raised.value.path == "issue.key"
    assert raised.value.field == "issue.key"


def test_a_payload_without_the_issue_names_the_missing_field() -> None:
    body = payload("issue_created")
    del body["issue"]

    with pytest.raises(MissingField, match="'issue'"):
        normalized(body)


def test_a_deleted_issue_is_ignored() -> None:
    with pytest.raises(IgnoredEvent) as raised:
        normalized(payload("issue_deleted"))

    assert raised.value.event_type == "jira:issue_deleted"


def test_an_unknown_webhook_event_is_ignored() -> None:
    body = {"timestamp": 1717405512345, "webhookEvent": "sprint_started", "sprint": {"id": 3}}

    with pytest.raises(IgnoredEvent, match="sprint_started"):
        normalized(body)


def test_a_status_the_mapping_cannot_place_is_refused_naming_the_field() -> None:
    body = payload("issue_created")
    body["issue"]["fields"]["status"] = {"name": "Triage", "statusCategory": {"key": "undefined"}}

    with pytest.raises(InvalidField) as raised:
        normalized(body)

    assert raised.value.path == "issue.fields.status.name"
    assert "Triage" in str(raised.value)


def normalized_or_refused(
    body: dict[str, Any],
) -> list[TicketChanged] | MissingField | InvalidField | IgnoredEvent:
    try:
        return jira.normalize(body, mapping=MAPPING, received_at=RECEIVED_AT)
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
