"""Freshservice: ticket webhooks from the Workflow Automator, in the API v2 ticket shape.

The admin's "Trigger webhook" action posts JSON such as::

    {"event": "ticket_updated",
     "ticket": {"id": {{ticket.id_numeric}}, "subject": "{{ticket.subject}}", "status": "{{ticket.status}}",
                "priority": "{{ticket.priority}}", "type": "{{ticket.ticket_type}}",
                "group": "{{ticket.group.name}}", "department": "{{ticket.department.name}}", ...},
     "changes": {"status": [2, 3]},
     "conversation": {"private": false, "incoming": false, "user_id": 1001, "created_at": "..."}}

The ticket may also come bare, as `{"ticket": ...}` from the API, or inside `data` as Freshworks
product events give it. Status and priority may be codes (2 Open, 3 Pending, 4 Resolved, 5 Closed;
1 Low .. 4 Urgent) or labels. `changes` maps a field to [old, new]; `conversation` is a reply or note:
a private note never counts as a response, an incoming one (or one by the requester) is the
customer speaking, anything else is an agent's reply or public note, which Freshservice counts as
a response. `stats.first_responded_at`, `stats.resolved_at` and `stats.closed_at` are used as given.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bothways.events import Person, TicketChange, TicketChanged
from services.ingest.mapping import SourceMapping, fold
from services.ingest.normalizers import (
    Author,
    Comment,
    Facts,
    IgnoredEvent,
    InvalidField,
    MissingField,
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

SOURCE = "freshservice"
CONVERSED = "conversed"  # placeholder for "the conversation decides"
EVENTS: dict[str, TicketChange | str | None] = {
    "ticket_created": TicketChange.CREATED,
    "onticketcreate": TicketChange.CREATED,
    "ticket_updated": None,
    "onticketupdate": None,
    "conversation_created": CONVERSED,
    "onconversationcreate": CONVERSED,
    "note_added": CONVERSED,
    "reply_added": CONVERSED,
    "reply_sent": CONVERSED,
}
# `changes` may name several fields; the snapshot names the most telling one, in this order.
CHANGED_FIELDS = {
    "status": TicketChange.STATUS_CHANGED,
    "priority": TicketChange.PRIORITY_CHANGED,
    "responder_id": TicketChange.ASSIGNED,
    "group_id": TicketChange.ASSIGNED,
    "agent": TicketChange.ASSIGNED,
    "group": TicketChange.ASSIGNED,
}
# Placeholders render display ids ("#INC-42", "SR-7"); the API and every other delivery use 42.
DISPLAY_ID = re.compile(r"^#?(?:[A-Za-z]+-)?(?P<number>\d+)$")


def normalize(
    payload: dict[str, Any], *, mapping: SourceMapping, received_at: datetime
) -> list[TicketChanged]:
    """One snapshot of the ticket a Freshservice webhook delivery is about."""
    body, base = (payload["data"], "data") if isinstance(payload.get("data"), dict) else (payload, "")
    declared = _declared_change(payload)
    ticket, prefix = (
        (body["ticket"], joined(base, "ticket")) if isinstance(body.get("ticket"), dict) else (body, base)
    )
    external_id = _external_id(required_text(ticket, "id", prefix=prefix), path=joined(prefix, "id"))
    requester = _requester(ticket, body)
    comment = _conversation(body, requester=requester, prefix=base)
    updated_at = time_of(ticket.get("updated_at"), path=joined(prefix, "updated_at"))
    occurred_at = (
        (comment.created_at if comment else None)
        or updated_at
        or time_of(payload.get("timestamp"), path="timestamp")
        or as_utc(received_at)
    )
    status = required_text(ticket, "status", prefix=prefix)
    raw_priority = text_of(ticket.get("priority"))
    facts = Facts(
        source=SOURCE,
        external_id=external_id,
        mapping=mapping,
        mapped=mapped_fields(ticket, mapping=mapping, prefix=prefix),
        change=_change(declared, body=body, ticket=ticket, comment=comment),
        occurred_at=occurred_at,
        created_at=required_time(ticket, "created_at", prefix=prefix),
        status=status,
        status_category=category_of(mapping, status, path=joined(prefix, "status"), source=SOURCE),
        raw_priority=raw_priority,
        priority=mapping.priority(raw_priority),
        title=text_of(ticket.get("subject")),
        assignee=_assignee(ticket),
        requester=requester,
        updated_at=updated_at,
        resolved_at=time_of(dig(ticket, "stats.resolved_at"), path=joined(prefix, "stats.resolved_at")),
        closed_at=time_of(dig(ticket, "stats.closed_at"), path=joined(prefix, "stats.closed_at")),
        comments=(comment,) if comment else (),
    )
    return [canonical_ticket(facts)]


def _declared_change(payload: dict[str, Any]) -> TicketChange | str | None:
    event = text_of(payload.get("event"))
    if event is None:
        return None
    if fold(event) not in EVENTS:
        raise IgnoredEvent(event, f"not one of {', '.join(EVENTS)}")
    return EVENTS[fold(event)]


def _change(
    declared: TicketChange | str | None,
    *,
    body: dict[str, Any],
    ticket: dict[str, Any],
    comment: Comment | None,
) -> TicketChange | str:
    if declared == CONVERSED or (declared is None and comment is not None):
        return comment.change if comment else TicketChange.UPDATED
    if declared is not None:
        return declared
    changes = body.get("changes")
    changed = {fold(str(name)) for name in changes} if isinstance(changes, dict) else set()
    for field_name, change in CHANGED_FIELDS.items():
        if field_name in changed:
            return change
    created, updated = ticket.get("created_at"), ticket.get("updated_at")
    return TicketChange.CREATED if created and created == updated and not changed else TicketChange.UPDATED


def _conversation(body: dict[str, Any], *, requester: Person | None, prefix: str) -> Comment | None:
    raw = body.get("conversation")
    if not isinstance(raw, dict):
        return None
    created_at = time_of(raw.get("created_at"), path=joined(prefix, "conversation.created_at"))
    if created_at is None:
        raise MissingField(joined(prefix, "conversation.created_at"))
    user = code_of(raw.get("user_id"))
    by_requester = requester is not None and user is not None and user == requester.id
    customer_side = by_requester or flag_of(raw.get("incoming")) is True
    return Comment(
        created_at=created_at,
        public=flag_of(raw.get("private")) is not True,
        author=Author.REQUESTER if customer_side else Author.AGENT,
    )


def _requester(ticket: dict[str, Any], body: dict[str, Any]) -> Person | None:
    raw = ticket.get("requester") if isinstance(ticket.get("requester"), dict) else body.get("requester")
    if isinstance(raw, dict):
        return person(id=raw.get("id"), email=raw.get("email"), name=raw.get("name"))
    return person(
        id=ticket.get("requester_id"), email=ticket.get("requester_email"), name=ticket.get("requester")
    )


def _assignee(ticket: dict[str, Any]) -> str | None:
    return (
        text_of(ticket.get("agent"))
        or text_of(ticket.get("responder"))
        or code_of(ticket.get("responder_id"))
    )


def _external_id(raw: str, *, path: str) -> str:
    match = DISPLAY_ID.match(raw)
    if match is None:
        raise InvalidField(path, f"not a Freshservice ticket id: {raw!r}")
    return match["number"]
