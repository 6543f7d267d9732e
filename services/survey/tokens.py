"""Answer-link tokens: the invitation id and an expiry, signed, so a link can be neither guessed nor forged.

A token is URL-safe base64 (no padding) of: version byte, the invitation's UUID (16 bytes), the expiry
as Unix seconds (8 bytes), and an HMAC-SHA256 of those under the first configured secret. Several
secrets may verify during rotation. The token proves only who may answer which invitation until when;
the database still decides whether the invitation is open (answered, expired, canceled).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

VERSION: Final = 1
_CONTEXT: Final = b"bothways.survey.answer-link"
_BODY: Final = struct.Struct(">B16sQ")
_MAC_BYTES: Final = 32
_TOKEN_BYTES: Final = _BODY.size + _MAC_BYTES
# 76 characters; anything much longer is not a token and is refused before decoding.
MAX_TOKEN_LENGTH: Final = 100
_ALPHABET: Final = re.compile(r"[A-Za-z0-9_-]+")


class Rejection(StrEnum):
    """Why a token is refused."""

    MALFORMED = "malformed"
    FORGED = "forged"
    EXPIRED = "expired"


class TokenRejected(Exception):
    """The token cannot be honoured; `rejection` says why."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(f"survey token {rejection}")
        self.rejection = rejection


@dataclass(frozen=True)
class Claims:
    """What a valid token says."""

    invitation_id: uuid.UUID
    expires_at: datetime


def issue(*, invitation_id: uuid.UUID, expires_at: datetime, secret: bytes) -> str:
    """A token for one invitation, valid until `expires_at` (to the second)."""
    body = _BODY.pack(VERSION, invitation_id.bytes, int(expires_at.timestamp()))
    return base64.urlsafe_b64encode(body + _mac(secret, body)).rstrip(b"=").decode()


def read(token: str, *, secrets: Sequence[bytes], now: datetime) -> Claims:
    """The claims of an authentic, unexpired token; TokenRejected otherwise."""
    if not secrets:
        raise ValueError("no survey token secret is configured")
    raw = _decode(token)
    body, presented = raw[: _BODY.size], raw[_BODY.size :]
    if not any(hmac.compare_digest(_mac(secret, body), presented) for secret in secrets):
        raise TokenRejected(Rejection.FORGED)
    version, invitation, expires = _BODY.unpack(body)
    if version != VERSION:
        raise TokenRejected(Rejection.MALFORMED)
    expires_at = datetime.fromtimestamp(expires, UTC)
    if now >= expires_at:
        raise TokenRejected(Rejection.EXPIRED)
    return Claims(invitation_id=uuid.UUID(bytes=invitation), expires_at=expires_at)


def _decode(token: str) -> bytes:
    if len(token) > MAX_TOKEN_LENGTH or not _ALPHABET.fullmatch(token):
        raise TokenRejected(Rejection.MALFORMED)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenRejected(Rejection.MALFORMED) from exc
    if len(raw) != _TOKEN_BYTES:
        raise TokenRejected(Rejection.MALFORMED)
    return raw


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, _CONTEXT + body, hashlib.sha256).digest()
