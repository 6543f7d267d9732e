"""Kafka handlers of the sla service: thin, each calls one function."""

from __future__ import annotations

from bothways.db import Connection
from bothways.events import Envelope, TicketChanged
from bothways.kafka import Handlers
from services.sla import store


async def track_ticket(conn: Connection, ticket: TicketChanged, envelope: Envelope) -> None:
    await store.record_ticket_event(conn, event_id=envelope.id, ticket=ticket)


HANDLERS: Handlers = {TicketChanged: track_ticket}
