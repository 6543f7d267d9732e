"""Jira Service Management webhooks (`jira:issue_created`, `jira:issue_updated`, `comment_created`).

External id: the issue key. Status: the mapped status name, else the mapped `statusCategory.key`.
A comment is public unless `jsdPublic` is false or it has a `visibility` restriction; its author is
the requester when they are the reporter, an agent when their `accountType` is an agent type
("atlassian"; Jira Data Center sends none, so anyone but the reporter), the customer side when
"customer", and automation otherwise.

Jira sends comment events with a reduced issue (summary, issuetype, project, assignee, priority,
status): such snapshots say so in `custom.incomplete`, and their `created_at` is the comment's time,
an upper bound of the real one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bothways.events import Person, StatusCategory, TicketChange, TicketChanged
from services.ingest.mapping import SourceMapping, fold
from services.ingest.normalizers import (
    Author,
    Comment,
    Facts,
    IgnoredEvent,
    MissingField,
    as_utc,
    canonical_ticket,
    category_of,
    dig,
    mapped_fields,
    person,
    required_object,
    required_text,
    text_of,
    time_of,
)

SOURCE = "jira"
ISSUE_EVENTS = frozenset({"jira:issue_created", "jira:issue_updated"})
COMMENT_EVENTS = frozenset({"comment_created"})
# A changelog can carry several fields; the snapshot names the most telling one, in this order.
CHANGELOG_CHANGES = {
    "status": TicketChange.STATUS_CHANGED,
    "priority": TicketChange.PRIORITY_CHANGED,
    "assignee": TicketChange.ASSIGNED,
}
# `jira:issue_updated` also reports edits of existing comments, which add no comment.
COMMENT_EDITS = frozenset({"issue_comment_edited", "issue_comment_deleted"})
# Older deliveries and Jira Data Center name the change only in `issue_event_type_name`.
ISSUE_EVENT_TYPE_CHANGES = {
    "issue_resolved": TicketChange.STATUS_CHANGED,
    "issue_closed": TicketChange.STATUS_CHANGED,
    "issue_reopened": TicketChange.STATUS_CHANGED,
    "issue_work_started": TicketChange.STATUS_CHANGED,
    "issue_work_stopped": TicketChange.STATUS_CHANGED,
    "issue_assigned": TicketChange.ASSIGNED,
}


def normalize(
    payload: dict[str, Any], *, mapping: SourceMapping, received_at: datetime
) -> list[TicketChanged]:
    """One snapshot of the issue a Jira webhook delivery is about."""
    event = required_text(payload, "webhookEvent")
    if event not in ISSUE_EVENTS | COMMENT_EVENTS:
        raise IgnoredEvent(event, "not an issue creation, update or new comment")
    issue = required_object(payload, "issue")
    key = required_text(issue, "key", prefix="issue")
    fields = required_object(issue, "fields", prefix="issue")
    reporter = _account_id(fields.get("reporter"))
    comment = _new_comment(payload, event=event, reporter=reporter, mapping=mapping)
    status = required_text(fields, "status.name", prefix="issue.fields")
    raw_priority = text_of(dig(fields, "priority.name"))
    facts = Facts(
        source=SOURCE,
        external_id=key,
        mapping=mapping,
        mapped=mapped_fields(issue, mapping=mapping, prefix="issue"),
        change=_change(payload, event=event, comment=comment),
        occurred_at=_occurred_at(payload, fields, comment=comment, received_at=received_at),
        created_at=_created_at(fields, comment=comment),
        status=status,
        status_category=_status_category(fields, status=status, mapping=mapping),
        raw_priority=raw_priority,
        priority=mapping.priority(raw_priority),
        title=text_of(fields.get("summary")),
        assignee=_user_name(fields.get("assignee")),
        requester=_requester(fields.get("reporter")),
        updated_at=time_of(fields.get("updated"), path="issue.fields.updated"),
        resolved_at=time_of(fields.get("resolutiondate"), path="issue.fields.resolutiondate"),
        comments=(*_comments(fields, reporter=reporter, mapping=mapping), *((comment,) if comment else ())),
        extra_custom=(("incomplete", True),) if _is_reduced(fields) else (),
    )
    return [canonical_ticket(facts)]


def _new_comment(
    payload: dict[str, Any], *, event: str, reporter: str | None, mapping: SourceMapping
) -> Comment | None:
    """The comment this delivery adds, if any; an edited or deleted comment adds none."""
    if text_of(payload.get("issue_event_type_name")) in COMMENT_EDITS:
        return None
    comment = _comment(payload.get("comment"), reporter=reporter, mapping=mapping, path="comment")
    if event in COMMENT_EVENTS and comment is None:
        raise MissingField("comment.created")
    return comment


def _occurred_at(
    payload: dict[str, Any], fields: dict[str, Any], *, comment: Comment | None, received_at: datetime
) -> datetime:
    return (
        time_of(payload.get("timestamp"), path="timestamp")
        or (comment.created_at if comment else None)
        or time_of(fields.get("updated"), path="issue.fields.updated")
        or as_utc(received_at)
    )


def _created_at(fields: dict[str, Any], *, comment: Comment | None) -> datetime:
    created_at = time_of(fields.get("created"), path="issue.fields.created")
    if created_at is not None:
        return created_at
    if _is_reduced(fields) and comment is not None:
        return comment.created_at  # an upper bound: the issue existed when the comment was written
    raise MissingField("issue.fields.created")


def _is_reduced(fields: dict[str, Any]) -> bool:
    """Whether Jira sent the reduced issue of its comment events, without creation date or reporter."""
    return "created" not in fields


def _change(payload: dict[str, Any], *, event: str, comment: Comment | None) -> TicketChange:
    if event == "jira:issue_created":
        return TicketChange.CREATED
    changed = {fold(str(item.get("field", ""))) for item in _changelog_items(payload)}
    if "status" in changed:
        # A transition that also adds a comment is first a status change; the comment still counts
        # towards the first response through the snapshot's comment history.
        return TicketChange.STATUS_CHANGED
    if comment is not None:
        return comment.change
    for field_name, change in CHANGELOG_CHANGES.items():
        if field_name in changed:
            return change
    return ISSUE_EVENT_TYPE_CHANGES.get(str(payload.get("issue_event_type_name")), TicketChange.UPDATED)


def _changelog_items(payload: dict[str, Any]) -> list[dict[str, Any]]:
    items = dig(payload, "changelog.items")
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _status_category(fields: dict[str, Any], *, status: str, mapping: SourceMapping) -> StatusCategory:
    """The mapped status name, else Jira's own category (new, indeterminate, done) as mapped."""
    key = text_of(dig(fields, "status.statusCategory.key"))
    by_key = mapping.status_category_keys.get(fold(key)) if key else None
    return (
        mapping.status_category(status)
        or by_key
        or category_of(mapping, status, path="issue.fields.status.name", source=SOURCE)
    )


def _comments(fields: dict[str, Any], *, reporter: str | None, mapping: SourceMapping) -> list[Comment]:
    listed = dig(fields, "comment.comments")
    if not isinstance(listed, list):
        return []
    comments = (
        _comment(raw, reporter=reporter, mapping=mapping, path=f"issue.fields.comment.comments.{index}")
        for index, raw in enumerate(listed)
    )
    return [comment for comment in comments if comment is not None]


def _comment(raw: Any, *, reporter: str | None, mapping: SourceMapping, path: str) -> Comment | None:
    if not isinstance(raw, dict):
        return None
    created_at = time_of(raw.get("created"), path=f"{path}.created")
    if created_at is None:
        return None
    public = raw.get("jsdPublic") is not False and not raw.get("visibility")
    return Comment(
        created_at=created_at, public=public, author=_author(raw, reporter=reporter, mapping=mapping)
    )


def _author(comment: dict[str, Any], *, reporter: str | None, mapping: SourceMapping) -> Author:
    author = comment.get("author")
    if reporter is not None and _account_id(author) == reporter:
        return Author.REQUESTER
    account_type = fold(text_of(dig(author, "accountType")) or "")
    if not account_type or account_type in mapping.agent_account_types:
        return Author.AGENT
    return Author.REQUESTER if account_type == "customer" else Author.OTHER


def _account_id(user: Any) -> str | None:
    """Jira Cloud's `accountId`, or Jira Data Center's `key` / `name`."""
    if not isinstance(user, dict):
        return None
    return text_of(user.get("accountId")) or text_of(user.get("key")) or text_of(user.get("name"))


def _user_name(user: Any) -> str | None:
    if not isinstance(user, dict):
        return None
    return text_of(user.get("displayName")) or text_of(user.get("emailAddress")) or _account_id(user)


def _requester(user: Any) -> Person | None:
    if not isinstance(user, dict):
        return None
    return person(id=_account_id(user), email=user.get("emailAddress"), name=user.get("displayName"))
