"""A month through every real service, as real processes, checked against figures counted here.

Tickets go into ingest as signed webhooks, outages as Alertmanager notifications; the sla service
times the tickets and turns the outages into availability; the survey service mails each requester
an invitation (to a real SMTP server) and the test answers through the answer page the mail links
to; reporting builds the scorecard. The expected figures are computed from what the test generated.

Which month: reporting counts a CSAT answer in the month it was given (docs/reporting.md), and an
answer given through the real page is given now. The watermelon flag compares SLA outcomes and
answers of one month, so the month under test is the current one, and every outcome must have
happened in it before now. The tickets' stories are therefore compressed into the minutes before
the test, on a site SLA configuration of minute targets around the clock (a month of tickets, each
a few minutes long). That holds on any day: only a month younger than the stories (its first few
minutes), or one ending while the test runs, is waited out, to the next month's first minutes.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bothways import devstack
from tests.reporting_month import month_start
from tests.support import API_KEY, eventually, signed_generic

pytestmark = pytest.mark.e2e

# The site's SLA configuration: minute targets around the clock, so that a ticket's story is minutes long.
RESPONSE_TARGET = timedelta(minutes=1)
RESOLUTION_TARGET = timedelta(minutes=2)
ALWAYS = {
    "name": "always",
    "timezone": "UTC",
    "weekly": {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
}
SLA_CONFIG = {
    "calendars": [ALWAYS],
    "policies": [
        {
            "name": "compressed",
            "version": 1,
            "metrics": {
                "first_response": {"calendar": "always", "targets": {"default": "1m"}},
                "resolution": {"calendar": "always", "targets": {"default": "2m"}},
            },
        }
    ],
}
OBJECTIVES = {"hr-portal": 99.0, "email": 99.5, "vpn": 99.9}
CATALOGUE = {
    "major_incidents": {"kinds": ["incident"], "priorities": {"P1": "major"}},
    "services": [
        {"id": service, "name": service, "objective_percent": objective, "timezone": "UTC"}
        for service, objective in OBJECTIVES.items()
    ],
}
# Surveyed at once after the resolution (the default waits an hour), five-point.
SURVEY_RULES = {"csat": {"rules": [{"name": "all", "survey": True, "delay": "0s", "expiry": "7d"}]}}
LOW_REASON = "My issue was not resolved"
# The newest instant of a story is this long before the test starts; ticket creations spread over
# the first SPREAD of the window.
STORY = timedelta(seconds=200)
SPREAD = timedelta(seconds=30)
# What the test needs after its start, in the same month: posting, mails, answers, the scorecard.
RUNNING = timedelta(minutes=3)
Z = 1.959963984540054


@dataclass(frozen=True)
class Profile:
    """A generated service: its tickets, how many miss each target, its customers' scores."""

    name: str
    tickets: int
    late_responses: int
    late_resolutions: int
    scores: tuple[int, ...]  # one per answering customer, in ticket order; the rest do not answer


# The watermelon (every SLA met, customers unhappy), a healthy service, and one with breaches and outages.
PROFILES = (
    Profile("hr-portal", 12, 0, 0, (1, 2, 2, 1, 3, 2, 4, 1, 2, 5, 2, 1)),
    Profile("email", 12, 0, 0, (5, 4, 5, 5, 4, 5, 5, 3, 5, 4, 5, 5)),
    Profile("vpn", 14, 2, 4, (5, 2, 4, 4, 1, 5, 3, 4, 2, 5, 4, 5)),
)


@dataclass
class Ticket:
    service: str
    number: int
    created: datetime
    responded: datetime
    resolved: datetime
    score: int | None

    @property
    def key(self) -> str:
        return f"generic:{self.service}-{self.number}"

    @property
    def email(self) -> str:
        return f"{self.service}-{self.number}@customers.example"

    @property
    def response_met(self) -> bool:
        return self.responded - self.created <= RESPONSE_TARGET

    @property
    def resolution_met(self) -> bool:
        return self.resolved - self.created <= RESOLUTION_TARGET

    def outcome_instants(self) -> list[datetime]:
        """When each SLA outcome counts: the stop when met, the target plus a second when breached."""
        response = (
            self.responded if self.response_met else self.created + RESPONSE_TARGET + timedelta(seconds=1)
        )
        resolution = (
            self.resolved if self.resolution_met else self.created + RESOLUTION_TARGET + timedelta(seconds=1)
        )
        return [response, resolution]


@dataclass(frozen=True)
class Outage:
    service: str
    fingerprint: str
    severity: str  # critical: major (weight 1), warning: partial (weight 0.3, the default)
    starts: datetime
    ends: datetime

    @property
    def weighted_seconds(self) -> float:
        return (self.ends - self.starts).total_seconds() * (1.0 if self.severity == "critical" else 0.3)


def generate(start: datetime, *, seed: int = 7) -> list[Ticket]:
    """The tickets of every profile, created within [start, start + SPREAD), each story under STORY."""
    rng = random.Random(seed)
    tickets = []
    for profile in PROFILES:
        late_responses = set(rng.sample(range(profile.tickets), profile.late_responses))
        late_resolutions = set(rng.sample(range(profile.tickets), profile.late_resolutions))
        for number in range(profile.tickets):
            created = start + timedelta(seconds=rng.randrange(int(SPREAD.total_seconds())))
            response = rng.randrange(75, 100) if number in late_responses else rng.randrange(5, 55)
            resolution = rng.randrange(135, 165) if number in late_resolutions else rng.randrange(105, 115)
            score = profile.scores[number] if number < len(profile.scores) else None
            tickets.append(
                Ticket(
                    profile.name,
                    number,
                    created,
                    created + timedelta(seconds=response),
                    created + timedelta(seconds=max(resolution, response + 1)),
                    score,
                )
            )
    return tickets


def outages(start: datetime) -> list[Outage]:
    return [
        Outage("vpn", "vpn-down", "critical", start + timedelta(seconds=10), start + timedelta(seconds=50)),
        Outage("vpn", "vpn-slow", "warning", start + timedelta(seconds=100), start + timedelta(seconds=160)),
        Outage("email", "mx-down", "critical", start + timedelta(seconds=40), start + timedelta(seconds=70)),
    ]


def snapshots(ticket: Ticket) -> list[dict[str, Any]]:
    """The ticket's life as the generic webhook takes it: created, answered by an agent, resolved."""
    base = {
        "source": "generic",
        "external_id": f"{ticket.service}-{ticket.number}",
        "kind": "incident",
        "title": f"{ticket.service} trouble {ticket.number}",
        "priority": "P2",
        "business_service": ticket.service,
        "assignment_group": f"{ticket.service}-team",
        "created_at": ticket.created.isoformat(),
        "requester": {"id": f"u-{ticket.email}", "email": ticket.email, "name": f"Customer {ticket.number}"},
    }
    responded = {**base, "first_public_agent_response_at": ticket.responded.isoformat()}
    return [
        {**base, "occurred_at": ticket.created.isoformat(), "change": "created", "status": "New",
         "status_category": "new"},
        {**responded, "occurred_at": ticket.responded.isoformat(), "change": "commented_public_agent",
         "status": "Open", "status_category": "open"},
        {**responded, "occurred_at": ticket.resolved.isoformat(), "change": "status_changed",
         "status": "Resolved", "status_category": "resolved", "resolved_at": ticket.resolved.isoformat()},
    ]  # fmt: skip


def notifications(outage: Outage) -> list[dict[str, Any]]:
    """Alertmanager's notifications of one alert: firing, then resolved."""

    def one(status: str, ends: str) -> dict[str, Any]:
        labels = {
            "alertname": "ProbeFailure",
            "business_service": outage.service,
            "severity": outage.severity,
        }
        alert = {"status": status, "labels": labels, "annotations": {"summary": f"{outage.service} down"},
                 "startsAt": outage.starts.isoformat(), "endsAt": ends, "fingerprint": outage.fingerprint}  # fmt: skip
        return {"version": "4", "status": status, "receiver": "bothways", "groupLabels": {},
                "commonLabels": labels, "alerts": [alert]}  # fmt: skip

    return [one("firing", "0001-01-01T00:00:00Z"), one("resolved", outage.ends.isoformat())]


def wilson(successes: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion, in percent."""
    p = successes / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return 100 * (centre - half), 100 * (centre + half)


async def one_month_for_the_test() -> tuple[datetime, datetime]:
    """(the window's start, the instant the test starts): all in one calendar month, before now."""
    now = datetime.now(UTC).replace(microsecond=0)
    if month_start(now - STORY - SPREAD) != month_start(now + RUNNING):
        resume = month_start(now + RUNNING) + STORY + SPREAD + timedelta(seconds=5)
        await asyncio.sleep((resume - datetime.now(UTC)).total_seconds())
        now = datetime.now(UTC).replace(microsecond=0)
    return now - STORY - SPREAD, now


def rating_link(mail: EmailMessage, score: int) -> str:
    text = mail.get_body(("plain",)).get_content()
    [link] = [word for word in text.split() if word.endswith(f"?score={score}")]
    return link


async def answer(client: httpx.AsyncClient, mail: EmailMessage, ticket: Ticket) -> None:
    """What the customer does: follow the link of their score, then submit the form."""
    assert ticket.score is not None
    link = rating_link(mail, ticket.score)
    shown = await client.get(link)
    assert shown.status_code == 200, shown.text
    form = {"score": str(ticket.score)}
    if ticket.score <= 2:
        form |= {"reason": LOW_REASON, "comment": "Still broken."}
    recorded = await client.post(link.split("?")[0], data=form)
    assert recorded.status_code == 200, recorded.text
    assert "Thank you" in recorded.text


async def test_a_month_of_tickets_outages_and_answers_through_every_service_makes_the_expected_scorecard(
    start, smtp_server, tmp_path: Path
) -> None:
    began = time.monotonic()
    window, now = await one_month_for_the_test()
    period = f"{now:%Y-%m}"
    tickets = generate(window)
    down = outages(window)
    assert all(month_start(i) == month_start(now) < now for t in tickets for i in (t.created, t.resolved))
    by_email = {t.email: t for t in tickets}

    files = {"sla.yaml": SLA_CONFIG, "catalogue.yaml": CATALOGUE, "surveys.yaml": SURVEY_RULES}
    for name, content in files.items():
        (tmp_path / name).write_text(yaml.safe_dump(content))
    survey_port = devstack.free_port()
    ingest = await start("ingest")
    await start(
        "sla",
        BOTHWAYS_SLA_CONFIG_FILE=str(tmp_path / "sla.yaml"),
        BOTHWAYS_AVAILABILITY_CATALOGUE_FILE=str(tmp_path / "catalogue.yaml"),
    )
    await start(
        "survey",
        port=survey_port,
        BOTHWAYS_SURVEY_RULES_FILE=str(tmp_path / "surveys.yaml"),
        BOTHWAYS_SURVEY_PUBLIC_URL=f"http://127.0.0.1:{survey_port}",
        BOTHWAYS_SMTP_HOST="127.0.0.1",
        BOTHWAYS_SMTP_PORT=str(smtp_server.port),
        BOTHWAYS_SMTP_SECURITY="none",
        BOTHWAYS_SMTP_FROM="IT Service Desk <desk@example.com>",
    )
    reporting = await start("reporting")
    started = time.monotonic()

    async with httpx.AsyncClient(base_url=ingest.url, timeout=15) as client:

        async def post_ticket(ticket: Ticket) -> None:
            for body in snapshots(ticket):
                raw = json.dumps(body).encode()
                accepted = await client.post("/webhooks/generic", content=raw, headers=signed_generic(raw))
                assert accepted.status_code == 202, accepted.text

        async def post_outage(outage: Outage) -> None:
            for body in notifications(outage):
                accepted = await client.post(
                    "/webhooks/alertmanager", json=body, headers={"authorization": "Bearer am-token"}
                )
                assert accepted.status_code == 202, accepted.text

        await asyncio.gather(*map(post_ticket, tickets), *map(post_outage, down))
    posted = time.monotonic()

    # Every resolved ticket's requester is invited, by mail, once.
    mailbox = smtp_server.mailbox
    await eventually(lambda: _true(len(mailbox.messages) >= len(tickets)), timeout=60, interval=0.2)
    await asyncio.sleep(0.5)
    assert sorted(r for rs in mailbox.recipients for r in rs) == sorted(by_email)
    async with httpx.AsyncClient(timeout=15) as customers:
        answering = [
            answer(customers, mail, by_email[rcpts[0]])
            for mail, rcpts in zip(mailbox.messages, mailbox.recipients, strict=True)
            if by_email[rcpts[0]].score is not None
        ]
        await asyncio.gather(*answering)
    answered_at = datetime.now(UTC)
    assert month_start(answered_at) == month_start(now), "the answers are in the month of the outcomes"

    expected = _expected(tickets, down)
    auth = {"authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=reporting.url, headers=auth, timeout=15) as client:

        async def complete() -> dict[str, Any] | None:
            cards = (await client.get("/scorecards", params={"period": period})).json()["scorecards"]
            seen = {c["business_service"]: _progress(c) for c in cards}
            wanted = {s: e["progress"] for s, e in expected.items()}
            return {c["business_service"]: c for c in cards} if seen == wanted else None

        cards = await eventually(complete, timeout=60, interval=0.5)
        watermelons = (await client.get("/watermelons", params={"period": period})).json()
    settled = time.monotonic()

    for service, want in expected.items():
        card = cards[service]
        provider, customer = card["provider"], card["customer"]
        for metric in ("first_response", "resolution"):
            figure = provider["sla"][metric]
            met, breached = want["sla"][metric]
            assert (figure["met"], figure["breached"]) == (met, breached), (service, metric)
            assert figure["compliance_percent"] == pytest.approx(100 * met / (met + breached))
        assert provider["tickets_opened"] == provider["tickets_resolved"] == want["tickets"]
        assert provider["backlog"] == 0
        csat = customer["csat"]
        assert (csat["responses"], csat["satisfied"], csat["dissatisfied"]) == want["csat_counts"]
        assert csat["csat_percent"] == pytest.approx(want["csat_percent"])
        assert (csat["interval"]["lower"], csat["interval"]["upper"]) == pytest.approx(
            want["wilson"], abs=0.01
        )
        assert customer["invitations_sent"] == want["tickets"]
        assert customer["response_rate_percent"] == pytest.approx(
            100 * want["csat_counts"][0] / want["tickets"]
        )
        assert customer["followups"]["opened"] == want["csat_counts"][2]
        availability = provider["availability"]
        if want["downtime"]:
            assert availability["downtime_seconds"] == pytest.approx(want["downtime"])
            assert availability["outages"] == want["outages"]
            assert availability["mtrs_seconds"] == pytest.approx(want["mtrs"])
            # The running month is measured up to the instant the sla service computed it.
            assert (
                (want["last_restored"] - month_start(now)).total_seconds()
                <= availability["agreed_seconds"]
                <= (datetime.now(UTC) - month_start(now)).total_seconds()
            )
            agreed = availability["agreed_seconds"]
            assert availability["availability_percent"] == pytest.approx(
                100 * (agreed - want["downtime"]) / agreed
            )
        elif availability is not None:
            assert (availability["downtime_seconds"], availability["availability_percent"]) == (0, 100)
        assert card["watermelon"]["flagged"] is want["watermelon"], card["watermelon"]
    assert [w["business_service"] for w in watermelons["services"]] == ["hr-portal"]
    # The drill-down: every ticket of the month, in any service, answered unhappy with every SLA met.
    unhappy = {
        t.key for t in tickets if t.score is not None and t.score <= 2 and t.response_met and t.resolution_met
    }
    assert {t["ticket_key"] for t in watermelons["tickets"]} == unhappy
    for service, card in cards.items():
        assert card["watermelon_tickets"] == sum(key.startswith(f"generic:{service}-") for key in unhappy)
    print(
        f"month {period}: {len(tickets)} tickets, {len(down)} outages, "
        f"{sum(t.score is not None for t in tickets)} answers; services started in "
        f"{started - began:.1f} s, webhooks posted in {posted - started:.1f} s, "
        f"scorecard complete {settled - posted:.1f} s later"
    )


def _expected(tickets: list[Ticket], down: list[Outage]) -> dict[str, dict[str, Any]]:
    """Every service's figures, counted from the generated month alone."""
    figures = {}
    for profile in PROFILES:
        mine = [t for t in tickets if t.service == profile.name]
        responses = Counter(t.response_met for t in mine)
        resolutions = Counter(t.resolution_met for t in mine)
        scores = [t.score for t in mine if t.score is not None]
        satisfied = sum(s >= 4 for s in scores)
        dissatisfied = sum(s <= 2 for s in scores)
        lower, upper = wilson(satisfied, len(scores))
        sla = {
            "first_response": (responses[True], responses[False]),
            "resolution": (resolutions[True], resolutions[False]),
        }
        stretches = [o for o in down if o.service == profile.name]
        green = all(breached == 0 for _, breached in sla.values())
        figures[profile.name] = {
            "sla": sla,
            "tickets": len(mine),
            "csat_counts": (len(scores), satisfied, dissatisfied),
            "csat_percent": 100 * satisfied / len(scores),
            "wilson": (lower, upper),
            "downtime": sum(o.weighted_seconds for o in stretches),
            "outages": len(stretches),
            "mtrs": sum((o.ends - o.starts).total_seconds() for o in stretches) / len(stretches)
            if stretches
            else None,
            "last_restored": max((o.ends for o in stretches), default=None),
            # Green: every SLA met and no outage (minutes of downtime in a young month miss any
            # objective; here only services that are not red anyway have outages); red: even the
            # upper bound of CSAT misses the 85% target.
            "watermelon": green and not stretches and upper < 85,
            "progress": (len(mine) * 2, len(scores), len(stretches)),
        }
    return figures


def _progress(card: dict[str, Any]) -> tuple[int, int, int]:
    """How far a scorecard is: SLA outcomes counted, answers counted, outages counted."""
    outcomes = sum(f["met"] + f["breached"] for f in card["provider"]["sla"].values())
    availability = card["provider"]["availability"]
    return outcomes, card["customer"]["csat"]["responses"], availability["outages"] if availability else 0


async def _true(value: bool) -> bool:
    return value
