"""HTTP routes of the survey service: campaigns, invitations, follow-ups and results (the pages are in pages.py)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from bothways.errors import Conflict, InvalidInput, NotFound
from bothways.scheduler import wake_scheduler
from bothways.web import AdminScope, Conn, ReadScope
from services.survey import campaigns, followups, results, store
from services.survey.followups import TicketAction
from services.survey.runtime import SurveyDep

router = APIRouter(dependencies=[ReadScope])

Limit = Annotated[int, Query(ge=1, le=1000, description="at most this many items")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="skip this many items")]


def _storable(text: str | None) -> str | None:
    """PostgreSQL stores neither NUL characters nor unpaired surrogates: refused here, naming the field."""
    if text is not None and not store.storable(text):
        raise ValueError("must not contain NUL characters or unpaired surrogates")
    return text


Storable = AfterValidator(_storable)
Name = Annotated[str, Field(min_length=1, max_length=200), Storable]
FilterText = Annotated[str | None, Query(min_length=1, max_length=200), Storable]
Prose = Annotated[str, Storable]


# --- campaigns ----------------------------------------------------------------------------------------


class Population(BaseModel):
    """Who is asked: requesters with ticket activity in the last N days, optionally of some services or organisations."""

    model_config = ConfigDict(extra="forbid")

    active_within_days: int = Field(ge=1, le=3650, examples=[180])
    business_services: list[Name] = Field(default_factory=list, max_length=100)
    organizations: list[Name] = Field(default_factory=list, max_length=100)


class Schedule(BaseModel):
    """When: once at `start_at` (default: now), or every N days from then."""

    model_config = ConfigDict(extra="forbid")

    start_at: AwareDatetime | None = None
    every_days: int | None = Field(default=None, ge=1, le=3650, examples=[90])


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    population: Population
    schedule: Schedule = Field(default_factory=Schedule)
    question: Prose | None = Field(default=None, min_length=1, max_length=500)
    comment_prompt: Prose | None = Field(default=None, min_length=1, max_length=500)
    expiry_days: int | None = Field(default=None, ge=1, le=90, description="default: the rules' nps.expiry")

    @field_validator("name", "question", "comment_prompt")
    @classmethod
    def _not_blank(cls, text: str | None) -> str | None:
        if text is not None and not text.strip():
            raise ValueError("must not be blank")
        return text.strip() if text else text


class CampaignRun(BaseModel):
    run: int
    run_at: datetime
    population: int
    scheduled: int
    throttled: int


class CampaignOut(BaseModel):
    campaign_id: str
    name: str
    question: str
    comment_prompt: str
    active_within_days: int
    business_services: list[str]
    organizations: list[str]
    first_run_at: datetime
    every_days: int | None
    expiry_seconds: int
    next_run_at: datetime | None
    runs: int
    created_at: datetime
    stopped_at: datetime | None
    history: list[CampaignRun] = Field(default_factory=list)


CampaignId = Annotated[str, Path(min_length=1, max_length=100), Storable]


@router.post(
    "/campaigns", status_code=201, response_model=CampaignOut, dependencies=[AdminScope], tags=["campaigns"]
)
async def create_campaign(request: CampaignIn, conn: Conn, survey: SurveyDep) -> dict[str, Any]:
    """Start an NPS campaign: its population is invited at each run, within each person's fatigue budget."""
    rules = survey.rules
    now = survey.clock()
    spec = campaigns.CampaignSpec(
        name=request.name,
        active_within_days=request.population.active_within_days,
        business_services=sorted(set(request.population.business_services)),
        organizations=sorted(set(request.population.organizations)),
        first_run_at=max(request.schedule.start_at or now, now),
        every_days=request.schedule.every_days,
        question=request.question or rules.nps_question,
        comment_prompt=request.comment_prompt or rules.nps_comment_prompt,
        expiry=timedelta(days=request.expiry_days) if request.expiry_days else rules.nps_expiry,
    )
    async with conn.transaction():
        return dict(await campaigns.create_campaign(conn, spec=spec, now=now))


@router.get("/campaigns", response_model=list[CampaignOut], tags=["campaigns"])
async def list_campaigns(conn: Conn, limit: Limit = 100, offset: Offset = 0) -> list[dict[str, Any]]:
    """Campaigns, newest first."""
    return [dict(row) for row in await store.list_campaigns(conn, limit=limit, offset=offset)]


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut, tags=["campaigns"])
async def read_campaign(campaign_id: CampaignId, conn: Conn) -> dict[str, Any]:
    """A campaign and what each of its runs found and invited."""
    row = await store.campaign(conn, campaign_id=campaign_id)
    if row is None:
        raise NotFound(f"no campaign {campaign_id!r}")
    return {**row, "history": [dict(run) for run in await store.campaign_runs(conn, campaign_id=campaign_id)]}


@router.post(
    "/campaigns/{campaign_id}/stop", response_model=CampaignOut, dependencies=[AdminScope], tags=["campaigns"]
)
async def stop_campaign(campaign_id: CampaignId, conn: Conn, survey: SurveyDep) -> dict[str, Any]:
    """No further runs; invitations already scheduled are still sent."""
    row = await store.stop_campaign(conn, campaign_id=campaign_id, now=survey.clock())
    if row is None:
        raise NotFound(f"no campaign {campaign_id!r}")
    return dict(row)


# --- invitations --------------------------------------------------------------------------------------

InvitationState = Literal[
    "pending", "throttled", "canceled", "scheduled", "sending", "sent", "answered", "expired", "failed"
]


class DeliveryAttempt(BaseModel):
    attempt: int
    channel: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    error: str | None


class AnswerRevision(BaseModel):
    revision: int
    score: int
    reason: str | None
    comment: str | None
    answered_at: datetime


class InvitationOut(BaseModel):
    invitation_id: uuid.UUID
    kind: str
    state: str
    recipient_id: str | None
    created_at: datetime
    ticket_key: str | None
    cycle: int | None
    campaign_id: str | None
    campaign_run: int | None
    resurvey_of: uuid.UUID | None
    source: str | None
    business_service: str | None
    assignment_group: str | None
    assignee: str | None
    priority: str | None
    organization: str | None
    resolved_at: datetime | None
    rule: str | None
    scale: str | None
    reason_code: str | None
    reason: str | None
    send_at: datetime | None
    channel: str | None
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    expires_at: datetime | None
    failed_at: datetime | None
    expired_at: datetime | None
    score: int | None
    band: str | None
    answer_reason: str | None
    comment: str | None
    first_answered_at: datetime | None
    answered_at: datetime | None
    revision: int


class InvitationDetail(InvitationOut):
    delivery_attempts: list[DeliveryAttempt]
    answers: list[AnswerRevision]


InvitationId = Annotated[uuid.UUID, Path(description="an invitation id")]


def _invitation(row: store.Row) -> dict[str, Any]:
    return {**row, "recipient_id": row["person_id"]}


@router.get("/invitations", response_model=list[InvitationOut], tags=["invitations"])
async def list_invitations(
    conn: Conn,
    state: InvitationState | None = None,
    ticket_key: FilterText = None,
    campaign_id: FilterText = None,
    kind: Literal["csat", "nps"] | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """Invitations, newest first: `state=failed` lists the deliveries that gave up, `state=throttled` the budget's work."""
    rows = await store.list_invitations(
        conn,
        state=state,
        ticket_key=ticket_key,
        campaign_id=campaign_id,
        kind=kind,
        limit=limit,
        offset=offset,
    )
    return [_invitation(row) for row in rows]


@router.get("/invitations/{invitation_id}", response_model=InvitationDetail, tags=["invitations"])
async def read_invitation(invitation_id: InvitationId, conn: Conn) -> dict[str, Any]:
    """One invitation with every delivery attempt and every answer given."""
    row = await store.invitation(conn, invitation_id=invitation_id)
    if row is None:
        raise NotFound(f"no invitation {invitation_id}")
    return {
        **_invitation(row),
        "delivery_attempts": [dict(a) for a in await store.attempts(conn, invitation_id=invitation_id)],
        "answers": [dict(a) for a in await store.answers(conn, invitation_id=invitation_id)],
    }


@router.post(
    "/invitations/{invitation_id}/retry",
    response_model=InvitationOut,
    dependencies=[AdminScope],
    tags=["invitations"],
)
async def retry_invitation(invitation_id: InvitationId, conn: Conn, survey: SurveyDep) -> dict[str, Any]:
    """Send a failed invitation again (after fixing the mail server, say), with a fresh set of attempts."""
    async with conn.transaction():
        row = await store.retry_failed(conn, invitation_id=invitation_id, now=survey.clock())
        if row is None:
            if await store.invitation(conn, invitation_id=invitation_id) is None:
                raise NotFound(f"no invitation {invitation_id}")
            raise Conflict(
                f"the invitation {invitation_id} has not failed; only failed invitations are retried"
            )
        await wake_scheduler(conn)
    return _invitation(row)


# --- follow-ups ---------------------------------------------------------------------------------------


class FollowupOut(BaseModel):
    followup_id: uuid.UUID
    invitation_id: uuid.UUID
    state: str
    opened_at: datetime
    due_at: datetime
    overdue_at: datetime | None
    closed_at: datetime | None
    outcome: str | None
    note: str | None
    resurvey_invitation_id: uuid.UUID | None
    ticket_action: str | None
    ticket_action_state: str | None
    ticket_action_error: str | None
    kind: str
    ticket_key: str | None
    campaign_id: str | None
    recipient_id: str | None
    business_service: str | None
    assignment_group: str | None
    assignee: str | None
    priority: str | None
    score: int | None
    band: str | None
    reason: str | None
    comment: str | None


class CloseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Prose = Field(min_length=1, max_length=100, examples=["resolved", "contacted", "no_response"])
    note: Prose | None = Field(default=None, max_length=5000)
    resurvey: bool | None = Field(
        default=None, description="survey the person again; default: the rules' followup.resurvey"
    )
    ticket_action: TicketAction | None = Field(
        default=None, description="reopen or annotate the ticket (webhook)"
    )

    @field_validator("outcome")
    @classmethod
    def _not_blank(cls, outcome: str) -> str:
        if not outcome.strip():
            raise ValueError("must not be blank")
        return outcome.strip()


FollowupId = Annotated[uuid.UUID, Path(description="a follow-up id")]
FOLLOWUP_STATES = {"open": ["open"], "overdue": ["overdue"], "closed": ["closed"], None: ["open", "overdue"]}


def _followup(row: store.Row) -> dict[str, Any]:
    return {**row, "recipient_id": row["person_id"], "reason": row["answer_reason"]}


@router.get("/followups", response_model=list[FollowupOut], tags=["follow-ups"])
async def list_followups(
    conn: Conn,
    state: Literal["open", "overdue", "closed"] | None = Query(
        default=None, description="open (not yet due), overdue, closed; default: open and overdue"
    ),
    business_service: FilterText = None,
    group: FilterText = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """Follow-ups of unhappy answers, the soonest due first."""
    rows = await store.list_followups(
        conn,
        states=FOLLOWUP_STATES[state],
        business_service=business_service,
        group=group,
        limit=limit,
        offset=offset,
    )
    return [_followup(row) for row in rows]


@router.get("/followups/{followup_id}", response_model=FollowupOut, tags=["follow-ups"])
async def read_followup(followup_id: FollowupId, conn: Conn) -> dict[str, Any]:
    """One follow-up with the answer that opened it."""
    row = await store.followup(conn, followup_id=followup_id)
    if row is None:
        raise NotFound(f"no follow-up {followup_id}")
    return _followup(row)


@router.post(
    "/followups/{followup_id}/close",
    response_model=FollowupOut,
    dependencies=[AdminScope],
    tags=["follow-ups"],
)
async def close_followup(
    followup_id: FollowupId, request: CloseRequest, conn: Conn, survey: SurveyDep
) -> dict[str, Any]:
    """Close a follow-up with its outcome; optionally re-survey the person or reopen/annotate the ticket."""
    closing = followups.Closing(request.outcome, request.note, request.resurvey, request.ticket_action)
    async with conn.transaction():
        row = await followups.close(
            conn,
            followup_id=followup_id,
            closing=closing,
            policy=survey.rules.followup,
            ticket_webhook=survey.settings.ticket_webhook_url is not None,
            now=survey.clock(),
        )
    return _followup(row)


# --- results ------------------------------------------------------------------------------------------

GroupBy = Literal["business_service", "group", "assignee", "priority", "organization", "source"]


class Interval(BaseModel):
    lower: float
    upper: float


class CsatOut(BaseModel):
    invitations_sent: int
    responses: int
    response_rate_percent: float | None
    too_few_responses: bool
    csat_percent: float | None = Field(description="% satisfied (4-5, or good); null when too few")
    interval: Interval | None = Field(description="Wilson 95% interval")
    mean_score: float | None = Field(description="mean of 1-5 answers; null when too few")
    bands: dict[str, int] | None


class NpsOut(BaseModel):
    invitations_sent: int
    responses: int
    response_rate_percent: float | None
    too_few_responses: bool
    nps: float | None = Field(description="% promoters - % detractors; null when too few")
    interval: Interval | None = Field(description="adjusted-Wald 95% interval")
    bands: dict[str, int] | None


class Breakdown(BaseModel):
    key: str | None
    csat: CsatOut
    nps: NpsOut


class PeriodOut(BaseModel):
    label: str
    start: datetime
    end: datetime


class ResultsOut(BaseModel):
    period: PeriodOut
    filters: dict[str, str]
    min_responses: int
    csat: CsatOut
    nps: NpsOut
    by: str | None
    breakdown: list[Breakdown] | None


@router.get("/results", response_model=ResultsOut, tags=["results"])
async def read_results(
    conn: Conn,
    survey: SurveyDep,
    period: Annotated[str, Query(max_length=40, description=results.PERIOD_FORMATS)] = "30d",
    business_service: FilterText = None,
    group: FilterText = None,
    kind: Literal["csat", "nps"] | None = None,
    campaign_id: FilterText = None,
    organization: FilterText = None,
    by: GroupBy | None = Query(default=None, description="also break the figures down by this attribute"),
) -> dict[str, Any]:
    """Invitations sent, responses, response rate, CSAT with a Wilson interval, NPS with an adjusted-Wald interval."""
    try:
        window = results.parse_period(period, now=survey.clock())
    except results.InvalidPeriod as exc:
        raise InvalidInput(str(exc), field="period") from exc
    minimum = survey.rules.min_responses
    filters = {
        "business_service": business_service,
        "group": group,
        "kind": kind,
        "campaign_id": campaign_id,
        "organization": organization,
    }
    rows = await store.result_counts(conn, start=window.start, end=window.end, group_by=None, **filters)
    counts = [results.Count(**row) for row in rows]
    out: dict[str, Any] = {
        "period": {"label": window.label, "start": window.start, "end": window.end},
        "filters": {name: value for name, value in filters.items() if value is not None},
        "min_responses": minimum,
        **results.figures(counts, min_responses=minimum),
        "by": by,
        "breakdown": None,
    }
    if by is not None:
        rows = await store.result_counts(conn, start=window.start, end=window.end, group_by=by, **filters)
        out["breakdown"] = results.breakdown([results.Count(**row) for row in rows], min_responses=minimum)
    return out
