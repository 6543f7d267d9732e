"""The invitation mail (plain text and HTML, one link per rating) and the webhook body."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from bothways.events import SurveyKind
from services.survey.messages import Letter, Sender, email_message, subject, webhook_payload
from services.survey.questions import Scale, choices, is_low

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SENDER = Sender(
    "IT Service Desk <desk@example.com>", "IT Service Desk", "Europe/Berlin", "surveys.example.com"
)
INVITATION = uuid.UUID("0b8f5b43-2f6e-4c54-9d4e-6a5bb1a0d3f1")


def letter(scale: Scale = Scale.FIVE_POINT, **overrides: object) -> Letter:
    values = {
        "invitation_id": INVITATION,
        "kind": scale.kind,
        "scale": scale,
        "question": "How satisfied are you?",
        "page_url": "https://surveys.example.com/s/TOKEN",
        "expires_at": datetime(2026, 11, 9, 9, 0, tzinfo=UTC),
        "recipient_email": "ada@example.com",
        "recipient_name": "Ada <Lovelace>",
        "ticket_key": "jira:SUP-42",
        "external_id": "SUP-42",
        "ticket_title": "Cannot send mail",
        **overrides,
    }
    return Letter(**values)  # type: ignore[arg-type]


def parts(message) -> tuple[str, str]:
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return plain, html


@pytest.mark.parametrize(
    ("scale", "scores"),
    [(Scale.FIVE_POINT, [5, 4, 3, 2, 1]), (Scale.TWO_POINT, [2, 1]), (Scale.NPS, list(range(11)))],
)
def test_the_mail_has_a_plain_and_an_html_part_with_one_link_per_answer(
    scale: Scale, scores: list[int]
) -> None:
    message = email_message(letter(scale), sender=SENDER, now=NOW)
    plain, html = parts(message)
    for score in scores:
        link = f"https://surveys.example.com/s/TOKEN?score={score}"
        assert link in plain
        assert f'href="{link}"' in html
    assert message.get_content_type() == "multipart/alternative"
    assert "Monday 9 November 2026, 10:00 (Europe/Berlin)" in plain


def test_the_mail_escapes_what_it_quotes_and_carries_stable_headers() -> None:
    message = email_message(letter(), sender=SENDER, now=NOW)
    _, html = parts(message)
    assert "Ada &lt;Lovelace&gt;" in html
    assert "<Lovelace>" not in html
    assert message["Message-ID"] == f"<survey-{INVITATION}@surveys.example.com>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "How did we do? Your request SUP-42: Cannot send mail"


def test_an_nps_mail_does_not_talk_about_a_ticket() -> None:
    nps = letter(Scale.NPS, ticket_key=None, external_id=None, ticket_title=None, campaign_id="c-1")
    plain, _ = parts(email_message(nps, sender=SENDER, now=NOW))
    assert "request" not in plain.split("\n\n")[1]
    assert subject(nps).startswith("Would you recommend")


def test_the_webhook_body_carries_the_invitation_and_every_link() -> None:
    body = webhook_payload(letter(Scale.TWO_POINT), recipient_id="p-1")
    assert body["invitation_id"] == str(INVITATION)
    assert body["survey_kind"] == SurveyKind.CSAT
    assert body["recipient"] == {"id": "p-1", "email": "ada@example.com", "name": "Ada <Lovelace>"}
    assert [c["url"] for c in body["links"]["choices"]] == [
        "https://surveys.example.com/s/TOKEN?score=2",
        "https://surveys.example.com/s/TOKEN?score=1",
    ]


def test_low_answers_are_the_dissatisfied_and_the_detractors() -> None:
    assert [c.score for c in choices(Scale.FIVE_POINT) if c.low] == [2, 1]
    assert [c.score for c in choices(Scale.TWO_POINT) if c.low] == [1]
    assert [c.score for c in choices(Scale.NPS) if c.low] == [0, 1, 2, 3, 4, 5, 6]
    assert not is_low(Scale.FIVE_POINT, 3)
