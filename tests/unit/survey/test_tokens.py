"""Answer-link tokens: authentic, unforgeable, expiring, rotatable."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.survey.tokens import Rejection, TokenRejected, issue, read

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SECRET = b"s" * 32
INVITATION = uuid.UUID("0b8f5b43-2f6e-4c54-9d4e-6a5bb1a0d3f1")


def token(**overrides: object) -> str:
    values = {
        "invitation_id": INVITATION,
        "expires_at": NOW + timedelta(days=7),
        "secret": SECRET,
        **overrides,
    }
    return issue(**values)  # type: ignore[arg-type]


def rejection(text: str, *, now: datetime = NOW, secrets: list[bytes] | None = None) -> Rejection:
    with pytest.raises(TokenRejected) as error:
        read(text, secrets=secrets or [SECRET], now=now)
    return error.value.rejection


def test_a_token_carries_its_invitation_and_expiry_and_is_url_safe() -> None:
    text = token()
    claims = read(text, secrets=[SECRET], now=NOW)
    assert claims.invitation_id == INVITATION
    assert claims.expires_at == NOW + timedelta(days=7)
    assert text.replace("-", "").replace("_", "").isalnum()
    assert len(text) == 76


def test_a_token_expires_at_its_instant() -> None:
    assert read(token(), secrets=[SECRET], now=NOW + timedelta(days=7, seconds=-1))
    assert rejection(token(), now=NOW + timedelta(days=7)) is Rejection.EXPIRED


def test_a_token_signed_with_another_secret_is_forged_and_rotation_accepts_old_and_new() -> None:
    old = token(secret=b"o" * 32)
    assert rejection(old) is Rejection.FORGED
    assert read(old, secrets=[SECRET, b"o" * 32], now=NOW).invitation_id == INVITATION


def test_changing_the_invitation_or_the_expiry_breaks_the_signature() -> None:
    raw = bytearray(base64.urlsafe_b64decode(token() + "=="))
    for position in (1, 17, 24):  # in the invitation id, and in the expiry
        tampered = raw.copy()
        tampered[position] ^= 0x01
        text = base64.urlsafe_b64encode(bytes(tampered)).rstrip(b"=").decode()
        assert rejection(text) is Rejection.FORGED


@pytest.mark.parametrize("text", ["", "abc", "!" * 76, "a" * 500, token() + "A", token()[:-1], "é" * 76])
def test_anything_else_is_malformed(text: str) -> None:
    assert rejection(text) is Rejection.MALFORMED


@given(st.text(max_size=120))
def test_no_text_is_accepted_or_crashes(text: str) -> None:
    assert rejection(text) in (Rejection.MALFORMED, Rejection.FORGED)
