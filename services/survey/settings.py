"""The survey service's settings (BOTHWAYS_* environment variables)."""

from __future__ import annotations

from pydantic import Field

from bothways.settings import ServiceSettings


class SurveySettings(ServiceSettings):
    port: int = Field(default=8003, ge=1, le=65535)
