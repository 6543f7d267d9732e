"""Business calendars (opening hours, holidays, closures) and exact business-time arithmetic on them."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from math import floor
from types import MappingProxyType
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = [
    "BusinessClock",
    "Calendar",
    "CalendarConfigError",
    "NoOpeningError",
    "OpeningInterval",
]

_ONE_DAY: Final = timedelta(days=1)
_UNIX_EPOCH: Final = date(1970, 1, 1)
_UNIX_EPOCH_ORDINAL: Final = _UNIX_EPOCH.toordinal()
_UNIX_EPOCH_UTC: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SECONDS_PER_DAY: Final = 86_400
# Instants are accepted in these UTC years; one more year is built on either side for local offsets.
_FIRST_YEAR: Final = 1901
_LAST_YEAR: Final = 2199
# A calendar that stays closed this long is treated as never opening, so searches terminate.
_HORIZON_SECONDS: Final = 10 * 366 * _SECONDS_PER_DAY

_DAY_NAMES: Final = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_CONFIG_KEYS: Final = frozenset(
    {"name", "timezone", "weekly", "holidays", "custom_holidays", "partial_closures", "overrides"}
)
_TIME_TEXT: Final = re.compile(r"(\d{2}):(\d{2})(?::(\d{2}))?")


class CalendarConfigError(ValueError):
    """A calendar definition is invalid; `field` names the offending entry."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class NoOpeningError(LookupError):
    """The calendar has no opening hours within ten years of the instant asked about."""


@dataclass(frozen=True, slots=True)
class OpeningInterval:
    """Local opening hours belonging to one day; an end at or before the start runs into the next day."""

    start: time
    end: time

    def __post_init__(self) -> None:
        _check_wall_time(self.start, field="start")
        _check_wall_time(self.end, field="end")

    @classmethod
    def all_day(cls) -> OpeningInterval:
        """Open from midnight to the next midnight."""
        return cls(time(0), time(0))

    @classmethod
    def parse(cls, text: str) -> OpeningInterval:
        """Parse 'HH:MM[:SS]-HH:MM[:SS]'; '24:00' is accepted as an end meaning midnight."""
        start_text, dash, end_text = text.partition("-")
        malformed = ValueError(f"expected 'HH:MM[:SS]-HH:MM[:SS]', got {text!r}")
        if not dash:
            raise malformed
        try:
            return cls(_parse_time(start_text, allow_midnight_end=False), _parse_time(end_text))
        except ValueError as error:
            raise malformed from error

    @property
    def is_overnight(self) -> bool:
        """Whether the interval ends on the following local day."""
        return self.end <= self.start


@dataclass(frozen=True, kw_only=True)
class Calendar:
    """When a team is at work: weekly hours, holidays, partial-day closures and date overrides.

    A local date takes its override if it has one (an empty one closes it), else no hours on a
    public or custom holiday, else its weekday's hours; a partial closure then cuts that date's
    intervals at its time. An interval belongs to the date it starts on, so a night shift that
    starts the evening before a holiday runs into it. A local wall time stands for the first
    instant at which the clock reads it or later: the end of the gap when it falls in a DST gap,
    the first occurrence when it falls in a DST fold.
    """

    name: str
    timezone: str
    weekly: Mapping[int, Sequence[OpeningInterval]]
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    custom_holidays: frozenset[date] = frozenset()
    partial_closures: Mapping[date, time] = field(default_factory=dict)
    overrides: Mapping[date, Sequence[OpeningInterval]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise CalendarConfigError("name", f"expected a non-empty name, got {self.name!r}")
        _check_timezone(self.timezone, field="timezone")
        _check_holidays(
            self.holiday_country,
            self.holiday_subdivision,
            country_field="holiday_country",
            subdivision_field="holiday_subdivision",
        )
        for weekday in self.weekly:
            if not isinstance(weekday, int) or not 0 <= weekday <= 6:
                raise CalendarConfigError("weekly", f"weekday must be 0 (Monday) to 6, got {weekday!r}")
        custom = frozenset(self.custom_holidays)
        for day in custom:
            _check_date(day, field="custom_holidays")
        for day, closing in self.partial_closures.items():
            _check_date(day, field="partial_closures")
            _check_wall_time(closing, field=f"partial_closures.{day}")
        for day in self.overrides:
            _check_date(day, field="overrides")
        # Frozen all the way down, so a calendar shared between clocks cannot change under them.
        object.__setattr__(self, "weekly", _freeze_intervals(self.weekly, field="weekly"))
        object.__setattr__(self, "custom_holidays", custom)
        object.__setattr__(self, "partial_closures", MappingProxyType(dict(self.partial_closures)))
        object.__setattr__(self, "overrides", _freeze_intervals(self.overrides, field="overrides"))

    @classmethod
    def always_open(cls, name: str, *, timezone: str = "UTC") -> Calendar:
        """A 24x7 calendar without holidays."""
        return cls(
            name=name, timezone=timezone, weekly={day: (OpeningInterval.all_day(),) for day in range(7)}
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Calendar:
        """Build a calendar from its YAML-style definition, raising CalendarConfigError on bad input."""
        if not isinstance(config, Mapping):
            raise CalendarConfigError("calendar", "expected a mapping")
        unknown = sorted(set(config) - _CONFIG_KEYS, key=str)
        if unknown:
            raise CalendarConfigError(str(unknown[0]), "unknown field")
        name = _required_text(config, "name")
        timezone = _required_text(config, "timezone")
        _check_timezone(timezone, field="timezone")
        country, subdivision = _parse_holidays(config.get("holidays"))
        return cls(
            name=name,
            timezone=timezone,
            weekly=_parse_weekly(config.get("weekly", _MISSING)),
            holiday_country=country,
            holiday_subdivision=subdivision,
            custom_holidays=frozenset(_parse_custom_holidays(config.get("custom_holidays", ()))),
            partial_closures=_parse_partial_closures(config.get("partial_closures", {})),
            overrides=_parse_overrides(config.get("overrides", {})),
        )


class _Openings(NamedTuple):
    """Merged UTC opening intervals in epoch seconds, with business seconds before each start."""

    starts: list[int]
    ends: list[int]
    # cumulative[i] is the business time before starts[i]; it has one more entry than starts.
    cumulative: list[int]
    # The instants in [exact_from, exact_until) are answered exactly by these lists.
    exact_from: int
    exact_until: int


_NOTHING_BUILT: Final = _Openings([], [], [0], 0, 0)


class _InterpretedClockCore:
    """BusinessClock's two hot methods in Python: the reference for the compiled core, used without it.

    _clock_core.pyx holds the same methods compiled to C (the one that runs once the project is
    installed); tests/unit/sla/test_calendar.py checks that the two agree.
    """

    __slots__ = ()
    # Provided by BusinessClock.
    _openings: _Openings
    _openings_for: Callable[[int, int], _Openings]
    _extend_beyond: Callable[[int], _Openings]
    next_opening: Callable[..., datetime]

    def _install(self, openings: _Openings) -> None:
        """Nothing to copy: these methods read self._openings."""

    def business_seconds_between(self, *, start: datetime, end: datetime) -> int:
        """Business seconds in [start, end); zero when end is not after start."""
        first = _epoch_seconds(start)
        last = _epoch_seconds(end)
        if last <= first:
            return 0
        starts, ends, cumulative, _, _ = self._openings_for(first, last)
        # Conditional expressions rather than min(): this is the hot path and they are several times cheaper.
        index = bisect_right(starts, last) - 1
        if index < 0:
            return 0
        close = ends[index]
        elapsed = cumulative[index] + (last if last < close else close) - starts[index]
        index = bisect_right(starts, first) - 1
        if index >= 0:
            close = ends[index]
            elapsed -= cumulative[index] + (first if first < close else close) - starts[index]
        return elapsed

    def add_business_seconds(self, *, start: datetime, seconds: int) -> datetime:
        """The earliest instant by which `seconds` business seconds have passed since start, in UTC."""
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, got {seconds}")
        if seconds == 0:
            # Counting starts at the next opening, so a zero budget lands there, not in a closed period.
            return self.next_opening(at=start)
        moment = _epoch_seconds(start)
        starts, ends, cumulative, _, exact_until = self._openings_for(moment, moment)
        while True:
            index = bisect_right(starts, moment) - 1
            target = seconds
            if index >= 0:
                close = ends[index]
                target += cumulative[index] + (moment if moment < close else close) - starts[index]
            # The first interval whose end reaches the target; a target met exactly at a closing
            # instant lands on that closing instant rather than on the next opening.
            index = bisect_left(cumulative, target, 1) - 1
            if index < len(starts):
                deadline = starts[index] + target - cumulative[index]
                if deadline < exact_until:
                    return datetime.fromtimestamp(deadline, UTC)
            starts, ends, cumulative, _, exact_until = self._extend_beyond(moment)


# Whether BusinessClock runs the compiled core; `pip install` builds it, a bare source tree lacks it.
COMPILED: bool
try:
    from services.sla._clock_core import ClockCore as _ClockCore

    COMPILED = True
except ImportError:
    _ClockCore = _InterpretedClockCore  # type: ignore[misc,assignment]
    COMPILED = False


class BusinessClock(_ClockCore):
    """Business-time arithmetic on a calendar, by binary search over cached UTC openings built per year.

    Instants are aware datetimes truncated to the whole second, and results are in UTC. A calendar
    is open from an opening instant up to, not including, the closing instant. The two hot methods,
    business_seconds_between and add_business_seconds, come from the compiled core (COMPILED).
    """

    __slots__ = ("_built", "_calendar", "_first_built", "_last_built", "_openings", "_zone")

    def __init__(self, calendar: Calendar) -> None:
        self._calendar = calendar
        self._zone = ZoneInfo(calendar.timezone)
        self._built: dict[int, list[tuple[int, int]]] = {}
        self._first_built = 0
        self._last_built = -1
        self._openings = _NOTHING_BUILT
        self._install(_NOTHING_BUILT)

    @property
    def calendar(self) -> Calendar:
        """The calendar this clock answers for."""
        return self._calendar

    def is_open(self, *, at: datetime) -> bool:
        """Whether the calendar is open at an instant; opening instants are open, closing instants are not."""
        moment = _epoch_seconds(at)
        starts, ends, _, _, _ = self._openings_for(moment, moment)
        index = bisect_right(starts, moment) - 1
        return index >= 0 and moment < ends[index]

    def next_opening(self, *, at: datetime) -> datetime:
        """The instant itself when open, else the next opening instant, in UTC."""
        moment = _epoch_seconds(at)
        starts, ends, _, _, exact_until = self._openings_for(moment, moment)
        while True:
            index = bisect_right(starts, moment) - 1
            if index >= 0 and moment < ends[index]:
                return datetime.fromtimestamp(moment, UTC)
            if index + 1 < len(starts) and starts[index + 1] < exact_until:
                return datetime.fromtimestamp(starts[index + 1], UTC)
            starts, ends, _, _, exact_until = self._extend_beyond(moment)

    def open_intervals(self, *, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The opening intervals within [start, end), merged and clipped, in UTC (agreed service time)."""
        first = _epoch_seconds(start)
        last = _epoch_seconds(end)
        if last <= first:
            return []
        starts, ends, _, _, _ = self._openings_for(first, last)
        index = max(bisect_right(starts, first) - 1, 0)
        found = []
        while index < len(starts) and starts[index] < last:
            opens, closes = max(starts[index], first), min(ends[index], last)
            if opens < closes:
                found.append((datetime.fromtimestamp(opens, UTC), datetime.fromtimestamp(closes, UTC)))
            index += 1
        return found

    def _openings_for(self, first: int, last: int) -> _Openings:
        """The openings, built further first when they do not answer exactly for every instant from first to last."""
        openings = self._openings
        if first < openings.exact_from or last >= openings.exact_until:
            return self._cover(first, last)
        return openings

    def _extend_beyond(self, moment: int) -> _Openings:
        """Build more years after the exact range, or raise when the calendar has stopped opening."""
        _, ends, _, _, exact_until = self._openings
        last_open = max(moment, ends[-1]) if ends else moment
        if exact_until - last_open > _HORIZON_SECONDS:
            raise NoOpeningError(f"calendar {self._calendar.name!r} does not open within ten years")
        years_built = self._last_built - self._first_built + 1
        return self._cover(moment, exact_until + min(years_built, 8) * 366 * _SECONDS_PER_DAY)

    def _cover(self, first: int, last: int) -> _Openings:
        """Build the local years needed to answer exactly for every instant from first to last."""
        first_year = _utc_year(first)
        if first < _year_day_epoch(first_year, 1, 3):
            first_year -= 1
        last_year = _utc_year(last)
        if last >= _year_day_epoch(last_year, 12, 30):
            last_year += 1
        if self._built:
            first_year = min(first_year, self._first_built)
            last_year = max(last_year, self._last_built)
        missing = [year for year in range(first_year, last_year + 1) if year not in self._built]
        closed_days = self._holidays(missing)
        for year in missing:
            self._built[year] = self._openings_of(year, closed_days)
        self._first_built, self._last_built = first_year, last_year
        self._openings = _merge(
            [piece for year in range(first_year, last_year + 1) for piece in self._built[year]],
            exact_from=_year_day_epoch(first_year, 1, 3),
            exact_until=_year_day_epoch(last_year, 12, 30),
        )
        self._install(self._openings)
        return self._openings

    def _holidays(self, years: list[int]) -> frozenset[date]:
        """Public holidays (observed ones included) in and around the given years."""
        calendar = self._calendar
        if calendar.holiday_country is None or not years:
            return frozenset()
        # Neighbouring years too: an observed day can fall in the previous year (1 January on a Saturday).
        wanted = range(min(years) - 1, max(years) + 2)
        found = holidays.country_holidays(
            calendar.holiday_country, subdiv=calendar.holiday_subdivision, years=wanted
        )
        return frozenset(found.keys())

    def _openings_of(self, year: int, closed_days: frozenset[date]) -> list[tuple[int, int]]:
        """The UTC opening intervals that start on the local days of one year, unmerged."""
        calendar = self._calendar
        day = date(year, 1, 1)
        wall_clock = _WallClock(self._zone, first=day, days=(date(year + 1, 1, 1) - day).days + 1)
        pieces: list[tuple[int, int]] = []
        while day.year == year:
            closing = calendar.partial_closures.get(day)
            closes_at = None if closing is None else wall_clock.epoch(day, closing)
            for interval in _intervals_on(calendar, day, closed_days):
                opens = wall_clock.epoch(day, interval.start)
                closes = wall_clock.epoch(day + _ONE_DAY if interval.is_overnight else day, interval.end)
                if closes_at is not None:
                    closes = min(closes, closes_at)
                if closes > opens:
                    pieces.append((opens, closes))
            day += _ONE_DAY
        return pieces


def _intervals_on(calendar: Calendar, day: date, closed_days: frozenset[date]) -> Sequence[OpeningInterval]:
    """The intervals starting on a local date: its override, else none on a holiday, else the weekly ones."""
    override = calendar.overrides.get(day)
    if override is not None:
        return override
    if day in closed_days or day in calendar.custom_holidays:
        return ()
    return calendar.weekly.get(day.weekday(), ())


def _merge(pieces: list[tuple[int, int]], *, exact_from: int, exact_until: int) -> _Openings:
    """Sort, join touching or overlapping intervals, and total the business time before each."""
    starts: list[int] = []
    ends: list[int] = []
    for opens, closes in sorted(pieces):
        if ends and opens <= ends[-1]:
            ends[-1] = max(ends[-1], closes)
        else:
            starts.append(opens)
            ends.append(closes)
    cumulative = [0]
    total = 0
    for opens, closes in zip(starts, ends, strict=True):
        total += closes - opens
        cumulative.append(total)
    return _Openings(starts, ends, cumulative, exact_from, exact_until)


class _WallClock:
    """Converts local wall times on a run of consecutive days to epoch seconds."""

    __slots__ = ("_first", "_steady_offsets", "_zone")

    def __init__(self, zone: ZoneInfo, *, first: date, days: int) -> None:
        self._zone = zone
        self._first = first
        midnights = [_unambiguous_offset(zone, first + timedelta(days=index)) for index in range(days + 1)]
        # Offsets change on a handful of days a year; on every other day plain arithmetic is exact
        # and much cheaper than asking the zone about each wall time.
        self._steady_offsets = [
            today if today is not None and today == tomorrow else None
            for today, tomorrow in pairwise(midnights)
        ]

    def epoch(self, day: date, moment: time) -> int:
        """Epoch seconds of a wall time on one of the days, by the gap and fold rule of _wall_to_epoch."""
        offset = self._steady_offsets[(day - self._first).days]
        if offset is None:
            return _wall_to_epoch(datetime.combine(day, moment), self._zone)
        wall_seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
        return (day.toordinal() - _UNIX_EPOCH_ORDINAL) * _SECONDS_PER_DAY + wall_seconds - offset


def _unambiguous_offset(zone: ZoneInfo, day: date) -> int | None:
    """The UTC offset at local midnight in seconds, or None when midnight falls in a gap or fold."""
    midnight = datetime.combine(day, time(0), zone)
    offset = midnight.utcoffset()
    if offset is None or offset != midnight.replace(fold=1).utcoffset():
        return None
    return offset // timedelta(seconds=1)


def _wall_to_epoch(wall: datetime, zone: ZoneInfo) -> int:
    """The first instant at which the local clock reads `wall` or later, in epoch seconds."""
    # One rule covers every case: in a fold this is the first occurrence, in a gap it is the end
    # of the gap (the transition), so intervals never invert and consecutive days always touch.
    earlier = int(wall.replace(tzinfo=zone).timestamp())
    later = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    if earlier == later:
        return earlier
    low, high = min(earlier, later), max(earlier, later)
    if _local(low, zone) == wall:
        return low
    # In a gap the clock is behind `wall` at `low` and past it at `high`; find the jump.
    while high - low > 1:
        middle = (low + high) // 2
        if _local(middle, zone) >= wall:
            high = middle
        else:
            low = middle
    return high


def _local(moment: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(moment, zone).replace(tzinfo=None)


def _epoch_seconds(moment: datetime) -> int:
    """Whole epoch seconds of an aware datetime, rounding down sub-second parts."""
    if moment.tzinfo is None:
        raise ValueError(f"expected a timezone-aware datetime, got {moment!r}")
    return floor(moment.timestamp())


def _utc_year(moment: int) -> int:
    year = (_UNIX_EPOCH_UTC + timedelta(seconds=moment)).year
    if not _FIRST_YEAR <= year <= _LAST_YEAR:
        raise ValueError(f"instants must fall in the years {_FIRST_YEAR} to {_LAST_YEAR}")
    return year


def _year_day_epoch(year: int, month: int, day: int) -> int:
    return (date(year, month, day) - _UNIX_EPOCH).days * _SECONDS_PER_DAY


def _freeze_intervals(
    by_key: Mapping[Any, Sequence[OpeningInterval]], *, field: str
) -> Mapping[Any, Sequence[OpeningInterval]]:
    frozen: dict[Any, tuple[OpeningInterval, ...]] = {}
    for key, intervals in by_key.items():
        if isinstance(intervals, str) or not all(isinstance(item, OpeningInterval) for item in intervals):
            raise CalendarConfigError(f"{field}.{key}", "expected a sequence of OpeningInterval")
        frozen[key] = tuple(intervals)
    return MappingProxyType(frozen)


def _check_wall_time(value: object, *, field: str) -> None:
    if not isinstance(value, time) or value.tzinfo is not None or value.microsecond:
        raise CalendarConfigError(field, f"expected a naive local time to the second, got {value!r}")


def _check_date(value: object, *, field: str) -> None:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise CalendarConfigError(field, f"expected a date, got {value!r}")


def _check_timezone(value: object, *, field: str) -> None:
    if not isinstance(value, str) or not value:
        raise CalendarConfigError(field, f"expected an IANA time zone name, got {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise CalendarConfigError(field, f"unknown time zone {value!r}") from error


def _check_holidays(
    country: object, subdivision: object, *, country_field: str, subdivision_field: str
) -> None:
    if country is None:
        if subdivision is not None:
            raise CalendarConfigError(subdivision_field, "a holiday subdivision needs a country")
        return
    if not isinstance(country, str):
        raise CalendarConfigError(country_field, f"expected a country code, got {country!r}")
    if subdivision is not None and not isinstance(subdivision, str):
        raise CalendarConfigError(subdivision_field, f"expected a subdivision code, got {subdivision!r}")
    try:
        holidays.country_holidays(country, subdiv=subdivision, years=())
    except NotImplementedError as error:
        # The package reports both unknown countries and unknown subdivisions this way.
        blamed = (
            subdivision_field if subdivision is not None and "subdivision" in str(error) else country_field
        )
        raise CalendarConfigError(blamed, str(error)) from error


_MISSING: Final = object()


def _required_text(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CalendarConfigError(key, "required, expected text")
    return value


def _parse_time(text: str, *, allow_midnight_end: bool = True) -> time:
    match = _TIME_TEXT.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"expected HH:MM or HH:MM:SS, got {text!r}")
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if allow_midnight_end and (hour, minute, second) == (24, 0, 0):
        return time(0)
    return time(hour, minute, second)


def _parse_intervals(value: object, *, field: str) -> tuple[OpeningInterval, ...]:
    if not isinstance(value, list | tuple):
        raise CalendarConfigError(field, "expected a list of 'HH:MM-HH:MM' intervals")
    intervals = []
    for position, text in enumerate(value):
        if not isinstance(text, str):
            raise CalendarConfigError(f"{field}[{position}]", f"expected 'HH:MM-HH:MM' text, got {text!r}")
        try:
            intervals.append(OpeningInterval.parse(text))
        except ValueError as error:
            raise CalendarConfigError(f"{field}[{position}]", str(error)) from error
    return tuple(intervals)


def _parse_date(value: object, *, field: str) -> date:
    # YAML already turns unquoted ISO dates into date objects; quoted ones arrive as text.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise CalendarConfigError(field, f"expected a YYYY-MM-DD date, got {value!r}")


def _parse_mapping(value: object, *, field: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise CalendarConfigError(field, "expected a mapping")
    return value


def _parse_weekly(value: object) -> dict[int, tuple[OpeningInterval, ...]]:
    if value is _MISSING:
        raise CalendarConfigError("weekly", "required, expected a mapping of mon..sun to intervals")
    weekly: dict[int, tuple[OpeningInterval, ...]] = {}
    for day_name, intervals in _parse_mapping(value, field="weekly").items():
        weekday = _DAY_NAMES.get(str(day_name).strip().lower())
        if weekday is None:
            raise CalendarConfigError(
                f"weekly.{day_name}", "expected one of mon, tue, wed, thu, fri, sat, sun"
            )
        if weekday in weekly:
            raise CalendarConfigError(f"weekly.{day_name}", "day given twice")
        weekly[weekday] = _parse_intervals(intervals, field=f"weekly.{day_name}")
    return weekly


def _parse_holidays(value: object) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    section = _parse_mapping(value, field="holidays")
    unknown = sorted(set(section) - {"country", "subdivision"}, key=str)
    if unknown:
        raise CalendarConfigError(f"holidays.{unknown[0]}", "unknown field")
    country = section.get("country")
    subdivision = section.get("subdivision")
    if country is None:
        raise CalendarConfigError("holidays.country", "required when holidays are given")
    _check_holidays(
        country, subdivision, country_field="holidays.country", subdivision_field="holidays.subdivision"
    )
    return country, subdivision


def _parse_custom_holidays(value: object) -> Iterable[date]:
    if not isinstance(value, list | tuple | set | frozenset):
        raise CalendarConfigError("custom_holidays", "expected a list of dates")
    return [_parse_date(item, field=f"custom_holidays[{position}]") for position, item in enumerate(value)]


def _parse_partial_closures(value: object) -> dict[date, time]:
    closures: dict[date, time] = {}
    for key, closing in _parse_mapping(value, field="partial_closures").items():
        day = _parse_date(key, field=f"partial_closures.{key}")
        if not isinstance(closing, str):
            # An unquoted 14:00 is read by YAML 1.1 as the base-60 number 840.
            raise CalendarConfigError(
                f"partial_closures.{key}", f"expected quoted 'HH:MM' text, got {closing!r}"
            )
        try:
            closures[day] = _parse_time(closing, allow_midnight_end=False)
        except ValueError as error:
            raise CalendarConfigError(f"partial_closures.{key}", str(error)) from error
    return closures


def _parse_overrides(value: object) -> dict[date, tuple[OpeningInterval, ...]]:
    overrides: dict[date, tuple[OpeningInterval, ...]] = {}
    for key, intervals in _parse_mapping(value, field="overrides").items():
        day = _parse_date(key, field=f"overrides.{key}")
        overrides[day] = _parse_intervals(intervals, field=f"overrides.{key}")
    return overrides
