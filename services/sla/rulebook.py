"""The SLA rules in force: every stored version of every calendar and policy, and the policy order.

Versions are immutable once stored, so a timer pinned to (policy, version) and calendar versions
computes the same way for ever; a change is a new version, which running timers take only when
recalculated. Calendars are versioned automatically (a changed definition is the next version);
policies carry their version in their definition, and a changed definition must bump it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from types import MappingProxyType
from typing import Any, cast

from bothways.events import TicketChanged
from services.sla.calendar import BusinessClock, Calendar
from services.sla.policy import Policy, PolicyBook, calendars_from_config, check_calendars_known

__all__ = ["CalendarPins", "Rulebook", "jsonable", "parse_calendars", "parse_policies"]

# Calendar name -> version, as pinned on a ticket.
CalendarPins = Mapping[str, int]


@dataclass(frozen=True)
class Rulebook:
    """A read-only view of the stored SLA configuration."""

    calendars: Mapping[tuple[str, int], Calendar]
    policies: Mapping[tuple[str, int], Policy]
    # The policies in force, in order: (name, version).
    order: Sequence[tuple[str, int]]
    _clocks: dict[tuple[str, int], BusinessClock] = field(default_factory=dict, repr=False)

    @property
    def current_calendars(self) -> dict[str, int]:
        """The latest version of every calendar."""
        latest: dict[str, int] = {}
        for name, version in self.calendars:
            latest[name] = max(version, latest.get(name, 0))
        return latest

    def match(self, ticket: TicketChanged) -> Policy | None:
        """The first policy in force covering a ticket snapshot, or None."""
        for key in self.order:
            policy = self.policies[key]
            if policy.matches(ticket):
                return policy
        return None

    def policy(self, name: str, version: int) -> Policy | None:
        return self.policies.get((name, version))

    def clocks(self, pins: CalendarPins) -> Mapping[str, BusinessClock]:
        """The clocks of the pinned calendar versions, by name; a clock is built once and reused."""
        clocks = {}
        for name, version in pins.items():
            key = (name, version)
            if key not in self.calendars:
                continue
            if key not in self._clocks:
                self._clocks[key] = BusinessClock(self.calendars[key])
            clocks[name] = self._clocks[key]
        return MappingProxyType(clocks)

    def pins_for(self, policy: Policy, *, keep: CalendarPins) -> dict[str, int]:
        """Calendar versions for a policy: those already pinned, else the current ones."""
        current = self.current_calendars
        return {name: keep.get(name, current[name]) for name in sorted(policy.calendars) if name in current}


def parse_calendars(definitions: object) -> list[tuple[Calendar, dict[str, Any]]]:
    """Validate calendar definitions; each comes back with its JSON-ready definition."""
    calendars = calendars_from_config(definitions)
    return list(zip(calendars.values(), map(jsonable, cast(Sequence[object], definitions)), strict=True))


def parse_policies(definitions: object, *, calendars: Collection[str]) -> list[tuple[Policy, dict[str, Any]]]:
    """Validate policy definitions against the calendars known; each comes with its JSON definition."""
    book = PolicyBook.from_config(definitions)
    check_calendars_known(book, calendars)
    return list(zip(book.policies, map(jsonable, cast(Sequence[object], definitions)), strict=True))


def jsonable(value: object) -> Any:
    """A YAML-parsed definition as JSON-ready data: dates and times become ISO text, keys text."""
    if isinstance(value, Mapping):
        return {str(jsonable(key)): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, date | time | datetime):
        return value.isoformat()
    return value
