"""Wires the sla service: ticket events in, ticket histories kept (timers and availability build on them)."""

from __future__ import annotations

from pathlib import Path

from bothways import __version__
from bothways.db import service_migrations
from bothways.events import Topic
from bothways.web import ServiceSpec, lazy_app
from services.sla import api
from services.sla.consumer import HANDLERS
from services.sla.settings import SlaSettings

SPEC = ServiceSpec(
    name="sla",
    version=__version__,
    routers=[api.router],
    migrations=service_migrations("sla", Path(__file__).parent / "migrations"),
    consumes=[Topic.TICKETS],
    handlers=HANDLERS,
)
SETTINGS = SlaSettings

__getattr__ = lazy_app(SPEC, SETTINGS)
