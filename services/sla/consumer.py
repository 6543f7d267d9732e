"""Kafka handlers of the sla service: thin, each calls one function."""

from __future__ import annotations

from collections.abc import Sequence

from bothways.db import Connection
from bothways.events import Envelope, TicketChanged
from bothways.kafka import Handlers
from bothways.scheduler import utc_now
from services.sla import tracker


async def accept_ticket(conn: Connection, ticket: TicketChanged, envelope: Envelope) -> None:
    """Nothing per event: `track_batch` records and evaluates the batch's snapshots together."""


async def track_batch(conn: Connection, envelopes: Sequence[Envelope]) -> None:
    """Record a batch's snapshots and recompute each ticket it touched once, knowing all of them."""
    snapshots = [(e.id, e.data) for e in envelopes if isinstance(e.data, TicketChanged)]
    await tracker.track_tickets(conn, snapshots=snapshots, now=utc_now())


HANDLERS: Handlers = {TicketChanged: accept_ticket}
