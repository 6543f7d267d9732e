"""Fixtures for tests that run the services as real processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from bothways import devstack


@pytest.fixture
def start(service_env, tmp_path) -> Callable[..., Awaitable[devstack.ServiceProcess]]:
    """Start a service process with this test's environment; every one is stopped at the end."""
    started: list[devstack.ServiceProcess] = []

    async def start_one(name: str, **env: str) -> devstack.ServiceProcess:
        service = devstack.start_service(
            name, port=devstack.free_port(), env={**service_env, **env}, log_path=tmp_path / f"{name}.log"
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
