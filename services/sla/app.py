"""Wires the sla service: ticket events in, SLA timers kept and fired on time, SLA events out; outage
signals and major incidents in, business service availability out."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import cast

from bothways import __version__
from bothways.db import UNAVAILABLE_ERRORS, Connection, service_migrations
from bothways.events import Topic
from bothways.scheduler import DueStep, StepResult, utc_now
from bothways.web import Runtime, ServiceSpec, lazy_app
from services.sla import api, availability_api, configuration, outages, tracker
from services.sla.availability_reads import refresh_availability_metrics
from services.sla.consumer import BATCH_HANDLERS, HANDLERS
from services.sla.metrics import refresh_timer_counts
from services.sla.settings import SlaSettings


async def seed_configuration(stack: AsyncExitStack, runtime: Runtime) -> None:
    """Load the YAML calendars and policies when the database holds none yet."""
    settings = cast(SlaSettings, runtime.settings)
    config = await asyncio.to_thread(configuration.read_config_file, settings.sla_config_file)
    async with runtime.pool.acquire() as conn, conn.transaction():
        await configuration.seed(conn, config=config)


async def seed_catalogue(stack: AsyncExitStack, runtime: Runtime) -> None:
    """Load the YAML business service catalogue when the database holds none yet (after the calendars)."""
    settings = cast(SlaSettings, runtime.settings)
    config = await asyncio.to_thread(outages.read_catalogue_file, settings.availability_catalogue_file)
    async with runtime.pool.acquire() as conn, conn.transaction():
        await outages.seed_catalogue(conn, config=config, now=utc_now())


log = logging.getLogger(__name__)


def fire_due_timers(runtime: Runtime) -> DueStep:
    """SLA marks and availability evaluations share the one scheduler loop; the earliest next due wins."""
    settings = cast(SlaSettings, runtime.settings)
    fire = partial(tracker.fire_due, limit=settings.scheduler_batch_size)
    every = timedelta(seconds=settings.availability_evaluation_seconds)
    evaluate = partial(outages.evaluate_due, limit=settings.scheduler_batch_size, every=every)

    async def step(conn: Connection, now: datetime) -> StepResult:
        timers = await fire(conn, now)
        try:
            # A savepoint: a bug in the availability step must not hold back SLA marks.
            async with conn.transaction():
                services = await evaluate(conn, now)
        except UNAVAILABLE_ERRORS:
            raise
        except Exception:
            log.exception("availability evaluation failed; SLA marks fired, retrying it shortly")
            services = StepResult(done=0, next_due=now + every)
        dues = [due for due in (timers.next_due, services.next_due) if due is not None]
        return StepResult(done=max(timers.done, services.done), next_due=min(dues, default=None))

    return step


SPEC = ServiceSpec(
    name="sla",
    version=__version__,
    routers=[api.router, availability_api.router],
    migrations=service_migrations("sla", Path(__file__).parent / "migrations"),
    consumes=[Topic.TICKETS, Topic.OUTAGES],
    produces=[Topic.SLA, Topic.AVAILABILITY],
    handlers=HANDLERS,
    batch_handlers=BATCH_HANDLERS,
    refreshers=[refresh_timer_counts, refresh_availability_metrics],
    parts=[seed_configuration, seed_catalogue],
    due_work=fire_due_timers,
)
SETTINGS = SlaSettings

__getattr__ = lazy_app(SPEC, SETTINGS)
