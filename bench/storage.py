"""Storage and memory benchmark: what a ticket costs in PostgreSQL, and what each service holds in memory.

Run: .venv/bin/python bench/storage.py [--tickets N] [--concurrency C]

It brings up its own stack (a Tansu broker or KAFKA_BOOTSTRAP_SERVERS, a fresh database on
DATABASE_URL's server, the four services as real processes), posts each ticket's life as five real,
signed Jira Cloud webhooks (the payloads of tests/unit/ingest/payloads/jira: created, priority
changed, public agent comment, waiting for customer, resolved), waits until sla and reporting have
applied every event, then prints each table's rows and bytes (heap, indexes and TOAST:
pg_total_relation_size) and each service's resident memory, and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import platform
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx

from bothways import devstack
from bothways.cli import ensure_database, migrate_all

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ROOT / "tests" / "unit" / "ingest" / "payloads" / "jira"
LIFE = (
    "issue_created",
    "issue_updated_priority",
    "issue_commented_public_agent",
    "issue_updated_waiting_for_customer",
    "issue_updated_resolved",
)
JIRA_SECRET = "bench-jira-secret"
# How long each table's rows stay (docs/operations.md, "Retention"); the rest are kept for good.
RETENTION = {
    "outbox": "24 h after publishing (relay)",
    "inbox": "30 d (bothways purge)",
    "receipt": "90 d (bothways purge)",
}

TABLES_SQL = """
SELECT n.nspname AS schema, c.relname AS name, pg_total_relation_size(c.oid) AS bytes,
       pg_relation_size(c.oid) AS heap
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname = ANY($1::text[]) ORDER BY 1, 2
"""


def bodies(ticket: int) -> list[bytes]:
    """One ticket's five webhooks: the fixtures with this ticket's key and id."""
    return [
        (PAYLOADS / f"{name}.json")
        .read_text()
        .replace("SUP-42", f"SUP-{ticket}")
        .replace("10042", str(10_000_000 + ticket))
        .encode()
        for name in LIFE
    ]


def jira_headers(body: bytes) -> dict[str, str]:
    signature = hmac.new(JIRA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/json",
        "x-hub-signature": f"sha256={signature}",
        "x-atlassian-webhook-identifier": uuid.uuid4().hex,
    }


def rss_kib(pid: int) -> tuple[int, int]:
    """Resident memory now and at its peak (VmRSS, VmHWM), in KiB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


@contextlib.contextmanager
def stack(logs: Path) -> Iterator[tuple[str, dict[str, devstack.ServiceProcess], str]]:
    """Broker, fresh database, the four services; everything stopped and dropped afterwards."""
    with contextlib.ExitStack() as exits:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or exits.enter_context(
            devstack.tansu_broker(devstack.free_port(), log_path=logs / "broker.log")
        )
        server = exits.enter_context(devstack.postgres(os.environ.get("DATABASE_URL")))
        name = f"bw_bench_storage_{uuid.uuid4().hex[:8]}"
        database_url = asyncio.run(ensure_database(server, name))
        exits.callback(lambda: asyncio.run(drop_database(server, name)))
        asyncio.run(migrate_all(database_url))
        api_key = secrets.token_urlsafe(16)
        env = {
            "BOTHWAYS_DATABASE_URL": database_url,
            "BOTHWAYS_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "BOTHWAYS_KAFKA_IDEMPOTENT_PRODUCER": "true"
            if "KAFKA_BOOTSTRAP_SERVERS" in os.environ
            else "false",
            "BOTHWAYS_KAFKA_NAMESPACE": f"{name}.",
            "BOTHWAYS_KAFKA_TOPIC_PARTITIONS": "3",
            "BOTHWAYS_API_KEYS": json.dumps({api_key: ["read", "admin"]}),
            "BOTHWAYS_JIRA_WEBHOOK_SECRETS": json.dumps([JIRA_SECRET]),
            "BOTHWAYS_LOG_LEVEL": "WARNING",
        }
        processes = {}
        for service in devstack.SERVICES:
            processes[service] = devstack.start_service(
                service, port=devstack.free_port(), env=env, log_path=logs / f"{service}.log"
            )
            exits.callback(devstack.stop_process, processes[service].process)
        for process in processes.values():
            wait_ready(process)
        yield database_url, processes, api_key


def wait_ready(service: devstack.ServiceProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise SystemExit(f"{service.name} exited at start; see its log")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{service.url}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{service.name} not ready after {timeout:.0f} s")


async def drop_database(server: str, name: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def post_all(url: str, *, tickets: int, concurrency: int) -> int:
    """Every ticket's webhooks in order (a ticket's life is sequential), tickets side by side."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for ticket in range(1, tickets + 1):
        queue.put_nowait(ticket)
    accepted = 0

    async def sender() -> None:
        nonlocal accepted
        async with httpx.AsyncClient(timeout=30) as client:
            while not queue.empty():
                ticket = queue.get_nowait()
                for body in bodies(ticket):
                    response = await client.post(
                        f"{url}/webhooks/jira", content=body, headers=jira_headers(body)
                    )
                    response.raise_for_status()
                    accepted += 1

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return accepted


async def wait_applied(database_url: str, *, events: int) -> None:
    """Until sla and reporting have taken in every event ingest produced (ten minutes at most)."""
    conn = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(600):
            while True:
                produced = await conn.fetchval("SELECT count(*) FROM ingest.outbox")
                done = [await conn.fetchval(f"SELECT count(*) FROM {s}.inbox") for s in ("sla", "reporting")]
                if produced >= events and all(d >= produced for d in done):
                    return
                await asyncio.sleep(1)
    finally:
        await conn.close()


async def table_sizes(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("VACUUM ANALYZE")
        rows = await conn.fetch(TABLES_SQL, list(devstack.SERVICES))
        counted = []
        for row in rows:
            count = await conn.fetchval(f'SELECT count(*) FROM {row["schema"]}."{row["name"]}"')
            counted.append({**dict(row), "rows": count})
        return counted
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    logs = ROOT / ".bothways" / "bench-storage"
    logs.mkdir(parents=True, exist_ok=True)
    with stack(logs) as (database_url, processes, _):
        idle = {name: rss_kib(p.process.pid) for name, p in processes.items()}
        started = time.monotonic()
        accepted = asyncio.run(
            post_all(processes["ingest"].url, tickets=args.tickets, concurrency=args.concurrency)
        )
        asyncio.run(wait_applied(database_url, events=accepted))
        elapsed = time.monotonic() - started
        loaded = {name: rss_kib(p.process.pid) for name, p in processes.items()}
        sizes = asyncio.run(table_sizes(database_url))

    print(f"\n{args.tickets:,} tickets, {accepted:,} Jira webhooks, applied end to end in {elapsed:.0f} s")
    print(f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs\n")
    print(f"{'table':<24}{'rows':>9}{'bytes':>13}{'bytes/row':>11}{'bytes/ticket':>14}  kept")
    totals: dict[str, int] = {}
    for row in sizes:
        if not row["rows"] or row["name"] == "schema_migration":
            continue
        kept = RETENTION.get(row["name"], "for good")
        totals[kept] = totals.get(kept, 0) + row["bytes"]
        per_row, per_ticket = row["bytes"] / row["rows"], row["bytes"] / args.tickets
        name = f"{row['schema']}.{row['name']}"
        print(f"{name:<24}{row['rows']:>9,}{row['bytes']:>13,}{per_row:>11,.0f}{per_ticket:>14,.0f}  {kept}")
    print("\nper million tickets:")
    for kept, total in totals.items():
        print(f"  kept {kept:<34}{total / args.tickets * 1e6 / 2**30:>8.2f} GiB")
    everything = sum(totals.values()) / args.tickets * 1e6 / 2**30
    print(f"  {'all of it, if nothing were ever purged':<39}{everything:>8.2f} GiB")
    print(f"\n{'service':<12}{'RSS idle MiB':>14}{'RSS loaded MiB':>16}{'peak MiB':>10}")
    for name in processes:
        print(
            f"{name:<12}{idle[name][0] / 1024:>14.0f}{loaded[name][0] / 1024:>16.0f}{loaded[name][1] / 1024:>10.0f}"
        )


if __name__ == "__main__":
    main()
