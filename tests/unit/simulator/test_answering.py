"""The customers' side of a survey: reading an invitation mail as the survey service writes it, and the form."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from bothways.events import SurveyKind
from services.survey.messages import Letter, Sender, email_message
from services.survey.questions import Scale
from simulator.answering import Invitation, MailFolder, answer_form, read_invitation
from simulator.satisfaction import NOT_RESOLVED, Answer

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SENDER = Sender(
    address="IT Service Desk <desk@example.com>",
    team="IT",
    time_zone="Europe/Berlin",
    message_id_domain="example.com",
)
PAGE = "http://127.0.0.1:8003/s/AbC-12_xyz"


def invitation_mail(kind: SurveyKind = SurveyKind.CSAT, title: str = "Payslip: not visible") -> EmailMessage:
    """A mail exactly as the survey service writes it."""
    letter = Letter(
        invitation_id=uuid.uuid4(),
        kind=kind,
        scale=Scale.FIVE_POINT if kind is SurveyKind.CSAT else Scale.NPS,
        question="How satisfied are you?",
        page_url=PAGE,
        expires_at=NOW + timedelta(days=7),
        recipient_email="Ada.Lovelace7@Finance.example",
        recipient_name="Ada",
        ticket_key="jira:IT-1098160020" if kind is SurveyKind.CSAT else None,
        external_id="IT-1098160020" if kind is SurveyKind.CSAT else None,
        ticket_title=title if kind is SurveyKind.CSAT else None,
    )
    return email_message(letter, sender=SENDER, now=NOW)


def test_an_invitation_mail_gives_the_recipient_the_ticket_and_the_link_of_every_score() -> None:
    invitation = read_invitation(invitation_mail())
    assert invitation == Invitation(
        "ada.lovelace7@finance.example", "IT-1098160020", PAGE, frozenset(range(1, 6))
    )
    assert invitation.link(2) == f"{PAGE}?score=2"


def test_a_mail_that_is_not_a_csat_invitation_is_not_read_as_one() -> None:
    assert read_invitation(invitation_mail(SurveyKind.NPS)) is None
    other = EmailMessage()
    other["Subject"] = "Your request IT-1 was updated"
    other["To"] = "ada@example.com"
    other.set_content("No links here.")
    assert read_invitation(other) is None


def test_the_form_carries_the_reason_and_comment_only_after_a_low_score() -> None:
    assert answer_form(Answer(score=5, reason=None, comment=None)) == {"score": "5"}
    low = Answer(score=1, reason=NOT_RESOLVED, comment="Still broken.")
    assert answer_form(low) == {"score": "1", "reason": NOT_RESOLVED, "comment": "Still broken."}


def test_the_mail_folder_gives_each_new_mail_once_and_skips_what_was_there_before(tmp_path: Path) -> None:
    (tmp_path / "20261123T090000-00001.eml").write_bytes(invitation_mail().as_bytes())
    folder = MailFolder(tmp_path)
    folder.skip_existing()
    assert list(folder.new_messages()) == []
    (tmp_path / "20261123T090001-00002.eml").write_bytes(invitation_mail(title="Other").as_bytes())
    [message] = folder.new_messages()
    assert "Other" in message["Subject"]
    assert list(folder.new_messages()) == []
