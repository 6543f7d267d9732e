"""Wires the ingest service: webhooks in, receipts and ticket events out through the outbox."""

from __future__ import annotations

from pathlib import Path

from bothways import __version__
from bothways.db import service_migrations
from bothways.events import Topic
from bothways.web import ServiceSpec, lazy_app
from services.ingest import api
from services.ingest.settings import IngestSettings

SPEC = ServiceSpec(
    name="ingest",
    version=__version__,
    routers=[api.router],
    migrations=service_migrations("ingest", Path(__file__).parent / "migrations"),
    produces=[Topic.TICKETS],
)
SETTINGS = IngestSettings

__getattr__ = lazy_app(SPEC, SETTINGS)
