"""Wires the survey service: tickets in, CSAT and NPS invitations, answers and follow-ups out."""

from __future__ import annotations

from pathlib import Path

from bothways import __version__
from bothways.db import service_migrations
from bothways.events import Topic
from bothways.web import ServiceSpec, lazy_app
from services.survey import api, pages
from services.survey.consumer import HANDLERS
from services.survey.duework import step_for
from services.survey.metrics import refresh_followups
from services.survey.runtime import open_survey
from services.survey.settings import SurveySettings

SPEC = ServiceSpec(
    name="survey",
    version=__version__,
    routers=[api.router, pages.router],
    migrations=service_migrations("survey", Path(__file__).parent / "migrations"),
    consumes=[Topic.TICKETS],
    produces=[Topic.SURVEYS],
    handlers=HANDLERS,
    refreshers=[refresh_followups],
    parts=[open_survey],
    due_work=step_for,
)
SETTINGS = SurveySettings

__getattr__ = lazy_app(SPEC, SETTINGS)
