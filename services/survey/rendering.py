"""The Jinja templates of the survey's mails and pages; HTML is autoescaped, plain text is not."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

TEMPLATES: Final = Environment(
    loader=PackageLoader("services.survey", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, **context: Any) -> str:
    """One template filled in."""
    return TEMPLATES.get_template(template).render(**context)


def when(instant: datetime, *, time_zone: str) -> str:
    """An instant as a customer reads it, e.g. 'Monday 9 November 2026, 10:00 (Europe/Berlin)'."""
    local = instant.astimezone(ZoneInfo(time_zone))
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} ({time_zone})"
