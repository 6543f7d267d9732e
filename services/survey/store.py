"""The SQL of the survey service: persons, tickets, invitations, answers, campaigns and follow-ups."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from bothways.db import Connection

Row = asyncpg.Record


def storable(text: str) -> bool:
    """Whether PostgreSQL can store the text: no NUL character, no unpaired surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- persons and tickets ------------------------------------------------------------------------------

UPSERT_PERSON = """
INSERT INTO person AS p (person_id, identity, email, name, organization, first_seen_at, last_seen_at)
VALUES ($1, $2, $3, $4, $5, $6, $6)
ON CONFLICT (identity) DO UPDATE SET
    email = CASE WHEN excluded.last_seen_at >= p.last_seen_at THEN coalesce(excluded.email, p.email)
                 ELSE coalesce(p.email, excluded.email) END,
    name = CASE WHEN excluded.last_seen_at >= p.last_seen_at THEN coalesce(excluded.name, p.name)
                ELSE coalesce(p.name, excluded.name) END,
    organization = CASE WHEN excluded.last_seen_at >= p.last_seen_at
                        THEN coalesce(excluded.organization, p.organization)
                        ELSE coalesce(p.organization, excluded.organization) END,
    first_seen_at = least(p.first_seen_at, excluded.first_seen_at),
    last_seen_at = greatest(p.last_seen_at, excluded.last_seen_at)
RETURNING person_id
"""
SELECT_TICKET_FOR_UPDATE = (
    "SELECT occurred_at, status_category, cycle FROM ticket WHERE ticket_key = $1 FOR UPDATE"
)
UPSERT_TICKET = """
INSERT INTO ticket AS t (ticket_key, source, occurred_at, status_category, cycle, person_id,
                         business_service, organization)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (ticket_key) DO UPDATE SET
    occurred_at = excluded.occurred_at, status_category = excluded.status_category, cycle = excluded.cycle,
    person_id = coalesce(excluded.person_id, t.person_id), business_service = excluded.business_service,
    organization = excluded.organization
"""


@dataclass(frozen=True)
class PersonSeen:
    identity: str
    email: str | None
    name: str | None
    organization: str | None
    seen_at: datetime


async def upsert_person(conn: Connection, *, person: PersonSeen) -> str:
    """The pseudonymous id of a requester, created at first sight; newer sightings update the address."""
    person_id: str = await conn.fetchval(
        UPSERT_PERSON,
        uuid.uuid4().hex,
        person.identity,
        person.email,
        person.name,
        person.organization,
        person.seen_at,
    )
    return person_id


async def ticket_for_update(conn: Connection, *, ticket_key: str) -> Row | None:
    """The ticket's newest known state, locked until the transaction ends."""
    return await conn.fetchrow(SELECT_TICKET_FOR_UPDATE, ticket_key)


async def save_ticket(conn: Connection, *, values: Sequence[Any]) -> None:
    """Keep a ticket's newest state (key, source, occurred_at, category, cycle, person, service, organisation)."""
    await conn.execute(UPSERT_TICKET, *values)


# --- invitations: candidates and decisions -------------------------------------------------------------

INSERT_CANDIDATE = """
INSERT INTO invitation (invitation_id, kind, state, person_id, created_at, due_at, ticket_key, cycle,
                        source, external_id, ticket_kind, ticket_title, business_service,
                        assignment_group, assignee, priority, organization, resolved_at)
VALUES ($1, 'csat', 'pending', $2, clock_timestamp(), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT DO NOTHING
"""
CANCEL_UNSENT = """
UPDATE invitation SET state = 'canceled', reason_code = $2, reason = $3, due_at = NULL
WHERE ticket_key = $1 AND state IN ('pending', 'scheduled')
RETURNING *
"""
CLAIM_CANDIDATES = """
SELECT * FROM invitation WHERE state = 'pending' AND due_at <= $1
ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED
"""
LOCK_PERSONS = """
SELECT person_id, email FROM person WHERE person_id = ANY($1::text[]) ORDER BY person_id FOR UPDATE
"""
# What counts against the budget: invitations scheduled or sent, at the instant they were (or will be) sent.
BUDGET_HISTORY = """
SELECT person_id, kind, coalesce(sent_at, send_at) AS at FROM invitation
WHERE person_id = ANY($1::text[]) AND state IN ('scheduled', 'sending', 'sent', 'answered', 'expired')
  AND coalesce(sent_at, send_at) > $2 AND coalesce(sent_at, send_at) < $3
"""
SURVEYED_CYCLES = """
SELECT ticket_key, cycle FROM invitation
WHERE ticket_key = ANY($1::text[]) AND kind = 'csat'
  AND state IN ('scheduled', 'sending', 'sent', 'answered', 'expired')
"""
APPLY_DECISIONS = """
UPDATE invitation i SET state = d.state, rule = d.rule, scale = d.scale, expiry_seconds = d.expiry_seconds,
       send_at = d.send_at, due_at = CASE WHEN d.state = 'scheduled' THEN d.send_at END, reason_code = d.reason_code, reason = d.reason
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::integer[], $6::timestamptz[],
            $7::text[], $8::text[]) AS d(invitation_id, state, rule, scale, expiry_seconds, send_at,
                                         reason_code, reason)
WHERE i.invitation_id = d.invitation_id
RETURNING i.*
"""
INSERT_INVITATIONS = """
INSERT INTO invitation (invitation_id, kind, state, person_id, created_at, campaign_id, campaign_run,
                        resurvey_of, ticket_key, cycle, source, external_id, ticket_kind, ticket_title,
                        business_service, assignment_group, assignee, priority, organization, resolved_at,
                        rule, scale, expiry_seconds, send_at, due_at, reason_code, reason)
SELECT d.invitation_id, d.kind, d.state, d.person_id, clock_timestamp(), d.campaign_id, d.campaign_run,
       d.resurvey_of, d.ticket_key, d.cycle, d.source, d.external_id, d.ticket_kind, d.ticket_title,
       d.business_service, d.assignment_group, d.assignee, d.priority, d.organization, d.resolved_at,
       d.rule, d.scale, d.expiry_seconds, d.send_at, CASE WHEN d.state = 'scheduled' THEN d.send_at END,
       d.reason_code, d.reason
FROM jsonb_to_recordset($1::jsonb) AS d(
    invitation_id uuid, kind text, state text, person_id text, campaign_id text, campaign_run integer,
    resurvey_of uuid, ticket_key text, cycle integer, source text, external_id text, ticket_kind text,
    ticket_title text, business_service text, assignment_group text, assignee text, priority text,
    organization text, resolved_at timestamptz, rule text, scale text, expiry_seconds integer,
    send_at timestamptz, reason_code text, reason text)
ON CONFLICT DO NOTHING
RETURNING *
"""


@dataclass(frozen=True)
class Decision:
    """What became of a candidate: scheduled with a send instant, or throttled/excluded with a reason."""

    invitation_id: uuid.UUID
    state: str
    rule: str | None
    scale: str | None
    expiry_seconds: int | None
    send_at: datetime | None
    reason_code: str | None = None
    reason: str | None = None


async def insert_candidate(conn: Connection, *, values: Sequence[Any]) -> None:
    """A resolution to decide on; a second candidate for the same ticket and cycle is ignored."""
    await conn.execute(INSERT_CANDIDATE, *values)


async def cancel_unsent(conn: Connection, *, ticket_key: str, reason_code: str, reason: str) -> list[Row]:
    """Cancel the invitations of a ticket not sent yet; the canceled rows."""
    return list(await conn.fetch(CANCEL_UNSENT, ticket_key, reason_code, reason))


async def claim_candidates(conn: Connection, *, now: datetime, limit: int) -> list[Row]:
    """Lock the due candidates no other replica holds."""
    return list(await conn.fetch(CLAIM_CANDIDATES, now, limit))


async def lock_persons(conn: Connection, *, person_ids: Sequence[str]) -> dict[str, str | None]:
    """Lock the persons (the budget's mutex, in id order so replicas do not deadlock); id -> address."""
    rows = await conn.fetch(LOCK_PERSONS, sorted(set(person_ids)))
    return {row["person_id"]: row["email"] for row in rows}


async def budget_history(
    conn: Connection, *, person_ids: Sequence[str], since: datetime, until: datetime
) -> list[Row]:
    """The invitations of persons that count against their budget, in a window."""
    return list(await conn.fetch(BUDGET_HISTORY, list(person_ids), since, until))


async def surveyed_cycles(conn: Connection, *, ticket_keys: Sequence[str]) -> list[Row]:
    """The resolution cycles of tickets that were surveyed."""
    return list(await conn.fetch(SURVEYED_CYCLES, list(ticket_keys)))


async def apply_decisions(conn: Connection, *, decisions: Sequence[Decision]) -> list[Row]:
    """Record many decisions at once; the updated rows."""
    if not decisions:
        return []
    columns = (
        [d.invitation_id for d in decisions],
        [d.state for d in decisions],
        [d.rule for d in decisions],
        [d.scale for d in decisions],
        [d.expiry_seconds for d in decisions],
        [d.send_at for d in decisions],
        [d.reason_code for d in decisions],
        [d.reason for d in decisions],
    )
    return list(await conn.fetch(APPLY_DECISIONS, *columns))


async def insert_invitations(conn: Connection, *, rows: Sequence[dict[str, Any]]) -> list[Row]:
    """Insert decided invitations (campaign runs, re-surveys); a duplicate of an existing one is skipped."""
    if not rows:
        return []
    return list(await conn.fetch(INSERT_INVITATIONS, json.dumps(list(rows), default=str)))


# --- sending -------------------------------------------------------------------------------------------

FAIL_ABANDONED = """
UPDATE invitation SET state = 'failed', failed_at = $1, due_at = NULL, lease_until = NULL,
       last_error = 'the sender stopped before recording an outcome, on the last allowed attempt'
WHERE invitation_id IN (
    SELECT invitation_id FROM invitation
    WHERE state = 'sending' AND due_at <= $1 AND attempts - attempt_offset >= $2
    ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED)
RETURNING *
"""
CLAIM_SENDS = """
UPDATE invitation i SET state = 'sending', attempts = i.attempts + 1, channel = $4, lease_until = $3,
       due_at = $3, expires_at = $1 + make_interval(secs => i.expiry_seconds)
WHERE i.invitation_id IN (
    SELECT invitation_id FROM invitation WHERE state IN ('scheduled', 'sending') AND due_at <= $1
    ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING i.*
"""
ORPHAN_ATTEMPTS = """
UPDATE delivery_attempt SET outcome = 'unknown', finished_at = $2,
       error = 'lease expired: the sender stopped before recording an outcome'
WHERE invitation_id = ANY($1::uuid[]) AND outcome IS NULL
"""
INSERT_ATTEMPTS = """
INSERT INTO delivery_attempt (invitation_id, attempt, channel, started_at)
SELECT unnest($1::uuid[]), unnest($2::integer[]), $3, $4
"""
SELECT_PERSONS = "SELECT person_id, email, name FROM person WHERE person_id = ANY($1::text[])"
RECORD_DELIVERED = """
UPDATE invitation SET
    state = CASE WHEN state = 'sending' THEN 'sent' ELSE state END,
    due_at = CASE WHEN state = 'sending' THEN expires_at ELSE due_at END,
    sent_at = coalesce(sent_at, $3), lease_until = NULL, last_error = NULL
WHERE invitation_id = $1 AND attempts = $2 AND state IN ('sending', 'answered') AND sent_at IS NULL
RETURNING *
"""
RECORD_FAILED = """
UPDATE invitation SET
    state = CASE WHEN $4::timestamptz IS NULL THEN 'failed' ELSE 'scheduled' END,
    due_at = $4, failed_at = CASE WHEN $4::timestamptz IS NULL THEN $3::timestamptz END, lease_until = NULL,
    last_error = $5
WHERE invitation_id = $1 AND attempts = $2 AND state = 'sending'
RETURNING *
"""
FINISH_ATTEMPT = """
UPDATE delivery_attempt SET outcome = $3, finished_at = $4, error = $5
WHERE invitation_id = $1 AND attempt = $2 AND outcome IS NULL
"""
EXPIRE_DUE = """
UPDATE invitation SET state = 'expired', expired_at = expires_at, due_at = NULL
WHERE invitation_id IN (
    SELECT invitation_id FROM invitation WHERE state = 'sent' AND due_at <= $1
    ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING *
"""
RETRY_FAILED = """
UPDATE invitation SET state = 'scheduled', due_at = $2, attempt_offset = attempts, failed_at = NULL
WHERE invitation_id = $1 AND state = 'failed'
RETURNING *
"""


async def fail_abandoned(conn: Connection, *, now: datetime, max_attempts: int, limit: int) -> list[Row]:
    """Sends whose sender vanished on their last allowed attempt: failed, visibly."""
    rows = list(await conn.fetch(FAIL_ABANDONED, now, max_attempts, limit))
    await conn.execute(ORPHAN_ATTEMPTS, [row["invitation_id"] for row in rows], now)
    return rows


async def claim_sends(
    conn: Connection, *, now: datetime, limit: int, lease_until: datetime, channel: str
) -> list[Row]:
    """Claim due sends (and sends whose lease expired) and write their attempts before anything is sent."""
    rows = list(await conn.fetch(CLAIM_SENDS, now, limit, lease_until, channel))
    if rows:
        ids = [row["invitation_id"] for row in rows]
        await conn.execute(ORPHAN_ATTEMPTS, ids, now)
        await conn.execute(INSERT_ATTEMPTS, ids, [row["attempts"] for row in rows], channel, now)
    return rows


async def persons(conn: Connection, *, person_ids: Sequence[str]) -> dict[str, Row]:
    """Address and name of persons, by id."""
    rows = await conn.fetch(SELECT_PERSONS, list(person_ids))
    return {row["person_id"]: row for row in rows}


async def record_delivered(
    conn: Connection, *, invitation_id: uuid.UUID, attempt: int, now: datetime
) -> Row | None:
    """The send succeeded; None when the claim was lost to another sender meanwhile."""
    row = await conn.fetchrow(RECORD_DELIVERED, invitation_id, attempt, now)
    await conn.execute(FINISH_ATTEMPT, invitation_id, attempt, "delivered", now, None)
    return row


async def record_failed(
    conn: Connection,
    *,
    invitation_id: uuid.UUID,
    attempt: int,
    now: datetime,
    retry_at: datetime | None,
    error: str,
) -> Row | None:
    """The send failed: scheduled again at retry_at, or failed for good when retry_at is None."""
    row = await conn.fetchrow(RECORD_FAILED, invitation_id, attempt, now, retry_at, error)
    await conn.execute(FINISH_ATTEMPT, invitation_id, attempt, "failed", now, error)
    return row


async def expire_due(conn: Connection, *, now: datetime, limit: int) -> list[Row]:
    """Sent invitations past their deadline become expired."""
    return list(await conn.fetch(EXPIRE_DUE, now, limit))


async def retry_failed(conn: Connection, *, invitation_id: uuid.UUID, now: datetime) -> Row | None:
    """A failed invitation scheduled again with a fresh retry budget; None unless it had failed."""
    return await conn.fetchrow(RETRY_FAILED, invitation_id, now)


# --- reading invitations ------------------------------------------------------------------------------

SELECT_INVITATION = "SELECT * FROM invitation WHERE invitation_id = $1"
SELECT_INVITATION_FOR_UPDATE = "SELECT * FROM invitation WHERE invitation_id = $1 FOR UPDATE"
SELECT_ATTEMPTS = """
SELECT attempt, channel, started_at, finished_at, outcome, error FROM delivery_attempt
WHERE invitation_id = $1 ORDER BY attempt
"""
SELECT_ANSWERS = """
SELECT revision, score, reason, comment, answered_at FROM answer WHERE invitation_id = $1 ORDER BY revision
"""
LIST_INVITATIONS = """
SELECT * FROM invitation
WHERE state <> 'excluded' AND ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR ticket_key = $2)
  AND ($3::text IS NULL OR campaign_id = $3) AND ($4::text IS NULL OR kind = $4)
ORDER BY created_at DESC, invitation_id LIMIT $5 OFFSET $6
"""


async def invitation(conn: Connection, *, invitation_id: uuid.UUID, for_update: bool = False) -> Row | None:
    """One invitation, optionally locked."""
    return await conn.fetchrow(
        SELECT_INVITATION_FOR_UPDATE if for_update else SELECT_INVITATION, invitation_id
    )


async def attempts(conn: Connection, *, invitation_id: uuid.UUID) -> list[Row]:
    """The delivery attempts of an invitation, in order."""
    return list(await conn.fetch(SELECT_ATTEMPTS, invitation_id))


async def answers(conn: Connection, *, invitation_id: uuid.UUID) -> list[Row]:
    """Every answer given to an invitation, in order."""
    return list(await conn.fetch(SELECT_ANSWERS, invitation_id))


async def list_invitations(
    conn: Connection,
    *,
    state: str | None,
    ticket_key: str | None,
    campaign_id: str | None,
    kind: str | None,
    limit: int,
    offset: int,
) -> list[Row]:
    """Invitations (never the excluded), newest first."""
    return list(await conn.fetch(LIST_INVITATIONS, state, ticket_key, campaign_id, kind, limit, offset))


# --- answers ------------------------------------------------------------------------------------------

INSERT_ANSWER = """
INSERT INTO answer (invitation_id, revision, score, reason, comment, answered_at) VALUES ($1, $2, $3, $4, $5, $6)
"""
UPDATE_ANSWER = """
UPDATE invitation SET state = 'answered', score = $2, band = $3, answer_reason = $4, comment = $5,
       answered_at = $6, first_answered_at = coalesce(first_answered_at, $6), revision = $7, due_at = NULL,
       lease_until = NULL
WHERE invitation_id = $1
RETURNING *
"""


async def record_answer(
    conn: Connection,
    *,
    invitation_id: uuid.UUID,
    revision: int,
    score: int,
    band: str,
    reason: str | None,
    comment: str | None,
    now: datetime,
) -> Row:
    """Keep this revision and make it the invitation's current answer."""
    await conn.execute(INSERT_ANSWER, invitation_id, revision, score, reason, comment, now)
    row = await conn.fetchrow(UPDATE_ANSWER, invitation_id, score, band, reason, comment, now, revision)
    assert row is not None, "the invitation was locked by the caller"
    return row


# --- follow-ups ---------------------------------------------------------------------------------------

INSERT_FOLLOWUP = """
INSERT INTO followup (followup_id, invitation_id, state, opened_at, due_at) VALUES ($1, $2, 'open', $3, $4)
ON CONFLICT (invitation_id) DO NOTHING
RETURNING *
"""
FOLLOWUP_COLUMNS = """
f.followup_id, f.invitation_id, f.state, f.opened_at, f.due_at, f.overdue_at, f.closed_at, f.outcome,
f.note, f.resurvey_invitation_id, f.ticket_action, f.ticket_action_state, f.ticket_action_attempts,
f.ticket_action_error, i.kind, i.ticket_key, i.campaign_id, i.person_id, i.business_service,
i.assignment_group, i.assignee, i.priority, i.organization, i.source, i.external_id, i.score, i.band,
i.answer_reason, i.comment, i.scale
"""
LIST_FOLLOWUPS = f"""
SELECT {FOLLOWUP_COLUMNS} FROM followup f JOIN invitation i USING (invitation_id)
WHERE f.state = ANY($1::text[]) AND ($2::text IS NULL OR i.business_service = $2)
  AND ($3::text IS NULL OR i.assignment_group = $3)
ORDER BY f.due_at, f.followup_id LIMIT $4 OFFSET $5
"""
SELECT_FOLLOWUP = f"""
SELECT {FOLLOWUP_COLUMNS} FROM followup f JOIN invitation i USING (invitation_id) WHERE f.followup_id = $1
"""
LOCK_FOLLOWUP = "SELECT state FROM followup WHERE followup_id = $1 FOR UPDATE"
CLOSE_FOLLOWUP = """
UPDATE followup SET state = 'closed', closed_at = $2, outcome = $3, note = $4, resurvey_invitation_id = $5,
       ticket_action = $6, ticket_action_state = CASE WHEN $6::text IS NULL THEN NULL ELSE 'pending' END,
       ticket_action_due_at = CASE WHEN $6::text IS NULL THEN NULL ELSE $2::timestamptz END
WHERE followup_id = $1
"""
MARK_OVERDUE = f"""
WITH due AS (
    SELECT followup_id FROM followup WHERE state = 'open' AND due_at <= $1
    ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED),
marked AS (
    UPDATE followup f SET state = 'overdue', overdue_at = f.due_at FROM due
    WHERE f.followup_id = due.followup_id RETURNING f.*)
SELECT {FOLLOWUP_COLUMNS.replace("f.", "m.")} FROM marked m JOIN invitation i USING (invitation_id)
"""
CLAIM_TICKET_ACTIONS = f"""
WITH due AS (
    SELECT followup_id FROM followup WHERE ticket_action_due_at <= $1
    ORDER BY ticket_action_due_at LIMIT $2 FOR UPDATE SKIP LOCKED),
claimed AS (
    UPDATE followup f SET ticket_action_state = 'sending', ticket_action_attempts = f.ticket_action_attempts + 1,
           ticket_action_due_at = $3
    FROM due WHERE f.followup_id = due.followup_id RETURNING f.*)
SELECT {FOLLOWUP_COLUMNS.replace("f.", "c.")} FROM claimed c JOIN invitation i USING (invitation_id)
"""
RECORD_TICKET_ACTION = """
UPDATE followup SET ticket_action_state = $3, ticket_action_due_at = $4, ticket_action_error = $5
WHERE followup_id = $1 AND ticket_action_attempts = $2 AND ticket_action_state = 'sending'
"""
COUNT_FOLLOWUPS = "SELECT state, count(*) AS followups FROM followup WHERE state <> 'closed' GROUP BY state"


async def open_followup(
    conn: Connection, *, invitation_id: uuid.UUID, now: datetime, due_at: datetime
) -> Row | None:
    """A new follow-up for an unhappy answer; None when the invitation has one already."""
    return await conn.fetchrow(INSERT_FOLLOWUP, uuid.uuid4(), invitation_id, now, due_at)


async def list_followups(
    conn: Connection,
    *,
    states: Sequence[str],
    business_service: str | None,
    group: str | None,
    limit: int,
    offset: int,
) -> list[Row]:
    """Follow-ups in some states, the soonest due first."""
    return list(await conn.fetch(LIST_FOLLOWUPS, list(states), business_service, group, limit, offset))


async def followup(conn: Connection, *, followup_id: uuid.UUID) -> Row | None:
    """One follow-up with its invitation's answer and attribution."""
    return await conn.fetchrow(SELECT_FOLLOWUP, followup_id)


async def lock_followup(conn: Connection, *, followup_id: uuid.UUID) -> str | None:
    """Lock a follow-up; its state, or None when there is no such follow-up."""
    state: str | None = await conn.fetchval(LOCK_FOLLOWUP, followup_id)
    return state


async def close_followup(
    conn: Connection,
    *,
    followup_id: uuid.UUID,
    now: datetime,
    outcome: str,
    note: str | None,
    resurvey_invitation_id: uuid.UUID | None,
    ticket_action: str | None,
) -> None:
    """Record how a follow-up was closed (and queue its ticket action)."""
    await conn.execute(CLOSE_FOLLOWUP, followup_id, now, outcome, note, resurvey_invitation_id, ticket_action)


async def mark_overdue(conn: Connection, *, now: datetime, limit: int) -> list[Row]:
    """Open follow-ups past their due time become overdue."""
    return list(await conn.fetch(MARK_OVERDUE, now, limit))


async def claim_ticket_actions(
    conn: Connection, *, now: datetime, limit: int, lease_until: datetime
) -> list[Row]:
    """Claim due ticket webhooks with a lease."""
    return list(await conn.fetch(CLAIM_TICKET_ACTIONS, now, limit, lease_until))


async def record_ticket_action(
    conn: Connection,
    *,
    followup_id: uuid.UUID,
    attempt: int,
    state: str,
    retry_at: datetime | None,
    error: str | None,
) -> None:
    """Record a ticket webhook's outcome, if the claim is still ours."""
    await conn.execute(RECORD_TICKET_ACTION, followup_id, attempt, state, retry_at, error)


async def followup_counts(conn: Connection) -> dict[str, int]:
    """Follow-ups not closed, per state."""
    return {row["state"]: row["followups"] for row in await conn.fetch(COUNT_FOLLOWUPS)}


# --- campaigns ----------------------------------------------------------------------------------------

INSERT_CAMPAIGN = """
INSERT INTO campaign (campaign_id, name, question, comment_prompt, active_within_days, business_services,
                      organizations, first_run_at, every_days, expiry_seconds, next_run_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $8, $11)
RETURNING *
"""
SELECT_CAMPAIGN = "SELECT * FROM campaign WHERE campaign_id = $1"
LIST_CAMPAIGNS = "SELECT * FROM campaign ORDER BY created_at DESC, campaign_id LIMIT $1 OFFSET $2"
SELECT_RUNS = "SELECT * FROM campaign_run WHERE campaign_id = $1 ORDER BY run"
STOP_CAMPAIGN = """
UPDATE campaign SET stopped_at = coalesce(stopped_at, $2), next_run_at = NULL WHERE campaign_id = $1 RETURNING *
"""
CLAIM_CAMPAIGNS = """
SELECT * FROM campaign WHERE next_run_at <= $1 ORDER BY next_run_at LIMIT $2 FOR UPDATE SKIP LOCKED
"""
# Requesters with ticket activity in the window, optionally of some business services or organisations.
POPULATION = """
SELECT DISTINCT ON (t.person_id) t.person_id, t.business_service, coalesce(t.organization, p.organization) AS organization
FROM ticket t JOIN person p USING (person_id)
WHERE t.occurred_at > $1 AND t.occurred_at <= $2
  AND (cardinality($3::text[]) = 0 OR t.business_service = ANY($3::text[]))
  AND (cardinality($4::text[]) = 0 OR coalesce(t.organization, p.organization) = ANY($4::text[]))
ORDER BY t.person_id, t.occurred_at DESC
"""
INSERT_RUN = """
INSERT INTO campaign_run (campaign_id, run, run_at, population, scheduled, throttled)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
"""
ADVANCE_CAMPAIGN = "UPDATE campaign SET runs = $2, next_run_at = $3 WHERE campaign_id = $1"


async def insert_campaign(conn: Connection, *, values: Sequence[Any]) -> Row:
    """Store a new campaign."""
    row = await conn.fetchrow(INSERT_CAMPAIGN, *values)
    assert row is not None, "an insert returns its row"
    return row


async def campaign(conn: Connection, *, campaign_id: str) -> Row | None:
    """One campaign."""
    return await conn.fetchrow(SELECT_CAMPAIGN, campaign_id)


async def list_campaigns(conn: Connection, *, limit: int, offset: int) -> list[Row]:
    """Campaigns, newest first."""
    return list(await conn.fetch(LIST_CAMPAIGNS, limit, offset))


async def campaign_runs(conn: Connection, *, campaign_id: str) -> list[Row]:
    """What each run of a campaign found and did."""
    return list(await conn.fetch(SELECT_RUNS, campaign_id))


async def stop_campaign(conn: Connection, *, campaign_id: str, now: datetime) -> Row | None:
    """No further runs of a campaign."""
    return await conn.fetchrow(STOP_CAMPAIGN, campaign_id, now)


async def claim_campaigns(conn: Connection, *, now: datetime, limit: int) -> list[Row]:
    """Lock the campaigns whose run is due."""
    return list(await conn.fetch(CLAIM_CAMPAIGNS, now, limit))


async def population(
    conn: Connection,
    *,
    since: datetime,
    until: datetime,
    business_services: Sequence[str],
    organizations: Sequence[str],
) -> list[Row]:
    """Requesters with ticket activity in a window, with their latest ticket's service."""
    return list(await conn.fetch(POPULATION, since, until, list(business_services), list(organizations)))


async def record_run(conn: Connection, *, values: Sequence[Any]) -> None:
    """Keep what a campaign run found and did."""
    await conn.execute(INSERT_RUN, *values)


async def advance_campaign(
    conn: Connection, *, campaign_id: str, runs: int, next_run_at: datetime | None
) -> None:
    """Count a run and set the next one."""
    await conn.execute(ADVANCE_CAMPAIGN, campaign_id, runs, next_run_at)


# --- the scheduler's horizon --------------------------------------------------------------------------

NEXT_DUE = """
SELECT least(
    (SELECT min(due_at) FROM invitation WHERE due_at IS NOT NULL),
    (SELECT min(next_run_at) FROM campaign WHERE next_run_at IS NOT NULL),
    (SELECT min(due_at) FROM followup WHERE state = 'open'),
    (SELECT min(ticket_action_due_at) FROM followup WHERE ticket_action_due_at IS NOT NULL))
"""


async def next_due(conn: Connection) -> datetime | None:
    """The earliest instant any survey work is due."""
    due: datetime | None = await conn.fetchval(NEXT_DUE)
    return due


# --- results ------------------------------------------------------------------------------------------

RESULTS_FILTER = """
($3::text IS NULL OR business_service = $3) AND ($4::text IS NULL OR assignment_group = $4)
AND ($5::text IS NULL OR kind = $5) AND ($6::text IS NULL OR campaign_id = $6)
AND ($7::text IS NULL OR organization = $7)
"""
RESULTS_GROUP = {
    "business_service": "business_service",
    "group": "assignment_group",
    "assignee": "assignee",
    "priority": "priority",
    "organization": "organization",
    "source": "source",
}


def results_sql(group_by: str | None) -> str:
    """Per kind, scale and band (and breakdown key): invitations sent and answers first given in [from, to)."""
    key = RESULTS_GROUP[group_by] if group_by else "NULL::text"
    return f"""
SELECT {key} AS breakdown, kind, scale, band,
       count(*) FILTER (WHERE sent_at >= $1 AND sent_at < $2) AS sent,
       count(*) FILTER (WHERE first_answered_at >= $1 AND first_answered_at < $2) AS responses,
       coalesce(sum(score) FILTER (WHERE first_answered_at >= $1 AND first_answered_at < $2), 0) AS score_sum
FROM invitation
WHERE ((sent_at >= $1 AND sent_at < $2) OR (first_answered_at >= $1 AND first_answered_at < $2))
  AND {RESULTS_FILTER}
GROUP BY 1, 2, 3, 4
"""


async def result_counts(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    group_by: str | None,
    business_service: str | None,
    group: str | None,
    kind: str | None,
    campaign_id: str | None,
    organization: str | None,
) -> list[Row]:
    """Invitations sent and responses per kind, scale and band, optionally per breakdown key."""
    return list(
        await conn.fetch(
            results_sql(group_by), start, end, business_service, group, kind, campaign_id, organization
        )
    )
