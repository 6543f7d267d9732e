"""What the SLA API shows: timers computed live from the history, stored timers in pages, at-risk lists."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from bothways.db import Connection
from bothways.errors import InvalidInput, NotFound
from services.sla import store
from services.sla.policy import Metric, PolicyConfigError
from services.sla.rulebook import parse_policies
from services.sla.simulation import Compliance, simulate
from services.sla.timers import TimerState, breach_summary
from services.sla.tracker import RULES, compute_for_ticket


async def ticket_slas(conn: Connection, *, ticket_key: str, now: datetime) -> dict[str, Any]:
    """A ticket's timers as of `now` under the versions it is pinned to, with the audit trail."""
    ticket = await store.ticket_with_history(conn, ticket_key=ticket_key)
    if ticket is None:
        raise NotFound(f"no ticket {ticket_key!r} has been seen")
    rulebook = await RULES.get(conn)
    policy = rulebook.policy(ticket["policy"], ticket["policy_version"]) if ticket["policy"] else None
    states: list[TimerState] = []
    if policy is not None:
        stored = await store.snapshots_of(conn, ticket_keys=[ticket_key])
        history = [snapshot for _, snapshot in stored[ticket_key]]
        states = compute_for_ticket(
            history, policy=policy, pins=ticket["calendar_versions"], rulebook=rulebook, now=now
        )
    return {
        "ticket_key": ticket_key,
        "evaluated_at": now,
        "policy": ticket["policy"],
        "policy_version": ticket["policy_version"],
        "calendar_versions": ticket["calendar_versions"],
        "timers": [_timer_out(state) for state in states],
        "summary": [
            {"metric": metric.value, **asdict(breach_summary(states, metric=metric))}
            for metric in Metric
            if any(state.metric is metric for state in states)
        ],
        "audit": await store.emissions(conn, ticket_key=ticket_key),
    }


async def timer_page(
    conn: Connection,
    *,
    state: str | None,
    business_service: str | None,
    priority: str | None,
    metric: str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """One page of stored timers and the cursor of the next page."""
    rows = await store.list_timers(
        conn,
        state=state,
        business_service=business_service,
        priority=priority,
        metric=metric,
        after=_decode_cursor(cursor) if cursor else None,
        limit=limit,
    )
    last = rows[-1] if len(rows) == limit else None
    return {
        "items": rows,
        "next_cursor": _encode_cursor(last["ticket_key"], last["timer_key"]) if last else None,
    }


async def at_risk(
    conn: Connection, *, business_service: str | None, limit: int, now: datetime
) -> list[dict[str, Any]]:
    """Running timers by breach instant, with the business seconds left on their pinned calendar."""
    rulebook = await RULES.get(conn)
    rows = await store.at_risk(conn, business_service=business_service, limit=limit)
    for row in rows:
        clocks = rulebook.clocks(row.pop("calendar_versions"))
        clock = clocks.get(row["calendar"])
        left = (
            clock.business_seconds_between(start=now, end=row["due_at"])
            if clock and now < row["due_at"]
            else 0
        )
        row["remaining_business_seconds"] = left
    return rows


def _timer_out(state: TimerState) -> dict[str, Any]:
    return {
        "timer_key": state.key,
        "metric": state.metric.value,
        "cycle": state.cycle,
        "priority": state.priority.value if state.priority else None,
        "policy": state.policy,
        "policy_version": state.policy_version,
        "calendar": state.calendar,
        "state": state.status.value,
        "started_at": state.started_at,
        "attached_at": state.attached_at,
        "stopped_at": state.stopped_at,
        "due_at": state.due_at,
        "breached_at": state.breached_at,
        "breach_retroactive": state.breach_retroactive,
        "superseded": state.superseded,
        "target": str(state.target),
        "target_business_seconds": state.target_business_seconds,
        "business_elapsed_seconds": state.business_elapsed_seconds,
        "paused_business_seconds": state.paused_business_seconds,
        "actual_elapsed_seconds": state.actual_elapsed_seconds,
        "remaining_business_seconds": state.remaining_business_seconds,
        "overdue_business_seconds": state.overdue_business_seconds,
        "percent_elapsed": state.percent_elapsed,
        "warnings": [_mark(mark) for mark in state.warnings],
        "pending_warnings": [_mark(mark) for mark in state.pending_warnings],
        "pauses": [
            {"start": p.start, "end": p.end, "reason": p.reason, "kind": p.kind.value} for p in state.pauses
        ],
        "explanation": list(state.explanation),
    }


def _mark(mark: Any) -> dict[str, Any]:
    return {"percent": mark.percent, "at": mark.at, "retroactive": mark.retroactive}


def _encode_cursor(ticket_key: str, timer_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([ticket_key, timer_key]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        ticket_key, timer_key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as error:
        raise InvalidInput("cursor: not a cursor this API returned") from error
    if not isinstance(ticket_key, str) or not isinstance(timer_key, str):
        raise InvalidInput("cursor: not a cursor this API returned")
    return ticket_key, timer_key


SIMULATION_TICKET_LIMIT = 100_000
_SIMULATION_CHUNK = 500


async def simulate_policy(
    conn: Connection, *, name: str, definition: dict[str, Any], start: datetime, end: datetime, now: datetime
) -> dict[str, Any]:
    """Compliance a draft policy would have had on the tickets created in [start, end), emitting nothing."""
    rulebook = await RULES.get(conn, fresh=True)
    try:
        [(policy, _)] = parse_policies(
            [{**definition, "name": name}], calendars=set(rulebook.current_calendars)
        )
    except PolicyConfigError as error:
        raise InvalidInput(str(error)) from error
    clocks = rulebook.clocks(rulebook.pins_for(policy, keep={}))
    keys = await store.tickets_created(conn, start=start, end=end, limit=SIMULATION_TICKET_LIMIT + 1)
    tally = Compliance()
    for offset in range(0, min(len(keys), SIMULATION_TICKET_LIMIT), _SIMULATION_CHUNK):
        chunk = keys[offset : offset + _SIMULATION_CHUNK]
        stored = await store.snapshots_of(conn, ticket_keys=chunk)
        histories = [[snapshot for _, snapshot in history] for history in stored.values() if history]
        simulate(histories, policy=policy, clocks=clocks, now=now, into=tally)
    return {
        "policy": name,
        "period_start": start,
        "period_end": end,
        "truncated": len(keys) > SIMULATION_TICKET_LIMIT,
        **tally.report(),
    }
