"""What an invitation says: the e-mail (plain text and HTML, rating buttons as links) and the webhook body."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from bothways.events import SurveyKind
from services.survey.questions import Scale, choices
from services.survey.rendering import render, when


@dataclass(frozen=True)
class Letter:
    """Everything an invitation message is written from."""

    invitation_id: uuid.UUID
    kind: SurveyKind
    scale: Scale
    question: str
    page_url: str
    expires_at: datetime
    recipient_email: str | None
    recipient_name: str | None = None
    ticket_key: str | None = None
    external_id: str | None = None
    ticket_title: str | None = None
    campaign_id: str | None = None

    def score_url(self, score: int) -> str:
        """The link of one rating button: it opens the page with the score pre-selected, it records nothing."""
        return f"{self.page_url}?score={score}"


@dataclass(frozen=True)
class Sender:
    """Who the mail comes from and how dates are shown."""

    address: str
    team: str
    time_zone: str
    message_id_domain: str


def subject(letter: Letter) -> str:
    """The subject line."""
    if letter.kind is SurveyKind.CSAT:
        title = f": {letter.ticket_title}" if letter.ticket_title else ""
        return f"How did we do? Your request {letter.external_id}{title}"[:200]
    return "Would you recommend our IT services? One question"


def email_message(letter: Letter, *, sender: Sender, now: datetime) -> EmailMessage:
    """The invitation as a multipart/alternative mail; its Message-ID is stable across retries."""
    if not letter.recipient_email:
        raise ValueError("the invitation has no recipient address")
    context = {
        "letter": letter,
        "choices": choices(letter.scale),
        "expires": when(letter.expires_at, time_zone=sender.time_zone),
        "team": sender.team,
        "subject": subject(letter),
    }
    message = EmailMessage()
    message["Subject"] = subject(letter)
    message["From"] = sender.address
    message["To"] = letter.recipient_email
    message["Date"] = format_datetime(now)
    # The same id on every attempt: a receiving system can drop a copy sent again after a crash.
    message["Message-ID"] = f"<survey-{letter.invitation_id}@{sender.message_id_domain}>"
    # RFC 3834: no out-of-office replies to an automatic message.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(render("mail.txt", **context))
    message.add_alternative(render("mail.html", **context), subtype="html")
    return message


def webhook_payload(letter: Letter, *, recipient_id: str | None) -> dict[str, Any]:
    """The body posted to a platform that sends its own mail: the invitation and its links."""
    return {
        "type": "survey.invitation",
        "invitation_id": str(letter.invitation_id),
        "survey_kind": letter.kind.value,
        "scale": letter.scale.value,
        "question": letter.question,
        "recipient": {"id": recipient_id, "email": letter.recipient_email, "name": letter.recipient_name},
        "ticket": None
        if letter.ticket_key is None
        else {"key": letter.ticket_key, "external_id": letter.external_id, "title": letter.ticket_title},
        "campaign_id": letter.campaign_id,
        "expires_at": letter.expires_at.isoformat(),
        "links": {
            "page": letter.page_url,
            "choices": [
                {"score": choice.score, "label": choice.label, "url": letter.score_url(choice.score)}
                for choice in choices(letter.scale)
            ],
        },
    }
