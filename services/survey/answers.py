"""Answers from the public page: the link checked against the database, the answer validated and recorded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from bothways.db import Connection
from bothways.outbox import enqueue
from services.survey import facts, followups, questions, store, tokens
from services.survey.metrics import ANSWERED, service_label
from services.survey.questions import Scale
from services.survey.rules import SurveyRules
from services.survey.scoring import InvalidScore

MAX_COMMENT_LENGTH: Final = 2000
# An answer is taken while the invitation is out: a valid token proves a mail was written for it, even
# when the outcome of its send was not recorded yet, a retry is pending, or the send was judged failed
# (a timeout after the server took the message): the customer's answer counts all the same.
ANSWERABLE: Final = frozenset({"scheduled", "sending", "sent", "answered", "failed"})


class LinkProblem(Exception):
    """A link that cannot be honoured; the page shows `title` and `message` with `status_code`."""

    def __init__(self, status_code: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.title = title
        self.message = message


class AnswerInvalid(Exception):
    """A submitted answer that breaks a rule; `field` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


INVALID_LINK: Final = LinkProblem(
    404,
    "This survey link is not valid",
    "Please use the link from your e-mail exactly as it was sent. Nothing was recorded.",
)


@dataclass(frozen=True)
class Answer:
    """A validated answer: the reason is kept only after a low score, empty texts are None."""

    score: int
    reason: str | None
    comment: str | None


async def open_invitation(
    conn: Connection, *, token: str, secrets: Sequence[bytes], now: datetime, for_update: bool = False
) -> store.Row:
    """The invitation a link opens, if the token is authentic and the invitation still takes answers."""
    try:
        claims = tokens.read(token, secrets=secrets, now=now)
    except tokens.TokenRejected as exc:
        if exc.rejection is tokens.Rejection.EXPIRED:
            raise closed_problem() from exc
        raise INVALID_LINK from exc
    row = await store.invitation(conn, invitation_id=claims.invitation_id, for_update=for_update)
    if row is None:
        raise INVALID_LINK
    if row["state"] == "expired" or (row["expires_at"] is not None and now >= row["expires_at"]):
        raise closed_problem()
    if row["state"] not in ANSWERABLE or row["expires_at"] is None:
        raise LinkProblem(410, "This survey is no longer open", "It was withdrawn. Nothing was recorded.")
    return row


def closed_problem() -> LinkProblem:
    """The page of a link past its deadline."""
    return LinkProblem(
        410,
        "This survey has closed",
        "The time to answer it has passed. Thank you all the same. Nothing was recorded.",
    )


def validate(
    *, scale: Scale, reasons: Sequence[str], score: str | None, reason: str | None, comment: str | None
) -> Answer:
    """Check a submitted form against the invitation's scale and the configured reasons."""
    if score is None or not score.strip():
        raise AnswerInvalid("score", "Please choose an answer.")
    try:
        number = questions.validate(scale, int(score))
    except (ValueError, InvalidScore) as exc:
        raise AnswerInvalid("score", f"{score!r} is not one of the answers offered.") from exc
    if not store.storable(f"{reason or ''}{comment or ''}"):
        raise AnswerInvalid("comment", "The text holds characters that cannot be stored; please retype it.")
    chosen = (reason or "").strip() or None
    if chosen is not None and chosen not in reasons:
        raise AnswerInvalid("reason", f"{chosen!r} is not one of the reasons offered.")
    text = (comment or "").strip() or None
    if text is not None and len(text) > MAX_COMMENT_LENGTH:
        raise AnswerInvalid("comment", f"Please keep the comment under {MAX_COMMENT_LENGTH} characters.")
    # Reasons explain a low score; one left checked after switching to a high score is dropped.
    return Answer(number, chosen if questions.is_low(scale, number) else None, text)


async def record(
    conn: Connection, *, row: store.Row, answer: Answer, rules: SurveyRules, now: datetime
) -> store.Row:
    """Keep the answer (a change is a new revision), announce it, open a follow-up after a low score."""
    if (row["score"], row["answer_reason"], row["comment"]) == (answer.score, answer.reason, answer.comment):
        return row  # the same answer again (a double click, a reload): nothing new happened
    scale = Scale(row["scale"])
    updated = await store.record_answer(
        conn,
        invitation_id=row["invitation_id"],
        revision=row["revision"] + 1,
        score=answer.score,
        band=questions.band(scale, answer.score),
        reason=answer.reason,
        comment=answer.comment,
        now=now,
    )
    await enqueue(conn, [facts.answered(updated)])
    ANSWERED.labels(updated["kind"], service_label(updated["business_service"]), updated["band"]).inc()
    if questions.is_low(scale, answer.score):
        await followups.open_for(conn, invitation=updated, policy=rules.followup, now=now)
    return updated
