"""Prometheus Alertmanager webhook notifications become one outage signal per alert."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bothways.events import OutageEnded, OutageImpact, OutageSignal, OutageStarted
from services.ingest.mapping import AlertmanagerMapping, MappingError, load_mapping
from services.ingest.normalizers import (
    MAX_LABEL_VALUE,
    MAX_LABELS,
    NORMALIZERS,
    IgnoredEvent,
    InvalidField,
    MissingField,
    alertmanager,
)

pytestmark = pytest.mark.unit

PAYLOADS = Path(__file__).parent / "payloads" / "alertmanager"
RECEIVED_AT = datetime(2024, 6, 5, 12, 0, tzinfo=UTC)
MAPPING = load_mapping().alertmanager
FIXTURES = sorted(path.stem for path in PAYLOADS.glob("*.json"))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def payload(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def signals(
    body: dict[str, Any], mapping: AlertmanagerMapping = MAPPING, received_at: datetime = RECEIVED_AT
) -> list[OutageSignal]:
    return alertmanager.normalize(body, mapping=mapping, received_at=received_at)


def normalized(body: dict[str, Any], mapping: AlertmanagerMapping = MAPPING) -> OutageSignal:
    (event,) = signals(body, mapping)
    return event


def alert(body: dict[str, Any], index: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = body["alerts"][index]
    return found


def labelled(name: str, **labels: str | None) -> dict[str, Any]:
    """A fixture whose first alert has these labels set (or removed, for None)."""
    body = payload(name)
    for label, value in labels.items():
        if value is None:
            del alert(body)["labels"][label]
        else:
            alert(body)["labels"][label] = value
    return body


def mapping_with(**overrides: Any) -> AlertmanagerMapping:
    return load_mapping(None, {"alertmanager": overrides}).alertmanager


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_the_routing_table_sends_alertmanager_payloads_to_the_alertmanager_normaliser() -> None:
    assert NORMALIZERS["alertmanager"] is alertmanager.normalize


def test_a_firing_alert_starts_an_outage_of_the_service_its_label_names_when_it_started() -> None:
    event = normalized(payload("firing"))

    assert isinstance(event, OutageStarted)
    assert event.signal_key == "alertmanager:1a30ba71cca2921f"
    assert event.source == "alertmanager"
    assert (event.business_service, event.service_reference) == ("webshop", "webshop")
    assert event.key() == "webshop"
    assert event.started_at == event.occurred_at == at("2024-06-03T09:12:45.828Z")
    assert event.title == "Checkout page unreachable"
    assert (event.impact, event.raw_severity) == (OutageImpact.MAJOR, "critical")
    assert event.planned is False


def test_the_zero_time_alertmanager_sends_as_the_end_of_a_firing_alert_is_no_end() -> None:
    assert normalized(payload("firing")).ended_at is None


def test_a_resolved_alert_ends_the_outage_when_the_alert_ended() -> None:
    event = normalized(payload("resolved"))

    assert isinstance(event, OutageEnded)
    assert event.signal_key == "alertmanager:1a30ba71cca2921f"
    assert event.started_at == at("2024-06-03T09:12:45.828Z")
    assert event.ended_at == event.occurred_at == at("2024-06-03T09:31:15.828Z")


def test_a_resolved_alert_with_the_zero_time_as_its_end_names_the_missing_field() -> None:
    body = payload("resolved")
    alert(body)["endsAt"] = "0001-01-01T00:00:00Z"

    with pytest.raises(MissingField) as raised:
        normalized(body)

    assert raised.value.path == "alerts.0.endsAt"


def test_a_repeated_notification_yields_identical_events_and_the_same_delivery_id() -> None:
    first, repeat = payload("firing"), payload("firing")

    later = RECEIVED_AT + timedelta(hours=4)
    assert signals(repeat, received_at=later) == signals(first)
    assert alertmanager.delivery_id(repeat) == alertmanager.delivery_id(first)


def test_a_moving_expiry_estimate_on_a_firing_alert_changes_neither_events_nor_delivery_id() -> None:
    first, resend = payload("firing"), payload("firing")
    alert(first)["endsAt"] = "2024-06-03T09:16:45.828Z"
    alert(resend)["endsAt"] = "2024-06-03T09:21:45.828Z"

    assert signals(resend) == signals(first) == signals(payload("firing"))
    assert alertmanager.delivery_id(resend) == alertmanager.delivery_id(first)


def test_the_same_alerts_listed_in_another_order_or_group_keep_their_delivery_id_and_event_order() -> None:
    body = payload("firing_and_resolved")
    regrouped = copy.deepcopy(body)
    regrouped["alerts"].reverse()
    regrouped.update(groupKey='{}:{business_service="webshop"}', receiver="bothways-eu")

    assert alertmanager.delivery_id(regrouped) == alertmanager.delivery_id(body)
    assert signals(regrouped) == signals(body)


def test_an_alert_that_resolves_or_joins_the_group_makes_a_new_delivery() -> None:
    firing = alertmanager.delivery_id(payload("firing"))

    assert firing.startswith("alerts:sha256:")
    assert alertmanager.delivery_id(payload("resolved")) != firing
    assert alertmanager.delivery_id(payload("firing_and_resolved")) != firing


def test_a_group_with_a_firing_and_a_resolved_alert_yields_one_signal_for_each() -> None:
    resolved, firing = signals(payload("firing_and_resolved"))

    assert isinstance(resolved, OutageEnded)
    assert resolved.signal_key == "alertmanager:0c8e2f6b4d1a9e37"
    assert resolved.ended_at == at("2024-06-03T09:20:00Z")
    assert (resolved.impact, resolved.raw_severity) == (OutageImpact.PARTIAL, "warning")
    assert isinstance(firing, OutageStarted)
    assert firing.signal_key == "alertmanager:1a30ba71cca2921f"
    assert firing.ended_at is None


@pytest.mark.parametrize(
    ("severity", "impact"),
    [
        ("critical", OutageImpact.MAJOR),
        ("CRITICAL", OutageImpact.MAJOR),
        ("warning", OutageImpact.PARTIAL),
        ("info", OutageImpact.DEGRADED),
        ("page-the-world", OutageImpact.MAJOR),
        (None, OutageImpact.MAJOR),
    ],
)
def test_the_severity_label_decides_the_impact(severity: str | None, impact: OutageImpact) -> None:
    event = normalized(labelled("firing", severity=severity))

    assert (event.impact, event.raw_severity) == (impact, severity)


def test_a_site_reads_the_impact_from_its_own_severity_label_and_values() -> None:
    mapping = mapping_with(
        severity_labels=["priority", "severity"], severities={"p2": "partial"}, default_impact="degraded"
    )

    assert normalized(labelled("firing", priority="P2"), mapping).impact is OutageImpact.PARTIAL
    assert normalized(labelled("firing", severity=None), mapping).impact is OutageImpact.DEGRADED
    assert normalized(payload("firing"), mapping).raw_severity == "critical"


@pytest.mark.parametrize(
    ("value", "planned"), [("true", True), ("True", True), ("1", True), ("false", False), ("", False)]
)
def test_the_maintenance_label_marks_an_alert_as_planned(value: str, planned: bool) -> None:
    assert normalized(labelled("maintenance", maintenance=value)).planned is planned


def test_planned_work_is_still_an_outage_signal_of_its_service() -> None:
    event = normalized(payload("maintenance"))

    assert isinstance(event, OutageStarted)
    assert event.planned is True
    assert (event.business_service, event.impact) == ("erp", OutageImpact.PARTIAL)


def test_a_site_names_its_own_planned_label() -> None:
    mapping = mapping_with(planned_labels=["change_window"])

    assert normalized(labelled("firing", change_window="yes"), mapping).planned is True
    assert normalized(payload("maintenance"), mapping).planned is False


def test_the_service_label_stands_in_when_the_business_service_label_is_absent() -> None:
    event = normalized(payload("maintenance"))

    assert (event.business_service, event.service_reference) == ("erp", "erp")


def test_the_business_service_label_wins_over_the_service_label() -> None:
    event = normalized(labelled("firing", service="checkout-api"))

    assert event.business_service == "webshop"


def test_a_site_translates_label_values_into_business_service_ids() -> None:
    mapping = mapping_with(services={"ERP": "enterprise-resource-planning"})

    event = normalized(payload("maintenance"), mapping)

    assert (event.business_service, event.service_reference) == ("enterprise-resource-planning", "erp")


def test_with_listed_services_only_an_unlisted_value_stays_unmapped() -> None:
    mapping = mapping_with(services={"erp": "enterprise-resource-planning"}, listed_services_only=True)

    event = normalized(payload("firing"), mapping)

    assert (event.business_service, event.service_reference) == (None, "webshop")
    assert event.key() == "unmapped:webshop"


def test_an_alert_naming_no_service_is_kept_as_unmapped_under_its_alert_name() -> None:
    event = normalized(payload("no_service_label"))

    assert event.business_service is None
    assert event.service_reference == "NodeFilesystemAlmostFull"
    assert event.key() == "unmapped:NodeFilesystemAlmostFull"
    assert event.title == "NodeFilesystemAlmostFull"
    assert event.impact is OutageImpact.DEGRADED


def test_an_alert_without_labels_is_kept_as_unmapped_under_its_fingerprint() -> None:
    body = payload("firing")
    del alert(body)["labels"]

    event = normalized(body)

    assert event.key() == "unmapped:1a30ba71cca2921f"
    assert event.labels == {}


def test_the_alert_labels_are_copied_as_strings_and_bounded() -> None:
    body = payload("firing")
    labels = alert(body)["labels"]
    labels.update({f"zz_extra_{n:03}": "x" for n in range(MAX_LABELS)})
    labels.update(count=3, nested={"a": "b"}, description="y" * (MAX_LABEL_VALUE + 50))

    copied = normalized(body).labels

    assert len(copied) == MAX_LABELS
    assert copied["alertname"] == "CheckoutProbeFailure"
    assert copied["description"] == "y" * MAX_LABEL_VALUE
    assert f"zz_extra_{MAX_LABELS - 1:03}" not in copied
    assert "count" not in copied
    assert "nested" not in copied


def test_an_alert_without_its_fingerprint_names_the_missing_field() -> None:
    body = payload("firing_and_resolved")
    del alert(body, 1)["fingerprint"]

    with pytest.raises(MissingField) as raised:
        signals(body)

    assert raised.value.path == "alerts.1.fingerprint"


def test_an_alert_without_its_start_names_the_missing_field() -> None:
    body = payload("firing")
    alert(body)["startsAt"] = "0001-01-01T00:00:00Z"

    with pytest.raises(MissingField) as raised:
        normalized(body)

    assert raised.value.path == "alerts.0.startsAt"


def test_an_alert_status_other_than_firing_or_resolved_is_refused_naming_the_field() -> None:
    body = payload("firing")
    alert(body)["status"] = "suppressed"

    with pytest.raises(InvalidField) as raised:
        normalized(body)

    assert raised.value.path == "alerts.0.status"


def test_an_alert_ending_before_it_started_is_refused_naming_the_field() -> None:
    body = payload("resolved")
    alert(body)["endsAt"] = "2024-06-03T09:00:00Z"

    with pytest.raises(InvalidField) as raised:
        normalized(body)

    assert raised.value.path == "alerts.0.endsAt"


def test_a_body_without_alerts_names_the_missing_field() -> None:
    with pytest.raises(MissingField) as raised:
        signals({"version": "4", "status": "firing"})

    assert raised.value.path == "alerts"


def test_a_notification_listing_no_alerts_is_ignored() -> None:
    body = payload("firing")
    body["alerts"] = []

    with pytest.raises(IgnoredEvent) as raised:
        signals(body)

    assert raised.value.event_type == "firing"


def test_a_misspelt_alertmanager_setting_or_impact_names_the_bad_key() -> None:
    with pytest.raises(MappingError, match=r"alertmanager\.severity_label"):
        load_mapping(None, {"alertmanager": {"severity_label": "priority"}})
    with pytest.raises(MappingError, match=r"alertmanager\.severities\.critical"):
        load_mapping(None, {"alertmanager": {"severities": {"critical": "down"}}})


def normalized_or_refused(
    body: dict[str, Any],
) -> list[OutageSignal] | MissingField | InvalidField | IgnoredEvent:
    try:
        return signals(body)
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

    assert alertmanager.delivery_id(body) == alertmanager.delivery_id(copy.deepcopy(body))
    if isinstance(result, IgnoredEvent):
        assert result.event_type
    elif isinstance(result, MissingField | InvalidField):
        assert result.field
    else:
        assert all(event.occurred_at.tzinfo is UTC and event.started_at.tzinfo is UTC for event in result)
