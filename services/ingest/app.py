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
from services.ingest.intake import ReceiptWriter
from services.ingest.mapping import load_mapping
from services.ingest.settings import IngestSettings


async def load_mappings(stack: AsyncExitStack, runtime: Runtime) -> None:
    """Read the source mappings once at start; a bad mapping file stops the start, naming the key."""
    settings = cast(IngestSettings, runtime.settings)
    runtime.extras["mappings"] = load_mapping(settings.mapping_file, settings.mapping_overrides)


async def start_receipt_writer(stack: AsyncExitStack, runtime: Runtime) -> None:
    """Webhooks are stored in group commits by one writer task (see intake.ReceiptWriter)."""
    writer = ReceiptWriter(runtime.pool)
    await writer.start()
    stack.push_async_callback(writer.stop)
    settings = cast(IngestSettings, runtime.settings)
    runtime.extras["webhooks"] = api.Webhooks(settings, runtime.extras["mappings"], writer)


SPEC = ServiceSpec(
    name="ingest",
    version=__version__,
    routers=[api.webhook_router, api.router],
    migrations=service_migrations("ingest", Path(__file__).parent / "migrations"),
    produces=[Topic.TICKETS, Topic.OUTAGES],
    parts=[load_mappings, start_receipt_writer],
    upload_prefixes=("/imports/",),
)
SETTINGS = IngestSettings

__getattr__ = lazy_app(SPEC, SETTINGS)
