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

from bothways.db import UNAVAILABLE_ERRORS, Connection, Pool
from bothways.errors import MalformedBody, UnsupportedMediaType
from bothways.events import Envelope, Event, deterministic_id, encode_data, envelope_for
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
    source = f"/bothways/ingest/{delivery.source}"
    envelopes = []
    for index, event in enumerate(events):
        encoded = encode_data(event)  # once: for the digest, and as the value the outbox stores
        digest = hashlib.sha256(encoded).hexdigest()
        event_id = deterministic_id(delivery.source, delivery.delivery_id, str(index), digest)
        envelopes.append(envelope_for(event, event_id=event_id, source=source, encoded=encoded))
    return envelopes


def receipt_for(
    delivery: Delivery, events: Sequence[Event], *, outcome: str = "accepted", note: str | None = None
) -> Receipt:
    """A delivery with the events it yielded, ready to be stored."""
    envelopes = envelopes_for(delivery, events)
    if outcome == "accepted" and not envelopes:
        outcome = "ignored"
    return Receipt(delivery, envelopes, outcome, note)


@dataclass(frozen=True)
class Receipt:
    """A delivery to store with its events, in the same transaction."""

    delivery: Delivery
    envelopes: list[Envelope]
    outcome: str
    note: str | None

    @property
    def key(self) -> store.DeliveryKey:
        return (self.delivery.source, self.delivery.delivery_id)

    def accepted(self, *, duplicate: bool = False) -> Accepted:
        event_ids = [e.id for e in self.envelopes]
        return Accepted(event_ids=event_ids, duplicate=duplicate, outcome=self.outcome, note=self.note)


# A delivery stored before but purged by retention between the insert and the lookup.
PURGED: dict[str, Any] = {"event_ids": [], "outcome": "accepted", "note": None}


async def store_receipts(conn: Connection, receipts: Sequence[Receipt]) -> list[Accepted]:
    """Store receipts and their events in one transaction; a delivery seen before changes nothing.

    The answers are in the order of `receipts`. A delivery repeated within `receipts` is stored once
    and its repeats answered as duplicates of it, as if they had come one after the other. What the
    earlier deliveries yielded is read after the commit: should that read fail, the senders get a 503
    and retry, and their retries are duplicates."""
    first: dict[store.DeliveryKey, Receipt] = {}
    for receipt in receipts:
        first.setdefault(receipt.key, receipt)
    new = await store.store_receipts(
        conn,
        [_new_receipt(r) for r in first.values()],
        [(r.key, envelope) for r in first.values() for envelope in r.envelopes],
    )
    seen_before = [key for key in first if key not in new]
    earlier = await store.stored_receipts(conn, seen_before) if seen_before else {}
    answers = []
    for receipt in receipts:
        if receipt.key not in new:
            answers.append(Accepted(duplicate=True, **earlier.get(receipt.key, PURGED)))
        else:
            stored = first[receipt.key]
            answers.append(stored.accepted(duplicate=stored is not receipt))
    return answers


def _new_receipt(receipt: Receipt) -> store.NewReceipt:
    delivery = receipt.delivery
    return store.NewReceipt(
        source=delivery.source,
        delivery_id=delivery.delivery_id,
        received_at=delivery.received_at,
        headers=kept_headers(delivery.headers),
        body=delivery.body,
        outcome=receipt.outcome,
        event_ids=[e.id for e in receipt.envelopes],
        note=receipt.note,
    )


class ReceiptWriter:
    """Group commit: receipts that arrive while a transaction runs are stored together in the next one.

    Each caller waits for the commit of its own batch, so an answer still means durably stored; but a
    busy ingest pays one transaction (round trips, WAL flush) per batch instead of per webhook."""

    def __init__(self, pool: Pool, *, max_batch: int = 500) -> None:
        self.pool = pool
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Receipt, asyncio.Future[Accepted]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ingest-receipt-writer")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def store(self, receipt: Receipt) -> Accepted:
        """Store one receipt with its events; returns once its transaction has committed."""
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((receipt, future))
        return await future

    async def _run(self) -> None:
        batch: list[tuple[Receipt, asyncio.Future[Accepted]]] = []
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < self.max_batch and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                await self._commit(batch)
                batch = []
        finally:
            # Stopping: whatever was not committed is answered 503 (an OSError), so the sender retries.
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            _fail(batch, ConnectionError("ingest is stopping"))

    async def _commit(self, batch: list[tuple[Receipt, asyncio.Future[Accepted]]]) -> None:
        try:
            async with self.pool.acquire() as conn:
                answers = await store_receipts(conn, [receipt for receipt, _ in batch])
        except UNAVAILABLE_ERRORS as exc:
            _fail(batch, exc)  # nothing was stored: every sender gets its 503 and retries
            return
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch, exc)
                return
            # One delivery the database refuses must not fail the others: store each on its own.
            for item in batch:
                await self._commit([item])
            return
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():  # the sender may have given up; its receipt is stored all the same
                future.set_result(answer)


def _fail(batch: Sequence[tuple[Receipt, asyncio.Future[Accepted]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


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
