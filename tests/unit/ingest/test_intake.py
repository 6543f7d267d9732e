"""A delivery's events: ids derived from the delivery and the content, stored as they will travel."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bothways.events import Envelope, decode_record, encode_data
from bothways.outbox import outbox_columns
from services.ingest import generic
from services.ingest.intake import Delivery, envelopes_for
from tests.support import ticket_body

pytestmark = pytest.mark.unit

RECEIVED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def delivery(external_id: str = "42", *, delivery_id: str = "msg_1", **fields: object) -> Delivery:
    body = json.dumps(ticket_body(external_id, **fields)).encode()
    return Delivery("generic", delivery_id, RECEIVED, {"content-type": "application/json"}, body)


def envelopes(d: Delivery) -> list[Envelope]:
    return envelopes_for(d, generic.normalize(json.loads(d.body)))


def test_event_ids_are_those_stored_deliveries_already_have() -> None:
    """Pinned (computed before ingest encoded each event once): a replay of a stored delivery must
    yield the ids it yielded when it arrived, or downstream would take its events as new."""
    [envelope] = envelopes(delivery(title="Printer on fire", created_at="2026-03-02T09:00:00Z"))
    assert envelope.id == "86650d6d-0bcf-57d6-bf8c-4f91279465a9"


def test_a_redelivery_repeats_the_ids_and_other_content_changes_them() -> None:
    first, again = envelopes(delivery()), envelopes(delivery())
    changed = envelopes(delivery(title="another title"))
    other_delivery = envelopes(delivery(delivery_id="msg_2"))
    assert [e.id for e in first] == [e.id for e in again]
    assert first[0].id not in {changed[0].id, other_delivery[0].id}


def test_the_outbox_columns_decode_to_the_envelope() -> None:
    [envelope] = envelopes(delivery())
    event_ids, topics, keys, values, headers = outbox_columns([envelope])
    assert values == [encode_data(envelope.data)]
    header_pairs = [(name, value.encode()) for name, value in json.loads(headers[0])]
    assert header_pairs == envelope.headers()
    assert decode_record(header_pairs, values[0]) == envelope
    assert (event_ids, topics, keys) == ([envelope.id], [envelope.topic.value], [envelope.key_bytes()])
