"""Event types shared by every service, and the CloudEvents envelope they travel in.

Kafka binary content mode (CloudEvents Kafka protocol binding): the record value is
the JSON `data`, the attributes are `ce_*` headers, the record key is the aggregate id.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
# Fixed namespace so that the same input always yields the same event id, in every process.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c1d52-3c36-4d8a-9a52-6d1f2b9e0b7e")


class Topic(StrEnum):
    """The versioned topics; a breaking payload change is a new topic, never an edit."""

    TICKETS = "bothways.tickets.v1"
    OUTAGES = "bothways.outages.v1"
    SLA = "bothways.sla.v1"
    AVAILABILITY = "bothways.availability.v1"
    SURVEYS = "bothways.surveys.v1"
    DEADLETTER = "bothways.deadletter.v1"


class UndecodableRecord(ValueError):
    """A Kafka record that is not a Bothways event: it goes to the dead-letter topic."""


class Event(BaseModel):
    """Base of every event payload. Unknown fields are kept for forward compatibility."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: ClassVar[str]
    topic: ClassVar[Topic]

    def key(self) -> str:
        """The aggregate id: the Kafka record key, so one aggregate's events stay ordered."""
        raise NotImplementedError

    def occurred(self) -> datetime:
        """When the fact happened (the CloudEvents `time`)."""
        raise NotImplementedError


class TicketKind(StrEnum):
    INCIDENT = "incident"
    REQUEST = "request"
    PROBLEM = "problem"
    CHANGE = "change"


class StatusCategory(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELED = "canceled"


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"
    P5 = "P5"


class TicketChange(StrEnum):
    """What caused a snapshot. Consumers must tolerate values added later (kept as str)."""

    CREATED = "created"
    STATUS_CHANGED = "status_changed"
    COMMENTED_PUBLIC_AGENT = "commented_public_agent"
    COMMENTED_PRIVATE_AGENT = "commented_private_agent"
    COMMENTED_REQUESTER = "commented_requester"
    PRIORITY_CHANGED = "priority_changed"
    ASSIGNED = "assigned"
    UPDATED = "updated"
    IMPORTED = "imported"


class Person(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    id: str | None = None
    email: str | None = None
    name: str | None = None


class TicketChanged(Event):
    """The full state of a ticket as of `occurred_at`: a snapshot, not a diff."""

    type: ClassVar[str] = "io.bothways.ticket.changed"
    topic: ClassVar[Topic] = Topic.TICKETS

    ticket_key: str = Field(min_length=3, max_length=300, pattern=r"^[a-z0-9_-]+:.+$")
    source: str = Field(min_length=1, max_length=50)
    external_id: str = Field(min_length=1, max_length=250)
    occurred_at: AwareDatetime
    change: TicketChange | str = TicketChange.UPDATED
    kind: TicketKind = TicketKind.INCIDENT
    title: str | None = Field(default=None, max_length=2000)
    status: str = Field(min_length=1, max_length=100)
    status_category: StatusCategory
    priority: Priority | None = None
    raw_priority: str | None = Field(default=None, max_length=100)
    business_service: str | None = Field(default=None, max_length=200)
    assignment_group: str | None = Field(default=None, max_length=200)
    assignee: str | None = Field(default=None, max_length=200)
    requester: Person | None = None
    organization: str | None = Field(default=None, max_length=200)
    created_at: AwareDatetime
    updated_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = None
    first_public_agent_response_at: AwareDatetime | None = None
    reopen_count: int = Field(default=0, ge=0)
    custom: dict[str, Any] = Field(default_factory=dict)

    def key(self) -> str:
        return self.ticket_key

    def occurred(self) -> datetime:
        return self.occurred_at


class OutageImpact(StrEnum):
    MAJOR = "major"
    PARTIAL = "partial"
    DEGRADED = "degraded"


class OutageSignal(Event):
    """The state of one outage signal (an alert, a paging incident) as of `occurred_at`: a snapshot.

    Keyed by business service so one service's signals stay ordered; a signal whose service
    is not mapped keeps its raw reference and is keyed `unmapped:<reference>`, never dropped."""

    topic: ClassVar[Topic] = Topic.OUTAGES

    signal_key: str = Field(min_length=3, max_length=300, pattern=r"^[a-z0-9_-]+:.+$")
    source: str = Field(min_length=1, max_length=50)
    business_service: str | None = Field(default=None, max_length=200)
    service_reference: str = Field(min_length=1, max_length=300)
    occurred_at: AwareDatetime
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    impact: OutageImpact = OutageImpact.MAJOR
    planned: bool = False
    title: str | None = Field(default=None, max_length=2000)
    raw_severity: str | None = Field(default=None, max_length=100)
    labels: dict[str, str] = Field(default_factory=dict)

    def key(self) -> str:
        return self.business_service or f"unmapped:{self.service_reference}"

    def occurred(self) -> datetime:
        return self.occurred_at


class OutageStarted(OutageSignal):
    """A signal began (or began again after being resolved)."""

    type: ClassVar[str] = "io.bothways.outage.started"


class OutageUpdated(OutageSignal):
    """A running signal changed: impact, severity, or a corrected start."""

    type: ClassVar[str] = "io.bothways.outage.updated"


class OutageEnded(OutageSignal):
    """A signal ended; `ended_at` is set."""

    type: ClassVar[str] = "io.bothways.outage.ended"


# SLA timers (bothways.sla.v1), keyed by ticket


class SlaMetric(StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


class SlaState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    BREACHED = "breached"
    CANCELLED = "cancelled"


class SlaTimerEvent(Event):
    """A change of one SLA timer, with the timer as it stands after the change and the ticket's
    attribution (business service, group, priority) at that moment, so readers need no join."""

    topic: ClassVar[Topic] = Topic.SLA

    ticket_key: str = Field(min_length=3, max_length=300, pattern=r"^[a-z0-9_-]+:.+$")
    timer_key: str = Field(min_length=1, max_length=300)
    metric: SlaMetric | str
    cycle: int = Field(ge=1)
    priority: Priority | None = None
    policy: str
    policy_version: int = Field(ge=1)
    calendar: str
    state: SlaState | str
    # The instant the change happened (a breach instant, a pause instant), not when it was noticed.
    occurred_at: AwareDatetime
    started_at: AwareDatetime
    due_at: AwareDatetime
    stopped_at: AwareDatetime | None = None
    target_business_seconds: int = Field(ge=1)
    business_elapsed_seconds: int = Field(ge=0)
    remaining_business_seconds: int = Field(ge=0)
    percent_elapsed: float = Field(ge=0)
    # Happened before the timer became known (a priority change, a late event): shown, not alerted.
    retroactive: bool = False
    source: str | None = None
    kind: TicketKind | None = None
    business_service: str | None = Field(default=None, max_length=200)
    assignment_group: str | None = Field(default=None, max_length=200)
    assignee: str | None = Field(default=None, max_length=200)
    organization: str | None = Field(default=None, max_length=200)

    def key(self) -> str:
        return self.ticket_key

    def occurred(self) -> datetime:
        return self.occurred_at


class SlaStarted(SlaTimerEvent):
    type: ClassVar[str] = "io.bothways.sla.started"


class SlaPaused(SlaTimerEvent):
    type: ClassVar[str] = "io.bothways.sla.paused"


class SlaResumed(SlaTimerEvent):
    type: ClassVar[str] = "io.bothways.sla.resumed"


class SlaWarned(SlaTimerEvent):
    """A warning threshold (percent of the target) was crossed."""

    type: ClassVar[str] = "io.bothways.sla.warned"

    threshold_percent: float = Field(gt=0, lt=100)


class SlaBreached(SlaTimerEvent):
    type: ClassVar[str] = "io.bothways.sla.breached"


class SlaBreachRetracted(SlaTimerEvent):
    """A late event showed that an announced breach did not happen."""

    type: ClassVar[str] = "io.bothways.sla.breach_retracted"


class SlaMet(SlaTimerEvent):
    type: ClassVar[str] = "io.bothways.sla.met"


class SlaStopped(SlaTimerEvent):
    """A breached timer's clock stopped (the late response or resolution came): its final elapsed time.

    A timer stopped in time announces `met` instead; this one stays breached, and readers learn how
    late it really ended (the breach itself was announced at the target).
    """

    type: ClassVar[str] = "io.bothways.sla.stopped"


class SlaCancelled(SlaTimerEvent):
    """The timer no longer counts: the ticket was canceled, or a priority change superseded it."""

    type: ClassVar[str] = "io.bothways.sla.cancelled"


# Availability (bothways.availability.v1), keyed by business service


class AvailabilityComputed(Event):
    """The availability figures of one business service for one calendar month, recomputed whenever
    an outage touching the month changes (a later event for the same period replaces the earlier)."""

    type: ClassVar[str] = "io.bothways.availability.computed"
    topic: ClassVar[Topic] = Topic.AVAILABILITY

    business_service: str = Field(min_length=1, max_length=200)
    period: str = Field(pattern=r"^\d{4}-\d{2}$", examples=["2026-10"])
    period_start: AwareDatetime
    period_end: AwareDatetime
    occurred_at: AwareDatetime
    objective_percent: float = Field(gt=0, le=100)
    agreed_seconds: int = Field(ge=0)
    downtime_seconds: float = Field(ge=0)
    availability_percent: float | None = Field(default=None, ge=0, le=100)
    error_budget_seconds: float = Field(ge=0)
    budget_remaining_seconds: float
    outages: int = Field(ge=0)
    mtrs_seconds: float | None = None
    mtbf_seconds: float | None = None
    # True when a late or corrected signal changed figures already published for the period.
    correction: bool = False

    def key(self) -> str:
        return self.business_service

    def occurred(self) -> datetime:
        return self.occurred_at


# Outages of business services and objectives at risk (bothways.availability.v1), keyed by business service.
# A service outage is the merge of every signal of one service (alerts, paging incidents, major incidents)
# over one stretch; the aggregate is `service_outage` because `io.bothways.outage.*` names the input
# signals on bothways.outages.v1 (`io.bothways.outage.updated` is taken by OutageUpdated).


class ServiceOutageStatus(StrEnum):
    OPEN = "open"
    RESTORED = "restored"
    # A correction removed it: its signals were withdrawn, remapped or merged into another outage.
    WITHDRAWN = "withdrawn"


class ServiceOutageEvent(Event):
    """One merged outage of a business service as it stands after a change."""

    topic: ClassVar[Topic] = Topic.AVAILABILITY

    business_service: str = Field(min_length=1, max_length=200)
    outage_id: str = Field(min_length=1, max_length=300)
    occurred_at: AwareDatetime
    started_at: AwareDatetime
    restored_at: AwareDatetime | None = None
    status: ServiceOutageStatus | str = ServiceOutageStatus.OPEN
    impact: OutageImpact = OutageImpact.MAJOR
    # Wall-clock seconds from failure to restoration (or to occurred_at while open).
    duration_seconds: int = Field(default=0, ge=0)
    signals: list[str] = Field(default_factory=list, max_length=500)
    revision: int = Field(default=1, ge=1)

    def key(self) -> str:
        return self.business_service

    def occurred(self) -> datetime:
        return self.occurred_at


class ServiceOutageOpened(ServiceOutageEvent):
    type: ClassVar[str] = "io.bothways.service_outage.opened"


class ServiceOutageUpdated(ServiceOutageEvent):
    """A late or corrected signal moved the start or the end, changed the impact or the signals, or
    withdrew the outage (status `withdrawn`)."""

    type: ClassVar[str] = "io.bothways.service_outage.updated"


class ServiceOutageClosed(ServiceOutageEvent):
    """Service restored: `restored_at` is set."""

    type: ClassVar[str] = "io.bothways.service_outage.closed"


class ObjectiveAtRisk(Event):
    """A multiwindow burn-rate alert started firing: at this rate the objective's budget runs out early."""

    type: ClassVar[str] = "io.bothways.availability.objective_at_risk"
    topic: ClassVar[Topic] = Topic.AVAILABILITY

    business_service: str = Field(min_length=1, max_length=200)
    occurred_at: AwareDatetime
    alert: str = Field(min_length=1, max_length=100, examples=["fast-burn", "slow-burn"])
    severity: str = Field(min_length=1, max_length=50)
    objective_percent: float = Field(gt=0, lt=100)
    threshold: float = Field(gt=0)
    long_window_seconds: int = Field(gt=0)
    short_window_seconds: int = Field(gt=0)
    long_burn_rate: float = Field(ge=0)
    short_burn_rate: float = Field(ge=0)
    # The current calendar month's budget (service time zone): what is left after this burn so far.
    period: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$")
    budget_remaining_seconds: float | None = None

    def key(self) -> str:
        return self.business_service

    def occurred(self) -> datetime:
        return self.occurred_at


# Surveys (bothways.surveys.v1), keyed by ticket (CSAT) or by campaign (NPS)


class SurveyKind(StrEnum):
    CSAT = "csat"
    NPS = "nps"


class SurveyEvent(Event):
    """A step in the life of one survey invitation, with its attribution frozen at invitation time."""

    topic: ClassVar[Topic] = Topic.SURVEYS

    invitation_id: str = Field(min_length=1, max_length=100)
    survey_kind: SurveyKind
    occurred_at: AwareDatetime
    ticket_key: str | None = Field(default=None, max_length=300)
    campaign_id: str | None = Field(default=None, max_length=100)
    # Pseudonymous: a stable id for the person, never the address.
    recipient_id: str | None = Field(default=None, max_length=200)
    business_service: str | None = Field(default=None, max_length=200)
    assignment_group: str | None = Field(default=None, max_length=200)
    assignee: str | None = Field(default=None, max_length=200)
    priority: Priority | None = None
    organization: str | None = Field(default=None, max_length=200)
    source: str | None = None

    def key(self) -> str:
        return self.ticket_key or f"campaign:{self.campaign_id or self.invitation_id}"

    def occurred(self) -> datetime:
        return self.occurred_at


class SurveyScheduled(SurveyEvent):
    type: ClassVar[str] = "io.bothways.survey.scheduled"

    send_at: AwareDatetime


class SurveyThrottled(SurveyEvent):
    """Not sent: the fatigue budget, sampling or a rule said no; the reason says which."""

    type: ClassVar[str] = "io.bothways.survey.throttled"

    reason: str = Field(min_length=1, max_length=500)


class SurveySent(SurveyEvent):
    type: ClassVar[str] = "io.bothways.survey.sent"

    channel: str = Field(min_length=1, max_length=50)
    expires_at: AwareDatetime | None = None


class SurveyDeliveryFailed(SurveyEvent):
    type: ClassVar[str] = "io.bothways.survey.delivery_failed"

    channel: str = Field(min_length=1, max_length=50)
    attempts: int = Field(ge=1)
    error: str = Field(max_length=2000)


class SurveyAnswered(SurveyEvent):
    """An answer: CSAT 1-5 (or 2-point, 1 bad 2 good) sets `satisfied`; NPS 0-10 sets `nps_band`."""

    type: ClassVar[str] = "io.bothways.survey.answered"

    score: int = Field(ge=0, le=10)
    scale: str = Field(min_length=1, max_length=20, examples=["1-5", "2-point", "0-10"])
    satisfied: bool | None = None
    nps_band: str | None = Field(default=None, pattern=r"^(promoter|passive|detractor)$")
    reason: str | None = Field(default=None, max_length=200)
    comment: str | None = Field(default=None, max_length=5000)


class SurveyExpired(SurveyEvent):
    type: ClassVar[str] = "io.bothways.survey.expired"


class FollowupEvent(SurveyEvent):
    """The closed loop after an unhappy answer."""

    followup_id: str = Field(min_length=1, max_length=100)
    due_at: AwareDatetime


class FollowupOpened(FollowupEvent):
    type: ClassVar[str] = "io.bothways.followup.opened"


class FollowupOverdue(FollowupEvent):
    type: ClassVar[str] = "io.bothways.followup.overdue"


class FollowupClosed(FollowupEvent):
    type: ClassVar[str] = "io.bothways.followup.closed"

    outcome: str = Field(min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=5000)


def ticket_key(source: str, external_id: str) -> str:
    """The aggregate id of a ticket: `<source>:<external id>`, e.g. `jira:SUP-42`."""
    return f"{source}:{external_id}"


EVENT_TYPES: dict[str, type[Event]] = {
    event_type.type: event_type
    for event_type in (
        TicketChanged,
        OutageStarted,
        OutageUpdated,
        OutageEnded,
        SlaStarted,
        SlaPaused,
        SlaResumed,
        SlaWarned,
        SlaBreached,
        SlaBreachRetracted,
        SlaMet,
        SlaStopped,
        SlaCancelled,
        AvailabilityComputed,
        ServiceOutageOpened,
        ServiceOutageUpdated,
        ServiceOutageClosed,
        ObjectiveAtRisk,
        SurveyScheduled,
        SurveyThrottled,
        SurveySent,
        SurveyDeliveryFailed,
        SurveyAnswered,
        SurveyExpired,
        FollowupOpened,
        FollowupOverdue,
        FollowupClosed,
    )
}


def register(event_type: type[Event]) -> type[Event]:
    """Make an event type decodable from Kafka; used as a class decorator by later types."""
    EVENT_TYPES[event_type.type] = event_type
    return event_type


def deterministic_id(*parts: str) -> str:
    """An event id derived from its input, so a redelivered input yields the same id."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join(parts)))


@dataclass(frozen=True)
class Envelope:
    """A CloudEvent: the attributes and the typed payload."""

    id: str
    source: str
    data: Event
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The data as JSON, when the caller has it already (ingest encodes it once for the id's digest).
    encoded: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def type(self) -> str:
        return self.data.type

    @property
    def subject(self) -> str:
        return self.data.key()

    @property
    def topic(self) -> Topic:
        return self.data.topic

    def attributes(self) -> list[tuple[str, str]]:
        """The CloudEvents attributes, in the order they travel as headers."""
        return [
            ("ce_specversion", SPEC_VERSION),
            ("ce_id", self.id),
            ("ce_source", self.source),
            ("ce_type", self.type),
            ("ce_time", self.time.isoformat()),
            ("ce_subject", self.subject),
            ("content-type", CONTENT_TYPE),
        ]

    def headers(self) -> list[tuple[str, bytes]]:
        """The CloudEvents attributes as Kafka headers (binary content mode)."""
        return [(name, value.encode()) for name, value in self.attributes()]

    def key_bytes(self) -> bytes:
        return self.subject.encode()

    def value_bytes(self) -> bytes:
        if self.encoded is not None:
            return self.encoded
        return encode_data(self.data)


def encode_data(event: Event) -> bytes:
    """An event's data as it travels: its JSON, with every field (None included)."""
    return event.model_dump_json(exclude_none=False).encode()


def envelope_for(event: Event, *, event_id: str, source: str, encoded: bytes | None = None) -> Envelope:
    """Wrap an event, its CloudEvents `time` being when the fact happened."""
    return Envelope(id=event_id, source=source, data=event, time=event.occurred(), encoded=encoded)


def decode_record(
    headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...], value: bytes | None
) -> Envelope:
    """Parse a Kafka record into an envelope, or raise UndecodableRecord saying why."""
    attrs = {name: raw.decode("utf-8", "replace") for name, raw in headers or ()}
    missing = [h for h in ("ce_specversion", "ce_id", "ce_source", "ce_type") if h not in attrs]
    if missing:
        raise UndecodableRecord(f"missing CloudEvents header(s): {', '.join(missing)}")
    if attrs["ce_specversion"] != SPEC_VERSION:
        raise UndecodableRecord(f"unsupported ce_specversion {attrs['ce_specversion']!r}")
    event_type = EVENT_TYPES.get(attrs["ce_type"])
    if event_type is None:
        raise UndecodableRecord(f"unknown ce_type {attrs['ce_type']!r}")
    if value is None:
        raise UndecodableRecord("record has no value")
    try:
        payload = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UndecodableRecord(f"value is not JSON: {exc}") from exc
    try:
        data = event_type.model_validate(payload)
    except ValidationError as exc:
        raise UndecodableRecord(f"invalid {attrs['ce_type']}: {describe_validation_error(exc)}") from exc
    time = _parse_time(attrs.get("ce_time")) or data.occurred()
    return Envelope(id=attrs["ce_id"], source=attrs["ce_source"], data=data, time=time)


def describe_validation_error(exc: ValidationError) -> str:
    """A one-line summary naming each failing field, for dead-letter headers and 4xx bodies."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
    )


def _parse_time(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
