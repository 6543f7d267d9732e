"""The `bothways` command: `bothways dev` runs the whole backend locally; `bothways migrate` migrates;
`bothways purge` deletes what outlived its retention."""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
import httpx
from pydantic import ValidationError

from bothways import devstack
from bothways.db import create_pool, migrate_database
from bothways.web import ServiceSpec


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bothways", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="run the broker, the database and the four services locally")
    dev.add_argument("--broker-port", type=int, default=9092)
    dev.add_argument(
        "--first-port", type=int, default=8001, help="ingest's port; sla, survey, reporting follow"
    )
    dev.add_argument("--database", default="bothways", help="database created on the server for the stack")
    dev.add_argument(
        "--demo", action="store_true", help="also run the simulator: a month replayed in a minute, then live"
    )
    commands.add_parser("migrate", help="apply every service's migrations to DATABASE_URL")
    commands.add_parser("purge", help="delete inbox rows and ingest receipts older than their retention")
    replay = commands.add_parser("replay", help="re-derive events from stored webhooks (after a mapping fix)")
    replay.add_argument(
        "--since", type=aware_datetime, required=True, help="ISO 8601, e.g. 2026-11-01T00:00Z"
    )
    replay.add_argument("--until", type=aware_datetime, default=None)
    replay.add_argument("--source", default=None, help="one source only, e.g. jira")
    importer = commands.add_parser(
        "import", help="import ticket history (resumable; a second run changes nothing)"
    )
    importer.add_argument("kind", choices=["servicenow-csv", "jsonl"])
    importer.add_argument("file", type=Path)
    importer.add_argument("--time-zone", default="UTC", help="zone of the export's dates (servicenow-csv)")
    importer.add_argument(
        "--date-format", action="append", help="strptime format of the export's dates; repeat for several"
    )
    from simulator import command as simulator

    simulator.add_arguments(
        commands.add_parser(
            "simulate", help="play simulated ITSM platforms into ingest (see docs/simulator.md)"
        )
    )
    reporting = commands.add_parser("reporting", help="the reporting service's read models")
    reporting_commands = reporting.add_subparsers(dest="reporting_command", required=True)
    rebuild = reporting_commands.add_parser(
        "rebuild",
        help="empty the read models and rewind the consumer group to offset zero "
        "(stop every reporting replica first, start them after: they fold every event again)",
    )
    rebuild.add_argument(
        "--wait", type=float, default=60.0, help="seconds to wait for the consumer group's partitions"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "simulate":
            return simulator.run(args)
        if args.command == "dev":
            return run_dev(
                broker_port=args.broker_port,
                first_port=args.first_port,
                database=args.database,
                demo=args.demo,
            )
        if args.command == "import" and not args.file.is_file():
            print(f"bothways: no such file: {args.file}", file=sys.stderr)
            return 2
        if args.command == "import":
            return asyncio.run(
                run_import(args.kind, args.file, time_zone=args.time_zone, date_formats=args.date_format)
            )
        if args.command == "purge":
            return asyncio.run(run_purge())
        if args.command == "reporting":
            return asyncio.run(run_reporting_rebuild(wait=args.wait))
        if args.command == "replay":
            return asyncio.run(run_replay(since=args.since, until=args.until, source=args.source))
        # The services' own variable first, so a service container can migrate as it is configured.
        return asyncio.run(migrate_all(os.environ.get("BOTHWAYS_DATABASE_URL") or os.environ["DATABASE_URL"]))
    except devstack.StackError as exc:
        print(f"bothways: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:
        print(f"bothways: the environment variable {exc.args[0]} is required", file=sys.stderr)
        return 2


async def run_purge() -> int:
    """Delete inbox rows and receipts older than BOTHWAYS_*_RETENTION_DAYS; prints the rows deleted."""
    from bothways.retention import RetentionSettings, purge_inbox
    from services.ingest.retention import purge_receipts

    try:
        settings = RetentionSettings()
    except ValidationError as exc:
        print(f"bothways: {exc}", file=sys.stderr)
        return 2
    now, batch = datetime.now(UTC), settings.purge_batch_size
    conn = await asyncpg.connect(settings.database_url)
    try:
        deleted = await purge_inbox(
            conn,
            schemas=list(devstack.SERVICES),
            before=now - timedelta(days=settings.inbox_retention_days),
            batch_size=batch,
        )
        deleted["ingest.receipt"] = await purge_receipts(
            conn, before=now - timedelta(days=settings.receipt_retention_days), batch_size=batch
        )
    finally:
        await conn.close()
    print(json.dumps(deleted))
    return 0


def aware_datetime(text: str) -> datetime:
    """An ISO 8601 instant on the command line; without an offset it is taken as UTC."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def run_replay(*, since: datetime, until: datetime | None, source: str | None) -> int:
    """The ingest service's replay, run from the command line against DATABASE_URL."""
    from services.ingest.mapping import load_mapping
    from services.ingest.replay import replay

    mapping_file = os.environ.get("BOTHWAYS_MAPPING_FILE")
    mappings = load_mapping(Path(mapping_file) if mapping_file else None)
    pool = await create_pool(os.environ["DATABASE_URL"], schema="ingest")
    try:
        summary = await replay(
            pool, mappings=mappings, since=since, until=until or datetime.now(UTC), source=source
        )
    finally:
        await pool.close()
    print(summary.model_dump_json())
    return 0


async def run_import(kind: str, path: Path, *, time_zone: str, date_formats: list[str] | None) -> int:
    """Import a history file into the ingest outbox of DATABASE_URL, showing progress on stderr."""
    from services.ingest.imports import ImportFile, import_file
    from services.ingest.mapping import load_mapping
    from services.ingest.readers import reader_for

    mapping_file = os.environ.get("BOTHWAYS_MAPPING_FILE")
    read = reader_for(
        kind,
        mappings=load_mapping(Path(mapping_file) if mapping_file else None),
        time_zone=time_zone,
        date_formats=date_formats,
    )
    pool = await create_pool(os.environ["DATABASE_URL"], schema="ingest")
    try:
        summary = await import_file(
            pool, ImportFile(kind, path.name, path), read=read, progress=show_progress
        )
    finally:
        await pool.close()
    print(file=sys.stderr)
    if summary.already_imported:
        print(f"{path.name} was imported before (sha256 {summary.file_digest[:12]}); nothing to do")
    print(summary.model_dump_json(indent=2))
    return 0


async def run_reporting_rebuild(*, wait: float) -> int:
    """`bothways reporting rebuild`, with the reporting service's settings from the environment."""
    from pydantic import ValidationError

    from services.reporting.rebuild import RebuildRefused, rebuild

    try:
        settings = importlib.import_module("services.reporting.app").SETTINGS()
    except ValidationError as exc:
        print(f"bothways: the reporting settings are invalid: {exc}", file=sys.stderr)
        return 2
    try:
        done = await rebuild(settings, topics=service_spec("reporting").consumes, assignment_seconds=wait)
    except RebuildRefused as exc:
        print(f"bothways: {exc}", file=sys.stderr)
        return 2
    partitions = sum(done.partitions.values())
    print(
        f"reporting: {partitions} partition(s) of {len(done.partitions)} topic(s) rewound to their first offset; "
        f"{', '.join(done.tables)} emptied.\n"
        "Start the reporting service again: it folds every event from the topics "
        "(watch bothways_consumer_lag_records fall to 0)."
    )
    return 0


def show_progress(summary: Any) -> None:
    print(
        f"\r  {summary.rows_read:>12,} rows  {summary.events_emitted:>12,} events  {summary.rejected:>8,} rejected",
        end="",
        file=sys.stderr,
        flush=True,
    )


def service_spec(name: str) -> ServiceSpec:
    spec: ServiceSpec = importlib.import_module(f"services.{name}.app").SPEC
    return spec


async def migrate_all(database_url: str) -> int:
    for name in devstack.SERVICES:
        applied = await migrate_database(database_url, schema=name, migrations=service_spec(name).migrations)
        print(f"{name}: {len(applied)} migration(s) applied")
    return 0


async def ensure_database(server_url: str, database: str) -> str:
    """Create the stack's database on the server if it is missing; returns its URL."""
    conn = await asyncpg.connect(server_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return devstack.with_database(server_url, database)


def dev_secrets(state_dir: Path) -> dict[str, str]:
    """Random local secrets, made once and kept under .bothways/ so curl examples keep working."""
    path = state_dir / "dev-secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    makers: dict[str, Callable[[], str]] = {
        "api_key": lambda: secrets.token_urlsafe(24),
        "generic_webhook_secret": _standard_webhooks_secret,
        # What the simulator signs its platforms' webhooks with (bothways simulate, dev --demo).
        "jira_webhook_secret": lambda: secrets.token_urlsafe(24),
        "zendesk_webhook_secret": lambda: secrets.token_urlsafe(24),
        "servicenow_webhook_secret": _standard_webhooks_secret,
        "alertmanager_bearer_token": lambda: secrets.token_urlsafe(24),
        "survey_token_secret": lambda: secrets.token_urlsafe(32),
    }
    # A file from an older version lacks the newer secrets: add them, keep the others.
    missing = {name: make() for name, make in makers.items() if name not in stored}
    if missing or not path.exists():
        path.write_text(json.dumps({**stored, **missing}, indent=2))
        path.chmod(0o600)
    return {**stored, **missing}


def _standard_webhooks_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def platform_environment(keys: dict[str, str]) -> dict[str, str]:
    """Ingest's settings for the simulated platforms: their credentials, and where Zendesk's service is."""
    from services.ingest.mapping import merged
    from simulator.platforms import MAPPING_OVERRIDES

    own = json.loads(os.environ.get("BOTHWAYS_MAPPING_OVERRIDES") or "{}")
    return {
        "BOTHWAYS_JIRA_WEBHOOK_SECRETS": json.dumps([keys["jira_webhook_secret"]]),
        "BOTHWAYS_ZENDESK_WEBHOOK_SECRETS": json.dumps([keys["zendesk_webhook_secret"]]),
        "BOTHWAYS_SERVICENOW_WEBHOOK_SECRETS": json.dumps([keys["servicenow_webhook_secret"]]),
        "BOTHWAYS_ALERTMANAGER_BEARER_TOKENS": json.dumps([keys["alertmanager_bearer_token"]]),
        # The developer's own overrides win over the simulator's.
        "BOTHWAYS_MAPPING_OVERRIDES": json.dumps(merged(MAPPING_OVERRIDES, own)),
    }


def run_dev(*, broker_port: int, first_port: int, database: str, demo: bool = False) -> int:
    state = devstack.STATE_DIR
    (state / "logs").mkdir(parents=True, exist_ok=True)
    ports = {name: first_port + offset for offset, name in enumerate(devstack.SERVICES)}
    for name, port in ports.items():
        if devstack.port_in_use(port):
            raise devstack.StackError(f"port {port} for the {name} service is taken; stop what uses it first")
    keys = dev_secrets(state)
    stopping = False

    def request_stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or stack.enter_context(
            devstack.tansu_broker(broker_port, log_path=state / "logs" / "broker.log")
        )
        server_url = stack.enter_context(devstack.postgres(os.environ.get("DATABASE_URL")))
        mail_port = stack.enter_context(devstack.mail_catcher(state / "mail"))
        database_url = asyncio.run(ensure_database(server_url, database))
        asyncio.run(migrate_all(database_url))
        env = {
            "BOTHWAYS_DATABASE_URL": database_url,
            "BOTHWAYS_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            # Tansu has no idempotent producer; against Apache Kafka leave this on.
            "BOTHWAYS_KAFKA_IDEMPOTENT_PRODUCER": "false"
            if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ
            else "true",
            "BOTHWAYS_API_KEYS": json.dumps({keys["api_key"]: ["read", "admin"]}),
            "BOTHWAYS_GENERIC_WEBHOOK_SECRETS": json.dumps([keys["generic_webhook_secret"]]),
            **platform_environment(keys),
            "BOTHWAYS_SURVEY_TOKEN_SECRETS": json.dumps([keys["survey_token_secret"]]),
            # Answer links in survey mails point at the local survey service.
            "BOTHWAYS_SURVEY_PUBLIC_URL": f"http://127.0.0.1:{ports['survey']}",
            **(dev_mail(mail_port) if mail_port else {}),
            **(demo_surveys() if demo else {}),
        }
        processes = [
            devstack.start_service(name, port=port, env=env, log_path=state / "logs" / f"{name}.log")
            for name, port in ports.items()
        ]
        stack.callback(stop_all, processes)
        wait_until_ready(processes)
        print_welcome(
            processes, bootstrap=bootstrap, database_url=database_url, keys=keys, mail=bool(mail_port)
        )
        if demo:
            demo_run = start_demo(
                processes[0],
                log_path=state / "logs" / "simulator.log",
                mailbox=(state / "mail").resolve() if mail_port else None,
            )
            stack.callback(devstack.stop_process, demo_run)
        while not stopping:
            for service in processes:
                if service.process.poll() is not None:
                    print(
                        f"bothways: the {service.name} service exited with code {service.process.returncode}; "
                        f"see .bothways/logs/{service.name}.log. Stopping the stack.",
                        file=sys.stderr,
                    )
                    return 1
            time.sleep(0.2)
        print("bothways: stopping ...")
    print("bothways: stopped")
    return 0


def start_demo(
    ingest: devstack.ServiceProcess, *, log_path: Path, mailbox: Path | None = None
) -> subprocess.Popen[bytes]:
    """The simulator against the stack: the last 30 days replayed in about 45 s, then live at 2 webhooks/s;
    its customers answer the survey mails the mail catcher keeps (the stack's mailbox is theirs)."""
    command = [sys.executable, "-m", "bothways.cli", "simulate", "--ingest-url", ingest.url]
    command += ["--days", "30", "--seconds", "45", "--follow", "2"]
    if mailbox is not None:
        command += ["--mailbox", str(mailbox)]
    print(f"Demo: the simulator replays a month of tickets, then goes on live (log: {log_path}).\n")
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def demo_surveys() -> dict[str, str]:
    """The demo surveys the replayed month (simulator/demo-surveys.yaml), unless the developer set rules."""
    if os.environ.get("BOTHWAYS_SURVEY_RULES_FILE"):
        return {}
    return {
        "BOTHWAYS_SURVEY_RULES_FILE": str(Path(__file__).parent.parent / "simulator" / "demo-surveys.yaml")
    }


def dev_mail(port: int) -> dict[str, str]:
    """Survey mails go to the local mail catcher, which keeps them in .bothways/mail/."""
    return {
        "BOTHWAYS_SMTP_HOST": "127.0.0.1",
        "BOTHWAYS_SMTP_PORT": str(port),
        "BOTHWAYS_SMTP_SECURITY": "none",
        "BOTHWAYS_SMTP_FROM": "Bothways dev <surveys@localhost>",
    }


def stop_all(processes: Sequence[devstack.ServiceProcess]) -> None:
    for service in reversed(processes):
        devstack.stop_process(service.process)


def wait_until_ready(processes: Sequence[devstack.ServiceProcess], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for service in processes:
        while True:
            if service.process.poll() is not None:
                raise devstack.StackError(
                    f"the {service.name} service exited at start; see .bothways/logs/{service.name}.log"
                )
            try:
                if httpx.get(f"{service.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise devstack.StackError(f"the {service.name} service is not ready after {timeout:.0f} s")
            time.sleep(0.2)


def print_welcome(
    processes: Sequence[devstack.ServiceProcess],
    *,
    bootstrap: str,
    database_url: str,
    keys: dict[str, str],
    mail: bool = False,
) -> None:
    print("\nBothways is running.\n")
    for service in processes:
        print(f"  {service.name:<10} {service.url}   docs {service.url}/docs   metrics {service.url}/metrics")
    print(f"\n  broker     {bootstrap}\n  database   {devstack.redact(database_url)}")
    print("  logs       .bothways/logs/")
    if mail:
        print("  mail       .bothways/mail/   (survey mails, one .eml file each)")
    print(f"\n  API key (read, admin):   {keys['api_key']}")
    print(f"  generic webhook secret:  {keys['generic_webhook_secret']}")
    print('\n  Post a signed ticket: see "Try it" in README.md')
    print("\nCtrl-C stops everything.\n")


if __name__ == "__main__":
    sys.exit(main())
