"""The survey events, built from stored invitation and follow-up rows, with ids derived from what they record."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import asyncpg

from bothways.events import (
    Envelope,
    FollowupClosed,
    FollowupOpened,
    FollowupOverdue,
    Priority,
    SurveyAnswered,
    SurveyDeliveryFailed,
    SurveyEvent,
    SurveyExpired,
    SurveyKind,
    SurveyScheduled,
    SurveySent,
    SurveyThrottled,
    deterministic_id,
    envelope_for,
)
from services.survey.questions import Scale

SOURCE: Final = "/bothways/survey"
Row = asyncpg.Record


def attribution(row: Row) -> dict[str, Any]:
    """The fields every survey event carries, frozen on the invitation."""
    return {
        "invitation_id": str(row["invitation_id"]),
        "survey_kind": SurveyKind(row["kind"]),
        "ticket_key": row["ticket_key"],
        "campaign_id": row["campaign_id"],
        "recipient_id": row["person_id"],
        "business_service": row["business_service"],
        "assignment_group": row["assignment_group"],
        "assignee": row["assignee"],
        "priority": Priority(row["priority"]) if row["priority"] in Priority.__members__ else None,
        "organization": row["organization"],
        "source": row["source"],
    }


def _envelope(event: SurveyEvent, *parts: object) -> Envelope:
    return envelope_for(event, event_id=deterministic_id("survey", *map(str, parts)), source=SOURCE)


def scheduled(row: Row) -> Envelope:
    """survey.scheduled: the invitation passed the rules and the budget."""
    event = SurveyScheduled(**attribution(row), occurred_at=row["send_at"], send_at=row["send_at"])
    return _envelope(event, row["invitation_id"], "scheduled")


def throttled(row: Row, *, at: datetime) -> Envelope:
    """survey.throttled: not sent, with the reason."""
    event = SurveyThrottled(**attribution(row), occurred_at=at, reason=row["reason"] or row["reason_code"])
    return _envelope(event, row["invitation_id"], "throttled", row["reason_code"])


def sent(row: Row) -> Envelope:
    """survey.sent: delivered on its channel."""
    event = SurveySent(
        **attribution(row), occurred_at=row["sent_at"], channel=row["channel"], expires_at=row["expires_at"]
    )
    return _envelope(event, row["invitation_id"], "sent")


def delivery_failed(row: Row) -> Envelope:
    """survey.delivery_failed: given up after its attempts."""
    event = SurveyDeliveryFailed(
        **attribution(row),
        occurred_at=row["failed_at"],
        channel=row["channel"] or "unknown",
        attempts=max(row["attempts"], 1),
        error=(row["last_error"] or "")[:2000],
    )
    return _envelope(event, row["invitation_id"], "delivery_failed", row["attempts"])


def answered(row: Row) -> Envelope:
    """survey.answered: one revision of the answer."""
    scale = Scale(row["scale"])
    event = SurveyAnswered(
        **attribution(row),
        occurred_at=row["answered_at"],
        score=row["score"],
        scale=scale.event_name,
        satisfied=None if scale is Scale.NPS else row["band"] == "satisfied",
        nps_band=row["band"] if scale is Scale.NPS else None,
        reason=row["answer_reason"],
        comment=row["comment"],
    )
    # One event per revision: a changed answer is a new fact; readers keep the latest per invitation.
    return _envelope(event, row["invitation_id"], "answered", row["revision"])


def expired(row: Row) -> Envelope:
    """survey.expired: unanswered at its deadline."""
    event = SurveyExpired(**attribution(row), occurred_at=row["expired_at"])
    return _envelope(event, row["invitation_id"], "expired")


def followup_opened(invitation: Row, followup: Row) -> Envelope:
    """followup.opened: an unhappy answer to follow up."""
    event = FollowupOpened(
        **attribution(invitation),
        occurred_at=followup["opened_at"],
        followup_id=str(followup["followup_id"]),
        due_at=followup["due_at"],
    )
    return _envelope(event, followup["followup_id"], "opened")


def followup_overdue(row: Row) -> Envelope:
    """From a follow-up row joined with its invitation's attribution."""
    event = FollowupOverdue(
        **attribution(row),
        occurred_at=row["due_at"],
        followup_id=str(row["followup_id"]),
        due_at=row["due_at"],
    )
    return _envelope(event, row["followup_id"], "overdue")


def followup_closed(row: Row) -> Envelope:
    """From a follow-up row joined with its invitation's attribution."""
    event = FollowupClosed(
        **attribution(row),
        occurred_at=row["closed_at"],
        followup_id=str(row["followup_id"]),
        due_at=row["due_at"],
        outcome=row["outcome"],
        note=row["note"],
    )
    return _envelope(event, row["followup_id"], "closed")
