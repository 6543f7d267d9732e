"""Structured logs: one JSON object per line, with the event id and ticket key where known."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

# Only these `extra=` keys reach the output, so nobody logs a body or a secret by accident.
CONTEXT_KEYS = (
    "service",
    "event_id",
    "event_type",
    "ticket_key",
    "topic",
    "partition",
    "offset",
    "source",
    "delivery_id",
    "schema",
    "migration",
    "route",
    "status",
    "attempt",
    "count",
    "error",
    "url",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            if key in record.__dict__:
                line[key] = record.__dict__[key]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str = "INFO", *, service: str) -> None:
    """Send every logger to stdout as JSON lines, tagged with the service name."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_ServiceTag(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every broker reconnect attempt at ERROR; the relay and consumer report outages themselves.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


class _ServiceTag(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        return True
