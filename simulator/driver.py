"""Sends the simulated webhooks to ingest's real endpoints, paced, in order per ticket, and reports.

Replay: the facts of a past window in the order they happened, paced so that the window plays in
about the time asked (a month in minutes); their `occurred_at` stays in the past. Load: the facts
re-stamped live at a fixed rate. Each ticket's (or outage's) deliveries go in order on one lane; lanes
run concurrently. A 503 or a refused connection is retried with backoff (ingest stores nothing it does
not acknowledge, and a resend is deduplicated by its delivery id); anything else is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from simulator.answering import SurveyStep
from simulator.platforms import Credentials, Renderer, Webhook, sign
from simulator.world import Change, Fact, TicketFact, TicketState

LANE_DEPTH = 4  # shallow: a generator that falls behind stops on time instead of draining a backlog
MAX_ATTEMPTS = 8
FIRST_BACKOFF_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 8.0
SAMPLES = 5  # rejected deliveries quoted in the report


@dataclass(frozen=True)
class Pace:
    """Simulated time `origin` plays when the run starts; `speed` simulated seconds pass per real one."""

    origin: datetime
    speed: float


@dataclass
class Report:
    """What a run sent and how ingest answered."""

    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: Counter[int] = field(default_factory=Counter)
    retries: int = 0
    failed: int = 0
    by_source: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    seconds: float = 0.0
    behind_seconds: float = 0.0  # how far the sending fell behind the pace, at worst
    simulated_until: datetime | None = None

    def record(self, webhook: Webhook, response: httpx.Response) -> bool:
        """Count a final answer; True when ingest stored the delivery (now or before)."""
        if response.status_code == 202:
            answer = response.json()
            if answer.get("duplicate"):
                self.duplicates += 1
            elif answer.get("outcome") == "ignored":
                self.ignored += 1
            else:
                self.accepted += 1
            return True
        self.rejected[response.status_code] += 1
        if len(self.samples) < SAMPLES:
            self.samples.append(
                f"{response.status_code} {webhook.source} {webhook.key}: {response.text[:300]}"
            )
        return False

    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "rejected": dict(self.rejected),
            "retries": self.retries,
            "failed": self.failed,
            "by_source": dict(self.by_source),
            "seconds": round(self.seconds, 2),
            "webhooks_per_second": round(self.rate(), 1),
            "behind_seconds": round(self.behind_seconds, 2),
            "simulated_until": self.simulated_until.isoformat() if self.simulated_until else None,
            "rejected_samples": self.samples,
        }

    def line(self) -> str:
        """One progress line."""
        until = f"{self.simulated_until:%Y-%m-%d %H:%M} UTC" if self.simulated_until else "-"
        return (
            f"at {until} | sent {self.sent:,} accepted {self.accepted:,} duplicates {self.duplicates:,} "
            f"rejected {sum(self.rejected.values()):,} retries {self.retries:,} failed {self.failed:,} "
            f"| {self.rate():,.0f}/s"
        )


@dataclass
class Run:
    """One sending run: where to, with what, how fast, and what it has done so far."""

    client: httpx.AsyncClient
    credentials: Credentials
    surveys: SurveyStep
    concurrency: int = 16
    report: Report = field(default_factory=Report)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    renderer: Renderer = field(default_factory=Renderer)


async def drive(
    run: Run,
    facts: Iterable[Fact],
    *,
    pace: Pace,
    for_seconds: float | None = None,
    progress: Callable[[Report], None] | None = None,
    progress_seconds: float = 5.0,
) -> Report:
    """Send every fact's webhook on its due time (later if ingest is slower), until the facts end,
    `for_seconds` have passed (on the clock: a load generator that falls behind stops on time too), or
    `run.stop` is set; in-flight deliveries finish either way."""
    loop = asyncio.get_running_loop()
    started, earlier = loop.time(), run.report.seconds
    lanes: list[asyncio.Queue[Webhook | None]] = [asyncio.Queue(LANE_DEPTH) for _ in range(run.concurrency)]
    workers = [asyncio.create_task(_work(run, lane)) for lane in lanes]
    reporter = (
        asyncio.create_task(_report_every(run.report, progress, progress_seconds)) if progress else None
    )
    try:
        for fact in facts:
            due = (fact.occurred_at - pace.origin).total_seconds() / pace.speed
            if for_seconds is not None and max(due, loop.time() - started) >= for_seconds:
                break
            if not await _wait_until(run, loop=loop, due=started + due):
                break
            webhook = run.renderer.render(fact)
            await lanes[zlib.crc32(webhook.key.encode()) % len(lanes)].put(webhook)
            run.report.simulated_until = fact.occurred_at
            run.report.seconds = earlier + loop.time() - started
        for lane in lanes:
            await lane.put(None)
        await asyncio.gather(*workers)
    finally:
        for worker in workers:
            worker.cancel()
        if reporter:
            reporter.cancel()
        run.report.seconds = earlier + loop.time() - started
    return run.report


async def _wait_until(run: Run, *, loop: asyncio.AbstractEventLoop, due: float) -> bool:
    """Sleep until `due` (loop time), or until asked to stop; records how far behind the pace we are."""
    delay = due - loop.time()
    if delay <= 0:
        run.report.behind_seconds = max(run.report.behind_seconds, -delay)
        return not run.stop.is_set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.stop.wait(), timeout=delay)
    return not run.stop.is_set()


async def _work(run: Run, lane: asyncio.Queue[Webhook | None]) -> None:
    """Deliver one lane's webhooks in order."""
    while (webhook := await lane.get()) is not None:
        stored = await deliver(run, webhook)
        if stored and _resolved_for_good(webhook):
            assert isinstance(webhook.state, TicketState)
            await run.surveys.resolved(ticket_key=webhook.key, state=webhook.state)


def _resolved_for_good(webhook: Webhook) -> bool:
    fact = webhook.fact
    return isinstance(fact, TicketFact) and fact.last and fact.change is Change.RESOLVED


async def deliver(run: Run, webhook: Webhook) -> bool:
    """Post one webhook, signed afresh on each attempt, until it is answered with anything but a 503."""
    report = run.report
    report.sent += 1
    report.by_source[webhook.source] += 1
    for attempt in range(MAX_ATTEMPTS):
        headers = sign(webhook, run.credentials, now=datetime.now(UTC))
        try:
            response = await run.client.post(webhook.path, content=webhook.body, headers=headers)
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code != 503:
            return report.record(webhook, response)
        report.retries += 1
        await asyncio.sleep(_backoff(attempt, response))
    report.failed += 1
    return False


def _backoff(attempt: int, response: httpx.Response | None) -> float:
    """Doubling from a quarter second, but no sooner than the server's Retry-After; at most 8 s."""
    asked: str = response.headers.get("retry-after", "") if response is not None else ""
    floor = float(asked) if asked.isdigit() else 0.0
    return min(max(FIRST_BACKOFF_SECONDS * 2.0**attempt, floor), MAX_BACKOFF_SECONDS)


async def _report_every(report: Report, progress: Callable[[Report], None], seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        progress(report)
