"""Wires the reporting service: every topic in, read models, reports, the dashboard and business gauges out."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from bothways import __version__
from bothways.db import service_migrations
from bothways.events import Topic
from bothways.scheduler import utc_now
from bothways.web import Runtime, ServiceSpec, lazy_app
from services.reporting import api, pages
from services.reporting.consumer import BATCH_HANDLERS
from services.reporting.metrics import SCORECARDS, refresh_scorecards, refresh_ticket_counts
from services.reporting.settings import ReportingSettings


async def install_rules(stack: AsyncExitStack, runtime: Runtime) -> None:
    """The scorecard rules from the settings, and the clock, for the routes and the collector."""
    assert isinstance(runtime.settings, ReportingSettings)
    rules = runtime.settings.scorecard_rules()
    runtime.extras["scorecard_rules"] = rules
    runtime.extras["clock"] = utc_now
    SCORECARDS.configure(rules=rules, clock=utc_now)


SPEC = ServiceSpec(
    name="reporting",
    version=__version__,
    routers=[api.router, pages.router],
    migrations=service_migrations("reporting", Path(__file__).parent / "migrations"),
    consumes=[Topic.TICKETS, Topic.SLA, Topic.AVAILABILITY, Topic.SURVEYS],
    batch_handlers=BATCH_HANDLERS,
    refreshers=[refresh_ticket_counts, refresh_scorecards],
    parts=[install_rules],
)
SETTINGS = ReportingSettings

__getattr__ = lazy_app(SPEC, SETTINGS)
