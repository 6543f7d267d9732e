"""Kafka handlers of the sla service: thin, each calls one function."""

from __future__ import annotations

from collections.abc import Sequence

from bothways.db import Connection
from bothways.events import Envelope, OutageEnded, OutageSignal, OutageStarted, OutageUpdated, TicketChanged
from bothways.kafka import BatchHandlers, Handlers
from bothways.scheduler import utc_now
from services.sla import outages, tracker


async def track_tickets(conn: Connection, batch: Sequence[tuple[TicketChanged, Envelope]]) -> None:
    """Record a batch's snapshots and recompute each ticket it touched once, knowing all of them."""
    snapshots = [(e.id, ticket) for ticket, e in batch]
    now = utc_now()
    await tracker.track_tickets(conn, snapshots=snapshots, now=now)
    # A major incident is an outage of its business service: same transaction, same snapshot history.
    await outages.track_major_incidents(conn, snapshots=snapshots, now=now)


async def record_outage_signal(conn: Connection, signal: OutageSignal, envelope: Envelope) -> None:
    await outages.record_signal(conn, signal=signal, event_id=envelope.id, now=utc_now())


HANDLERS: Handlers = {
    OutageStarted: record_outage_signal,
    OutageUpdated: record_outage_signal,
    OutageEnded: record_outage_signal,
}
BATCH_HANDLERS: BatchHandlers = {TicketChanged: track_tickets}
