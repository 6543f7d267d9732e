"""A generated month of events for the reporting tests, with the plan it was generated from.

The plan (tickets, their SLA timers, answers, follow-ups, availability) is the truth the tests compute
expected figures from, independently of the reporting service. The events are what the SLA, survey
and ingest services would publish for that plan, in their order per aggregate, with the awkward
parts real streams have: redeliveries, a stale ticket snapshot delivered late, a retracted breach, a
superseded timer, a reopened ticket, an availability correction and a stale computation after it.

Business time is taken equal to wall time (a 24x7 calendar), which the reporting service never needs
to know: it reads the business seconds the SLA events report.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bothways.events import (
    AvailabilityComputed,
    Envelope,
    Event,
    FollowupClosed,
    FollowupOpened,
    FollowupOverdue,
    SlaBreached,
    SlaBreachRetracted,
    SlaCancelled,
    SlaMet,
    SlaPaused,
    SlaStarted,
    SlaWarned,
    SurveyAnswered,
    SurveyDeliveryFailed,
    SurveyExpired,
    SurveyScheduled,
    SurveySent,
    SurveyThrottled,
    TicketChanged,
    deterministic_id,
    envelope_for,
)

TARGETS = {"first_response": 4 * 3600, "resolution": 16 * 3600}
GROUPS = ("service-desk", "network", "apps")
PRIORITIES = ("P2", "P3", "P4")


@dataclass(frozen=True)
class ServiceProfile:
    """How a generated service behaves: its SLA breach rate, its customers' mood, its availability."""

    name: str
    tickets: int
    breach_rate: float
    csat_scores: tuple[int, ...]  # drawn uniformly: the mix sets the CSAT
    nps_scores: tuple[int, ...]
    nps_answers: int
    objective_percent: float
    downtime_seconds: float
    answer_rate: float = 0.8
    csat_scale: str = "1-5"


# A healthy service, a watermelon (green SLAs, unhappy customers), one with bad SLAs and happy customers,
# and one with too few answers for any customer figure.
PROFILES = (
    ServiceProfile("email", 70, 0.03, (5, 5, 5, 4, 4, 4, 4, 4, 5, 3), (10, 9, 9, 8, 7, 9), 30, 99.9, 600),
    ServiceProfile("payroll", 70, 0.0, (1, 2, 2, 3, 4, 1, 2, 5, 2, 3), (3, 5, 6, 7, 2, 9), 30, 99.5, 1200),
    ServiceProfile("vpn", 60, 0.35, (5, 4, 4, 5, 3, 4), (9, 8, 10, 6), 25, 99.9, 9000, csat_scale="2-point"),
    ServiceProfile("intranet", 12, 0.1, (4, 5, 2), (8,), 4, 99.0, 0, answer_rate=0.4),
)


@dataclass
class TimerPlan:
    ticket_key: str
    timer_key: str
    metric: str
    cycle: int
    priority: str
    service: str
    group: str
    started_at: datetime
    outcome: str  # met | breached | running | cancelled
    elapsed: int
    stopped_at: datetime | None = None
    breached_at: datetime | None = None
    warned_at: datetime | None = None

    @property
    def target(self) -> int:
        return TARGETS[self.metric]

    @property
    def due_at(self) -> datetime:
        return self.started_at + timedelta(seconds=self.target)

    @property
    def decided_at(self) -> datetime | None:
        """When the outcome was decided: met when stopped, breached when the target was exceeded."""
        return {"met": self.stopped_at, "breached": self.breached_at}.get(self.outcome)


@dataclass
class TicketPlan:
    key: str
    service: str
    group: str
    priority: str
    created_at: datetime
    resolved_at: datetime | None
    canceled: bool = False
    timers: list[TimerPlan] = field(default_factory=list)


@dataclass
class AnswerPlan:
    invitation_id: str
    kind: str  # csat | nps
    service: str
    ticket_key: str | None
    group: str | None
    priority: str | None
    score: int
    scale: str
    sent_at: datetime
    answered_at: datetime

    @property
    def band(self) -> str:
        if self.kind == "nps":
            return "promoter" if self.score >= 9 else "detractor" if self.score <= 6 else "passive"
        if self.scale == "2-point":
            return "satisfied" if self.score == 2 else "dissatisfied"
        return "satisfied" if self.score >= 4 else "dissatisfied" if self.score <= 2 else "neutral"


@dataclass
class FollowupPlan:
    followup_id: str
    service: str
    opened_at: datetime
    due_at: datetime
    closed_at: datetime | None
    overdue_at: datetime | None


@dataclass
class MonthPlan:
    """The truth of a generated month, and the events that tell it."""

    start: datetime
    end: datetime
    now: datetime
    tickets: list[TicketPlan] = field(default_factory=list)
    answers: list[AnswerPlan] = field(default_factory=list)
    invitations_sent: list[tuple[str, str, datetime]] = field(
        default_factory=list
    )  # (service, kind, sent_at)
    followups: list[FollowupPlan] = field(default_factory=list)
    availability: dict[str, AvailabilityComputed] = field(default_factory=dict)
    events: list[Envelope] = field(default_factory=list)

    @property
    def timers(self) -> list[TimerPlan]:
        return [timer for ticket in self.tickets for timer in ticket.timers]

    def unique_event_ids(self) -> set[str]:
        return {e.id for e in self.events}


def month_start(instant: datetime) -> datetime:
    return instant.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def previous_month(now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the month before the one `now` is in."""
    end = month_start(now)
    return month_start(end - timedelta(days=1)), end


class _Builder:
    def __init__(self, plan: MonthPlan, rng: random.Random) -> None:
        self.plan = plan
        self.rng = rng
        self.serial = 0

    def emit(self, event: Event, *, event_id: str | None = None) -> None:
        self.serial += 1
        envelope = envelope_for(
            event, event_id=event_id or deterministic_id("month", str(self.serial)), source="/tests/month"
        )
        self.plan.events.append(envelope)

    def instant(self, start: datetime, end: datetime) -> datetime:
        span = int((end - start).total_seconds())
        return start + timedelta(seconds=self.rng.randrange(max(span, 1)))


def generate_month(
    *, now: datetime, seed: int = 1, profiles: tuple[ServiceProfile, ...] = PROFILES
) -> MonthPlan:
    """The month before `now`, with a few tickets of the month before that, for every profile."""
    start, end = previous_month(now)
    plan = MonthPlan(start=start, end=end, now=now.astimezone(UTC).replace(microsecond=0))
    builder = _Builder(plan, random.Random(seed))
    for profile in profiles:
        for number in range(profile.tickets):
            _ticket(builder, profile, number)
        _availability(builder, profile)
        _nps_campaign(builder, profile)
    _breach_after_closing_time(builder, PROFILES[2])
    _redeliver(builder)
    return plan


def _ticket(b: _Builder, profile: ServiceProfile, number: int) -> None:
    rng, plan = b.rng, b.plan
    key = f"generic:{profile.name}-{number}"
    group, priority = GROUPS[number % len(GROUPS)], PRIORITIES[number % len(PRIORITIES)]
    # One in ten tickets was created in the month before and resolved in this one.
    earlier = number % 10 == 9
    created = b.instant(
        plan.start - timedelta(days=3) if earlier else plan.start, plan.end - timedelta(days=2)
    )
    canceled = number % 17 == 5
    stays_open = not canceled and number % 11 == 3
    breach = rng.random() < profile.breach_rate
    ticket = TicketPlan(key, profile.name, group, priority, created, None, canceled)
    plan.tickets.append(ticket)
    snapshot = _snapshot_factory(ticket)
    created_event = snapshot(created, "open", "created")
    b.emit(created_event)

    response_elapsed = rng.randrange(600, TARGETS["first_response"])
    first_response = TimerPlan(
        key,
        "first_response/1",
        "first_response",
        1,
        priority,
        profile.name,
        group,
        created,
        "met",
        response_elapsed,
    )
    first_response.stopped_at = created + timedelta(seconds=response_elapsed)
    ticket.timers.append(first_response)
    _emit_timer(b, first_response, SlaStarted, at=created)
    _emit_timer(b, first_response, SlaMet, at=first_response.stopped_at)

    if canceled:
        resolution = TimerPlan(
            key, "resolution/1", "resolution", 1, priority, profile.name, group, created, "cancelled", 0
        )
        ticket.timers.append(resolution)
        _emit_timer(b, resolution, SlaStarted, at=created)
        cancel_at = created + timedelta(hours=1)
        resolution.stopped_at = cancel_at
        resolution.elapsed = 3600
        _emit_timer(b, resolution, SlaCancelled, at=cancel_at)
        b.emit(snapshot(cancel_at, "canceled", "status_changed"))
        return

    # Every seventh ticket changes priority: the first resolution timer is superseded (cancelled).
    if number % 7 == 2:
        superseded = TimerPlan(
            key, "resolution/1/P4", "resolution", 1, "P4", profile.name, group, created, "cancelled", 1800
        )
        superseded.stopped_at = created + timedelta(minutes=30)
        ticket.timers.append(superseded)
        _emit_timer(b, superseded, SlaStarted, at=created)
        _emit_timer(b, superseded, SlaCancelled, at=superseded.stopped_at)

    resolution = TimerPlan(
        key, "resolution/1", "resolution", 1, priority, profile.name, group, created, "running", 0
    )
    ticket.timers.append(resolution)
    _emit_timer(b, resolution, SlaStarted, at=created)
    if stays_open:
        # Still open at the end of the month: warned, running, at risk.
        resolution.elapsed = int(TARGETS["resolution"] * 0.8)
        resolution.warned_at = created + timedelta(seconds=resolution.elapsed)
        if resolution.warned_at < plan.now:
            _emit_timer(b, resolution, SlaWarned, at=resolution.warned_at, threshold_percent=75.0)
        else:
            resolution.warned_at = None
        return
    if breach:
        resolution.outcome = "breached"
        resolution.breached_at = resolution.due_at + timedelta(seconds=1)
        resolution.elapsed = TARGETS["resolution"] + 1
        warned = resolution.started_at + timedelta(seconds=int(TARGETS["resolution"] * 0.75))
        resolution.warned_at = warned
        _emit_timer(
            b,
            resolution,
            SlaWarned,
            at=warned,
            threshold_percent=75.0,
            elapsed=int(TARGETS["resolution"] * 0.75),
        )
        _emit_timer(b, resolution, SlaBreached, at=resolution.breached_at)
        resolved = resolution.breached_at + timedelta(hours=rng.randrange(1, 30))
        if number % 3 == 0:
            # A pause after the breach: the event is later, the breach instant stays the decision.
            # (breached wins over paused in the state the SLA service reports)
            _emit_timer(
                b, resolution, SlaPaused, at=resolution.breached_at + timedelta(minutes=20), state="breached"
            )
    else:
        resolution.outcome = "met"
        resolution.elapsed = rng.randrange(1800, TARGETS["resolution"])
        resolution.stopped_at = created + timedelta(seconds=resolution.elapsed)
        resolved = resolution.stopped_at
        if number % 13 == 4:
            # A breach announced, then retracted by a late event, then met.
            fake_breach = resolution.due_at + timedelta(seconds=1)
            _emit_timer(
                b,
                resolution,
                SlaBreached,
                at=fake_breach,
                state="breached",
                elapsed=TARGETS["resolution"] + 1,
            )
            _emit_timer(
                b, resolution, SlaBreachRetracted, at=fake_breach + timedelta(minutes=5), state="running"
            )
        _emit_timer(b, resolution, SlaMet, at=resolution.stopped_at)
    ticket.resolved_at = resolved
    resolved_event = snapshot(resolved, "resolved", "status_changed")
    b.emit(resolved_event)
    if number % 9 == 1:
        _reopen(b, ticket, snapshot)
    elif number % 8 == 0:
        b.emit(created_event, event_id=deterministic_id("month", "stale", key))  # a late, stale snapshot
    _survey(b, profile, ticket, number)


def _breach_after_closing_time(b: _Builder, profile: ServiceProfile) -> None:
    """Due at a closing time on the month's last evening, breached at the next opening, in the next month.

    The breach belongs to the month it happened in, even though the deadline fell in this one; a pause
    reported after it must not move it back (the breach instant is kept from the breach event)."""
    plan = b.plan
    key = f"generic:{profile.name}-closing"
    due = plan.end - timedelta(minutes=30)
    created = due - timedelta(seconds=TARGETS["resolution"])
    ticket = TicketPlan(key, profile.name, GROUPS[0], "P3", created, None)
    plan.tickets.append(ticket)
    snapshot = _snapshot_factory(ticket)
    b.emit(snapshot(created, "open", "created"))
    timer = TimerPlan(
        key, "resolution/1", "resolution", 1, "P3", profile.name, GROUPS[0], created, "breached", 0
    )
    timer.elapsed = TARGETS["resolution"] + 1
    timer.breached_at = plan.end + timedelta(hours=8, seconds=1)
    ticket.timers.append(timer)
    _emit_timer(b, timer, SlaStarted, at=created)
    if timer.breached_at < plan.now:
        _emit_timer(b, timer, SlaBreached, at=timer.breached_at)
        _emit_timer(b, timer, SlaPaused, at=timer.breached_at + timedelta(minutes=5), state="breached")
    else:
        timer.outcome, timer.breached_at, timer.elapsed = "running", None, 0


def _reopen(b: _Builder, ticket: TicketPlan, snapshot: Any) -> None:
    """Reopened an hour after the resolution, resolved again in a new cycle that meets its target."""
    assert ticket.resolved_at is not None
    reopened = ticket.resolved_at + timedelta(hours=1)
    b.emit(snapshot(reopened, "open", "status_changed", reopen_count=1))
    elapsed = b.rng.randrange(600, 7200)
    cycle = TimerPlan(
        ticket.key,
        "resolution/2",
        "resolution",
        2,
        ticket.priority,
        ticket.service,
        ticket.group,
        reopened,
        "met",
        elapsed,
    )
    cycle.stopped_at = reopened + timedelta(seconds=elapsed)
    ticket.timers.append(cycle)
    _emit_timer(b, cycle, SlaStarted, at=reopened)
    _emit_timer(b, cycle, SlaMet, at=cycle.stopped_at)
    ticket.resolved_at = cycle.stopped_at
    b.emit(snapshot(cycle.stopped_at, "resolved", "status_changed", reopen_count=1))


def _snapshot_factory(ticket: TicketPlan) -> Any:
    def snapshot(at: datetime, category: str, change: str, reopen_count: int = 0) -> TicketChanged:
        return TicketChanged(
            ticket_key=ticket.key,
            source="generic",
            external_id=ticket.key.split(":", 1)[1],
            occurred_at=at,
            change=change,
            status=category.title(),
            status_category=category,
            priority=ticket.priority,
            business_service=ticket.service,
            assignment_group=ticket.group,
            created_at=ticket.created_at,
            resolved_at=at if category == "resolved" else None,
            reopen_count=reopen_count,
        )

    return snapshot


def _emit_timer(
    b: _Builder,
    timer: TimerPlan,
    kind: type[Any],
    *,
    at: datetime,
    state: str | None = None,
    elapsed: int | None = None,
    **extra: Any,
) -> None:
    """An SLA event as the SLA service publishes it: the timer as it stands after the change."""
    defaults = {
        SlaStarted: "running",
        SlaPaused: "paused",
        SlaWarned: "running",
        SlaBreachRetracted: "running",
    }
    state = state or defaults.get(kind) or timer.outcome
    if elapsed is None:
        elapsed = 0 if kind is SlaStarted else timer.elapsed
    stopped = timer.stopped_at if kind in (SlaMet, SlaCancelled) else None
    b.emit(
        kind(
            ticket_key=timer.ticket_key,
            timer_key=timer.timer_key,
            metric=timer.metric,
            cycle=timer.cycle,
            priority=timer.priority,
            policy="standard",
            policy_version=1,
            calendar="24x7",
            state=state,
            occurred_at=at,
            started_at=timer.started_at,
            due_at=timer.due_at,
            stopped_at=stopped,
            target_business_seconds=timer.target,
            business_elapsed_seconds=elapsed,
            remaining_business_seconds=max(timer.target - elapsed, 0),
            percent_elapsed=100 * elapsed / timer.target,
            source="generic",
            business_service=timer.service,
            assignment_group=timer.group,
            **extra,
        )
    )


def _survey(b: _Builder, profile: ServiceProfile, ticket: TicketPlan, number: int) -> None:
    assert ticket.resolved_at is not None
    rng, plan = b.rng, b.plan
    invitation = f"inv-{ticket.key}"
    attribution: dict[str, Any] = {
        "invitation_id": invitation,
        "survey_kind": "csat",
        "ticket_key": ticket.key,
        "business_service": ticket.service,
        "assignment_group": ticket.group,
        "priority": ticket.priority,
        "recipient_id": f"person-{number}",
    }
    scheduled = ticket.resolved_at + timedelta(minutes=1)
    if scheduled >= plan.now:
        return
    b.emit(SurveyScheduled(**attribution, occurred_at=scheduled, send_at=scheduled + timedelta(minutes=4)))
    if number % 12 == 6:
        b.emit(
            SurveyThrottled(**attribution, occurred_at=scheduled, reason="fatigue: one survey per 30 days")
        )
        return
    sent = scheduled + timedelta(minutes=4)
    if number % 10 == 7:
        b.emit(
            SurveyDeliveryFailed(
                **attribution, occurred_at=sent, channel="email", attempts=1, error="421 try later"
            )
        )
        sent += timedelta(minutes=15)
    b.emit(SurveySent(**attribution, occurred_at=sent, channel="email", expires_at=sent + timedelta(days=7)))
    plan.invitations_sent.append((ticket.service, "csat", sent))
    if rng.random() >= profile.answer_rate:
        if sent + timedelta(days=7) < plan.now:
            b.emit(SurveyExpired(**attribution, occurred_at=sent + timedelta(days=7)))
        return
    answered = sent + timedelta(minutes=rng.randrange(5, 3 * 24 * 60))
    if answered >= plan.now:
        return
    score = rng.choice(profile.csat_scores)
    scale = profile.csat_scale
    if scale == "2-point":
        score = 2 if score >= 4 else 1
    answer = AnswerPlan(
        invitation,
        "csat",
        ticket.service,
        ticket.key,
        ticket.group,
        ticket.priority,
        score,
        scale,
        sent,
        answered,
    )
    plan.answers.append(answer)
    b.emit(
        SurveyAnswered(
            **attribution,
            occurred_at=answered,
            score=score,
            scale=scale,
            satisfied=answer.band == "satisfied",
            reason="slow" if answer.band == "dissatisfied" else None,
            comment='=HYPERLINK("http://x")' if number % 19 == 0 else "thanks",
        )
    )
    if answer.band == "dissatisfied":
        _followup(b, attribution, answer, number)


def _followup(b: _Builder, attribution: dict[str, Any], answer: AnswerPlan, number: int) -> None:
    plan = b.plan
    opened = answer.answered_at + timedelta(minutes=10)
    if opened >= plan.now:
        return
    due = opened + timedelta(days=2)
    if abs(due - plan.now) < timedelta(minutes=10):
        due += timedelta(minutes=30)  # never due while the test runs: "overdue now" must not depend on it
    followup = FollowupPlan(f"fu-{answer.invitation_id}", answer.service, opened, due, None, None)
    plan.followups.append(followup)
    ids = {**attribution, "followup_id": followup.followup_id, "due_at": due}
    b.emit(FollowupOpened(**ids, occurred_at=opened))
    if number % 2 == 0 and opened + timedelta(days=1) < plan.now:
        followup.closed_at = opened + timedelta(days=1)
        b.emit(FollowupClosed(**ids, occurred_at=followup.closed_at, outcome="resolved with customer"))
    elif number % 3 == 0 and due < plan.now:
        followup.overdue_at = due
        b.emit(FollowupOverdue(**ids, occurred_at=due))


def _nps_campaign(b: _Builder, profile: ServiceProfile) -> None:
    rng, plan = b.rng, b.plan
    for i in range(profile.nps_answers):
        invitation = f"nps-{profile.name}-{i}"
        attribution: dict[str, Any] = {
            "invitation_id": invitation,
            "survey_kind": "nps",
            "campaign_id": f"nps-{plan.start:%Y-%m}",
            "business_service": profile.name,
        }
        sent = b.instant(plan.start, plan.start + timedelta(days=10))
        b.emit(SurveySent(**attribution, occurred_at=sent, channel="email"))
        plan.invitations_sent.append((profile.name, "nps", sent))
        answered = sent + timedelta(hours=rng.randrange(1, 200))
        score = rng.choice(profile.nps_scores)
        plan.answers.append(
            AnswerPlan(invitation, "nps", profile.name, None, None, None, score, "0-10", sent, answered)
        )
        band = "promoter" if score >= 9 else "detractor" if score <= 6 else "passive"
        b.emit(SurveyAnswered(**attribution, occurred_at=answered, score=score, scale="0-10", nps_band=band))


def _availability(b: _Builder, profile: ServiceProfile) -> None:
    plan = b.plan
    agreed = int((plan.end - plan.start).total_seconds())
    budget = agreed * (100 - profile.objective_percent) / 100

    def computed(downtime: float, at: datetime, outages: int, correction: bool) -> AvailabilityComputed:
        return AvailabilityComputed(
            business_service=profile.name,
            period=f"{plan.start:%Y-%m}",
            period_start=plan.start,
            period_end=plan.end,
            occurred_at=at,
            objective_percent=profile.objective_percent,
            agreed_seconds=agreed,
            downtime_seconds=downtime,
            availability_percent=100 * (agreed - downtime) / agreed,
            error_budget_seconds=budget,
            budget_remaining_seconds=budget - downtime,
            outages=outages,
            mtrs_seconds=downtime / outages if outages else None,
            mtbf_seconds=agreed / outages if outages else None,
            correction=correction,
        )

    first = computed(profile.downtime_seconds / 2, plan.start + timedelta(days=5), 1, False)
    final = computed(profile.downtime_seconds, plan.start + timedelta(days=12), 2, True)
    b.emit(first)
    b.emit(final)
    b.emit(first, event_id=deterministic_id("month", "stale-availability", profile.name))  # late and stale
    plan.availability[profile.name] = final


def _redeliver(b: _Builder) -> None:
    """Every 20th event delivered again with its id (at-least-once), after everything else."""
    b.plan.events.extend(b.plan.events[::20])


async def publish(settings: Any, envelopes: list[Envelope]) -> None:
    """Produce the events onto the real broker, as the producing services' relays would."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send(
                settings.topic(envelope.topic),
                value=envelope.value_bytes(),
                key=envelope.key_bytes(),
                headers=envelope.headers(),
            )
        await producer.flush()
    finally:
        await producer.stop()


async def applied_events(database_url: str) -> int:
    """How many distinct events the reporting service has applied (its inbox)."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM reporting.inbox")
        return count
    finally:
        await conn.close()
