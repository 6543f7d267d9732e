"""Helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bothways.signing import signed_headers

API_KEY = "test-admin-key"
READ_KEY = "test-read-key"
GENERIC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def ticket_body(
    external_id: str = "42", *, status: str = "Open", category: str = "open", **fields: Any
) -> dict[str, Any]:
    """A canonical ticket as the generic webhook takes it."""
    created = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    return {
        "source": "generic",
        "external_id": external_id,
        "occurred_at": (created + timedelta(minutes=5)).isoformat(),
        "created_at": created.isoformat(),
        "change": "created",
        "status": status,
        "status_category": category,
        "priority": "P3",
        "business_service": "email",
        "title": "Cannot send mail",
        **fields,
    }


def signed_generic(body: bytes, *, msg_id: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    """Headers of a generic webhook signed with the test secret."""
    return {
        "content-type": "application/json",
        **signed_headers(
            GENERIC_SECRET,
            msg_id=msg_id or f"msg_{uuid.uuid4().hex}",
            timestamp=timestamp if timestamp is not None else int(time.time()),
            body=body,
        ),
    }


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 15.0, interval: float = 0.05
) -> Any:
    """Poll an async check until it returns a truthy value; fail with its last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s; last value: {last!r}")
