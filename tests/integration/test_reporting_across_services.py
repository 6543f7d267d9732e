"""Across the real services built so far: signed tickets into ingest, SLA timers from the sla service, the
scorecard from reporting. The survey service is not built yet and the sla service does not publish
availability yet, so the answers and the availability are published on their topics as those
services will publish them. Expected figures are counted here from the tickets' own timestamps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bothways.events import AvailabilityComputed, SurveyAnswered, deterministic_id, envelope_for
from tests.reporting_month import previous_month, publish
from tests.support import eventually, signed_generic

pytestmark = pytest.mark.integration

# The sla service's default policy for P1 incidents (services/sla/policies.yaml): around the clock,
# first response within 15 minutes, resolution within 4 hours.
RESPONSE = timedelta(minutes=5)
RESOLVED_AFTER = {"payroll": [timedelta(hours=1)] * 12, "vpn": [timedelta(hours=6), timedelta(hours=2)] * 6}
CSAT_SCORES = {"payroll": [1, 2, 1, 1, 2, 1, 2, 1, 1, 2, 5, 4], "vpn": [5, 4, 5, 5, 4, 5, 5, 4, 5, 5, 4, 5]}


def snapshots(service: str, number: int, *, created: datetime, resolved: datetime) -> list[dict]:
    base = {
        "source": "generic",
        "external_id": f"{service}-{number}",
        "created_at": created.isoformat(),
        "priority": "P1",
        "kind": "incident",
        "business_service": service,
        "assignment_group": "service-desk",
        "first_public_agent_response_at": (created + RESPONSE).isoformat(),
        "title": "Broken",
    }
    return [
        {**base, "occurred_at": (created + RESPONSE).isoformat(), "change": "commented_public_agent",
         "status": "Open", "status_category": "open"},
        {**base, "occurred_at": resolved.isoformat(), "change": "status_changed", "status": "Resolved",
         "status_category": "resolved", "resolved_at": resolved.isoformat()},
    ]  # fmt: skip


def answer(service: str, number: int, score: int, at: datetime) -> SurveyAnswered:
    return SurveyAnswered(
        invitation_id=f"inv-{service}-{number}",
        survey_kind="csat",
        ticket_key=f"generic:{service}-{number}",
        business_service=service,
        assignment_group="service-desk",
        priority="P1",
        occurred_at=at,
        score=score,
        scale="1-5",
        satisfied=score >= 4,
    )


async def test_tickets_through_ingest_and_sla_reach_the_scorecard_with_one_watermelon(
    run_service, settings_for
) -> None:
    start, end = previous_month(datetime.now(UTC))
    period = f"{start:%Y-%m}"
    breaches = {s: sum(d > timedelta(hours=4) for d in after) for s, after in RESOLVED_AFTER.items()}
    customer_events = []
    for service, scores in CSAT_SCORES.items():
        for number, score in enumerate(scores):
            at = start + timedelta(days=number + 1, hours=20)
            customer_events.append(
                envelope_for(
                    answer(service, number, score, at),
                    event_id=deterministic_id("x", service, str(number)),
                    source="/tests",
                )
            )
    agreed = int((end - start).total_seconds())
    availability = AvailabilityComputed(
        business_service="payroll", period=period, period_start=start, period_end=end, occurred_at=end - timedelta(hours=1),
        objective_percent=99.9, agreed_seconds=agreed, downtime_seconds=agreed * 0.0005,
        availability_percent=99.95, error_budget_seconds=agreed * 0.001, budget_remaining_seconds=agreed * 0.0005,
        outages=1, mtrs_seconds=agreed * 0.0005,
    )  # fmt: skip
    customer_events.append(envelope_for(availability, event_id="availability-payroll", source="/tests"))
    async with (
        run_service("ingest") as ingest,
        run_service("sla"),
        run_service("reporting") as reporting,
    ):
        for service, after in RESOLVED_AFTER.items():
            for number, duration in enumerate(after):
                created = start + timedelta(days=number + 1, hours=9)
                for body in snapshots(service, number, created=created, resolved=created + duration):
                    raw = json.dumps(body).encode()
                    accepted = await ingest.post(
                        "/webhooks/generic", content=raw, headers=signed_generic(raw)
                    )
                    assert accepted.status_code == 202, accepted.text
        await publish(settings_for("reporting"), customer_events)

        async def every_outcome_counted():
            cards = (await reporting.get(f"/scorecards?period={period}")).json()["scorecards"]
            counted = {
                c["business_service"]: sum(f["met"] + f["breached"] for f in c["provider"]["sla"].values())
                for c in cards
            }
            answers = {c["business_service"]: c["customer"]["csat"]["responses"] for c in cards}
            done = counted == {"payroll": 24, "vpn": 24} and answers == {"payroll": 12, "vpn": 12}
            return {c["business_service"]: c for c in cards} if done else None

        cards = await eventually(every_outcome_counted, timeout=60)
        drill_down = (await reporting.get(f"/watermelons?period={period}")).json()
    for service, card in cards.items():
        sla_figures = card["provider"]["sla"]
        assert (sla_figures["first_response"]["met"], sla_figures["first_response"]["breached"]) == (12, 0)
        met = 12 - breaches[service]
        assert (sla_figures["resolution"]["met"], sla_figures["resolution"]["breached"]) == (
            met,
            breaches[service],
        )
        assert sla_figures["resolution"]["compliance_percent"] == pytest.approx(100 * met / 12)
        assert card["provider"]["tickets_resolved"] == 12
        satisfied = sum(score >= 4 for score in CSAT_SCORES[service])
        assert card["customer"]["csat"]["csat_percent"] == pytest.approx(100 * satisfied / 12)
    assert cards["payroll"]["watermelon"]["flagged"] is True
    assert cards["vpn"]["watermelon"]["flagged"] is False
    unhappy = {f"generic:payroll-{n}" for n, score in enumerate(CSAT_SCORES["payroll"]) if score <= 2}
    assert {t["ticket_key"] for t in drill_down["tickets"]} == unhappy
