"""The survey service's due work, one scheduler step: decide candidates, run campaigns, claim sends,
expire unanswered invitations, mark follow-ups overdue. Sends happen after the step commits."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from bothways.db import Connection
from bothways.outbox import enqueue
from bothways.scheduler import DueStep, StepResult
from bothways.web import Runtime
from services.survey import campaigns, facts, followups, invitations, store
from services.survey.metrics import DELIVERY_FAILURES
from services.survey.runtime import Survey, survey_of

# Campaign runs lock their whole population: a few per step keeps the transaction short.
CAMPAIGNS_PER_STEP = 2


def step_for(runtime: Runtime) -> DueStep:
    """The scheduler step of a running survey service."""
    return partial(due_work, survey=survey_of(runtime), batch=runtime.settings.scheduler_batch_size)


async def due_work(conn: Connection, now: datetime, *, survey: Survey, batch: int) -> StepResult:
    """Everything due at `now`, in one transaction; the claimed sends are handed over to after the commit."""
    settings, rules = survey.settings, survey.rules
    channel = settings.survey_channel
    done = await invitations.decide_candidates(conn, rules=rules, channel=channel, now=now, limit=batch)
    done += await campaigns.run_due_campaigns(
        conn, rules=rules, channel=channel, now=now, limit=CAMPAIGNS_PER_STEP
    )
    done += await _fail_abandoned(conn, now=now, max_attempts=settings.survey_max_attempts, limit=batch)
    lease_until = now + timedelta(seconds=settings.survey_send_lease_seconds)
    claimed = await store.claim_sends(
        conn, now=now, limit=settings.survey_send_batch, lease_until=lease_until, channel=channel.value
    )
    parcels = await survey.courier.parcels(conn, claimed=claimed, rules=rules)
    actions = await store.claim_ticket_actions(
        conn, now=now, limit=settings.survey_send_batch, lease_until=lease_until
    )
    done += len(claimed) + len(actions)
    done += await _expire(conn, now=now, limit=batch)
    done += await followups.mark_overdue(conn, now=now, limit=batch)
    after_commit = partial(survey.courier.deliver, parcels, actions) if parcels or actions else None
    return StepResult(done=done, next_due=await store.next_due(conn), after_commit=after_commit)


async def _fail_abandoned(conn: Connection, *, now: datetime, max_attempts: int, limit: int) -> int:
    rows = await store.fail_abandoned(conn, now=now, max_attempts=max_attempts, limit=limit)
    await enqueue(conn, [facts.delivery_failed(row) for row in rows])
    for row in rows:
        DELIVERY_FAILURES.labels(row["channel"] or "unknown", "final").inc()
    return len(rows)


async def _expire(conn: Connection, *, now: datetime, limit: int) -> int:
    rows = await store.expire_due(conn, now=now, limit=limit)
    await enqueue(conn, [facts.expired(row) for row in rows])
    return len(rows)
