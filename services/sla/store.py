"""The SQL of the sla service."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bothways.db import Connection
from bothways.events import TicketChanged

INSERT_TICKET_EVENTS = """
INSERT INTO ticket_event (event_id, ticket_key, occurred_at, change, status_category, snapshot)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::jsonb[])
ON CONFLICT (event_id) DO NOTHING
"""
# One row per ticket: the newest snapshot of the batch, and how many the batch held.
UPSERT_TICKETS = """
INSERT INTO ticket AS t (ticket_key, occurred_at, status_category, snapshot, event_count, created_at)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::jsonb[], $5::int[], $6::timestamptz[])
ON CONFLICT (ticket_key) DO UPDATE SET
    occurred_at = CASE WHEN excluded.occurred_at >= t.occurred_at THEN excluded.occurred_at ELSE t.occurred_at END,
    created_at = CASE WHEN excluded.occurred_at >= t.occurred_at THEN excluded.created_at ELSE t.created_at END,
    status_category = CASE WHEN excluded.occurred_at >= t.occurred_at
                           THEN excluded.status_category ELSE t.status_category END,
    snapshot = CASE WHEN excluded.occurred_at >= t.occurred_at THEN excluded.snapshot ELSE t.snapshot END,
    event_count = t.event_count + excluded.event_count
"""
SELECT_TICKET = """
SELECT ticket_key, occurred_at, status_category, snapshot, event_count, policy, policy_version,
       calendar_versions, evaluated_at
FROM ticket WHERE ticket_key = $1
"""
LOCK_TICKETS = """
SELECT ticket_key, policy, policy_version, calendar_versions, evaluated_at FROM ticket
WHERE ticket_key = ANY($1::text[]) ORDER BY ticket_key FOR UPDATE
"""
SELECT_HISTORY = """
SELECT event_id, occurred_at, change, status_category, recorded_at FROM ticket_event
WHERE ticket_key = $1 ORDER BY occurred_at, event_id
"""
SELECT_SNAPSHOTS_WITH_IDS = (
    "SELECT ticket_key, event_id, snapshot FROM ticket_event WHERE ticket_key = ANY($1::text[])"
)
UPDATE_TICKET_PINS = """
UPDATE ticket AS t SET policy = u.policy, policy_version = u.policy_version,
    calendar_versions = u.calendar_versions, evaluated_at = u.evaluated_at
FROM unnest($1::text[], $2::text[], $3::int[], $4::jsonb[], $5::timestamptz[])
     AS u(ticket_key, policy, policy_version, calendar_versions, evaluated_at)
WHERE t.ticket_key = u.ticket_key
"""

TIMER_COLUMNS = (
    "ticket_key, timer_key, metric, cycle, priority, policy, policy_version, calendar, state, superseded, "
    "started_at, attached_at, stopped_at, due_at, breaches_at, breached_at, evaluated_at, "
    "target_business_seconds, business_elapsed_seconds, announced_warnings, marks, next_due_at, "
    "retractions, source, kind, business_service, assignment_group, assignee, organization"
)
SELECT_TIMERS_FOR_UPDATE = f"""
SELECT {TIMER_COLUMNS} FROM sla_timer WHERE ticket_key = ANY($1::text[])
ORDER BY ticket_key, timer_key FOR UPDATE
"""
UPSERT_TIMERS = f"""
INSERT INTO sla_timer AS t ({TIMER_COLUMNS})
SELECT * FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::int[], $8::text[], $9::text[],
    $10::bool[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[], $14::timestamptz[],
    $15::timestamptz[], $16::timestamptz[], $17::timestamptz[], $18::int[], $19::int[], $20::jsonb[],
    $21::jsonb[], $22::timestamptz[], $23::int[], $24::text[], $25::text[], $26::text[], $27::text[],
    $28::text[], $29::text[]
) AS u
ON CONFLICT (ticket_key, timer_key) DO UPDATE SET
    metric = excluded.metric, cycle = excluded.cycle, priority = excluded.priority, policy = excluded.policy,
    policy_version = excluded.policy_version, calendar = excluded.calendar, state = excluded.state,
    superseded = excluded.superseded, started_at = excluded.started_at, attached_at = excluded.attached_at,
    stopped_at = excluded.stopped_at, due_at = excluded.due_at, breaches_at = excluded.breaches_at,
    breached_at = excluded.breached_at, evaluated_at = excluded.evaluated_at,
    target_business_seconds = excluded.target_business_seconds,
    business_elapsed_seconds = excluded.business_elapsed_seconds,
    announced_warnings = excluded.announced_warnings, marks = excluded.marks,
    next_due_at = excluded.next_due_at, retractions = excluded.retractions, source = excluded.source,
    kind = excluded.kind, business_service = excluded.business_service,
    assignment_group = excluded.assignment_group, assignee = excluded.assignee,
    organization = excluded.organization, updated_at = clock_timestamp()
"""
# The timers of the given tickets that are not among the (ticket, timer) pairs kept.
DELETE_TIMERS = """
DELETE FROM sla_timer WHERE ticket_key = ANY($1::text[])
AND (ticket_key, timer_key) NOT IN (SELECT * FROM unnest($2::text[], $3::text[]))
"""
CLAIM_DUE_TIMERS = f"""
SELECT {TIMER_COLUMNS} FROM sla_timer
WHERE next_due_at <= $1 ORDER BY next_due_at LIMIT $2
FOR UPDATE SKIP LOCKED
"""
UPDATE_FIRED = """
UPDATE sla_timer AS t SET
    state = u.state, breached_at = u.breached_at, announced_warnings = u.announced_warnings,
    marks = u.marks, next_due_at = u.next_due_at, business_elapsed_seconds = u.elapsed,
    evaluated_at = u.evaluated_at, updated_at = clock_timestamp()
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::jsonb[], $6::jsonb[],
            $7::timestamptz[], $8::int[], $9::timestamptz[])
     AS u(ticket_key, timer_key, state, breached_at, announced_warnings, marks, next_due_at, elapsed, evaluated_at)
WHERE t.ticket_key = u.ticket_key AND t.timer_key = u.timer_key
"""
NEXT_DUE = "SELECT min(next_due_at) FROM sla_timer WHERE next_due_at IS NOT NULL"
INSERT_EMISSIONS = """
INSERT INTO sla_emission (event_id, ticket_key, timer_key, kind, occurred_at, threshold_percent, retroactive,
                          emitted_at, lateness_seconds)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::float8[],
                     $7::bool[], $8::timestamptz[], $9::float8[])
ON CONFLICT (event_id) DO NOTHING
"""
SELECT_EMISSIONS = """
SELECT event_id, timer_key, kind, occurred_at, threshold_percent, retroactive, emitted_at
FROM sla_emission WHERE ticket_key = $1 ORDER BY occurred_at, emitted_at, event_id
"""
SELECT_TIMERS = f"""
SELECT {TIMER_COLUMNS} FROM sla_timer
WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR business_service = $2)
  AND ($3::text IS NULL OR priority = $3) AND ($4::text IS NULL OR metric = $4)
  AND ($5::text IS NULL OR (ticket_key, timer_key) > ($5, $6))
ORDER BY ticket_key, timer_key LIMIT $7
"""
SELECT_AT_RISK = f"""
SELECT {", ".join("t." + column.strip() for column in TIMER_COLUMNS.split(","))}, k.calendar_versions
FROM sla_timer t JOIN ticket k ON k.ticket_key = t.ticket_key
WHERE t.state = 'running' AND ($1::text IS NULL OR t.business_service = $1)
ORDER BY t.breaches_at, t.ticket_key, t.timer_key LIMIT $2
"""
SELECT_TICKETS_CREATED = """
SELECT ticket_key FROM ticket WHERE created_at >= $1 AND created_at < $2 ORDER BY ticket_key LIMIT $3
"""
COUNT_TIMERS_BY_STATE = "SELECT state, count(*) AS timers FROM sla_timer GROUP BY state"

SELECT_CALENDARS = "SELECT name, version, definition, created_at FROM sla_calendar ORDER BY name, version"
SELECT_POLICIES = "SELECT name, version, definition, created_at FROM sla_policy ORDER BY name, version"
SELECT_POLICY_ORDER = "SELECT name, version FROM sla_policy_order ORDER BY position"
INSERT_CALENDAR = "INSERT INTO sla_calendar (name, version, definition) VALUES ($1, $2, $3::jsonb)"
INSERT_POLICY = "INSERT INTO sla_policy (name, version, definition) VALUES ($1, $2, $3::jsonb)"
CLEAR_POLICY_ORDER = "DELETE FROM sla_policy_order"
INSERT_POLICY_ORDER = """
INSERT INTO sla_policy_order (position, name, version)
SELECT * FROM unnest($1::int[], $2::text[], $3::int[])
"""
LOCK_CONFIG = "SELECT pg_advisory_xact_lock(hashtext('bothways.sla.config'))"
CONFIG_STAMP = """
SELECT (SELECT count(*) FROM sla_calendar) + (SELECT count(*) FROM sla_policy)
       + (SELECT coalesce(sum(hashtext(name || version::text) * position), 0) FROM sla_policy_order)
"""


async def record_ticket_events(conn: Connection, *, snapshots: Sequence[tuple[str, TicketChanged]]) -> None:
    """Add snapshots to their tickets' histories and keep each ticket's newest one as its current state."""
    if not snapshots:
        return
    bodies = [ticket.model_dump_json() for _, ticket in snapshots]
    await conn.execute(
        INSERT_TICKET_EVENTS,
        [event_id for event_id, _ in snapshots],
        [ticket.ticket_key for _, ticket in snapshots],
        [ticket.occurred_at for _, ticket in snapshots],
        [str(ticket.change) for _, ticket in snapshots],
        [ticket.status_category.value for _, ticket in snapshots],
        bodies,
    )
    newest: dict[str, tuple[TicketChanged, str, int]] = {}
    for (_, ticket), body in zip(snapshots, bodies, strict=True):
        kept = newest.get(ticket.ticket_key)
        count = kept[2] + 1 if kept else 1
        if kept is None or ticket.occurred_at >= kept[0].occurred_at:
            newest[ticket.ticket_key] = (ticket, body, count)
        else:
            newest[ticket.ticket_key] = (kept[0], kept[1], count)
    rows = list(newest.values())
    await conn.execute(
        UPSERT_TICKETS,
        [ticket.ticket_key for ticket, _, _ in rows],
        [ticket.occurred_at for ticket, _, _ in rows],
        [ticket.status_category.value for ticket, _, _ in rows],
        [body for _, body, _ in rows],
        [count for _, _, count in rows],
        [ticket.created_at for ticket, _, _ in rows],
    )


async def lock_tickets(conn: Connection, *, ticket_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The tickets' pins, locked until the transaction ends (one evaluation of a ticket at a time)."""
    rows = await conn.fetch(LOCK_TICKETS, list(ticket_keys))
    return {
        row["ticket_key"]: {**dict(row), "calendar_versions": json.loads(row["calendar_versions"])}
        for row in rows
    }


async def snapshots_of(
    conn: Connection, *, ticket_keys: Sequence[str]
) -> dict[str, list[tuple[str, TicketChanged]]]:
    """Every stored snapshot of several tickets with its event id, by ticket."""
    grouped: dict[str, list[tuple[str, TicketChanged]]] = {key: [] for key in ticket_keys}
    for row in await conn.fetch(SELECT_SNAPSHOTS_WITH_IDS, list(ticket_keys)):
        grouped[row["ticket_key"]].append(
            (row["event_id"], TicketChanged.model_validate_json(row["snapshot"]))
        )
    return grouped


async def pin_tickets(conn: Connection, *, pins: Sequence[dict[str, Any]]) -> None:
    """Record the versions each ticket counts on and the instant it was evaluated at."""
    if not pins:
        return
    await conn.execute(
        UPDATE_TICKET_PINS,
        [pin["ticket_key"] for pin in pins],
        [pin["policy"] for pin in pins],
        [pin["policy_version"] for pin in pins],
        [json.dumps(pin["calendar_versions"]) for pin in pins],
        [pin["evaluated_at"] for pin in pins],
    )


async def timers_for_update(conn: Connection, *, ticket_keys: Sequence[str]) -> list[dict[str, Any]]:
    """The stored timers of some tickets, locked until the transaction ends."""
    return [_timer_row(row) for row in await conn.fetch(SELECT_TIMERS_FOR_UPDATE, list(ticket_keys))]


async def save_timers(
    conn: Connection, *, ticket_keys: Sequence[str], rows: Sequence[dict[str, Any]]
) -> None:
    """Replace the stored timers of these tickets with these rows."""
    await conn.execute(
        DELETE_TIMERS,
        list(ticket_keys),
        [row["ticket_key"] for row in rows],
        [row["timer_key"] for row in rows],
    )
    if rows:
        await conn.execute(UPSERT_TIMERS, *_columns(rows))


async def claim_due_timers(conn: Connection, *, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Timers with a mark due at `now`, locked; rows another replica holds are skipped."""
    return [_timer_row(row) for row in await conn.fetch(CLAIM_DUE_TIMERS, now, limit)]


async def update_fired(conn: Connection, *, rows: Sequence[dict[str, Any]]) -> None:
    """Store what firing changed on each timer."""
    if not rows:
        return
    await conn.execute(
        UPDATE_FIRED,
        [r["ticket_key"] for r in rows],
        [r["timer_key"] for r in rows],
        [r["state"] for r in rows],
        [r["breached_at"] for r in rows],
        [json.dumps(r["announced_warnings"]) for r in rows],
        [json.dumps(r["marks"]) for r in rows],
        [r["next_due_at"] for r in rows],
        [r["business_elapsed_seconds"] for r in rows],
        [r["evaluated_at"] for r in rows],
    )


async def next_due(conn: Connection) -> datetime | None:
    value: datetime | None = await conn.fetchval(NEXT_DUE)
    return value


async def record_emissions(conn: Connection, *, rows: Sequence[dict[str, Any]]) -> None:
    """Add emitted SLA events to the audit trail."""
    if not rows:
        return
    await conn.execute(
        INSERT_EMISSIONS,
        *(
            [row[name] for row in rows]
            for name in (
                "event_id",
                "ticket_key",
                "timer_key",
                "kind",
                "occurred_at",
                "threshold_percent",
                "retroactive",
                "emitted_at",
                "lateness_seconds",
            )
        ),
    )


async def emissions(conn: Connection, *, ticket_key: str) -> list[dict[str, Any]]:
    return [dict(row) for row in await conn.fetch(SELECT_EMISSIONS, ticket_key)]


async def list_timers(
    conn: Connection,
    *,
    state: str | None,
    business_service: str | None,
    priority: str | None,
    metric: str | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Timers in key order, filtered, after a keyset cursor."""
    after_ticket, after_timer = after or (None, None)
    rows = await conn.fetch(
        SELECT_TIMERS, state, business_service, priority, metric, after_ticket, after_timer, limit
    )
    return [_timer_row(row) for row in rows]


async def at_risk(conn: Connection, *, business_service: str | None, limit: int) -> list[dict[str, Any]]:
    """Running timers, the soonest to breach first."""
    return [_timer_row(row) for row in await conn.fetch(SELECT_AT_RISK, business_service, limit)]


async def tickets_created(conn: Connection, *, start: datetime, end: datetime, limit: int) -> list[str]:
    """Keys of the tickets created in [start, end)."""
    return [row["ticket_key"] for row in await conn.fetch(SELECT_TICKETS_CREATED, start, end, limit)]


async def timers_by_state(conn: Connection) -> dict[str, int]:
    return {row["state"]: row["timers"] for row in await conn.fetch(COUNT_TIMERS_BY_STATE)}


async def ticket_with_history(conn: Connection, *, ticket_key: str) -> dict[str, Any] | None:
    """The current snapshot of a ticket and its history, oldest first; None if unknown."""
    row = await conn.fetchrow(SELECT_TICKET, ticket_key)
    if row is None:
        return None
    history = await conn.fetch(SELECT_HISTORY, ticket_key)
    return {
        "ticket_key": row["ticket_key"],
        "as_of": row["occurred_at"],
        "status_category": row["status_category"],
        "current": json.loads(row["snapshot"]),
        "policy": row["policy"],
        "policy_version": row["policy_version"],
        "calendar_versions": json.loads(row["calendar_versions"]),
        "history": [dict(h) for h in history],
    }


# Configuration


async def stored_config(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    """Every stored calendar and policy version, and the policy order."""
    return {
        "calendars": [_definition_row(row) for row in await conn.fetch(SELECT_CALENDARS)],
        "policies": [_definition_row(row) for row in await conn.fetch(SELECT_POLICIES)],
        "order": [dict(row) for row in await conn.fetch(SELECT_POLICY_ORDER)],
    }


async def config_stamp(conn: Connection) -> int:
    """A number that changes whenever the stored configuration does."""
    return int(await conn.fetchval(CONFIG_STAMP))


async def lock_config(conn: Connection) -> None:
    """Serialise configuration changes across replicas until the transaction ends."""
    await conn.execute(LOCK_CONFIG)


async def add_calendar_version(
    conn: Connection, *, name: str, version: int, definition: dict[str, Any]
) -> None:
    await conn.execute(INSERT_CALENDAR, name, version, json.dumps(definition))


async def add_policy_version(
    conn: Connection, *, name: str, version: int, definition: dict[str, Any]
) -> None:
    await conn.execute(INSERT_POLICY, name, version, json.dumps(definition))


async def replace_policy_order(conn: Connection, *, order: Sequence[tuple[str, int]]) -> None:
    await conn.execute(CLEAR_POLICY_ORDER)
    await conn.execute(
        INSERT_POLICY_ORDER,
        list(range(len(order))),
        [name for name, _ in order],
        [version for _, version in order],
    )


def _definition_row(row: Any) -> dict[str, Any]:
    return {**dict(row), "definition": json.loads(row["definition"])}


def _timer_row(row: Any) -> dict[str, Any]:
    values = dict(row)
    values["marks"] = json.loads(values["marks"])
    values["announced_warnings"] = json.loads(values["announced_warnings"])
    if "calendar_versions" in values:
        values["calendar_versions"] = json.loads(values["calendar_versions"])
    return values


_UPSERT_ORDER = [name.strip() for name in TIMER_COLUMNS.split(",")]


def _columns(rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
    columns = []
    for name in _UPSERT_ORDER:
        values = [row[name] for row in rows]
        if name in ("marks", "announced_warnings"):
            values = [json.dumps(value) for value in values]
        columns.append(values)
    return columns
