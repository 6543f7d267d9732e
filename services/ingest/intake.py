"""Receiving a delivery: parse it, and store the receipt with its events in one transaction."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from pydantic import BaseModel

from bothways.db import Pool
from bothways.errors import MalformedBody, UnsupportedMediaType
from bothways.events import Envelope, Event, deterministic_id, envelope_for
from bothways.outbox import enqueue
from services.ingest import store

# Only these request headers are kept with a receipt: enough to replay, never a credential.
KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "x-atlassian-webhook-identifier",
    "x-zendesk-webhook-id",
    "x-zendesk-webhook-signature-timestamp",
    "x-webhook-id",
)


@dataclass(frozen=True)
class Delivery:
    """One authenticated webhook delivery."""

    source: str
    delivery_id: str
    received_at: datetime
    headers: Mapping[str, str]
    body: bytes


class Accepted(BaseModel):
    """The answer to a stored delivery: the events it yielded (or yielded the first time)."""

    event_ids: list[str]
    duplicate: bool
    outcome: str = "accepted"
    note: str | None = None


def require_json(content_type: str | None) -> None:
    """Webhooks are JSON; anything else is refused before it is parsed."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(f"content-type must be application/json, got {media_type or 'none'!r}")


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedBody(f"body is not valid JSON: {exc}") from exc


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in KEPT_HEADERS if name in headers}


def envelopes_for(delivery: Delivery, events: Sequence[Event]) -> list[Envelope]:
    """Wrap a delivery's events with ids derived from the delivery and the event's content.

    A redelivery, or a replay with the same mapping, repeats the ids (downstream drops them);
    a replay after a mapping fix yields new ids for the events the fix changed, so they land."""
    return [
        envelope_for(
            event,
            event_id=deterministic_id(delivery.source, delivery.delivery_id, str(index), _digest(event)),
            source=f"/bothways/ingest/{delivery.source}",
        )
        for index, event in enumerate(events)
    ]


def _digest(event: Event) -> str:
    return hashlib.sha256(event.model_dump_json().encode()).hexdigest()


async def accept(
    pool: Pool,
    *,
    delivery: Delivery,
    events: Sequence[Event],
    outcome: str = "accepted",
    note: str | None = None,
) -> Accepted:
    """Store the receipt and its events atomically; a delivery seen before changes nothing."""
    envelopes = envelopes_for(delivery, events)
    if outcome == "accepted" and not envelopes:
        outcome = "ignored"
    async with pool.acquire() as conn, conn.transaction():
        stored = await store.insert_receipt(
            conn,
            source=delivery.source,
            delivery_id=delivery.delivery_id,
            received_at=delivery.received_at,
            headers=kept_headers(delivery.headers),
            body=delivery.body,
            outcome=outcome,
            event_ids=[e.id for e in envelopes],
            note=note,
        )
        if not stored:
            earlier = await store.stored_receipt(
                conn, source=delivery.source, delivery_id=delivery.delivery_id
            )
            return Accepted(duplicate=True, **earlier)
        await enqueue(conn, envelopes)
    return Accepted(event_ids=[e.id for e in envelopes], duplicate=False, outcome=outcome, note=note)


@contextlib.asynccontextmanager
async def spooled(request: Request) -> AsyncIterator[Path]:
    """The request body streamed into a temporary file (constant memory), removed afterwards."""
    handle, name = tempfile.mkstemp(prefix="bothways-upload-")
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as file:
            async for chunk in request.stream():
                await asyncio.to_thread(file.write, chunk)
        yield path
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
