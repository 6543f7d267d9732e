"""Forged webhooks, per source and per attack, against a real ingest process: every one 401, none stored."""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from bothways.signing import signed_headers
from tests.support import GENERIC_SECRET, signed_generic, ticket_body

pytestmark = pytest.mark.reliability

PAYLOADS = Path(__file__).parent.parent / "unit" / "ingest" / "payloads"
Headers = Callable[[bytes], dict[str, str]]


def payload(source: str, name: str) -> bytes:
    return (PAYLOADS / source / f"{name}.json").read_bytes()


def hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def standard(secret: str = GENERIC_SECRET, *, age: int = 0, signed_body: bytes | None = None) -> Headers:
    """Standard Webhooks (generic, ServiceNow): signed `age` seconds ago, over `signed_body` if given."""
    return lambda body: signed_headers(
        secret, msg_id=f"msg_{uuid.uuid4().hex}", timestamp=int(time.time()) - age, body=signed_body or body
    )


def truncated_standard(body: bytes) -> dict[str, str]:
    headers = standard()(body)
    return {**headers, "webhook-signature": headers["webhook-signature"][:-8]}


def jira(secret: str = "jira-secret", *, signed_body: bytes | None = None, cut: int = 0) -> Headers:
    def headers(body: bytes) -> dict[str, str]:
        digest = hex_hmac(secret, signed_body or body)
        return {
            "x-hub-signature": f"sha256={digest[: len(digest) - cut]}",
            "x-atlassian-webhook-identifier": uuid.uuid4().hex,
        }

    return headers


def zendesk(
    secret: str = "zendesk-secret",
    *,
    age: timedelta = timedelta(0),
    signed_body: bytes | None = None,
    cut: int = 0,
) -> Headers:
    def headers(body: bytes) -> dict[str, str]:
        stamp = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%SZ")
        digest = hmac.new(secret.encode(), stamp.encode() + (signed_body or body), hashlib.sha256).digest()
        signature = base64.b64encode(digest).decode()
        return {
            "x-zendesk-webhook-signature": signature[: len(signature) - cut],
            "x-zendesk-webhook-signature-timestamp": stamp,
            "x-zendesk-webhook-invocation-id": uuid.uuid4().hex,
        }

    return headers


def pagerduty(secret: str = "pd-secret", *, signed_body: bytes | None = None, cut: int = 0) -> Headers:
    def headers(body: bytes) -> dict[str, str]:
        digest = hex_hmac(secret, signed_body or body)
        return {"x-pagerduty-signature": f"v1={digest[: len(digest) - cut]}"}

    return headers


def bearer(token: str) -> Headers:
    return lambda body: {"authorization": f"Bearer {token}"}


def basic(credentials: str) -> Headers:
    return lambda body: {"authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


OTHER_BODY = json.dumps(ticket_body("another")).encode()
GENERIC_BODY = json.dumps(ticket_body("forged")).encode()
TOO_OLD = 301  # seconds: the replay window is five minutes
# Per source: a real delivery's body, how an authentic sender signs it, and the attacks on it. A source
# that signs no timestamp (Jira, PagerDuty) cannot be attacked by replaying one: a replayed delivery is
# deduplicated by its id instead; sources that sign nothing (Freshservice, Alertmanager) present a token.
SOURCES: dict[str, tuple[bytes, Headers, dict[str, Headers]]] = {
    "generic": (
        GENERIC_BODY,
        lambda body: signed_generic(body),
        {
            "wrong secret": standard("whsec_" + base64.b64encode(b"not-the-secret-of-the-tests").decode()),
            "truncated signature": truncated_standard,
            "replayed timestamp": standard(age=TOO_OLD),
            "signature of another body": standard(signed_body=OTHER_BODY),
        },
    ),
    "servicenow": (
        payload("servicenow", "incident_inserted"),
        standard(),
        {
            "wrong secret": standard("whsec_" + base64.b64encode(b"not-the-secret-of-the-tests").decode()),
            "truncated signature": truncated_standard,
            "replayed timestamp": standard(age=TOO_OLD),
            "signature of another body": standard(signed_body=OTHER_BODY),
            "wrong bearer token": bearer("snow-guess"),
            "truncated bearer token": bearer("snow-tok"),
        },
    ),
    "jira": (
        payload("jira", "issue_created"),
        jira(),
        {
            "wrong secret": jira("not-the-secret"),
            "truncated signature": jira(cut=8),
            "signature of another body": jira(signed_body=OTHER_BODY),
            "retired secret misspelt": jira("jira-old-secreT"),
        },
    ),
    "zendesk": (
        payload("zendesk", "ticket_created"),
        zendesk(),
        {
            "wrong secret": zendesk("not-the-secret"),
            "truncated signature": zendesk(cut=8),
            "replayed timestamp": zendesk(age=timedelta(seconds=TOO_OLD)),
            "signature of another body": zendesk(signed_body=OTHER_BODY),
        },
    ),
    "pagerduty": (
        payload("pagerduty", "incident_triggered"),
        pagerduty(),
        {
            "wrong secret": pagerduty("not-the-secret"),
            "truncated signature": pagerduty(cut=8),
            "signature of another body": pagerduty(signed_body=OTHER_BODY),
        },
    ),
    "freshservice": (
        payload("freshservice", "ticket_created"),
        bearer("fresh-token"),
        {
            "wrong bearer token": bearer("fresh-guess"),
            "truncated bearer token": bearer("fresh-tok"),
            "wrong basic password": basic("fresh:wrong-password"),
            "truncated basic password": basic("fresh:basic-pass"),
        },
    ),
    "alertmanager": (
        payload("alertmanager", "firing"),
        bearer("am-token"),
        {
            "wrong bearer token": bearer("am-guess"),
            "truncated bearer token": bearer("am-tok"),
            "wrong basic password": basic("alertmanager:wrong"),
        },
    ),
}


async def stored(database_url: str) -> tuple[int, int]:
    """(receipts, events) in ingest's tables."""
    conn = await asyncpg.connect(database_url)
    try:
        return (
            await conn.fetchval("SELECT count(*) FROM ingest.receipt"),
            await conn.fetchval("SELECT count(*) FROM ingest.outbox"),
        )
    finally:
        await conn.close()


async def test_forged_webhooks_of_every_source_are_401_and_store_nothing(start, database_url) -> None:
    ingest = await start("ingest")
    statuses: collections.Counter[int] = collections.Counter()
    async with httpx.AsyncClient(base_url=ingest.url, timeout=10) as client:
        for source, (body, _, attacks) in SOURCES.items():
            for attack, forge in attacks.items():
                headers = {"content-type": "application/json", **forge(body)}
                response = await client.post(f"/webhooks/{source}", content=body, headers=headers)
                statuses[response.status_code] += 1
                assert response.status_code == 401, (source, attack, response.text)
                assert response.json()["error"] == "unauthenticated"
        forged = await stored(database_url)
        # The same bodies, signed as their platforms sign them, are taken: the forgeries failed on
        # their credentials alone.
        for source, (body, authentic, _) in SOURCES.items():
            headers = {"content-type": "application/json", **authentic(body)}
            response = await client.post(f"/webhooks/{source}", content=body, headers=headers)
            assert response.status_code == 202, (source, response.text)
    attacks_sent = sum(len(attacks) for _, _, attacks in SOURCES.values())
    receipts, events = await stored(database_url)
    print(
        f"{len(SOURCES)} sources, {attacks_sent} forged deliveries: statuses {dict(statuses)}, "
        f"{forged[0]} receipts and {forged[1]} events stored; then {len(SOURCES)} authentic ones: "
        f"{receipts} receipts, {events} events"
    )
    assert forged == (0, 0)
    assert receipts == len(SOURCES)
