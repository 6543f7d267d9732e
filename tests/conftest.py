"""Test harness: one real broker per session, a fresh database per test, unique topics per test."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from bothways import devstack
from bothways.cli import migrate_all, service_spec
from bothways.settings import ServiceSettings
from bothways.web import create_app
from tests import survey_harness
from tests.support import (
    API_KEY,
    GENERIC_SECRET,
    PLATFORM_CREDENTIALS,
    READ_KEY,
    SURVEY_TOKEN_SECRET,
    TcpProxy,
)

ARTIFACTS = Path(__file__).parent.parent / ".bothways" / "test-artifacts"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """KAFKA_BOOTSTRAP_SERVERS when set, else a Tansu broker on a free port for the whole session."""
    if configured := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield configured
        return
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with devstack.tansu_broker(devstack.free_port(), log_path=ARTIFACTS / "broker.log") as bootstrap:
        yield bootstrap


@pytest.fixture
async def cuttable_broker() -> AsyncIterator[tuple[str, TcpProxy]]:
    """A broker of this test's own, reached only through a proxy the test can cut and restore."""
    proxy_port = devstack.free_port()
    with devstack.tansu_broker(devstack.free_port(), advertised_port=proxy_port) as direct:
        proxy = await TcpProxy(int(direct.rsplit(":", 1)[1]), port=proxy_port).start()
        yield f"127.0.0.1:{proxy.port}", proxy
        await proxy.cut()


@pytest.fixture
async def cuttable_database(database_url: str) -> AsyncIterator[tuple[str, TcpProxy]]:
    """This test's database, reached through a proxy the test can cut and restore."""
    parts = urlsplit(database_url)
    proxy = await TcpProxy(parts.port or 5432, target_host=parts.hostname or "127.0.0.1").start()
    via_proxy = urlunsplit(
        (parts.scheme, f"{parts.username or 'postgres'}@127.0.0.1:{proxy.port}", parts.path, "", "")
    )
    yield via_proxy, proxy
    await proxy.cut()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    with devstack.postgres(os.environ.get("DATABASE_URL")) as url:
        yield url


@pytest.fixture(scope="session")
def template_database(postgres_server: str) -> Iterator[str]:
    """A database with every service's schema migrated, cloned for each test."""
    name = f"bw_template_{os.getpid()}"

    async def create() -> None:
        conn = await asyncpg.connect(postgres_server)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        await migrate_all(devstack.with_database(postgres_server, name))

    asyncio.run(create())
    yield name
    asyncio.run(_drop_database(postgres_server, name))


async def _drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def database_url(postgres_server: str, template_database: str) -> AsyncIterator[str]:
    """A clean, migrated database of its own for one test."""
    name = f"bw_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(postgres_server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    finally:
        await conn.close()
    yield devstack.with_database(postgres_server, name)
    await _drop_database(postgres_server, name)


@pytest.fixture
def namespace() -> str:
    """A topic and consumer-group prefix of this test's own."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def service_env(database_url: str, kafka_bootstrap: str, namespace: str) -> dict[str, str]:
    """The environment a service process of this test runs with."""
    return {
        "BOTHWAYS_DATABASE_URL": database_url,
        "BOTHWAYS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "BOTHWAYS_KAFKA_IDEMPOTENT_PRODUCER": "false",
        "BOTHWAYS_KAFKA_NAMESPACE": namespace,
        "BOTHWAYS_KAFKA_TOPIC_PARTITIONS": "3",
        "BOTHWAYS_API_KEYS": json.dumps({API_KEY: ["read", "admin"], READ_KEY: ["read"]}),
        "BOTHWAYS_GENERIC_WEBHOOK_SECRETS": json.dumps([GENERIC_SECRET]),
        "BOTHWAYS_SERVICENOW_WEBHOOK_SECRETS": json.dumps([GENERIC_SECRET]),
        "BOTHWAYS_SURVEY_TOKEN_SECRETS": json.dumps([SURVEY_TOKEN_SECRET]),
        **{f"BOTHWAYS_{name.upper()}": json.dumps(values) for name, values in PLATFORM_CREDENTIALS.items()},
        "BOTHWAYS_OUTBOX_POLL_SECONDS": "0.2",
        "BOTHWAYS_CONSUMER_RETRY_BACKOFF_SECONDS": "0.05",
        "BOTHWAYS_CONSUMER_SESSION_TIMEOUT_MS": "2000",
        "BOTHWAYS_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def settings_for(service_env: dict[str, str]) -> Callable[..., ServiceSettings]:
    """Build a service's settings from this test's environment plus overrides."""

    def build(service: str, **overrides: Any) -> ServiceSettings:
        settings_type: type[ServiceSettings] = __import__(
            f"services.{service}.app", fromlist=["SETTINGS"]
        ).SETTINGS
        with _environ(service_env):
            settings = settings_type()  # type: ignore[call-arg]
        return settings.model_copy(update=overrides)

    return build


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def run_service(
    settings_for: Callable[..., ServiceSettings],
) -> Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]:
    """Run a service in-process (its full lifespan: pool, relay, consumer) and talk to it over ASGI."""

    @contextlib.asynccontextmanager
    async def running(service: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(service_spec(service), settings_for(service, **overrides))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://test", headers={"authorization": f"Bearer {API_KEY}"}
            ) as client:
                yield client

    return running


@pytest.fixture
def start(service_env, tmp_path) -> Callable[..., Awaitable[devstack.ServiceProcess]]:
    """Start a service process with this test's environment; every one is stopped at the end."""
    started: list[devstack.ServiceProcess] = []

    async def start_one(name: str, *, port: int | None = None, **env: str) -> devstack.ServiceProcess:
        service = devstack.start_service(
            name,
            port=port or devstack.free_port(),
            env={**service_env, **env},
            log_path=tmp_path / f"{name}.log",
        )
        started.append(service)
        deadline = time.monotonic() + 30
        while True:
            assert service.process.poll() is None, (tmp_path / f"{name}.log").read_text()[-3000:]
            try:
                async with httpx.AsyncClient(timeout=1) as client:
                    if (await client.get(f"{service.url}/readyz")).status_code == 200:
                        return service
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{name} not ready"
            await asyncio.sleep(0.1)  # the event loop keeps serving the test's proxies meanwhile

    yield start_one
    for service in reversed(started):
        devstack.stop_process(service.process)


@pytest.fixture
def smtp_server() -> Iterator[survey_harness.SmtpServer]:
    """A real SMTP server (aiosmtpd) keeping what it receives."""
    with survey_harness.smtp_server() as server:
        yield server


@pytest.fixture
def survey_service(
    settings_for: Callable[..., ServiceSettings], smtp_server: survey_harness.SmtpServer, tmp_path: Path
) -> Callable[..., contextlib.AbstractAsyncContextManager[survey_harness.SurveyHarness]]:
    """Run the survey service with rules (a dict, as in surveys.yaml) and settings of the test's choosing."""

    def running(
        rules: dict[str, Any] | None = None, *, wall_clock: bool = False, **overrides: Any
    ) -> contextlib.AbstractAsyncContextManager[survey_harness.SurveyHarness]:
        rules_file = survey_harness.write_rules(tmp_path / "surveys.yaml", rules)
        return survey_harness.running_survey(
            settings_for("survey"),
            smtp=smtp_server,
            rules_file=rules_file,
            wall_clock=wall_clock,
            **overrides,
        )

    return running


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, type[survey_harness.Receiver]]]:
    """A real HTTP endpoint taking webhooks: its URL, and the handler class holding what it received."""
    with survey_harness.webhook_receiver() as receiver:
        yield receiver
