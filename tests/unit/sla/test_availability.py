"""Availability figures of a business service, computed by hand and checked by properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.sla.availability import (
    FAST_BURN,
    SLOW_BURN,
    AgreedServiceTime,
    AvailabilityError,
    DowntimeSegment,
    Failure,
    Impact,
    ImpactWeights,
    Interval,
    InvalidInterval,
    InvalidObjective,
    InvalidPeriod,
    InvalidWeights,
    OutageAnomaly,
    OutageSignal,
    Period,
    ServiceRecord,
    agreed_service_time,
    always_agreed,
    availability_figures,
    burn_rate,
    burn_rates,
    calendar_month,
    downtime_timeline,
    error_budget,
    exceeded_burn_alerts,
    failures,
    parse_period,
    rolling_days,
)

pytestmark = pytest.mark.unit

HOUR = 3600
MONDAY = datetime(2026, 10, 5, tzinfo=UTC)
SEPTEMBER = Period(datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC), label="2026-09")
OCTOBER_UTC = Period(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), label="2026-10")
MONDAY_ONLY = Period(MONDAY, MONDAY + timedelta(days=1))


def at(hours: float, *, day: int = 0) -> datetime:
    """A moment on the test week, `day` days after Monday 5 October 2026, `hours` after midnight UTC."""
    return MONDAY + timedelta(days=day, hours=hours)


def outage(
    start: datetime, end: datetime | None, impact: Impact = Impact.MAJOR, *, planned: bool = False
) -> OutageSignal:
    return OutageSignal(started_at=start, ended_at=end, impact=impact, planned=planned)


def record(
    *signals: OutageSignal,
    maintenance: tuple[Interval, ...] = (),
    agreed: AgreedServiceTime = always_agreed(),
    weights: ImpactWeights = ImpactWeights(),
) -> ServiceRecord:
    return ServiceRecord(outages=signals, maintenance=maintenance, agreed=agreed, weights=weights)


# --- error budget on a 30-day month


def test_a_43_minute_outage_in_a_30_day_month_stays_12_seconds_inside_a_999_budget() -> None:
    start = datetime(2026, 9, 14, 10, 0, tzinfo=UTC)
    figures = availability_figures(
        record(outage(start, start + timedelta(minutes=43))),
        period=SEPTEMBER,
        now=datetime(2026, 10, 2, tzinfo=UTC),
        objective=0.999,
    )
    assert figures.agreed_seconds == 30 * 24 * HOUR
    assert figures.weighted_downtime_seconds == 43 * 60
    assert figures.availability == pytest.approx(1 - 2580 / 2_592_000)
    assert figures.availability is not None
    assert figures.availability > 0.999
    assert figures.budget is not None
    assert figures.budget.allowed_seconds == pytest.approx(2592)
    assert figures.budget.remaining_seconds == pytest.approx(12)
    assert figures.budget.remaining_ratio == pytest.approx(12 / 2592)


def test_a_44_minute_outage_overspends_the_budget_shown_negative_with_the_ratio_clamped_to_zero() -> None:
    start = datetime(2026, 9, 14, 10, 0, tzinfo=UTC)
    budget = error_budget(
        record(outage(start, start + timedelta(minutes=44))),
        period=SEPTEMBER,
        now=datetime(2026, 10, 2, tzinfo=UTC),
        objective=0.999,
    )
    assert budget.consumed_seconds == 44 * 60
    assert budget.remaining_seconds == pytest.approx(-48)
    assert budget.remaining_ratio == 0.0


def test_a_month_in_progress_has_the_whole_months_budget_but_the_availability_of_its_elapsed_part() -> None:
    now = datetime(2026, 9, 16, tzinfo=UTC)
    # Reported to end after `now` (a replay): only the part up to `now` has happened.
    signal = outage(now - timedelta(minutes=10), now + timedelta(minutes=10))
    figures = availability_figures(record(signal), period=SEPTEMBER, now=now, objective=0.999)
    assert figures.agreed_seconds == 15 * 24 * HOUR
    assert figures.weighted_downtime_seconds == 600
    assert figures.budget is not None
    assert figures.budget.agreed_seconds == 30 * 24 * HOUR
    assert figures.budget.remaining_seconds == pytest.approx(2592 - 600)
    assert failures(record(signal), now=now) == (Failure(now - timedelta(minutes=10), None),)


# --- merging signals into one timeline


def test_overlapping_outages_from_two_sources_count_once() -> None:
    alertmanager = outage(at(10), at(10.5))
    pagerduty = outage(at(10.25), at(10.75))
    figures = availability_figures(record(alertmanager, pagerduty), period=MONDAY_ONLY, now=at(24))
    assert figures.weighted_downtime_seconds == 45 * 60
    assert figures.outages == 1
    assert figures.mtrs_seconds == 45 * 60


def test_a_partial_outage_counts_at_three_tenths_of_its_duration() -> None:
    figures = availability_figures(
        record(outage(at(10), at(11), Impact.PARTIAL)), period=MONDAY_ONLY, now=at(24)
    )
    assert figures.downtime_seconds == HOUR
    assert figures.weighted_downtime_seconds == pytest.approx(0.3 * HOUR)
    assert figures.availability == pytest.approx(1 - 1080 / 86_400)
    assert figures.outages == 1


def test_a_major_outage_inside_a_partial_one_counts_its_stretch_at_full_weight_and_never_twice() -> None:
    signals = record(outage(at(10), at(11), Impact.PARTIAL), outage(at(10 + 20 / 60), at(10.5)))
    figures = availability_figures(signals, period=MONDAY_ONLY, now=at(24))
    assert figures.weighted_downtime_seconds == pytest.approx(50 * 60 * 0.3 + 10 * 60)
    assert figures.outages == 1
    assert downtime_timeline(signals, now=at(24)) == (
        DowntimeSegment(at(10), at(10 + 20 / 60), Impact.PARTIAL),
        DowntimeSegment(at(10 + 20 / 60), at(10.5), Impact.MAJOR),
        DowntimeSegment(at(10.5), at(11), Impact.PARTIAL),
    )


def test_weights_are_configurable_per_service() -> None:
    signals = record(
        outage(at(10), at(11), Impact.DEGRADED), weights=ImpactWeights(partial=0.5, degraded=0.1)
    )
    figures = availability_figures(signals, period=MONDAY_ONLY, now=at(24))
    assert figures.weighted_downtime_seconds == pytest.approx(360)


def test_a_degraded_service_counts_no_downtime_and_no_outage_by_default() -> None:
    figures = availability_figures(
        record(outage(at(10), at(11), Impact.DEGRADED)), period=MONDAY_ONLY, now=at(24)
    )
    assert figures.weighted_downtime_seconds == 0
    assert figures.outages == 0
    assert figures.availability == 1.0


def test_a_backdated_impact_start_recomputes_the_downtime() -> None:
    first_report = outage(at(10 + 20 / 60), at(11))
    # ITIL: downtime counts from impact start, not from when the alert fired or the ticket was raised.
    corrected = outage(at(10 + 5 / 60), at(11))
    before = availability_figures(record(first_report), period=MONDAY_ONLY, now=at(24))
    after = availability_figures(record(corrected), period=MONDAY_ONLY, now=at(24))
    both = availability_figures(record(first_report, corrected), period=MONDAY_ONLY, now=at(24))
    assert before.weighted_downtime_seconds == 40 * 60
    assert after.weighted_downtime_seconds == 55 * 60
    assert both == after


def test_an_open_outage_counts_up_to_now_and_is_not_yet_restored() -> None:
    signals = record(outage(at(10), None))
    figures = availability_figures(signals, period=MONDAY_ONLY, now=at(10 + 20 / 60))
    assert figures.agreed_seconds == 10 * HOUR + 20 * 60
    assert figures.weighted_downtime_seconds == 20 * 60
    assert figures.outages == 1
    assert figures.mtrs_seconds is None
    assert failures(signals, now=at(10 + 20 / 60)) == (Failure(at(10), None),)


def test_an_outage_reported_to_start_after_now_does_not_count_yet() -> None:
    figures = availability_figures(record(outage(at(12), at(13))), period=MONDAY_ONLY, now=at(11))
    assert figures.weighted_downtime_seconds == 0
    assert figures.outages == 0


# --- maintenance windows


WINDOW = Interval(at(2), at(4))


def test_planned_downtime_inside_a_maintenance_window_is_ignored() -> None:
    signals = record(outage(at(2), at(3.5), planned=True), maintenance=(WINDOW,))
    figures = availability_figures(signals, period=MONDAY_ONLY, now=at(24))
    assert figures.weighted_downtime_seconds == 0
    assert figures.outages == 0
    assert figures.availability == 1.0


def test_unplanned_downtime_across_a_window_boundary_counts_only_outside_the_window() -> None:
    signals = record(outage(at(3.5), at(4.5)), maintenance=(WINDOW,))
    figures = availability_figures(signals, period=MONDAY_ONLY, now=at(24))
    assert figures.weighted_downtime_seconds == 30 * 60
    assert figures.outages == 1
    assert failures(signals, now=at(24)) == (Failure(at(4), at(4.5)),)


def test_planned_downtime_outside_any_window_counts_as_downtime() -> None:
    signals = record(outage(at(5), at(5 + 10 / 60), planned=True), maintenance=(WINDOW,))
    figures = availability_figures(signals, period=MONDAY_ONLY, now=at(24))
    assert figures.weighted_downtime_seconds == 600
    assert figures.outages == 1


def test_maintenance_windows_are_taken_out_of_agreed_service_time() -> None:
    figures = availability_figures(record(maintenance=(WINDOW,)), period=MONDAY_ONLY, now=at(24))
    assert figures.agreed_seconds == 22 * HOUR
    assert figures.maintenance_seconds == 2 * HOUR


def test_a_failure_spanning_a_maintenance_window_splits_into_the_failures_around_it() -> None:
    signals = record(outage(at(1), at(5)), maintenance=(WINDOW,))
    figures = availability_figures(signals, period=MONDAY_ONLY, now=at(24))
    assert figures.weighted_downtime_seconds == 2 * HOUR
    assert failures(signals, now=at(24)) == (Failure(at(1), at(2)), Failure(at(4), at(5)))


# --- agreed service time


OFFICE_HOURS = agreed_service_time((at(9, day=day), at(17, day=day)) for day in range(5))
OFFICE_WEEK = Period(MONDAY, at(0, day=5))


def test_office_hours_count_only_the_downtime_within_agreed_service_time() -> None:
    signals = record(outage(at(16), at(10, day=1)), agreed=OFFICE_HOURS)
    figures = availability_figures(signals, period=OFFICE_WEEK, now=at(0, day=7))
    assert figures.agreed_seconds == 40 * HOUR
    assert figures.weighted_downtime_seconds == 2 * HOUR
    assert figures.availability == pytest.approx(0.95)
    # One failure overnight, restored after 18 hours of clock time.
    assert figures.outages == 1
    assert figures.mtrs_seconds == 18 * HOUR


def test_overlapping_agreed_intervals_are_not_counted_twice() -> None:
    agreed = agreed_service_time([(at(9), at(13)), (at(12), at(17))])
    figures = availability_figures(record(agreed=agreed), period=MONDAY_ONLY, now=at(24))
    assert figures.agreed_seconds == 8 * HOUR


def test_without_agreed_service_time_there_is_no_availability_figure() -> None:
    agreed = AgreedServiceTime(intervals=())
    figures = availability_figures(
        record(outage(at(10), at(11)), agreed=agreed), period=MONDAY_ONLY, now=at(24), objective=0.999
    )
    assert figures.agreed_seconds == 0
    assert figures.availability is None
    assert figures.weighted_downtime_seconds == 0
    assert figures.budget is not None
    assert figures.budget.remaining_ratio is None


def test_an_outage_covering_the_whole_period_twice_clamps_availability_to_zero() -> None:
    whole_day = outage(at(-1), at(25))
    figures = availability_figures(record(whole_day, whole_day), period=MONDAY_ONLY, now=at(30))
    assert figures.weighted_downtime_seconds == figures.agreed_seconds == 24 * HOUR
    assert figures.availability == 0.0


# --- periods


def test_october_2026_in_berlin_has_745_agreed_hours_around_the_clock() -> None:
    october = parse_period("2026-10", tz="Europe/Berlin", now=datetime(2026, 11, 5, tzinfo=UTC))
    assert october.start == datetime(2026, 9, 30, 22, tzinfo=UTC)
    assert october.end == datetime(2026, 10, 31, 23, tzinfo=UTC)
    figures = availability_figures(
        record(agreed=always_agreed()), period=october, now=datetime(2026, 11, 5, tzinfo=UTC)
    )
    assert figures.agreed_seconds == 745 * HOUR
    assert figures.availability == 1.0


def test_march_2026_in_berlin_is_one_hour_short() -> None:
    march = calendar_month("2026-03", tz="Europe/Berlin")
    assert march.end - march.start == timedelta(hours=31 * 24 - 1)


def test_december_ends_at_new_year_in_the_services_time_zone() -> None:
    december = calendar_month("2026-12", tz="America/New_York")
    assert december.end == datetime(2027, 1, 1, 5, tzinfo=UTC)


@pytest.mark.parametrize("days", [7, 30, 90])
def test_rolling_periods_end_at_now(days: int) -> None:
    now = datetime(2026, 10, 20, 12, 30, tzinfo=UTC)
    period = parse_period(f"{days}d", tz="Europe/Berlin", now=now)
    assert (period.start, period.end, period.label) == (now - timedelta(days=days), now, f"{days}d")


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("2026-13", "MM from 01 to 12"),
        ("2026-00", "MM from 01 to 12"),
        ("2026-1", "YYYY-MM"),
        ("2026/10", "YYYY-MM"),
        ("", "YYYY-MM"),
        ("14d", "rolling periods are 7d, 30d, 90d"),
        ("0d", "rolling periods are 7d, 30d, 90d"),
    ],
)
def test_a_bad_period_string_is_rejected_naming_the_problem(spec: str, problem: str) -> None:
    with pytest.raises(InvalidPeriod, match=problem):
        parse_period(spec, tz="Europe/Berlin", now=MONDAY)


def test_an_unknown_time_zone_is_rejected() -> None:
    with pytest.raises(InvalidPeriod, match="unknown time zone 'Mars/Olympus'"):
        calendar_month("2026-10", tz="Mars/Olympus")


def test_a_rolling_period_needs_days() -> None:
    with pytest.raises(InvalidPeriod, match="positive number of days"):
        rolling_days(0, now=MONDAY)


# --- MTRS, MTBF, MTBSI


def test_mtrs_mtbf_and_mtbsi_on_three_outages() -> None:
    signals = record(outage(at(10), at(10.5)), outage(at(12), at(12.25)), outage(at(15), at(16)))
    figures = availability_figures(signals, period=MONDAY_ONLY, now=at(24))
    assert figures.outages == 3
    assert figures.mtrs_seconds == (30 + 15 + 60) * 60 / 3
    assert figures.mtbf_seconds == (90 + 165) * 60 / 2
    assert figures.mtbsi_seconds == (120 + 180) * 60 / 2


def test_a_single_outage_has_no_mtbf() -> None:
    figures = availability_figures(record(outage(at(10), at(11))), period=MONDAY_ONLY, now=at(24))
    assert (figures.mtbf_seconds, figures.mtbsi_seconds) == (None, None)


def test_an_outage_restored_in_the_period_counts_for_mtrs_but_only_the_period_it_started_in_counts_it() -> (
    None
):
    midnight = datetime(2026, 10, 1, tzinfo=UTC)
    signals = record(
        outage(midnight - timedelta(minutes=30), midnight + timedelta(minutes=30)),
        outage(midnight + timedelta(days=1, hours=10), midnight + timedelta(days=1, hours=10, minutes=10)),
    )
    figures = availability_figures(signals, period=OCTOBER_UTC, now=datetime(2026, 11, 2, tzinfo=UTC))
    assert figures.outages == 1
    assert figures.weighted_downtime_seconds == 40 * 60
    assert figures.mtrs_seconds == (60 + 10) * 60 / 2
    assert figures.mtbf_seconds == (24 + 9.5) * HOUR


def test_mtbf_pairs_only_the_failures_starting_in_the_period_with_their_predecessors() -> None:
    september_29 = datetime(2026, 9, 29, 10, tzinfo=UTC)
    signals = record(
        *(
            outage(september_29 + timedelta(days=d), september_29 + timedelta(days=d, minutes=10))
            for d in (0, 1, 3)
        )
    )
    figures = availability_figures(signals, period=OCTOBER_UTC, now=datetime(2026, 11, 2, tzinfo=UTC))
    assert figures.outages == 1
    assert figures.mtbf_seconds == 2 * 24 * HOUR - 600
    assert figures.mtbsi_seconds == 2 * 24 * HOUR


# --- burn rates


def test_burn_rates_over_one_hour_six_hours_one_day_and_three_days() -> None:
    rates = burn_rates(record(outage(at(11), at(12))), now=at(12), objective=0.99)
    assert rates.one_hour == pytest.approx(100)
    assert rates.six_hours == pytest.approx(100 / 6)
    assert rates.one_day == pytest.approx(100 / 24)
    assert rates.three_days == pytest.approx(100 / 72)


def test_an_ongoing_major_outage_exceeds_both_the_fast_and_the_slow_burn_thresholds() -> None:
    signals = record(outage(at(12) - timedelta(minutes=10), None))
    assert exceeded_burn_alerts(signals, now=at(12), objective=0.999) == (FAST_BURN, SLOW_BURN)


def test_the_fast_burn_alert_stops_once_the_last_five_minutes_are_clean() -> None:
    signals = record(outage(at(12) - timedelta(minutes=50), at(12) - timedelta(minutes=20)))
    assert burn_rate(signals, window=timedelta(hours=1), now=at(12), objective=0.999) == pytest.approx(500)
    assert exceeded_burn_alerts(signals, now=at(12), objective=0.999) == (SLOW_BURN,)


@pytest.mark.parametrize(("seconds", "fires"), [(51, False), (52, True)])
def test_the_fast_burn_alert_fires_above_14_4_times_the_allowed_rate(seconds: int, fires: bool) -> None:
    signals = record(outage(at(12) - timedelta(seconds=seconds), at(12)))
    assert (FAST_BURN in exceeded_burn_alerts(signals, now=at(12), objective=0.999)) is fires


def test_the_slow_burn_alert_fires_above_6_times_the_allowed_rate_over_6_hours() -> None:
    # At 99.9 %, 6x over 6 h is more than 129.6 s down; 14.4x over 1 h is more than 51.84 s.
    earlier = outage(at(9), at(9) + timedelta(seconds=100))
    signals = record(earlier, outage(at(12) - timedelta(seconds=40), at(12)))
    assert exceeded_burn_alerts(signals, now=at(12), objective=0.999) == (SLOW_BURN,)


def test_a_window_without_agreed_service_time_has_no_burn_rate_and_fires_nothing() -> None:
    signals = record(outage(at(19), None), agreed=OFFICE_HOURS)
    assert burn_rate(signals, window=timedelta(hours=1), now=at(20), objective=0.999) is None
    assert exceeded_burn_alerts(signals, now=at(20), objective=0.999) == ()


# --- bad input


def test_an_outage_ending_before_it_starts_is_an_anomaly() -> None:
    with pytest.raises(OutageAnomaly, match="outage ends before it starts"):
        outage(at(11), at(10))


def test_an_impact_decoded_as_a_plain_string_counts_like_the_enum_member() -> None:
    signal = OutageSignal(started_at=at(10), ended_at=at(11), impact="partial")  # type: ignore[arg-type]
    assert signal.impact is Impact.PARTIAL


def test_an_unknown_impact_is_an_anomaly() -> None:
    with pytest.raises(OutageAnomaly, match="impact is one of major, partial, degraded, got 'total'"):
        OutageSignal(started_at=at(10), ended_at=None, impact="total")  # type: ignore[arg-type]


def test_an_interval_ending_before_it_starts_is_invalid() -> None:
    with pytest.raises(InvalidInterval, match="interval ends before it starts"):
        Interval(at(4), at(2))


def test_agreed_service_time_ending_before_it_starts_is_invalid() -> None:
    with pytest.raises(InvalidInterval):
        agreed_service_time([(at(17), at(9))])


def test_a_timestamp_without_a_time_zone_is_rejected() -> None:
    with pytest.raises(OutageAnomaly, match="timezone-aware"):
        outage(datetime(2026, 10, 5, 10), None)
    with pytest.raises(InvalidInterval, match="now must be timezone-aware"):
        failures(record(), now=datetime(2026, 10, 5, 10))


@pytest.mark.parametrize("weights", [(1.0, 0.3, 0.5), (1.2, 0.3, 0.0), (1.0, 0.3, -0.1), (0.2, 0.3, 0.0)])
def test_weights_must_lie_in_0_to_1_and_follow_the_impact_order(weights: tuple[float, float, float]) -> None:
    with pytest.raises(InvalidWeights):
        ImpactWeights(*weights)


@pytest.mark.parametrize("objective", [0.0, 1.0, 99.9, -0.5, float("nan")])
def test_an_objective_must_lie_strictly_between_0_and_1(objective: float) -> None:
    with pytest.raises(InvalidObjective):
        error_budget(record(), period=MONDAY_ONLY, now=at(24), objective=objective)


def test_every_domain_error_is_a_value_error() -> None:
    for error in (InvalidInterval, OutageAnomaly, InvalidWeights, InvalidObjective, InvalidPeriod):
        assert issubclass(error, AvailabilityError)
        assert issubclass(error, ValueError)


# --- properties

MINUTES = st.integers(min_value=-120, max_value=3 * 24 * 60)


def minute(offset: int) -> datetime:
    return MONDAY + timedelta(minutes=offset)


@st.composite
def intervals(draw: st.DrawFn) -> tuple[datetime, datetime]:
    start = draw(MINUTES)
    return minute(start), minute(start + draw(st.integers(min_value=0, max_value=12 * 60)))


@st.composite
def signals(draw: st.DrawFn) -> OutageSignal:
    start, end = draw(intervals())
    return OutageSignal(
        started_at=start,
        ended_at=draw(st.sampled_from([end, None])),
        impact=draw(st.sampled_from(list(Impact))),
        planned=draw(st.booleans()),
    )


@st.composite
def records(draw: st.DrawFn) -> ServiceRecord:
    weights = sorted(
        draw(st.lists(st.floats(min_value=0, max_value=1), min_size=3, max_size=3)), reverse=True
    )
    agreed = draw(
        st.one_of(st.just(always_agreed()), st.lists(intervals(), max_size=4).map(agreed_service_time))
    )
    return ServiceRecord(
        outages=tuple(draw(st.lists(signals(), max_size=6))),
        maintenance=tuple(Interval(*window) for window in draw(st.lists(intervals(), max_size=2))),
        agreed=agreed,
        weights=ImpactWeights(*weights),
    )


@st.composite
def periods(draw: st.DrawFn) -> Period:
    start, end = draw(intervals())
    return Period(start, end + timedelta(days=draw(st.integers(min_value=0, max_value=2))))


PROPERTY = settings(max_examples=100, database=None, deadline=None)


@PROPERTY
@given(records(), periods(), MINUTES.map(minute))
def test_every_figure_stays_within_its_bounds(service: ServiceRecord, period: Period, now: datetime) -> None:
    figures = availability_figures(service, period=period, now=now, objective=0.999)
    assert 0 <= figures.weighted_downtime_seconds <= figures.downtime_seconds <= figures.agreed_seconds
    assert (figures.availability is None) == (figures.agreed_seconds == 0)
    assert figures.availability is None or 0.0 <= figures.availability <= 1.0
    assert figures.outages >= 0
    for mean in (figures.mtrs_seconds, figures.mtbf_seconds, figures.mtbsi_seconds):
        assert mean is None or mean >= 0
    assert figures.budget is not None
    assert figures.budget.remaining_ratio is None or 0.0 <= figures.budget.remaining_ratio <= 1.0
    rate = burn_rate(service, window=timedelta(hours=1), now=now, objective=0.999)
    assert rate is None or 0.0 <= rate <= 1000.0 + 1e-9


@PROPERTY
@given(records(), periods(), MINUTES.map(minute), st.data())
def test_shuffled_and_duplicated_signals_give_the_same_figures(
    service: ServiceRecord, period: Period, now: datetime, data: st.DataObject
) -> None:
    duplicates = data.draw(st.lists(st.sampled_from(service.outages), max_size=4)) if service.outages else []
    shuffled = data.draw(st.permutations([*service.outages, *duplicates]))
    again = ServiceRecord(tuple(shuffled), service.maintenance, service.agreed, service.weights)
    assert availability_figures(again, period=period, now=now) == availability_figures(
        service, period=period, now=now
    )
    assert failures(again, now=now) == failures(service, now=now)


@PROPERTY
@given(records(), periods(), MINUTES.map(minute))
def test_merging_a_merged_timeline_changes_nothing(
    service: ServiceRecord, period: Period, now: datetime
) -> None:
    timeline = downtime_timeline(service, now=now)
    merged = ServiceRecord(
        tuple(OutageSignal(s.start, s.end, s.impact) for s in timeline),
        service.maintenance,
        service.agreed,
        service.weights,
    )
    assert downtime_timeline(merged, now=now) == timeline
    before = availability_figures(service, period=period, now=now)
    after = availability_figures(merged, period=period, now=now)
    assert after.weighted_downtime_seconds == before.weighted_downtime_seconds
    assert after.outages == before.outages
