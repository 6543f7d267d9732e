"""The rows each read model keeps of a batch of events, folded per aggregate (pure, no I/O).

A batch may hold several events of one ticket, timer, invitation or month; each fold leaves one row
per aggregate so a single upsert statement applies the whole batch. The merge with the row already
stored follows the same rules (see store.py), so folding in batches or one event at a time agrees.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bothways.events import (
    AvailabilityComputed,
    FollowupClosed,
    FollowupEvent,
    FollowupOpened,
    FollowupOverdue,
    SlaBreached,
    SlaState,
    SlaTimerEvent,
    SlaWarned,
    StatusCategory,
    SurveyAnswered,
    SurveyDeliveryFailed,
    SurveyEvent,
    SurveyExpired,
    SurveyKind,
    SurveyScheduled,
    SurveySent,
    SurveyThrottled,
    TicketChanged,
)
from services.survey.scoring import CsatBand, CsatScale, InvalidScore, csat_band, nps_band

# The scale names the survey service may put on an answer, for the CSAT bands.
CSAT_SCALES = {
    "1-5": CsatScale.FIVE_POINT,
    "five_point": CsatScale.FIVE_POINT,
    "2-point": CsatScale.TWO_POINT,
    "two_point": CsatScale.TWO_POINT,
    "1-2": CsatScale.TWO_POINT,
}
RESOLVED_CATEGORIES = frozenset({StatusCategory.RESOLVED, StatusCategory.CLOSED})


@dataclass(frozen=True, slots=True)
class TicketFact:
    """The newest snapshot of a ticket, reduced to what the scorecards count."""

    ticket_key: str
    business_service: str | None
    assignment_group: str | None
    priority: str | None
    kind: str
    status_category: str
    created_at: datetime
    resolved_at: datetime | None
    reopen_count: int
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class TimerRow:
    """An SLA timer as its last event in the batch leaves it; None instants mean "not seen in this batch"."""

    ticket_key: str
    timer_key: str
    metric: str
    cycle: int
    priority: str | None
    state: str
    business_service: str | None
    assignment_group: str | None
    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None
    breached_at: datetime | None
    warned_at: datetime | None
    target_business_seconds: int
    business_elapsed_seconds: int
    remaining_business_seconds: int
    percent_elapsed: float
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class AvailabilityRow:
    """The newest availability figures of a business service for a month."""

    business_service: str
    period: str
    period_start: datetime
    period_end: datetime
    objective_percent: float
    agreed_seconds: int
    downtime_seconds: float
    availability_percent: float | None
    error_budget_seconds: float
    budget_remaining_seconds: float
    outages: int
    mtrs_seconds: float | None
    mtbf_seconds: float | None
    correction: bool
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class InvitationRow:
    """An invitation's attribution and the first instant of each step seen in the batch."""

    invitation_id: str
    survey_kind: str
    ticket_key: str | None
    campaign_id: str | None
    business_service: str | None
    assignment_group: str | None
    priority: str | None
    scheduled_at: datetime | None = None
    throttled_at: datetime | None = None
    sent_at: datetime | None = None
    delivery_failed_at: datetime | None = None
    expired_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AnswerRow:
    """The latest answer to an invitation, with its band."""

    invitation_id: str
    survey_kind: str
    ticket_key: str | None
    business_service: str | None
    assignment_group: str | None
    priority: str | None
    answered_at: datetime
    score: int
    scale: str
    band: str
    reason: str | None
    comment: str | None


@dataclass(frozen=True, slots=True)
class FollowupRow:
    """A follow-up as the batch leaves it; None instants mean "not seen in this batch"."""

    followup_id: str
    invitation_id: str
    ticket_key: str | None
    business_service: str | None
    assignment_group: str | None
    opened_at: datetime | None
    due_at: datetime
    overdue_at: datetime | None
    closed_at: datetime | None
    outcome: str | None


@dataclass(frozen=True, slots=True)
class SurveyRows:
    """What a batch of survey events leaves in the three survey tables."""

    invitations: list[InvitationRow]
    answers: list[AnswerRow]
    followups: list[FollowupRow]


# --- tickets ------------------------------------------------------------------------------------------


def ticket_facts(tickets: Iterable[TicketChanged]) -> list[TicketFact]:
    """The newest snapshot of each ticket in the batch (of two at the same instant, the later delivered)."""
    newest: dict[str, TicketChanged] = {}
    for ticket in tickets:
        kept = newest.get(ticket.ticket_key)
        if kept is None or ticket.occurred_at >= kept.occurred_at:
            newest[ticket.ticket_key] = ticket
    return [ticket_fact(ticket) for ticket in newest.values()]


def ticket_fact(ticket: TicketChanged) -> TicketFact:
    """The scorecard's view of one snapshot."""
    return TicketFact(
        ticket_key=ticket.ticket_key,
        business_service=ticket.business_service,
        assignment_group=ticket.assignment_group,
        priority=ticket.priority.value if ticket.priority else None,
        kind=ticket.kind.value,
        status_category=ticket.status_category.value,
        created_at=ticket.created_at,
        resolved_at=resolution_instant(ticket),
        reopen_count=ticket.reopen_count,
        occurred_at=ticket.occurred_at,
    )


def resolution_instant(ticket: TicketChanged) -> datetime | None:
    """When the standing resolution happened; None unless the ticket is resolved or closed now."""
    if ticket.status_category not in RESOLVED_CATEGORIES:
        return None
    return ticket.resolved_at or ticket.closed_at or ticket.occurred_at


# --- SLA timers ---------------------------------------------------------------------------------------


def timer_rows(changes: Iterable[SlaTimerEvent]) -> list[TimerRow]:
    """Each timer as its last change in the batch leaves it (one ticket's events arrive in order)."""
    rows: dict[tuple[str, str], TimerRow] = {}
    for change in changes:
        key = (change.ticket_key, change.timer_key)
        rows[key] = timer_row(change, before=rows.get(key))
    return list(rows.values())


def timer_row(change: SlaTimerEvent, *, before: TimerRow | None) -> TimerRow:
    """The timer after one change; the breach and warning instants carry over from earlier changes."""
    state = str(change.state)
    if isinstance(change, SlaBreached):
        breached_at: datetime | None = change.occurred_at
    elif state == SlaState.BREACHED and before is not None:
        breached_at = before.breached_at
    else:
        breached_at = None  # not breached (a retraction clears it), or breached before this batch
    warned_at = (
        change.occurred_at if isinstance(change, SlaWarned) else (before.warned_at if before else None)
    )
    return TimerRow(
        ticket_key=change.ticket_key,
        timer_key=change.timer_key,
        metric=str(change.metric),
        cycle=change.cycle,
        priority=change.priority.value if change.priority else None,
        state=state,
        business_service=change.business_service,
        assignment_group=change.assignment_group,
        started_at=change.started_at,
        due_at=change.due_at,
        stopped_at=change.stopped_at,
        breached_at=breached_at,
        warned_at=warned_at,
        target_business_seconds=change.target_business_seconds,
        business_elapsed_seconds=change.business_elapsed_seconds,
        remaining_business_seconds=change.remaining_business_seconds,
        percent_elapsed=change.percent_elapsed,
        occurred_at=change.occurred_at,
    )


# --- availability -------------------------------------------------------------------------------------


def availability_rows(computations: Iterable[AvailabilityComputed]) -> list[AvailabilityRow]:
    """The newest computation of each business service and month in the batch."""
    newest: dict[tuple[str, str], AvailabilityComputed] = {}
    for computed in computations:
        key = (computed.business_service, computed.period)
        kept = newest.get(key)
        if kept is None or computed.occurred_at >= kept.occurred_at:
            newest[key] = computed
    return [
        AvailabilityRow(
            business_service=c.business_service,
            period=c.period,
            period_start=c.period_start,
            period_end=c.period_end,
            objective_percent=c.objective_percent,
            agreed_seconds=c.agreed_seconds,
            downtime_seconds=c.downtime_seconds,
            availability_percent=c.availability_percent,
            error_budget_seconds=c.error_budget_seconds,
            budget_remaining_seconds=c.budget_remaining_seconds,
            outages=c.outages,
            mtrs_seconds=c.mtrs_seconds,
            mtbf_seconds=c.mtbf_seconds,
            correction=c.correction,
            occurred_at=c.occurred_at,
        )
        for c in newest.values()
    ]


# --- surveys ------------------------------------------------------------------------------------------


def survey_rows(steps: Iterable[SurveyEvent]) -> SurveyRows:
    """Invitations, answers and follow-ups as the batch leaves them."""
    invitations: dict[str, InvitationRow] = {}
    answers: dict[str, AnswerRow] = {}
    followups: dict[str, FollowupRow] = {}
    for step in steps:
        if isinstance(step, FollowupEvent):
            followups[step.followup_id] = followup_row(step, before=followups.get(step.followup_id))
            continue
        invitations[step.invitation_id] = invitation_row(step, before=invitations.get(step.invitation_id))
        if isinstance(step, SurveyAnswered):
            kept = answers.get(step.invitation_id)
            if kept is None or step.occurred_at >= kept.answered_at:
                answers[step.invitation_id] = answer_row(step)
    return SurveyRows(list(invitations.values()), list(answers.values()), list(followups.values()))


def invitation_row(step: SurveyEvent, *, before: InvitationRow | None) -> InvitationRow:
    """The invitation after one step: attribution from the newest step that has it, each step's first instant."""
    prior = before or InvitationRow(step.invitation_id, step.survey_kind.value, None, None, None, None, None)
    return InvitationRow(
        invitation_id=step.invitation_id,
        survey_kind=step.survey_kind.value,
        ticket_key=step.ticket_key or prior.ticket_key,
        campaign_id=step.campaign_id or prior.campaign_id,
        business_service=step.business_service or prior.business_service,
        assignment_group=step.assignment_group or prior.assignment_group,
        priority=step.priority.value if step.priority else prior.priority,
        scheduled_at=_first(prior.scheduled_at, step, SurveyScheduled),
        throttled_at=_first(prior.throttled_at, step, SurveyThrottled),
        sent_at=_first(prior.sent_at, step, SurveySent),
        delivery_failed_at=_first(prior.delivery_failed_at, step, SurveyDeliveryFailed),
        expired_at=_first(prior.expired_at, step, SurveyExpired),
    )


def _first(earlier: datetime | None, step: SurveyEvent, kind: type[SurveyEvent]) -> datetime | None:
    """The first instant a step of `kind` was seen at, counting this step if it is one."""
    if not isinstance(step, kind):
        return earlier
    return min(earlier, step.occurred_at) if earlier else step.occurred_at


def answer_row(answer: SurveyAnswered) -> AnswerRow:
    """An answer with its band."""
    return AnswerRow(
        invitation_id=answer.invitation_id,
        survey_kind=answer.survey_kind.value,
        ticket_key=answer.ticket_key,
        business_service=answer.business_service,
        assignment_group=answer.assignment_group,
        priority=answer.priority.value if answer.priority else None,
        answered_at=answer.occurred_at,
        score=answer.score,
        scale=answer.scale,
        band=answer_band(answer),
        reason=answer.reason,
        comment=answer.comment,
    )


def answer_band(answer: SurveyAnswered) -> str:
    """Promoter/passive/detractor for NPS; satisfied/neutral/dissatisfied for CSAT, as the survey scores it."""
    if answer.survey_kind is SurveyKind.NPS:
        return answer.nps_band or nps_band(answer.score).value
    scale = CSAT_SCALES.get(answer.scale)
    if scale is not None:
        try:
            return csat_band(answer.score, scale=scale).value
        except InvalidScore:
            pass  # a score outside the named scale: the survey's own verdict below decides
    # An unknown scale: the survey service's `satisfied` verdict is the only reading there is.
    if answer.satisfied is None:
        return CsatBand.NEUTRAL.value
    return (CsatBand.SATISFIED if answer.satisfied else CsatBand.DISSATISFIED).value


def followup_row(step: FollowupEvent, *, before: FollowupRow | None) -> FollowupRow:
    """The follow-up after one step."""
    opened_at = before.opened_at if before else None
    overdue_at = before.overdue_at if before else None
    closed_at, outcome = (before.closed_at, before.outcome) if before else (None, None)
    if isinstance(step, FollowupOpened):
        opened_at = min(opened_at, step.occurred_at) if opened_at else step.occurred_at
    elif isinstance(step, FollowupOverdue):
        overdue_at = min(overdue_at, step.occurred_at) if overdue_at else step.occurred_at
    elif isinstance(step, FollowupClosed):
        closed_at, outcome = step.occurred_at, step.outcome
    return FollowupRow(
        followup_id=step.followup_id,
        invitation_id=step.invitation_id,
        ticket_key=step.ticket_key,
        business_service=step.business_service,
        assignment_group=step.assignment_group,
        opened_at=opened_at,
        due_at=step.due_at,
        overdue_at=overdue_at,
        closed_at=closed_at,
        outcome=outcome,
    )


def service_names(*rows: Iterable[object]) -> list[str]:
    """The business services the rows name, once each."""
    return sorted(
        {name for group in rows for row in group if (name := getattr(row, "business_service", None))}
    )
