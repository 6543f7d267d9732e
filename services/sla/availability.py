"""Availability of one business service from its outages: ITIL figures, error budgets and burn rates.

Pure: values in, values out, the current time passed in. Internally every instant is a whole number
of epoch seconds (sub-second precision is floored away) and every stretch of time is half-open.

Decisions where the issue is silent:
- Maintenance windows are taken out of agreed service time (ITIL: agreed maintenance is not agreed
  service), so nothing inside a window counts as downtime, planned or not, and a window never
  counts as uptime either. A planned outage outside every window counts like any other: only
  agreed maintenance is excused, an unannounced or overrunning change is not. `planned` therefore
  changes no figure; it records intent.
- Nothing after `now` counts: open outages run up to `now`, signals starting later are ignored,
  and for a period still in progress the figures cover its elapsed part only. The error budget is
  the whole period's, so the dashboard shows what is left for the rest of it.
- A failure is a maximal stretch whose worst impact has a weight above zero, outside maintenance
  windows, in wall-clock time (a night-time failure of an office-hours service still is one). A
  failure running into a window ends at the window's start; one still down after the window is a
  new failure from the window's end.
- MTRS, MTBF and MTBSI are wall-clock means in seconds; MTBF and MTBSI pair each failure starting
  in the period with the failure before it, even if that one is older than the period.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Span = tuple[int, int]
"""A half-open stretch [start, end) in epoch seconds."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_DAY = 86_400
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_ROLLING = re.compile(r"(\d+)d")
ROLLING_DAYS = (7, 30, 90)


class AvailabilityError(ValueError):
    """Input the availability figures cannot be computed from."""


class InvalidInterval(AvailabilityError):
    """An interval that ends before it starts, or a timestamp without a time zone."""


class OutageAnomaly(AvailabilityError):
    """An outage signal that cannot be true, such as one that ends before it starts."""


class InvalidWeights(AvailabilityError):
    """Impact weights outside [0, 1], or a milder impact weighing more than a worse one."""


class InvalidObjective(AvailabilityError):
    """An availability objective that is not strictly between 0 and 1."""


class InvalidPeriod(AvailabilityError):
    """A period string (or its time zone) that names no period."""


class Impact(StrEnum):
    MAJOR = "major"
    PARTIAL = "partial"
    DEGRADED = "degraded"


# Worst first: where signals overlap, the worst impact holds for that stretch and the others are not counted.
_WORST_FIRST = (Impact.MAJOR, Impact.PARTIAL, Impact.DEGRADED)


def _epoch(moment: datetime, what: str, error: type[AvailabilityError] = InvalidInterval) -> int:
    """Whole epoch seconds of an aware datetime, floored."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise error(f"{what} must be timezone-aware, got {moment.isoformat()}")
    return (moment - _EPOCH) // _SECOND


def _datetime(seconds: int) -> datetime:
    """The UTC datetime of whole epoch seconds."""
    return _EPOCH + timedelta(seconds=seconds)


def _check_order(start: datetime, end: datetime, what: str, error: type[AvailabilityError]) -> None:
    """Reject an end before its start, naming the interval."""
    if _epoch(end, f"{what} end", error) < _epoch(start, f"{what} start", error):
        raise error(f"{what} ends before it starts: {end.isoformat()} < {start.isoformat()}")


@dataclass(frozen=True)
class Interval:
    """A half-open stretch of time [start, end) between two aware datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _check_order(self.start, self.end, "interval", InvalidInterval)

    def span(self) -> Span:
        """The interval in epoch seconds."""
        return _epoch(self.start, "start"), _epoch(self.end, "end")


@dataclass(frozen=True)
class OutageSignal:
    """One source's report of an outage of a business service; `ended_at` is None while it is open."""

    started_at: datetime
    ended_at: datetime | None
    impact: Impact
    # Intent only: windows excuse downtime whatever this says (see the module docstring).
    planned: bool = False

    def __post_init__(self) -> None:
        if self.impact not in tuple(Impact):
            raise OutageAnomaly(f"impact is one of {', '.join(Impact)}, got {self.impact!r}")
        # Signals decoded from JSON carry plain strings; the timeline compares enum members.
        object.__setattr__(self, "impact", Impact(self.impact))
        _epoch(self.started_at, "outage start", OutageAnomaly)
        if self.ended_at is not None:
            _check_order(self.started_at, self.ended_at, "outage", OutageAnomaly)


@dataclass(frozen=True)
class ImpactWeights:
    """The share of an impact level's time that counts as downtime, per business service."""

    major: float = 1.0
    partial: float = 0.3
    degraded: float = 0.0

    def __post_init__(self) -> None:
        # Monotone weights keep "worst impact" and "heaviest weight" the same thing when merging.
        if not 1.0 >= self.major >= self.partial >= self.degraded >= 0.0:
            raise InvalidWeights(
                f"weights must satisfy 1 >= major >= partial >= degraded >= 0, got "
                f"major={self.major}, partial={self.partial}, degraded={self.degraded}"
            )

    def of(self, impact: Impact) -> float:
        """The weight of one impact level."""
        return {Impact.MAJOR: self.major, Impact.PARTIAL: self.partial, Impact.DEGRADED: self.degraded}[
            impact
        ]


@dataclass(frozen=True)
class AgreedServiceTime:
    """When the service is agreed to be available: explicit UTC intervals, or always (24x7) when None."""

    intervals: tuple[Interval, ...] | None

    def spans(self, start: int, end: int) -> list[Span]:
        """The agreed stretches within [start, end), merged."""
        if self.intervals is None:
            return [(start, end)] if start < end else []
        return _intersect(_union(interval.span() for interval in self.intervals), [(start, end)])


def always_agreed() -> AgreedServiceTime:
    """Agreed service time around the clock (24x7)."""
    return AgreedServiceTime(intervals=None)


def agreed_service_time(intervals: Iterable[tuple[datetime, datetime]]) -> AgreedServiceTime:
    """Agreed service time from (start, end) intervals, e.g. the open hours of a business calendar."""
    return AgreedServiceTime(intervals=tuple(Interval(start, end) for start, end in intervals))


@dataclass(frozen=True)
class ServiceRecord:
    """Everything the availability of one business service is computed from."""

    outages: tuple[OutageSignal, ...]
    maintenance: tuple[Interval, ...] = ()
    agreed: AgreedServiceTime = AgreedServiceTime(intervals=None)
    weights: ImpactWeights = ImpactWeights()
    # The merged timeline by `now`, built once per record: one set of figures asks for it several times.
    _timelines: dict[int, dict[Impact, list[Span]]] = field(
        default_factory=dict, init=False, compare=False, hash=False, repr=False
    )

    def __post_init__(self) -> None:
        # Callers hand in lists; a frozen record must not share a list someone else can still mutate.
        object.__setattr__(self, "outages", tuple(self.outages))
        object.__setattr__(self, "maintenance", tuple(self.maintenance))


@dataclass(frozen=True)
class Period:
    """A reporting period [start, end) in UTC, with the label it was asked for by."""

    start: datetime
    end: datetime
    label: str = ""

    def __post_init__(self) -> None:
        _check_order(self.start, self.end, "period", InvalidInterval)

    def span(self) -> Span:
        """The period in epoch seconds."""
        return _epoch(self.start, "period start"), _epoch(self.end, "period end")


def _zone(tz: str) -> ZoneInfo:
    """The IANA time zone of a service."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidPeriod(f"unknown time zone {tz!r}") from exc


def calendar_month(month: str, *, tz: str) -> Period:
    """The calendar month "YYYY-MM" in the service's time zone, as a UTC period (DST included)."""
    match = _MONTH.fullmatch(month)
    if match is None or not 1 <= int(match[2]) <= 12:
        raise InvalidPeriod(f"a month is written YYYY-MM with MM from 01 to 12, got {month!r}")
    year, number, zone = int(match[1]), int(match[2]), _zone(tz)
    try:
        # Local midnights converted to UTC: the month is one hour longer or shorter across a DST change.
        start = datetime(year, number, 1, tzinfo=zone).astimezone(UTC)
        end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidPeriod(f"month {month!r} is out of the supported range") from exc
    return Period(start, end, label=month)


def month_of(moment: datetime, *, tz: str) -> str:
    """The calendar month "YYYY-MM" an instant falls in, in the service's time zone."""
    _epoch(moment, "moment")
    return moment.astimezone(_zone(tz)).strftime("%Y-%m")


def months_overlapping(start: datetime, end: datetime, *, tz: str) -> list[str]:
    """The calendar months in `tz` that share time with [start, end), oldest first."""
    _check_order(start, end, "stretch", InvalidInterval)
    months: list[str] = []
    label = month_of(start, tz=tz)
    while True:
        period = calendar_month(label, tz=tz)
        if period.start >= end and months:
            return months
        months.append(label)
        label = month_of(period.end, tz=tz)


def rolling_days(days: int, *, now: datetime) -> Period:
    """The last `days` days of 24 hours ending at `now`."""
    if days <= 0:
        raise InvalidPeriod(f"a rolling period needs a positive number of days, got {days}")
    end = _epoch(now, "now")
    return Period(_datetime(end - days * _DAY), _datetime(end), label=f"{days}d")


def parse_period(spec: str, *, tz: str, now: datetime) -> Period:
    """A period from "YYYY-MM" (a calendar month in `tz`) or "7d", "30d", "90d" (rolling, ending at now)."""
    rolling = _ROLLING.fullmatch(spec)
    if rolling is None:
        return calendar_month(spec, tz=tz)
    if int(rolling[1]) not in ROLLING_DAYS:
        allowed = ", ".join(f"{days}d" for days in ROLLING_DAYS)
        raise InvalidPeriod(f"rolling periods are {allowed}, got {spec!r}")
    return rolling_days(int(rolling[1]), now=now)


def _union(spans: Iterable[Span]) -> list[Span]:
    """Sorted, disjoint, non-adjacent spans covering the same time; empty spans dropped."""
    merged: list[Span] = []
    for start, end in sorted(span for span in spans if span[0] < span[1]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _intersect(left: Sequence[Span], right: Sequence[Span]) -> list[Span]:
    """The time two sorted disjoint span lists have in common."""
    common: list[Span] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start, end = max(left[i][0], right[j][0]), min(left[i][1], right[j][1])
        if start < end:
            common.append((start, end))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return common


def _subtract(spans: Sequence[Span], cuts: Sequence[Span]) -> list[Span]:
    """The time of sorted disjoint `spans` outside sorted disjoint `cuts`."""
    kept: list[Span] = []
    first = 0
    for start, end in spans:
        # One sweep over both lists: cuts ending before this span cannot touch the later ones either.
        while first < len(cuts) and cuts[first][1] <= start:
            first += 1
        index = first
        while index < len(cuts) and cuts[index][0] < end:
            cut_start, cut_end = cuts[index]
            if start < cut_start:
                kept.append((start, cut_start))
            start = max(start, cut_end)
            index += 1
        if start < end:
            kept.append((start, end))
    return kept


def _length(spans: Iterable[Span]) -> int:
    """Total seconds of disjoint spans."""
    return sum(end - start for start, end in spans)


def _signal_span(signal: OutageSignal, now: int) -> Span:
    """The outage as it stands at `now`; open outages run to `now` and nothing later counts."""
    # ITIL: downtime counts from impact start, not from when a ticket or alert was created.
    start = _epoch(signal.started_at, "outage start")
    end = now if signal.ended_at is None else min(_epoch(signal.ended_at, "outage end"), now)
    return start, end


def _windows(record: ServiceRecord) -> list[Span]:
    """The maintenance windows, merged."""
    return _union(window.span() for window in record.maintenance)


def _levels(record: ServiceRecord, now: int) -> dict[Impact, list[Span]]:
    """The merged timeline: for each impact level, where it is the worst one, outside maintenance."""
    cached = record._timelines.get(now)
    if cached is None:
        cached = record._timelines[now] = _merge_levels(record, now)
    return cached


def _merge_levels(record: ServiceRecord, now: int) -> dict[Impact, list[Span]]:
    """The merged timeline, computed (see _levels)."""
    levels: dict[Impact, list[Span]] = {}
    worse = _windows(record)
    for impact in _WORST_FIRST:
        own = _union(_signal_span(s, now) for s in record.outages if s.impact == impact)
        levels[impact] = _subtract(own, worse)
        worse = _union([*worse, *own])
    return levels


def _failing(record: ServiceRecord, levels: dict[Impact, list[Span]]) -> list[Span]:
    """The failures: merged stretches whose worst impact weighs more than nothing."""
    return _union(span for impact, spans in levels.items() if record.weights.of(impact) > 0 for span in spans)


def _still_failing(record: ServiceRecord, now: int) -> bool:
    """Whether a signal that weighs something was still open at `now`."""
    return any(
        record.weights.of(s.impact) > 0
        and _epoch(s.started_at, "outage start") < now
        and (s.ended_at is None or _epoch(s.ended_at, "outage end") > now)
        for s in record.outages
    )


@dataclass(frozen=True)
class DowntimeSegment:
    """A stretch of the merged timeline with the worst impact reported over it."""

    start: datetime
    end: datetime
    impact: Impact


@dataclass(frozen=True)
class Failure:
    """One failure of the service; `restored_at` is None while it lasts."""

    started_at: datetime
    restored_at: datetime | None


def downtime_timeline(record: ServiceRecord, *, now: datetime) -> tuple[DowntimeSegment, ...]:
    """The service's outages merged into one timeline up to `now`, worst impact first, windows removed."""
    levels = _levels(record, _epoch(now, "now"))
    segments = [(span, impact) for impact, spans in levels.items() for span in spans]
    return tuple(DowntimeSegment(_datetime(s), _datetime(e), impact) for (s, e), impact in sorted(segments))


def _failure_spans(record: ServiceRecord, now: int) -> list[tuple[Span, bool]]:
    """Each failure's span and whether it has been restored."""
    spans = _failing(record, _levels(record, now))
    ongoing = bool(spans) and spans[-1][1] == now and _still_failing(record, now)
    return [(span, not (ongoing and index == len(spans) - 1)) for index, span in enumerate(spans)]


def failures(record: ServiceRecord, *, now: datetime) -> tuple[Failure, ...]:
    """The service's failures up to `now`, oldest first."""
    return tuple(
        Failure(_datetime(start), _datetime(end) if restored else None)
        for (start, end), restored in _failure_spans(record, _epoch(now, "now"))
    )


def _check_objective(objective: float) -> None:
    """Reject an objective of 100 % or more (no budget to burn) or of 0 % or less."""
    if not 0.0 < objective < 1.0:
        raise InvalidObjective(f"an objective is strictly between 0 and 1 (e.g. 0.999), got {objective}")


@dataclass(frozen=True)
class _Measure:
    """Seconds of agreed time, maintenance, downtime and weighted downtime within one span."""

    agreed: int
    maintenance: int
    downtime: int
    weighted: float


def _served(record: ServiceRecord, start: int, end: int) -> list[Span]:
    """Agreed service time within [start, end), maintenance windows taken out."""
    return _subtract(record.agreed.spans(start, end), _windows(record))


def _measure(record: ServiceRecord, span: Span, now: int) -> _Measure:
    """Agreed time, maintenance and downtime of the service within `span`, up to `now`."""
    start, end = span[0], max(span[0], min(span[1], now))
    agreed, windows = record.agreed.spans(start, end), _windows(record)
    served = _subtract(agreed, windows)
    levels = _levels(record, now)
    weighted = sum(record.weights.of(i) * _length(_intersect(spans, served)) for i, spans in levels.items())
    # Weights are at most 1 and levels are disjoint, so this only absorbs float rounding.
    return _Measure(
        agreed=_length(served),
        maintenance=_length(_intersect(agreed, windows)),
        downtime=_length(_intersect(_failing(record, levels), served)),
        weighted=min(float(_length(served)), weighted),
    )


def _ratio(agreed: int, weighted: float) -> float | None:
    """(agreed - weighted downtime) / agreed, clamped to [0, 1]; None without agreed time."""
    if agreed == 0:
        return None
    return min(1.0, max(0.0, (agreed - weighted) / agreed))


def _mean(values: Sequence[int]) -> float | None:
    """The mean, or None when there is nothing to average."""
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class ErrorBudget:
    """How much downtime an objective allows over a whole period, and how much of it is left."""

    objective: float
    agreed_seconds: int
    allowed_seconds: float
    consumed_seconds: float
    # Negative once the budget is overspent, so the overspend shows; the ratio is clamped to [0, 1].
    remaining_seconds: float
    remaining_ratio: float | None


def error_budget(record: ServiceRecord, *, period: Period, now: datetime, objective: float) -> ErrorBudget:
    """The error budget of the whole period for `objective`, consumed up to `now`."""
    _check_objective(objective)
    span = period.span()
    # The budget is the whole period's, future included; only the spending stops at `now`.
    agreed = _length(_served(record, *span))
    allowed = (1.0 - objective) * agreed
    consumed = _measure(record, span, _epoch(now, "now")).weighted
    remaining = allowed - consumed
    ratio = None if allowed == 0 else min(1.0, max(0.0, remaining / allowed))
    return ErrorBudget(objective, agreed, allowed, consumed, remaining, ratio)


@dataclass(frozen=True)
class AvailabilityFigures:
    """The availability of one business service over one period, as of `now`."""

    period: Period
    agreed_seconds: int
    maintenance_seconds: int
    downtime_seconds: int
    weighted_downtime_seconds: float
    availability: float | None
    outages: int
    mtrs_seconds: float | None
    mtbf_seconds: float | None
    mtbsi_seconds: float | None
    budget: ErrorBudget | None


def availability_figures(
    record: ServiceRecord, *, period: Period, now: datetime, objective: float | None = None
) -> AvailabilityFigures:
    """Availability, outage count, MTRS, MTBF, MTBSI and (for an objective) the error budget of a period."""
    (start, end), now_s = period.span(), _epoch(now, "now")
    measure = _measure(record, (start, end), now_s)
    spans = _failure_spans(record, now_s)
    pairs = [(a, b) for (a, _), (b, _) in pairwise(spans) if start <= b[0] < end]
    return AvailabilityFigures(
        period=period,
        agreed_seconds=measure.agreed,
        maintenance_seconds=measure.maintenance,
        downtime_seconds=measure.downtime,
        weighted_downtime_seconds=measure.weighted,
        availability=_ratio(measure.agreed, measure.weighted),
        outages=sum(1 for (s, _), _ in spans if start <= s < end),
        mtrs_seconds=_mean([e - s for (s, e), restored in spans if restored and start <= e < end]),
        mtbf_seconds=_mean([b[0] - a[1] for a, b in pairs]),
        mtbsi_seconds=_mean([b[0] - a[0] for a, b in pairs]),
        budget=None
        if objective is None
        else error_budget(record, period=period, now=now, objective=objective),
    )


def burn_rate(record: ServiceRecord, *, window: timedelta, now: datetime, objective: float) -> float | None:
    """How many times the allowed rate the window ending at `now` burned; None without agreed time."""
    _check_objective(objective)
    end = _epoch(now, "now")
    measure = _measure(record, (end - window // _SECOND, end), end)
    ratio = None if measure.agreed == 0 else measure.weighted / measure.agreed
    return None if ratio is None else ratio / (1.0 - objective)


@dataclass(frozen=True)
class BurnRates:
    """Burn rates over the usual windows ending at `now`."""

    one_hour: float | None
    six_hours: float | None
    one_day: float | None
    three_days: float | None


def burn_rates(record: ServiceRecord, *, now: datetime, objective: float) -> BurnRates:
    """Burn rates over the last 1 hour, 6 hours, 1 day and 3 days."""

    def over(hours: int) -> float | None:
        return burn_rate(record, window=timedelta(hours=hours), now=now, objective=objective)

    return BurnRates(one_hour=over(1), six_hours=over(6), one_day=over(24), three_days=over(72))


@dataclass(frozen=True)
class BurnAlert:
    """A multiwindow burn-rate alert: it fires while both windows burn faster than the threshold."""

    name: str
    long_window: timedelta
    short_window: timedelta
    threshold: float
    severity: str


# Google SRE workbook, "Alerting on SLOs": 2 % of a 30-day budget in 1 h, 5 % in 6 h. The short window
# (1/12 of the long one) lets the alert stop soon after the service recovers.
FAST_BURN = BurnAlert("fast-burn", timedelta(hours=1), timedelta(minutes=5), 14.4, "page")
SLOW_BURN = BurnAlert("slow-burn", timedelta(hours=6), timedelta(minutes=30), 6.0, "page")
SRE_BURN_ALERTS = (FAST_BURN, SLOW_BURN)


def _fires(record: ServiceRecord, alert: BurnAlert, *, now: datetime, objective: float) -> bool:
    """Whether both of an alert's windows burn faster than its threshold."""
    windows = (alert.long_window, alert.short_window)
    rates = [burn_rate(record, window=w, now=now, objective=objective) for w in windows]
    return all(rate is not None and rate > alert.threshold for rate in rates)


def exceeded_burn_alerts(
    record: ServiceRecord,
    *,
    now: datetime,
    objective: float,
    alerts: Sequence[BurnAlert] = SRE_BURN_ALERTS,
) -> tuple[BurnAlert, ...]:
    """The burn-rate alerts whose thresholds are exceeded at `now`."""
    return tuple(alert for alert in alerts if _fires(record, alert, now=now, objective=objective))
