"""The answer links: a GET records nothing, a POST records; forged, expired, closed and reused links."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

import pytest

from services.survey import tokens
from tests.survey_harness import MONDAY, ticket

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)


async def sent_survey(survey, *, rules_delay: timedelta = HOUR) -> str:
    """Resolve a ticket, send its survey; the path of the mail's '2' link."""
    await survey.track(ticket(1))
    await survey.step(MONDAY + rules_delay)
    [mail] = survey.mails()
    return survey.link(mail, 2)


async def test_following_a_link_shows_the_score_selected_and_records_nothing(survey_service) -> None:
    async with survey_service() as survey:
        link = await sent_survey(survey)
        page = await survey.client.get(link)
        assert page.status_code == 200
        assert 'value="2" data-low checked' in page.text
        assert "It took too long" in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "script-src" not in page.headers["content-security-policy"]
        assert (await survey.invitation())["state"] == "sent"
        assert await survey.events("survey.answered") == []


async def test_submitting_records_the_answer_announces_it_and_thanks(survey_service) -> None:
    async with survey_service() as survey:
        link = await sent_survey(survey)
        survey.clock.now = MONDAY + 2 * HOUR
        thanks = await survey.client.post(
            link.split("?")[0], data={"score": "2", "reason": "It took too long", "comment": "  Two days!  "}
        )
        assert thanks.status_code == 200
        assert "Thank you for your feedback" in thanks.text
        assert "Someone from the team will follow up" in thanks.text
        row = await survey.invitation()
        assert (row["state"], row["score"], row["band"], row["answer_reason"], row["comment"]) == (
            "answered",
            2,
            "dissatisfied",
            "It took too long",
            "Two days!",
        )
        [event] = await survey.events("survey.answered")
        assert (event.data.score, event.data.scale, event.data.satisfied, event.data.reason) == (
            2,
            "1-5",
            False,
            "It took too long",
        )


async def test_a_reason_left_checked_after_switching_to_a_good_score_is_dropped(survey_service) -> None:
    async with survey_service() as survey:
        link = (await sent_survey(survey)).split("?")[0]
        await survey.client.post(link, data={"score": "5", "reason": "It took too long"})
        row = await survey.invitation()
        assert (row["score"], row["answer_reason"]) == (5, None)


async def test_the_answer_may_be_changed_until_expiry_and_counts_once(survey_service) -> None:
    async with survey_service() as survey:
        link = (await sent_survey(survey)).split("?")[0]
        survey.clock.now = MONDAY + 2 * HOUR
        await survey.client.post(link, data={"score": "2"})
        await survey.client.post(link, data={"score": "2"})  # a double click changes nothing
        survey.clock.now = MONDAY + 3 * HOUR
        again = await survey.client.post(link, data={"score": "4", "comment": "Sorted out after all"})
        assert again.status_code == 200
        row = await survey.invitation()
        assert (row["score"], row["revision"], row["first_answered_at"], row["answered_at"]) == (
            4,
            2,
            MONDAY + 2 * HOUR,
            MONDAY + 3 * HOUR,
        )
        assert [e.data.score for e in await survey.events("survey.answered")] == [2, 4]
        detail = (await survey.client.get(f"/invitations/{row['invitation_id']}")).json()
        assert [a["score"] for a in detail["answers"]] == [2, 4]
        # The form shows the current answer to someone who comes back.
        page = await survey.client.get(link)
        assert 'value="4" checked' in page.text
        assert "You answered on" in page.text

        survey.clock.now = row["expires_at"]
        late = await survey.client.post(link, data={"score": "1"})
        assert late.status_code == 410
        assert "This survey has closed" in late.text
        assert (await survey.invitation())["score"] == 4


async def test_a_forged_link_is_refused_and_records_nothing(survey_service) -> None:
    async with survey_service() as survey:
        link = (await sent_survey(survey)).split("?")[0]
        token = link.removeprefix("/s/")
        raw = bytearray(base64.urlsafe_b64decode(token + "=="))
        raw[-1] ^= 0x01
        forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
        for attempt in (forged, token[:-4], "not-a-token", "x" * 300):
            response = await survey.client.post(f"/s/{attempt}", data={"score": "1"})
            assert response.status_code == 404, attempt
            assert "This survey link is not valid" in response.text
        # A well-signed token for an invitation that does not exist (a secret leaked, a database restored).
        unknown = tokens.issue(
            invitation_id=uuid.uuid4(),
            expires_at=MONDAY + timedelta(days=9),
            secret=survey.survey.settings.token_keys()[0],
        )
        assert (await survey.client.post(f"/s/{unknown}", data={"score": "1"})).status_code == 404
        assert (await survey.invitation())["state"] == "sent"
        assert await survey.events("survey.answered") == []


async def test_an_expired_token_is_refused_even_if_the_database_would_allow_it(survey_service) -> None:
    async with survey_service() as survey:
        await sent_survey(survey)
        row = await survey.invitation()
        expired = tokens.issue(
            invitation_id=row["invitation_id"],
            expires_at=MONDAY,
            secret=survey.survey.settings.token_keys()[0],
        )
        response = await survey.client.get(f"/s/{expired}")
        assert response.status_code == 410
        assert "This survey has closed" in response.text


async def test_a_link_to_a_canceled_survey_is_gone(survey_service) -> None:
    async with survey_service() as survey:
        link = (await sent_survey(survey)).split("?")[0]
        await survey.pool.execute("UPDATE invitation SET state = 'canceled'")
        response = await survey.client.post(link, data={"score": "5"})
        assert response.status_code == 410
        assert "no longer open" in response.text


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ({}, "Please choose an answer."),
        ({"score": "6"}, "is not one of the answers offered"),
        ({"score": "four"}, "is not one of the answers offered"),
        ({"score": "1", "reason": "The coffee"}, "is not one of the reasons offered"),
        ({"score": "1", "comment": "x" * 2001}, "under 2000 characters"),
        ({"score": "1", "comment": "nul\x00byte"}, "cannot be stored"),
    ],
)
async def test_an_invalid_answer_is_refused_naming_the_problem(survey_service, form, problem) -> None:
    async with survey_service() as survey:
        link = (await sent_survey(survey)).split("?")[0]
        response = await survey.client.post(link, data=form)
        assert response.status_code == 422
        assert problem in response.text
        assert 'role="alert"' in response.text
        assert (await survey.invitation())["state"] == "sent"


async def test_an_out_of_range_score_in_a_link_is_named_and_nothing_is_selected(survey_service) -> None:
    async with survey_service() as survey:
        link = (await sent_survey(survey)).split("?")[0]
        response = await survey.client.get(f"{link}?score=9")
        assert response.status_code == 422
        assert "is not one of the answers offered" in response.text
        assert " checked>" not in response.text


async def test_a_survey_judged_failed_still_takes_the_answer_its_link_proves_was_mailed(
    survey_service,
) -> None:
    async with survey_service() as survey:
        link = (await sent_survey(survey)).split("?")[0]
        # A timeout after the server took the message: recorded as failed, yet the mail arrived.
        await survey.pool.execute("UPDATE invitation SET state = 'failed', due_at = NULL")
        response = await survey.client.post(link, data={"score": "4"})
        assert response.status_code == 200
        assert (await survey.invitation())["state"] == "answered"
