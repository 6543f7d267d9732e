"""`bothways simulate`: parse, build the world, drive it into ingest, print the report.

Credentials come from `.bothways/dev-secrets.json` (written by `bothways dev`), or for a remote stack
from BOTHWAYS_SIMULATOR_* variables, which win over the file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from simulator.answering import AnsweringCustomers, AwaitingSurveyService, MailFolder, SurveyStep
from simulator.driver import Pace, Report, Run, drive
from simulator.organisation import build_organisation
from simulator.platforms import Credentials, Renderer
from simulator.world import ORIGIN, World, build_world, live_schedule, timeline

DEFAULT_SECRETS = Path(".bothways") / "dev-secrets.json"
# Credential -> (environment variable, key in the dev secrets file).
CREDENTIAL_SOURCES = {
    "jira_secret": ("BOTHWAYS_SIMULATOR_JIRA_SECRET", "jira_webhook_secret"),
    "zendesk_secret": ("BOTHWAYS_SIMULATOR_ZENDESK_SECRET", "zendesk_webhook_secret"),
    "servicenow_secret": ("BOTHWAYS_SIMULATOR_SERVICENOW_SECRET", "servicenow_webhook_secret"),
    "alertmanager_token": ("BOTHWAYS_SIMULATOR_ALERTMANAGER_TOKEN", "alertmanager_bearer_token"),
}
# A live world starts here: its simulated dates never matter (every fact is re-stamped), only its days.
LIVE_ORIGIN = datetime.combine(ORIGIN, datetime.min.time(), UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `bothways simulate`."""
    parser.add_argument(
        "--ingest-url", default=os.environ.get("BOTHWAYS_SIMULATOR_INGEST_URL", "http://127.0.0.1:8001")
    )
    parser.add_argument(
        "--secrets", type=Path, default=DEFAULT_SECRETS, help="the dev secrets file of `bothways dev`"
    )
    parser.add_argument("--seed", type=int, default=1, help="0..99999; the same seed plays the same world")
    parser.add_argument("--services", type=int, default=6, help="business services (at least 3)")
    parser.add_argument("--agents", type=int, default=12)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--tickets-per-weekday", type=float, default=30.0)
    parser.add_argument("--days", type=float, default=30.0, help="replay: the simulated days up to --until")
    parser.add_argument(
        "--until", type=_instant, default=None, help="replay: the end of the window (ISO 8601; now)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="replay: play the window in about this long (60); load: run this long (60)",
    )
    parser.add_argument(
        "--rate", type=float, default=None, help="load generator: webhooks per second, live timestamps"
    )
    parser.add_argument(
        "--follow", type=float, default=None, help="after the replay, go on live at this rate until stopped"
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="deliveries in flight (one ticket's stay in order)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the replay's webhooks as JSON lines, send nothing"
    )
    parser.add_argument(
        "--mailbox",
        type=Path,
        default=_optional_path(os.environ.get("BOTHWAYS_SIMULATOR_MAILBOX")),
        help="the customers' mailbox: a folder where the survey mails land as .eml files (`bothways dev`: "
        ".bothways/mail); the customers answer them on the answer page. Without it answers are only decided",
    )
    parser.add_argument(
        "--answer-wait",
        type=float,
        default=30.0,
        help="after the webhooks, wait at most this long for the last invitations to answer (seconds)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the simulation the arguments describe; 0 when ingest accepted everything sent."""
    try:
        _check(args)
        world = _world(args)
    except ValueError as exc:
        print(f"bothways simulate: {exc}", file=sys.stderr)
        return 2
    until = args.until or datetime.now(UTC)
    if args.dry_run:
        return _print_webhooks(world, start=until - timedelta(days=args.days), end=until)
    try:
        credentials = load_credentials(args.secrets, os.environ)
    except LookupError as exc:
        print(f"bothways simulate: {exc}", file=sys.stderr)
        return 2
    report, surveys = asyncio.run(_simulate(args, world, credentials, until=until))
    summary = {"ingest": report.as_dict(), "surveys": surveys}
    print(json.dumps(summary, indent=2))
    return 0 if report.sent and report.sent == report.accepted + report.duplicates + report.ignored else 1


def _check(args: argparse.Namespace) -> None:
    """Refuse options that would make no run (or divide by zero)."""
    for name in ("days", "seconds", "rate", "follow", "concurrency"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise ValueError(f"--{name} must be positive")


def load_credentials(path: Path, environ: Mapping[str, str]) -> Credentials:
    """Each platform's credential from its variable, else from the dev secrets file."""
    stored: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    found = {
        name: environ.get(variable) or stored.get(key) for name, (variable, key) in CREDENTIAL_SOURCES.items()
    }
    missing = [variable for name, (variable, _) in CREDENTIAL_SOURCES.items() if not found[name]]
    if missing:
        raise LookupError(
            f"no credentials in {path} for every platform: run `bothways dev` once (it writes them), "
            f"or set {', '.join(missing)}"
        )
    return Credentials(**{name: value for name, value in found.items() if value})


def _world(args: argparse.Namespace, *, series: int = 0) -> World:
    organisation = build_organisation(
        seed=args.seed, services=args.services, agents=args.agents, customers=args.customers
    )
    return build_world(
        organisation, seed=args.seed, tickets_per_weekday=args.tickets_per_weekday, series=series
    )


async def _simulate(
    args: argparse.Namespace, world: World, credentials: Credentials, *, until: datetime
) -> tuple[Report, dict[str, Any]]:
    async with (
        httpx.AsyncClient(base_url=args.ingest_url, timeout=30) as client,
        httpx.AsyncClient(timeout=30) as customers,
    ):
        surveys: SurveyStep = AwaitingSurveyService()
        if args.mailbox is not None:
            surveys = answering = AnsweringCustomers(MailFolder(args.mailbox), client=customers)
            await answering.start()
        run = Run(client=client, credentials=credentials, surveys=surveys, concurrency=args.concurrency)
        _stop_on_signals(run.stop)
        if args.rate is None:
            await _replay(run, world, args=args, until=until)
        if args.rate is not None or (args.follow and not run.stop.is_set()):
            await _live(run, _world(args, series=_live_series()), rate=args.rate or args.follow, args=args)
        if args.mailbox is not None:
            _say(f"answering the last survey invitations in {args.mailbox} (at most {args.answer_wait:g} s)")
        await surveys.finish(at_most_seconds=0 if run.stop.is_set() else args.answer_wait)
    return run.report, surveys.report()


async def _replay(run: Run, world: World, *, args: argparse.Namespace, until: datetime) -> None:
    start = until - timedelta(days=args.days)
    speed = (until - start).total_seconds() / (args.seconds or 60.0)
    _say(
        f"replaying {args.days:g} simulated days up to {until:%Y-%m-%d %H:%M} UTC in about {args.seconds or 60:g} s"
    )
    await drive(
        run, timeline(world, start=start, end=until), pace=Pace(origin=start, speed=speed), progress=_progress
    )
    _say("replay done: " + run.report.line())


async def _live(run: Run, world: World, *, rate: float, args: argparse.Namespace) -> None:
    # The live clock starts a moment ahead, so the first webhooks are not late already.
    start = datetime.now(UTC) + timedelta(seconds=0.5)
    seconds = None if args.follow and args.rate is None else (args.seconds or 60.0)
    _say(f"live at {rate:g} webhooks/s" + (f" for {seconds:g} s" if seconds else " until stopped"))
    facts = live_schedule(timeline(world, start=LIVE_ORIGIN), start=start, rate=rate)
    await drive(run, facts, pace=Pace(origin=start, speed=1.0), for_seconds=seconds, progress=_progress)


def _live_series() -> int:
    """A live run numbers its tickets by the second it starts: runs share numbers only when they start
    a whole multiple of 89,999 seconds (25 hours) apart, to the second."""
    return int(datetime.now(UTC).timestamp()) % 89_999 + 1


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)


def _print_webhooks(world: World, *, start: datetime, end: datetime) -> int:
    renderer = Renderer()
    try:
        for fact in timeline(world, start=start, end=end):
            webhook = renderer.render(fact)
            line = {
                "path": webhook.path,
                "delivery_id": webhook.delivery_id,
                "body": json.loads(webhook.body),
            }
            print(json.dumps(line, separators=(",", ":")))
    except BrokenPipeError:
        # The reader had enough (`| head`); Python would complain once more at exit without this.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _progress(report: Report) -> None:
    _say(report.line())


def _say(text: str) -> None:
    print(f"simulate: {text}", file=sys.stderr, flush=True)


def _optional_path(text: str | None) -> Path | None:
    return Path(text) if text else None


def _instant(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
