"""PostgreSQL stopped and started again: ingest answers 503 meanwhile, consumers pause and catch up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from bothways import devstack
from bothways.cli import migrate_all
from tests.support import eventually, signed_generic, ticket_body

pytestmark = pytest.mark.reliability

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivateCluster:
    """A PostgreSQL cluster of the test's own (initdb, pg_ctl), which the test stops and starts again."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        # initdb and postgres refuse to run as root: run them as the postgres user then.
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_owner, str(PG_BIN / tool), *args], check=True, capture_output=True, timeout=60
        )

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.directory / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory}"
        self._run(
            "pg_ctl", "start", "-w", "-D", str(self.directory / "data"), "-l", str(self.log), "-o", options
        )

    def stop(self) -> None:
        """Stop at once, as a crash would: open connections are cut, nothing is shut down politely."""
        self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.directory / "data"))

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"

    def running(self) -> bool:
        command = [*self.as_owner, str(PG_BIN / "pg_ctl"), "status", "-D", str(self.directory / "data")]
        return subprocess.run(command, capture_output=True, check=False).returncode == 0


@pytest.fixture
def private_postgres() -> Iterator[PrivateCluster]:
    """A running private cluster on a free port, always stopped and removed at the end.

    Requested before `start`, so the services stop before it does."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"the PostgreSQL 15 server binaries are not installed in {PG_BIN}")
    # Not under tmp_path: the postgres user must reach the directory, and pytest's are root-only.
    directory = Path(tempfile.mkdtemp(prefix="bw-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    cluster = PrivateCluster(directory, devstack.free_port())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        if cluster.running():
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


async def post_ticket(client: httpx.AsyncClient, external_id: str) -> tuple[str, httpx.Response]:
    """Post one ticket; returns its delivery id and the answer."""
    delivery_id = f"msg_{uuid.uuid4().hex}"
    body = json.dumps(ticket_body(external_id)).encode()
    response = await client.post(
        "/webhooks/generic", content=body, headers=signed_generic(body, msg_id=delivery_id)
    )
    return delivery_id, response


async def sla_taken(database_url: str, ids: list[str]) -> tuple[int, int, int]:
    """(tickets sla recorded, the most events applied to one ticket, ids of `ids` in sla's inbox)."""
    conn = await asyncpg.connect(database_url)
    try:
        tickets, most = await conn.fetchrow("SELECT count(*), coalesce(max(event_count), 0) FROM sla.ticket")
        taken = await conn.fetchval("SELECT count(*) FROM sla.inbox WHERE event_id = ANY($1::text[])", ids)
    finally:
        await conn.close()
    return tickets, most, taken


async def test_database_stopped_and_restarted_ingest_answers_503_and_consumers_catch_up(
    private_postgres, start
) -> None:
    cluster = private_postgres
    with contextlib.redirect_stdout(None):
        await migrate_all(cluster.url)
    env = {"BOTHWAYS_DATABASE_URL": cluster.url}
    ingest = await start("ingest", **env)
    accepted: dict[str, str] = {}  # delivery id -> event id, for every 202
    async with httpx.AsyncClient(base_url=ingest.url, timeout=30) as client:
        for start_at in range(0, 300, 20):
            for delivery_id, response in await asyncio.gather(
                *(post_ticket(client, f"before-{i}") for i in range(start_at, start_at + 20))
            ):
                assert response.status_code == 202, response.text
                accepted[delivery_id] = response.json()["event_ids"][0]

        async def relayed() -> bool:
            conn = await asyncpg.connect(cluster.url)
            try:
                return await conn.fetchval("SELECT count(*) FROM ingest.outbox WHERE sent_at IS NULL") == 0
            finally:
                await conn.close()

        await eventually(relayed, timeout=30)
        # Small batches, so the database goes away while sla is half way through the topic.
        await start("sla", **env, BOTHWAYS_CONSUMER_BATCH_SIZE="10")
        ids = list(accepted.values())

        async def partly_applied() -> bool:
            return 0 < (await sla_taken(cluster.url, ids))[2] < len(ids)

        await eventually(partly_applied, interval=0.01)
        applied_at_stop = (await sla_taken(cluster.url, ids))[2]
        stopping = asyncio.create_task(asyncio.to_thread(cluster.stop))
        in_flight: list[httpx.Response] = []  # answered while the stop was under way
        while not stopping.done():
            for delivery_id, response in await asyncio.gather(
                *(post_ticket(client, f"stopping-{len(in_flight) + i}") for i in range(10))
            ):
                in_flight.append(response)
                if response.status_code == 202:  # the database was still there: it must be stored
                    accepted[delivery_id] = response.json()["event_ids"][0]
        await stopping
        stopped_at = time.monotonic()
        down_answers: list[httpx.Response] = []
        for start_at in range(0, 200, 10):
            down_answers += [
                response
                for _, response in await asyncio.gather(
                    *(post_ticket(client, f"during-{i}") for i in range(start_at, start_at + 10))
                )
            ]
        await asyncio.sleep(3)  # sla keeps polling a database that is away
        await asyncio.to_thread(cluster.start)
        down_for = time.monotonic() - stopped_at

        async def accepting_again() -> str | None:
            delivery_id, response = await post_ticket(client, f"after-{uuid.uuid4().hex[:8]}")
            if response.status_code == 202:
                accepted[delivery_id] = response.json()["event_ids"][0]
                return delivery_id
            return None

        back_at = time.monotonic()
        await eventually(accepting_again, timeout=30, interval=0.2)
        back_after = time.monotonic() - back_at
        for i in range(50):
            delivery_id, response = await post_ticket(client, f"after-{i}")
            assert response.status_code == 202, response.text
            accepted[delivery_id] = response.json()["event_ids"][0]

    statuses = [r.status_code for r in down_answers]
    racing = [r.status_code for r in in_flight]
    conn = await asyncpg.connect(cluster.url)
    try:
        stored = set(
            await conn.fetchval(
                "SELECT array_agg(delivery_id) FROM ingest.receipt WHERE delivery_id = ANY($1::text[])",
                list(accepted),
            )
        )
    finally:
        await conn.close()
    ids = list(accepted.values())

    async def caught_up() -> bool:
        return (await sla_taken(cluster.url, ids))[2] == len(ids)

    await eventually(caught_up, timeout=45)
    await asyncio.sleep(0.5)
    tickets, most, taken = await sla_taken(cluster.url, ids)
    print(
        f"PostgreSQL stopped with sla {applied_at_stop} of 300 events in ({down_for:.1f} s down): "
        f"{len(racing)} webhooks during the stop ({racing.count(202)} 202, {racing.count(503)} 503), "
        f"{len(statuses)} after it ({statuses.count(503)} 503 with Retry-After); 202 again "
        f"{back_after:.1f} s after the restart; {len(accepted)} accepted in all, {len(stored)} stored, "
        f"sla applied {taken} ({tickets} tickets, max applications {most})"
    )
    assert set(racing) <= {202, 503}, racing
    assert statuses == [503] * len(statuses), statuses
    assert all(r.headers.get("retry-after") for r in down_answers)
    assert stored == set(accepted), "every 202 was stored"
    assert (taken, most) == (len(ids), 1)
