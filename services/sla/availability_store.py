"""The SQL of the availability part of the sla service (tables of migration 0003).

Kept apart from store.py, which holds the SLA timers' SQL: the two share no table, and each file stays
readable on its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bothways.db import Connection
from bothways.events import OutageSignal

SELECT_SERVICES = """
SELECT id, definition, maintenance, created_at, updated_at FROM business_service ORDER BY id
"""
SELECT_SERVICE = """
SELECT id, definition, maintenance, created_at, updated_at FROM business_service WHERE id = $1
"""
LOCK_SERVICE = """
SELECT id, definition, maintenance, created_at, updated_at FROM business_service WHERE id = $1 FOR UPDATE
"""
LOCK_CATALOGUE = "SELECT pg_advisory_xact_lock(hashtext('bothways.sla.catalogue'))"
UPSERT_SERVICE = """
INSERT INTO business_service AS s (id, definition, next_evaluation_at) VALUES ($1, $2::jsonb, $3)
ON CONFLICT (id) DO UPDATE SET definition = excluded.definition, updated_at = clock_timestamp(),
    next_evaluation_at = least(s.next_evaluation_at, excluded.next_evaluation_at)
"""
UPDATE_MAINTENANCE = (
    "UPDATE business_service SET maintenance = $2::jsonb, updated_at = clock_timestamp() WHERE id = $1"
)
EVALUATE_BY = """
UPDATE business_service SET next_evaluation_at = least(coalesce(next_evaluation_at, $2), $2) WHERE id = $1
"""
SET_NEXT_EVALUATION = "UPDATE business_service SET next_evaluation_at = $2 WHERE id = $1"
CLAIM_DUE_SERVICES = """
SELECT id FROM business_service WHERE next_evaluation_at <= $1
ORDER BY next_evaluation_at LIMIT $2 FOR UPDATE SKIP LOCKED
"""
NEXT_EVALUATION = "SELECT min(next_evaluation_at) FROM business_service"
SELECT_SETTING = "SELECT value FROM availability_setting WHERE name = $1"
UPSERT_SETTING = """
INSERT INTO availability_setting (name, value) VALUES ($1, $2::jsonb)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = clock_timestamp()
"""

INSERT_SIGNAL_EVENT = """
INSERT INTO outage_signal_event (event_id, signal_key, kind, occurred_at, started_at, ended_at, impact, planned,
                                 payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
ON CONFLICT (event_id) DO NOTHING RETURNING event_id
"""
SELECT_SIGNAL_EVENTS = """
SELECT event_id, kind, occurred_at, started_at, ended_at, impact, planned FROM outage_signal_event
WHERE signal_key = $1
"""
SIGNAL_COLUMNS = (
    "signal_key, source, business_service, reported_service, service_reference, labels, title, episodes"
)
# An advisory lock as well as the row lock: a signal's first event has no row to lock yet.
LOCK_SIGNAL_KEY = "SELECT pg_advisory_xact_lock(hashtext('bothways.sla.signal'), hashtext($1))"
LOCK_SIGNAL = f"SELECT {SIGNAL_COLUMNS} FROM outage_signal WHERE signal_key = $1 FOR UPDATE"
LOCK_SIGNALS = f"SELECT {SIGNAL_COLUMNS} FROM outage_signal ORDER BY signal_key FOR UPDATE"
UPSERT_SIGNAL = f"""
INSERT INTO outage_signal ({SIGNAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb)
ON CONFLICT (signal_key) DO UPDATE SET
    source = excluded.source, business_service = excluded.business_service,
    reported_service = excluded.reported_service, service_reference = excluded.service_reference,
    labels = excluded.labels, title = excluded.title, episodes = excluded.episodes, updated_at = clock_timestamp()
"""
SELECT_EXISTING_SIGNALS = "SELECT signal_key FROM outage_signal WHERE signal_key = ANY($1::text[])"
SET_SIGNAL_SERVICE = """
UPDATE outage_signal SET business_service = $2, updated_at = clock_timestamp() WHERE signal_key = $1
"""
SELECT_SERVICE_SIGNALS = (
    f"SELECT {SIGNAL_COLUMNS} FROM outage_signal WHERE business_service = $1 ORDER BY signal_key"
)
SELECT_MAPPED_SIGNALS = f"""
SELECT {SIGNAL_COLUMNS} FROM outage_signal WHERE business_service IS NOT NULL ORDER BY business_service, signal_key
"""
SELECT_LATEST_TICKET = "SELECT snapshot FROM ticket WHERE ticket_key = $1"

OUTAGE_COLUMNS = "id, business_service, started_at, restored_at, impact, status, signals, revision"
SELECT_OUTAGES = f"""
SELECT {OUTAGE_COLUMNS} FROM service_outage WHERE business_service = $1 AND status <> 'withdrawn'
ORDER BY started_at, id
"""
SELECT_OUTAGE_PAGE = f"""
SELECT {OUTAGE_COLUMNS} FROM service_outage
WHERE business_service = $1 AND ($2 OR status <> 'withdrawn')
  AND ($3::timestamptz IS NULL OR coalesce(restored_at, 'infinity') > $3)
  AND ($4::timestamptz IS NULL OR started_at < $4)
ORDER BY started_at DESC, id DESC LIMIT $5
"""
INSERT_OUTAGE = """
INSERT INTO service_outage (business_service, started_at, restored_at, impact, status, signals, revision)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) RETURNING id
"""
UPDATE_OUTAGE = """
UPDATE service_outage SET started_at = $2, restored_at = $3, impact = $4, status = $5, signals = $6::jsonb,
    revision = $7, updated_at = clock_timestamp()
WHERE id = $1
"""

MONTH_COLUMNS = "business_service, period, period_start, period_end, as_of, final, figures, revision"
SELECT_MONTHS = f"SELECT {MONTH_COLUMNS} FROM availability_month WHERE business_service = $1 ORDER BY period"
SELECT_ALL_MONTHS = f"SELECT {MONTH_COLUMNS} FROM availability_month ORDER BY business_service, period"
UPSERT_MONTH = """
INSERT INTO availability_month AS m (business_service, period, period_start, period_end, as_of, final, figures,
                                     revision)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)
ON CONFLICT (business_service, period) DO UPDATE SET
    period_start = excluded.period_start, period_end = excluded.period_end, as_of = excluded.as_of,
    final = excluded.final, figures = excluded.figures, revision = excluded.revision
"""
SET_MONTH_FINAL = "UPDATE availability_month SET final = $3 WHERE business_service = $1 AND period = $2"

SELECT_BURN_STATES = "SELECT alert, firing, since FROM burn_alert_state WHERE business_service = $1"
UPSERT_BURN_STATE = """
INSERT INTO burn_alert_state (business_service, alert, firing, since) VALUES ($1, $2, $3, $4)
ON CONFLICT (business_service, alert) DO UPDATE SET firing = excluded.firing, since = excluded.since
"""

INSERT_ANOMALIES = """
INSERT INTO availability_anomaly (kind, signal_key, event_id, business_service, detail)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
ON CONFLICT (kind, signal_key, detail) DO NOTHING
"""
OPEN_UNMAPPED = """
INSERT INTO availability_anomaly (kind, signal_key, event_id, business_service, detail)
VALUES ('unmapped_service', $1, '', NULL, $2)
ON CONFLICT (signal_key) WHERE kind = 'unmapped_service' DO UPDATE SET detail = excluded.detail, resolved_at = NULL
"""
RESOLVE_UNMAPPED = """
UPDATE availability_anomaly SET resolved_at = $2
WHERE kind = 'unmapped_service' AND signal_key = $1 AND resolved_at IS NULL
"""
SELECT_ANOMALIES = """
SELECT id, kind, signal_key, event_id, business_service, detail, recorded_at, resolved_at FROM availability_anomaly
WHERE ($1 OR resolved_at IS NULL) AND ($2::text IS NULL OR kind = $2)
ORDER BY recorded_at DESC, id DESC LIMIT $3
"""
COUNT_OPEN_ANOMALIES = """
SELECT kind, count(*) AS anomalies FROM availability_anomaly WHERE resolved_at IS NULL GROUP BY kind
"""

INSERT_AUDIT = """
INSERT INTO availability_audit (business_service, period, kind, cause, detail) VALUES ($1, $2, $3, $4, $5::jsonb)
"""
SELECT_AUDIT = """
SELECT id, business_service, period, kind, cause, detail, recorded_at FROM availability_audit
WHERE business_service = $1 AND ($2::text IS NULL OR period = $2)
ORDER BY recorded_at DESC, id DESC LIMIT $3
"""


# The catalogue


def _service_row(row: Any) -> dict[str, Any]:
    return {
        **dict(row),
        "definition": json.loads(row["definition"]),
        "maintenance": json.loads(row["maintenance"]),
    }


async def services(conn: Connection) -> list[dict[str, Any]]:
    """Every catalogue entry with its maintenance windows, by id."""
    return [_service_row(row) for row in await conn.fetch(SELECT_SERVICES)]


async def service(conn: Connection, *, service_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(SELECT_SERVICE, service_id)
    return _service_row(row) if row else None


async def lock_service(conn: Connection, *, service_id: str) -> dict[str, Any] | None:
    """A catalogue entry, locked until the transaction ends (one recomputation of a service at a time)."""
    row = await conn.fetchrow(LOCK_SERVICE, service_id)
    return _service_row(row) if row else None


async def lock_catalogue(conn: Connection) -> None:
    """Serialise catalogue changes across replicas until the transaction ends."""
    await conn.execute(LOCK_CATALOGUE)


async def put_service(
    conn: Connection, *, service_id: str, definition: dict[str, Any], now: datetime
) -> None:
    await conn.execute(UPSERT_SERVICE, service_id, json.dumps(definition), now)


async def set_maintenance(conn: Connection, *, service_id: str, windows: list[dict[str, Any]]) -> None:
    await conn.execute(UPDATE_MAINTENANCE, service_id, json.dumps(windows))


async def evaluate_by(conn: Connection, *, service_id: str, at: datetime) -> None:
    """Have the scheduler evaluate a service no later than `at`."""
    await conn.execute(EVALUATE_BY, service_id, at)


async def set_next_evaluation(conn: Connection, *, service_id: str, at: datetime | None) -> None:
    await conn.execute(SET_NEXT_EVALUATION, service_id, at)


async def claim_due_services(conn: Connection, *, now: datetime, limit: int) -> list[str]:
    """Services due for evaluation at `now`, locked; those another replica holds are skipped."""
    return [row["id"] for row in await conn.fetch(CLAIM_DUE_SERVICES, now, limit)]


async def next_evaluation(conn: Connection) -> datetime | None:
    value: datetime | None = await conn.fetchval(NEXT_EVALUATION)
    return value


async def setting(conn: Connection, *, name: str) -> Any:
    value = await conn.fetchval(SELECT_SETTING, name)
    return None if value is None else json.loads(value)


async def put_setting(conn: Connection, *, name: str, value: Any) -> None:
    await conn.execute(UPSERT_SETTING, name, json.dumps(value))


# Signals


async def record_signal_event(conn: Connection, *, event_id: str, kind: str, signal: OutageSignal) -> bool:
    """Keep a signal event; False when its id was seen before."""
    inserted = await conn.fetchval(
        INSERT_SIGNAL_EVENT,
        event_id,
        signal.signal_key,
        kind,
        signal.occurred_at,
        signal.started_at,
        signal.ended_at,
        signal.impact.value,
        signal.planned,
        signal.model_dump_json(),
    )
    return inserted is not None


async def signal_events(conn: Connection, *, signal_key: str) -> list[dict[str, Any]]:
    return [dict(row) for row in await conn.fetch(SELECT_SIGNAL_EVENTS, signal_key)]


def _signal_row(row: Any) -> dict[str, Any]:
    return {**dict(row), "labels": json.loads(row["labels"]), "episodes": json.loads(row["episodes"])}


async def lock_signal(conn: Connection, *, signal_key: str) -> dict[str, Any] | None:
    """A signal's row (None before its first event), locked until the transaction ends."""
    await conn.execute(LOCK_SIGNAL_KEY, signal_key)
    row = await conn.fetchrow(LOCK_SIGNAL, signal_key)
    return _signal_row(row) if row else None


async def lock_signals(conn: Connection) -> list[dict[str, Any]]:
    """Every signal, locked, for remapping after a catalogue change."""
    return [_signal_row(row) for row in await conn.fetch(LOCK_SIGNALS)]


async def save_signal(conn: Connection, *, row: dict[str, Any]) -> None:
    await conn.execute(
        UPSERT_SIGNAL,
        row["signal_key"],
        row["source"],
        row["business_service"],
        row["reported_service"],
        row["service_reference"],
        json.dumps(row["labels"]),
        row["title"],
        json.dumps(row["episodes"]),
    )


async def existing_signals(conn: Connection, *, signal_keys: Sequence[str]) -> set[str]:
    """Which of these signals have been seen."""
    return {row["signal_key"] for row in await conn.fetch(SELECT_EXISTING_SIGNALS, list(signal_keys))}


async def set_signal_service(conn: Connection, *, signal_key: str, service_id: str | None) -> None:
    await conn.execute(SET_SIGNAL_SERVICE, signal_key, service_id)


async def service_signals(conn: Connection, *, service_id: str) -> list[dict[str, Any]]:
    return [_signal_row(row) for row in await conn.fetch(SELECT_SERVICE_SIGNALS, service_id)]


async def mapped_signals(conn: Connection) -> list[dict[str, Any]]:
    return [_signal_row(row) for row in await conn.fetch(SELECT_MAPPED_SIGNALS)]


async def latest_ticket(conn: Connection, *, ticket_key: str) -> str | None:
    """The newest snapshot of a ticket by occurred_at, as JSON text."""
    value: str | None = await conn.fetchval(SELECT_LATEST_TICKET, ticket_key)
    return value


# Merged outages


def _outage_row(row: Any) -> dict[str, Any]:
    return {**dict(row), "signals": json.loads(row["signals"])}


async def outages(conn: Connection, *, service_id: str) -> list[dict[str, Any]]:
    """A service's outages that are not withdrawn, oldest first."""
    return [_outage_row(row) for row in await conn.fetch(SELECT_OUTAGES, service_id)]


async def outage_page(
    conn: Connection,
    *,
    service_id: str,
    withdrawn: bool,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    """A service's outages overlapping [start, end), newest first."""
    rows = await conn.fetch(SELECT_OUTAGE_PAGE, service_id, withdrawn, start, end, limit)
    return [_outage_row(row) for row in rows]


async def insert_outage(conn: Connection, *, service_id: str, outage: dict[str, Any]) -> int:
    outage_id: int = await conn.fetchval(
        INSERT_OUTAGE,
        service_id,
        outage["started_at"],
        outage["restored_at"],
        outage["impact"],
        outage["status"],
        json.dumps(outage["signals"]),
        outage["revision"],
    )
    return outage_id


async def update_outage(conn: Connection, *, outage: dict[str, Any]) -> None:
    await conn.execute(
        UPDATE_OUTAGE,
        outage["id"],
        outage["started_at"],
        outage["restored_at"],
        outage["impact"],
        outage["status"],
        json.dumps(outage["signals"]),
        outage["revision"],
    )


# Published months


def _month_row(row: Any) -> dict[str, Any]:
    return {**dict(row), "figures": json.loads(row["figures"])}


async def months(conn: Connection, *, service_id: str) -> list[dict[str, Any]]:
    return [_month_row(row) for row in await conn.fetch(SELECT_MONTHS, service_id)]


async def all_months(conn: Connection) -> list[dict[str, Any]]:
    return [_month_row(row) for row in await conn.fetch(SELECT_ALL_MONTHS)]


async def save_month(conn: Connection, *, row: dict[str, Any]) -> None:
    await conn.execute(
        UPSERT_MONTH,
        row["business_service"],
        row["period"],
        row["period_start"],
        row["period_end"],
        row["as_of"],
        row["final"],
        json.dumps(row["figures"]),
        row["revision"],
    )


async def set_month_final(conn: Connection, *, service_id: str, period: str, final: bool) -> None:
    await conn.execute(SET_MONTH_FINAL, service_id, period, final)


# Burn-rate alerts, anomalies, audit


async def burn_states(conn: Connection, *, service_id: str) -> dict[str, dict[str, Any]]:
    return {row["alert"]: dict(row) for row in await conn.fetch(SELECT_BURN_STATES, service_id)}


async def save_burn_state(
    conn: Connection, *, service_id: str, alert: str, firing: bool, since: datetime
) -> None:
    await conn.execute(UPSERT_BURN_STATE, service_id, alert, firing, since)


async def record_anomalies(conn: Connection, *, rows: Sequence[dict[str, Any]]) -> None:
    """Keep anomalies; the same one (kind, signal, detail) is kept once, with the first event that showed it."""
    if not rows:
        return
    await conn.execute(
        INSERT_ANOMALIES,
        *(
            [row[name] for row in rows]
            for name in ("kind", "signal_key", "event_id", "business_service", "detail")
        ),
    )


async def open_unmapped(conn: Connection, *, signal_key: str, detail: str) -> None:
    await conn.execute(OPEN_UNMAPPED, signal_key, detail)


async def resolve_unmapped(conn: Connection, *, signal_key: str, at: datetime) -> None:
    await conn.execute(RESOLVE_UNMAPPED, signal_key, at)


async def anomalies(
    conn: Connection, *, resolved: bool, kind: str | None, limit: int
) -> list[dict[str, Any]]:
    return [dict(row) for row in await conn.fetch(SELECT_ANOMALIES, resolved, kind, limit)]


async def open_anomaly_counts(conn: Connection) -> dict[str, int]:
    return {row["kind"]: row["anomalies"] for row in await conn.fetch(COUNT_OPEN_ANOMALIES)}


async def audit(
    conn: Connection,
    *,
    service_id: str | None,
    period: str | None,
    kind: str,
    cause: str,
    detail: dict[str, Any],
) -> None:
    """Add an entry to the audit trail."""
    await conn.execute(INSERT_AUDIT, service_id, period, kind, cause, json.dumps(detail, default=str))


async def audit_trail(
    conn: Connection, *, service_id: str, period: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(SELECT_AUDIT, service_id, period, limit)
    return [{**dict(row), "detail": json.loads(row["detail"])} for row in rows]
