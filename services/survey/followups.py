"""Closing the loop: a follow-up per unhappy answer, due in business time, overdue when left open, closed
with an outcome (optionally re-surveying the person, optionally reopening or annotating the ticket)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bothways.db import Connection
from bothways.errors import Conflict, InvalidInput, NotFound
from bothways.outbox import enqueue
from bothways.scheduler import wake_scheduler
from services.sla.calendar import BusinessClock
from services.survey import facts, store
from services.survey.metrics import FOLLOWUPS_OPENED, FOLLOWUPS_OVERDUE, service_label
from services.survey.rules import FollowupPolicy


class TicketAction(StrEnum):
    """What the ticket webhook asks the ITSM platform to do with the original ticket."""

    ANNOTATE = "annotate"
    REOPEN = "reopen"


@dataclass(frozen=True)
class Closing:
    """How a follow-up was closed."""

    outcome: str
    note: str | None
    resurvey: bool | None
    ticket_action: TicketAction | None


def due_at(policy: FollowupPolicy, *, opened_at: datetime) -> datetime:
    """When a follow-up opened at an instant is due: `policy.due` of business time on its calendar."""
    clock = BusinessClock(policy.calendar)
    return clock.add_business_seconds(start=opened_at, seconds=int(policy.due.total_seconds()))


async def open_for(conn: Connection, *, invitation: store.Row, policy: FollowupPolicy, now: datetime) -> None:
    """Open the follow-up of an invitation's unhappy answer, unless it has one already."""
    opened = await store.open_followup(
        conn, invitation_id=invitation["invitation_id"], now=now, due_at=due_at(policy, opened_at=now)
    )
    if opened is None:
        return
    await enqueue(conn, [facts.followup_opened(invitation, opened)])
    await wake_scheduler(conn)
    FOLLOWUPS_OPENED.labels(invitation["kind"], service_label(invitation["business_service"])).inc()


async def mark_overdue(conn: Connection, *, now: datetime, limit: int) -> int:
    """Follow-ups past their due time and still open become overdue, announced once."""
    rows = await store.mark_overdue(conn, now=now, limit=limit)
    await enqueue(conn, [facts.followup_overdue(row) for row in rows])
    for row in rows:
        FOLLOWUPS_OVERDUE.labels(row["kind"], service_label(row["business_service"])).inc()
    return len(rows)


async def close(
    conn: Connection,
    *,
    followup_id: uuid.UUID,
    closing: Closing,
    policy: FollowupPolicy,
    ticket_webhook: bool,
    now: datetime,
) -> store.Row:
    """Close an open or overdue follow-up; a re-survey is scheduled exempt from the fatigue budget."""
    state = await store.lock_followup(conn, followup_id=followup_id)
    if state is None:
        raise NotFound(f"no follow-up {followup_id}")
    if state == "closed":
        raise Conflict(f"the follow-up {followup_id} is closed already")
    if closing.ticket_action is not None and not ticket_webhook:
        raise InvalidInput(
            "no ticket webhook is configured (BOTHWAYS_TICKET_WEBHOOK_URL)", field="ticket_action"
        )
    current = await store.followup(conn, followup_id=followup_id)
    assert current is not None
    if closing.ticket_action is not None and current["ticket_key"] is None:
        raise InvalidInput("an NPS follow-up has no ticket to reopen or annotate", field="ticket_action")
    resurvey = policy.resurvey if closing.resurvey is None else closing.resurvey
    resurvey_id = await _resurvey(conn, followup=current, policy=policy, now=now) if resurvey else None
    await store.close_followup(
        conn,
        followup_id=followup_id,
        now=now,
        outcome=closing.outcome,
        note=closing.note,
        resurvey_invitation_id=resurvey_id,
        ticket_action=closing.ticket_action.value if closing.ticket_action else None,
    )
    closed = await store.followup(conn, followup_id=followup_id)
    assert closed is not None
    await enqueue(conn, [facts.followup_closed(closed)])
    await wake_scheduler(conn)
    return closed


async def _resurvey(
    conn: Connection, *, followup: store.Row, policy: FollowupPolicy, now: datetime
) -> uuid.UUID | None:
    original = await store.invitation(conn, invitation_id=followup["invitation_id"])
    assert original is not None
    copied = [
        "person_id",
        "ticket_key",
        "cycle",
        "campaign_id",
        "campaign_run",
        "source",
        "external_id",
        "ticket_kind",
        "ticket_title",
        "business_service",
        "assignment_group",
        "assignee",
        "priority",
        "organization",
        "resolved_at",
        "rule",
        "scale",
        "expiry_seconds",
    ]
    row = {
        **{name: original[name] for name in copied},
        "invitation_id": str(uuid.uuid4()),
        "kind": original["kind"],
        "state": "scheduled",
        "resurvey_of": str(original["invitation_id"]),
        "send_at": (now + policy.resurvey_delay).isoformat(),
    }
    inserted = await store.insert_invitations(conn, rows=[row])
    await enqueue(conn, [facts.scheduled(r) for r in inserted])
    return inserted[0]["invitation_id"] if inserted else None
