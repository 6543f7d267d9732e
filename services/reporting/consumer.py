"""Kafka handlers of the reporting service: thin, each calls one function."""

from __future__ import annotations

from bothways.db import Connection
from bothways.events import Envelope, TicketChanged
from bothways.kafka import Handlers
from services.reporting import store


async def count_ticket(conn: Connection, ticket: TicketChanged, envelope: Envelope) -> None:
    await store.track_ticket_status(
        conn,
        ticket_key=ticket.ticket_key,
        status_category=ticket.status_category.value,
        occurred_at=ticket.occurred_at,
    )


HANDLERS: Handlers = {TicketChanged: count_ticket}
