"""The reporting service's settings (BOTHWAYS_* environment variables)."""

from __future__ import annotations

from pydantic import Field

from bothways.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    port: int = Field(default=8004, ge=1, le=65535)
