"""`bothways dev --demo`: the stack fills with a simulated month within a minute, and stops leaving nothing."""

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

pytestmark = pytest.mark.e2e

# A minute, as promised, plus the stack's own start (migrations, four services) on a busy machine.
FILLED_WITHIN_SECONDS = 60
# The survey mails of the replay's last week arrive as it ends (about 45 s); their answers follow.
CSAT_WITHIN_SECONDS = 75


def test_the_demo_fills_the_stack_within_a_minute_and_stops_with_it(postgres_server) -> None:
    database = f"bw_demo_{uuid.uuid4().hex[:8]}"
    first_port = devstack.free_port()
    while any(devstack.port_in_use(first_port + i) for i in range(4)):
        first_port = devstack.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTHWAYS_")}
    env["DATABASE_URL"] = postgres_server
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    command = [sys.executable, "-m", "bothways.cli", "dev", "--demo", "--first-port", str(first_port)]
    command += ["--broker-port", str(devstack.free_port()), "--database", database]
    dev = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    simulator = f"--ingest-url http://127.0.0.1:{first_port}"
    try:
        output = []
        deadline = time.monotonic() + 90
        while "Demo:" not in "".join(output):
            line = dev.stdout.readline()
            assert line or dev.poll() is None, "".join(output)
            output.append(line)
            assert time.monotonic() < deadline, "".join(output)
        started = time.monotonic()
        secrets = json.loads((devstack.STATE_DIR / "dev-secrets.json").read_text())
        auth = {"authorization": f"Bearer {secrets['api_key']}"}
        reports = f"http://127.0.0.1:{first_port + 3}/reports/tickets"
        while (total := httpx.get(reports, headers=auth).json()["total"]) < 300:
            assert time.monotonic() - started < FILLED_WITHIN_SECONDS, f"{total} tickets after a minute"
            time.sleep(1)
        filled = time.monotonic() - started
        timers = httpx.get(
            f"http://127.0.0.1:{first_port + 1}/slas", params={"limit": 50}, headers=auth
        ).json()
        states = {timer["state"] for timer in timers["items"]}
        assert states & {"met", "breached"}, states
        services = {timer["business_service"] for timer in timers["items"]}
        assert services <= {"email", "hr-portal", "erp", "vpn", "webshop", "laptops"}, services
        # The customers answer the survey mails of the replayed week as they arrive: CSAT on the
        # scorecard, and hr-portal's customers unhappy.
        scorecards = f"http://127.0.0.1:{first_port + 3}/scorecards"
        while (
            not (csat := _csat(httpx.get(scorecards, headers=auth).json()))
            .get("hr-portal", {})
            .get("sufficient")
        ):
            assert time.monotonic() - started < CSAT_WITHIN_SECONDS, (
                f"CSAT after {CSAT_WITHIN_SECONDS} s: {csat}"
            )
            time.sleep(1)
        answered = time.monotonic() - started
        assert csat["hr-portal"]["csat_percent"] < 50, csat
        assert sum(figure["responses"] for figure in csat.values()) > csat["hr-portal"]["responses"]
        print(
            f"demo: {total} tickets on the reporting service {filled:.0f} s after the simulator started, "
            f"CSAT of hr-portal ({csat['hr-portal']['responses']} answers) after {answered:.0f} s: "
            + ", ".join(f"{s} {c['responses']}/{c['csat_percent']}" for s, c in sorted(csat.items()))
        )
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        stopped = dev.wait(30)
        dev.stdout.close()
        asyncio.run(_drop(postgres_server, database))
    assert stopped == 0
    survivors = subprocess.run(["pgrep", "-f", simulator], capture_output=True, text=True).stdout.split()
    assert survivors == [], "the simulator stops with the stack"
    for offset in range(4):
        assert not devstack.port_in_use(first_port + offset)


def _csat(answer: dict) -> dict[str, dict]:
    """Each service's CSAT figure of the current month."""
    return {card["business_service"]: card["customer"]["csat"] for card in answer["scorecards"]}


async def _drop(server: str, database: str) -> None:
    conn = await asyncpg.connect(server)
    await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    await conn.close()
