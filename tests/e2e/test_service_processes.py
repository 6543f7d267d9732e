"""The services as real processes: killed, cut off from the broker, stopped, and started by `bothways dev`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import asyncpg
import httpx
import pytest

from bothways import devstack
from bothways.signing import signed_headers
from tests.support import eventually, signed_generic, ticket_body

pytestmark = pytest.mark.e2e


async def post_tickets(ingest: devstack.ServiceProcess, count: int, *, prefix: str = "") -> list[str]:
    async with httpx.AsyncClient(base_url=ingest.url, timeout=10) as client:

        async def post(i: int) -> str:
            body = json.dumps(ticket_body(f"{prefix}{i}")).encode()
            response = await client.post("/webhooks/generic", content=body, headers=signed_generic(body))
            assert response.status_code == 202, response.text
            return response.json()["event_ids"][0]

        ids: list[str] = []
        for start in range(0, count, 25):
            ids += await asyncio.gather(*(post(i) for i in range(start, min(start + 25, count))))
        return ids


async def sla_applications(database_url: str) -> tuple[int, int]:
    """(tickets recorded, highest number of times one ticket's event was applied)."""
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, coalesce(max(event_count), 0) AS most FROM sla.ticket"
        )
    finally:
        await conn.close()
    return row["n"], row["most"]


async def test_a_consumer_killed_mid_batch_loses_nothing_and_applies_nothing_twice(
    start, database_url
) -> None:
    ingest = await start("ingest")
    await post_tickets(ingest, 400)
    sla = await start("sla", BOTHWAYS_CONSUMER_BATCH_SIZE="10")

    async def partly_applied() -> bool:
        return 0 < (await sla_applications(database_url))[0] < 400

    await eventually(partly_applied, interval=0.01)
    sla.process.send_signal(signal.SIGKILL)
    sla.process.wait()
    killed_at = (await sla_applications(database_url))[0]
    await start("sla", BOTHWAYS_CONSUMER_BATCH_SIZE="10")

    async def all_applied() -> bool:
        return (await sla_applications(database_url))[0] == 400

    await eventually(all_applied, timeout=60)
    await asyncio.sleep(1)
    tickets, most = await sla_applications(database_url)
    print(
        f"400 events, killed after {killed_at} applied, {tickets} applied in the end, max applications {most}"
    )
    assert (tickets, most) == (400, 1)


async def test_ingest_keeps_accepting_while_the_broker_is_away_and_everything_arrives_once(
    start, database_url, cuttable_broker
) -> None:
    bootstrap, broker_link = cuttable_broker
    ingest = await start("ingest", BOTHWAYS_KAFKA_BOOTSTRAP_SERVERS=bootstrap)
    await start("sla", BOTHWAYS_KAFKA_BOOTSTRAP_SERVERS=bootstrap)
    await post_tickets(ingest, 20, prefix="before-")
    await broker_link.cut()
    await post_tickets(ingest, 100, prefix="during-")  # every one answered 202 while the broker is away
    await asyncio.sleep(1)
    await broker_link.restore()

    async def all_applied() -> bool:
        return (await sla_applications(database_url))[0] == 120

    await eventually(all_applied, timeout=90)
    assert await sla_applications(database_url) == (120, 1)


async def test_sigterm_stops_a_service_cleanly_within_seconds(start, tmp_path) -> None:
    sla = await start("sla", BOTHWAYS_LOG_LEVEL="INFO")
    started = time.monotonic()
    sla.process.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal once its graceful shutdown is done, so the status is -SIGTERM.
    assert sla.process.wait(15) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 10
    messages = [json.loads(line)["message"] for line in (tmp_path / "sla.log").read_text().splitlines()]
    assert "service stopped" in messages, "the lifespan drained: consumer, relay, producer and pool closed"
    assert messages.index("service stopped") > messages.index("Shutting down")


def test_bothways_dev_runs_the_stack_and_stops_it_leaving_nothing_behind(postgres_server, tmp_path) -> None:
    database = f"bw_dev_{uuid.uuid4().hex[:8]}"
    first_port = devstack.free_port()
    while any(devstack.port_in_use(first_port + i) for i in range(4)):
        first_port = devstack.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTHWAYS_")}
    env["DATABASE_URL"] = postgres_server
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    dev = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bothways.cli",
            "dev",
            "--broker-port",
            str(devstack.free_port()),
            "--first-port",
            str(first_port),
            "--database",
            database,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output = []
        deadline = time.monotonic() + 90
        while "Ctrl-C stops everything" not in "".join(output):
            line = dev.stdout.readline()
            assert line or dev.poll() is None, "".join(output)
            output.append(line)
            assert time.monotonic() < deadline, "".join(output)
        secrets = json.loads((devstack.STATE_DIR / "dev-secrets.json").read_text())
        body = json.dumps(ticket_body("dev-1")).encode()
        headers = {
            "content-type": "application/json",
            **signed_headers(
                secrets["generic_webhook_secret"],
                msg_id=f"msg_{uuid.uuid4().hex}",
                timestamp=int(time.time()),
                body=body,
            ),
        }
        posted_at = time.monotonic()
        assert (
            httpx.post(
                f"http://127.0.0.1:{first_port}/webhooks/generic", content=body, headers=headers
            ).status_code
            == 202
        )
        auth = {"authorization": f"Bearer {secrets['api_key']}"}
        while (
            httpx.get(f"http://127.0.0.1:{first_port + 1}/tickets/generic:dev-1", headers=auth).status_code
            != 200
        ):
            assert time.monotonic() - posted_at < 5
            time.sleep(0.02)
        while (
            httpx.get(f"http://127.0.0.1:{first_port + 3}/reports/tickets", headers=auth).json()["total"] != 1
        ):
            assert time.monotonic() - posted_at < 5
            time.sleep(0.02)
        print(f"ticket visible on sla and reporting {time.monotonic() - posted_at:.3f} s after posting")
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        stopped = dev.wait(20)
        dev.stdout.close()
        asyncio.run(_drop(postgres_server, database))
    assert stopped == 0
    survivors = subprocess.run(["pgrep", "-g", str(dev.pid)], capture_output=True, text=True).stdout.split()
    assert survivors == [], "no process of the stack outlives it"
    for offset in range(4):
        assert not devstack.port_in_use(first_port + offset)


async def _drop(server: str, database: str) -> None:
    conn = await asyncpg.connect(server)
    await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    await conn.close()
