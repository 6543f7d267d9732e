"""The sla service's settings (BOTHWAYS_* environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bothways.settings import ServiceSettings
from services.sla.configuration import DEFAULT_CONFIG_FILE


class SlaSettings(ServiceSettings):
    port: int = Field(default=8002, ge=1, le=65535)
    # Calendars and policies loaded into an empty database at the first start; the API manages them after.
    sla_config_file: Path = DEFAULT_CONFIG_FILE
