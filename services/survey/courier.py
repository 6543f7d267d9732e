"""The courier: sends what a scheduler step claimed, after the claim committed, and records each outcome.

Exactly-once is impossible with SMTP, so the design is at-least-once with a record of every attempt:
the step writes the attempt row and a lease before anything is sent; the outcome is recorded after.
A crash between the two leaves an attempt without an outcome, which the next claim (after the lease)
marks "unknown" before trying again. The Message-ID and the webhook-id are the same on every attempt,
so a mail system or a receiver can drop the rare second copy.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import httpx

from bothways.db import UNAVAILABLE_ERRORS, Connection, Pool
from bothways.outbox import enqueue
from bothways.scheduler import wake_scheduler
from services.survey import facts, messages, store, tokens
from services.survey.delivery import (
    Channel,
    DeliveryError,
    RetryPolicy,
    SmtpServer,
    post_webhook,
    send_email,
)
from services.survey.metrics import DELIVERY_FAILURES, SENT, service_label
from services.survey.questions import Scale
from services.survey.rules import SurveyRules

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Parcel:
    """One claimed send: which attempt it is, and the letter to deliver."""

    invitation_id: uuid.UUID
    attempt: int
    # The attempt's number within the current retry budget (an administrator's retry starts a new one).
    try_number: int
    recipient_id: str | None
    letter: messages.Letter


@dataclass(frozen=True)
class Postage:
    """How the courier reaches people: the channel and its configuration."""

    channel: Channel
    sender: messages.Sender
    smtp: SmtpServer | None
    webhook_url: str | None
    webhook_secrets: list[str]
    ticket_webhook_url: str | None
    public_url: str
    token_secret: bytes


class Courier:
    """Delivers claimed parcels and ticket actions concurrently, then records each outcome."""

    def __init__(
        self,
        *,
        pool: Pool,
        postage: Postage,
        retry: RetryPolicy,
        http: httpx.AsyncClient,
        clock: Clock,
        concurrency: int,
    ) -> None:
        self.pool = pool
        self.postage = postage
        self.retry = retry
        self.http = http
        self.clock = clock
        self.concurrency = concurrency

    def page_url(self, invitation_id: uuid.UUID, *, expires_at: datetime) -> str:
        """The answer page of an invitation, its signed token in the path."""
        token = tokens.issue(
            invitation_id=invitation_id, expires_at=expires_at, secret=self.postage.token_secret
        )
        return f"{self.postage.public_url}/s/{token}"

    async def parcels(
        self, conn: Connection, *, claimed: Sequence[store.Row], rules: SurveyRules
    ) -> list[Parcel]:
        """Write the letters of claimed invitations, reading what they need in the claiming transaction."""
        people = await store.persons(conn, person_ids=[r["person_id"] for r in claimed if r["person_id"]])
        campaigns = {
            r["campaign_id"]: await store.campaign(conn, campaign_id=r["campaign_id"])
            for r in claimed
            if r["campaign_id"]
        }
        return [
            self._parcel(
                row,
                person=people.get(row["person_id"]),
                campaign=campaigns.get(row["campaign_id"]),
                rules=rules,
            )
            for row in claimed
        ]

    def _parcel(
        self, row: store.Row, *, person: store.Row | None, campaign: store.Row | None, rules: SurveyRules
    ) -> Parcel:
        scale = Scale(row["scale"])
        question = campaign["question"] if campaign else rules.csat_question
        letter = messages.Letter(
            invitation_id=row["invitation_id"],
            kind=scale.kind,
            scale=scale,
            question=question,
            page_url=self.page_url(row["invitation_id"], expires_at=row["expires_at"]),
            expires_at=row["expires_at"],
            recipient_email=person["email"] if person else None,
            recipient_name=person["name"] if person else None,
            ticket_key=row["ticket_key"],
            external_id=row["external_id"],
            ticket_title=row["ticket_title"],
            campaign_id=row["campaign_id"],
        )
        tries = row["attempts"] - row["attempt_offset"]
        return Parcel(row["invitation_id"], row["attempts"], tries, row["person_id"], letter)

    async def deliver(self, parcels: Sequence[Parcel], actions: Sequence[store.Row]) -> None:
        """Send everything handed over by one step, a few at a time."""
        gate = asyncio.Semaphore(self.concurrency)

        async def gated(work: Awaitable[None]) -> None:
            """Hold a place at the gate while sending."""
            async with gate:
                await work

        await asyncio.gather(
            *(gated(self._deliver(parcel)) for parcel in parcels),
            *(gated(self._act(action)) for action in actions),
        )

    async def _deliver(self, parcel: Parcel) -> None:
        failure: DeliveryError | None = None
        try:
            await self._send(parcel)
        except DeliveryError as exc:
            failure = exc
        if failure is None:
            await self._record(lambda conn: self._delivered(conn, parcel))
        else:
            await self._record(partial(self._failed, parcel=parcel, error=failure))

    async def _send(self, parcel: Parcel) -> None:
        postage = self.postage
        if postage.channel is Channel.WEBHOOK:
            assert postage.webhook_url is not None
            body = messages.webhook_payload(parcel.letter, recipient_id=parcel.recipient_id)
            await post_webhook(
                self.http,
                url=postage.webhook_url,
                secrets=postage.webhook_secrets,
                msg_id=f"survey-{parcel.invitation_id}",
                body=body,
                now=self.clock(),
            )
            return
        if postage.smtp is None:
            raise DeliveryError("no SMTP server is configured (set BOTHWAYS_SMTP_HOST)", permanent=True)
        if not parcel.letter.recipient_email:
            raise DeliveryError("the requester has no e-mail address", permanent=True)
        message = messages.email_message(parcel.letter, sender=postage.sender, now=self.clock())
        await send_email(message, server=postage.smtp)

    async def _delivered(self, conn: Connection, parcel: Parcel) -> None:
        row = await store.record_delivered(
            conn, invitation_id=parcel.invitation_id, attempt=parcel.attempt, now=self.clock()
        )
        if row is None:
            log.warning(
                "a delivered invitation was claimed again meanwhile",
                extra={"invitation_id": str(parcel.invitation_id)},
            )
            return
        await enqueue(conn, [facts.sent(row)])
        await wake_scheduler(conn)
        SENT.labels(row["kind"], service_label(row["business_service"]), row["channel"]).inc()

    async def _failed(self, conn: Connection, *, parcel: Parcel, error: DeliveryError) -> None:
        now = self.clock()
        retry_at = None if error.permanent else self.retry.next_attempt(attempt=parcel.try_number, now=now)
        row = await store.record_failed(
            conn,
            invitation_id=parcel.invitation_id,
            attempt=parcel.attempt,
            now=now,
            retry_at=retry_at,
            error=error.message,
        )
        if row is None:
            return
        await wake_scheduler(conn)
        DELIVERY_FAILURES.labels(self.postage.channel.value, "retried" if retry_at else "final").inc()
        log.warning(
            "survey delivery failed",
            extra={
                "invitation_id": str(parcel.invitation_id),
                "attempt": parcel.attempt,
                "error": error.message,
                "retry_at": retry_at,
            },
        )
        if retry_at is None:
            await enqueue(conn, [facts.delivery_failed(row)])

    async def _act(self, action: store.Row) -> None:
        """Ask the ITSM platform to reopen or annotate the ticket of a closed follow-up."""
        attempt = action["ticket_action_attempts"]
        state, retry_at, error = "done", None, None
        try:
            assert self.postage.ticket_webhook_url is not None
            await post_webhook(
                self.http,
                url=self.postage.ticket_webhook_url,
                secrets=self.postage.webhook_secrets,
                msg_id=f"followup-{action['followup_id']}",
                body=ticket_action_body(action),
                now=self.clock(),
            )
        except DeliveryError as exc:
            retry_at = None if exc.permanent else self.retry.next_attempt(attempt=attempt, now=self.clock())
            state, error = ("pending" if retry_at else "failed"), exc.message
        await self._record(
            partial(
                store.record_ticket_action,
                followup_id=action["followup_id"],
                attempt=attempt,
                state=state,
                retry_at=retry_at,
                error=error,
            )
        )

    async def _record(self, write: Callable[[Connection], Awaitable[None]], *, attempts: int = 5) -> None:
        """Record an outcome, waiting out a short database outage: a lost record means a second send."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await write(conn)
                return
            except UNAVAILABLE_ERRORS as exc:
                if attempt == attempts:
                    log.error(
                        "cannot record a delivery outcome; the lease will expire", extra={"error": repr(exc)}
                    )
                    return
                await asyncio.sleep(0.5 * 2 ** (attempt - 1))


def ticket_action_body(action: store.Row) -> dict[str, Any]:
    """What the ticket webhook carries: the ticket, the action, and why."""
    return {
        "type": f"followup.ticket_{action['ticket_action']}",
        "action": action["ticket_action"],
        "ticket": {
            "key": action["ticket_key"],
            "source": action["source"],
            "external_id": action["external_id"],
        },
        "followup_id": str(action["followup_id"]),
        "invitation_id": str(action["invitation_id"]),
        "score": action["score"],
        "band": action["band"],
        "reason": action["answer_reason"],
        "comment": action["comment"],
        "outcome": action["outcome"],
        "note": action["note"],
    }
