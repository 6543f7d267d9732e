"""A simulated day through ingest's real endpoints: every webhook accepted, every ticket timed by sla."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bothways import devstack
from services.survey.delivery import SmtpSecurity
from simulator.answering import AnsweringCustomers, AwaitingSurveyService, MailFolder, customer_answer
from simulator.driver import Pace, Run, drive
from simulator.organisation import build_organisation
from simulator.platforms import MAPPING_OVERRIDES, Credentials, ticket_key
from simulator.world import Change, Fact, Status, TicketFact, advance, build_world, timeline
from tests.support import GENERIC_SECRET, eventually

pytestmark = pytest.mark.integration

# The credentials the test environment gives ingest (tests/conftest.py, tests/support.py).
CREDENTIALS = Credentials(
    jira_secret="jira-secret",
    zendesk_secret="zendesk-secret",
    servicenow_secret=GENERIC_SECRET,
    alertmanager_token="am-token",
)
DAY = datetime(2026, 11, 3, tzinfo=UTC)  # a Tuesday
AS_FAST_AS_POSSIBLE = 1e12


def simulated_day() -> list[Fact]:
    organisation = build_organisation(seed=21, services=4, agents=6, customers=40)
    world = build_world(organisation, seed=21, tickets_per_weekday=14)
    return list(timeline(world, start=DAY, end=DAY + timedelta(days=1)))


async def test_a_simulated_day_is_accepted_and_every_ticket_gets_its_sla_timers(run_service) -> None:
    facts = simulated_day()
    stories: dict[str, list[TicketFact]] = defaultdict(list)
    for fact in facts:
        if isinstance(fact, TicketFact):
            stories[ticket_key(fact.ticket)].append(fact)
    assert {f.ticket.platform for story in stories.values() for f in story} == {
        "jira",
        "zendesk",
        "servicenow",
    }

    async with (
        run_service("ingest", mapping_overrides=MAPPING_OVERRIDES) as ingest,
        run_service("sla") as sla,
    ):
        run = Run(client=ingest, credentials=CREDENTIALS, surveys=AwaitingSurveyService(), concurrency=4)
        report = await drive(run, facts, pace=Pace(origin=DAY, speed=AS_FAST_AS_POSSIBLE))
        print(f"simulated day: {report.line()}")
        assert report.sent == len(facts)
        assert (report.accepted, report.rejected, report.failed) == (len(facts), {}, 0), report.samples

        async def all_recorded() -> bool:
            """Every snapshot of every ticket is in sla's history."""
            for key, story in stories.items():
                response = await sla.get(f"/tickets/{key}")
                if response.status_code != 200 or len(response.json()["history"]) < len(story):
                    return False
            return True

        await eventually(all_recorded, timeout=30)
        for key, story in stories.items():
            ticket = (await sla.get(f"/tickets/{key}")).json()
            assert len(ticket["history"]) == len(story), key
            assert ticket["current"]["business_service"] == story[0].ticket.service.id
            assert_timers_follow_the_story((await sla.get(f"/tickets/{key}/slas")).json(), story)


def assert_timers_follow_the_story(view: dict[str, Any], story: list[TicketFact]) -> None:
    current = [timer for timer in view["timers"] if not timer["superseded"]]
    [first_response] = [timer for timer in current if timer["metric"] == "first_response"]
    replied = next((f.occurred_at for f in story if f.change is Change.REPLIED), None)
    stopped = first_response["stopped_at"]
    assert (datetime.fromisoformat(stopped) if stopped else None) == replied, story[0].key
    resolutions = sorted((t for t in current if t["metric"] == "resolution"), key=lambda t: t["cycle"])
    state = None
    for fact in story:
        state = advance(state, fact)
    assert state is not None
    if state.status is Status.RESOLVED:
        assert all(t["state"] in ("met", "breached") for t in resolutions), story[0].key
    elif state.status is Status.CANCELED:
        assert resolutions[-1]["state"] == "cancelled", story[0].key
    else:  # still open when the day ended: its clock runs, waits on the customer, or has run out
        assert resolutions[-1]["state"] in ("running", "paused", "breached"), story[0].key
    if state.status is Status.PENDING and state.pending_since is not None:
        # waiting on the customer pauses the clock, unless it had already run out
        latest = resolutions[-1]
        breached = (
            latest["breached_at"] and datetime.fromisoformat(latest["breached_at"]) <= state.pending_since
        )
        assert latest["state"] == "paused" or breached, story[0].key


async def test_while_ingest_answers_503_the_driver_retries_and_nothing_is_lost(
    run_service, cuttable_database
) -> None:
    facts = simulated_day()[:24]
    via_proxy, database_link = cuttable_database
    async with run_service("ingest", database_url=via_proxy, mapping_overrides=MAPPING_OVERRIDES) as ingest:
        await database_link.cut()
        run = Run(client=ingest, credentials=CREDENTIALS, surveys=AwaitingSurveyService(), concurrency=3)
        sending = asyncio.create_task(drive(run, facts, pace=Pace(origin=DAY, speed=AS_FAST_AS_POSSIBLE)))
        await eventually(lambda: _positive(run.report.retries))
        assert run.report.accepted == 0
        await database_link.restore()
        report = await sending
    print(f"through a database outage: {report.line()}")
    assert report.retries >= 1
    assert (report.sent, report.accepted, report.failed) == (24, 24, 0)


async def _positive(value: int) -> bool:
    return value > 0


async def test_customers_answer_their_invitations_on_the_real_answer_page_as_the_model_decides(
    run_service, tmp_path: Path
) -> None:
    # The last four days (two weekdays at least) up to two hours ago: every resolution is past its
    # survey delay (an hour) and young enough (seven days) to be surveyed.
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    day = end - timedelta(days=4)
    organisation = build_organisation(seed=21, services=4, agents=6, customers=40)
    world = build_world(organisation, seed=21, tickets_per_weekday=14)
    facts = list(timeline(world, start=day, end=end))
    mail = {
        "smtp_host": "127.0.0.1",
        "smtp_security": SmtpSecurity.NONE,
        "smtp_from": "IT Service Desk <desk@example.com>",
        "survey_public_url": "http://surveys.test",
    }
    with devstack.mail_catcher(tmp_path / "mail") as smtp_port:
        assert smtp_port is not None
        async with (
            run_service("ingest", mapping_overrides=MAPPING_OVERRIDES) as ingest,
            run_service("survey", smtp_port=smtp_port, **mail) as survey,
        ):
            customers = AnsweringCustomers(MailFolder(tmp_path / "mail"), client=survey, poll_seconds=0.1)
            await customers.start()
            run = Run(client=ingest, credentials=CREDENTIALS, surveys=customers, concurrency=4)
            await drive(run, facts, pace=Pace(origin=day, speed=AS_FAST_AS_POSSIBLE))
            await customers.finish(at_most_seconds=20)
            report = customers.report()
            print(f"surveys: {report}")
            answered = (await survey.get("/invitations", params={"state": "answered", "limit": 500})).json()
    assert report["answer_failures"] == {}, report["failure_samples"]
    assert report["invitations_received"] > 5
    assert len(answered) == report["answers_sent"] > 0
    # Each recorded score is the one the satisfaction model gave that ticket's customer.
    states: dict[str, Any] = {}
    for fact in facts:
        if isinstance(fact, TicketFact):
            states[ticket_key(fact.ticket)] = advance(states.get(ticket_key(fact.ticket)), fact)
    for invitation in answered:
        decided = customer_answer(states[invitation["ticket_key"]])
        assert decided is not None
        assert invitation["score"] == decided.score, invitation["ticket_key"]
