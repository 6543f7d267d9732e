"""Delivery: SMTP to a real server (aiosmtpd), failures retried with backoff then visible, a crash mid-send,
and the signed webhook channel."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from bothways import devstack
from bothways.signing import decode_secret, verify
from services.survey.delivery import Channel, SmtpSecurity, SmtpServer
from tests.survey_harness import MONDAY, WEBHOOK_SECRETS, ticket

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
NOW_RULES = {"csat": {"rules": [{"name": "at once", "delay": "0s"}]}}


async def test_the_mail_reaches_the_smtp_server_with_plain_and_html_parts_and_rating_links(
    survey_service,
) -> None:
    async with survey_service() as survey:
        await survey.track(ticket(1))
        await survey.step(MONDAY + HOUR)
        [mail] = survey.mails()
        assert survey.smtp.mailbox.recipients == [["ada@example.com"]]
        assert mail["From"] == "IT Service Desk <desk@example.com>"
        plain = mail.get_body(("plain",)).get_content()
        html = mail.get_body(("html",)).get_content()
        for score in range(1, 6):
            link = survey.link(mail, score)
            assert f'href="http://surveys.test{link}"' in html
            assert (await survey.client.get(link)).status_code == 200
        assert "Hello Ada," in plain
        row = await survey.invitation()
        assert mail["Message-ID"] == f"<survey-{row['invitation_id']}@example.com>"
        detail = (await survey.client.get(f"/invitations/{row['invitation_id']}")).json()
        assert [(a["attempt"], a["outcome"]) for a in detail["delivery_attempts"]] == [(1, "delivered")]


async def test_an_unreachable_mail_server_is_retried_with_backoff_then_the_failure_is_visible(
    survey_service,
) -> None:
    async with survey_service(NOW_RULES, smtp_port=devstack.free_port(), survey_max_attempts=3) as survey:
        await survey.track(ticket(1))
        await survey.step(MONDAY)
        first = await survey.invitation()
        assert (first["state"], first["attempts"], first["due_at"]) == ("scheduled", 1, MONDAY + MINUTE)
        assert "SMTP server unreachable" in first["last_error"]
        await survey.step(MONDAY + MINUTE)
        assert (await survey.invitation())["due_at"] == MONDAY + 5 * MINUTE  # 1 minute, then 4
        assert await survey.events("survey.delivery_failed") == []
        await survey.step(MONDAY + 5 * MINUTE)
        failed = await survey.invitation()
        assert (failed["state"], failed["attempts"], failed["due_at"]) == ("failed", 3, None)
        [event] = await survey.events("survey.delivery_failed")
        assert (event.data.attempts, event.data.channel) == (3, "email")
        assert "SMTP server unreachable" in event.data.error
        listed = (await survey.client.get("/invitations", params={"state": "failed"})).json()
        assert [i["invitation_id"] for i in listed] == [str(failed["invitation_id"])]
        detail = (await survey.client.get(f"/invitations/{failed['invitation_id']}")).json()
        assert [a["outcome"] for a in detail["delivery_attempts"]] == ["failed"] * 3


async def test_a_failed_invitation_can_be_retried_once_the_mail_server_is_fixed(
    survey_service, smtp_server
) -> None:
    async with survey_service(NOW_RULES, smtp_port=devstack.free_port(), survey_max_attempts=1) as survey:
        await survey.track(ticket(1))
        await survey.step(MONDAY)
        failed = await survey.invitation()
        assert failed["state"] == "failed"
        # The administrator fixes the mail server's address.
        courier = survey.survey.courier
        working = SmtpServer(host="127.0.0.1", port=smtp_server.port, security=SmtpSecurity.NONE)
        courier.postage = replace(courier.postage, smtp=working)
        retried = await survey.client.post(f"/invitations/{failed['invitation_id']}/retry")
        assert retried.status_code == 200, retried.text
        again = await survey.client.post(f"/invitations/{failed['invitation_id']}/retry")
        assert again.status_code == 409
        await survey.step(MONDAY + HOUR)
        sent = await survey.invitation()
        assert (sent["state"], sent["attempts"]) == ("sent", 2)
        assert len(survey.mails()) == 1


async def test_a_refused_address_fails_at_once_without_retries(survey_service) -> None:
    async with survey_service(NOW_RULES) as survey:
        await survey.track(ticket(1, email_address="bounce@example.com"))
        await survey.step(MONDAY)
        row = await survey.invitation()
        assert (row["state"], row["attempts"]) == ("failed", 1)
        assert row["last_error"].startswith("recipient refused: 550")


async def test_a_sender_that_dies_mid_send_is_replaced_after_its_lease_and_the_attempt_is_kept(
    survey_service,
) -> None:
    async with survey_service(NOW_RULES, survey_send_lease_seconds=300) as survey:
        await survey.track(ticket(1))
        await survey.step(MONDAY, deliver=False)  # the claim committed, then the process died
        claimed = await survey.invitation()
        assert (claimed["state"], claimed["attempts"]) == ("sending", 1)
        await survey.step(MONDAY + timedelta(seconds=299))
        assert survey.mails() == []
        await survey.step(MONDAY + timedelta(seconds=300))
        [_mail] = survey.mails()
        sent = await survey.invitation()
        assert (sent["state"], sent["attempts"]) == ("sent", 2)
        detail = (await survey.client.get(f"/invitations/{sent['invitation_id']}")).json()
        assert [(a["attempt"], a["outcome"]) for a in detail["delivery_attempts"]] == [
            (1, "unknown"),
            (2, "delivered"),
        ]
        assert len(await survey.events("survey.sent")) == 1


async def test_the_webhook_channel_posts_a_signed_invitation_and_retries_a_5xx(
    survey_service, webhook_receiver
) -> None:
    url, handler = webhook_receiver
    handler.statuses = [503]
    async with survey_service(
        NOW_RULES,
        survey_channel=Channel.WEBHOOK,
        survey_webhook_url=url,
        survey_webhook_secrets=WEBHOOK_SECRETS,
    ) as survey:
        await survey.track(ticket(1))
        await survey.step(MONDAY)
        assert (await survey.invitation())["state"] == "scheduled"
        await survey.step(MONDAY + MINUTE)
        row = await survey.invitation()
        assert (row["state"], row["channel"], row["attempts"]) == ("sent", "webhook", 2)
        assert survey.mails() == []
        (first_headers, _first_body), (headers, body) = handler.received
        # The same id on the retry, so the platform can drop a duplicate; each secret verifies alone.
        assert first_headers["webhook-id"] == headers["webhook-id"] == f"survey-{row['invitation_id']}"
        for secret in WEBHOOK_SECRETS:
            verify(headers, body, keys=[decode_secret(secret)], now=MONDAY + MINUTE)
        payload = json.loads(body)
        assert payload["recipient"]["email"] == "ada@example.com"
        assert payload["ticket"] == {"key": "generic:1", "external_id": "1", "title": "Cannot send mail"}
        five = payload["links"]["choices"][0]
        assert five["score"] == 5
        assert five["url"].startswith("http://surveys.test/s/")
        page = await survey.client.get(five["url"].removeprefix("http://surveys.test"))
        assert 'value="5" checked' in page.text


async def test_a_webhook_that_refuses_the_body_fails_without_retries(
    survey_service, webhook_receiver
) -> None:
    url, handler = webhook_receiver
    handler.statuses = [400]
    async with survey_service(
        NOW_RULES,
        survey_channel=Channel.WEBHOOK,
        survey_webhook_url=url,
        survey_webhook_secrets=WEBHOOK_SECRETS[:1],
    ) as survey:
        await survey.track(ticket(1))
        await survey.step(MONDAY)
        row = await survey.invitation()
        assert (row["state"], row["last_error"][:23]) == ("failed", "webhook answered 400: ")
