"""Standard Webhooks verification, checked against the reference implementation's signatures."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from bothways.signing import SignatureRejected, decode_secret, signed_headers, verify

pytestmark = pytest.mark.unit

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_" + base64.b64encode(b"another secret of enough length").decode()
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BODY = b'{"external_id": "42"}'


def reference_headers(secret: str = SECRET, *, at: datetime = NOW, body: bytes = BODY) -> dict[str, str]:
    signature = Webhook(secret).sign(msg_id="msg_1", timestamp=at, data=body.decode())
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def test_a_signature_made_by_the_reference_library_is_accepted() -> None:
    assert verify(reference_headers(), BODY, keys=[decode_secret(SECRET)], now=NOW) == "msg_1"


def test_our_signatures_verify_with_the_reference_library() -> None:
    headers = signed_headers(SECRET, msg_id="msg_2", timestamp=int(datetime.now(UTC).timestamp()), body=BODY)
    assert Webhook(SECRET).verify(BODY, headers) == {"external_id": "42"}


def test_any_configured_secret_verifies_during_rotation() -> None:
    keys = [decode_secret(OTHER), decode_secret(SECRET)]
    assert verify(reference_headers(SECRET), BODY, keys=keys, now=NOW) == "msg_1"


def test_one_matching_signature_among_several_is_enough() -> None:
    headers = reference_headers(SECRET)
    headers["webhook-signature"] = "v1,bm9wZQ== " + headers["webhook-signature"]
    assert verify(headers, BODY, keys=[decode_secret(SECRET)], now=NOW) == "msg_1"


@pytest.mark.parametrize(
    ("headers", "body", "now", "reason"),
    [
        (reference_headers(OTHER), BODY, NOW, "no valid signature"),
        (reference_headers(), BODY + b" ", NOW, "no valid signature"),
        (reference_headers(), BODY, NOW + timedelta(minutes=5, seconds=1), "outside the accepted window"),
        (reference_headers(), BODY, NOW - timedelta(minutes=5, seconds=1), "outside the accepted window"),
        ({}, BODY, NOW, "missing"),
        (reference_headers() | {"webhook-signature": "garbage"}, BODY, NOW, "no valid signature"),
        (reference_headers() | {"webhook-signature": "v1,"}, BODY, NOW, "no valid signature"),
        (reference_headers() | {"webhook-timestamp": "12.5"}, BODY, NOW, "not a Unix time"),
    ],
    ids=["wrong-secret", "tampered-body", "stale", "future", "no-headers", "malformed", "empty", "bad-time"],
)
def test_an_unauthentic_or_stale_delivery_is_rejected(headers, body, now, reason) -> None:
    with pytest.raises(SignatureRejected, match=reason):
        verify(headers, body, keys=[decode_secret(SECRET)], now=now)


def test_a_timestamp_exactly_at_the_edge_of_the_window_is_accepted() -> None:
    assert verify(reference_headers(), BODY, keys=[decode_secret(SECRET)], now=NOW + timedelta(minutes=5))


def test_a_body_that_is_not_utf8_is_verified_as_bytes_not_crashed_on() -> None:
    body = b"\xff\xfe not utf-8"
    headers = signed_headers(SECRET, msg_id="m", timestamp=int(NOW.timestamp()), body=body)
    assert verify(headers, body, keys=[decode_secret(SECRET)], now=NOW) == "m"


def test_no_configured_secret_rejects_everything() -> None:
    with pytest.raises(SignatureRejected, match="no signing secret"):
        verify(reference_headers(), BODY, keys=[], now=NOW)


@pytest.mark.parametrize("secret", ["whsec_", "whsec_!!!not-base64"])
def test_a_malformed_secret_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        decode_secret(secret)
