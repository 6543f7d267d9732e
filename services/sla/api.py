"""HTTP routes of the sla service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel

from bothways.errors import InvalidInput, NotFound
from bothways.scheduler import utc_now
from bothways.web import AdminScope, Conn, ReadScope
from services.sla import configuration, reads, store, tracker

router = APIRouter(dependencies=[ReadScope])

TicketKey = Path(min_length=3, max_length=300, pattern=r"^[a-z0-9_-]+:.+$", examples=["jira:SUP-42"])
State = Literal["running", "paused", "met", "breached", "cancelled"]
MetricName = Literal["first_response", "resolution"]
PriorityName = Literal["P1", "P2", "P3", "P4", "P5"]


class HistoryEntry(BaseModel):
    event_id: str
    occurred_at: datetime
    change: str
    status_category: str
    recorded_at: datetime


class TicketOut(BaseModel):
    ticket_key: str
    as_of: datetime
    status_category: str
    current: dict[str, Any]
    policy: str | None
    policy_version: int | None
    calendar_versions: dict[str, int]
    history: list[HistoryEntry]


class MarkOut(BaseModel):
    percent: float
    at: datetime
    retroactive: bool


class PauseOut(BaseModel):
    start: datetime
    end: datetime | None
    reason: str
    kind: str


class TimerOut(BaseModel):
    timer_key: str
    metric: str
    cycle: int
    priority: str | None
    policy: str
    policy_version: int
    calendar: str
    state: str
    started_at: datetime
    attached_at: datetime
    stopped_at: datetime | None
    due_at: datetime
    breached_at: datetime | None
    breach_retroactive: bool
    superseded: bool
    target: str
    target_business_seconds: int
    business_elapsed_seconds: int
    paused_business_seconds: int
    actual_elapsed_seconds: int
    remaining_business_seconds: int
    overdue_business_seconds: int
    percent_elapsed: float
    warnings: list[MarkOut]
    pending_warnings: list[MarkOut]
    pauses: list[PauseOut]
    explanation: list[str]


class MetricSummaryOut(BaseModel):
    metric: str
    cycles: int
    last_cycle_breached: bool
    ever_breached: bool


class EmissionOut(BaseModel):
    event_id: str
    timer_key: str
    kind: str
    occurred_at: datetime
    threshold_percent: float | None
    retroactive: bool
    emitted_at: datetime


class TicketSlasOut(BaseModel):
    ticket_key: str
    evaluated_at: datetime
    policy: str | None
    policy_version: int | None
    calendar_versions: dict[str, int]
    timers: list[TimerOut]
    summary: list[MetricSummaryOut]
    audit: list[EmissionOut]


class StoredTimerOut(BaseModel):
    ticket_key: str
    timer_key: str
    metric: str
    cycle: int
    priority: str | None
    policy: str
    policy_version: int
    calendar: str
    state: str
    started_at: datetime
    stopped_at: datetime | None
    due_at: datetime
    breached_at: datetime | None
    target_business_seconds: int
    business_elapsed_seconds: int
    evaluated_at: datetime
    business_service: str | None
    assignment_group: str | None
    assignee: str | None


class TimerPage(BaseModel):
    items: list[StoredTimerOut]
    next_cursor: str | None


class AtRiskOut(StoredTimerOut):
    remaining_business_seconds: int


class VersionedDefinition(BaseModel):
    name: str
    version: int
    created_at: datetime
    definition: dict[str, Any]


@router.get("/tickets/{ticket_key}", response_model=TicketOut, tags=["tickets"])
async def read_ticket(conn: Conn, ticket_key: str = TicketKey) -> dict[str, Any]:
    """A ticket's current state (its newest snapshot by occurred_at) and its history."""
    ticket = await store.ticket_with_history(conn, ticket_key=ticket_key)
    if ticket is None:
        raise NotFound(f"no ticket {ticket_key!r} has been seen")
    return ticket


@router.get("/tickets/{ticket_key}/slas", response_model=TicketSlasOut, tags=["slas"])
async def read_ticket_slas(conn: Conn, ticket_key: str = TicketKey) -> dict[str, Any]:
    """The SLA timers of one ticket now, with elapsed and remaining business time, explained."""
    return await reads.ticket_slas(conn, ticket_key=ticket_key, now=utc_now())


@router.post(
    "/tickets/{ticket_key}/slas:recalculate",
    response_model=TicketSlasOut,
    tags=["slas"],
    dependencies=[AdminScope],
)
async def recalculate_ticket_slas(conn: Conn, ticket_key: str = TicketKey) -> dict[str, Any]:
    """Move a ticket's timers to the policy and calendar versions now in force, announcing the changes."""
    async with conn.transaction():
        if not await tracker.recalculate(conn, ticket_key=ticket_key, now=utc_now()):
            raise NotFound(f"no ticket {ticket_key!r} has been seen")
    return await reads.ticket_slas(conn, ticket_key=ticket_key, now=utc_now())


@router.get("/slas", response_model=TimerPage, tags=["slas"])
async def list_slas(
    conn: Conn,
    state: State | None = None,
    business_service: Annotated[str | None, Query(max_length=200)] = None,
    priority: PriorityName | None = None,
    metric: MetricName | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[
        str | None, Query(max_length=700, description="next_cursor of the previous page")
    ] = None,
) -> dict[str, Any]:
    """Stored timers, filtered, in pages."""
    return await reads.timer_page(
        conn,
        state=state,
        business_service=business_service,
        priority=priority,
        metric=metric,
        limit=limit,
        cursor=cursor,
    )


@router.get("/slas/at-risk", response_model=list[AtRiskOut], tags=["slas"])
async def list_at_risk(
    conn: Conn,
    business_service: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    """Running timers, the soonest to breach first, with their remaining business time."""
    return await reads.at_risk(conn, business_service=business_service, limit=limit, now=utc_now())


@router.get("/calendars", response_model=list[VersionedDefinition], tags=["configuration"])
async def read_calendars(conn: Conn) -> list[dict[str, Any]]:
    """The latest version of every business calendar."""
    return await configuration.current_calendars(conn)


@router.put(
    "/calendars", response_model=list[VersionedDefinition], tags=["configuration"], dependencies=[AdminScope]
)
async def write_calendars(
    conn: Conn, calendars: Annotated[list[dict[str, Any]], Body(embed=True, max_length=200)]
) -> list[dict[str, Any]]:
    """Add or change calendars; a changed definition becomes the calendar's next version."""
    async with conn.transaction():
        return await configuration.put_calendars(conn, definitions=calendars)


@router.get("/policies", response_model=list[VersionedDefinition], tags=["configuration"])
async def read_policies(conn: Conn) -> list[dict[str, Any]]:
    """The policies in force, in the order they are tried."""
    return await configuration.current_policies(conn)


@router.put(
    "/policies", response_model=list[VersionedDefinition], tags=["configuration"], dependencies=[AdminScope]
)
async def write_policies(
    conn: Conn, policies: Annotated[list[dict[str, Any]], Body(embed=True, min_length=1, max_length=200)]
) -> list[dict[str, Any]]:
    """Put policies in force, in order; a changed policy needs a new version number."""
    async with conn.transaction():
        return await configuration.put_policies(conn, definitions=policies)


class SimulationIn(BaseModel):
    policy: dict[str, Any]


@router.post("/policies/{name}:simulate", tags=["configuration"], dependencies=[AdminScope])
async def simulate_policy(
    conn: Conn,
    body: SimulationIn,
    name: Annotated[str, Path(min_length=1, max_length=200)],
    period: Annotated[str, Query(pattern=r"^(19|2[01])\d\d-(0[1-9]|1[0-2])$", examples=["2026-10"])],
) -> dict[str, Any]:
    """How a draft of a policy would have scored on the tickets created in a month (UTC); nothing is emitted."""
    start, end = month_bounds(period)
    return await reads.simulate_policy(
        conn, name=name, definition=body.policy, start=start, end=end, now=utc_now()
    )


def month_bounds(period: str) -> tuple[datetime, datetime]:
    """The first instant of a YYYY-MM month in UTC and of the month after it."""
    year, month = (int(part) for part in period.split("-"))
    if not 1901 <= year <= 2198:
        raise InvalidInput(f"period: {period!r} is outside the years 1901 to 2198 that calendars cover")
    start = datetime(year, month, 1, tzinfo=UTC)
    return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
