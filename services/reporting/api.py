"""HTTP routes of the reporting service: scorecards, breakdowns, trends and watermelons, as JSON or CSV."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from bothways.db import Connection
from bothways.scheduler import Clock, utc_now
from bothways.web import Conn, ReadScope, RuntimeDep
from services.reporting import reports, store, tables
from services.reporting.periods import Period
from services.reporting.reports import ScorecardList, ServiceScorecard, WatermelonReport
from services.reporting.scorecard import Breakdown, ScorecardRules, Trend
from services.reporting.tickets import TicketCounts, ticket_counts

router = APIRouter(tags=["reports"], dependencies=[ReadScope])

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}}}


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"


class Dimension(StrEnum):
    ASSIGNMENT_GROUP = "assignment_group"
    PRIORITY = "priority"


async def get_snapshot(conn: Conn) -> AsyncIterator[Connection]:
    """The request's connection inside one read-only snapshot (see reports.snapshot)."""
    async with reports.snapshot(conn) as snapshot:
        yield snapshot


Snapshot = Annotated[Connection, Depends(get_snapshot)]


async def get_rules(runtime: RuntimeDep) -> ScorecardRules:
    rules: ScorecardRules = runtime.extras["scorecard_rules"]
    return rules


async def get_now(runtime: RuntimeDep) -> datetime:
    clock: Clock = runtime.extras.get("clock", utc_now)
    return clock()


Rules = Annotated[ScorecardRules, Depends(get_rules)]
Now = Annotated[datetime, Depends(get_now)]


async def get_period(
    now: Now,
    period: Annotated[
        str | None,
        Query(description="a month as YYYY-MM (UTC); the current month when left out", examples=["2026-10"]),
    ] = None,
) -> Period:
    return Period.of(now) if period is None else Period.parse(period, now=now)


async def get_format(
    request: Request,
    format: Annotated[
        Format | None, Query(description="csv, or json (the default); or send Accept: text/csv")
    ] = None,
) -> Format:
    if format is not None:
        return format
    return Format.CSV if "text/csv" in request.headers.get("accept", "") else Format.JSON


ReportPeriod = Annotated[Period, Depends(get_period)]
ReportFormat = Annotated[Format, Depends(get_format)]
# No control characters: PostgreSQL text cannot hold NUL, and no business service name has them.
NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"
Service = Annotated[
    str,
    Path(min_length=1, max_length=200, pattern=NAME_PATTERN, description="a business service, e.g. email"),
]


def csv_response(rows: list[dict[str, Any]], *, columns: tuple[str, ...], filename: str) -> Response:
    """A CSV download."""
    return Response(
        tables.to_csv(rows, columns=columns),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}.csv"'},
    )


@router.get("/reports/tickets", response_model=TicketCounts)
async def read_ticket_counts(conn: Conn) -> TicketCounts:
    """How many tickets are in each status category right now."""
    return ticket_counts(await store.tickets_by_status_category(conn))


@router.get("/scorecards", response_model=ScorecardList, responses=CSV_RESPONSE)
async def read_scorecards(
    conn: Snapshot, period: ReportPeriod, rules: Rules, now: Now, format: ReportFormat
) -> ScorecardList | Response:
    """Every business service's scorecard for a month, best experience score first."""
    listed = await reports.scorecards(conn, period=period, rules=rules, now=now)
    if format is Format.CSV:
        rows = tables.scorecard_rows(listed.scorecards)
        return csv_response(rows, columns=tables.SCORECARD_COLUMNS, filename=f"scorecards-{period}")
    return listed


@router.get("/scorecards/{service}", response_model=ServiceScorecard, responses=CSV_RESPONSE)
async def read_scorecard(
    conn: Snapshot, service: Service, period: ReportPeriod, rules: Rules, now: Now, format: ReportFormat
) -> ServiceScorecard | Response:
    """One business service's scorecard for a month, with breakdowns by assignment group and priority."""
    card = await reports.service_scorecard(conn, service=service, period=period, rules=rules, now=now)
    if format is Format.CSV:
        rows = [tables.scorecard_row(card)]
        return csv_response(rows, columns=tables.SCORECARD_COLUMNS, filename=f"scorecard-{period}")
    return card


@router.get("/scorecards/{service}/breakdowns/{by}", response_model=Breakdown, responses=CSV_RESPONSE)
async def read_breakdown(
    conn: Snapshot, service: Service, by: Dimension, period: ReportPeriod, rules: Rules, format: ReportFormat
) -> Breakdown | Response:
    """A service's month per assignment group or per priority; small groups' figures withheld."""
    found = await reports.service_breakdown(conn, service=service, period=period, by=by.value, rules=rules)
    if format is Format.CSV:
        rows = tables.breakdown_rows(found)
        return csv_response(rows, columns=tables.BREAKDOWN_COLUMNS, filename=f"breakdown-{by.value}-{period}")
    return found


@router.get("/scorecards/{service}/trend", response_model=Trend, responses=CSV_RESPONSE)
async def read_trend(
    conn: Snapshot,
    service: Service,
    period: ReportPeriod,
    rules: Rules,
    now: Now,
    format: ReportFormat,
    months: Annotated[int, Query(ge=2, le=36, description="how many months, ending with the period")] = 12,
) -> Trend | Response:
    """A service's figures month by month, each change marked when it exceeds the statistical noise."""
    found = await reports.service_trend(
        conn, service=service, period=period, months=months, rules=rules, now=now
    )
    if format is Format.CSV:
        return csv_response(
            tables.trend_rows(found), columns=tables.TREND_COLUMNS, filename=f"trend-{period}"
        )
    return found


@router.get("/watermelons", response_model=WatermelonReport, responses=CSV_RESPONSE)
async def read_watermelons(
    conn: Snapshot,
    period: ReportPeriod,
    rules: Rules,
    now: Now,
    format: ReportFormat,
    service: Annotated[
        str | None,
        Query(min_length=1, max_length=200, pattern=NAME_PATTERN, description="one business service"),
    ] = None,
) -> WatermelonReport | Response:
    """Services green on SLAs but red with customers, and the tickets with met SLAs and unhappy answers."""
    found = await reports.watermelons(conn, period=period, rules=rules, now=now, service=service)
    if format is Format.CSV:
        rows = tables.watermelon_rows(found)
        return csv_response(rows, columns=tables.WATERMELON_COLUMNS, filename=f"watermelons-{period}")
    return found
