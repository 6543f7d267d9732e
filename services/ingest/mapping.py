"""Per-source mapping of platform tickets and outage signals onto the canonical events, loaded from YAML.

The packaged `mapping.yaml` holds the defaults; a deployment's file and then explicit overrides are
merged over it key by key, so a site writes only what differs. A key set to null removes a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bothways.events import OutageImpact, Priority, StatusCategory, TicketKind, describe_validation_error

DEFAULT_MAPPING_PATH = Path(__file__).with_name("mapping.yaml")
TICKET_SOURCES = ("jira", "zendesk", "servicenow", "freshservice")
OUTAGE_SOURCES = ("pagerduty", "alertmanager")
SOURCES = (*TICKET_SOURCES, *OUTAGE_SOURCES)

# Settings that only one platform's normaliser reads; elsewhere they would be silently ignored.
PLATFORM_KEYS = {"status_category_keys": "jira", "agent_account_types": "jira", "instances": "servicenow"}

T = TypeVar("T")
# A business service id as outage signals carry it (bothways.events.OutageSignal.business_service).
BusinessServiceId = Annotated[str, Field(min_length=1, max_length=200)]


class MappingError(ValueError):
    """A mapping file or override that cannot be used; the message names the bad key."""


class Paths(BaseModel):
    """Where each canonical field lives in the platform's ticket object; candidates tried in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    business_service: tuple[str, ...] = ()
    assignment_group: tuple[str, ...] = ()
    organization: tuple[str, ...] = ()
    kind: tuple[str, ...] = ()
    first_response: tuple[str, ...] = ()
    reopen_count: tuple[str, ...] = ()
    custom: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator(
        "business_service",
        "assignment_group",
        "organization",
        "kind",
        "first_response",
        "reopen_count",
        mode="before",
    )
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_candidates(value)

    @field_validator("custom", mode="before")
    @classmethod
    def _custom_one_or_many(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {name: _as_candidates(paths) for name, paths in value.items()}


class SourceMapping(BaseModel):
    """How one platform's tickets map onto the canonical ticket."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    paths: Paths = Field(default_factory=Paths)
    statuses: dict[str, StatusCategory] = Field(default_factory=dict)
    priorities: dict[str, Priority] = Field(default_factory=dict)
    kinds: dict[str, TicketKind] = Field(default_factory=dict)
    default_kind: TicketKind = TicketKind.INCIDENT
    # Naive timestamps in payloads are read in this zone (ServiceNow sends "YYYY-MM-DD HH:MM:SS").
    time_zone: str = "UTC"
    # Jira only: fallback from `statusCategory.key` (new/indeterminate/done) for unmapped status names.
    status_category_keys: dict[str, StatusCategory] = Field(default_factory=dict)
    # Jira only: comment authors of these account types are agents ("customer" and "app" are not).
    agent_account_types: tuple[str, ...] = ()
    # ServiceNow only: per-instance mappings, already merged over this one by load_mapping().
    instances: dict[str, SourceMapping] = Field(default_factory=dict)

    @field_validator("statuses", "priorities", "kinds", "status_category_keys", "instances", mode="before")
    @classmethod
    def _fold_keys(cls, value: Any) -> Any:
        return _folded_keys(value)

    @field_validator("agent_account_types", mode="before")
    @classmethod
    def _fold_account_types(cls, value: Any) -> Any:
        return tuple(fold(str(v)) for v in _as_candidates(value))

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _instances_are_flat(self) -> SourceMapping:
        nested = [name for name, instance in self.instances.items() if instance.instances]
        if nested:
            raise ValueError(f"instances cannot hold instances (in {', '.join(nested)})")
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The time zone naive payload timestamps are read in."""
        return ZoneInfo(self.time_zone)

    def status_category(self, *raw: str | None) -> StatusCategory | None:
        """The category of the first raw status value that the mapping knows."""
        return _first_known(self.statuses, raw)

    def priority(self, *raw: str | None) -> Priority | None:
        """The canonical priority of the first raw priority value that the mapping knows."""
        return _first_known(self.priorities, raw)

    def kind(self, raw: str | None) -> TicketKind:
        """The ticket kind of a raw type name (issue type, table, ticket type), else the default."""
        return _first_known(self.kinds, (raw,)) or self.default_kind

    def for_instance(self, name: str | None) -> SourceMapping:
        """The mapping of one platform instance (e.g. `acme` for acme.service-now.com), else this one."""
        return self.instances.get(fold(name), self) if name else self


class PagerDutyMapping(BaseModel):
    """How PagerDuty incidents map onto outage signals."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # PagerDuty service id (PF9KMXH) or name -> business service id; an entry for the id wins.
    services: dict[str, BusinessServiceId] = Field(default_factory=dict)
    # The incident's priority decides its impact; its urgency only when the priority is unset or unlisted.
    priorities: dict[str, OutageImpact] = Field(default_factory=dict)
    urgencies: dict[str, OutageImpact] = Field(default_factory=dict)
    default_impact: OutageImpact = OutageImpact.MAJOR

    @field_validator("services", "priorities", "urgencies", mode="before")
    @classmethod
    def _fold_keys(cls, value: Any) -> Any:
        return _folded_keys(value)

    def business_service(self, *references: str | None) -> str | None:
        """The business service of the first PagerDuty service reference (id, then name) listed."""
        return _first_known(self.services, references)

    def impact(self, *, priority: str | None, urgency: str | None) -> OutageImpact:
        """The impact of an incident: by priority, else by urgency, else the default."""
        return (
            _first_known(self.priorities, (priority,))
            or _first_known(self.urgencies, (urgency,))
            or self.default_impact
        )


class AlertmanagerMapping(BaseModel):
    """How Prometheus Alertmanager alerts map onto outage signals; label names are case-sensitive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Labels naming the alert's service, tried in order; the first one present is the service reference.
    service_labels: tuple[str, ...] = ()
    # Label value -> business service id, for values that are not business service ids themselves.
    services: dict[str, BusinessServiceId] = Field(default_factory=dict)
    # When true, a value missing from `services` leaves the signal unmapped instead of naming the service.
    listed_services_only: bool = False
    severity_labels: tuple[str, ...] = ()
    severities: dict[str, OutageImpact] = Field(default_factory=dict)
    default_impact: OutageImpact = OutageImpact.MAJOR
    # Labels whose true value ("true", "1", "yes") marks an alert as planned work.
    planned_labels: tuple[str, ...] = ()

    @field_validator("service_labels", "severity_labels", "planned_labels", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_candidates(value)

    @field_validator("services", "severities", mode="before")
    @classmethod
    def _fold_keys(cls, value: Any) -> Any:
        return _folded_keys(value)

    def business_service(self, reference: str) -> str | None:
        """The business service a service label value names, or None when it stays unmapped."""
        listed = _first_known(self.services, (reference,))
        return listed if listed is not None or self.listed_services_only else reference

    def impact(self, severity: str | None) -> OutageImpact:
        """The impact of an alert of this severity; an unlisted or absent one has the default."""
        return _first_known(self.severities, (severity,)) or self.default_impact


# Whatever section of the mapping a source reads.
SourceSettings = SourceMapping | PagerDutyMapping | AlertmanagerMapping


class Mapping(BaseModel):
    """The mapping of every supported platform."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jira: SourceMapping
    zendesk: SourceMapping
    servicenow: SourceMapping
    freshservice: SourceMapping
    pagerduty: PagerDutyMapping
    alertmanager: AlertmanagerMapping

    @field_validator("jira", "zendesk", "servicenow", "freshservice")
    @classmethod
    def _platform_keys_only_where_read(cls, value: SourceMapping, info: ValidationInfo) -> SourceMapping:
        misplaced = [
            f"{key} is only read for {owner}"
            for key, owner in PLATFORM_KEYS.items()
            if owner != info.field_name
            and any(getattr(mapping, key) for mapping in (value, *value.instances.values()))
        ]
        if misplaced:
            raise ValueError("; ".join(misplaced))
        return value

    @overload
    def for_source(
        self, source: Literal["jira", "zendesk", "servicenow", "freshservice"]
    ) -> SourceMapping: ...

    @overload
    def for_source(self, source: Literal["pagerduty"]) -> PagerDutyMapping: ...

    @overload
    def for_source(self, source: Literal["alertmanager"]) -> AlertmanagerMapping: ...

    @overload
    def for_source(self, source: str) -> SourceSettings: ...

    def for_source(self, source: str) -> SourceSettings:
        """The mapping of one source by name, e.g. `jira`."""
        if source not in SOURCES:
            raise KeyError(f"no mapping for source {source!r}")
        mapping: SourceSettings = getattr(self, source)
        return mapping


def load_mapping(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Mapping:
    """The packaged defaults, merged with the YAML file at `path`, then with `overrides`."""
    raw = _read_yaml(DEFAULT_MAPPING_PATH)
    if path is not None:
        raw = merged(raw, _read_yaml(path))
    if overrides:
        raw = merged(raw, overrides)
    try:
        return Mapping.model_validate(_with_instances_resolved(raw))
    except ValidationError as exc:
        origin = f" ({path})" if path is not None else ""
        raise MappingError(f"invalid ingest mapping{origin}: {describe_validation_error(exc)}") from exc


def merged(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """`overlay` merged over `base`: nested dicts merge, other values replace, None removes the key."""
    result = dict(base)
    for key, value in overlay.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def fold(text: str) -> str:
    """The lookup form of a raw value: case-folded, inner whitespace collapsed."""
    return " ".join(text.split()).casefold()


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError(f"cannot read ingest mapping {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise MappingError(f"ingest mapping {path} is not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise MappingError(f"ingest mapping {path}: the top level must map source names to settings")
    return loaded


def _with_instances_resolved(raw: dict[str, Any]) -> dict[str, Any]:
    """Each per-instance override merged over its source's own settings, so an instance is complete."""
    resolved = dict(raw)
    for source, settings in raw.items():
        instances = settings.get("instances") if isinstance(settings, dict) else None
        if not isinstance(instances, dict):
            continue
        own = {key: value for key, value in settings.items() if key != "instances"}
        resolved[source] = {
            **settings,
            "instances": {
                name: merged(own, override) if isinstance(override, dict) else override
                for name, override in instances.items()
            },
        }
    return resolved


def _folded_keys(value: Any) -> Any:
    # Platforms differ in case ("SOLVED", "Solved", "solved"); lookups fold case, so keys do too.
    if not isinstance(value, dict):
        return value
    return {fold(str(key)): entry for key, entry in value.items()}


def _as_candidates(value: Any) -> Any:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return value


def _first_known(table: dict[str, T], raw: tuple[str | None, ...]) -> T | None:
    for value in raw:
        if value is not None and (found := table.get(fold(value))) is not None:
            return found
    return None
