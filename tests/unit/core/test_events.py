"""The CloudEvents envelope: what goes on the wire comes back the same, and garbage is refused with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bothways.events import (
    EVENT_TYPES,
    Envelope,
    StatusCategory,
    TicketChanged,
    UndecodableRecord,
    decode_record,
    deterministic_id,
    envelope_for,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def ticket(**fields: object) -> TicketChanged:
    base: dict[str, object] = {
        "ticket_key": "jira:SUP-42",
        "source": "jira",
        "external_id": "SUP-42",
        "occurred_at": NOW,
        "created_at": NOW,
        "status": "Waiting for customer",
        "status_category": "pending",
    }
    return TicketChanged.model_validate(base | fields)


def test_an_envelope_survives_the_round_trip_through_headers_and_value() -> None:
    envelope = envelope_for(ticket(priority="P2"), event_id="e-1", source="/bothways/ingest/jira")
    decoded = decode_record(envelope.headers(), envelope.value_bytes())
    assert decoded == envelope
    assert decoded.data.status_category is StatusCategory.PENDING


def test_headers_follow_the_cloudevents_kafka_binary_mode() -> None:
    envelope = envelope_for(ticket(), event_id="e-1", source="/bothways/ingest/jira")
    headers = dict(envelope.headers())
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"io.bothways.ticket.changed"
    assert headers["ce_subject"] == b"jira:SUP-42"
    assert headers["ce_time"] == NOW.isoformat().encode()
    assert headers["content-type"] == b"application/json"
    assert envelope.key_bytes() == b"jira:SUP-42"


def test_unknown_fields_are_kept_for_forward_compatibility() -> None:
    envelope = envelope_for(ticket(), event_id="e-1", source="s")
    value = json.loads(envelope.value_bytes()) | {"sentiment": "grumpy"}
    decoded = decode_record(envelope.headers(), json.dumps(value).encode())
    assert decoded.data.model_extra == {"sentiment": "grumpy"}
    assert json.loads(decoded.value_bytes())["sentiment"] == "grumpy"


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda h, v: ([x for x in h if x[0] != "ce_id"], v), "missing CloudEvents header(s): ce_id"),
        (lambda h, v: (h, b"{not json"), "value is not JSON"),
        (lambda h, v: (h, b"\xff\xfe"), "value is not JSON"),
        (lambda h, v: (h, None), "record has no value"),
        (lambda h, v: (h, json.dumps({"ticket_key": "x"}).encode()), "invalid io.bothways.ticket.changed"),
        (
            lambda h, v: ([(k, b"io.bothways.nope" if k == "ce_type" else x) for k, x in h], v),
            "unknown ce_type 'io.bothways.nope'",
        ),
        (lambda h, v: ([(k, b"0.3" if k == "ce_specversion" else x) for k, x in h], v), "unsupported"),
    ],
)
def test_a_record_that_is_not_an_event_is_refused_with_the_reason(mangle, reason) -> None:
    envelope = envelope_for(ticket(), event_id="e-1", source="s")
    headers, value = mangle(envelope.headers(), envelope.value_bytes())
    with pytest.raises(UndecodableRecord, match=reason.replace("(", r"\(").replace(")", r"\)")):
        decode_record(headers, value)


def test_invalid_event_errors_name_the_field() -> None:
    envelope = envelope_for(ticket(), event_id="e-1", source="s")
    value = json.loads(envelope.value_bytes()) | {"status_category": "sleeping"}
    with pytest.raises(UndecodableRecord, match="status_category"):
        decode_record(envelope.headers(), json.dumps(value).encode())


def test_naive_timestamps_are_rejected_because_every_instant_is_utc_aware() -> None:
    with pytest.raises(ValueError, match="occurred_at"):
        ticket(occurred_at="2026-11-02T09:30:00")


def test_event_ids_derived_from_the_same_input_are_the_same() -> None:
    assert deterministic_id("jira", "delivery-1", "0") == deterministic_id("jira", "delivery-1", "0")
    assert deterministic_id("jira", "delivery-1", "0") != deterministic_id("jira", "delivery-1", "1")
    # The separator keeps ("a", "bc") and ("ab", "c") apart.
    assert deterministic_id("a", "bc") != deterministic_id("ab", "c")


def test_the_envelope_time_is_when_the_fact_happened() -> None:
    envelope = envelope_for(ticket(), event_id="e", source="s")
    assert isinstance(envelope, Envelope)
    assert envelope.time == NOW


# One valid payload per event family; the round trip below covers every registered type.
_SLA = {
    "ticket_key": "jira:SUP-42",
    "timer_key": "resolution/1/P2/2026-11-02T09:30:00Z",
    "metric": "resolution",
    "cycle": 1,
    "priority": "P2",
    "policy": "standard",
    "policy_version": 1,
    "calendar": "office-berlin",
    "state": "breached",
    "occurred_at": NOW,
    "started_at": NOW,
    "due_at": NOW,
    "target_business_seconds": 3600,
    "business_elapsed_seconds": 3601,
    "remaining_business_seconds": 0,
    "percent_elapsed": 100.03,
    "threshold_percent": 75,
}
_SURVEY = {
    "invitation_id": "inv-1",
    "survey_kind": "csat",
    "occurred_at": NOW,
    "ticket_key": "jira:SUP-42",
    "send_at": NOW,
    "reason": "cooldown",
    "channel": "email",
    "attempts": 3,
    "error": "connection refused",
    "score": 2,
    "scale": "1-5",
    "followup_id": "f-1",
    "due_at": NOW,
    "outcome": "resolved",
}
_AVAILABILITY = {
    "business_service": "payments",
    "period": "2026-10",
    "period_start": NOW,
    "period_end": NOW,
    "occurred_at": NOW,
    "objective_percent": 99.9,
    "agreed_seconds": 2678400,
    "downtime_seconds": 600,
    "error_budget_seconds": 2678.4,
    "budget_remaining_seconds": 2078.4,
    "outages": 1,
}
# Keys of the objective-at-risk event ride along: the round trip keeps only a model's own fields.
_AVAILABILITY |= {
    "alert": "fast-burn",
    "severity": "page",
    "threshold": 14.4,
    "long_window_seconds": 3600,
    "short_window_seconds": 300,
    "long_burn_rate": 20.5,
    "short_burn_rate": 60.0,
}
_SERVICE_OUTAGE = {
    "business_service": "payments",
    "outage_id": "payments/1",
    "occurred_at": NOW,
    "started_at": NOW,
    "restored_at": NOW,
    "status": "restored",
    "impact": "partial",
    "duration_seconds": 600,
    "signals": ["alertmanager:abc", "ticket:jira:SUP-42"],
}
_OUTAGE = {
    "signal_key": "alertmanager:abc",
    "source": "alertmanager",
    "service_reference": "payments",
    "occurred_at": NOW,
    "started_at": NOW,
}


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES), ids=str)
def test_every_registered_event_type_survives_the_round_trip(event_type: str) -> None:
    model = EVENT_TYPES[event_type]
    families = {
        "ticket": {},
        "sla": _SLA,
        "survey": _SURVEY,
        "followup": _SURVEY,
        "service_outage": _SERVICE_OUTAGE,
    }
    fields = families.get(
        event_type.split(".")[2], _AVAILABILITY if "availability" in event_type else _OUTAGE
    )
    own = {name: value for name, value in fields.items() if name in model.model_fields}
    event = ticket() if model is TicketChanged else model.model_validate(own)
    envelope = envelope_for(event, event_id="e-1", source="/bothways/test")
    decoded = decode_record(envelope.headers(), envelope.value_bytes())
    assert type(decoded.data) is model
    assert decoded == envelope
    assert decoded.topic == model.topic
