"""The business service catalogue: what each service promises, and which signals and tickets are its.

Pure: definitions in, validated values out. A signal belongs to the service whose id it names, else to
the service one of whose aliases it names (compared case-insensitively), else to the first service (by
id) one of whose alert labels (for alerts and paging incidents) or ticket fields (for major incidents)
it carries; else it stays unmapped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bothways.events import (
    OutageImpact,
    Priority,
    StatusCategory,
    TicketChanged,
    TicketKind,
    describe_validation_error,
)
from services.sla.availability import ImpactWeights, InvalidWeights

ALWAYS = "24x7"
SERVICE_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
# Ticket fields a service can be matched on besides `custom.<name>`.
TICKET_FIELDS = ("business_service", "assignment_group", "organization", "source", "title")
# Snapshot fields that hold an instant, usable as the impact start or the restoration of a major incident.
TICKET_INSTANTS = ("created_at", "updated_at", "resolved_at", "closed_at", "first_public_agent_response_at")

Text = Field(min_length=1, max_length=300)


class CatalogueError(ValueError):
    """A catalogue definition that cannot be used; the message names the field."""


class Weights(BaseModel):
    """How much of an impact level's time counts as downtime (ITIL weighted availability)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    major: float = Field(default=1.0, ge=0, le=1)
    partial: float = Field(default=0.3, ge=0, le=1)
    degraded: float = Field(default=0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Weights:
        try:
            self.weights()
        except InvalidWeights as error:
            raise ValueError(str(error)) from error
        return self

    def weights(self) -> ImpactWeights:
        """The weights the figures take."""
        return ImpactWeights(major=self.major, partial=self.partial, degraded=self.degraded)


class ServiceMatch(BaseModel):
    """What maps a signal or a ticket to the service besides its id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Other spellings of the service in the platforms: ITSM business service names, CMDB names,
    # PagerDuty service ids or names, alert label values.
    aliases: list[str] = Field(default_factory=list, max_length=200)
    # Alert label -> values (Alertmanager labels, PagerDuty fields as ingest labels them).
    alert_labels: dict[str, list[str]] = Field(default_factory=dict, max_length=50)
    # Ticket field (business_service, assignment_group, organization, source, title, custom.<name>) -> values.
    ticket_fields: dict[str, list[str]] = Field(default_factory=dict, max_length=50)

    @field_validator("aliases")
    @classmethod
    def _texts(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.strip() or len(value) > 300:
                raise ValueError(f"an alias is 1 to 300 characters, got {value!r}")
        return values

    @field_validator("alert_labels", "ticket_fields")
    @classmethod
    def _value_lists(cls, mapping: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, values in mapping.items():
            if not name.strip() or len(name) > 200:
                raise ValueError(f"a label or field name is 1 to 200 characters, got {name!r}")
            if not values or len(values) > 200 or any(not v.strip() or len(v) > 300 for v in values):
                raise ValueError(f"{name}: give 1 to 200 values of 1 to 300 characters")
        return mapping

    @field_validator("ticket_fields")
    @classmethod
    def _known_fields(cls, mapping: dict[str, list[str]]) -> dict[str, list[str]]:
        for name in mapping:
            if name not in TICKET_FIELDS and not (name.startswith("custom.") and len(name) > 7):
                allowed = ", ".join((*TICKET_FIELDS, "custom.<name>"))
                raise ValueError(f"unknown ticket field {name!r}; one of {allowed}")
        return mapping


class BusinessService(BaseModel):
    """A business service as the catalogue defines it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=SERVICE_ID_PATTERN, examples=["webshop"])
    name: str = Field(min_length=1, max_length=200)
    owner_group: str | None = Field(default=None, max_length=200)
    tier: int | None = Field(default=None, ge=0, le=9)
    description: str | None = Field(default=None, max_length=2000)
    # Six nines at most: beyond, a month's budget is under three seconds, finer than the signals are.
    objective_percent: float = Field(ge=1, le=99.9999, examples=[99.9])
    # A business calendar of the SLA configuration (GET /calendars), or 24x7.
    calendar: str = Field(default=ALWAYS, min_length=1, max_length=200)
    # Calendar months are taken in this zone; by default the calendar's, or UTC for 24x7.
    timezone: str | None = Field(default=None, max_length=100)
    weights: Weights = Weights()
    match: ServiceMatch = ServiceMatch()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as error:
                raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @property
    def objective(self) -> float:
        """The objective as a ratio (99.9 % -> 0.999)."""
        return self.objective_percent / 100

    def time_zone(self, calendar_zones: Mapping[str, str]) -> str:
        """The zone calendar months are taken in."""
        return self.timezone or calendar_zones.get(self.calendar, "UTC")


class MajorIncidentRule(BaseModel):
    """Which tickets are major incidents counting as outages, and where their impact starts and ends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: list[TicketKind] = Field(default_factory=lambda: [TicketKind.INCIDENT], min_length=1)
    # Priority -> impact; a ticket of another priority is no major incident.
    priorities: dict[Priority, OutageImpact] = Field(
        default_factory=lambda: {Priority.P1: OutageImpact.MAJOR}, min_length=1
    )
    # A ticket instant (created_at, resolved_at ...) or custom.<name>: when the impact started, when
    # the service was restored. Without a value the impact starts at creation and ends at resolution.
    impact_start_field: str | None = Field(default=None, max_length=200)
    restored_field: str | None = Field(default=None, max_length=200)

    @field_validator("impact_start_field", "restored_field")
    @classmethod
    def _instant_field(cls, value: str | None) -> str | None:
        if value is not None and value not in TICKET_INSTANTS and not value.startswith("custom."):
            raise ValueError(f"one of {', '.join(TICKET_INSTANTS)} or custom.<name>, got {value!r}")
        return value

    def covers(self, ticket: TicketChanged) -> bool:
        """Whether a snapshot is a major incident of a business service."""
        return (
            ticket.kind in self.kinds
            and ticket.priority in self.priorities
            and bool(ticket.business_service)
            and ticket.status_category is not StatusCategory.CANCELED
        )


@dataclass(frozen=True)
class Catalogue:
    """The business services by id, with the lookups that map signals and tickets to them."""

    services: tuple[BusinessService, ...]

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.services, key=lambda service: service.id))
        object.__setattr__(self, "services", ordered)

    def get(self, service_id: str) -> BusinessService | None:
        """The service with this id, or None."""
        return next((service for service in self.services if service.id == service_id), None)

    def resolve(
        self, *, named: Sequence[str | None], attributes: Mapping[str, str], ticket: bool = False
    ) -> str | None:
        """The service a signal belongs to: by id, by alias, then by label or ticket field; None if unmapped."""
        names = [name.strip() for name in named if name and name.strip()]
        for name in names:
            if self.get(name) is not None:
                return name
        folded = {name.casefold() for name in names}
        for service in self.services:
            if folded & {alias.strip().casefold() for alias in service.match.aliases}:
                return service.id
        for service in self.services:
            wanted = service.match.ticket_fields if ticket else service.match.alert_labels
            if any(attributes.get(name) in values for name, values in wanted.items()):
                return service.id
        return None


def parse_service(definition: object, *, position: int | None = None) -> BusinessService:
    """Validate one service definition, naming the failing field."""
    where = "" if position is None else f"services[{position}]."
    try:
        return BusinessService.model_validate(definition)
    except ValidationError as error:
        raise CatalogueError(where + describe_validation_error(error)) from error


def parse_services(definitions: object, *, calendars: set[str]) -> list[BusinessService]:
    """Validate service definitions against each other and the calendars known."""
    if not isinstance(definitions, list):
        raise CatalogueError("services: expected a list of services")
    parsed = [parse_service(definition, position=index) for index, definition in enumerate(definitions)]
    for index, service in enumerate(parsed):
        if service.calendar != ALWAYS and service.calendar not in calendars:
            known = ", ".join(sorted({ALWAYS, *calendars}))
            raise CatalogueError(
                f"services[{index}].calendar: unknown calendar {service.calendar!r}; one of {known}"
            )
        if service.id in [other.id for other in parsed[:index]]:
            raise CatalogueError(f"services[{index}].id: service {service.id!r} given twice")
    return parsed


def check_aliases(services: Sequence[BusinessService]) -> None:
    """Reject an alias that names two services, or that is another service's id: a signal must map to one."""
    owners: dict[str, str] = {service.id.casefold(): service.id for service in services}
    for service in services:
        for alias in service.match.aliases:
            key = alias.strip().casefold()
            owner = owners.setdefault(key, service.id)
            if owner != service.id:
                raise CatalogueError(
                    f"services.{service.id}.match.aliases: {alias!r} already names service {owner!r}"
                )


def parse_rule(definition: object) -> MajorIncidentRule:
    """Validate the major-incident rule, naming the failing field."""
    try:
        return MajorIncidentRule.model_validate(definition if definition is not None else {})
    except ValidationError as error:
        raise CatalogueError("major_incidents." + describe_validation_error(error)) from error


def ticket_attributes(ticket: TicketChanged) -> dict[str, str]:
    """The ticket fields a service can be matched on, as text."""
    attributes = {
        name: value for name in TICKET_FIELDS if isinstance(value := getattr(ticket, name, None), str)
    }
    for name, value in ticket.custom.items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            attributes[f"custom.{name}"] = str(value)
    return attributes


def ticket_instant(ticket: TicketChanged, field: str) -> datetime | None:
    """The instant a ticket field holds, or None; raises CatalogueError for a value that is no aware instant."""
    value: Any = ticket.custom.get(field[7:]) if field.startswith("custom.") else getattr(ticket, field)
    if value is None or isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise CatalogueError(f"{field}: {value!r} is not an instant with a time zone offset")
    return parsed
