"""What the survey service holds while it runs: its settings, its rules and its courier."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, cast

import httpx
from fastapi import Depends

from bothways.db import Pool
from bothways.scheduler import utc_now
from bothways.web import Runtime, RuntimeDep
from services.survey.courier import Courier, Postage
from services.survey.messages import Sender
from services.survey.rules import SurveyRules, load_rules
from services.survey.settings import SurveySettings


@dataclass(frozen=True)
class Survey:
    settings: SurveySettings
    rules: SurveyRules
    courier: Courier
    # The one place the pages and the API read the time from; tests set their own.
    clock: Callable[[], datetime] = field(default=utc_now)


async def open_survey(stack: AsyncExitStack, runtime: Runtime) -> None:
    """Read the rules (a bad file stops the start, naming the entry) and open the courier's HTTP client."""
    settings = cast(SurveySettings, runtime.settings)
    rules = load_rules(settings.survey_rules_file)
    http = httpx.AsyncClient(timeout=httpx.Timeout(15.0), follow_redirects=False)
    stack.push_async_callback(http.aclose)
    courier = courier_for(settings, pool=runtime.pool, http=http, clock=utc_now)
    runtime.extras["survey"] = Survey(settings=settings, rules=rules, courier=courier)


def courier_for(
    settings: SurveySettings, *, pool: Pool, http: httpx.AsyncClient, clock: Callable[[], datetime]
) -> Courier:
    """The courier of these settings: channel, sender, retries, the answer-link secret."""
    postage = Postage(
        channel=settings.survey_channel,
        sender=Sender(
            address=settings.smtp_from or f"{settings.survey_team_name} <surveys@{settings.public_host()}>",
            team=settings.survey_team_name,
            time_zone=settings.survey_time_zone,
            message_id_domain=settings.mail_domain(),
        ),
        smtp=settings.smtp_server(),
        webhook_url=settings.survey_webhook_url,
        webhook_secrets=settings.webhook_secrets(),
        ticket_webhook_url=settings.ticket_webhook_url,
        public_url=settings.survey_public_url,
        token_secret=settings.token_keys()[0],
    )
    return Courier(
        pool=pool,
        postage=postage,
        retry=settings.retry_policy(),
        http=http,
        clock=clock,
        concurrency=settings.survey_send_concurrency,
    )


def survey_of(runtime: Runtime) -> Survey:
    """The survey service's runtime part."""
    survey: Survey = runtime.extras["survey"]
    return survey


async def current_survey(runtime: RuntimeDep) -> Survey:
    """The survey service's runtime part, as a dependency."""
    return survey_of(runtime)


SurveyDep = Annotated[Survey, Depends(current_survey)]
