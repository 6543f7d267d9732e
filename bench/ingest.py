"""Ingest benchmark: signed webhooks accepted per second by one ingest process, against a bare FastAPI
endpoint that answers 202, served by the same uvicorn settings on the same machine, in the same run.

Run: .venv/bin/python bench/ingest.py [--webhooks N] [--concurrency C] [--rounds R]

It brings up its own stack (a Tansu broker or KAFKA_BOOTSTRAP_SERVERS, a fresh database on
DATABASE_URL's server), starts ingest (`python -m services.ingest`, its outbox relay publishing to the
broker) and the bare app (this file with --serve-bare) as processes, and posts the same signed generic
webhooks to both, alternating bare and ingest for R rounds of N webhooks each. The client is a minimal
HTTP/1.1 load generator over C keep-alive connections with every request built before the clock
starts, so it costs a small fraction of the server's CPU (httpx cost about as much as ingest itself).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pipeline import (
    BACKENDS_SQL,
    CLOCK_TICKS,
    BenchFailed,
    Stack,
    child_pids,
    fresh_database,
    peak_rss_mib,
    percentile,
    service_env,
    start,
    stopping_services,
    ticket_body,
)

from bothways import devstack
from bothways.signing import signed_headers
from bothways.web import run_uvicorn

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ingest.json"


def bare_app() -> FastAPI:
    """The baseline: the same route reading the body and answering 202 with a small JSON body."""
    app = FastAPI()

    @app.post("/webhooks/{source}", status_code=202)
    async def receive(request: Request, source: str) -> JSONResponse:
        await request.body()
        return JSONResponse({"event_ids": [], "duplicate": False}, status_code=202)

    return app


# --- the load generator -------------------------------------------------------------------------------


@dataclass
class Load:
    """What the client saw over one round: when it started and ended, and each request's duration."""

    seconds: list[float] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def rate(self) -> float:
        return len(self.seconds) / (self.finished - self.started)


def signed_requests(port: int, secret: str, *, count: int, prefix: str) -> list[bytes]:
    """Complete HTTP/1.1 requests, each a signed generic webhook with its own delivery id."""
    requests = []
    now = int(time.time())
    for i in range(count):
        body = json.dumps(ticket_body(f"{prefix}{i}")).encode()
        headers = {
            "host": f"127.0.0.1:{port}",
            "content-type": "application/json",
            "content-length": str(len(body)),
            **signed_headers(secret, msg_id=f"msg_{prefix}{i}", timestamp=now, body=body),
        }
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        requests.append(f"POST /webhooks/generic HTTP/1.1\r\n{head}\r\n".encode() + body)
    return requests


async def post_all(port: int, requests: Sequence[bytes], *, concurrency: int) -> Load:
    """Send every request over `concurrency` keep-alive connections; each must be answered 202 (not a duplicate)."""
    load = Load()
    pending = iter(requests)  # shared by the connections: each request is sent once

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in pending:
                sent = time.perf_counter()
                writer.write(request)
                status, body = await read_response(reader)
                if status != 202 or b'"duplicate":true' in body:
                    raise BenchFailed(f"answered {status}: {body[:300]!r}")
                load.seconds.append(time.perf_counter() - sent)
        finally:
            writer.close()

    load.started = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as connections:
            for _ in range(concurrency):
                connections.create_task(connection())
    except* BenchFailed as failed:
        raise failed.exceptions[0] from None
    load.finished = time.perf_counter()
    return load


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response with a Content-Length (what uvicorn sends here)."""
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


# --- the processes ------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@contextlib.contextmanager
def bare_process(logs: Path) -> Iterator[devstack.ServiceProcess]:
    port = devstack.free_port()
    with open(logs / "bare.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve-bare", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield devstack.ServiceProcess("bare", port, process)
    finally:
        devstack.stop_process(process)


async def round_of(
    service: devstack.ServiceProcess,
    secret: str,
    *,
    count: int,
    concurrency: int,
    prefix: str,
    database: asyncpg.Connection | None = None,
) -> dict[str, float]:
    """One timed round against one server: its rate, request times, and CPU per request of the server,
    the database's backends (ingest's), the broker (ingest's relay) and this client."""
    requests = signed_requests(service.port, secret, count=count, prefix=prefix)
    before = await cpu_now(service, database)
    load = await post_all(service.port, requests, concurrency=concurrency)
    after = await cpu_now(service, database)
    return {
        "per_s": load.rate(),
        "request_p50_ms": percentile(load.seconds, 50) * 1000,
        "request_p99_ms": percentile(load.seconds, 99) * 1000,
        **{f"cpu_ms_per_request_{k}": (after[k] - before.get(k, 0.0)) / count * 1000 for k in after},
    }


async def cpu_now(service: devstack.ServiceProcess, database: asyncpg.Connection | None) -> dict[str, float]:
    """CPU seconds so far of the server, this client, the broker and the database's backends."""
    seconds = {"server": cpu_seconds(service.process.pid), "client": cpu_seconds(os.getpid())}
    if database is not None:
        seconds["broker"] = sum(cpu_seconds(pid) for pid in child_pids() if pid != service.process.pid)
        seconds["postgres"] = 0.0
        for (pid,) in await database.fetch(BACKENDS_SQL):
            with contextlib.suppress(OSError):  # gone since, or a server on another machine
                seconds["postgres"] += cpu_seconds(pid)
    return seconds


async def compare(stack: Stack, logs: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Warm both up, then alternate bare and ingest rounds; each figure is the median over the rounds."""
    ingest = await start(stack, "ingest", service_env(stack, namespace=f"bench{secrets.token_hex(4)}."))
    with bare_process(logs) as bare:
        await wait_ready_bare(bare, logs)
        rounds: dict[str, list[dict[str, float]]] = {"bare": [], "ingest": []}
        database = await asyncpg.connect(stack.database_url)
        try:
            for service in (bare, ingest):
                await round_of(service, stack.secret, count=200, concurrency=args.concurrency, prefix="warm-")
            for r in range(args.rounds):
                for name, service, db in (("bare", bare, None), ("ingest", ingest, database)):
                    rounds[name].append(
                        await round_of(
                            service,
                            stack.secret,
                            count=args.webhooks,
                            concurrency=args.concurrency,
                            prefix=f"r{r}-",
                            database=db,
                        )
                    )
        finally:
            await database.close()
        peak = peak_rss_mib(ingest.process.pid)
        bare_peak = peak_rss_mib(bare.process.pid)
    median = {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in rounds.items()
    }
    return {
        "webhooks_per_round": args.webhooks,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "ingest_per_s": median["ingest"]["per_s"],
        "bare_per_s": median["bare"]["per_s"],
        "ratio_ingest_to_bare": median["ingest"]["per_s"] / median["bare"]["per_s"],
        "ingest": median["ingest"],
        "bare": median["bare"],
        "each_round": rounds,
        "ingest_peak_rss_mib": peak,
        "bare_peak_rss_mib": bare_peak,
    }


async def wait_ready_bare(bare: devstack.ServiceProcess, logs: Path, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if bare.process.poll() is not None:
            raise BenchFailed(f"the bare app exited; see {logs / 'bare.log'}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", bare.port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise BenchFailed(f"the bare app is not listening after {within:.0f} s")


# --- entry points -------------------------------------------------------------------------------------


def run(*, webhooks: int = 3000, concurrency: int = 32, rounds: int = 3) -> dict[str, Any]:
    """Start the stack, measure, tear it down; returns the figures (the runner in bench/run.py calls this)."""
    args = argparse.Namespace(webhooks=webhooks, concurrency=concurrency, rounds=rounds)
    logs = ROOT / ".bothways" / "bench" / f"ingest-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    logs.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as cleanup:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or cleanup.enter_context(
            devstack.tansu_broker(devstack.free_port(), log_path=logs / "broker.log")
        )
        server_url = cleanup.enter_context(devstack.postgres(os.environ.get("DATABASE_URL")))
        database_url = cleanup.enter_context(fresh_database(server_url))
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        stack = Stack(bootstrap, database_url, secret, logs)
        with stopping_services(stack):
            return asyncio.run(compare(stack, logs, args))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--webhooks", type=int, default=3000, help="webhooks per round (default 3000)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections (default 32)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each server (default 3)")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        run_uvicorn(bare_app(), host="127.0.0.1", port=args.serve_bare)
        return 0
    try:
        figures = run(webhooks=args.webhooks, concurrency=args.concurrency, rounds=args.rounds)
    except (BenchFailed, devstack.StackError) as exc:
        print(f"bench/ingest.py: {exc}", file=sys.stderr)
        return 1
    ingest, bare = figures["ingest"], figures["bare"]
    print(
        f"\nIngest benchmark: {args.rounds} rounds of {args.webhooks} webhooks, {args.concurrency} connections"
    )
    print(f"  {'':<26} {'per s':>7} {'p50 ms':>7} {'p99 ms':>7}  CPU ms per request")
    for name, f in (("ingest (signed, durable)", ingest), ("bare FastAPI 202", bare)):
        cpu = ", ".join(
            f"{k.removeprefix('cpu_ms_per_request_')} {v:.2f}" for k, v in f.items() if k.startswith("cpu_")
        )
        print(
            f"  {name:<26} {f['per_s']:>7,.0f} {f['request_p50_ms']:>7.1f} {f['request_p99_ms']:>7.1f}  {cpu}"
        )
    print(f"  ratio ingest / bare: {figures['ratio_ingest_to_bare']:.2f}   (target at least 0.5)")
    print(
        f"  peak RSS: ingest {figures['ingest_peak_rss_mib']:.0f} MiB, bare {figures['bare_peak_rss_mib']:.0f} MiB"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
