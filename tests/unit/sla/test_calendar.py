"""Business calendars: opening hours, holidays, closures and business-time arithmetic across DST."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.sla.calendar import (
    COMPILED,
    BusinessClock,
    Calendar,
    CalendarConfigError,
    NoOpeningError,
    OpeningInterval,
)

pytestmark = pytest.mark.unit

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = 3600
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def local(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=zone)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def clock(config: Mapping[str, Any] | None = None, /, **fields: Any) -> BusinessClock:
    """A clock for a Monday-to-Friday 08:00-17:00 UTC calendar, with fields replaced as given."""
    base: dict[str, Any] = {
        "name": "office",
        "timezone": "UTC",
        "weekly": {day: ["08:00-17:00"] for day in WEEKDAYS},
    }
    return BusinessClock(Calendar.from_config({**base, **(config or {}), **fields}))


def every_day(*intervals: str) -> dict[str, list[str]]:
    return {day: list(intervals) for day in (*WEEKDAYS, "sat", "sun")}


# Office hours


def test_created_friday_evening_observed_monday_0930_counts_one_and_a_half_business_hours() -> None:
    office = clock()
    created, observed = utc(2026, 3, 6, 21), utc(2026, 3, 9, 9, 30)

    assert office.business_seconds_between(start=created, end=observed) == 1 * HOUR + 30 * 60
    assert observed - created == timedelta(hours=60, minutes=30)


def test_pause_friday_1600_to_monday_1000_shifts_deadline_by_two_business_hours() -> None:
    office = clock(weekly={day: ["09:00-17:00"] for day in WEEKDAYS})
    created = utc(2026, 3, 5, 10)
    target = 16 * HOUR

    paused = office.business_seconds_between(start=utc(2026, 3, 6, 16), end=utc(2026, 3, 9, 10))

    assert paused == 2 * HOUR
    assert office.add_business_seconds(start=created, seconds=target) == utc(2026, 3, 9, 10)
    assert office.add_business_seconds(start=created, seconds=target + paused) == utc(2026, 3, 9, 12)


def test_opening_instant_is_open_and_closing_instant_is_closed() -> None:
    office = clock()

    assert office.is_open(at=utc(2026, 3, 9, 8))
    assert office.is_open(at=utc(2026, 3, 9, 16, 59, 59))
    assert not office.is_open(at=utc(2026, 3, 9, 17))
    assert not office.is_open(at=utc(2026, 3, 9, 7, 59, 59))


def test_next_opening_is_the_instant_itself_when_open_and_the_next_morning_at_closing() -> None:
    office = clock()

    assert office.next_opening(at=utc(2026, 3, 9, 8)) == utc(2026, 3, 9, 8)
    assert office.next_opening(at=utc(2026, 3, 9, 17)) == utc(2026, 3, 10, 8)
    assert office.next_opening(at=utc(2026, 3, 13, 17)) == utc(2026, 3, 16, 8)


def test_deadline_met_exactly_at_closing_falls_on_the_closing_instant_not_the_next_opening() -> None:
    office = clock()

    assert office.add_business_seconds(start=utc(2026, 3, 9, 8), seconds=9 * HOUR) == utc(2026, 3, 9, 17)
    assert office.add_business_seconds(start=utc(2026, 3, 9, 8), seconds=9 * HOUR + 1) == utc(
        2026, 3, 10, 8, 0, 1
    )


def test_counting_from_a_closed_instant_starts_at_the_next_opening() -> None:
    office = clock()

    assert office.add_business_seconds(start=utc(2026, 3, 7, 12), seconds=HOUR) == utc(2026, 3, 9, 9)


def test_adding_zero_returns_the_start_when_open_and_the_next_opening_when_closed() -> None:
    office = clock()

    assert office.add_business_seconds(start=utc(2026, 3, 9, 12), seconds=0) == utc(2026, 3, 9, 12)
    assert office.add_business_seconds(start=utc(2026, 3, 9, 18), seconds=0) == utc(2026, 3, 10, 8)


def test_intervals_are_counted_to_the_second() -> None:
    office = clock(weekly={"fri": ["08:00-12:00", "13:00-16:30:30"]})

    assert office.business_seconds_between(start=utc(2026, 3, 6, 16, 30, 29), end=utc(2026, 3, 7)) == 1
    assert (
        office.business_seconds_between(start=utc(2026, 3, 6, 11, 59, 59), end=utc(2026, 3, 6, 13, 0, 1)) == 2
    )
    assert office.add_business_seconds(start=utc(2026, 3, 6, 16, 30, 29), seconds=1) == utc(
        2026, 3, 6, 16, 30, 30
    )
    assert office.add_business_seconds(start=utc(2026, 3, 6, 16, 30, 29), seconds=2) == utc(
        2026, 3, 13, 8, 0, 1
    )


def test_sub_second_parts_of_instants_are_dropped() -> None:
    office = clock()
    start = utc(2026, 3, 9, 9).replace(microsecond=999_999)

    assert office.business_seconds_between(start=start, end=utc(2026, 3, 9, 9, 0, 1)) == 1
    assert office.add_business_seconds(start=start, seconds=1) == utc(2026, 3, 9, 9, 0, 1)


def test_results_are_utc_whatever_the_zone_of_the_inputs() -> None:
    office = clock(timezone="Europe/Berlin")

    deadline = office.add_business_seconds(start=local(BERLIN, 2026, 3, 9, 9), seconds=HOUR)

    assert deadline.tzinfo is UTC
    assert deadline == utc(2026, 3, 9, 9)


def test_end_before_start_counts_zero() -> None:
    assert clock().business_seconds_between(start=utc(2026, 3, 9, 12), end=utc(2026, 3, 9, 10)) == 0


def test_naive_instants_and_negative_budgets_are_rejected() -> None:
    office = clock()

    with pytest.raises(ValueError, match="timezone-aware"):
        office.is_open(at=datetime(2026, 3, 9, 9))
    with pytest.raises(ValueError, match="negative"):
        office.add_business_seconds(start=utc(2026, 3, 9, 9), seconds=-1)


def test_instants_outside_the_supported_years_are_rejected() -> None:
    with pytest.raises(ValueError, match="years"):
        clock().is_open(at=utc(2500, 1, 1))


def test_a_calendar_without_opening_hours_raises_instead_of_searching_forever() -> None:
    closed = BusinessClock(Calendar(name="closed", timezone="UTC", weekly={}))

    assert closed.business_seconds_between(start=utc(2026, 1, 1), end=utc(2027, 1, 1)) == 0
    with pytest.raises(NoOpeningError):
        closed.next_opening(at=utc(2026, 1, 1))
    with pytest.raises(NoOpeningError):
        closed.add_business_seconds(start=utc(2026, 1, 1), seconds=1)


def test_queries_years_apart_and_out_of_order_agree_with_wall_time_on_a_24x7_calendar() -> None:
    always = BusinessClock(Calendar.always_open("always"))
    later, earlier = utc(2031, 6, 1), utc(2026, 1, 1)

    assert always.is_open(at=later)
    assert always.business_seconds_between(start=earlier, end=later) == int((later - earlier).total_seconds())
    assert always.add_business_seconds(start=earlier, seconds=10**8) == earlier + timedelta(seconds=10**8)


# DST


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        (BERLIN, date(2026, 3, 29), 23),
        (BERLIN, date(2026, 10, 25), 25),
        (NEW_YORK, date(2026, 3, 8), 23),
        (NEW_YORK, date(2026, 11, 1), 25),
        (BERLIN, date(2026, 3, 30), 24),
    ],
    ids=["berlin-spring", "berlin-fall", "new-york-spring", "new-york-fall", "berlin-ordinary"],
)
def test_always_open_calendar_counts_the_real_length_of_a_dst_day(
    zone: ZoneInfo, day: date, hours: int
) -> None:
    always = BusinessClock(Calendar.always_open("always", timezone=zone.key))
    midnight = datetime.combine(day, time(0), zone)
    next_midnight = datetime.combine(day + timedelta(days=1), time(0), zone)

    assert always.business_seconds_between(start=midnight, end=next_midnight) == hours * HOUR


def test_always_open_week_with_spring_forward_has_167_hours_and_fall_back_week_169() -> None:
    always = BusinessClock(Calendar.always_open("always", timezone="America/New_York"))

    spring = always.business_seconds_between(
        start=local(NEW_YORK, 2026, 3, 2), end=local(NEW_YORK, 2026, 3, 9)
    )
    fall = always.business_seconds_between(
        start=local(NEW_YORK, 2026, 10, 26), end=local(NEW_YORK, 2026, 11, 2)
    )

    assert (spring, fall) == (167 * HOUR, 169 * HOUR)


def test_repeated_hour_of_fall_back_is_counted_once_per_real_second() -> None:
    always = BusinessClock(Calendar.always_open("always", timezone="Europe/Berlin"))
    first_two_thirty = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)
    second_two_thirty = first_two_thirty.replace(fold=1)

    assert always.business_seconds_between(start=first_two_thirty, end=second_two_thirty) == HOUR


def test_office_deadline_over_berlin_fall_back_weekend_is_one_hour_later_in_utc() -> None:
    office = clock(timezone="Europe/Berlin")
    friday_1600 = local(BERLIN, 2026, 10, 23, 16)
    monday_0900 = local(BERLIN, 2026, 10, 26, 9)

    assert office.business_seconds_between(start=friday_1600, end=monday_0900) == 2 * HOUR
    assert monday_0900.astimezone(UTC) - friday_1600.astimezone(UTC) == timedelta(hours=66)
    assert office.add_business_seconds(start=friday_1600, seconds=2 * HOUR) == utc(2026, 10, 26, 8)


def test_office_deadline_over_new_york_spring_forward_weekend_keeps_local_opening_hours() -> None:
    office = clock(timezone="America/New_York", weekly={day: ["09:00-17:00"] for day in WEEKDAYS})

    deadline = office.add_business_seconds(start=local(NEW_YORK, 2026, 3, 6, 16), seconds=2 * HOUR)

    assert deadline == local(NEW_YORK, 2026, 3, 9, 10)
    assert deadline == utc(2026, 3, 9, 14)


def test_opening_time_inside_the_spring_gap_opens_when_the_clock_jumps_past_it() -> None:
    office = clock(timezone="Europe/Berlin", overrides={"2026-03-29": ["02:30-03:30"]})

    assert office.next_opening(at=local(BERLIN, 2026, 3, 29)) == utc(2026, 3, 29, 1)
    assert office.business_seconds_between(start=utc(2026, 3, 29), end=utc(2026, 3, 30)) == 30 * 60


def test_opening_time_inside_the_fall_fold_means_its_first_occurrence() -> None:
    office = clock(timezone="America/New_York", overrides={"2026-11-01": ["01:30-02:30"]})

    assert office.next_opening(at=utc(2026, 11, 1)) == utc(2026, 11, 1, 5, 30)
    assert office.business_seconds_between(start=utc(2026, 11, 1), end=utc(2026, 11, 2)) == 2 * HOUR


# Overnight shifts


def test_overnight_shift_counts_across_midnight_and_belongs_to_the_day_it_starts() -> None:
    night = clock(weekly={"mon": ["22:00-06:00"]})

    assert night.business_seconds_between(start=utc(2026, 3, 2, 23), end=utc(2026, 3, 3, 3)) == 4 * HOUR
    assert night.is_open(at=utc(2026, 3, 3, 5, 59, 59))
    assert not night.is_open(at=utc(2026, 3, 3, 6))
    assert not night.is_open(at=utc(2026, 3, 3, 22, 30))
    assert not night.is_open(at=utc(2026, 3, 2, 1))


@pytest.mark.parametrize(
    ("saturday", "real_hours"), [(date(2026, 3, 28), 7), (date(2026, 10, 24), 9)], ids=["spring", "fall"]
)
def test_overnight_shift_across_a_dst_change_lasts_the_real_elapsed_time(
    saturday: date, real_hours: int
) -> None:
    night = clock(timezone="Europe/Berlin", weekly={"sat": ["22:00-06:00"]})
    evening = datetime.combine(saturday, time(21), BERLIN)
    morning = datetime.combine(saturday + timedelta(days=1), time(7), BERLIN)

    assert night.business_seconds_between(start=evening, end=morning) == real_hours * HOUR


def test_overnight_shift_over_new_year_continues_into_the_next_year() -> None:
    night = clock(weekly=every_day("22:00-06:00"))

    assert night.business_seconds_between(start=utc(2026, 12, 31, 21), end=utc(2027, 1, 1, 7)) == 8 * HOUR
    assert night.add_business_seconds(start=utc(2026, 12, 31, 23), seconds=2 * HOUR) == utc(2027, 1, 1, 1)


def test_overnight_shift_starting_the_evening_before_a_holiday_runs_into_it() -> None:
    night = clock(
        timezone="Europe/Berlin",
        weekly={day: ["22:00-06:00"] for day in WEEKDAYS},
        holidays={"country": "DE", "subdivision": "BY"},
    )
    christmas_eve_evening = local(BERLIN, 2026, 12, 24, 21)

    assert (
        night.business_seconds_between(start=christmas_eve_evening, end=local(BERLIN, 2026, 12, 26, 12))
        == 8 * HOUR
    )
    assert night.next_opening(at=local(BERLIN, 2026, 12, 25, 12)) == local(BERLIN, 2026, 12, 28, 22)


def test_twenty_four_hour_interval_from_a_config_written_as_midnight_to_midnight() -> None:
    always = clock(weekly={"mon": ["00:00-24:00"], "tue": ["00:00-00:00"], "wed": ["12:00-24:00"]})

    assert always.business_seconds_between(start=utc(2026, 3, 2), end=utc(2026, 3, 5)) == 60 * HOUR


# Holidays, closures and overrides


def test_public_holiday_closes_the_whole_day() -> None:
    office = clock(timezone="Europe/Berlin", holidays={"country": "DE", "subdivision": "BY"})

    # Epiphany is a public holiday in Bavaria only.
    assert office.next_opening(at=local(BERLIN, 2026, 1, 6, 9)) == local(BERLIN, 2026, 1, 7, 8)


def test_independence_day_on_saturday_is_observed_on_friday() -> None:
    office = clock(
        timezone="America/New_York",
        weekly={day: ["09:00-17:00"] for day in WEEKDAYS},
        holidays={"country": "US"},
    )

    assert (
        office.business_seconds_between(
            start=local(NEW_YORK, 2026, 7, 2, 17), end=local(NEW_YORK, 2026, 7, 6, 9)
        )
        == 0
    )
    assert office.next_opening(at=local(NEW_YORK, 2026, 7, 3, 10)) == local(NEW_YORK, 2026, 7, 6, 9)


def test_new_years_day_on_saturday_is_observed_on_the_friday_of_the_year_before() -> None:
    office = clock(weekly={day: ["09:00-17:00"] for day in WEEKDAYS}, holidays={"country": "US"})

    assert not office.is_open(at=utc(2021, 12, 31, 12))


def test_custom_holiday_closes_the_day_and_the_deadline_moves_into_the_next_year() -> None:
    office = clock(custom_holidays=["2026-12-31"])

    assert office.next_opening(at=utc(2026, 12, 31, 10)) == utc(2027, 1, 1, 8)
    assert office.add_business_seconds(start=utc(2026, 12, 30, 16), seconds=2 * HOUR) == utc(2027, 1, 1, 9)


def test_partial_closure_closes_the_rest_of_the_day() -> None:
    office = clock(timezone="Europe/Berlin", partial_closures={"2026-12-24": "14:00"})

    assert (
        office.business_seconds_between(
            start=local(BERLIN, 2026, 12, 24, 8), end=local(BERLIN, 2026, 12, 24, 17)
        )
        == 6 * HOUR
    )
    assert office.is_open(at=local(BERLIN, 2026, 12, 24, 13, 59, 59))
    assert not office.is_open(at=local(BERLIN, 2026, 12, 24, 14))
    assert office.add_business_seconds(start=local(BERLIN, 2026, 12, 24, 13), seconds=2 * HOUR) == local(
        BERLIN, 2026, 12, 25, 9
    )


def test_partial_closure_cancels_the_overnight_shift_that_would_start_after_it() -> None:
    night = clock(weekly=every_day("22:00-06:00"), partial_closures={"2026-12-24": "14:00"})

    assert night.business_seconds_between(start=utc(2026, 12, 24), end=utc(2026, 12, 25, 12)) == 6 * HOUR


def test_override_opens_a_sunday_and_an_empty_override_closes_a_monday() -> None:
    office = clock(overrides={"2026-12-27": ["10:00-12:00"], "2026-12-28": []})

    assert office.business_seconds_between(start=utc(2026, 12, 26), end=utc(2026, 12, 29)) == 2 * HOUR
    assert office.next_opening(at=utc(2026, 12, 27, 12)) == utc(2026, 12, 29, 8)


def test_override_wins_over_a_holiday() -> None:
    office = clock(custom_holidays=["2026-12-31"], overrides={"2026-12-31": ["08:00-10:00"]})

    assert office.business_seconds_between(start=utc(2026, 12, 31), end=utc(2027, 1, 1)) == 2 * HOUR


# Configuration


def test_config_from_the_issue_is_parsed_into_a_calendar() -> None:
    calendar = Calendar.from_config(
        {
            "name": "office",
            "timezone": "Europe/Berlin",
            "weekly": {"mon": ["08:00-17:00"], "fri": ["08:00-12:00", "13:00-16:30:30"]},
            "holidays": {"country": "DE", "subdivision": "BY"},
            "custom_holidays": ["2026-12-31"],
            "partial_closures": {date(2026, 12, 24): "14:00"},
            "overrides": {"2026-12-27": ["10:00-12:00"]},
        }
    )

    assert calendar == Calendar(
        name="office",
        timezone="Europe/Berlin",
        weekly={
            0: [OpeningInterval(time(8), time(17))],
            4: [OpeningInterval(time(8), time(12)), OpeningInterval(time(13), time(16, 30, 30))],
        },
        holiday_country="DE",
        holiday_subdivision="BY",
        custom_holidays=frozenset({date(2026, 12, 31)}),
        partial_closures={date(2026, 12, 24): time(14)},
        overrides={date(2026, 12, 27): [OpeningInterval(time(10), time(12))]},
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"weekly": {"mon": ["8-17"]}}, "weekly.mon[0]"),
        ({"weekly": {"monday!": ["08:00-17:00"]}}, "weekly.monday!"),
        ({"weekly": {"mon": "08:00-17:00"}}, "weekly.mon"),
        ({"weekly": {"mon": ["24:00-17:00"]}}, "weekly.mon[0]"),
        ({"holidays": {"country": "XX"}}, "holidays.country"),
        ({"holidays": {"country": "DE", "subdivision": "ZZ"}}, "holidays.subdivision"),
        ({"custom_holidays": ["2026-13-01"]}, "custom_holidays[0]"),
        ({"partial_closures": {"2026-12-24": 840}}, "partial_closures.2026-12-24"),
        ({"overrides": {"tomorrow": []}}, "overrides.tomorrow"),
        ({"opening_hours": {}}, "opening_hours"),
    ],
)
def test_bad_config_raises_an_error_naming_the_field(change: dict[str, Any], field: str) -> None:
    config = {"name": "office", "timezone": "UTC", "weekly": {}, **change}

    with pytest.raises(CalendarConfigError) as raised:
        Calendar.from_config(config)

    assert raised.value.field == field


def test_missing_weekly_hours_is_a_config_error() -> None:
    with pytest.raises(CalendarConfigError, match="weekly"):
        Calendar.from_config({"name": "office", "timezone": "UTC"})


# Properties, against a slow reference that walks minute by minute

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata")
# The 2026 DST changes of those zones (Lord Howe shifts by 30 minutes) and a new year, with their zone.
ANCHORS = (
    ("Europe/Berlin", utc(2026, 3, 29, 1)),
    ("Europe/Berlin", utc(2026, 10, 25, 1)),
    ("America/New_York", utc(2026, 3, 8, 7)),
    ("America/New_York", utc(2026, 11, 1, 6)),
    ("Australia/Lord_Howe", utc(2026, 4, 4, 15)),
    ("Australia/Lord_Howe", utc(2026, 10, 3, 15, 30)),
    ("Asia/Kolkata", utc(2026, 12, 31, 22)),
)
DAY_SECONDS = 86_400
# A drawn calendar may open for one minute a week; two days of budget then still fit in the supported years.
MAX_BUDGET = 2 * DAY_SECONDS


# Half of the wall times fall between 01:00 and 03:00, where the DST gaps and folds are.
WALL_TIMES = st.one_of(st.integers(0, 24 * 60 - 1), st.integers(60, 180)).map(
    lambda minute: time(minute // 60, minute % 60)
)
INTERVALS = st.builds(OpeningInterval, WALL_TIMES, WALL_TIMES)
DAY_INTERVALS = st.lists(INTERVALS, max_size=2)
WEEKDAY_NUMBERS = st.integers(0, 6)
# Dated exceptions are drawn as days relative to the anchor, so they land where the queries are.
NEAR_DAYS = st.integers(-3, 3)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Calendar, datetime]:
    """A calendar with arbitrary minute-aligned hours and dated exceptions near an anchor instant."""
    anchor_zone, anchor = draw(st.sampled_from(ANCHORS))
    zone = draw(st.one_of(st.just(anchor_zone), st.sampled_from(ZONES)))
    anchor_day = anchor.astimezone(ZoneInfo(zone)).date()

    def near(days: int) -> date:
        return anchor_day + timedelta(days=days)

    weekly = draw(st.dictionaries(WEEKDAY_NUMBERS, DAY_INTERVALS, max_size=7))
    # At least one weekly opening, so searches for the next opening always succeed; often on the
    # anchor's own weekday, where the DST change is.
    weekday = draw(st.one_of(st.just(anchor_day.weekday()), WEEKDAY_NUMBERS))
    weekly.setdefault(weekday, []).append(draw(INTERVALS))
    calendar = Calendar(
        name="drawn",
        timezone=zone,
        weekly=weekly,
        holiday_country=draw(st.sampled_from([None, "US", "DE"])),
        custom_holidays=frozenset(near(days) for days in draw(st.lists(NEAR_DAYS, max_size=2))),
        partial_closures={
            near(days): closing
            for days, closing in draw(st.dictionaries(NEAR_DAYS, WALL_TIMES, max_size=2)).items()
        },
        overrides={
            near(days): hours
            for days, hours in draw(st.dictionaries(NEAR_DAYS, DAY_INTERVALS, max_size=2)).items()
        },
    )
    return calendar, anchor


def offsets(*, within: int) -> st.SearchStrategy[timedelta]:
    return st.integers(-within, within).map(lambda seconds: timedelta(seconds=seconds))


NIGHT_TIMES = st.integers(60, 180).map(lambda minute: time(minute // 60, minute % 60))


@st.composite
def dst_days(draw: st.DrawFn) -> tuple[Calendar, datetime, datetime]:
    """The local day of a DST change, with opening times around the gap or fold, and a span covering it."""
    zone, anchor = draw(st.sampled_from([pair for pair in ANCHORS if pair[0] != "Asia/Kolkata"]))
    day = anchor.astimezone(ZoneInfo(zone)).date()
    hours = st.builds(OpeningInterval, st.one_of(NIGHT_TIMES, WALL_TIMES), st.one_of(NIGHT_TIMES, WALL_TIMES))
    calendar = Calendar(
        name="dst",
        timezone=zone,
        weekly={(day.weekday() - 1) % 7: draw(st.lists(hours, max_size=2))},
        overrides={day: draw(st.lists(hours, min_size=1, max_size=3))},
        partial_closures=draw(st.dictionaries(st.just(day), NIGHT_TIMES, max_size=1)),
    )
    midnight = datetime.combine(day, time(0), ZoneInfo(zone))
    start = midnight - timedelta(seconds=draw(st.integers(0, 3 * 3600)))
    end = midnight + timedelta(days=1, seconds=draw(st.integers(0, 3 * 3600)))
    return calendar, start, end


class ReferenceCalendar:
    """Opening hours decided minute by minute from the wall clock, independently of BusinessClock.

    An interval is open once the highest wall-clock reading so far has reached its start and
    until it reaches its end, which is the documented gap and fold rule said another way.
    """

    def __init__(self, calendar: Calendar, *, around: int) -> None:
        self.calendar = calendar
        self.zone = ZoneInfo(calendar.timezone)
        year = datetime.fromtimestamp(around, UTC).year
        found = (
            holidays.country_holidays(calendar.holiday_country, years=range(year - 1, year + 2))
            if calendar.holiday_country
            else {}
        )
        self.closed_days = set(found) | set(calendar.custom_holidays)

    def open_minutes(self, first: int, last: int) -> Callable[[int], bool]:
        """Whether each UTC minute in [first, last) is open, as a lookup by minute start."""
        start = first - first % 60
        highest = datetime.min
        opened: dict[int, bool] = {}
        # Three hours of run-up so the highest reading has seen any fold before `first`.
        for minute in range(start - 3 * 3600, last + 60, 60):
            highest = max(highest, datetime.fromtimestamp(minute, self.zone).replace(tzinfo=None))
            if minute >= start:
                opened[minute] = self.is_open_at_wall(highest)
        return lambda moment: opened[moment - moment % 60]

    def is_open_at_wall(self, reading: datetime) -> bool:
        for day in (reading.date() - timedelta(days=1), reading.date()):
            closing = self.calendar.partial_closures.get(day)
            for interval in self.intervals_on(day):
                opens = datetime.combine(day, interval.start)
                closes = datetime.combine(day + timedelta(days=interval.end <= interval.start), interval.end)
                if closing is not None:
                    closes = min(closes, datetime.combine(day, closing))
                if opens <= reading < closes:
                    return True
        return False

    def intervals_on(self, day: date) -> Sequence[OpeningInterval]:
        if day in self.calendar.overrides:
            return self.calendar.overrides[day]
        if day in self.closed_days:
            return ()
        return self.calendar.weekly.get(day.weekday(), ())

    def business_seconds_between(self, first: int, last: int) -> int:
        is_open = self.open_minutes(first, last)
        total = 0
        moment = first
        while moment < last:
            # Boundaries are whole minutes, so a minute is open or closed as a whole.
            minute_end = min(moment - moment % 60 + 60, last)
            if is_open(moment):
                total += minute_end - moment
            moment = minute_end
        return total


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


@settings(max_examples=80, deadline=None)
@given(scenarios(), offsets(within=DAY_SECONDS), st.integers(0, DAY_SECONDS + DAY_SECONDS // 2))
def test_business_seconds_agree_with_a_minute_by_minute_reference(
    scenario: tuple[Calendar, datetime], shift: timedelta, length: int
) -> None:
    calendar, anchor = scenario
    start = anchor + shift
    end = start + timedelta(seconds=length)
    reference = ReferenceCalendar(calendar, around=epoch(anchor))

    measured = BusinessClock(calendar).business_seconds_between(start=start, end=end)

    assert measured == reference.business_seconds_between(epoch(start), epoch(end))


@settings(max_examples=40, deadline=None)
@given(dst_days())
def test_business_seconds_on_dst_change_days_agree_with_the_reference(
    scenario: tuple[Calendar, datetime, datetime],
) -> None:
    calendar, start, end = scenario
    reference = ReferenceCalendar(calendar, around=epoch(start))

    measured = BusinessClock(calendar).business_seconds_between(start=start, end=end)

    assert measured == reference.business_seconds_between(epoch(start), epoch(end))


@settings(max_examples=60, deadline=None)
@given(scenarios(), offsets(within=2 * DAY_SECONDS))
def test_is_open_agrees_with_the_reference(scenario: tuple[Calendar, datetime], shift: timedelta) -> None:
    calendar, anchor = scenario
    moment = epoch(anchor + shift)
    reference = ReferenceCalendar(calendar, around=moment)

    assert BusinessClock(calendar).is_open(at=anchor + shift) == reference.open_minutes(moment, moment + 1)(
        moment
    )


@settings(max_examples=60, deadline=None)
@given(scenarios(), st.lists(offsets(within=400 * DAY_SECONDS), min_size=3, max_size=3))
def test_business_time_is_additive_over_consecutive_spans(
    scenario: tuple[Calendar, datetime], shifts: list[timedelta]
) -> None:
    calendar, anchor = scenario
    first, middle, last = sorted(anchor + shift for shift in shifts)
    business = BusinessClock(calendar)

    assert business.business_seconds_between(start=first, end=last) == business.business_seconds_between(
        start=first, end=middle
    ) + business.business_seconds_between(start=middle, end=last)


@settings(max_examples=60, deadline=None)
@given(
    scenarios(),
    offsets(within=400 * DAY_SECONDS),
    st.lists(st.integers(0, MAX_BUDGET), min_size=2, max_size=2),
)
def test_business_time_and_deadlines_grow_monotonically(
    scenario: tuple[Calendar, datetime], shift: timedelta, amounts: list[int]
) -> None:
    calendar, anchor = scenario
    start = anchor + shift
    shorter, longer = sorted(amounts)
    business = BusinessClock(calendar)

    assert business.business_seconds_between(
        start=start, end=start + timedelta(seconds=shorter)
    ) <= business.business_seconds_between(start=start, end=start + timedelta(seconds=longer))
    assert business.add_business_seconds(start=start, seconds=shorter) <= business.add_business_seconds(
        start=start, seconds=longer
    )


@settings(max_examples=80, deadline=None)
@given(scenarios(), offsets(within=400 * DAY_SECONDS), st.integers(0, 30 * DAY_SECONDS))
def test_adding_the_business_time_between_two_instants_lands_on_the_later_one_or_its_last_closing(
    scenario: tuple[Calendar, datetime], shift: timedelta, length: int
) -> None:
    calendar, anchor = scenario
    start = anchor + shift
    end = start + timedelta(seconds=length)
    business = BusinessClock(calendar)
    elapsed = business.business_seconds_between(start=start, end=end)
    second = timedelta(seconds=1)

    landed = business.add_business_seconds(start=start, seconds=elapsed)

    if elapsed == 0:
        assert landed == business.next_opening(at=start)
    elif business.is_open(at=end - second):
        assert landed == end
    else:
        assert landed < end
        assert business.business_seconds_between(start=landed, end=end) == 0
        assert business.is_open(at=landed - second)
        assert not business.is_open(at=landed)


@settings(max_examples=60, deadline=None)
@given(scenarios(), offsets(within=400 * DAY_SECONDS), st.integers(1, MAX_BUDGET))
def test_deadline_is_exactly_the_requested_business_time_away(
    scenario: tuple[Calendar, datetime], shift: timedelta, budget: int
) -> None:
    calendar, anchor = scenario
    start = anchor + shift
    business = BusinessClock(calendar)

    deadline = business.add_business_seconds(start=start, seconds=budget)

    assert business.business_seconds_between(start=start, end=deadline) == budget
    assert business.business_seconds_between(start=start, end=deadline - timedelta(seconds=1)) == budget - 1


@settings(max_examples=60, deadline=None)
@given(scenarios(), offsets(within=400 * DAY_SECONDS))
def test_next_opening_is_open_and_nothing_opens_before_it(
    scenario: tuple[Calendar, datetime], shift: timedelta
) -> None:
    calendar, anchor = scenario
    moment = (anchor + shift).replace(microsecond=0)
    business = BusinessClock(calendar)

    opening = business.next_opening(at=moment)

    assert opening >= moment
    assert business.is_open(at=opening)
    assert business.business_seconds_between(start=moment, end=opening) == 0


# The compiled core (services/sla/_clock_core.pyx) against the interpreted one it was written from

needs_the_compiled_core = pytest.mark.skipif(
    not COMPILED, reason="the compiled core is not built (test_the_installed_package_runs_the_compiled_core)"
)


def test_the_installed_package_runs_the_compiled_core() -> None:
    assert COMPILED, "`pip install -e .` did not build services/sla/_clock_core.pyx"


def interpreted(calendar: Calendar) -> BusinessClock:
    """A clock whose two hot methods are the Python ones, whatever the installed package runs."""
    from services.sla.calendar import _InterpretedClockCore

    class InterpretedClock(_InterpretedClockCore, BusinessClock):
        __slots__ = ()

    return InterpretedClock(calendar)


# The zone an input is given in changes only how it is read, so inputs come in several.
INPUT_ZONES = st.sampled_from([UTC, BERLIN, NEW_YORK, timezone(timedelta(hours=5, minutes=30))])
# Near the anchor's DST change, or whole years from it (so other years are built, in any order).
NEAR_OR_YEARS_AWAY = st.builds(
    lambda years, shift: timedelta(days=365 * years) + shift,
    st.integers(-2, 2),
    offsets(within=3 * DAY_SECONDS),
)
MICROSECONDS = st.integers(0, 999_999).map(lambda micros: timedelta(microseconds=micros))


def outcome(method: Callable[..., object], **arguments: Any) -> object:
    """The result, or the type of the error, so failures are compared too."""
    try:
        return method(**arguments)
    except (ValueError, NoOpeningError) as error:
        return type(error)


@needs_the_compiled_core
@settings(max_examples=150, deadline=None)
@given(
    scenarios(),
    st.lists(st.tuples(NEAR_OR_YEARS_AWAY, MICROSECONDS, INPUT_ZONES), min_size=2, max_size=10),
    st.lists(st.integers(-1, 60 * DAY_SECONDS), min_size=1, max_size=4),
)
def test_compiled_and_interpreted_cores_give_the_same_answers(
    scenario: tuple[Calendar, datetime], drawn: list[tuple[timedelta, timedelta, Any]], budgets: list[int]
) -> None:
    calendar, anchor = scenario
    # Fresh clocks: each builds years in its own order, from the queries it is asked.
    compiled, reference = BusinessClock(calendar), interpreted(calendar)
    instants = [(anchor + shift + micros).astimezone(zone) for shift, micros, zone in drawn]
    for start, end in pairwise(instants):
        between = {"start": start, "end": end}
        assert outcome(compiled.business_seconds_between, **between) == outcome(
            reference.business_seconds_between, **between
        ), between
    for start in instants:
        for budget in budgets:
            added = {"start": start, "seconds": budget}
            assert outcome(compiled.add_business_seconds, **added) == outcome(
                reference.add_business_seconds, **added
            ), added


@needs_the_compiled_core
def test_the_reference_clock_runs_the_interpreted_methods_and_the_default_one_the_compiled() -> None:
    from services.sla.calendar import _InterpretedClockCore

    reference, compiled = type(interpreted(Calendar.always_open("24x7"))), BusinessClock
    for method in ("business_seconds_between", "add_business_seconds"):
        assert getattr(reference, method) is getattr(_InterpretedClockCore, method)
        assert getattr(compiled, method) is not getattr(_InterpretedClockCore, method)


@needs_the_compiled_core
def test_compiled_deadlines_are_utc_datetimes_like_the_interpreted_ones() -> None:
    calendar = Calendar.from_config(
        {"name": "office", "timezone": "Europe/Berlin", "weekly": every_day("08:00-17:00")}
    )
    start = local(BERLIN, 2026, 10, 24, 16, 30)
    deadline = BusinessClock(calendar).add_business_seconds(start=start, seconds=3 * HOUR)

    assert deadline == interpreted(calendar).add_business_seconds(start=start, seconds=3 * HOUR)
    assert type(deadline) is datetime
    assert deadline.tzinfo is UTC
    assert deadline == utc(2026, 10, 25, 9, 30)  # 08:00 CET after the fall-back night, plus 2.5 hours


@needs_the_compiled_core
def test_compiled_core_rejects_what_the_interpreted_one_rejects() -> None:
    office = clock()

    with pytest.raises(ValueError, match="timezone-aware"):
        office.business_seconds_between(start=datetime(2026, 3, 9, 9), end=utc(2026, 3, 9, 10))
    with pytest.raises(ValueError, match="negative"):
        office.add_business_seconds(start=utc(2026, 3, 9, 9), seconds=-1)
    with pytest.raises(ValueError, match="years"):
        office.add_business_seconds(start=utc(2500, 1, 1), seconds=60)
    with pytest.raises(TypeError):
        office.business_seconds_between(start=None, end=utc(2026, 3, 9, 10))  # type: ignore[arg-type]
