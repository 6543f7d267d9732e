"""The simulated IT organisation the reliability tests drive through ingest's real endpoints."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx

from simulator.answering import AwaitingSurveyService
from simulator.driver import Pace, Report, Run, drive
from simulator.organisation import build_organisation
from simulator.platforms import MAPPING_OVERRIDES, Credentials
from simulator.world import Fact, build_world, timeline
from tests.support import GENERIC_SECRET

# The credentials the test environment gives ingest (tests/conftest.py, tests/support.py).
CREDENTIALS = Credentials(
    jira_secret="jira-secret",
    zendesk_secret="zendesk-secret",
    servicenow_secret=GENERIC_SECRET,
    alertmanager_token="am-token",
)
# What ingest needs besides the test environment to read the simulated Zendesk's business service.
INGEST_ENV = {"BOTHWAYS_MAPPING_OVERRIDES": json.dumps(MAPPING_OVERRIDES)}
# A fixed window long past: every deadline in it has fallen due, so two runs end in the same state.
UNTIL = datetime(2026, 10, 29, tzinfo=UTC)  # a Thursday, 00:00 UTC


def simulated_days(*, days: float, seed: int = 7, tickets_per_weekday: float = 60.0) -> list[Fact]:
    """The facts of a seeded organisation over `days` before UNTIL, the same on every call."""
    organisation = build_organisation(seed=seed, services=4, agents=8, customers=120)
    world = build_world(organisation, seed=seed, tickets_per_weekday=tickets_per_weekday)
    return list(timeline(world, start=UNTIL - timedelta(days=days), end=UNTIL))


async def replay(ingest_url: str, facts: list[Fact], *, seconds: float | None = None) -> Report:
    """Play the facts into ingest in about `seconds` (as fast as it takes them when None)."""
    start = facts[0].occurred_at
    span = max((facts[-1].occurred_at - start).total_seconds(), 1.0)
    speed = span / seconds if seconds else 1e12
    async with httpx.AsyncClient(base_url=ingest_url, timeout=30) as client:
        run = Run(client=client, credentials=CREDENTIALS, surveys=AwaitingSurveyService(), concurrency=8)
        return await drive(run, facts, pace=Pace(origin=start, speed=speed))
