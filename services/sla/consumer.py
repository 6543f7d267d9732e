"""Kafka handlers of the sla service: thin, each calls one function."""

from __future__ import annotations

from collections.abc import Sequence

from bothways.db import Connection
from bothways.events import Envelope, TicketChanged
from bothways.kafka import BatchHandlers, Handlers
from bothways.scheduler import utc_now
from services.sla import tracker


async def track_tickets(conn: Connection, batch: Sequence[tuple[TicketChanged, Envelope]]) -> None:
    """Record a batch's snapshots and recompute each ticket it touched once, knowing all of them."""
    await tracker.track_tickets(conn, snapshots=[(e.id, ticket) for ticket, e in batch], now=utc_now())


HANDLERS: Handlers = {}
BATCH_HANDLERS: BatchHandlers = {TicketChanged: track_tickets}
