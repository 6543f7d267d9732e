"""Each consumer killed with SIGKILL in turn under simulated load ends where a run without kills ends."""

from __future__ import annotations

import asyncio
import collections
import json
from typing import Any

import asyncpg
import httpx
import pytest
import yaml

from bothways.events import decode_record
from tests.reliability.load import INGEST_ENV, replay, simulated_days
from tests.support import API_KEY, eventually

pytestmark = pytest.mark.reliability

CONSUMERS = ("sla", "survey", "reporting")
# Every resolution surveyed and none sent during the test (no mail server needed): the invitations'
# states are then a function of the tickets alone. A cooldown of a second keeps the fatigue budget,
# which depends on the order candidates are decided in, out of the comparison.
SURVEY_RULES = {
    "csat": {"rules": [{"name": "all", "delay": "3650d"}], "max_age": "3650d"},
    "fatigue": {"cooldown": {"csat": "1s", "nps": "1s"}},
}
TIMER_COLUMNS = (
    "ticket_key, timer_key, metric, cycle, priority, policy, state, superseded, started_at, stopped_at, "
    "due_at, breaches_at, breached_at, business_service, assignment_group"
)


async def settled(database_url: str) -> tuple[int, ...] | None:
    """Counts of what each service took in and sent out, once every event has travelled its whole way."""
    conn = await asyncpg.connect(database_url)
    try:
        unsent = sum(
            [
                await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox WHERE sent_at IS NULL")
                for schema in ("ingest", "sla", "survey")
            ]
        )
        tickets = await conn.fetchval(
            "SELECT count(DISTINCT event_id) FROM ingest.outbox WHERE topic LIKE '%tickets.v1'"
        )
        ingested = await conn.fetchval("SELECT count(DISTINCT event_id) FROM ingest.outbox")
        emitted = await conn.fetchval(
            "SELECT count(*) FROM (SELECT event_id FROM sla.outbox UNION SELECT event_id FROM survey.outbox) e"
        )
        taken = [
            await conn.fetchval(f"SELECT count(*) FROM {schema}.inbox")
            for schema in ("sla", "survey", "reporting")
        ]
        due = await conn.fetchval("SELECT count(*) FROM sla.sla_timer WHERE next_due_at <= now()")
        pending = await conn.fetchval(
            "SELECT count(*) FROM survey.invitation WHERE state = 'pending' AND due_at <= now()"
        )
    finally:
        await conn.close()
    counts = (ingested, tickets, emitted, *taken)
    arrived = taken == [ingested, tickets, tickets + emitted]
    return counts if unsent == 0 and arrived and due == 0 and pending == 0 and ingested else None


async def quiet(database_url: str) -> tuple[int, ...]:
    """Wait until the run has settled and stays so for a second (no late scheduler work)."""
    first = await eventually(lambda: settled(database_url), timeout=90, interval=0.5)
    await asyncio.sleep(1)
    again = await settled(database_url)
    assert again == first, (first, again)
    return first


async def final_state(database_url: str, reporting_url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url)
    try:
        timers = [
            # A paused timer's deadlines are projected from now: they differ between any two runs.
            tuple(r) if r["state"] != "paused" else (*tuple(r)[:10], None, None, *tuple(r)[12:])
            for r in await conn.fetch(f"SELECT {TIMER_COLUMNS} FROM sla.sla_timer")
        ]
        invitations = [
            # A canceled invitation keeps no send time when it was canceled before it was decided on.
            (
                r["ticket_key"],
                r["cycle"],
                r["state"],
                r["reason_code"],
                r["send_at"] if r["state"] == "scheduled" else None,
            )
            for r in await conn.fetch("SELECT * FROM survey.invitation")
        ]
        # reporting's copy of each timer against sla's own
        disagreeing = [
            tuple(r)
            for r in await conn.fetch(
                "SELECT s.ticket_key, s.timer_key, s.state, r.state, s.stopped_at, r.stopped_at, "
                "s.breached_at, r.breached_at, s.business_service, r.business_service "
                "FROM sla.sla_timer s LEFT JOIN reporting.sla_timer r USING (ticket_key, timer_key) "
                "WHERE (r.state, r.stopped_at, r.business_service, r.priority) "
                "IS DISTINCT FROM (s.state, s.stopped_at, s.business_service, s.priority) "
                "OR (s.state = 'breached' AND r.breached_at IS DISTINCT FROM s.breached_at)"
            )
        ]
        dropped = [
            tuple(r)
            for r in await conn.fetch(
                "SELECT r.ticket_key, r.timer_key, r.state, r.metric, r.stopped_at FROM reporting.sla_timer r "
                "LEFT JOIN sla.sla_timer s USING (ticket_key, timer_key) WHERE s.ticket_key IS NULL"
            )
        ]
        emitted = [
            decode_record([(n, v.encode()) for n, v in json.loads(r["headers"])], r["value"])
            for r in await conn.fetch(
                "SELECT headers, value FROM sla.outbox UNION ALL SELECT headers, value FROM survey.outbox"
            )
        ]
    finally:
        await conn.close()
    async with httpx.AsyncClient(
        base_url=reporting_url, headers={"authorization": f"Bearer {API_KEY}"}
    ) as client:
        response = await client.get("/scorecards", params={"period": "2026-10"})
        assert response.status_code == 200, response.text
    return {
        "timers": sorted(timers),
        "invitations": sorted(invitations, key=repr),
        "scorecards": response.json(),
        "emitted": emitted,
        "disagreeing": disagreeing,
        "dropped": dropped,
    }


def logical_change(envelope: Any) -> tuple[Any, ...]:
    """What one emitted event says happened: a second event id for it would be a duplicate."""
    data = envelope.data
    return (
        envelope.type,
        envelope.subject,
        getattr(data, "timer_key", None),
        getattr(data, "invitation_id", None),
        getattr(data, "threshold_percent", None),
        data.occurred_at,
    )


def duplicated(emitted: list[Any]) -> list[tuple[Any, ...]]:
    ids_per_change = collections.defaultdict(set)
    for envelope in emitted:
        if envelope.type.endswith((".breached", ".breach_retracted")):
            continue  # a breach again after a retraction is a new event: net_breaches checks these
        ids_per_change[logical_change(envelope)].add(envelope.id)
    return [change for change, ids in ids_per_change.items() if len(ids) > 1]


def differences(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Where two JSON documents differ, as paths with both values."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        return [
            d
            for key in sorted(actual.keys() | expected.keys(), key=str)
            for d in differences(actual.get(key), expected.get(key), f"{path}.{key}")
        ]
    if isinstance(actual, list) and isinstance(expected, list) and len(actual) == len(expected):
        return [
            d
            for i, (a, e) in enumerate(zip(actual, expected, strict=True))
            for d in differences(a, e, f"{path}[{i}]")
        ]
    return [] if actual == expected else [f"{path}: {actual!r} != {expected!r}"]


def net_breaches(emitted: list[Any]) -> set[tuple[str, str]]:
    """The timers whose announced breaches outnumber their retractions."""
    net: collections.Counter[tuple[str, str]] = collections.Counter()
    for envelope in emitted:
        step = {"breached": 1, "breach_retracted": -1}.get(envelope.type.rsplit(".", 1)[1], 0)
        if step:
            net[(envelope.data.ticket_key, envelope.data.timer_key)] += step
    assert all(n in (0, 1) for n in net.values()), net
    return {timer for timer, n in net.items() if n == 1}


async def test_each_consumer_killed_in_turn_under_load_ends_as_a_run_without_kills(
    start, another_database, namespace, tmp_path
) -> None:
    rules = tmp_path / "surveys.yaml"
    rules.write_text(yaml.safe_dump(SURVEY_RULES))
    facts = simulated_days(days=3)

    async def stack(database_url: str, prefix: str) -> dict[str, Any]:
        env = {
            "BOTHWAYS_DATABASE_URL": database_url,
            "BOTHWAYS_KAFKA_NAMESPACE": prefix,
            "BOTHWAYS_SURVEY_RULES_FILE": str(rules),
        }
        services = {name: await start(name, **env) for name in CONSUMERS}
        services["ingest"] = await start("ingest", **env, **INGEST_ENV)
        return {"env": env, "services": services}

    # The reference: the same simulation through the same services, nobody killed.
    reference_url = await another_database()
    reference = await stack(reference_url, f"{namespace}ref.")
    report = await replay(reference["services"]["ingest"].url, facts)
    assert (report.accepted, report.failed, report.rejected) == (len(facts), 0, {}), report.samples
    reference_counts = await quiet(reference_url)
    expected = await final_state(reference_url, reference["services"]["reporting"].url)

    killed_url = await another_database()
    killed = await stack(killed_url, f"{namespace}kill.")
    kills: list[str] = []

    async def kill_each_in_turn() -> None:
        for name in CONSUMERS:
            await asyncio.sleep(3)
            process = killed["services"][name].process
            process.kill()  # SIGKILL: no lifespan shutdown, no commit, no goodbye
            process.wait()
            kills.append(name)
            await asyncio.sleep(0.5)
            killed["services"][name] = await start(name, **killed["env"])

    killer = asyncio.create_task(kill_each_in_turn())
    report = await replay(killed["services"]["ingest"].url, facts, seconds=15)
    await killer
    assert (report.accepted, report.failed, report.rejected) == (len(facts), 0, {}), report.samples
    counts = await quiet(killed_url)
    actual = await final_state(killed_url, killed["services"]["reporting"].url)

    doubled = duplicated(actual["emitted"])
    breaches = sum(1 for t in actual["timers"] if t[6] == "breached")
    print(
        f"{len(facts):,} webhooks x 2 runs, {len(kills)} kills ({', '.join(kills)}), "
        f"{counts[0]:,} events ingested, {len(actual['timers']):,} SLA timers ({breaches} breached), "
        f"{len(actual['invitations']):,} survey invitations, {len(actual['scorecards']['scorecards'])} scorecards, "
        f"{len(actual['emitted']):,} events emitted, "
        f"{len(doubled)} duplicated; reporting's copy of the SLA timers disagrees with sla's on "
        f"{len(actual['disagreeing'])} timers (reference run: {len(expected['disagreeing'])})"
    )
    # What the services emitted along the way depends on timing (a breach announced before a later
    # snapshot disproves it, then retracted), so the runs are compared by what they end with.
    assert counts[:2] == reference_counts[:2]
    assert actual["timers"] == expected["timers"]
    assert actual["invitations"] == expected["invitations"]
    assert actual["scorecards"] == expected["scorecards"], differences(
        actual["scorecards"], expected["scorecards"]
    )
    # Reporting's copy of the timers, folded from sla's events alone, ends as sla's own timers do.
    assert actual["disagreeing"] == [], actual["disagreeing"]
    assert expected["disagreeing"] == [], expected["disagreeing"]
    # Timers sla dropped (a corrected creation) are cancelled in reporting's copy, so no longer counted.
    assert {t[2] for run in (actual, expected) for t in run["dropped"]} <= {"cancelled"}
    assert doubled == [], doubled
    assert duplicated(expected["emitted"]) == []
    # No breach announced twice without a retraction between, and the timers left with an announced
    # breach are the breached ones.
    breached = {(t[0], t[1]) for t in actual["timers"] if t[6] == "breached"}
    for run in (actual, expected):
        cancelled = {
            (e.data.ticket_key, e.data.timer_key) for e in run["emitted"] if e.type.endswith(".cancelled")
        }
        assert net_breaches(run["emitted"]) - cancelled == breached
