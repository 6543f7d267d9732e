"""Wires the sla service: ticket events in, SLA timers kept and fired on time, SLA events out."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path
from typing import cast

from bothways import __version__
from bothways.db import service_migrations
from bothways.events import Topic
from bothways.scheduler import DueStep
from bothways.web import Runtime, ServiceSpec, lazy_app
from services.sla import api, configuration, tracker
from services.sla.consumer import BATCH_HANDLERS, HANDLERS
from services.sla.metrics import refresh_timer_counts
from services.sla.settings import SlaSettings


async def seed_configuration(stack: AsyncExitStack, runtime: Runtime) -> None:
    """Load the YAML calendars and policies when the database holds none yet."""
    settings = cast(SlaSettings, runtime.settings)
    config = await asyncio.to_thread(configuration.read_config_file, settings.sla_config_file)
    async with runtime.pool.acquire() as conn, conn.transaction():
        await configuration.seed(conn, config=config)


def fire_due_timers(runtime: Runtime) -> DueStep:
    return partial(tracker.fire_due, limit=runtime.settings.scheduler_batch_size)


SPEC = ServiceSpec(
    name="sla",
    version=__version__,
    routers=[api.router],
    migrations=service_migrations("sla", Path(__file__).parent / "migrations"),
    consumes=[Topic.TICKETS],
    produces=[Topic.SLA],
    handlers=HANDLERS,
    batch_handlers=BATCH_HANDLERS,
    refreshers=[refresh_timer_counts],
    parts=[seed_configuration],
    due_work=fire_due_timers,
)
SETTINGS = SlaSettings

__getattr__ = lazy_app(SPEC, SETTINGS)
