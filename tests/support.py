"""Helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bothways.events import Envelope
from bothways.signing import signed_headers

API_KEY = "test-admin-key"
READ_KEY = "test-read-key"
GENERIC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SURVEY_TOKEN_SECRET = "survey-token-secret-of-the-tests-0123456789"
# Two of each where rotation applies: the second one signs in the tests.
PLATFORM_CREDENTIALS = {
    "jira_webhook_secrets": ["jira-old-secret", "jira-secret"],
    "zendesk_webhook_secrets": ["zendesk-secret"],
    "pagerduty_webhook_secrets": ["pd-old-secret", "pd-secret"],
    "servicenow_bearer_tokens": ["snow-token"],
    "freshservice_bearer_tokens": ["fresh-token"],
    "freshservice_basic_auth": ["fresh:basic-password"],
    "alertmanager_bearer_tokens": ["am-token"],
    "alertmanager_basic_auth": ["alertmanager:am-password"],
}


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


class TcpProxy:
    """A TCP forwarder in front of a real server, so a test can cut the network and restore it."""

    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1", port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones, like a server that went away."""
        if self._server:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def _forward(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, server_writer}

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.transport.abort()
                self._writers.discard(writer)

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))


async def read_topic(bootstrap: str, topic: str, *, count: int, timeout: float = 15.0) -> list[Any]:
    """Read `count` records from the start of every partition of a topic (no consumer group)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await eventually(lambda: _partitions(consumer, topic), timeout=timeout)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < count and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def _partitions(consumer: Any, topic: str) -> set[int] | None:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic)


async def publish(bootstrap: str, topic: str, envelopes: Sequence[Envelope]) -> None:
    """Produce events onto a topic the way the outbox relay does (binary-mode CloudEvents)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(
                topic, value=envelope.value_bytes(), key=envelope.key_bytes(), headers=envelope.headers()
            )
    finally:
        await producer.stop()
