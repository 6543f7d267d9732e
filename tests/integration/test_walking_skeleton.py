"""One ticket travels: signed webhook -> ingest outbox -> Kafka -> sla history and reporting counts."""

from __future__ import annotations

import json

import pytest

from tests.support import READ_KEY, eventually, signed_generic, ticket_body

pytestmark = pytest.mark.integration


async def test_a_signed_ticket_reaches_sla_and_the_reporting_count(run_service) -> None:
    body = json.dumps(ticket_body("42")).encode()
    async with (
        run_service("ingest") as ingest,
        run_service("sla") as sla,
        run_service("reporting") as reporting,
    ):
        accepted = await ingest.post("/webhooks/generic", content=body, headers=signed_generic(body))
        assert accepted.status_code == 202, accepted.text
        [event_id] = accepted.json()["event_ids"]

        async def seen_by_sla():
            response = await sla.get("/tickets/generic:42")
            return response.json() if response.status_code == 200 else None

        ticket = await eventually(seen_by_sla)
        assert ticket["status_category"] == "open"
        assert [h["event_id"] for h in ticket["history"]] == [event_id]
        assert ticket["current"]["business_service"] == "email"

        async def counted():
            response = await reporting.get("/reports/tickets")
            return response.json() if response.json()["total"] == 1 else None

        counts = await eventually(counted)
        assert counts["by_status_category"]["open"] == 1
        assert counts["by_status_category"]["resolved"] == 0

        metrics = await reporting.get("/metrics", headers={"authorization": f"Bearer {READ_KEY}"})
        assert 'bothways_tickets{status_category="open"} 1.0' in metrics.text


async def test_a_duplicate_delivery_changes_nothing(run_service) -> None:
    body = json.dumps(ticket_body("7")).encode()
    headers = signed_generic(body, msg_id="msg_duplicate")
    async with run_service("ingest") as ingest, run_service("sla") as sla:
        first = await ingest.post("/webhooks/generic", content=body, headers=headers)
        second = await ingest.post("/webhooks/generic", content=body, headers=headers)
        assert (first.status_code, second.status_code) == (202, 202)
        assert second.json() == {**first.json(), "duplicate": True}

        async def seen():
            response = await sla.get("/tickets/generic:7")
            return response.json() if response.status_code == 200 else None

        ticket = await eventually(seen)
        assert len(ticket["history"]) == 1
