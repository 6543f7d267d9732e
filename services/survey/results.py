"""Survey results: reporting periods, and the figures of counted answers, gated on a minimum response count.

A period counts invitations by when they were sent and responses by when they were first answered
(with the latest score), in UTC. Figures of a breakdown with fewer responses than the minimum are
reported as too few: no percentage, no interval, no mean and no band counts (which could single out
a person's answer), only how many invitations and responses there were.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from services.survey.scoring import (
    CsatScale,
    CsatTally,
    NpsTally,
    csat_figure,
    nps_figure,
    response_rate,
)

_YEAR: Final = re.compile(r"(\d{4})")
_QUARTER: Final = re.compile(r"(\d{4})-Q([1-4])")
_MONTH: Final = re.compile(r"(\d{4})-(\d{2})")
_DAY: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_LAST_DAYS: Final = re.compile(r"(\d{1,4})d")
_RANGE: Final = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")
PERIOD_FORMATS: Final = (
    "YYYY, YYYY-Qn, YYYY-MM, YYYY-MM-DD, YYYY-MM-DD..YYYY-MM-DD (both days included) or Nd (the last N days)"
)


class InvalidPeriod(ValueError):
    """A period that is not one of the accepted forms."""


@dataclass(frozen=True)
class Period:
    """A half-open UTC interval [start, end) and how it was asked for."""

    label: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Count:
    """One row of counts: invitations sent and responses of one kind, scale and band (and breakdown key)."""

    breakdown: str | None
    kind: str
    scale: str | None
    band: str | None
    sent: int
    responses: int
    score_sum: int


def parse_period(text: str, *, now: datetime) -> Period:
    """A period from its text; InvalidPeriod names the accepted forms."""
    text = text.strip()
    try:
        start, end = _bounds(text, now=now)
    except ValueError as exc:
        raise InvalidPeriod(f"period {text!r} is not valid: use {PERIOD_FORMATS}") from exc
    if end <= start:
        raise InvalidPeriod(f"period {text!r} ends before it starts")
    return Period(text, start, end)


def _bounds(text: str, *, now: datetime) -> tuple[datetime, datetime]:
    if match := _LAST_DAYS.fullmatch(text):
        if int(match[1]) < 1:
            raise ValueError("at least one day")
        return now - timedelta(days=int(match[1])), now
    if match := _RANGE.fullmatch(text):
        return _midnight(date.fromisoformat(match[1])), _midnight(date.fromisoformat(match[2])) + timedelta(
            days=1
        )
    if _DAY.fullmatch(text):
        day = _midnight(date.fromisoformat(text))
        return day, day + timedelta(days=1)
    if match := _MONTH.fullmatch(text):
        first = date(int(match[1]), int(match[2]), 1)
        return _midnight(first), _midnight(_add_months(first, 1))
    if match := _QUARTER.fullmatch(text):
        first = date(int(match[1]), 3 * int(match[2]) - 2, 1)
        return _midnight(first), _midnight(_add_months(first, 3))
    if match := _YEAR.fullmatch(text):
        return _midnight(date(int(match[1]), 1, 1)), _midnight(date(int(match[1]) + 1, 1, 1))
    raise ValueError(text)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _add_months(first: date, months: int) -> date:
    index = first.month - 1 + months
    return date(first.year + index // 12, index % 12 + 1, 1)


def figures(counts: Iterable[Count], *, min_responses: int) -> dict[str, Any]:
    """The CSAT and NPS figures of one set of counts."""
    rows = list(counts)
    return {
        "csat": _csat([r for r in rows if r.kind == "csat"], min_responses=min_responses),
        "nps": _nps([r for r in rows if r.kind == "nps"], min_responses=min_responses),
    }


def breakdown(counts: Iterable[Count], *, min_responses: int) -> list[dict[str, Any]]:
    """Figures per breakdown key, in key order; the key of tickets that named none is null."""
    groups: dict[str | None, list[Count]] = {}
    for row in counts:
        groups.setdefault(row.breakdown, []).append(row)
    ordered = sorted(groups, key=lambda key: (key is None, key or ""))
    return [{"key": key, **figures(groups[key], min_responses=min_responses)} for key in ordered]


def _csat(rows: list[Count], *, min_responses: int) -> dict[str, Any]:
    per_band = _sum_by_band(rows)
    five_point = [r for r in rows if r.scale == CsatScale.FIVE_POINT.value and r.band]
    tally = CsatTally(
        scale=CsatScale.FIVE_POINT,
        satisfied=per_band.get("satisfied", 0),
        neutral=per_band.get("neutral", 0),
        dissatisfied=per_band.get("dissatisfied", 0),
        score_sum=0,
    )
    figure = csat_figure(tally, min_responses=min_responses)
    five_point_responses = sum(r.responses for r in five_point)
    # The mean is of 1-5 answers only: a two-point "good" (2) is not a five-point "dissatisfied" (2).
    mean = (
        sum(r.score_sum for r in five_point) / five_point_responses
        if figure.sufficient and five_point_responses
        else None
    )
    return {
        **_volume(rows, responses=tally.responses, min_responses=min_responses),
        "csat_percent": figure.csat,
        "interval": _interval(figure.interval),
        "mean_score": mean,
        "bands": {"satisfied": tally.satisfied, "neutral": tally.neutral, "dissatisfied": tally.dissatisfied}
        if figure.sufficient
        else None,
    }


def _nps(rows: list[Count], *, min_responses: int) -> dict[str, Any]:
    per_band = _sum_by_band(rows)
    tally = NpsTally(
        promoters=per_band.get("promoter", 0),
        passives=per_band.get("passive", 0),
        detractors=per_band.get("detractor", 0),
    )
    figure = nps_figure(tally, min_responses=min_responses)
    return {
        **_volume(rows, responses=tally.responses, min_responses=min_responses),
        "nps": figure.nps,
        "interval": _interval(figure.interval),
        "bands": {"promoters": tally.promoters, "passives": tally.passives, "detractors": tally.detractors}
        if figure.sufficient
        else None,
    }


def _volume(rows: list[Count], *, responses: int, min_responses: int) -> dict[str, Any]:
    sent = sum(r.sent for r in rows)
    return {
        "invitations_sent": sent,
        "responses": responses,
        "response_rate_percent": response_rate(responses=responses, invitations=sent),
        "too_few_responses": responses < min_responses,
    }


def _sum_by_band(rows: list[Count]) -> Mapping[str, int]:
    sums: dict[str, int] = {}
    for row in rows:
        if row.band:
            sums[row.band] = sums.get(row.band, 0) + row.responses
    return sums


def _interval(interval: Any) -> dict[str, float] | None:
    return None if interval is None else {"lower": interval.lower, "upper": interval.upper}
