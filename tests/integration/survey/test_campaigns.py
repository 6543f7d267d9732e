"""NPS campaigns: populations from the requesters seen on tickets, schedules, and one fatigue budget per
person across CSAT and NPS."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bothways.events import Person
from tests.support import READ_KEY
from tests.survey_harness import MONDAY, ticket

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)
NOW_RULES = {"csat": {"rules": [{"name": "at once", "delay": "0s"}]}}


async def campaign(survey, **fields) -> dict:
    body = {"name": "Relationship NPS", "population": {"active_within_days": 90}, **fields}
    response = await survey.client.post("/campaigns", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_campaign_invites_the_requesters_active_in_its_window_and_of_its_services(
    survey_service,
) -> None:
    async with survey_service(NOW_RULES) as survey:
        await survey.track(ticket(1, category="open", at=MONDAY - 10 * DAY, email_address="ada@example.com"))
        await survey.track(
            ticket(
                2,
                category="open",
                at=MONDAY - 20 * DAY,
                email_address="bob@example.com",
                business_service="vpn",
            )
        )
        await survey.track(ticket(3, category="open", at=MONDAY - 100 * DAY, email_address="cy@example.com"))
        # The same person on two tickets is one member of the population.
        await survey.track(
            ticket(4, category="pending", at=MONDAY - 5 * DAY, email_address="ADA@example.com")
        )
        created = await campaign(
            survey, population={"active_within_days": 90, "business_services": ["email"]}
        )
        assert (created["next_run_at"], created["runs"]) == (MONDAY.isoformat().replace("+00:00", "Z"), 0)
        await survey.step(MONDAY)
        [mail] = survey.mails()
        assert mail["To"] == "ada@example.com"
        assert mail["Subject"] == "Would you recommend our IT services? One question"
        assert "?score=0" in mail.get_body(("plain",)).get_content()
        detail = (await survey.client.get(f"/campaigns/{created['campaign_id']}")).json()
        assert detail["history"] == [
            {"run": 1, "run_at": "2031-03-03T09:00:00Z", "population": 1, "scheduled": 1, "throttled": 0}
        ]
        assert detail["next_run_at"] is None  # one-off
        [sent] = await survey.events("survey.sent")
        assert (sent.data.survey_kind, sent.data.campaign_id, sent.subject) == (
            "nps",
            created["campaign_id"],
            f"campaign:{created['campaign_id']}",
        )


async def test_the_fatigue_budget_spans_csat_and_nps(survey_service) -> None:
    async with survey_service(NOW_RULES) as survey:
        # Ada's CSAT goes out today; Bob only has an open ticket.
        await survey.track(ticket(1, email_address="ada@example.com"))
        await survey.track(ticket(2, category="open", email_address="bob@example.com"))
        await survey.step(MONDAY)
        # A campaign ten days later: Ada is within the 90-day NPS cooldown of her CSAT, Bob is asked.
        survey.clock.now = MONDAY + 10 * DAY
        created = await campaign(survey)
        await survey.step(MONDAY + 10 * DAY)
        ada_id, bob_id = await person_ids(survey)
        ada = await survey.invitation(kind="nps", person_id=ada_id)
        bob = await survey.invitation(kind="nps", person_id=bob_id)
        assert (ada["state"], ada["reason_code"]) == ("throttled", "cooldown")
        assert (
            ada["reason"] == "cooldown: a csat survey was sent 10 day(s) before; the nps cooldown is 90 days"
        )
        assert bob["state"] == "sent"
        # Bob's ticket is resolved twenty days after his NPS: within the 30-day CSAT cooldown.
        await survey.track(ticket(2, at=MONDAY + 30 * DAY, email_address="bob@example.com"))
        await survey.step(MONDAY + 30 * DAY)
        csat = await survey.invitation(ticket_key="generic:2")
        assert (csat["state"], csat["reason"]) == (
            "throttled",
            "cooldown: a nps survey was sent 20 day(s) before; the csat cooldown is 30 days",
        )
        throttled = {e.data.invitation_id: e.data.reason for e in await survey.events("survey.throttled")}
        assert set(throttled) == {str(ada["invitation_id"]), str(csat["invitation_id"])}
        detail = (await survey.client.get(f"/campaigns/{created['campaign_id']}")).json()
        assert detail["history"][0]["throttled"] == 1


async def person_ids(survey) -> list[str]:
    rows = await survey.pool.fetch("SELECT person_id FROM person ORDER BY identity")
    return [row["person_id"] for row in rows]


async def test_a_rolling_cap_limits_surveys_across_kinds(survey_service) -> None:
    rules = {**NOW_RULES, "fatigue": {"cooldown": {"csat": "1d", "nps": "1d"}, "max_per_30_days": 2}}
    async with survey_service(rules) as survey:
        await survey.track(ticket(1))
        await survey.step(MONDAY)
        await survey.track(ticket(2, at=MONDAY + 5 * DAY))
        await survey.step(MONDAY + 5 * DAY)
        survey.clock.now = MONDAY + 10 * DAY
        await campaign(survey)
        await survey.step(MONDAY + 10 * DAY)
        nps = await survey.invitation(kind="nps")
        assert (nps["state"], nps["reason_code"]) == ("throttled", "cap")
        assert len(survey.mails()) == 2


async def test_a_periodic_campaign_runs_again_after_its_period(survey_service) -> None:
    async with survey_service(NOW_RULES) as survey:
        await survey.track(ticket(1, category="open", email_address="ada@example.com"))
        created = await campaign(survey, schedule={"every_days": 91})
        await survey.step(MONDAY)
        await survey.track(ticket(1, category="open", at=MONDAY + 80 * DAY, email_address="ada@example.com"))
        await survey.step(MONDAY + 90 * DAY)
        assert len(survey.mails()) == 1
        await survey.step(MONDAY + 91 * DAY)
        assert len(survey.mails()) == 2
        detail = (await survey.client.get(f"/campaigns/{created['campaign_id']}")).json()
        assert [run["run"] for run in detail["history"]] == [1, 2]
        stopped = await survey.client.post(f"/campaigns/{created['campaign_id']}/stop")
        assert stopped.json()["next_run_at"] is None
        await survey.step(MONDAY + 182 * DAY)
        assert len((await survey.client.get(f"/campaigns/{created['campaign_id']}")).json()["history"]) == 2


async def test_a_requester_known_by_id_only_is_throttled_for_lack_of_an_address(survey_service) -> None:
    async with survey_service() as survey:
        await survey.track(
            ticket(1, category="open", email_address=None, requester=Person(id="u-7", name="Cy"))
        )
        await campaign(survey)
        await survey.step(MONDAY)
        row = await survey.invitation(kind="nps")
        assert (row["state"], row["reason_code"]) == ("throttled", "no_address")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, "body.population"),
        ({"name": "", "population": {"active_within_days": 30}}, "body.name"),
        ({"name": "x", "population": {"active_within_days": 0}}, "body.population.active_within_days"),
        (
            {"name": "x", "population": {"active_within_days": 30}, "schedule": {"every_days": 0}},
            "body.schedule.every_days",
        ),
        (
            {
                "name": "x",
                "population": {"active_within_days": 30},
                "schedule": {"start_at": "2031-03-04T09:00"},
            },
            "body.schedule.start_at",
        ),
        ({"name": "x", "population": {"active_within_days": 30}, "expiry_days": 365}, "body.expiry_days"),
        ({"name": "x", "population": {"active_within_days": 30}, "audience": "all"}, "body.audience"),
    ],
)
async def test_a_campaign_is_validated_naming_the_field(survey_service, body, field) -> None:
    async with survey_service() as survey:
        response = await survey.client.post("/campaigns", json=body)
        assert response.status_code == 422
        assert field in [f["field"] for f in response.json()["fields"]]


async def test_campaigns_need_the_admin_scope_to_start_and_the_read_scope_to_list(survey_service) -> None:
    async with survey_service() as survey:
        reader = {"authorization": f"Bearer {READ_KEY}"}
        body = {"name": "x", "population": {"active_within_days": 30}}
        assert (await survey.client.post("/campaigns", json=body, headers=reader)).status_code == 403
        assert (
            await survey.client.post("/campaigns", json=body, headers={"authorization": "Bearer nope"})
        ).status_code == 401
        created = await campaign(survey)
        listed = await survey.client.get("/campaigns", headers=reader)
        assert [c["campaign_id"] for c in listed.json()] == [created["campaign_id"]]
        assert (await survey.client.get("/campaigns/none-such")).status_code == 404
