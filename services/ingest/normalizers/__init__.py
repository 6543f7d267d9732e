"""Pure normalisers from platform webhook payloads to canonical `TicketChanged` and outage snapshots.

Shared here: the errors the HTTP layer maps (MissingField and InvalidField to 422 naming the field,
IgnoredEvent to 202 recorded as ignored), the payload readers every platform uses, the canonical
assembly (first response, resolution times; bounded outage labels), and the routing table `NORMALIZERS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from bothways.errors import InvalidInput
from bothways.events import (
    Event,
    OutageSignal,
    Person,
    Priority,
    StatusCategory,
    TicketChange,
    TicketChanged,
    ticket_key,
)
from services.ingest.mapping import SourceMapping

# Keys that name an object for people, in order of preference (ServiceNow, Jira, Zendesk, Freshservice);
# identifiers stand in only for objects that have none of them, so an empty option is not its id.
DISPLAY_KEYS = ("display_value", "displayName", "name", "value", "title", "label")
IDENTIFIER_KEYS = ("key", "id")
# Epoch numbers above this are milliseconds (Jira `timestamp`), below it seconds.
EPOCH_MILLIS_FLOOR = 100_000_000_000
# Digit strings this long are epochs; shorter ones ("20240603") are ISO 8601 basic dates.
EPOCH_DIGITS = 9
# Outage labels are bounded so that one noisy alert cannot bloat every event and read model downstream.
MAX_LABELS = 64
MAX_LABEL_NAME = 100
MAX_LABEL_VALUE = 500
# The canonical events' own limits on free text, which is clipped rather than refused.
MAX_TITLE = 2000
MAX_RAW_SEVERITY = 100

MappingT_contra = TypeVar("MappingT_contra", contravariant=True)
SignalT = TypeVar("SignalT", bound=OutageSignal)


class MissingField(InvalidInput, ValueError):
    """A payload lacks a field the canonical ticket needs; `field` is its dotted path, e.g. `issue.key`."""

    def __init__(self, path: str) -> None:
        super().__init__(f"missing required field {path!r}", field=path)
        self.path = path


class InvalidField(InvalidInput, ValueError):
    """A payload field is present but unusable (an unparsable date, an unmapped status)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"field {path!r}: {reason}", field=path)
        self.path = path


class IgnoredEvent(Exception):
    """A delivery that carries no ticket change Bothways tracks: answered 202 and recorded as ignored."""

    def __init__(self, event_type: str, reason: str) -> None:
        super().__init__(f"ignored {event_type!r}: {reason}")
        self.event_type = event_type
        self.reason = reason


class Normalizer(Protocol[MappingT_contra]):
    """The signature every platform normaliser has; each reads its own section of the mapping."""

    def __call__(
        self, payload: dict[str, Any], /, *, mapping: MappingT_contra, received_at: datetime
    ) -> Sequence[Event]: ...


class Author(StrEnum):
    """Which side of the street wrote a comment."""

    AGENT = "agent"
    REQUESTER = "requester"
    OTHER = "other"  # automation, bots: neither a response nor the customer speaking


@dataclass(frozen=True)
class Comment:
    """What the canonical ticket needs to know of one comment."""

    created_at: datetime
    public: bool
    author: Author

    @property
    def is_agent_response(self) -> bool:
        """A public comment by an agent: the only thing that counts as a response to the customer."""
        return self.public and self.author is Author.AGENT

    @property
    def change(self) -> TicketChange:
        """The change a snapshot caused by this comment carries."""
        if not self.public:
            return TicketChange.COMMENTED_PRIVATE_AGENT
        if self.author is Author.AGENT:
            return TicketChange.COMMENTED_PUBLIC_AGENT
        if self.author is Author.REQUESTER:
            return TicketChange.COMMENTED_REQUESTER
        return TicketChange.UPDATED


@dataclass(frozen=True)
class Mapped:
    """The canonical fields the source mapping locates in the platform's ticket."""

    business_service: str | None
    assignment_group: str | None
    organization: str | None
    kind_name: str | None
    first_response_at: datetime | None
    reopen_count: int
    custom: dict[str, Any]


@dataclass(frozen=True)
class Facts:
    """What a platform normaliser read, before the rules shared by every platform apply."""

    source: str
    external_id: str
    mapping: SourceMapping
    mapped: Mapped
    change: TicketChange | str
    occurred_at: datetime
    created_at: datetime
    status: str
    status_category: StatusCategory
    raw_priority: str | None = None
    priority: Priority | None = None
    title: str | None = None
    assignee: str | None = None
    requester: Person | None = None
    updated_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    comments: tuple[Comment, ...] = ()
    extra_custom: tuple[tuple[str, Any], ...] = ()


def dig(obj: Any, path: str) -> Any:
    """The value at a dotted path, or None; a list segment matches an element's `id`, else an index."""
    if not path:
        return obj
    if isinstance(obj, dict):
        if path in obj:  # flat keys that contain dots, e.g. ServiceNow's dot-walked `caller_id.email`
            return obj[path]
        head, _, rest = path.partition(".")
        return dig(obj.get(head), rest) if head in obj else None
    if isinstance(obj, list):
        head, _, rest = path.partition(".")
        return dig(_list_element(obj, head), rest)
    return None


def text_of(value: Any) -> str | None:
    """The display text of a payload value: strings stripped, references and options by name."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        keys = DISPLAY_KEYS if any(key in value for key in DISPLAY_KEYS) else IDENTIFIER_KEYS
        return next(filter(None, (text_of(value.get(key)) for key in keys)), None)
    if isinstance(value, list):
        return next(filter(None, (text_of(item) for item in value)), None)
    return None


def code_of(value: Any) -> str | None:
    """The stored value of a `{display_value, value}` pair (a ServiceNow code), else its text."""
    if isinstance(value, dict) and "value" in value:
        return text_of(value["value"])
    return text_of(value)


def flag_of(value: Any) -> bool | None:
    """A boolean from JSON or from a rendered placeholder ("true", "false"), else None."""
    if isinstance(value, bool):
        return value
    text = text_of(value)
    if text is None:
        return None
    return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(
        text.casefold()
    )


def first_text(obj: Any, paths: Iterable[str]) -> str | None:
    """The display text at the first path that holds one."""
    return next(filter(None, (text_of(dig(obj, path)) for path in paths)), None)


def required_text(obj: Any, path: str, *, prefix: str = "") -> str:
    """The display text at `path`, or MissingField naming the full dotted path."""
    found = text_of(dig(obj, path))
    if found is None:
        raise MissingField(joined(prefix, path))
    return found


def required_object(obj: Any, path: str, *, prefix: str = "") -> dict[str, Any]:
    """The JSON object at `path`, or MissingField naming the full dotted path."""
    found = dig(obj, path)
    if not isinstance(found, dict):
        raise MissingField(joined(prefix, path))
    return found


def time_of(value: Any, *, zone: tzinfo = UTC, path: str = "") -> datetime | None:
    """A UTC datetime from ISO 8601, "YYYY-MM-DD HH:MM:SS", epochs or platform objects; naive is in `zone`."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return _time_of_object(value, zone=zone, path=path)
    if isinstance(value, bool):
        raise InvalidField(path, f"not a date-time: {value!r}")
    if isinstance(value, int | float):
        return _from_epoch(value, path=path)
    if isinstance(value, str):
        return _parse_time_text(value.strip(), zone=zone, path=path)
    raise InvalidField(path, f"not a date-time: {value!r}")


def required_time(obj: Any, path: str, *, prefix: str = "", zone: tzinfo = UTC) -> datetime:
    """The date-time at `path`, or MissingField naming the full dotted path."""
    found = time_of(dig(obj, path), zone=zone, path=joined(prefix, path))
    if found is None:
        raise MissingField(joined(prefix, path))
    return found


def first_time(obj: Any, paths: Iterable[str], *, zone: tzinfo = UTC, prefix: str = "") -> datetime | None:
    """The date-time at the first path that holds one."""
    for path in paths:
        found = time_of(dig(obj, path), zone=zone, path=joined(prefix, path))
        if found is not None:
            return found
    return None


def count_of(obj: Any, paths: Iterable[str], *, prefix: str = "") -> int:
    """The non-negative count at the first path that holds one (platforms send "2" as often as 2)."""
    for path in paths:
        raw = text_of(dig(obj, path))
        if raw is None:
            continue
        try:
            count = int(float(raw))
        except (ValueError, OverflowError) as exc:
            raise InvalidField(joined(prefix, path), f"not a count: {raw!r}") from exc
        if count < 0:
            raise InvalidField(joined(prefix, path), f"not a count: {raw!r}")
        return count
    return 0


def person(*, id: Any = None, email: Any = None, name: Any = None) -> Person | None:
    """A Person from whatever identifiers the platform gives, or None when it gives none."""
    fields = {"id": code_of(id), "email": text_of(email), "name": text_of(name)}
    return Person(**fields) if any(fields.values()) else None


def mapped_fields(ticket: Any, *, mapping: SourceMapping, prefix: str = "") -> Mapped:
    """Read the canonical fields that the mapping locates by path."""
    paths = mapping.paths
    return Mapped(
        business_service=first_text(ticket, paths.business_service),
        assignment_group=first_text(ticket, paths.assignment_group),
        organization=first_text(ticket, paths.organization),
        kind_name=first_text(ticket, paths.kind),
        first_response_at=first_time(ticket, paths.first_response, zone=mapping.zone, prefix=prefix),
        reopen_count=count_of(ticket, paths.reopen_count, prefix=prefix),
        custom={
            name: value
            for name, candidates in paths.custom.items()
            if (value := _first_present(ticket, candidates)) is not None
        },
    )


def category_of(mapping: SourceMapping, *raw: str | None, path: str, source: str) -> StatusCategory:
    """The status category of a raw status, or InvalidField saying which mapping entry is missing."""
    category = mapping.status_category(*raw)
    if category is None:
        shown = next((value for value in raw if value), "")
        raise InvalidField(path, f"status {shown!r} is not in the {source} mapping (statuses)")
    return category


def first_agent_response(comments: Iterable[Comment]) -> datetime | None:
    """When the earliest public agent comment among those the payload shows was written."""
    return min((c.created_at for c in comments if c.is_agent_response), default=None)


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; refuses a naive datetime, whose meaning would be a guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    return moment.astimezone(UTC)


def joined(prefix: str, path: str) -> str:
    """A dotted path under `prefix`."""
    return f"{prefix}.{path}" if prefix and path else prefix or path


def canonical_ticket(facts: Facts) -> TicketChanged:
    """The canonical snapshot, with the rules every platform shares applied."""
    # Resolution times come from the platform, else from this event when it is the transition into
    # resolved (closed, canceled); a ticket that is not done (reopened) has none.
    category = facts.status_category
    transition = facts.change in (TicketChange.STATUS_CHANGED, TicketChange.CREATED)
    resolved_at = facts.resolved_at if category in (StatusCategory.RESOLVED, StatusCategory.CLOSED) else None
    if resolved_at is None and transition and category is StatusCategory.RESOLVED:
        resolved_at = facts.occurred_at
    closed_at = facts.closed_at if category in (StatusCategory.CLOSED, StatusCategory.CANCELED) else None
    if closed_at is None and transition and category in (StatusCategory.CLOSED, StatusCategory.CANCELED):
        closed_at = facts.occurred_at
    mapped = facts.mapped
    fields: dict[str, Any] = {
        "ticket_key": ticket_key(facts.source, facts.external_id),
        "source": facts.source,
        "external_id": facts.external_id,
        "occurred_at": facts.occurred_at,
        "change": facts.change,
        "kind": facts.mapping.kind(mapped.kind_name),
        "title": facts.title,
        "status": facts.status,
        "status_category": category,
        "priority": facts.priority,
        "raw_priority": facts.raw_priority,
        "business_service": mapped.business_service,
        "assignment_group": mapped.assignment_group,
        "assignee": facts.assignee,
        "requester": facts.requester,
        "organization": mapped.organization,
        "created_at": facts.created_at,
        "updated_at": facts.updated_at or facts.occurred_at,
        "resolved_at": resolved_at,
        "closed_at": closed_at,
        # The platform's own first-response time wins over what the payload's comments show.
        "first_public_agent_response_at": mapped.first_response_at or first_agent_response(facts.comments),
        "reopen_count": mapped.reopen_count,
        "custom": {**mapped.custom, **dict(facts.extra_custom)},
    }
    try:
        return TicketChanged(**fields)
    except ValidationError as exc:
        raise refusal(exc) from exc


def outage_signal(kind: type[SignalT], **fields: Any) -> SignalT:
    """An outage event of `kind`, or InvalidField naming the first field its contract refuses."""
    try:
        return kind(**fields)
    except ValidationError as exc:
        raise refusal(exc) from exc


def refusal(exc: ValidationError) -> InvalidField:
    """The InvalidField naming the first field an event contract refused."""
    first = exc.errors()[0]
    return InvalidField(".".join(str(p) for p in first["loc"]), first["msg"])


def labels_of(value: Any) -> dict[str, str]:
    """The string entries of a JSON object, at most MAX_LABELS of them (first by name), values clipped."""
    if not isinstance(value, dict):
        return {}
    kept = sorted(
        (name, text)
        for name, text in value.items()
        if isinstance(name, str) and 0 < len(name) <= MAX_LABEL_NAME and isinstance(text, str)
    )
    return {name: text[:MAX_LABEL_VALUE] for name, text in kept[:MAX_LABELS]}


def clipped(text: str | None, limit: int) -> str | None:
    """`text` cut to `limit` characters: a long title or severity should not cost the whole signal."""
    return text[:limit] if text is not None else None


def _list_element(items: list[Any], segment: str) -> Any:
    for item in items:
        if isinstance(item, dict) and str(item.get("id")) == segment:
            return item
    if segment.isdigit() and int(segment) < len(items):
        return items[int(segment)]
    return None


def _first_present(obj: Any, paths: Iterable[str]) -> Any:
    for path in paths:
        value = dig(obj, path)
        if value not in (None, "", [], {}):
            return value
    return None


def _from_epoch(value: float, *, path: str) -> datetime:
    seconds = value / 1000 if abs(value) >= EPOCH_MILLIS_FLOOR else value
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidField(path, f"not a date-time: {value!r}") from exc


def _parse_time_text(text: str, *, zone: tzinfo, path: str) -> datetime | None:
    if not text:
        return None
    if text.isdigit() and len(text) >= EPOCH_DIGITS:
        return _from_epoch(int(text), path=path)
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone)
        # Years 1 and 9999 with an offset overflow the calendar when moved to UTC.
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidField(path, f"not a date-time: {text!r}") from exc


def _time_of_object(value: dict[str, Any], *, zone: tzinfo, path: str) -> datetime | None:
    if "completedCycles" in value or "ongoingCycle" in value:
        # Jira Service Management SLA field: the first completed cycle stopped at the first response.
        cycles = value.get("completedCycles") or []
        stop = cycles[0].get("stopTime") if cycles and isinstance(cycles[0], dict) else None
        return time_of(stop, zone=zone, path=joined(path, "completedCycles.0.stopTime"))
    if "iso8601" in value:
        return time_of(value["iso8601"], zone=zone, path=joined(path, "iso8601"))
    if "epochMillis" in value:
        return time_of(value["epochMillis"], zone=zone, path=joined(path, "epochMillis"))
    if value.get("value"):
        # ServiceNow `{display_value, value}`: the value is always in UTC, the display in the user's zone.
        return time_of(value["value"], zone=UTC, path=joined(path, "value"))
    if "display_value" in value:
        return time_of(value["display_value"], zone=zone, path=joined(path, "display_value"))
    raise InvalidField(path, "not a date-time object")


# The platform modules import the errors and readers above, so they load after them.
from services.ingest.normalizers import (  # noqa: E402
    alertmanager,
    freshservice,
    jira,
    pagerduty,
    servicenow,
    zendesk,
)

# Each normaliser takes its own section of the mapping: `Mapping.for_source(name)` for the same name.
NORMALIZERS: dict[str, Normalizer[Any]] = {
    "jira": jira.normalize,
    "zendesk": zendesk.normalize,
    "servicenow": servicenow.normalize,
    "freshservice": freshservice.normalize,
    "pagerduty": pagerduty.normalize,
    "alertmanager": alertmanager.normalize,
}
