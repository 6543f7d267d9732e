"""Wires the ingest service: webhooks in, receipts and ticket events out through the outbox."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import cast

from bothways import __version__
from bothways.db import service_migrations
from bothways.events import Topic
from bothways.web import Runtime, ServiceSpec, lazy_app
from services.ingest import api
from services.ingest.mapping import load_mapping
from services.ingest.settings import IngestSettings


async def load_mappings(stack: AsyncExitStack, runtime: Runtime) -> None:
    """Read the source mappings once at start; a bad mapping file stops the start, naming the key."""
    settings = cast(IngestSettings, runtime.settings)
    runtime.extras["mappings"] = load_mapping(settings.mapping_file, settings.mapping_overrides)


SPEC = ServiceSpec(
    name="ingest",
    version=__version__,
    routers=[api.router],
    migrations=service_migrations("ingest", Path(__file__).parent / "migrations"),
    produces=[Topic.TICKETS, Topic.OUTAGES],
    parts=[load_mappings],
    upload_prefixes=("/imports/",),
)
SETTINGS = IngestSettings

__getattr__ = lazy_app(SPEC, SETTINGS)
