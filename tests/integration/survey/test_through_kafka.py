"""The whole path on the real broker: a signed webhook to ingest, the ticket event to the survey service's
consumer, its scheduler sending the mail to a real SMTP server, and the survey events on their topic."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bothways.events import Topic, decode_record
from tests.support import READ_KEY, eventually, read_topic, signed_generic, ticket_body

pytestmark = pytest.mark.integration


async def test_a_resolved_ticket_posted_to_ingest_is_surveyed_and_announced(
    run_service, survey_service, kafka_bootstrap, namespace
) -> None:
    now = datetime.now(UTC).isoformat()
    requester = {"id": "u-1", "email": "ada@example.com", "name": "Ada"}
    body = json.dumps(
        ticket_body(
            "77",
            status="Resolved",
            category="resolved",
            occurred_at=now,
            resolved_at=now,
            requester=requester,
        )
    ).encode()
    rules = {"csat": {"rules": [{"name": "at once", "delay": "0s"}]}}
    async with run_service("ingest") as ingest, survey_service(rules, wall_clock=True) as survey:
        accepted = await ingest.post("/webhooks/generic", content=body, headers=signed_generic(body))
        assert accepted.status_code == 202, accepted.text

        [mail] = await eventually(lambda: _mails(survey), timeout=20)
        assert mail["To"] == "ada@example.com"
        records = await read_topic(kafka_bootstrap, f"{namespace}{Topic.SURVEYS}", count=2, timeout=20)
        events = [decode_record(r.headers, r.value) for r in records]
        assert [e.type for e in events] == ["io.bothways.survey.scheduled", "io.bothways.survey.sent"]
        assert {r.key for r in records} == {b"generic:77"}
        assert events[1].data.ticket_key == "generic:77"

        metrics = await survey.client.get("/metrics", headers={"authorization": f"Bearer {READ_KEY}"})
        assert (
            'bothways_surveys_sent_total{business_service="email",channel="email",kind="csat"}'
            in metrics.text
        )


async def _mails(survey) -> list:
    return list(survey.mails())
