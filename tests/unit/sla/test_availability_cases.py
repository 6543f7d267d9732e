"""The issue's hand-computed cases, end to end through the pure parts: signal events folded into
episodes, mapped by the catalogue, laid over agreed service time and maintenance windows, measured.

Each expected figure is worked out by hand in the comment above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta

import pytest

from bothways.events import TicketChanged
from services.sla.availability import Impact, calendar_month, month_of, months_overlapping
from services.sla.calendar import BusinessClock, Calendar
from services.sla.catalogue import BusinessService, MajorIncidentRule
from services.sla.maintenance import MaintenanceWindow
from services.sla.outages import ServiceContext
from services.sla.signals import Episode, SignalEvent, SignalKind, fold_signal, major_incident_episode

pytestmark = pytest.mark.unit

HOUR = 3600
OCTOBER = calendar_month("2026-10", tz="Europe/Berlin")
# October 2026 in Berlin: 31 days plus the hour clocks go back on the 25th.
OCTOBER_SECONDS = (31 * 24 + 1) * HOUR
AFTER = datetime(2026, 11, 15, tzinfo=UTC)
OFFICE_BERLIN = Calendar.from_config(
    {
        "name": "office-berlin",
        "timezone": "Europe/Berlin",
        "weekly": {day: ["08:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": {"country": "DE", "subdivision": "BE"},
    }
)


def berlin(month: int, day: int, hour: float, *, summer: bool) -> datetime:
    """A Berlin wall time in 2026 as UTC, the offset given (CEST +2 in summer, CET +1 in winter)."""
    offset = 2 if summer else 1
    return datetime(2026, month, day, tzinfo=UTC) + timedelta(hours=hour - offset)


def alert(
    key: str, start: datetime, end: datetime | None, impact: Impact = Impact.MAJOR
) -> list[SignalEvent]:
    """The events Alertmanager sends for one alert: firing, then resolved."""
    events = [SignalEvent(f"{key}-1", SignalKind.STARTED, start, start, None, impact)]
    if end is not None:
        events.append(SignalEvent(f"{key}-2", SignalKind.ENDED, end, start, end, impact))
    return events


def context(
    signals: dict[str, Sequence[Episode]],
    *,
    windows: Sequence[MaintenanceWindow] = (),
    clock: BusinessClock | None = None,
    **fields: object,
) -> ServiceContext:
    service = BusinessService.model_validate(
        {"id": "webshop", "name": "Web shop", "objective_percent": 99.9, "timezone": "Europe/Berlin"} | fields
    )
    return ServiceContext(
        service=service,
        timezone="Europe/Berlin",
        windows=tuple(windows),
        episodes={key: tuple(episodes) for key, episodes in signals.items()},
        clock=clock,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_a_month_with_one_43_minute_outage() -> None:
    start = berlin(10, 14, 10, summer=True)
    folded = fold_signal(alert("a", start, start + timedelta(minutes=43)))
    figures = context({"alertmanager:a": folded.episodes}).figures(OCTOBER, now=AFTER)
    # 2,580 s down of 2,682,000 s agreed; a 99.9 % budget of 2,682 s leaves 102 s.
    assert figures.agreed_seconds == OCTOBER_SECONDS == 2_682_000
    assert figures.weighted_downtime_seconds == 2580
    assert figures.availability == pytest.approx(1 - 2580 / 2_682_000)
    assert figures.outages == 1
    assert figures.mtrs_seconds == 2580
    assert figures.budget is not None
    assert figures.budget.remaining_seconds == pytest.approx(102)


def test_overlapping_outages_from_an_alert_and_a_p1_ticket_count_once() -> None:
    day = berlin(10, 7, 0, summer=True)
    folded = fold_signal(alert("a", day + timedelta(hours=10), day + timedelta(hours=10.5)))
    ticket = TicketChanged.model_validate(
        {
            "ticket_key": "jira:INC-7",
            "source": "jira",
            "external_id": "INC-7",
            "occurred_at": day + timedelta(hours=11),
            "created_at": day + timedelta(hours=10, minutes=20),
            "status": "Resolved",
            "status_category": "resolved",
            "priority": "P1",
            "business_service": "webshop",
            "resolved_at": day + timedelta(hours=10.75),
            "custom": {"impact_started_at": (day + timedelta(hours=10.25)).isoformat()},
        }
    )
    episode, _ = major_incident_episode(
        ticket, rule=MajorIncidentRule(impact_start_field="custom.impact_started_at")
    )
    assert episode is not None
    figures = context({"alertmanager:a": folded.episodes, "ticket:jira:INC-7": [episode]}).figures(
        OCTOBER, now=AFTER
    )
    # 10:00-10:30 and 10:15-10:45 are one outage of 45 minutes, not 60.
    assert figures.weighted_downtime_seconds == 45 * 60
    assert figures.outages == 1
    assert figures.mtrs_seconds == 45 * 60


def test_a_partial_outage_counts_at_the_services_partial_weight() -> None:
    start = berlin(10, 20, 9, summer=True)
    folded = fold_signal(alert("a", start, start + timedelta(hours=2), Impact.PARTIAL))
    default = context({"a": folded.episodes}).figures(OCTOBER, now=AFTER)
    halved = context({"a": folded.episodes}, weights={"partial": 0.5}).figures(OCTOBER, now=AFTER)
    # Two hours partial: 0.3 x 7,200 s = 2,160 s by default, 0.5 x 7,200 s = 3,600 s for this service.
    assert default.weighted_downtime_seconds == pytest.approx(2160)
    assert halved.weighted_downtime_seconds == pytest.approx(3600)
    assert default.downtime_seconds == halved.downtime_seconds == 7200


def test_maintenance_windows_excuse_what_falls_inside_them_planned_or_not() -> None:
    sunday_window = MaintenanceWindow(
        weekly_on=["sun"], at=time(2, 0), duration_minutes=120, timezone="Europe/Berlin"
    )
    # Sunday 11 October: unplanned down 01:00-03:00 local, the window is 02:00-04:00.
    unplanned = fold_signal(
        alert("u", berlin(10, 11, 1, summer=True), berlin(10, 11, 3, summer=True))
    ).episodes
    planned = (
        Episode(berlin(10, 18, 2, summer=True), berlin(10, 18, 3, summer=True), Impact.MAJOR, planned=True),
    )
    figures = context({"u": unplanned, "p": planned}, windows=[sunday_window]).figures(OCTOBER, now=AFTER)
    # Four Sundays in October (4, 11, 18, 25) x 2 h of maintenance leave 2,682,000 - 28,800 s agreed;
    # only 01:00-02:00 on the 11th counts, the planned work on the 18th not at all.
    assert figures.maintenance_seconds == 4 * 2 * HOUR
    assert figures.agreed_seconds == 2_682_000 - 28_800
    assert figures.weighted_downtime_seconds == HOUR
    assert figures.availability == pytest.approx(1 - 3600 / 2_653_200)


def test_office_hours_in_march_2026_follow_the_berlin_clock_change() -> None:
    march = calendar_month("2026-03", tz="Europe/Berlin")
    clock = BusinessClock(OFFICE_BERLIN)
    # 07:00-09:00 local before (CET, Monday 23rd) and after (CEST, Monday 30th) the change on the 29th:
    # each time only 08:00-09:00 is agreed service time.
    before = Episode(berlin(3, 23, 7, summer=False), berlin(3, 23, 9, summer=False), Impact.MAJOR)
    after = Episode(berlin(3, 30, 7, summer=True), berlin(3, 30, 9, summer=True), Impact.MAJOR)
    figures = context({"a": [before, after]}, clock=clock, calendar="office-berlin").figures(
        march, now=datetime(2026, 4, 2, tzinfo=UTC)
    )
    # 22 working days (no Berlin holiday on a March weekday in 2026) x 9 h = 198 h = 712,800 s.
    assert figures.agreed_seconds == 712_800
    assert figures.weighted_downtime_seconds == 2 * HOUR
    assert figures.availability == pytest.approx(1 - 7200 / 712_800)
    # Failures are wall-clock: both outages count, each two hours to restore.
    assert figures.outages == 2
    assert figures.mtrs_seconds == 2 * HOUR


def test_the_business_clock_lays_out_agreed_time_in_utc_across_the_change() -> None:
    clock = BusinessClock(OFFICE_BERLIN)
    friday, monday = datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC)
    assert clock.open_intervals(start=friday, end=monday) == [
        (datetime(2026, 3, 27, 7, tzinfo=UTC), datetime(2026, 3, 27, 16, tzinfo=UTC)),
        (datetime(2026, 3, 30, 6, tzinfo=UTC), datetime(2026, 3, 30, 15, tzinfo=UTC)),
    ]
    # Clipped to the stretch asked for.
    assert clock.open_intervals(
        start=datetime(2026, 3, 27, 15, tzinfo=UTC), end=datetime(2026, 3, 30, 7, tzinfo=UTC)
    ) == [
        (datetime(2026, 3, 27, 15, tzinfo=UTC), datetime(2026, 3, 27, 16, tzinfo=UTC)),
        (datetime(2026, 3, 30, 6, tzinfo=UTC), datetime(2026, 3, 30, 7, tzinfo=UTC)),
    ]
    assert clock.open_intervals(start=monday, end=friday) == []


def test_a_backdated_impact_start_recomputes_the_month() -> None:
    start = berlin(10, 8, 10, summer=True)
    events = alert("a", start, start + timedelta(minutes=20))
    first = context({"a": fold_signal(events).episodes}).figures(OCTOBER, now=AFTER)
    backdated = SignalEvent(
        "a-3",
        SignalKind.UPDATED,
        start + timedelta(days=2),
        start - timedelta(minutes=40),
        None,
        Impact.MAJOR,
    )
    corrected = context({"a": fold_signal([*events, backdated]).episodes}).figures(OCTOBER, now=AFTER)
    # 20 minutes, then 60 once the post-mortem moves the impact start 40 minutes back.
    assert first.weighted_downtime_seconds == 1200
    assert corrected.weighted_downtime_seconds == 3600
    assert corrected.outages == 1


def test_the_months_a_stretch_touches_are_taken_in_the_services_zone() -> None:
    # 23:30 UTC on 31 December is already January in Berlin.
    new_year = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert month_of(new_year, tz="Europe/Berlin") == "2027-01"
    assert month_of(new_year, tz="UTC") == "2026-12"
    assert months_overlapping(datetime(2026, 11, 20, tzinfo=UTC), new_year, tz="UTC") == [
        "2026-11",
        "2026-12",
    ]
    assert months_overlapping(datetime(2026, 11, 20, tzinfo=UTC), new_year, tz="Europe/Berlin") == [
        "2026-11",
        "2026-12",
        "2027-01",
    ]
    assert months_overlapping(new_year, new_year, tz="UTC") == ["2026-12"]
