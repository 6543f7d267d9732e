"""Each platform's webhook, authenticated its own way, from signed HTTP request to event on the topic."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bothways import db
from bothways.events import Topic, decode_record
from bothways.signing import signed_headers
from tests.support import GENERIC_SECRET, read_topic

pytestmark = pytest.mark.integration

PAYLOADS = Path(__file__).parent.parent / "unit" / "ingest" / "payloads"


def payload(source: str, name: str) -> bytes:
    return (PAYLOADS / source / f"{name}.json").read_bytes()


def jira_headers(
    body: bytes, secret: str = "jira-secret", delivery: str = "jira-delivery-1"
) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-hub-signature": f"sha256={digest}", "x-atlassian-webhook-identifier": delivery}


def zendesk_headers(
    body: bytes, *, at: datetime | None = None, secret: str = "zendesk-secret"
) -> dict[str, str]:
    stamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = base64.b64encode(hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest())
    return {"x-zendesk-webhook-signature": signature.decode(), "x-zendesk-webhook-signature-timestamp": stamp}


def servicenow_signed(body: bytes) -> dict[str, str]:
    return signed_headers(
        GENERIC_SECRET, msg_id=f"snow-{time.time_ns()}", timestamp=int(time.time()), body=body
    )


def basic(credentials: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


ACCEPTED = [
    ("jira", payload("jira", "issue_created"), jira_headers),
    ("zendesk", payload("zendesk", "ticket_created"), lambda b: zendesk_headers(b)),
    ("servicenow", payload("servicenow", "incident_inserted"), servicenow_signed),
    (
        "servicenow",
        payload("servicenow", "incident_resolved"),
        lambda b: {"authorization": "Bearer snow-token"},
    ),
    (
        "freshservice",
        payload("freshservice", "ticket_created"),
        lambda b: {"authorization": "Bearer fresh-token"},
    ),
    ("freshservice", payload("freshservice", "ticket_resolved"), lambda b: basic("fresh:basic-password")),
]


async def receipts(database_url: str) -> list[dict]:
    pool = await db.create_pool(database_url, schema="ingest")
    try:
        return [dict(r) for r in await pool.fetch("SELECT source, outcome, event_ids, note FROM receipt")]
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("source", "body", "auth"), ACCEPTED, ids=[f"{a[0]}-{i}" for i, a in enumerate(ACCEPTED)]
)
async def test_an_authentic_platform_webhook_becomes_a_ticket_event_on_the_topic(
    run_service, settings_for, source, body, auth
) -> None:
    settings = settings_for("ingest")
    async with run_service("ingest") as ingest:
        response = await ingest.post(
            f"/webhooks/{source}", content=body, headers={"content-type": "application/json", **auth(body)}
        )
        assert response.status_code == 202, response.text
        [event_id] = response.json()["event_ids"]
        [record] = await read_topic(settings.kafka_bootstrap_servers, settings.topic(Topic.TICKETS), count=1)
    envelope = decode_record(record.headers, record.value)
    assert envelope.id == event_id
    assert envelope.data.source == source
    assert envelope.subject.startswith(f"{source}:")


REFUSED = [
    ("jira", payload("jira", "issue_created"), lambda b: jira_headers(b, secret="not-the-secret")),
    ("jira", payload("jira", "issue_created"), lambda b: {}),
    ("zendesk", payload("zendesk", "ticket_created"), lambda b: zendesk_headers(b, secret="wrong")),
    (
        "zendesk",
        payload("zendesk", "ticket_created"),
        lambda b: zendesk_headers(b, at=datetime.now(UTC) - timedelta(minutes=6)),
    ),
    ("servicenow", payload("servicenow", "incident_inserted"), lambda b: {"authorization": "Bearer guess"}),
    ("freshservice", payload("freshservice", "ticket_created"), lambda b: basic("fresh:wrong")),
    ("pagerduty", b"{}", lambda b: {"x-pagerduty-signature": "v1=00"}),
    ("alertmanager", b"{}", lambda b: {"authorization": "Bearer nope"}),
]


@pytest.mark.parametrize(
    ("source", "body", "auth"),
    REFUSED,
    ids=["jira-wrong", "jira-unsigned", "zendesk-wrong", "zendesk-replayed", "snow", "fresh", "pd", "am"],
)
async def test_a_webhook_that_is_not_authentic_is_401_and_nothing_is_stored(
    run_service, database_url, source, body, auth
) -> None:
    async with run_service("ingest") as ingest:
        response = await ingest.post(
            f"/webhooks/{source}", content=body, headers={"content-type": "application/json", **auth(body)}
        )
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert await receipts(database_url) == []


async def test_an_event_type_bothways_does_not_track_is_202_and_recorded_as_ignored(
    run_service, database_url
) -> None:
    body = payload("jira", "issue_deleted")
    async with run_service("ingest") as ingest:
        response = await ingest.post(
            "/webhooks/jira", content=body, headers={"content-type": "application/json", **jira_headers(body)}
        )
    assert response.status_code == 202
    assert response.json()["outcome"] == "ignored"
    [receipt] = await receipts(database_url)
    assert (receipt["outcome"], receipt["event_ids"]) == ("ignored", [])


async def test_a_payload_without_the_ticket_id_is_422_naming_the_field(run_service, database_url) -> None:
    document = json.loads(payload("jira", "issue_created"))
    del document["issue"]["key"]
    body = json.dumps(document).encode()
    async with run_service("ingest") as ingest:
        response = await ingest.post(
            "/webhooks/jira", content=body, headers={"content-type": "application/json", **jira_headers(body)}
        )
    assert response.status_code == 422
    assert response.json()["field"] == "issue.key"
    [receipt] = await receipts(database_url)
    assert receipt["outcome"] == "rejected"
    assert "issue.key" in receipt["note"]


async def test_a_redelivered_platform_webhook_yields_no_second_event(run_service, settings_for) -> None:
    settings = settings_for("ingest")
    body = payload("jira", "issue_created")
    headers = {"content-type": "application/json", **jira_headers(body, delivery="same-delivery")}
    async with run_service("ingest") as ingest:
        first = await ingest.post("/webhooks/jira", content=body, headers=headers)
        second = await ingest.post("/webhooks/jira", content=body, headers=headers)
        records = await read_topic(
            settings.kafka_bootstrap_servers, settings.topic(Topic.TICKETS), count=2, timeout=3
        )
    assert second.json()["duplicate"] is True
    assert second.json()["event_ids"] == first.json()["event_ids"]
    assert len(records) == 1


async def test_an_unknown_source_is_refused_naming_the_path_parameter(run_service) -> None:
    async with run_service("ingest") as ingest:
        response = await ingest.post(
            "/webhooks/remedy", content=b"{}", headers={"content-type": "application/json"}
        )
    assert response.status_code == 422
    assert response.json()["error"] == "validation_failed"
    [field] = response.json()["fields"]
    assert field["field"] == "path.source"
    assert field["message"] == (
        "no webhook source 'remedy'; one of generic, jira, zendesk, servicenow, freshservice, pagerduty, alertmanager"
    )


async def test_each_source_counts_its_deliveries_by_outcome(run_service) -> None:
    body = payload("jira", "issue_created")
    async with run_service("ingest") as ingest:
        await ingest.post("/webhooks/jira", content=body, headers={"content-type": "application/json"})
        metrics = await ingest.get("/metrics")
    assert 'bothways_webhooks_received_total{outcome="unauthenticated",source="jira"}' in metrics.text


def pagerduty_headers(body: bytes, *secrets: str) -> dict[str, str]:
    signatures = ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets)
    return {"content-type": "application/json", "x-pagerduty-signature": signatures}


async def test_a_signed_pagerduty_incident_becomes_an_outage_event(run_service, settings_for) -> None:
    settings = settings_for("ingest")
    body = payload("pagerduty", "incident_triggered")
    async with run_service("ingest") as ingest:
        # During a rotation PagerDuty signs with the old and the new secret; one valid is enough.
        response = await ingest.post(
            "/webhooks/pagerduty", content=body, headers=pagerduty_headers(body, "retired", "pd-secret")
        )
        assert response.status_code == 202, response.text
        [record] = await read_topic(settings.kafka_bootstrap_servers, settings.topic(Topic.OUTAGES), count=1)
    event = decode_record(record.headers, record.value)
    assert event.type == "io.bothways.outage.started"
    assert event.data.signal_key.startswith("pagerduty:")
    assert event.id == response.json()["event_ids"][0]
