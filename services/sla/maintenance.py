"""Maintenance windows of a business service: one-off, or weekly at a local wall time, as UTC intervals.

Pure. A weekly window opens at its local wall time on each listed weekday (in its own time zone, so it
follows DST) and lasts its duration in real time. A wall time that happens twice that day (a DST fold)
is its first occurrence; one that does not exist (a DST gap) is read with the offset before the change,
as `zoneinfo` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from bothways.events import describe_validation_error
from services.sla.availability import Interval

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_LONGEST = timedelta(days=7)
MAX_WINDOWS = 200


class MaintenanceError(ValueError):
    """Maintenance windows that cannot be used; the message names the field."""


class MaintenanceWindow(BaseModel):
    """A one-off window (`start`, `end`), or a weekly one (`weekly_on`, `at`, `duration_minutes`, `timezone`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str | None = Field(default=None, max_length=500)
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    weekly_on: list[Weekday] | None = Field(default=None, min_length=1, max_length=7)
    at: time | None = Field(default=None, examples=["02:00"])
    duration_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    timezone: str | None = Field(default=None, max_length=100)
    # The dates a weekly window applies from and until (inclusive, local); open-ended without `until`.
    effective_from: date | None = None
    effective_until: date | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> MaintenanceWindow:
        weekly = (self.weekly_on, self.at, self.duration_minutes, self.timezone)
        if self.start is not None and self.end is not None and all(value is None for value in weekly):
            _check_one_off(self.start, self.end, effective=(self.effective_from, self.effective_until))
            return self
        one_off = (self.start, self.end)
        if all(value is not None for value in weekly) and all(value is None for value in one_off):
            assert self.timezone is not None
            assert self.at is not None
            _check_weekly(self.timezone, self.at, effective=(self.effective_from, self.effective_until))
            return self
        raise ValueError(
            "a window is either one-off (start, end) or weekly (weekly_on, at, duration_minutes, timezone)"
        )

    def intervals(self, *, start: datetime, end: datetime) -> list[Interval]:
        """The window's occurrences overlapping [start, end), whole (not clipped)."""
        if self.start is not None and self.end is not None:
            return [Interval(self.start, self.end)] if self.start < end and start < self.end else []
        return self._weekly(start=start, end=end)

    def _weekly(self, *, start: datetime, end: datetime) -> list[Interval]:
        # The validator guarantees these for a window that is not one-off.
        zone = ZoneInfo(self.timezone or "UTC")
        at, length = self.at or time(0), timedelta(minutes=self.duration_minutes or 0)
        days = {_WEEKDAYS.index(day) for day in self.weekly_on or ()}
        # An occurrence starting up to a week before `start` can still reach into it.
        day = (start - _LONGEST).astimezone(zone).date()
        last = end.astimezone(zone).date()
        found = []
        while day <= last:
            if day.weekday() in days and self._effective(day):
                opens = datetime.combine(day, at, zone).astimezone(UTC)
                if opens < end and start < opens + length:
                    found.append(Interval(opens, opens + length))
            day += timedelta(days=1)
        return found

    def _effective(self, day: date) -> bool:
        return (self.effective_from is None or self.effective_from <= day) and (
            self.effective_until is None or day <= self.effective_until
        )


def _check_one_off(start: datetime, end: datetime, *, effective: tuple[date | None, date | None]) -> None:
    if end <= start:
        raise ValueError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    if effective != (None, None):
        raise ValueError("effective_from and effective_until apply to weekly windows only")


def _check_weekly(timezone: str, at: time, *, effective: tuple[date | None, date | None]) -> None:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {timezone!r}") from error
    if at.tzinfo is not None:
        raise ValueError("at is a local wall time without an offset; the zone is `timezone`")
    first, last = effective
    if first is not None and last is not None and last < first:
        raise ValueError("effective_until is before effective_from")


def parse_windows(definitions: object) -> list[MaintenanceWindow]:
    """Validate a service's windows, naming the failing one."""
    if not isinstance(definitions, list):
        raise MaintenanceError("windows: expected a list of maintenance windows")
    if len(definitions) > MAX_WINDOWS:
        raise MaintenanceError(f"windows: at most {MAX_WINDOWS} windows per service")
    parsed = []
    for index, definition in enumerate(definitions):
        try:
            parsed.append(MaintenanceWindow.model_validate(definition))
        except ValidationError as error:
            raise MaintenanceError(f"windows[{index}]: {describe_validation_error(error)}") from error
    return parsed


def window_intervals(
    windows: Sequence[MaintenanceWindow], *, start: datetime, end: datetime
) -> list[Interval]:
    """Every occurrence of the windows overlapping [start, end)."""
    return [interval for window in windows for interval in window.intervals(start=start, end=end)]
