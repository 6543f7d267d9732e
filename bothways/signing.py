"""Standard Webhooks signatures (standardwebhooks.com): verify what platforms send, sign what we send.

The reference library reads the wall clock and raises on malformed headers or non-UTF-8 bodies;
this keeps time injectable and turns every malformed input into one clear rejection.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
TOLERANCE = timedelta(minutes=5)


class SignatureRejected(Exception):
    """The delivery is not authentic (or not fresh); the message says why, without secrets."""


def decode_secret(secret: str) -> bytes:
    """A `whsec_<base64>` secret as key bytes."""
    body = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("a Standard Webhooks secret is 'whsec_' followed by base64") from exc
    if not key:
        raise ValueError("a Standard Webhooks secret may not be empty")
    return key


def sign(key: bytes, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of one delivery."""
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers a sender attaches to a delivery."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(decode_secret(secret), msg_id=msg_id, timestamp=timestamp, body=body),
    }


def verify(
    headers: Mapping[str, str],
    body: bytes,
    *,
    keys: Sequence[bytes],
    now: datetime,
    tolerance: timedelta = TOLERANCE,
) -> str:
    """Check id, timestamp and signature against every key (rotation); returns the delivery id."""
    msg_id = headers.get("webhook-id", "")
    raw_timestamp = headers.get("webhook-timestamp", "")
    presented = headers.get("webhook-signature", "")
    if not (msg_id and raw_timestamp and presented):
        raise SignatureRejected("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not raw_timestamp.isdigit():
        raise SignatureRejected("webhook-timestamp is not a Unix time in seconds")
    timestamp = int(raw_timestamp)
    if abs(now.timestamp() - timestamp) > tolerance.total_seconds():
        raise SignatureRejected("webhook-timestamp is outside the accepted window")
    if not keys:
        raise SignatureRejected("no signing secret is configured for this source")
    candidates = [sig.encode() for sig in presented.split(" ") if sig.startswith("v1,")]
    for key in keys:
        expected = sign(key, msg_id=msg_id, timestamp=timestamp, body=body).encode()
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            return msg_id
    raise SignatureRejected("no valid signature")
