"""Transactional CSAT against the real database and a real SMTP server: delay, reopen, one per resolution,
seeded sampling, expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.survey.rules import sampled
from tests.survey_harness import MONDAY, ticket

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)


async def test_a_resolved_ticket_is_surveyed_after_the_delay_and_not_before(survey_service) -> None:
    async with survey_service() as survey:
        await survey.track(ticket(1, category="open", at=MONDAY - HOUR))
        await survey.track(ticket(1))
        await survey.step(MONDAY)
        scheduled = await survey.invitation()
        assert (scheduled["state"], scheduled["send_at"]) == ("scheduled", MONDAY + HOUR)
        [announced] = await survey.events("survey.scheduled")
        assert announced.data.send_at == MONDAY + HOUR

        await survey.step(MONDAY + HOUR - timedelta(seconds=1))
        assert survey.mails() == []
        await survey.step(MONDAY + HOUR)

        sent = await survey.invitation()
        assert (sent["state"], sent["sent_at"], sent["expires_at"]) == (
            "sent",
            MONDAY + HOUR,
            MONDAY + HOUR + timedelta(days=7),
        )
        [mail] = survey.mails()
        assert mail["To"] == "ada@example.com"
        assert mail["Subject"] == "How did we do? Your request 1: Cannot send mail"
        [event] = await survey.events("survey.sent")
        assert (event.data.channel, event.data.ticket_key, event.data.business_service) == (
            "email",
            "generic:1",
            "email",
        )
        assert event.data.recipient_id == sent["person_id"]
        assert "ada@example.com" not in event.value_bytes().decode()


async def test_the_invitation_keeps_the_attribution_as_it_was_at_resolution(survey_service) -> None:
    async with survey_service() as survey:
        await survey.track(ticket(1, assignee="grace", assignment_group="desk", priority="P2"))
        # Reassigned after the resolution: the survey still speaks for the people who resolved it.
        await survey.track(
            ticket(
                1, at=MONDAY + timedelta(minutes=5), assignee="linus", assignment_group="l2", priority="P4"
            )
        )
        await survey.step(MONDAY + HOUR)
        [sent] = await survey.events("survey.sent")
        assert (sent.data.assignee, sent.data.assignment_group, sent.data.priority) == ("grace", "desk", "P2")


async def test_a_reopen_before_sending_cancels_the_survey_with_its_reason(survey_service) -> None:
    async with survey_service() as survey:
        await survey.track(ticket(1))
        await survey.step(MONDAY)
        await survey.track(ticket(1, category="open", at=MONDAY + timedelta(minutes=30)))
        await survey.step(MONDAY + 2 * HOUR)
        canceled = await survey.invitation()
        assert (canceled["state"], canceled["reason_code"]) == ("canceled", "reopened")
        [throttled] = await survey.events("survey.throttled")
        assert throttled.data.reason == "the ticket was reopened before the survey was sent"
        assert survey.mails() == []

        # Resolved again: the customer was never asked, so the new resolution is surveyed.
        await survey.track(ticket(1, at=MONDAY + 3 * HOUR))
        await survey.step(MONDAY + 4 * HOUR)
        assert [row["state"] for row in await survey.invitations()] == ["canceled", "sent"]
        assert len(survey.mails()) == 1


async def test_a_cancel_before_sending_cancels_the_survey(survey_service) -> None:
    async with survey_service() as survey:
        await survey.track(ticket(1))
        await survey.track(ticket(1, category="canceled", at=MONDAY + timedelta(minutes=5)))
        await survey.step(MONDAY + 2 * HOUR)
        assert (await survey.invitation())["reason_code"] == "canceled"
        assert survey.mails() == []


async def test_one_invitation_per_resolution_and_a_second_only_if_the_rule_says_so(survey_service) -> None:
    async with survey_service() as survey:
        await survey.track(ticket(1))
        await survey.track(ticket(1, category="closed", at=MONDAY + timedelta(minutes=10)))
        await survey.track(ticket(1, category="closed", at=MONDAY + timedelta(minutes=10)))  # a duplicate
        await survey.step(MONDAY + HOUR)
        assert [row["state"] for row in await survey.invitations()] == ["sent"]
        # Reopened after the survey went out, then resolved again.
        await survey.track(ticket(1, category="open", at=MONDAY + 2 * HOUR))
        await survey.track(ticket(1, at=MONDAY + 3 * HOUR))
        await survey.step(MONDAY + 4 * HOUR)
        second = (await survey.invitations())[1]
        assert (second["cycle"], second["state"], second["reason_code"]) == (
            2,
            "throttled",
            "already_surveyed",
        )
        assert len(survey.mails()) == 1


async def test_with_each_resolution_a_resurvey_after_reopen_is_still_subject_to_the_budget(
    survey_service,
) -> None:
    rules = {"csat": {"rules": [{"name": "each", "each_resolution": True, "delay": "0s"}]}}
    async with survey_service(rules) as survey:
        await survey.track(ticket(1))
        await survey.step(MONDAY)
        await survey.track(ticket(1, category="open", at=MONDAY + HOUR))
        await survey.track(ticket(1, at=MONDAY + 2 * HOUR))
        await survey.step(MONDAY + 2 * HOUR)
        second = (await survey.invitations())[1]
        assert (second["state"], second["reason_code"]) == ("throttled", "cooldown")


async def test_sampling_is_seeded_and_records_who_was_left_out(survey_service) -> None:
    rules = {"csat": {"rules": [{"name": "a third", "sampling_percent": 33}], "sampling_seed": "seed-7"}}
    async with survey_service(rules) as survey:
        for number in range(30):
            await survey.track(ticket(number, email_address=f"person{number}@example.com"))
        await survey.step(MONDAY)
        rows = {row["ticket_key"]: row for row in await survey.invitations()}
        expected = {
            f"generic:{n}" for n in range(30) if sampled(seed="seed-7", key=f"generic:{n}#1", percent=33)
        }
        assert {key for key, row in rows.items() if row["state"] == "scheduled"} == expected
        assert 0 < len(expected) < 30
        left_out = [row for key, row in rows.items() if key not in expected]
        assert {row["reason_code"] for row in left_out} == {"sampling"}
        assert len(await survey.events("survey.throttled")) == len(left_out)


async def test_an_unanswered_survey_expires_and_says_so(survey_service) -> None:
    async with survey_service({"csat": {"rules": [{"name": "short", "expiry": "2d"}]}}) as survey:
        await survey.track(ticket(1))
        await survey.step(MONDAY + HOUR)
        await survey.step(MONDAY + HOUR + timedelta(days=2) - timedelta(seconds=1))
        assert (await survey.invitation())["state"] == "sent"
        await survey.step(MONDAY + HOUR + timedelta(days=2))
        expired = await survey.invitation()
        assert (expired["state"], expired["expired_at"]) == ("expired", MONDAY + HOUR + timedelta(days=2))
        [event] = await survey.events("survey.expired")
        assert event.data.invitation_id == str(expired["invitation_id"])


async def test_a_requester_without_an_address_is_throttled_not_forgotten(survey_service) -> None:
    async with survey_service() as survey:
        await survey.track(ticket(1, email_address=None))
        await survey.step(MONDAY)
        row = await survey.invitation()
        assert (row["state"], row["reason_code"]) == ("throttled", "no_address")


async def test_imported_history_and_rules_that_exclude_invite_nobody(survey_service) -> None:
    rules = {
        "csat": {
            "rules": [{"name": "no-changes", "match": {"kind": "change"}, "survey": False}, {"name": "all"}]
        }
    }
    async with survey_service(rules) as survey:
        await survey.track(ticket(1, change="imported"))
        await survey.track(ticket(2, kind="change"))
        await survey.step(MONDAY + 2 * HOUR)
        [excluded] = await survey.invitations()
        assert (excluded["ticket_key"], excluded["state"]) == ("generic:2", "excluded")
        assert await survey.events() == []
        listed = await survey.client.get("/invitations")
        assert listed.json() == []


async def test_a_title_postgresql_cannot_store_does_not_keep_the_requester_from_being_asked(
    survey_service,
) -> None:
    async with survey_service() as survey:
        await survey.track(ticket(1, title="Printer\x00 on fire"))
        await survey.step(MONDAY + HOUR)
        [mail] = survey.mails()
        assert mail["Subject"] == "How did we do? Your request 1: Printer on fire"
