"""ServiceNow: Table API records (incident, sc_req_item, problem, change_request) pushed by webhook.

Accepted bodies: a bare record; a Table API answer `{"result": record | [records]}`; or what an
after-insert/update business rule posts, where `previous` holds the changed fields' old values::

    {"operation": current.operation(), "table": current.getTableName(),
     "instance": gs.getProperty("instance_name"), "changed_fields": ["state", "comments"],
     "previous": {"state": previous.getValue("state")}, "record": <the record as the Table API gives it>}

Values are strings; references are `{"link", "value"}`, plain strings, or `{"display_value", "value"}`
pairs (sysparm_display_value=all). External id: `number`. Per-instance mappings are picked by
`instance`, else by the host of any reference link (acme.service-now.com -> acme).

`comments` (customer-visible) and `work_notes` (internal) are journal fields: either the text just
added (a business rule's `current.comments`) or the journal with "<time> - <author> (Additional
comments)" headers. Without `changed_fields`, the newest entry is this update's when stamped with
`sys_updated_on`. Its author (the header's name, else `sys_updated_by`) is the requester when it
matches the caller's sys_id, display name or a dot-walked `caller_id.user_name` / `.email` / `.name`
in the record (add `caller_id.user_name` to bodies that carry only the new text), else an agent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from bothways.events import Person, StatusCategory, TicketChange, TicketChanged
from services.ingest.mapping import SourceMapping, fold
from services.ingest.normalizers import (
    Author,
    Comment,
    Facts,
    IgnoredEvent,
    InvalidField,
    as_utc,
    canonical_ticket,
    code_of,
    dig,
    joined,
    mapped_fields,
    person,
    required_text,
    required_time,
    text_of,
    time_of,
)

SOURCE = "servicenow"
OPERATIONS = frozenset({"insert", "update"})
REQUESTER_FIELDS = ("caller_id", "requested_for", "opened_by")
ASSIGNMENT_FIELDS = frozenset({"assigned_to", "assignment_group"})
JOURNAL_HEADER = re.compile(
    r"^(?P<at>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) - (?P<author>.+?) \((?P<kind>[^()]+)\)[ \t]*$",
    re.MULTILINE,
)
SYS_ID = re.compile(r"^[0-9a-f]{32}$")
# A journal entry and the record's sys_updated_on are stamped in the same transaction.
SAME_UPDATE = timedelta(seconds=2)


@dataclass(frozen=True)
class Update:
    """What the delivery says about the update that triggered it, beyond the record itself."""

    operation: str | None
    changed: frozenset[str]
    previous: dict[str, Any]
    instance: str | None
    table: str | None


@dataclass(frozen=True)
class JournalEntry:
    """One journal entry; time and author are None when the text came without its header."""

    at: datetime | None
    author: str | None


def normalize(
    payload: dict[str, Any], *, mapping: SourceMapping, received_at: datetime
) -> list[TicketChanged]:
    """One snapshot per record in a ServiceNow delivery."""
    update = _update(payload)
    if update.operation is not None and update.operation not in OPERATIONS:
        raise IgnoredEvent(update.operation, f"operation is not one of {', '.join(sorted(OPERATIONS))}")
    records = _records(payload)
    if not records:
        raise IgnoredEvent("result", "the delivery holds no record")
    return [
        _snapshot(record, prefix=prefix, update=update, mapping=mapping, received_at=received_at)
        for prefix, record in records
    ]


def _update(payload: dict[str, Any]) -> Update:
    changed = dig(payload, "changed_fields")
    previous = dig(payload, "previous")
    operation = text_of(payload.get("operation")) if "record" in payload else None
    return Update(
        operation=fold(operation) if operation else None,
        changed=frozenset(str(f) for f in changed) if isinstance(changed, list) else frozenset(),
        previous=previous if isinstance(previous, dict) else {},
        instance=text_of(payload.get("instance")),
        table=text_of(payload.get("table")),
    )


def _records(payload: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(payload.get("record"), dict):
        return [("record", payload["record"])]
    result = payload.get("result")
    if isinstance(result, list):
        return [(f"result.{i}", r) for i, r in enumerate(result) if isinstance(r, dict)]
    if isinstance(result, dict):
        return [("result", result)]
    return [("", payload)]


def _snapshot(
    record: dict[str, Any], *, prefix: str, update: Update, mapping: SourceMapping, received_at: datetime
) -> TicketChanged:
    external_id = required_text(record, "number", prefix=prefix)
    mapping = mapping.for_instance(update.instance or _instance_from_links(record))
    zone = mapping.zone
    table = update.table or code_of(record.get("sys_class_name")) or "incident"
    updated_at = time_of(record.get("sys_updated_on"), zone=zone, path=joined(prefix, "sys_updated_on"))
    occurred_at = updated_at or as_utc(received_at)
    caller = _caller(record)
    comments = _journal_comments(
        record, "comments", prefix=prefix, zone=zone, updated_at=occurred_at, caller=caller
    )
    notes = _journal_comments(
        record, "work_notes", prefix=prefix, zone=zone, updated_at=occurred_at, caller=caller
    )
    raw_priority = text_of(record.get("priority"))
    facts = Facts(
        source=SOURCE,
        external_id=external_id,
        mapping=mapping,
        mapped=mapped_fields(record, mapping=mapping, prefix=prefix),
        change=_change(record, update=update, comments=comments, notes=notes, updated_at=occurred_at),
        occurred_at=occurred_at,
        created_at=_created_at(record, prefix=prefix, mapping=mapping),
        status=required_text(record, "state", prefix=prefix),
        status_category=_category(
            record.get("state"), table=table, mapping=mapping, path=joined(prefix, "state")
        ),
        raw_priority=raw_priority,
        priority=mapping.priority(code_of(record.get("priority")), raw_priority),
        title=text_of(record.get("short_description")),
        assignee=text_of(record.get("assigned_to")),
        requester=caller.person,
        updated_at=updated_at,
        resolved_at=time_of(record.get("resolved_at"), zone=zone, path=joined(prefix, "resolved_at")),
        closed_at=time_of(record.get("closed_at"), zone=zone, path=joined(prefix, "closed_at")),
        comments=tuple(comment for comment, _ in comments),
    )
    return canonical_ticket(facts)


def _created_at(record: dict[str, Any], *, prefix: str, mapping: SourceMapping) -> datetime:
    opened = time_of(record.get("opened_at"), zone=mapping.zone, path=joined(prefix, "opened_at"))
    return opened or required_time(record, "sys_created_on", prefix=prefix, zone=mapping.zone)


def _category(state: Any, *, table: str, mapping: SourceMapping, path: str) -> StatusCategory:
    code, label = code_of(state), text_of(state)
    category = mapping.status_category(f"{table}:{code}" if code else None, code, label)
    if category is None:
        raise InvalidField(
            path, f"state {label or code!r} of {table} is not in the servicenow mapping (statuses)"
        )
    return category


def _change(
    record: dict[str, Any],
    *,
    update: Update,
    comments: list[tuple[Comment, bool]],
    notes: list[tuple[Comment, bool]],
    updated_at: datetime,
) -> TicketChange:
    if update.operation == "insert" or (
        update.operation is None and text_of(record.get("sys_mod_count")) == "0"
    ):
        return TicketChange.CREATED
    changed = update.changed | {
        f for f, old in update.previous.items() if code_of(old) != code_of(record.get(f))
    }
    if "state" in changed:
        return TicketChange.STATUS_CHANGED
    declared = bool(update.changed or update.previous)
    for entries, field_name in ((comments, "comments"), (notes, "work_notes")):
        newest = next((comment for comment, this_update in entries if this_update), None)
        if newest is not None and (field_name in changed or not declared):
            return newest.change
    if "priority" in changed:
        return TicketChange.PRIORITY_CHANGED
    if changed & ASSIGNMENT_FIELDS:
        return TicketChange.ASSIGNED
    return TicketChange.UPDATED


def _journal_comments(
    record: dict[str, Any],
    field_name: str,
    *,
    prefix: str,
    zone: ZoneInfo,
    updated_at: datetime,
    caller: _Caller,
) -> list[tuple[Comment, bool]]:
    """The journal's entries, newest first, each with whether this update wrote it."""
    entries = _journal(text_of(record.get(field_name)), zone=zone, path=joined(prefix, field_name))
    fallback_author = text_of(record.get("sys_updated_by"))
    public = field_name == "comments"
    result = []
    for index, entry in enumerate(entries):
        at = entry.at or updated_at
        this_update = entry.at is None or (index == 0 and abs(entry.at - updated_at) <= SAME_UPDATE)
        author = caller.classify(entry.author or fallback_author)
        result.append((Comment(created_at=at, public=public, author=author), this_update))
    return result


def _journal(text: str | None, *, zone: ZoneInfo, path: str) -> list[JournalEntry]:
    if not text:
        return []
    headers = list(JOURNAL_HEADER.finditer(text))
    if not headers:
        return [JournalEntry(at=None, author=None)]
    timed = [(at, h["author"].strip()) for h in headers if (at := time_of(h["at"], zone=zone, path=path))]
    # The journal lists newest first; sorting keeps that true for bodies built by hand.
    return [JournalEntry(at=at, author=author) for at, author in sorted(timed, reverse=True)]


@dataclass(frozen=True)
class _Caller:
    """The requester as the names a journal header or `sys_updated_by` might use for them."""

    person: Person | None
    names: frozenset[str]

    def classify(self, author: str | None) -> Author:
        if author is None:
            return Author.OTHER
        folded = fold(author)
        if folded in self.names:
            return Author.REQUESTER
        return Author.OTHER if folded in ("system", "guest") else Author.AGENT


def _caller(record: dict[str, Any]) -> _Caller:
    field_name = next((f for f in REQUESTER_FIELDS if code_of(record.get(f))), None)
    if field_name is None:
        return _Caller(person=None, names=frozenset())
    ref = record[field_name]
    code = code_of(ref)
    name = text_of(ref.get("display_value")) if isinstance(ref, dict) else None
    if name is None and code and not SYS_ID.match(code):
        name = code  # sysparm_display_value=true: the plain string is the caller's name
    email = text_of(record.get(f"{field_name}.email"))
    names = {code, name, email, *(text_of(record.get(f"{field_name}.{k}")) for k in ("user_name", "name"))}
    return _Caller(
        person=person(id=code if code and SYS_ID.match(code) else None, email=email, name=name),
        names=frozenset(fold(n) for n in names if n),
    )


def _instance_from_links(record: dict[str, Any]) -> str | None:
    for value in record.values():
        link = value.get("link") if isinstance(value, dict) else None
        if isinstance(link, str):
            host = urlsplit(link).hostname or ""
            if host.endswith(".service-now.com"):
                return host.removesuffix(".service-now.com")
    return None
