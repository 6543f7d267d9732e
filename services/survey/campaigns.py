"""NPS campaigns: relationship surveys of the requesters active in a window, one-off or every N days."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bothways.db import Connection
from bothways.events import SurveyKind
from bothways.outbox import enqueue
from bothways.scheduler import wake_scheduler
from services.survey import fatigue, store
from services.survey.delivery import Channel
from services.survey.fatigue import Throttle, ThrottleCode
from services.survey.invitations import announcements, budget_history, reachable
from services.survey.questions import Scale
from services.survey.rules import SurveyRules


@dataclass(frozen=True)
class CampaignSpec:
    """What an administrator asks for."""

    name: str
    active_within_days: int
    business_services: Sequence[str]
    organizations: Sequence[str]
    first_run_at: datetime
    every_days: int | None
    question: str
    comment_prompt: str
    expiry: timedelta


def next_run_after(*, first_run_at: datetime, every_days: int | None, now: datetime) -> datetime | None:
    """The first scheduled run after `now`; runs missed during downtime are not made up in a burst."""
    if every_days is None:
        return None
    period = timedelta(days=every_days)
    if now < first_run_at:
        return first_run_at
    return first_run_at + period * ((now - first_run_at) // period + 1)


async def create_campaign(conn: Connection, *, spec: CampaignSpec, now: datetime) -> store.Row:
    """Store a campaign; its first run is due at `first_run_at` (at once when that has passed)."""
    row = await store.insert_campaign(
        conn,
        values=(
            str(uuid.uuid4()),
            spec.name,
            spec.question,
            spec.comment_prompt,
            spec.active_within_days,
            list(spec.business_services),
            list(spec.organizations),
            spec.first_run_at,
            spec.every_days,
            int(spec.expiry.total_seconds()),
            now,
        ),
    )
    await wake_scheduler(conn)
    return row


async def run_due_campaigns(
    conn: Connection, *, rules: SurveyRules, channel: Channel, now: datetime, limit: int
) -> int:
    """Run every campaign whose run is due: invite its population within the fatigue budget."""
    invited = 0
    for campaign in await store.claim_campaigns(conn, now=now, limit=limit):
        invited += await _run(conn, campaign=campaign, rules=rules, channel=channel, now=now)
    return invited


async def _run(
    conn: Connection, *, campaign: store.Row, rules: SurveyRules, channel: Channel, now: datetime
) -> int:
    run = campaign["runs"] + 1
    members = await store.population(
        conn,
        since=now - timedelta(days=campaign["active_within_days"]),
        until=now,
        business_services=campaign["business_services"],
        organizations=campaign["organizations"],
    )
    person_ids = [member["person_id"] for member in members]
    addresses = await store.lock_persons(conn, person_ids=person_ids)
    history = await budget_history(conn, rules=rules, person_ids=person_ids, around=now)
    rows = []
    for member in members:
        person_id = member["person_id"]
        throttle = (
            None
            if reachable(channel, person_id=person_id, address=addresses.get(person_id))
            else Throttle(ThrottleCode.NO_ADDRESS, "the person has no address to send the survey to")
        )
        throttle = throttle or fatigue.verdict(
            rules.fatigue, kind=SurveyKind.NPS, at=now, history=history[person_id]
        )
        rows.append(_invitation(campaign, run=run, member=member, throttle=throttle, now=now))
    inserted = await store.insert_invitations(conn, rows=rows)
    await enqueue(conn, announcements(inserted, now=now))
    scheduled = sum(1 for row in inserted if row["state"] == "scheduled")
    await store.record_run(
        conn, values=(campaign["campaign_id"], run, now, len(members), scheduled, len(inserted) - scheduled)
    )
    await store.advance_campaign(
        conn,
        campaign_id=campaign["campaign_id"],
        runs=run,
        next_run_at=next_run_after(
            first_run_at=campaign["first_run_at"], every_days=campaign["every_days"], now=now
        ),
    )
    return len(inserted)


def _invitation(
    campaign: store.Row, *, run: int, member: store.Row, throttle: Throttle | None, now: datetime
) -> dict[str, Any]:
    # Attributed to the business service of the person's latest ticket in the window, so a
    # relationship score can be read per service next to its SLA figures.
    return {
        "invitation_id": str(uuid.uuid4()),
        "kind": SurveyKind.NPS.value,
        "state": "throttled" if throttle else "scheduled",
        "person_id": member["person_id"],
        "campaign_id": campaign["campaign_id"],
        "campaign_run": run,
        "business_service": member["business_service"],
        "organization": member["organization"],
        "scale": Scale.NPS.value,
        "expiry_seconds": campaign["expiry_seconds"],
        "send_at": now.isoformat(),
        "reason_code": throttle.code.value if throttle else None,
        "reason": throttle.reason if throttle else None,
    }
