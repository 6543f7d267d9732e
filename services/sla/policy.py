"""SLA policies: which tickets a policy covers, and the target, calendar, pauses and warnings of each metric.

Policies are parsed from YAML-style mappings (see `policies.yaml`) into frozen values. Targets are
either business seconds ("4h", "30m", "90s", "1h30m", or a plain integer of seconds) or business days
("2d"). A business-day target ends at the close of the N-th working day after the day the timer starts
on: the start day is the local date (in the calendar's time zone) of the first business instant at or
after the start, a working day is a local date holding some business time, and its close is the instant
its last business second ends. It is converted to business seconds once, from the cycle start, so a
pause then shifts it like any other target (see `timers.target_seconds`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from functools import partial
from types import MappingProxyType
from typing import Any, Final, TypeVar

from bothways.events import Priority, StatusCategory, TicketChanged, TicketKind
from services.sla.calendar import Calendar, CalendarConfigError

__all__ = [
    "DEFAULT_PAUSE_CATEGORIES",
    "DEFAULT_WARNINGS",
    "Metric",
    "MetricPolicy",
    "Policy",
    "PolicyBook",
    "PolicyConfigError",
    "ReopenRule",
    "SlaConfig",
    "Target",
    "TicketMatch",
]

_T = TypeVar("_T")
_E = TypeVar("_E", bound=StrEnum)

DEFAULT_PAUSE_CATEGORIES: Final = frozenset({StatusCategory.PENDING})
DEFAULT_WARNINGS: Final = (Fraction(1, 2), Fraction(3, 4), Fraction(9, 10))

_TARGET_TEXT: Final = re.compile(r"(?:(?P<days>\d+)d|(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?)")
_MATCH_KEYS: Final = {
    "source": "sources",
    "kind": "kinds",
    "priority": "priorities",
    "business_service": "business_services",
    "organization": "organizations",
}
_POLICY_KEYS: Final = frozenset({"name", "version", "match", "metrics"})
_METRIC_KEYS: Final = frozenset({"calendar", "targets", "pause", "warnings", "reopen"})
_PAUSE_KEYS: Final = frozenset({"statuses", "categories"})


class PolicyConfigError(ValueError):
    """A policy definition is invalid; `field` names the offending entry as a dotted path."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem

    def within(self, prefix: str) -> PolicyConfigError:
        """The same error, its field path placed under an enclosing entry."""
        return PolicyConfigError(f"{prefix}.{self.field}", self.problem)


class Metric(StrEnum):
    """What a timer measures."""

    # Stops at the first public agent response (or at resolution when nobody answered first).
    FIRST_RESPONSE = "first_response"
    # Stops when the ticket is resolved or closed.
    RESOLUTION = "resolution"


class ReopenRule(StrEnum):
    """What a reopen after resolution does to a metric's clock."""

    NEW_CYCLE = "new_cycle"
    RESUME = "resume"


@dataclass(frozen=True, slots=True)
class Target:
    """A target: a number of business seconds, or a number of business days (exactly one of them)."""

    seconds: int | None = None
    business_days: int | None = None

    def __post_init__(self) -> None:
        if (self.seconds is None) == (self.business_days is None):
            raise ValueError("a target is either business seconds or business days")
        amount = self.seconds if self.seconds is not None else self.business_days
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValueError(f"a target must be a positive whole number, got {amount!r}")

    @classmethod
    def parse(cls, value: object) -> Target:
        """Parse '4h', '30m', '90s', '1h30m', '2d' or an integer number of seconds."""
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(seconds=value)
        match = _TARGET_TEXT.fullmatch(value.strip().lower()) if isinstance(value, str) else None
        if match is None or not any(match.groupdict().values()):
            raise ValueError(f"expected a duration like '4h', '30m', '90s', '1h30m' or '2d', got {value!r}")
        if match["days"] is not None:
            return cls(business_days=int(match["days"]))
        hours, minutes, seconds = (int(match[unit] or 0) for unit in ("h", "m", "s"))
        return cls(seconds=hours * 3600 + minutes * 60 + seconds)

    def __str__(self) -> str:
        if self.business_days is not None:
            return f"{self.business_days}d"
        hours, rest = divmod(self.seconds or 0, 3600)
        minutes, seconds = divmod(rest, 60)
        parts = [
            f"{amount}{unit}" for amount, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if amount
        ]
        return "".join(parts)


@dataclass(frozen=True, slots=True)
class TicketMatch:
    """Which tickets a policy covers; an empty criterion matches every ticket."""

    sources: frozenset[str] = frozenset()
    kinds: frozenset[TicketKind] = frozenset()
    priorities: frozenset[Priority] = frozenset()
    business_services: frozenset[str] = frozenset()
    organizations: frozenset[str] = frozenset()

    def matches(self, ticket: TicketChanged) -> bool:
        """Whether a ticket snapshot meets every criterion."""
        return all(
            not wanted or value in wanted
            for wanted, value in (
                (self.sources, ticket.source),
                (self.kinds, ticket.kind),
                (self.priorities, ticket.priority),
                (self.business_services, ticket.business_service),
                (self.organizations, ticket.organization),
            )
        )

    @classmethod
    def from_config(cls, config: object) -> TicketMatch:
        """Build the criteria from a mapping of field to one value or a list of values."""
        section = _mapping(config, field="match")
        _reject_unknown(section, frozenset(_MATCH_KEYS), prefix="match")
        values = {key: _text_set(section.get(key), field=f"match.{key}") for key in _MATCH_KEYS}
        return cls(
            sources=values["source"],
            kinds=_enum_set(TicketKind, values["kind"], field="match.kind"),
            priorities=_enum_set(Priority, values["priority"], field="match.priority"),
            business_services=values["business_service"],
            organizations=values["organization"],
        )


@dataclass(frozen=True, slots=True)
class MetricPolicy:
    """How one metric is measured: targets per priority, calendar, pauses, warnings and reopen rule."""

    metric: Metric
    calendar: str
    targets: Mapping[Priority, Target]
    # Used for a ticket without a priority, or a priority the targets do not name.
    default_target: Target | None = None
    # Raw status names, compared case-insensitively.
    pause_statuses: frozenset[str] = frozenset()
    pause_categories: frozenset[StatusCategory] = DEFAULT_PAUSE_CATEGORIES
    # Fractions of the target, strictly increasing, each strictly between 0 and 1.
    warnings: tuple[Fraction, ...] = DEFAULT_WARNINGS
    reopen: ReopenRule = ReopenRule.NEW_CYCLE

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", MappingProxyType(dict(self.targets)))
        object.__setattr__(self, "pause_statuses", frozenset(s.casefold() for s in self.pause_statuses))

    def target_for(self, priority: Priority | None) -> Target | None:
        """The target of a priority, else the default target, else None (no timer)."""
        found = self.targets.get(priority) if priority is not None else None
        return found or self.default_target

    def pauses_on(self, *, status: str, category: StatusCategory) -> bool:
        """Whether a ticket in this status stops the clock."""
        return category in self.pause_categories or status.casefold() in self.pause_statuses

    @classmethod
    def from_config(cls, metric: Metric, config: object) -> MetricPolicy:
        """Build one metric's rules from its YAML-style section."""
        section = _mapping(config, field="")
        _reject_unknown(section, _METRIC_KEYS, prefix="")
        targets, default = _parse_targets(section.get("targets"))
        statuses, categories = _parse_pause(section.get("pause"))
        return cls(
            metric=metric,
            calendar=_required_text(section, "calendar"),
            targets=targets,
            default_target=default,
            pause_statuses=statuses,
            pause_categories=categories,
            warnings=_parse_warnings(section.get("warnings")),
            reopen=_parse_reopen(section.get("reopen"), metric=metric),
        )


@dataclass(frozen=True, slots=True)
class Policy:
    """One version of a named policy: the tickets it covers and its metrics, in a fixed order."""

    name: str
    version: int
    match: TicketMatch
    metrics: tuple[MetricPolicy, ...]

    def matches(self, ticket: TicketChanged) -> bool:
        """Whether the policy covers a ticket snapshot."""
        return self.match.matches(ticket)

    def metric(self, metric: Metric) -> MetricPolicy | None:
        """The rules of one metric, or None when the policy does not measure it."""
        return next((rules for rules in self.metrics if rules.metric is metric), None)

    @property
    def calendars(self) -> frozenset[str]:
        """The names of the calendars the metrics count on."""
        return frozenset(rules.calendar for rules in self.metrics)

    @classmethod
    def from_config(cls, config: object) -> Policy:
        """Build a policy from its YAML-style definition, raising PolicyConfigError naming the bad field."""
        section = _mapping(config, field="policy")
        _reject_unknown(section, _POLICY_KEYS, prefix="")
        return cls(
            name=_required_text(section, "name"),
            version=_parse_version(section.get("version", 1)),
            match=TicketMatch.from_config(section.get("match", {})),
            metrics=_parse_metrics(section.get("metrics")),
        )


@dataclass(frozen=True, slots=True)
class PolicyBook:
    """The policies in force, in order: the first one matching a ticket applies."""

    policies: tuple[Policy, ...]

    def match(self, ticket: TicketChanged) -> Policy | None:
        """The first policy covering a ticket snapshot, or None."""
        return next((policy for policy in self.policies if policy.matches(ticket)), None)

    @classmethod
    def from_config(cls, config: object) -> PolicyBook:
        """Build the ordered policies from a list of policy definitions."""
        if not isinstance(config, list | tuple):
            raise PolicyConfigError("policies", "expected a list of policies")
        policies = tuple(_within(f"policies[{i}]", Policy.from_config, item) for i, item in enumerate(config))
        names = [policy.name for policy in policies]
        for position, name in enumerate(names):
            if name in names[:position]:
                raise PolicyConfigError(f"policies[{position}].name", f"policy {name!r} given twice")
        return cls(policies)


@dataclass(frozen=True, slots=True)
class SlaConfig:
    """A whole SLA configuration file: the calendars by name and the ordered policies counting on them."""

    calendars: Mapping[str, Calendar]
    policies: PolicyBook

    @classmethod
    def from_config(cls, config: object) -> SlaConfig:
        """Parse `calendars` and `policies`, checking that every calendar a policy names exists."""
        section = _mapping(config, field="config")
        _reject_unknown(section, frozenset({"calendars", "policies"}), prefix="")
        calendars = calendars_from_config(section.get("calendars", []))
        book = PolicyBook.from_config(section.get("policies"))
        check_calendars_known(book, calendars)
        return cls(calendars=MappingProxyType(calendars), policies=book)


def check_calendars_known(book: PolicyBook, calendars: Collection[str]) -> None:
    """Raise PolicyConfigError naming the first metric that counts on a calendar not in `calendars`."""
    for position, policy in enumerate(book.policies):
        for rules in policy.metrics:
            if rules.calendar not in calendars:
                raise PolicyConfigError(
                    f"policies[{position}].metrics.{rules.metric}.calendar",
                    f"unknown calendar {rules.calendar!r}",
                )


def calendars_from_config(value: object) -> dict[str, Calendar]:
    """A list of calendar definitions by name, in order, raising PolicyConfigError naming the bad field."""
    if not isinstance(value, list | tuple):
        raise PolicyConfigError("calendars", "expected a list of calendars")
    calendars: dict[str, Calendar] = {}
    for position, item in enumerate(value):
        try:
            calendar = Calendar.from_config(item)
        except CalendarConfigError as error:
            raise PolicyConfigError(f"calendars[{position}].{error.field}", str(error)) from error
        if calendar.name in calendars:
            raise PolicyConfigError(f"calendars[{position}].name", f"calendar {calendar.name!r} given twice")
        calendars[calendar.name] = calendar
    return calendars


def _parse_metrics(value: object) -> tuple[MetricPolicy, ...]:
    section = _mapping(value, field="metrics")
    if not section:
        raise PolicyConfigError("metrics", "at least one metric is required")
    metrics = []
    for key, rules in section.items():
        try:
            metric = Metric(key)
        except ValueError as error:
            raise PolicyConfigError(
                f"metrics.{key}", f"unknown metric, expected one of {_names(Metric)}"
            ) from error
        metrics.append(_within(f"metrics.{key}", partial(MetricPolicy.from_config, metric), rules))
    return tuple(metrics)


def _parse_targets(value: object) -> tuple[dict[Priority, Target], Target | None]:
    section = _mapping(value, field="targets")
    targets: dict[Priority, Target] = {}
    default = None
    for key, text in section.items():
        try:
            target = Target.parse(text)
        except ValueError as error:
            raise PolicyConfigError(f"targets.{key}", str(error)) from error
        if key == "default":
            default = target
            continue
        try:
            targets[Priority(key)] = target
        except ValueError as error:
            raise PolicyConfigError(
                f"targets.{key}", f"expected one of {_names(Priority)} or default"
            ) from error
    if not targets and default is None:
        raise PolicyConfigError("targets", "at least one target is required")
    return targets, default


def _parse_pause(value: object) -> tuple[frozenset[str], frozenset[StatusCategory]]:
    if value is None:
        return frozenset(), DEFAULT_PAUSE_CATEGORIES
    section = _mapping(value, field="pause")
    _reject_unknown(section, _PAUSE_KEYS, prefix="pause")
    statuses = _text_set(section.get("statuses"), field="pause.statuses")
    if "categories" not in section:
        return statuses, DEFAULT_PAUSE_CATEGORIES
    categories = _text_set(section["categories"], field="pause.categories")
    return statuses, _enum_set(StatusCategory, categories, field="pause.categories")


def _parse_warnings(value: object) -> tuple[Fraction, ...]:
    if value is None:
        return DEFAULT_WARNINGS
    if not isinstance(value, list | tuple):
        raise PolicyConfigError("warnings", "expected a list of percentages, e.g. [50, 75, 90]")
    fractions = tuple(_percentage(item, field=f"warnings[{i}]") for i, item in enumerate(value))
    for position in range(1, len(fractions)):
        if fractions[position] <= fractions[position - 1]:
            raise PolicyConfigError(f"warnings[{position}]", "percentages must be strictly increasing")
    return fractions


def _percentage(value: object, *, field: str) -> Fraction:
    text = value.strip().removesuffix("%") if isinstance(value, str) else value
    if isinstance(text, bool) or not isinstance(text, int | float | str):
        raise PolicyConfigError(field, f"expected a percentage such as 75 or '75%', got {value!r}")
    try:
        # Through text so that 87.5 means exactly 875/1000, not its binary approximation.
        fraction = Fraction(str(text)) / 100
    except ValueError as error:
        raise PolicyConfigError(field, f"expected a percentage such as 75 or '75%', got {value!r}") from error
    if not 0 < fraction < 1:
        raise PolicyConfigError(field, f"a warning must lie strictly between 0% and 100%, got {value!r}")
    return fraction


def _parse_reopen(value: object, *, metric: Metric) -> ReopenRule:
    if value is None:
        # A reopened ticket has usually been answered already: its first response stands by default.
        return ReopenRule.RESUME if metric is Metric.FIRST_RESPONSE else ReopenRule.NEW_CYCLE
    try:
        return ReopenRule(str(value))
    except ValueError as error:
        raise PolicyConfigError("reopen", f"expected one of {_names(ReopenRule)}, got {value!r}") from error


def _parse_version(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyConfigError("version", f"expected a whole number from 1, got {value!r}")
    return value


def _within(prefix: str, build: Callable[[object], _T], config: object) -> _T:
    try:
        return build(config)
    except PolicyConfigError as error:
        raise error.within(prefix) from error


def _mapping(value: object, *, field: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise PolicyConfigError(field or "(root)", "expected a mapping")
    return value


def _reject_unknown(section: Mapping[Any, Any], known: frozenset[str], *, prefix: str) -> None:
    unknown = sorted((str(key) for key in section if key not in known), key=str)
    if unknown:
        raise PolicyConfigError(f"{prefix}.{unknown[0]}" if prefix else unknown[0], "unknown field")


def _required_text(section: Mapping[Any, Any], key: str) -> str:
    value = section.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PolicyConfigError(key, "required, expected text")
    return value.strip()


def _text_set(value: object, *, field: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise PolicyConfigError(field, f"expected text or a list of text, got {value!r}")
    for position, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise PolicyConfigError(f"{field}[{position}]", f"expected text, got {item!r}")
    return frozenset(str(item).strip() for item in items)


def _enum_set(kind: type[_E], values: frozenset[str], *, field: str) -> frozenset[_E]:
    members: set[_E] = set()
    for value in sorted(values):
        try:
            members.add(kind(value))
        except ValueError as error:
            raise PolicyConfigError(
                field, f"unknown value {value!r}, expected one of {_names(kind)}"
            ) from error
    return frozenset(members)


def _names(kind: type[StrEnum]) -> str:
    return ", ".join(member.value for member in kind)
