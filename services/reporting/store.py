"""The SQL of the reporting service: batch upserts into the read models, and the counts scorecards need.

Every upsert takes a whole batch as arrays (`unnest`), one statement per table. Months are UTC
calendar months (`to_char(x AT TIME ZONE 'UTC', 'YYYY-MM')`), whatever the session's time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from datetime import datetime
from typing import Any

from bothways.db import Connection
from services.reporting.readmodels import (
    AnswerRow,
    AvailabilityRow,
    FollowupRow,
    InvitationRow,
    TicketFact,
    TimerRow,
)

# Rows as asyncpg returns them (asyncpg.Record), read by column name.
Rows = list[Any]

# The tables `bothways reporting rebuild` empties, with the inbox, before folding the topics again.
READ_MODEL_TABLES = (
    "business_service",
    "ticket_fact",
    "sla_timer",
    "availability",
    "survey_invitation",
    "survey_answer",
    "followup",
)
# Breakdown dimensions: the only column names ever formatted into SQL.
GROUP_COLUMNS = {"assignment_group": "assignment_group", "priority": "priority"}
MONTH = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM')"

# --- upserts ------------------------------------------------------------------------------------------

UPSERT_SERVICES = "INSERT INTO business_service (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING"

UPSERT_TICKET_FACTS = """
INSERT INTO ticket_fact AS t (ticket_key, business_service, assignment_group, priority, kind, status_category,
                              created_at, resolved_at, reopen_count, occurred_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::timestamptz[], $9::int[], $10::timestamptz[])
ON CONFLICT (ticket_key) DO UPDATE SET
    business_service = excluded.business_service, assignment_group = excluded.assignment_group,
    priority = excluded.priority, kind = excluded.kind, status_category = excluded.status_category,
    created_at = excluded.created_at, resolved_at = excluded.resolved_at,
    reopen_count = excluded.reopen_count, occurred_at = excluded.occurred_at
WHERE excluded.occurred_at >= t.occurred_at
"""

# One ticket's SLA events arrive in order (keyed by ticket): the newest event's timer wins, except the
# breach instant (kept while the timer stays breached) and the warning instant (kept once seen).
UPSERT_TIMERS = """
INSERT INTO sla_timer AS t (ticket_key, timer_key, metric, cycle, priority, state, business_service,
                            assignment_group, started_at, due_at, stopped_at, breached_at, warned_at,
                            target_business_seconds, business_elapsed_seconds, remaining_business_seconds,
                            percent_elapsed, occurred_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[],
                     $12::timestamptz[], $13::timestamptz[], $14::int[], $15::int[], $16::int[],
                     $17::float8[], $18::timestamptz[])
ON CONFLICT (ticket_key, timer_key) DO UPDATE SET
    metric = excluded.metric, cycle = excluded.cycle, priority = excluded.priority, state = excluded.state,
    business_service = excluded.business_service, assignment_group = excluded.assignment_group,
    started_at = excluded.started_at, due_at = excluded.due_at, stopped_at = excluded.stopped_at,
    breached_at = CASE WHEN excluded.state = 'breached' THEN coalesce(excluded.breached_at, t.breached_at) END,
    warned_at = coalesce(excluded.warned_at, t.warned_at),
    target_business_seconds = excluded.target_business_seconds,
    business_elapsed_seconds = excluded.business_elapsed_seconds,
    remaining_business_seconds = excluded.remaining_business_seconds,
    percent_elapsed = excluded.percent_elapsed, occurred_at = excluded.occurred_at
"""

UPSERT_AVAILABILITY = """
INSERT INTO availability AS t (business_service, period, period_start, period_end, objective_percent,
                               agreed_seconds, downtime_seconds, availability_percent, error_budget_seconds,
                               budget_remaining_seconds, outages, mtrs_seconds, mtbf_seconds, correction,
                               occurred_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::float8[], $6::bigint[],
                     $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::int[], $12::float8[],
                     $13::float8[], $14::bool[], $15::timestamptz[])
ON CONFLICT (business_service, period) DO UPDATE SET
    period_start = excluded.period_start, period_end = excluded.period_end,
    objective_percent = excluded.objective_percent, agreed_seconds = excluded.agreed_seconds,
    downtime_seconds = excluded.downtime_seconds, availability_percent = excluded.availability_percent,
    error_budget_seconds = excluded.error_budget_seconds,
    budget_remaining_seconds = excluded.budget_remaining_seconds, outages = excluded.outages,
    mtrs_seconds = excluded.mtrs_seconds, mtbf_seconds = excluded.mtbf_seconds,
    correction = excluded.correction, occurred_at = excluded.occurred_at
WHERE excluded.occurred_at >= t.occurred_at
"""

# LEAST ignores nulls: each step keeps the first instant it was seen at.
UPSERT_INVITATIONS = """
INSERT INTO survey_invitation AS t (invitation_id, survey_kind, ticket_key, campaign_id, business_service,
                                    assignment_group, priority, scheduled_at, throttled_at, sent_at,
                                    delivery_failed_at, expired_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[],
                     $12::timestamptz[])
ON CONFLICT (invitation_id) DO UPDATE SET
    ticket_key = coalesce(excluded.ticket_key, t.ticket_key),
    campaign_id = coalesce(excluded.campaign_id, t.campaign_id),
    business_service = coalesce(excluded.business_service, t.business_service),
    assignment_group = coalesce(excluded.assignment_group, t.assignment_group),
    priority = coalesce(excluded.priority, t.priority),
    scheduled_at = least(t.scheduled_at, excluded.scheduled_at),
    throttled_at = least(t.throttled_at, excluded.throttled_at),
    sent_at = least(t.sent_at, excluded.sent_at),
    delivery_failed_at = least(t.delivery_failed_at, excluded.delivery_failed_at),
    expired_at = least(t.expired_at, excluded.expired_at)
"""

UPSERT_ANSWERS = """
INSERT INTO survey_answer AS t (invitation_id, survey_kind, ticket_key, business_service, assignment_group,
                                priority, answered_at, score, scale, band, reason, comment)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::int[], $9::text[], $10::text[], $11::text[], $12::text[])
ON CONFLICT (invitation_id) DO UPDATE SET
    survey_kind = excluded.survey_kind, ticket_key = excluded.ticket_key,
    business_service = excluded.business_service, assignment_group = excluded.assignment_group,
    priority = excluded.priority, answered_at = excluded.answered_at, score = excluded.score,
    scale = excluded.scale, band = excluded.band, reason = excluded.reason, comment = excluded.comment
WHERE excluded.answered_at >= t.answered_at
"""

UPSERT_FOLLOWUPS = """
INSERT INTO followup AS t (followup_id, invitation_id, ticket_key, business_service, assignment_group,
                           opened_at, due_at, overdue_at, closed_at, outcome)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                     $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::text[])
ON CONFLICT (followup_id) DO UPDATE SET
    ticket_key = coalesce(excluded.ticket_key, t.ticket_key),
    business_service = coalesce(excluded.business_service, t.business_service),
    assignment_group = coalesce(excluded.assignment_group, t.assignment_group),
    opened_at = least(t.opened_at, excluded.opened_at),
    due_at = excluded.due_at,
    overdue_at = least(t.overdue_at, excluded.overdue_at),
    closed_at = coalesce(excluded.closed_at, t.closed_at),
    outcome = coalesce(excluded.outcome, t.outcome)
"""


async def register_services(conn: Connection, *, names: Sequence[str]) -> None:
    """Remember every business service an event named."""
    if names:
        await conn.execute(UPSERT_SERVICES, list(names))


async def upsert_ticket_facts(conn: Connection, *, facts: Sequence[TicketFact]) -> None:
    """Keep the newest snapshot of each ticket."""
    await _upsert(conn, UPSERT_TICKET_FACTS, facts)


async def upsert_timers(conn: Connection, *, timers: Sequence[TimerRow]) -> None:
    """Apply the batch's last change of each SLA timer."""
    await _upsert(conn, UPSERT_TIMERS, timers)


async def upsert_availability(conn: Connection, *, months: Sequence[AvailabilityRow]) -> None:
    """Keep the newest availability computation of each service and month."""
    await _upsert(conn, UPSERT_AVAILABILITY, months)


async def upsert_invitations(conn: Connection, *, invitations: Sequence[InvitationRow]) -> None:
    """Record the steps of survey invitations."""
    await _upsert(conn, UPSERT_INVITATIONS, invitations)


async def upsert_answers(conn: Connection, *, answers: Sequence[AnswerRow]) -> None:
    """Keep the latest answer of each invitation."""
    await _upsert(conn, UPSERT_ANSWERS, answers)


async def upsert_followups(conn: Connection, *, followups: Sequence[FollowupRow]) -> None:
    """Record the steps of follow-ups."""
    await _upsert(conn, UPSERT_FOLLOWUPS, followups)


async def _upsert(conn: Connection, sql: str, rows: Sequence[Any]) -> None:
    """One statement for the whole batch: the rows' fields as parallel arrays, in declaration order."""
    if not rows:
        return
    columns = [list(column) for column in zip(*(astuple(row) for row in rows), strict=True)]
    assert len(columns) == len(fields(rows[0]))
    await conn.execute(sql, *columns)


# --- ticket counts ------------------------------------------------------------------------------------

COUNT_BY_CATEGORY = "SELECT status_category, count(*) AS tickets FROM ticket_fact GROUP BY status_category"


async def tickets_by_status_category(conn: Connection) -> dict[str, int]:
    """How many tickets are in each status category now."""
    return {row["status_category"]: row["tickets"] for row in await conn.fetch(COUNT_BY_CATEGORY)}


# --- services -----------------------------------------------------------------------------------------


async def business_services(conn: Connection) -> list[str]:
    """Every business service any event named, by name."""
    return [row["name"] for row in await conn.fetch("SELECT name FROM business_service ORDER BY name")]


async def service_known(conn: Connection, *, name: str) -> bool:
    """Whether any event named the business service."""
    return bool(await conn.fetchval("SELECT 1 FROM business_service WHERE name = $1", name))


# --- counts per service and month ---------------------------------------------------------------------
# Parameters: $1 start, $2 end (the months [start, end)), $3 the business services.


@dataclass(frozen=True)
class Span:
    """Consecutive months [start, end) of some business services."""

    start: datetime
    end: datetime
    services: Sequence[str]


TICKETS_OPENED = f"""
SELECT business_service, {MONTH.format("created_at")} AS period, count(*) AS n
FROM ticket_fact
WHERE business_service = ANY($3::text[]) AND created_at >= $1 AND created_at < $2
GROUP BY 1, 2
"""
TICKETS_RESOLVED = f"""
SELECT business_service, {MONTH.format("resolved_at")} AS period, count(*) AS n
FROM ticket_fact
WHERE business_service = ANY($3::text[]) AND resolved_at >= $1 AND resolved_at < $2
GROUP BY 1, 2
"""
# The backlog at each month's end (or now, for the running month): created before, not resolved by then.
BACKLOG = """
SELECT f.business_service, m.period, count(*) AS n
FROM unnest($1::text[], $2::timestamptz[]) AS m(period, until)
JOIN ticket_fact f ON f.created_at < m.until AND (f.resolved_at IS NULL OR f.resolved_at >= m.until)
WHERE f.business_service = ANY($3::text[]) AND f.status_category <> 'canceled'
GROUP BY 1, 2
"""
# Counted per day-truncated month first, then named: hashing a timestamp is cheaper than formatting
# every row (81 against 96 ms for twelve months of 40 services over 1,000,000 events).
SLA_OUTCOMES = """
SELECT business_service, to_char(month, 'YYYY-MM') AS period, metric, priority,
       sum(met)::int AS met, sum(breached)::int AS breached
FROM (
    SELECT business_service, date_trunc('month', decided_at AT TIME ZONE 'UTC') AS month, metric, priority,
           count(*) FILTER (WHERE state = 'met') AS met, count(*) FILTER (WHERE state = 'breached') AS breached
    FROM sla_timer
    WHERE business_service = ANY($3::text[]) AND decided_at >= $1 AND decided_at < $2
    GROUP BY 1, 2, 3, 4
) counted
GROUP BY 1, 2, 3, 4
"""
# Each ticket resolved in the month with the business time of its latest cycle's resolution timer.
RESOLUTION_TIMES = f"""
SELECT f.business_service, {MONTH.format("f.resolved_at")} AS period, count(*) AS tickets,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY r.business_elapsed_seconds) AS median_seconds,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY r.business_elapsed_seconds) AS p90_seconds,
       count(*) FILTER (WHERE r.state = 'breached' AND r.stopped_at IS NULL) AS unstopped_breaches
FROM ticket_fact f
JOIN LATERAL (
    SELECT s.state, s.business_elapsed_seconds, s.stopped_at FROM sla_timer s
    WHERE s.ticket_key = f.ticket_key AND s.metric = 'resolution' AND s.state IN ('met', 'breached')
    ORDER BY s.cycle DESC, s.occurred_at DESC LIMIT 1
) r ON true
WHERE f.business_service = ANY($3::text[]) AND f.resolved_at >= $1 AND f.resolved_at < $2
GROUP BY 1, 2
"""
AVAILABILITY = """
SELECT * FROM availability WHERE period = ANY($1::text[]) AND business_service = ANY($2::text[])
"""
ANSWERS = """
SELECT business_service, to_char(month, 'YYYY-MM') AS period, survey_kind, band, sum(n)::int AS n
FROM (
    SELECT business_service, date_trunc('month', answered_at AT TIME ZONE 'UTC') AS month, survey_kind, band,
           count(*) AS n
    FROM survey_answer
    WHERE business_service = ANY($3::text[]) AND answered_at >= $1 AND answered_at < $2
    GROUP BY 1, 2, 3, 4
) counted
GROUP BY 1, 2, 3, 4
"""
INVITATIONS_SENT = f"""
SELECT business_service, {MONTH.format("sent_at")} AS period, count(*) AS n
FROM survey_invitation
WHERE business_service = ANY($3::text[]) AND survey_kind = 'csat' AND sent_at >= $1 AND sent_at < $2
GROUP BY 1, 2
"""
# Follow-ups of the month's answers, and how many of them are still open, and overdue, now ($4).
FOLLOWUPS = f"""
SELECT business_service, {MONTH.format("opened_at")} AS period, count(*) AS opened,
       count(*) FILTER (WHERE closed_at IS NULL) AS open,
       count(*) FILTER (WHERE closed_at IS NULL AND (overdue_at IS NOT NULL OR due_at <= $4)) AS overdue
FROM followup
WHERE business_service = ANY($3::text[]) AND opened_at >= $1 AND opened_at < $2
GROUP BY 1, 2
"""
# A CSAT answer that was dissatisfied on a ticket whose every SLA timer that counts was met.
WATERMELON_TICKETS = """
SELECT a.ticket_key, a.business_service, a.assignment_group, a.priority, a.answered_at, a.score, a.scale,
       a.reason, a.comment, t.met_timers
FROM survey_answer a
JOIN LATERAL (
    SELECT count(*) FILTER (WHERE s.state = 'met') AS met_timers,
           count(*) FILTER (WHERE s.state NOT IN ('met', 'cancelled')) AS other_timers
    FROM sla_timer s WHERE s.ticket_key = a.ticket_key
) t ON t.met_timers > 0 AND t.other_timers = 0
WHERE a.survey_kind = 'csat' AND a.band = 'dissatisfied' AND a.ticket_key IS NOT NULL
  AND a.business_service = ANY($3::text[]) AND a.answered_at >= $1 AND a.answered_at < $2
ORDER BY a.business_service, a.answered_at, a.ticket_key
"""
WATERMELON_TICKET_COUNTS = f"""
SELECT w.business_service, {MONTH.format("w.answered_at")} AS period, count(*) AS n
FROM ({WATERMELON_TICKETS}) w
GROUP BY 1, 2
"""


async def tickets_opened(conn: Connection, *, span: Span) -> Rows:
    return await conn.fetch(TICKETS_OPENED, span.start, span.end, list(span.services))


async def tickets_resolved(conn: Connection, *, span: Span) -> Rows:
    return await conn.fetch(TICKETS_RESOLVED, span.start, span.end, list(span.services))


async def backlog(
    conn: Connection, *, until: Sequence[tuple[str, datetime]], services: Sequence[str]
) -> Rows:
    """Tickets open at each (period, instant)."""
    periods, instants = [p for p, _ in until], [i for _, i in until]
    return await conn.fetch(BACKLOG, periods, instants, list(services))


async def sla_outcomes(conn: Connection, *, span: Span) -> Rows:
    return await conn.fetch(SLA_OUTCOMES, span.start, span.end, list(span.services))


async def resolution_times(conn: Connection, *, span: Span) -> Rows:
    return await conn.fetch(RESOLUTION_TIMES, span.start, span.end, list(span.services))


async def availability(conn: Connection, *, periods: Sequence[str], services: Sequence[str]) -> Rows:
    return await conn.fetch(AVAILABILITY, list(periods), list(services))


async def answers(conn: Connection, *, span: Span) -> Rows:
    return await conn.fetch(ANSWERS, span.start, span.end, list(span.services))


async def invitations_sent(conn: Connection, *, span: Span) -> Rows:
    return await conn.fetch(INVITATIONS_SENT, span.start, span.end, list(span.services))


async def followups(conn: Connection, *, span: Span, now: datetime) -> Rows:
    return await conn.fetch(FOLLOWUPS, span.start, span.end, list(span.services), now)


async def watermelon_ticket_counts(conn: Connection, *, span: Span) -> Rows:
    return await conn.fetch(WATERMELON_TICKET_COUNTS, span.start, span.end, list(span.services))


async def watermelon_tickets(conn: Connection, *, span: Span) -> Rows:
    """The tickets whose SLAs were all met and whose CSAT answer was dissatisfied, answered in [start, end)."""
    return await conn.fetch(WATERMELON_TICKETS, span.start, span.end, list(span.services))


# --- breakdowns of one service and month --------------------------------------------------------------
# Parameters: $1 start, $2 end, $3 the business service.


@dataclass(frozen=True)
class GroupSpan:
    """One service's month [start, end), grouped by an assignment group or a priority."""

    by: str
    start: datetime
    end: datetime
    service: str

    def sql(self, template: str) -> str:
        """The query grouped by the span's column, taken only from GROUP_COLUMNS."""
        return template.format(group=GROUP_COLUMNS[self.by])


GROUP_RESOLVED = """
SELECT coalesce({group}, 'none') AS key, count(*) AS n FROM ticket_fact
WHERE business_service = $3 AND resolved_at >= $1 AND resolved_at < $2 GROUP BY 1
"""
GROUP_SLA = """
SELECT coalesce({group}, 'none') AS key, metric,
       count(*) FILTER (WHERE state = 'met') AS met, count(*) FILTER (WHERE state = 'breached') AS breached
FROM sla_timer WHERE business_service = $3 AND decided_at >= $1 AND decided_at < $2 GROUP BY 1, 2
"""
GROUP_CSAT = """
SELECT coalesce({group}, 'none') AS key, band, count(*) AS n FROM survey_answer
WHERE business_service = $3 AND survey_kind = 'csat' AND answered_at >= $1 AND answered_at < $2 GROUP BY 1, 2
"""


async def group_resolved(conn: Connection, *, span: GroupSpan) -> Rows:
    return await conn.fetch(span.sql(GROUP_RESOLVED), span.start, span.end, span.service)


async def group_sla(conn: Connection, *, span: GroupSpan) -> Rows:
    return await conn.fetch(span.sql(GROUP_SLA), span.start, span.end, span.service)


async def group_csat(conn: Connection, *, span: GroupSpan) -> Rows:
    return await conn.fetch(span.sql(GROUP_CSAT), span.start, span.end, span.service)


# --- dashboard lists ----------------------------------------------------------------------------------

OPEN_FOLLOWUPS = """
SELECT followup_id, ticket_key, business_service, assignment_group, opened_at, due_at,
       (overdue_at IS NOT NULL OR due_at <= $1) AS overdue
FROM followup WHERE closed_at IS NULL ORDER BY due_at, followup_id LIMIT $2
"""
TIMERS_AT_RISK = """
SELECT ticket_key, metric, priority, business_service, assignment_group, due_at, percent_elapsed,
       remaining_business_seconds, warned_at
FROM sla_timer WHERE state = 'running' AND warned_at IS NOT NULL ORDER BY due_at, ticket_key LIMIT $1
"""


async def open_followups(conn: Connection, *, now: datetime, limit: int) -> Rows:
    """Follow-ups not closed yet, the earliest due first."""
    return await conn.fetch(OPEN_FOLLOWUPS, now, limit)


async def timers_at_risk(conn: Connection, *, limit: int) -> Rows:
    """Running SLA timers past a warning threshold, the earliest due first."""
    return await conn.fetch(TIMERS_AT_RISK, limit)


# --- rebuild ------------------------------------------------------------------------------------------


async def reset_read_models(conn: Connection) -> None:
    """Empty the read models and the inbox, so every event is applied again from the topics."""
    await conn.execute(f"TRUNCATE {', '.join(READ_MODEL_TABLES)}, inbox")
