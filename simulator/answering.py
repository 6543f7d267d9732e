"""Customers answering satisfaction surveys: the driver's pluggable step after a ticket is resolved.

The driver calls the step once per ticket resolved for good (its story is over). The customer's answer
is decided then, with the satisfaction model. `AnsweringCustomers` delivers it the way a customer
does: it reads the invitation the survey service mailed (from a folder of `.eml` files, the customers'
mailbox; `bothways dev` keeps every survey mail in `.bothways/mail/`), follows the link of the chosen
score on the real answer page and submits the form. Without a mailbox, `AwaitingSurveyService`
decides the same answers and reports them, sending nothing, and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import httpx

from simulator.satisfaction import Answer, answer, experience
from simulator.world import TicketState

AWAITING = "not sent: no mailbox to read the invitations from (--mailbox); answers decided only"
ANSWERING = "answered on the survey service's answer page, from the invitations in the mailbox"
# The subject of a CSAT invitation names the ticket (services/survey/messages.py).
_SUBJECT = re.compile(r"Your request (?P<external_id>[^\s:]+)")
_SCORE_LINK = re.compile(r"^(?P<page>https?://\S+/s/[A-Za-z0-9_-]+)\?score=(?P<score>\d+)$")


class SurveyStep(Protocol):
    """What the driver calls for every ticket resolved for good, and asks for a report at the end."""

    async def resolved(self, *, ticket_key: str, state: TicketState) -> None: ...

    async def finish(self, *, at_most_seconds: float = 30.0) -> None: ...

    def report(self) -> dict[str, Any]: ...


def customer_answer(state: TicketState) -> Answer | None:
    """What this ticket's customer answers (None: they ignore the survey); the same for the same ticket."""
    return answer(experience(state), rng=random.Random(f"survey:{state.ticket.number}:{state.reopen_count}"))


class _Tally:
    """Answers per business service, and the share satisfied (CSAT)."""

    def __init__(self) -> None:
        self.answers: Counter[str] = Counter()
        self.satisfied: Counter[str] = Counter()

    def add(self, service: str, decided: Answer) -> None:
        self.answers[service] += 1
        self.satisfied[service] += decided.satisfied

    def csat_percent(self) -> dict[str, int]:
        return {
            service: round(100 * self.satisfied[service] / count)
            for service, count in sorted(self.answers.items())
        }


class AwaitingSurveyService:
    """Decides each customer's answer and tallies it per business service, without sending it."""

    def __init__(self) -> None:
        self.resolved_tickets = 0
        self.decided = _Tally()

    async def resolved(self, *, ticket_key: str, state: TicketState) -> None:
        """Tally what the customer would answer."""
        self.resolved_tickets += 1
        if (decided := customer_answer(state)) is not None:
            self.decided.add(state.ticket.service.id, decided)

    async def finish(self, *, at_most_seconds: float = 30.0) -> None:
        """Nothing is in flight."""

    def report(self) -> dict[str, Any]:
        """What would have been answered: counts and the share satisfied (CSAT) per service."""
        return {
            "status": AWAITING,
            "resolved_tickets": self.resolved_tickets,
            "answers_decided": sum(self.decided.answers.values()),
            "csat_percent_by_service": self.decided.csat_percent(),
        }


@dataclass(frozen=True)
class Invitation:
    """A CSAT invitation as its recipient reads it: whom, about which ticket, the link of each score."""

    recipient: str
    external_id: str
    page: str
    scores: frozenset[int]

    def link(self, score: int) -> str:
        """The rating button's link: it opens the page with the score selected, and records nothing."""
        return f"{self.page}?score={score}"


def read_invitation(message: EmailMessage) -> Invitation | None:
    """The CSAT invitation a mail holds, from its subject, recipient and plain-text links; None otherwise."""
    subject = _SUBJECT.search(str(message.get("Subject", "")))
    recipient = str(message.get("To", "")).strip().lower()
    body = message.get_body(("plain",))
    if subject is None or not recipient or not isinstance(body, EmailMessage):
        return None
    links = [m for word in body.get_content().split() if (m := _SCORE_LINK.match(word))]
    pages = {m["page"] for m in links}
    if len(pages) != 1:
        return None
    return Invitation(
        recipient, subject["external_id"], pages.pop(), frozenset(int(m["score"]) for m in links)
    )


def answer_form(decided: Answer) -> dict[str, str]:
    """The answer page's form as the customer fills it in: the score, and after a low one the reason."""
    form = {"score": str(decided.score)}
    if decided.reason is not None:
        form["reason"] = decided.reason
    if decided.comment is not None:
        form["comment"] = decided.comment
    return form


class MailFolder:
    """A folder of `.eml` files, one mail each (the dev stack's mail catcher writes them): read once each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.read: set[str] = set()

    def skip_existing(self) -> None:
        """Mail already there was for an earlier run: this run's customers get theirs from now on."""
        self.read |= {file.name for file in self._files()}

    def new_messages(self) -> Iterator[EmailMessage]:
        """The mails that arrived since the last call, oldest first."""
        for file in self._files():
            if file.name in self.read:
                continue
            self.read.add(file.name)
            with contextlib.suppress(OSError):
                message = email.message_from_bytes(file.read_bytes(), policy=email.policy.default)
                if isinstance(message, EmailMessage):
                    yield message

    def _files(self) -> list[Path]:
        return sorted(self.path.glob("*.eml")) if self.path.is_dir() else []


@dataclass
class _Customer:
    """One resolved ticket's customer: the answer decided, and where it stands."""

    service: str
    decided: Answer


@dataclass
class AnsweringCustomers:
    """Answers each invitation that reaches the mailbox with what its customer decided, on the real page.

    An invitation and the end of its ticket's story meet in either order (a reopened ticket was invited
    after its first resolution); whichever comes second sends the answer. Tickets whose customers are
    never invited (the survey service's sampling, fatigue budget or age limit) simply get no mail.
    """

    mailbox: MailFolder
    client: httpx.AsyncClient
    poll_seconds: float = 0.5
    concurrency: int = 4
    resolved_tickets: int = 0
    decided: _Tally = field(default_factory=_Tally)
    answered: _Tally = field(default_factory=_Tally)
    invitations: int = 0
    ignored: int = 0  # invitations whose customer decided not to answer
    failures: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    _customers: dict[str, _Customer | None] = field(default_factory=dict)  # external id -> decided
    _waiting: dict[str, Invitation] = field(default_factory=dict)  # invitations before their story ended
    _sending: set[asyncio.Task[None]] = field(default_factory=set)
    _poller: asyncio.Task[None] | None = None
    _last_mail: float = 0.0
    _limit: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._limit = asyncio.Semaphore(self.concurrency)

    async def start(self) -> None:
        """Start reading the mailbox (mail already in it belongs to earlier runs)."""
        self.mailbox.skip_existing()
        self._last_mail = asyncio.get_running_loop().time()
        self._poller = asyncio.create_task(self._poll())

    async def resolved(self, *, ticket_key: str, state: TicketState) -> None:
        """Decide the customer's answer; send it if their invitation is already in the mailbox."""
        self.resolved_tickets += 1
        decided = customer_answer(state)
        if decided is not None:
            self.decided.add(state.ticket.service.id, decided)
        external_id = ticket_key.split(":", 1)[1]
        self._customers[external_id] = (
            None if decided is None else _Customer(state.ticket.service.id, decided)
        )
        if (invitation := self._waiting.pop(external_id, None)) is not None:
            self._take(invitation)

    async def finish(self, *, at_most_seconds: float = 30.0, quiet_seconds: float = 5.0) -> None:
        """Wait for the last invitations (until the mailbox has been quiet a while), then for the answers."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + at_most_seconds
        # The invitations of the last resolutions are still on their way: quiet counts from now at least.
        self._last_mail = max(self._last_mail, loop.time())
        while loop.time() < deadline and loop.time() - self._last_mail < quiet_seconds:  # noqa: ASYNC110 - the poller reads the folder; this only waits for it to go quiet
            await asyncio.sleep(self.poll_seconds)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self._read()
        if self._sending:
            await asyncio.gather(*self._sending)

    def report(self) -> dict[str, Any]:
        """What was answered through the answer page, per service, and what could not be."""
        return {
            "status": ANSWERING,
            "mailbox": str(self.mailbox.path),
            "resolved_tickets": self.resolved_tickets,
            "answers_decided": sum(self.decided.answers.values()),
            "invitations_received": self.invitations,
            "invitations_ignored": self.ignored,
            "invitations_unmatched": len(self._waiting),
            "answers_sent": sum(self.answered.answers.values()),
            "answer_failures": dict(self.failures),
            "failure_samples": self.samples,
            "csat_percent_by_service": self.answered.csat_percent(),
        }

    async def _poll(self) -> None:
        while True:
            await self._read()
            await asyncio.sleep(self.poll_seconds)

    async def _read(self) -> None:
        for message in self.mailbox.new_messages():
            invitation = read_invitation(message)
            if invitation is None:
                continue
            self.invitations += 1
            self._last_mail = asyncio.get_running_loop().time()
            if invitation.external_id in self._customers:
                self._take(invitation)
            else:
                self._waiting[invitation.external_id] = invitation

    def _take(self, invitation: Invitation) -> None:
        customer = self._customers[invitation.external_id]
        if customer is None:
            self.ignored += 1
            return
        task = asyncio.create_task(self._answer(invitation, customer))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _answer(self, invitation: Invitation, customer: _Customer) -> None:
        """What a customer does: click the button of their score, then submit the form."""
        async with self._limit:
            try:
                shown = await self.client.get(invitation.link(customer.decided.score))
                if shown.status_code != 200:
                    return self._failed(f"page {shown.status_code}", invitation, shown.text)
                sent = await self.client.post(invitation.page, data=answer_form(customer.decided))
            except httpx.HTTPError as exc:
                return self._failed(type(exc).__name__, invitation, str(exc))
            if sent.status_code != 200:
                return self._failed(f"answer {sent.status_code}", invitation, sent.text)
            self.answered.add(customer.service, customer.decided)

    def _failed(self, what: str, invitation: Invitation, text: str) -> None:
        self.failures[what] += 1
        if len(self.samples) < 5:
            self.samples.append(f"{what} {invitation.external_id}: {text[:200]}")
