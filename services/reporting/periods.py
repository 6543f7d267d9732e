"""Reporting periods: UTC calendar months, named `YYYY-MM` like the availability events' `period`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from bothways.errors import InvalidInput

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")
EARLIEST_YEAR = 2000


class InvalidPeriod(InvalidInput):
    """A period that is not a month as YYYY-MM, or one that has not begun."""


@dataclass(frozen=True, order=True, slots=True)
class Period:
    """One calendar month in UTC."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str, *, now: datetime) -> Period:
        """A `YYYY-MM` month from 2000 up to the current one; anything else raises InvalidPeriod."""
        match = _PERIOD.match(text)
        if not match or not 1 <= int(match[2]) <= 12:
            raise InvalidPeriod(f"period {text!r} is not a month as YYYY-MM, e.g. 2026-10", field="period")
        period = cls(int(match[1]), int(match[2]))
        if period.year < EARLIEST_YEAR:
            raise InvalidPeriod(f"period {text} is before {EARLIEST_YEAR}", field="period")
        if period > cls.of(now):
            raise InvalidPeriod(f"period {text} has not begun yet", field="period")
        return period

    @classmethod
    def of(cls, instant: datetime) -> Period:
        """The month an instant falls in, in UTC."""
        utc = instant.astimezone(UTC)
        return cls(utc.year, utc.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> datetime:
        """The first instant of the month."""
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first instant of the next month (the period is [start, end))."""
        return self.shifted(1).start

    def shifted(self, months: int) -> Period:
        """The month `months` later (earlier when negative)."""
        index = self.year * 12 + self.month - 1 + months
        return Period(index // 12, index % 12 + 1)

    def back(self, months: int) -> list[Period]:
        """The `months` months ending with this one, oldest first."""
        return [self.shifted(-offset) for offset in range(months - 1, -1, -1)]
