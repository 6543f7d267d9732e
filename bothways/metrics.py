"""The operational metrics every service exports; business figures live with each service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from prometheus_client import Counter, Gauge, Histogram

from bothways.db import UNAVAILABLE_ERRORS, Pool

log = logging.getLogger(__name__)

HTTP_REQUEST_DURATION = Histogram(
    "bothways_http_request_duration_seconds",
    "HTTP requests by route template, method and status code.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_EVENTS = Counter(
    "bothways_consumer_events_total",
    "Kafka records handled by a consumer, by outcome (applied, duplicate, ignored, dead_lettered).",
    ["topic", "outcome"],
)
CONSUMER_FAILURES = Counter(
    "bothways_consumer_failures_total",
    "Failed attempts to apply a record (each retry counts once).",
    ["topic"],
)
CONSUMER_LAG = Gauge(
    "bothways_consumer_lag_records",
    "Records between the last committed offset and the high watermark, per partition.",
    ["topic", "partition"],
)
OUTBOX_BACKLOG = Gauge("bothways_outbox_backlog_events", "Committed outbox events not yet published.")
OUTBOX_PUBLISHED = Counter("bothways_outbox_published_total", "Outbox events published to Kafka.", ["topic"])
OUTBOX_PUBLISH_FAILURES = Counter(
    "bothways_outbox_publish_failures_total", "Relay batches that could not be published (broker down)."
)

# A figure that cannot be read now keeps its last value rather than failing the scrape.
SCRAPE_SKIPPED: tuple[type[Exception], ...] = (*UNAVAILABLE_ERRORS, TimeoutError)

# Refreshed at scrape time from PostgreSQL, where the figure is authoritative.
Refresher = Callable[[Pool], Awaitable[None]]


async def refresh_outbox_backlog(pool: Pool) -> None:
    OUTBOX_BACKLOG.set(await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))


async def refresh_all(pool: Pool, refreshers: Sequence[Refresher], *, seconds: float = 5.0) -> None:
    """Run every refresher; a database outage leaves the last values in place rather than failing the scrape."""
    for refresher in refreshers:
        try:
            await asyncio.wait_for(refresher(pool), seconds)
        except SCRAPE_SKIPPED as exc:
            log.warning("metrics refresh skipped", extra={"error": repr(exc)})
