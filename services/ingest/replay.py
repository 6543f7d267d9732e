"""Re-derive events from stored receipts, e.g. after a mapping fix, and send them again."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel

from bothways.db import Pool
from bothways.errors import InvalidInput
from bothways.events import Envelope
from bothways.outbox import enqueue
from services.ingest import store
from services.ingest.intake import Delivery, envelopes_for
from services.ingest.mapping import Mapping as SourceMappings
from services.ingest.normalizers import IgnoredEvent
from services.ingest.sources import SOURCES


class ReplaySummary(BaseModel):
    receipts: int = 0
    events: int = 0
    ignored: int = 0
    rejected: int = 0


@dataclass
class _Derived:
    envelopes: list[Envelope] = field(default_factory=list)
    outcomes: list[tuple[int, str, list[str], str | None]] = field(default_factory=list)


async def replay(
    pool: Pool,
    *,
    mappings: SourceMappings,
    since: datetime,
    until: datetime,
    source: str | None = None,
    page_size: int = 500,
) -> ReplaySummary:
    """Normalise every stored receipt in [since, until) again and enqueue its events, a page per transaction."""
    summary = ReplaySummary()
    after_id = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            page = await store.receipts_page(
                conn, since=since, until=until, source=source, after_id=after_id, limit=page_size
            )
            if not page:
                return summary
            derived = _derive(page, mappings, summary)
            await enqueue(conn, derived.envelopes)
            await store.update_receipt_outcomes(conn, derived.outcomes)
        after_id = page[-1].id


def _derive(page: list[store.StoredReceipt], mappings: SourceMappings, summary: ReplaySummary) -> _Derived:
    derived = _Derived()
    for receipt in page:
        delivery = Delivery(
            receipt.source, receipt.delivery_id, receipt.received_at, receipt.headers, receipt.body
        )
        outcome, note, envelopes = _normalise(delivery, mappings)
        summary.receipts += 1
        summary.events += len(envelopes)
        summary.ignored += outcome == "ignored"
        summary.rejected += outcome == "rejected"
        derived.envelopes += envelopes
        derived.outcomes.append((receipt.id, outcome, [e.id for e in envelopes], note))
    return derived


def _normalise(delivery: Delivery, mappings: SourceMappings) -> tuple[str, str | None, list[Envelope]]:
    try:
        events = SOURCES[delivery.source].normalize(json.loads(delivery.body), mappings, delivery.received_at)
    except IgnoredEvent as exc:
        return "ignored", exc.reason, []
    except (InvalidInput, ValueError) as exc:
        return "rejected", str(exc), []
    envelopes = envelopes_for(delivery, events)
    return ("accepted" if envelopes else "ignored"), None, envelopes
