"""The sla service's settings (BOTHWAYS_* environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bothways.settings import ServiceSettings
from services.sla.configuration import DEFAULT_CONFIG_FILE

DEFAULT_CATALOGUE_FILE = Path(__file__).parent / "catalogue.yaml"


class SlaSettings(ServiceSettings):
    port: int = Field(default=8002, ge=1, le=65535)
    # Calendars and policies loaded into an empty database at the first start; the API manages them after.
    sla_config_file: Path = DEFAULT_CONFIG_FILE
    # Business services and the major-incident rule loaded into an empty database at the first start.
    availability_catalogue_file: Path = DEFAULT_CATALOGUE_FILE
    # How often burn-rate alerts are evaluated while a service has a failure within their windows.
    availability_evaluation_seconds: float = Field(default=30.0, gt=0, le=3600)
