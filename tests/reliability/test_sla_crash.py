"""The sla service killed with SIGKILL while timers fall due: it catches up, and announces each change once."""

from __future__ import annotations

import asyncio
import collections
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import yaml

from bothways.events import TicketChanged, Topic, decode_record, deterministic_id, envelope_for
from services.sla.calendar import BusinessClock, Calendar
from services.sla.policy import Policy
from services.sla.timers import compute_timers
from tests.support import eventually, publish, read_topic

pytestmark = pytest.mark.reliability

ALWAYS = {
    "name": "always",
    "timezone": "UTC",
    "weekly": {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
}
POLICY = {
    "name": "fast",
    "version": 1,
    "metrics": {
        "first_response": {"calendar": "always", "targets": {"default": "3s"}, "warnings": [50]},
        "resolution": {"calendar": "always", "targets": {"default": "8s"}, "warnings": [50, 75]},
    },
}
TICKETS = 150


def story(number: int, created: datetime) -> list[TicketChanged]:
    """Ticket n: created; a third answered at 1 s, a third resolved at 2 s, a third left running."""
    base = {
        "ticket_key": f"generic:r{number}",
        "source": "generic",
        "external_id": f"r{number}",
        "created_at": created,
        "priority": "P3",
        "business_service": "email",
    }
    snapshots = [
        TicketChanged.model_validate(
            {**base, "occurred_at": created, "status": "New", "status_category": "new", "change": "created"}
        )
    ]
    if number % 3 == 1:
        answered = created + timedelta(seconds=1)
        snapshots.append(
            TicketChanged.model_validate(
                {
                    **base,
                    "occurred_at": answered,
                    "status": "Open",
                    "status_category": "open",
                    "change": "commented_public_agent",
                    "first_public_agent_response_at": answered,
                }
            )
        )
    elif number % 3 == 2:
        snapshots.append(
            TicketChanged.model_validate(
                {
                    **base,
                    "occurred_at": created + timedelta(seconds=2),
                    "status": "Resolved",
                    "status_category": "resolved",
                }
            )
        )
    return snapshots


async def stored_states(database_url: str) -> dict[tuple[str, str], str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT ticket_key, timer_key, state, next_due_at FROM sla.sla_timer")
    finally:
        await conn.close()
    return (
        {(r["ticket_key"], r["timer_key"]): r["state"] for r in rows}
        if all(r["next_due_at"] is None for r in rows) and len(rows) == 2 * TICKETS
        else {}
    )


async def test_sla_killed_while_timers_fall_due_catches_up_and_announces_each_change_once(
    start, settings_for, service_env, database_url, tmp_path: Path
) -> None:
    config = tmp_path / "sla.yaml"
    config.write_text(yaml.safe_dump({"calendars": [ALWAYS], "policies": [POLICY]}))
    settings = settings_for("sla")
    created = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    histories = {f"generic:r{n}": story(n, created) for n in range(TICKETS)}
    envelopes = [
        envelope_for(
            s,
            event_id=deterministic_id("reliability", s.ticket_key, s.occurred_at.isoformat()),
            source="/test",
        )
        for history in histories.values()
        for s in history
    ]

    sla = await start("sla", BOTHWAYS_SLA_CONFIG_FILE=str(config))
    await publish(settings.kafka_bootstrap_servers, settings.topic(Topic.TICKETS), envelopes)
    kills = 0
    # Kill it twice: once while the events are being applied, once while the marks fall due.
    for pause in (0.5, 3.0):
        await asyncio.sleep(pause)
        sla.process.kill()
        sla.process.wait()
        kills += 1
        await asyncio.sleep(1.5)  # marks fall due while nobody is there
        sla = await start("sla", BOTHWAYS_SLA_CONFIG_FILE=str(config))

    final = await eventually(lambda: stored_states(database_url), timeout=60)

    # The reference: the same histories computed purely, as a run without any kill would end.
    clocks = {"always": BusinessClock(Calendar.from_config(ALWAYS))}
    policy = Policy.from_config(POLICY)
    late = datetime.now(UTC) + timedelta(minutes=1)
    expected = {
        (key, state.key): state.status.value
        for key, history in histories.items()
        for state in compute_timers(history, policy=policy, calendars=clocks, now=late)
    }
    assert final == expected

    # Every change announced once: one id per (timer, kind, instant); redeliveries reuse the id.
    records = await read_topic(
        settings.kafka_bootstrap_servers, settings.topic(Topic.SLA), count=10**6, timeout=8
    )
    events = {}
    for record in records:
        envelope = decode_record(record.headers, record.value)
        events[envelope.id] = envelope.data
    per_change = collections.Counter(
        (e.ticket_key, e.timer_key, e.type, e.occurred_at, getattr(e, "threshold_percent", None))
        for e in events.values()
    )
    duplicated = [change for change, ids in per_change.items() if ids > 1]
    # A breach announced while the consumer was down can be disproved by an event it had not read
    # yet; it is then retracted. Net of retractions, the announced breaches are the final ones.
    announced: dict[tuple[str, str], int] = collections.Counter()
    for e in events.values():
        step = {"breached": 1, "breach_retracted": -1}.get(e.type.rsplit(".", 1)[1], 0)
        announced[(e.ticket_key, e.timer_key)] += step
    retracted = sum(1 for e in events.values() if e.type.endswith(".breach_retracted"))
    print(
        f"{len(envelopes)} ticket events, {kills} kills, {len(records)} SLA records read, "
        f"{len(events)} distinct events, {sum(announced.values())} net breaches "
        f"({retracted} retracted after late events), {len(duplicated)} duplicated"
    )
    assert duplicated == []
    assert {timer for timer, net in announced.items() if net == 1} == {
        timer for timer, state in expected.items() if state == "breached"
    }
    assert all(net in (0, 1) for net in announced.values())
    assert all(state in ("met", "breached") for state in final.values())
