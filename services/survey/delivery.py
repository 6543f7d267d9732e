"""Delivery channels (SMTP, signed webhook), how their failures are classified, and the retry schedule."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from enum import StrEnum
from typing import Any

import aiosmtplib
import httpx

from bothways.signing import signed_headers


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class SmtpSecurity(StrEnum):
    """How the SMTP connection is protected: STARTTLS (port 587), implicit TLS (465), or none (tests, relays)."""

    STARTTLS = "starttls"
    TLS = "tls"
    NONE = "none"


class DeliveryError(Exception):
    """A send that did not succeed; `permanent` when retrying this message cannot help (a refused address)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message[:2000]
        self.permanent = permanent


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: base, base*factor, ... capped; after max_attempts the delivery has failed."""

    max_attempts: int = 6
    base: timedelta = timedelta(minutes=1)
    factor: float = 4.0
    cap: timedelta = timedelta(hours=6)

    def next_attempt(self, *, attempt: int, now: datetime) -> datetime | None:
        """When to try again after failed attempt number `attempt` (1-based); None when it was the last."""
        if attempt >= self.max_attempts:
            return None
        return now + min(self.base * self.factor ** (attempt - 1), self.cap)


@dataclass(frozen=True)
class SmtpServer:
    """Where and how mail is submitted."""

    host: str
    port: int
    security: SmtpSecurity
    username: str | None = None
    password: str | None = None
    timeout_seconds: float = 30.0
    validate_certs: bool = True


async def send_email(message: EmailMessage, *, server: SmtpServer) -> None:
    """Submit one message; DeliveryError says whether trying again may help."""
    try:
        await aiosmtplib.send(
            message,
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.security is SmtpSecurity.TLS,
            start_tls=server.security is SmtpSecurity.STARTTLS,
            validate_certs=server.validate_certs,
            timeout=server.timeout_seconds,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [refused.code for refused in exc.recipients]
        raise DeliveryError(
            f"recipient refused: {_smtp_text(exc.recipients[0])}", permanent=min(codes) >= 500
        ) from exc
    except (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError) as exc:
        # A 5xx about this recipient or this message will be the same tomorrow; a 4xx may not.
        raise DeliveryError(f"refused: {_smtp_text(exc)}", permanent=exc.code >= 500) from exc
    except aiosmtplib.SMTPResponseException as exc:
        # The server refused us as a whole (authentication, sender): fixable by configuration, so retried.
        raise DeliveryError(f"SMTP server refused: {_smtp_text(exc)}") from exc
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise DeliveryError(f"SMTP server unreachable: {type(exc).__name__}: {exc}") from exc


async def post_webhook(
    client: httpx.AsyncClient,
    *,
    url: str,
    secrets: list[str],
    msg_id: str,
    body: dict[str, Any],
    now: datetime,
) -> None:
    """POST a Standard Webhooks signed JSON body; the id is stable across retries, so receivers can dedupe."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    signatures = [
        signed_headers(secret, msg_id=msg_id, timestamp=int(now.timestamp()), body=raw) for secret in secrets
    ]
    headers = {
        **signatures[0],
        # Every configured secret signs, so the receiver may rotate its secret at its own pace.
        "webhook-signature": " ".join(s["webhook-signature"] for s in signatures),
        "content-type": "application/json",
    }
    try:
        response = await client.post(url, content=raw, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"webhook unreachable: {type(exc).__name__}: {exc}") from exc
    if response.is_success:
        return
    # 4xx means the receiver will not take this body (except timeouts, conflicts and rate limits).
    permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 409, 425, 429)
    raise DeliveryError(
        f"webhook answered {response.status_code}: {response.text[:300]}", permanent=permanent
    )


def _smtp_text(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}"
