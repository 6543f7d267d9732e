"""The reporting service's business gauges, read from PostgreSQL at scrape time."""

from __future__ import annotations

from prometheus_client import Gauge

from bothways.db import Pool
from services.reporting import store
from services.reporting.tickets import ticket_counts

TICKETS = Gauge("bothways_tickets", "Tickets by their current status category.", ["status_category"])


async def refresh_ticket_counts(pool: Pool) -> None:
    async with pool.acquire() as conn:
        counts = ticket_counts(await store.tickets_by_status_category(conn))
    for category, tickets in counts.by_status_category.items():
        TICKETS.labels(category.value).set(tickets)
