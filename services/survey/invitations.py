"""Transactional CSAT over the database: tickets tracked into resolution cycles, candidates decided in batches."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from bothways.db import Connection
from bothways.events import Envelope, StatusCategory, SurveyKind, TicketChanged
from bothways.outbox import enqueue
from bothways.scheduler import wake_scheduler
from services.survey import csat, cycles, facts, store
from services.survey.delivery import Channel
from services.survey.fatigue import PastInvitation, ThrottleCode
from services.survey.metrics import THROTTLED, service_label
from services.survey.rules import SurveyRules, TicketFacts


async def track_ticket(conn: Connection, *, ticket: TicketChanged) -> None:
    """Remember the requester and the ticket; a new resolution becomes a candidate, a reopen cancels."""
    ticket = storable_ticket(ticket)
    person_id = await _person(conn, ticket=ticket)
    previous = await store.ticket_for_update(conn, ticket_key=ticket.ticket_key)
    known = (
        None
        if previous is None
        else cycles.TicketState(
            previous["occurred_at"], StatusCategory(previous["status_category"]), previous["cycle"]
        )
    )
    change = cycles.transition(known, ticket)
    if change.late:
        return
    await store.save_ticket(
        conn,
        values=(
            ticket.ticket_key,
            ticket.source,
            change.state.occurred_at,
            change.state.status_category.value,
            change.state.cycle,
            person_id,
            ticket.business_service,
            ticket.organization,
        ),
    )
    if change.resolved_cycle is not None:
        await _add_candidate(conn, ticket=ticket, cycle=change.resolved_cycle, person_id=person_id)
    if change.undone_by is not None:
        await _cancel_unsent(conn, ticket=ticket, undone_by=change.undone_by)


def storable_ticket(ticket: TicketChanged) -> TicketChanged:
    """The ticket without what PostgreSQL cannot store (NUL, unpaired surrogates): a platform's odd title
    must not keep its requester from being asked."""
    if all(map(store.storable, _texts(ticket.model_dump()))):
        return ticket
    return TicketChanged.model_validate(_cleaned(ticket.model_dump()))


def _texts(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _cleaned(value: object) -> object:
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {key: _cleaned(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_cleaned(item) for item in value]
    return value


async def _person(conn: Connection, *, ticket: TicketChanged) -> str | None:
    requester = ticket.requester
    if requester is None or not (requester.email or requester.id):
        return None
    # The address identifies a person across platforms; an id only within its own platform.
    email = requester.email.strip().lower() if requester.email else None
    identity = email or f"{ticket.source}:{requester.id}"
    seen = store.PersonSeen(identity, email, requester.name, ticket.organization, ticket.occurred_at)
    return await store.upsert_person(conn, person=seen)


async def _add_candidate(
    conn: Connection, *, ticket: TicketChanged, cycle: int, person_id: str | None
) -> None:
    resolved_at = ticket.resolved_at or ticket.occurred_at
    await store.insert_candidate(
        conn,
        values=(
            uuid.uuid4(),
            person_id,
            # Decided at once by the scheduler, which holds the rules and the clock.
            ticket.occurred_at,
            ticket.ticket_key,
            cycle,
            ticket.source,
            ticket.external_id,
            ticket.kind.value,
            ticket.title,
            ticket.business_service,
            ticket.assignment_group,
            ticket.assignee,
            ticket.priority.value if ticket.priority else None,
            ticket.organization,
            resolved_at,
        ),
    )
    await wake_scheduler(conn)


async def _cancel_unsent(conn: Connection, *, ticket: TicketChanged, undone_by: StatusCategory) -> None:
    code = ThrottleCode.CANCELED if undone_by is StatusCategory.CANCELED else ThrottleCode.REOPENED
    reason = f"the ticket was {'canceled' if code is ThrottleCode.CANCELED else 'reopened'} before the survey was sent"
    rows = await store.cancel_unsent(
        conn, ticket_key=ticket.ticket_key, reason_code=code.value, reason=reason
    )
    await enqueue(conn, [facts.throttled(row, at=ticket.occurred_at) for row in rows])
    for row in rows:
        THROTTLED.labels(row["kind"], service_label(row["business_service"]), code.value).inc()


async def decide_candidates(
    conn: Connection, *, rules: SurveyRules, channel: Channel, now: datetime, limit: int
) -> int:
    """Decide on the due candidates: scheduled, throttled (announced with the reason) or excluded."""
    rows = await store.claim_candidates(conn, now=now, limit=limit)
    if not rows:
        return 0
    person_ids = [row["person_id"] for row in rows if row["person_id"]]
    addresses = await store.lock_persons(conn, person_ids=person_ids)
    history = await budget_history(conn, rules=rules, person_ids=person_ids, around=now)
    surveyed: dict[str, set[int]] = defaultdict(set)
    for past in await store.surveyed_cycles(conn, ticket_keys=[row["ticket_key"] for row in rows]):
        surveyed[past["ticket_key"]].add(past["cycle"])
    decisions = []
    for row in rows:
        resolution = csat.Resolution(
            ticket_key=row["ticket_key"],
            cycle=row["cycle"],
            ticket=TicketFacts(row["source"], row["ticket_kind"], row["business_service"], row["priority"]),
            resolved_at=row["resolved_at"],
            reachable=reachable(channel, person_id=row["person_id"], address=addresses.get(row["person_id"])),
        )
        person_history = history[row["person_id"]] if row["person_id"] else []
        verdict = csat.decide(
            resolution,
            rules=rules,
            now=now,
            history=person_history,
            surveyed_cycles=surveyed[row["ticket_key"]],
        )
        if verdict.outcome is csat.Outcome.SCHEDULED and verdict.send_at is not None:
            # Later candidates of the same batch see this one in the budget and as surveyed.
            person_history.append(PastInvitation(SurveyKind.CSAT, verdict.send_at))
            surveyed[row["ticket_key"]].add(row["cycle"])
        decisions.append(_decision(row["invitation_id"], verdict))
    decided = await store.apply_decisions(conn, decisions=decisions)
    await enqueue(conn, announcements(decided, now=now))
    return len(decided)


def reachable(channel: Channel, *, person_id: str | None, address: str | None) -> bool:
    """E-mail needs an address; a webhook platform mails its own users, so a known person is enough."""
    return bool(address) if channel is Channel.EMAIL else person_id is not None


async def budget_history(
    conn: Connection, *, rules: SurveyRules, person_ids: Sequence[str], around: datetime
) -> defaultdict[str, list[PastInvitation]]:
    """Each person's invitations near an instant, as far as any cooldown or the rolling cap can reach."""
    reach = max([*rules.fatigue.cooldown.values(), timedelta(days=30)]) + max(
        (rule.delay for rule in rules.csat_rules), default=timedelta(0)
    )
    rows = await store.budget_history(conn, person_ids=person_ids, since=around - reach, until=around + reach)
    history: defaultdict[str, list[PastInvitation]] = defaultdict(list)
    for row in rows:
        history[row["person_id"]].append(PastInvitation(SurveyKind(row["kind"]), row["at"]))
    return history


def announcements(rows: Sequence[store.Row], *, now: datetime) -> list[Envelope]:
    """The events of decided invitations; exclusions are not surveys and are not announced."""
    envelopes = []
    for row in rows:
        if row["state"] == "scheduled":
            envelopes.append(facts.scheduled(row))
        elif row["state"] == "throttled":
            envelopes.append(facts.throttled(row, at=now))
            THROTTLED.labels(row["kind"], service_label(row["business_service"]), row["reason_code"]).inc()
    return envelopes


def _decision(invitation_id: uuid.UUID, verdict: csat.Verdict) -> store.Decision:
    rule = verdict.rule
    throttle = verdict.throttle
    return store.Decision(
        invitation_id=invitation_id,
        state=verdict.outcome.value,
        rule=rule.name if rule else None,
        scale=rule.scale.value if rule else None,
        expiry_seconds=int(rule.expiry.total_seconds()) if rule else None,
        send_at=verdict.send_at,
        reason_code=throttle.code.value if throttle else None,
        reason=throttle.reason if throttle else None,
    )
