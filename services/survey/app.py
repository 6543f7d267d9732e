"""Wires the survey service. The shell only: surveys, campaigns and follow-ups arrive with their issue."""

from __future__ import annotations

from bothways import __version__
from bothways.db import CORE_MIGRATIONS, read_migrations
from bothways.web import ServiceSpec, lazy_app
from services.survey.settings import SurveySettings

SPEC = ServiceSpec(
    name="survey",
    version=__version__,
    routers=[],
    migrations=read_migrations("core", CORE_MIGRATIONS),
)
SETTINGS = SurveySettings

__getattr__ = lazy_app(SPEC, SETTINGS)
