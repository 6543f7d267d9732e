"""Closing the loop: an unhappy answer opens a follow-up, left open it becomes overdue (an event), it is
closed with an outcome, optionally re-surveying the person or reopening the ticket."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bothways.signing import decode_secret, verify
from tests.support import READ_KEY
from tests.survey_harness import MONDAY, WEBHOOK_SECRETS, ticket

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)
NOW_RULES = {"csat": {"rules": [{"name": "at once", "delay": "0s"}]}}
OFFICE = {
    "name": "office",
    "timezone": "Europe/Berlin",
    "weekly": {day: ["08:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
}


async def answered(
    survey, score: int, *, number: int = 1, at=MONDAY, email_address: str = "ada@example.com"
) -> dict:
    """A ticket resolved at `at`, its survey sent at once and answered an hour later."""
    before = len(survey.mails())
    await survey.track(ticket(number, at=at, email_address=email_address))
    await survey.step(at)
    mail = survey.mails()[before]
    survey.clock.now = at + HOUR
    link = survey.link(mail, score).split("?")[0]
    response = await survey.client.post(link, data={"score": str(score), "comment": "Nobody called me back"})
    assert response.status_code == 200, response.text
    return await survey.invitation(ticket_key=f"generic:{number}", resurvey_of=None)


async def test_a_dissatisfied_answer_opens_a_follow_up_that_goes_overdue_and_is_closed(
    survey_service,
) -> None:
    async with survey_service(NOW_RULES) as survey:
        invitation = await answered(survey, 2)
        [opened] = await survey.events("followup.opened")
        assert opened.data.due_at == MONDAY + HOUR + timedelta(hours=48)
        reader = {"authorization": f"Bearer {READ_KEY}"}
        [followup] = (await survey.client.get("/followups", params={"state": "open"}, headers=reader)).json()
        assert (followup["invitation_id"], followup["score"], followup["comment"]) == (
            str(invitation["invitation_id"]),
            2,
            "Nobody called me back",
        )
        assert (followup["ticket_key"], followup["assignee"]) == ("generic:1", "grace")

        await survey.step(MONDAY + HOUR + timedelta(hours=48) - timedelta(seconds=1))
        assert await survey.events("followup.overdue") == []
        await survey.step(MONDAY + HOUR + timedelta(hours=48))
        await survey.step(MONDAY + HOUR + timedelta(hours=49))
        [overdue] = await survey.events("followup.overdue")
        assert overdue.data.followup_id == followup["followup_id"]
        assert (await survey.client.get("/followups", params={"state": "open"})).json() == []
        [listed] = (await survey.client.get("/followups", params={"state": "overdue"})).json()
        assert listed["overdue_at"] is not None

        closing = {"outcome": "resolved", "note": "Called her; the mailbox quota was raised."}
        denied = await survey.client.post(
            f"/followups/{followup['followup_id']}/close", json=closing, headers=reader
        )
        assert denied.status_code == 403
        closed = await survey.client.post(f"/followups/{followup['followup_id']}/close", json=closing)
        assert closed.status_code == 200, closed.text
        assert (closed.json()["state"], closed.json()["outcome"]) == ("closed", "resolved")
        [event] = await survey.events("followup.closed")
        assert (event.data.outcome, event.data.note) == ("resolved", closing["note"])
        again = await survey.client.post(f"/followups/{followup['followup_id']}/close", json=closing)
        assert again.status_code == 409
        assert (await survey.client.get("/followups")).json() == []


async def test_satisfied_and_neutral_answers_open_nothing(survey_service) -> None:
    async with survey_service(NOW_RULES) as survey:
        await answered(survey, 3, number=1)
        await answered(survey, 5, number=2, at=MONDAY + timedelta(days=40))
        assert await survey.events("followup.opened") == []


async def test_the_due_time_follows_the_business_calendar(survey_service) -> None:
    rules = {**NOW_RULES, "followup": {"due": "16h", "calendar": OFFICE}}
    async with survey_service(rules) as survey:
        # Resolved Friday 14:00 UTC (15:00 Berlin), answered 16:00 Berlin: one office hour left on Friday,
        # nine on Monday, six on Tuesday: due Tuesday 14:00 Berlin, 13:00 UTC.
        friday = MONDAY + timedelta(days=4, hours=5)
        await answered(survey, 1, at=friday)
        [opened] = await survey.events("followup.opened")
        assert opened.data.due_at == MONDAY + timedelta(days=8, hours=4)


async def test_closing_with_a_resurvey_asks_again_despite_the_cooldown(survey_service) -> None:
    rules = {**NOW_RULES, "followup": {"resurvey_delay": "1d"}}
    async with survey_service(rules) as survey:
        invitation = await answered(survey, 1)
        [followup] = (await survey.client.get("/followups")).json()
        closed = await survey.client.post(
            f"/followups/{followup['followup_id']}/close", json={"outcome": "contacted", "resurvey": True}
        )
        resurvey_id = closed.json()["resurvey_invitation_id"]
        resurvey = await survey.invitation(resurvey_of=invitation["invitation_id"])
        assert str(resurvey["invitation_id"]) == resurvey_id
        assert (resurvey["state"], resurvey["send_at"]) == ("scheduled", MONDAY + HOUR + timedelta(days=1))
        await survey.step(MONDAY + HOUR + timedelta(days=1))
        assert len(survey.mails()) == 2
        # A CSAT of another ticket the same day is still held back by the cooldown.
        await survey.track(ticket(2, at=MONDAY + timedelta(days=1, hours=2)))
        await survey.step(MONDAY + timedelta(days=1, hours=2))
        assert (await survey.invitation(ticket_key="generic:2"))["reason_code"] == "cooldown"


async def test_closing_can_reopen_the_ticket_through_a_signed_webhook(
    survey_service, webhook_receiver
) -> None:
    url, handler = webhook_receiver
    async with survey_service(
        NOW_RULES, ticket_webhook_url=url, survey_webhook_secrets=WEBHOOK_SECRETS
    ) as survey:
        await answered(survey, 1)
        [followup] = (await survey.client.get("/followups")).json()
        closing = {"outcome": "not_resolved", "note": "Still broken", "ticket_action": "reopen"}
        closed = await survey.client.post(f"/followups/{followup['followup_id']}/close", json=closing)
        assert closed.json()["ticket_action_state"] == "pending"
        await survey.step(MONDAY + 2 * HOUR)
        [(headers, body)] = handler.received
        verify(headers, body, keys=[decode_secret(WEBHOOK_SECRETS[0])], now=MONDAY + 2 * HOUR)
        sent = json.loads(body)
        assert (sent["action"], sent["ticket"]["external_id"], sent["note"]) == (
            "reopen",
            "1",
            "Still broken",
        )
        after = (await survey.client.get(f"/followups/{followup['followup_id']}")).json()
        assert after["ticket_action_state"] == "done"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 422, "body.outcome"),
        ({"outcome": "  "}, 422, "body.outcome"),
        ({"outcome": "x", "ticket_action": "delete"}, 422, "body.ticket_action"),
        ({"outcome": "x", "ticket_action": "reopen"}, 422, "ticket_action"),
        ({"outcome": "x", "colour": "red"}, 422, "body.colour"),
    ],
)
async def test_closing_validates_and_names_the_problem(survey_service, body, status, field) -> None:
    async with survey_service(NOW_RULES) as survey:
        await answered(survey, 1)
        [followup] = (await survey.client.get("/followups")).json()
        response = await survey.client.post(f"/followups/{followup['followup_id']}/close", json=body)
        assert response.status_code == status
        error = response.json()
        assert error.get("field") == field or field in [f["field"] for f in error.get("fields", [])]


async def test_unknown_follow_ups_and_invitations_are_404(survey_service) -> None:
    async with survey_service() as survey:
        missing = "00000000-0000-4000-8000-000000000000"
        assert (await survey.client.get(f"/followups/{missing}")).status_code == 404
        assert (
            await survey.client.post(f"/followups/{missing}/close", json={"outcome": "x"})
        ).status_code == 404
        assert (await survey.client.get(f"/invitations/{missing}")).status_code == 404
        assert (await survey.client.get("/followups/not-a-uuid")).status_code == 422
