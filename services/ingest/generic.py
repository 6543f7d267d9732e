"""The generic source: canonical tickets posted as JSON by anything that is not a known platform."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from bothways.errors import InvalidInput
from bothways.events import TicketChanged, describe_validation_error, ticket_key


def normalize(payload: Any) -> list[TicketChanged]:
    """A canonical ticket snapshot; `ticket_key` defaults to `<source>:<external_id>`."""
    if not isinstance(payload, dict):
        raise InvalidInput("body must be a JSON object holding one canonical ticket", field="body")
    payload = {"source": "generic", **payload}
    if "ticket_key" not in payload and isinstance(payload.get("external_id"), str):
        payload["ticket_key"] = ticket_key(str(payload["source"]), payload["external_id"])
    try:
        ticket = TicketChanged.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(describe_validation_error(exc), field=".".join(map(str, first["loc"]))) from exc
    if ticket.ticket_key != ticket_key(ticket.source, ticket.external_id):
        raise InvalidInput("ticket_key must be '<source>:<external_id>'", field="ticket_key")
    return [ticket]
