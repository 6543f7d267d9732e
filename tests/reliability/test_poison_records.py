"""Poison records on every topic a service consumes: dead-lettered, and the valid events behind them applied."""

from __future__ import annotations

import collections
import json
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from bothways import kafka
from bothways.events import AvailabilityComputed, Topic, envelope_for
from tests.support import eventually, publish, read_topic, signed_generic, ticket_body

pytestmark = pytest.mark.reliability

PAYLOADS = Path(__file__).parent.parent / "unit" / "ingest" / "payloads"
TICKET = "generic:poison-1"
SERVICE = "webshop"  # the business service of the Alertmanager fixture
# Who consumes what (each service's ServiceSpec.consumes), and the key the valid events behind the poison
# travel under: the ticket key on ticket, SLA and survey topics, the business service on the others.
CONSUMERS = {
    Topic.TICKETS: ("sla", "survey", "reporting"),
    Topic.OUTAGES: ("sla",),
    Topic.SLA: ("reporting",),
    Topic.AVAILABILITY: ("reporting",),
    Topic.SURVEYS: ("reporting",),
}
KEYS = {Topic.OUTAGES: SERVICE, Topic.AVAILABILITY: SERVICE}
# A known event type of each topic, carried by a record whose data is not that event.
TYPES = {
    Topic.TICKETS: "io.bothways.ticket.changed",
    Topic.OUTAGES: "io.bothways.outage.started",
    Topic.SLA: "io.bothways.sla.breached",
    Topic.AVAILABILITY: "io.bothways.availability.computed",
    Topic.SURVEYS: "io.bothways.survey.scheduled",
}


def poison(topic: Topic) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    """Not JSON; JSON but not a CloudEvent; a CloudEvent of the topic's own type with invalid data."""
    attributes = [
        ("ce_specversion", b"1.0"),
        ("ce_id", f"poison-{topic.value}".encode()),
        ("ce_source", b"/reliability"),
        ("ce_type", TYPES[topic].encode()),
        ("content-type", b"application/json"),
    ]
    return [
        (b"\x00{not json", attributes),
        (b'{"id": 1}', []),
        (json.dumps({"status": 1}).encode(), attributes),
    ]


async def applied(database_url: str) -> dict[tuple[str, str], set[str]]:
    """Per (service, topic), the event ids in the service's inbox: applied, in the same transaction."""
    conn = await asyncpg.connect(database_url)
    try:
        found: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
        for service in ("sla", "survey", "reporting"):
            for row in await conn.fetch(f"SELECT event_id, topic FROM {service}.inbox"):
                found[(service, row["topic"])].add(row["event_id"])
        return found
    finally:
        await conn.close()


async def test_poison_on_every_consumed_topic_is_dead_lettered_and_what_follows_is_applied(
    start, settings_for, database_url
) -> None:
    settings = settings_for("sla")
    bootstrap = settings.kafka_bootstrap_servers
    await kafka.ensure_topics(bootstrap, [settings.topic(t) for t in Topic], partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for topic in CONSUMERS:
            key = KEYS.get(topic, TICKET).encode()
            for value, headers in poison(topic):
                await producer.send_and_wait(settings.topic(topic), value=value, key=key, headers=headers)
    finally:
        await producer.stop()

    for service in ("sla", "survey", "reporting"):
        await start(service)
    ingest = await start("ingest")
    # The valid events behind the poison, through the real flow: a ticket opened and resolved by a
    # requester (tickets, then SLA and survey events), and an outage that starts and ends.
    requester = {"id": "u-1", "email": "ada@example.com", "name": "Ada"}
    opened = ticket_body("poison-1", requester=requester)
    resolved = ticket_body(
        "poison-1",
        status="Resolved",
        category="resolved",
        change="status_changed",
        requester=requester,
        occurred_at="2026-11-02T10:00:00+00:00",
        resolved_at="2026-11-02T10:00:00+00:00",
    )
    alert = (PAYLOADS / "alertmanager" / "firing_and_resolved.json").read_bytes()
    async with httpx.AsyncClient(base_url=ingest.url, timeout=10) as client:
        for body in (json.dumps(opened).encode(), json.dumps(resolved).encode()):
            response = await client.post("/webhooks/generic", content=body, headers=signed_generic(body))
            assert response.status_code == 202, response.text
        response = await client.post(
            "/webhooks/alertmanager",
            content=alert,
            headers={"content-type": "application/json", "authorization": "Bearer am-token"},
        )
        assert response.status_code == 202, response.text
    # sla computes availability only for the services of its catalogue, which ships empty: the valid
    # availability event behind that topic's poison is published as sla would publish it.
    start_of_month = datetime(2026, 10, 1, tzinfo=UTC)
    end_of_month = datetime(2026, 11, 1, tzinfo=UTC)
    agreed = int((end_of_month - start_of_month).total_seconds())
    availability = AvailabilityComputed(
        business_service=SERVICE, period="2026-10", period_start=start_of_month, period_end=end_of_month,
        occurred_at=end_of_month, objective_percent=99.9, agreed_seconds=agreed, downtime_seconds=600,
        availability_percent=99.98, error_budget_seconds=agreed * 0.001, budget_remaining_seconds=agreed * 0.001 - 600,
        outages=1, mtrs_seconds=600,
    )  # fmt: skip
    await publish(
        bootstrap,
        settings.topic(Topic.AVAILABILITY),
        [envelope_for(availability, event_id="availability-webshop-2026-10", source="/reliability")],
    )

    expected_dead = sum(len(poison(topic)) * len(services) for topic, services in CONSUMERS.items())
    dead = await read_topic(bootstrap, settings.topic(Topic.DEADLETTER), count=expected_dead, timeout=60)
    parked = collections.Counter(
        (dict(r.headers)["dlq_topic"].decode(), dict(r.headers)["dlq_consumer_group"].decode()) for r in dead
    )

    async def valid_ones_applied() -> dict[tuple[str, str], int] | None:
        """Per (service, topic), how many valid events behind the poison were applied, once each has some."""
        found = await applied(database_url)
        counts = {
            (service, topic.value): len(found[(service, settings.topic(topic))])
            for topic, services in CONSUMERS.items()
            for service in services
        }
        return counts if all(counts.values()) else None

    try:
        counts = await eventually(valid_ones_applied, timeout=60, interval=0.5)
    except AssertionError:
        found = await applied(database_url)
        raise AssertionError({k: len(v) for k, v in found.items()}, parked) from None
    behind = ", ".join(f"{service} <- {topic}: {n}" for (service, topic), n in sorted(counts.items()))
    print(
        f"{len(CONSUMERS)} topics, {sum(len(s) for s in CONSUMERS.values())} (topic, consumer) pairs, "
        f"{expected_dead // 3} x 3 poison records consumed: {len(dead)} dead-lettered; valid events applied "
        f"after them: {behind}"
    )
    assert parked == {
        (settings.topic(topic), settings.consumer_group(service)): len(poison(topic))
        for topic, services in CONSUMERS.items()
        for service in services
    }
