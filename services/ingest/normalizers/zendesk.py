"""Zendesk webhooks: ticket event subscriptions and trigger-style ticket JSON.

Event subscriptions (`type` "zen:event-type:ticket.*", `detail` the ticket, `event` the change) are
read as documented; only the events below change what Bothways tracks, the rest are ignored.

A trigger or automation webhook posts a JSON body the admin writes with placeholders, e.g.::

    {"event": "status_changed",
     "ticket": {"id": "{{ticket.id}}", "subject": "{{ticket.title}}", "status": "{{ticket.status}}",
                "priority": "{{ticket.priority}}", "type": "{{ticket.ticket_type}}",
                "group": "{{ticket.group.name}}", "organization": "{{ticket.organization.name}}",
                "assignee": {"id": "{{ticket.assignee.id}}", "name": "{{ticket.assignee.name}}"},
                "requester": {"id": "{{ticket.requester.id}}", "email": "{{ticket.requester.email}}",
                              "name": "{{ticket.requester.name}}"},
                "created_at": "{{ticket.created_at_with_timestamp}}",
                "updated_at": "{{ticket.updated_at_with_timestamp}}"},
     "comment": {"public": true, "author": {"id": "{{current_user.id}}", "role": "{{current_user.role}}"}}}

`event` (one of TRIGGER_EVENTS, written by the admin per trigger) and `comment` are optional; the
ticket may also be the flat body. A comment counts as a response only when public and written by
staff who is not the requester; end users other than the requester speak for the customer side.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bothways.events import Person, TicketChange, TicketChanged
from services.ingest.mapping import SourceMapping, fold
from services.ingest.normalizers import (
    Author,
    Comment,
    Facts,
    IgnoredEvent,
    as_utc,
    canonical_ticket,
    category_of,
    code_of,
    dig,
    flag_of,
    joined,
    mapped_fields,
    person,
    required_text,
    required_time,
    text_of,
    time_of,
)

SOURCE = "zendesk"
EVENT_TYPE_PREFIX = "zen:event-type:"
COMMENTED = "commented"  # placeholder for "the comment decides"
EVENT_CHANGES: dict[str, TicketChange | str] = {
    "ticket.created": TicketChange.CREATED,
    "ticket.status_changed": TicketChange.STATUS_CHANGED,
    "ticket.custom_status_changed": TicketChange.STATUS_CHANGED,
    "ticket.priority_changed": TicketChange.PRIORITY_CHANGED,
    "ticket.agent_assignment_changed": TicketChange.ASSIGNED,
    "ticket.group_assignment_changed": TicketChange.ASSIGNED,
    "ticket.comment_added": COMMENTED,
    "ticket.subject_changed": TicketChange.UPDATED,
    "ticket.type_changed": TicketChange.UPDATED,
    "ticket.organization_changed": TicketChange.UPDATED,
    "ticket.requester_changed": TicketChange.UPDATED,
}
TRIGGER_EVENTS: dict[str, TicketChange | str] = {
    "created": TicketChange.CREATED,
    "status_changed": TicketChange.STATUS_CHANGED,
    "priority_changed": TicketChange.PRIORITY_CHANGED,
    "assigned": TicketChange.ASSIGNED,
    "comment_added": COMMENTED,
    "updated": TicketChange.UPDATED,
}
STAFF_ROLES = frozenset({"agent", "admin"})


def normalize(
    payload: dict[str, Any], *, mapping: SourceMapping, received_at: datetime
) -> list[TicketChanged]:
    """One snapshot of the ticket a Zendesk webhook delivery is about."""
    if "type" in payload and "detail" in payload:
        return [_from_event(payload, mapping=mapping, received_at=received_at)]
    return [_from_trigger(payload, mapping=mapping, received_at=received_at)]


def _from_event(payload: dict[str, Any], *, mapping: SourceMapping, received_at: datetime) -> TicketChanged:
    event_type = required_text(payload, "type")
    change = EVENT_CHANGES.get(event_type.removeprefix(EVENT_TYPE_PREFIX))
    if change is None:
        raise IgnoredEvent(event_type, "not a ticket change Bothways tracks")
    detail = payload["detail"]
    external_id = required_text(detail, "id", prefix="detail")
    occurred_at = (
        time_of(payload.get("time"), path="time")
        or time_of(dig(detail, "updated_at"), path="detail.updated_at")
        or as_utc(received_at)
    )
    requester_id = code_of(dig(detail, "requester_id"))
    comment = _event_comment(payload, requester_id=requester_id, at=occurred_at)
    return _snapshot(
        detail,
        prefix="detail",
        external_id=external_id,
        change=comment.change if change == COMMENTED and comment else _plain(change),
        occurred_at=occurred_at,
        requester=person(id=requester_id),
        assignee=code_of(dig(detail, "assignee_id")),
        comment=comment,
        mapping=mapping,
    )


def _from_trigger(payload: dict[str, Any], *, mapping: SourceMapping, received_at: datetime) -> TicketChanged:
    ticket, prefix = (
        (payload["ticket"], "ticket") if isinstance(payload.get("ticket"), dict) else (payload, "")
    )
    external_id = required_text(ticket, "id", prefix=prefix)
    event = text_of(payload.get("event"))
    declared = TRIGGER_EVENTS.get(fold(event)) if event else None
    if event and declared is None:
        raise IgnoredEvent(event, f"not one of {', '.join(TRIGGER_EVENTS)}")
    requester = _trigger_requester(ticket)
    occurred_at = time_of(ticket.get("updated_at"), path=joined(prefix, "updated_at")) or as_utc(received_at)
    comment = _trigger_comment(payload, ticket, requester=requester, at=occurred_at)
    return _snapshot(
        ticket,
        prefix=prefix,
        external_id=external_id,
        change=_trigger_change(declared, comment=comment, ticket=ticket),
        occurred_at=occurred_at,
        requester=requester,
        assignee=text_of(dig(ticket, "assignee")) or code_of(dig(ticket, "assignee_id")),
        comment=comment,
        mapping=mapping,
    )


def _snapshot(
    ticket: dict[str, Any],
    *,
    prefix: str,
    external_id: str,
    change: TicketChange | str,
    occurred_at: datetime,
    requester: Person | None,
    assignee: str | None,
    comment: Comment | None,
    mapping: SourceMapping,
) -> TicketChanged:
    status = required_text(ticket, "status", prefix=prefix)
    raw_priority = text_of(ticket.get("priority"))
    facts = Facts(
        source=SOURCE,
        external_id=external_id,
        mapping=mapping,
        mapped=mapped_fields(ticket, mapping=mapping, prefix=prefix),
        change=change,
        occurred_at=occurred_at,
        created_at=required_time(ticket, "created_at", prefix=prefix),
        status=status,
        status_category=category_of(mapping, status, path=joined(prefix, "status"), source=SOURCE),
        raw_priority=raw_priority,
        priority=mapping.priority(raw_priority),
        title=text_of(ticket.get("subject")) or text_of(ticket.get("title")),
        assignee=assignee,
        requester=requester,
        updated_at=time_of(ticket.get("updated_at"), path=joined(prefix, "updated_at")),
        resolved_at=time_of(ticket.get("solved_at"), path=joined(prefix, "solved_at")),
        comments=(comment,) if comment else (),
    )
    return canonical_ticket(facts)


def _event_comment(payload: dict[str, Any], *, requester_id: str | None, at: datetime) -> Comment | None:
    raw = dig(payload, "event.comment")
    if not isinstance(raw, dict):
        return None
    author_id = code_of(dig(raw, "author.id"))
    if requester_id is not None and author_id == requester_id:
        author = Author.REQUESTER
    else:
        author = Author.AGENT if flag_of(dig(raw, "author.is_staff")) else Author.REQUESTER
    return Comment(created_at=at, public=flag_of(raw.get("is_public")) is not False, author=author)


def _trigger_comment(
    payload: dict[str, Any], ticket: dict[str, Any], *, requester: Person | None, at: datetime
) -> Comment | None:
    raw = next((c for c in (payload.get("comment"), ticket.get("comment")) if isinstance(c, dict)), None)
    if raw is None:
        return None
    public = flag_of(raw.get("public"))
    if public is None:
        public = flag_of(raw.get("is_public"))
    created_at = time_of(raw.get("created_at"), path="comment.created_at") or at
    return Comment(created_at=created_at, public=public is not False, author=_trigger_author(raw, requester))


def _trigger_author(comment: dict[str, Any], requester: Person | None) -> Author:
    author_id = code_of(dig(comment, "author.id"))
    if requester is not None and requester.id is not None and author_id == requester.id:
        return Author.REQUESTER
    role = fold(text_of(dig(comment, "author.role")) or "")
    staff = flag_of(dig(comment, "author.is_staff"))
    if staff or role in STAFF_ROLES:
        return Author.AGENT
    if staff is False or role in ("end-user", "end_user", "end user"):
        return Author.REQUESTER
    return Author.OTHER  # nobody says who wrote it: not proof of a response


def _trigger_requester(ticket: dict[str, Any]) -> Person | None:
    raw = ticket.get("requester")
    if isinstance(raw, dict):
        return person(id=raw.get("id"), email=raw.get("email"), name=raw.get("name"))
    return person(id=ticket.get("requester_id"), email=ticket.get("requester_email"), name=raw)


def _trigger_change(
    declared: TicketChange | str | None, *, comment: Comment | None, ticket: dict[str, Any]
) -> TicketChange | str:
    if declared == COMMENTED or (declared is None and comment is not None):
        return comment.change if comment else TicketChange.UPDATED
    if declared is not None:
        return declared
    created, updated = ticket.get("created_at"), ticket.get("updated_at")
    return TicketChange.CREATED if created and created == updated else TicketChange.UPDATED


def _plain(change: TicketChange | str) -> TicketChange | str:
    # A comment_added event whose comment object is missing still changed the ticket.
    return TicketChange.UPDATED if change == COMMENTED else change
