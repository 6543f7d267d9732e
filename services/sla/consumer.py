"""Kafka handlers of the sla service: thin, each calls one function."""

from __future__ import annotations

from bothways.db import Connection
from bothways.events import Envelope, TicketChanged
from bothways.kafka import Handlers
from bothways.scheduler import utc_now
from services.sla import tracker


async def track_ticket(conn: Connection, ticket: TicketChanged, envelope: Envelope) -> None:
    await tracker.track_ticket(conn, ticket=ticket, event_id=envelope.id, now=utc_now())


HANDLERS: Handlers = {TicketChanged: track_ticket}
