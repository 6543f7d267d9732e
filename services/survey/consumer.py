"""Kafka handlers of the survey service: thin, each calls one function."""

from __future__ import annotations

from bothways.db import Connection
from bothways.events import Envelope, TicketChanged
from bothways.kafka import Handlers
from services.survey import invitations


async def track_ticket(conn: Connection, ticket: TicketChanged, envelope: Envelope) -> None:
    await invitations.track_ticket(conn, ticket=ticket)


HANDLERS: Handlers = {TicketChanged: track_ticket}
