"""Wires the reporting service: every topic in, read models, reports and business gauges out."""

from __future__ import annotations

from pathlib import Path

from bothways import __version__
from bothways.db import service_migrations
from bothways.events import Topic
from bothways.web import ServiceSpec, lazy_app
from services.reporting import api
from services.reporting.consumer import HANDLERS
from services.reporting.metrics import refresh_ticket_counts
from services.reporting.settings import ReportingSettings

SPEC = ServiceSpec(
    name="reporting",
    version=__version__,
    routers=[api.router],
    migrations=service_migrations("reporting", Path(__file__).parent / "migrations"),
    consumes=[Topic.TICKETS],
    handlers=HANDLERS,
    refreshers=[refresh_ticket_counts],
)
SETTINGS = ReportingSettings

__getattr__ = lazy_app(SPEC, SETTINGS)
