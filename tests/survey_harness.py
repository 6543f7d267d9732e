"""A survey service under test: a real SMTP server (aiosmtpd), the running service, and its scheduler
step run at instants the test chooses.

Tests drive time themselves, in 2031, so the service's own scheduler (which runs on the wall clock)
finds nothing due and stays out of the way; the pages, the API and the courier read the test's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from bothways import devstack
from bothways.cli import service_spec
from bothways.events import Envelope, Person, StatusCategory, TicketChanged, decode_record
from bothways.scheduler import StepResult
from bothways.settings import ServiceSettings
from bothways.web import Runtime, create_app
from services.survey import invitations
from services.survey.delivery import SmtpSecurity
from services.survey.duework import due_work
from services.survey.runtime import Survey, survey_of
from tests.support import API_KEY

MONDAY = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)
PUBLIC_URL = "http://surveys.test"
WEBHOOK_SECRETS = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGVzdHM="]


class Mailbox:
    """An aiosmtpd handler keeping every message; addresses starting with 'bounce' are refused (550)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.recipients.append(list(envelope.rcpt_tos))
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    mailbox: Mailbox
    port: int


@contextlib.contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on a free port, in its own thread."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=devstack.free_port())
    controller.start()
    try:
        yield SmtpServer(mailbox, controller.port)
    finally:
        controller.stop()


class Receiver(BaseHTTPRequestHandler):
    """A platform's webhook endpoint: keeps each request, answers with the status it is told."""

    received: list[tuple[dict[str, str], bytes]]
    statuses: list[int]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(self.statuses.pop(0) if self.statuses else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def webhook_receiver() -> Iterator[tuple[str, type[Receiver]]]:
    """A real HTTP server on a free port, in its own thread; its URL and what it received."""
    handler = type("TestReceiver", (Receiver,), {"received": [], "statuses": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/surveys", handler
    server.shutdown()
    server.server_close()


@dataclass
class Clock:
    """The test's time; `now=None` follows the wall clock (for tests through the real scheduler)."""

    now: datetime | None = MONDAY

    def __call__(self) -> datetime:
        return self.now or datetime.now(UTC)


@dataclass
class SurveyHarness:
    """A running survey service, its HTTP client (admin key), and the scheduler step at chosen instants."""

    client: httpx.AsyncClient
    runtime: Runtime
    clock: Clock
    smtp: SmtpServer
    app: FastAPI
    steps: list[StepResult] = field(default_factory=list)

    @property
    def survey(self) -> Survey:
        return survey_of(self.runtime)

    @property
    def pool(self) -> Any:
        return self.runtime.pool

    async def track(self, ticket: TicketChanged) -> None:
        """What the consumer does with a ticket event (the Kafka path has its own test)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await invitations.track_ticket(conn, ticket=ticket)

    async def step(self, at: datetime, *, deliver: bool = True) -> StepResult:
        """Scheduler steps at `at` until nothing more is claimed (sends go in batches), like the scheduler's
        loop; `deliver=False` is one step and a crash right after its claim committed."""
        self.clock.now = at
        for _ in range(100):
            async with self.pool.acquire() as conn, conn.transaction():
                result = await due_work(conn, at, survey=self.survey, batch=500)
            self.steps.append(result)
            if not deliver or result.after_commit is None:
                return result
            await result.after_commit()
        raise AssertionError("the scheduler step keeps finding work at one instant")

    async def invitations(self, **where: Any) -> list[dict[str, Any]]:
        rows = await self.pool.fetch("SELECT * FROM invitation ORDER BY created_at, invitation_id")
        return [dict(r) for r in rows if all(r[k] == v for k, v in where.items())]

    async def invitation(self, **where: Any) -> dict[str, Any]:
        [row] = await self.invitations(**where)
        return row

    async def events(self, event_type: str | None = None) -> list[Envelope]:
        """The events the service wrote to its outbox, in order; `event_type` like 'survey.sent'."""
        rows = await self.pool.fetch("SELECT value, headers FROM outbox ORDER BY id")
        envelopes = [
            decode_record([(n, v.encode()) for n, v in json.loads(r["headers"])], r["value"]) for r in rows
        ]
        return [e for e in envelopes if event_type is None or e.type == f"io.bothways.{event_type}"]

    def mails(self) -> list[EmailMessage]:
        return self.smtp.mailbox.messages

    def link(self, mail: EmailMessage, score: int) -> str:
        """The path of a rating link, as found in a mail's plain-text part."""
        return self.url(mail, score).removeprefix(self.survey.settings.survey_public_url)

    def url(self, mail: EmailMessage, score: int) -> str:
        """A rating link, as found in a mail's plain-text part."""
        text = mail.get_body(("plain",)).get_content()
        [url] = [word for word in text.split() if word.endswith(f"?score={score}")]
        return url

    @contextlib.asynccontextmanager
    async def served(self, port: int) -> AsyncIterator[str]:
        """The app on a real port (a browser cannot use the in-process transport); its base URL."""
        server = uvicorn.Server(
            uvicorn.Config(
                self.app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False
            )
        )
        task = asyncio.create_task(server.serve())
        await wait_until(lambda: server.started)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await task


def ticket(
    number: int | str = 1,
    *,
    at: datetime = MONDAY,
    category: str = "resolved",
    email_address: str | None = "ada@example.com",
    **fields: Any,
) -> TicketChanged:
    """A canonical ticket snapshot of the generic source."""
    values: dict[str, Any] = {
        "ticket_key": f"generic:{number}",
        "source": "generic",
        "external_id": str(number),
        "occurred_at": at,
        "created_at": at - timedelta(hours=3),
        "status": category.title(),
        "status_category": StatusCategory(category),
        "change": "status_changed",
        "priority": "P3",
        "business_service": "email",
        "assignment_group": "service-desk",
        "assignee": "grace",
        "title": "Cannot send mail",
        "requester": Person(id=f"u-{email_address}", email=email_address, name="Ada")
        if email_address
        else None,
        "resolved_at": at if category in ("resolved", "closed") else None,
        **fields,
    }
    return TicketChanged(**values)


def write_rules(path: Path, rules: dict[str, Any] | None) -> Path:
    """A rules file (the shape of services/survey/surveys.yaml) for the service under test."""
    path.write_text(yaml.safe_dump(rules or {}))
    return path


@contextlib.asynccontextmanager
async def running_survey(
    settings: ServiceSettings,
    *,
    smtp: SmtpServer,
    rules_file: Path,
    wall_clock: bool = False,
    **overrides: Any,
) -> AsyncIterator[SurveyHarness]:
    """The survey service with a rules file of the test's, delivering to the test's SMTP server."""
    # Validated like the environment would be (model_copy would not turn "none" into an enum, say).
    settings = type(settings).model_validate(
        settings.model_dump()
        | {
            "survey_rules_file": rules_file,
            "survey_public_url": PUBLIC_URL,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_security": SmtpSecurity.NONE,
            "smtp_from": "IT Service Desk <desk@example.com>",
            **overrides,
        }
    )
    app = create_app(service_spec("survey"), settings)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        clock = Clock(None if wall_clock else MONDAY)
        runtime.extras["survey"] = replace(survey_of(runtime), clock=clock)
        survey_of(runtime).courier.clock = clock
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=PUBLIC_URL,
            headers={"authorization": f"Bearer {API_KEY}"},
        ) as client:
            yield SurveyHarness(client, runtime, clock, smtp, app)


async def wait_until(condition: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Poll a condition another task makes true (uvicorn offers no event for "started")."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - nothing to wait on but the flag
            await asyncio.sleep(0.01)
