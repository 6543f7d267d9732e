"""Kafka handlers of the reporting service: thin, each folds a partition batch into its read model."""

from __future__ import annotations

from collections.abc import Sequence

from bothways.db import Connection
from bothways.events import AvailabilityComputed, Envelope, SlaTimerEvent, SurveyEvent, TicketChanged
from bothways.kafka import BatchHandlers
from services.reporting import readmodels, store


async def record_tickets(conn: Connection, batch: Sequence[tuple[TicketChanged, Envelope]]) -> None:
    facts = readmodels.ticket_facts(ticket for ticket, _ in batch)
    await store.register_services(conn, names=readmodels.service_names(facts))
    await store.upsert_ticket_facts(conn, facts=facts)


async def record_timer_changes(conn: Connection, batch: Sequence[tuple[SlaTimerEvent, Envelope]]) -> None:
    timers = readmodels.timer_rows(change for change, _ in batch)
    await store.register_services(conn, names=readmodels.service_names(timers))
    await store.upsert_timers(conn, timers=timers)


async def record_availability(
    conn: Connection, batch: Sequence[tuple[AvailabilityComputed, Envelope]]
) -> None:
    months = readmodels.availability_rows(computed for computed, _ in batch)
    await store.register_services(conn, names=readmodels.service_names(months))
    await store.upsert_availability(conn, months=months)


async def record_survey_steps(conn: Connection, batch: Sequence[tuple[SurveyEvent, Envelope]]) -> None:
    rows = readmodels.survey_rows(step for step, _ in batch)
    names = readmodels.service_names(rows.invitations, rows.answers, rows.followups)
    await store.register_services(conn, names=names)
    await store.upsert_invitations(conn, invitations=rows.invitations)
    await store.upsert_answers(conn, answers=rows.answers)
    await store.upsert_followups(conn, followups=rows.followups)


# Each topic's family of events goes to one batch handler, in offset order (see bothways/kafka.py).
BATCH_HANDLERS: BatchHandlers = {
    TicketChanged: record_tickets,
    SlaTimerEvent: record_timer_changes,
    AvailabilityComputed: record_availability,
    SurveyEvent: record_survey_steps,
}
