"""Each platform's own way of proving a webhook is authentic; pure, with the time passed in.

Every check compares in constant time against every configured secret (rotation) and raises
SignatureRejected with a reason that names no secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from bothways.signing import TOLERANCE, SignatureRejected, verify


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _any_equal(expected: Sequence[bytes], presented: Sequence[bytes]) -> bool:
    # Every pair is compared so the time taken does not depend on which secret matched.
    matched = False
    for want in expected:
        for got in presented:
            matched |= hmac.compare_digest(want, got)
    return matched


def _require(keys: Sequence[bytes], source: str) -> None:
    if not keys:
        raise SignatureRejected(f"no secret is configured for source {source!r}")


def jira(headers: Mapping[str, str], body: bytes, *, keys: Sequence[bytes]) -> None:
    """Jira Cloud: `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>` (WebSub style)."""
    _require(keys, "jira")
    presented = headers.get("x-hub-signature", "")
    if not presented.startswith("sha256="):
        raise SignatureRejected("missing or malformed X-Hub-Signature header")
    expected = [_hmac(key, body).hex().encode() for key in keys]
    if not _any_equal(expected, [presented.removeprefix("sha256=").lower().encode()]):
        raise SignatureRejected("no valid signature")


def zendesk(
    headers: Mapping[str, str],
    body: bytes,
    *,
    keys: Sequence[bytes],
    now: datetime,
    tolerance: timedelta = TOLERANCE,
) -> None:
    """Zendesk: base64 HMAC-SHA256 of (signature timestamp + body), the timestamp within the replay window."""
    _require(keys, "zendesk")
    presented = headers.get("x-zendesk-webhook-signature", "")
    stamp = headers.get("x-zendesk-webhook-signature-timestamp", "")
    if not (presented and stamp):
        raise SignatureRejected("missing X-Zendesk-Webhook-Signature or its timestamp header")
    try:
        signed_at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SignatureRejected("X-Zendesk-Webhook-Signature-Timestamp is not an ISO 8601 time") from exc
    if signed_at.tzinfo is None or abs((now - signed_at).total_seconds()) > tolerance.total_seconds():
        raise SignatureRejected("X-Zendesk-Webhook-Signature-Timestamp is outside the accepted window")
    try:
        signature = base64.b64decode(presented, validate=True)
    except binascii.Error as exc:
        raise SignatureRejected("X-Zendesk-Webhook-Signature is not base64") from exc
    if not _any_equal([_hmac(key, stamp.encode() + body) for key in keys], [signature]):
        raise SignatureRejected("no valid signature")


def pagerduty(headers: Mapping[str, str], body: bytes, *, keys: Sequence[bytes]) -> None:
    """PagerDuty v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>]` over the raw body (several during rotation)."""
    _require(keys, "pagerduty")
    presented = [
        part.strip().removeprefix("v1=").lower().encode()
        for part in headers.get("x-pagerduty-signature", "").split(",")
        if part.strip().startswith("v1=")
    ]
    if not presented:
        raise SignatureRejected("missing or malformed X-PagerDuty-Signature header")
    if not _any_equal([_hmac(key, body).hex().encode() for key in keys], presented):
        raise SignatureRejected("no valid signature")


def bearer_or_basic(
    headers: Mapping[str, str], *, tokens: Sequence[bytes], basic: Sequence[bytes], source: str
) -> None:
    """Platforms that sign nothing (Freshservice, Alertmanager): a bearer token or basic credentials."""
    if not (tokens or basic):
        raise SignatureRejected(f"no token or basic credentials are configured for source {source!r}")
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    presented = credentials.strip().encode()
    if scheme.lower() == "bearer" and presented and _any_equal(tokens, [presented]):
        return
    if scheme.lower() == "basic" and presented:
        try:
            decoded = base64.b64decode(presented, validate=True)
        except binascii.Error:
            decoded = b""
        if decoded and _any_equal(basic, [decoded]):
            return
    raise SignatureRejected("missing or wrong Authorization header")


def standard_or_bearer(
    headers: Mapping[str, str], body: bytes, *, keys: Sequence[bytes], tokens: Sequence[bytes], now: datetime
) -> str | None:
    """ServiceNow: Standard Webhooks when signed (returns the webhook-id), else a bearer token."""
    if "webhook-signature" in headers:
        return verify(headers, body, keys=keys, now=now)
    bearer_or_basic(headers, tokens=tokens, basic=[], source="servicenow")
    return None


def body_digest(body: bytes) -> str:
    """A delivery id for platforms that send none: the same body is the same delivery."""
    return "sha256:" + hashlib.sha256(body).hexdigest()
