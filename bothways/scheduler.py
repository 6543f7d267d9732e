"""A durable scheduler: work due at an instant is kept in PostgreSQL and done at that instant.

The work itself is a `DueStep` a service provides: inside one transaction it claims the rows due
at `now` with `FOR UPDATE SKIP LOCKED` (so several replicas share the work and never do it twice),
does it (writing any events to the outbox in the same transaction), and answers the next instant
it knows work will be due. The loop sleeps until then, or until a NOTIFY on the service's channel
says that something earlier appeared. After downtime the first step finds everything overdue and
catches up; a failing database pauses the loop with backoff, it never loses work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from bothways.db import (
    CONFLICT_ERRORS,
    UNAVAILABLE_ERRORS,
    Connection,
    Pool,
    check_schema_name,
    conflict_pause,
)

log = logging.getLogger(__name__)

_UNREACHABLE: tuple[type[Exception], ...] = (*UNAVAILABLE_ERRORS, TimeoutError)

# Claims and does the work due at the given instant; returns when more is due (None: nothing known).
DueStep = Callable[[Connection, datetime], Awaitable["StepResult"]]
Clock = Callable[[], datetime]
AfterCommit = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step did: how many items, and the next instant work is due (None: nothing known)."""

    done: int
    next_due: datetime | None
    # Work that must not run inside the step's transaction (an SMTP send of the rows the step
    # claimed with a lease): run once the claim has committed, never if it rolled back.
    after_commit: AfterCommit | None = None


def channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes a schema's scheduler."""
    return f"{check_schema_name(schema)}_scheduler"


async def wake_scheduler(conn: Connection) -> None:
    """Wake the scheduler of the current schema when the caller's transaction commits."""
    await conn.execute("SELECT pg_notify(current_schema() || '_scheduler', '')")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Runs a service's due work at the due instants, on every replica, each item once."""

    def __init__(
        self,
        *,
        pool: Pool,
        dsn: str,
        schema: str,
        step: DueStep,
        batch_size: int,
        clock: Clock = utc_now,
        max_sleep_seconds: float = 30.0,
        concurrency: int = 1,
    ) -> None:
        self.pool = pool
        self.dsn = dsn
        self.schema = check_schema_name(schema)
        self.step = step
        self.batch_size = batch_size
        self.clock = clock
        # A bound on the sleep: a NOTIFY lost with a dropped listener costs at most this much.
        self.max_sleep_seconds = max_sleep_seconds
        # Steps run side by side, each claiming its own rows: while one waits on the database, the
        # other builds its events, so a burst of work due at one instant uses both the process and
        # PostgreSQL (firing lateness, docs/performance.md).
        self.concurrency = concurrency
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._listening = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"scheduler-{self.schema}-{n}")
            for n in range(self.concurrency)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._close_listener()

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> StepResult:
        """One step in its own transaction, at the clock's current instant, then its after-commit work."""
        async with self.pool.acquire() as conn, conn.transaction():
            result = await self.step(conn, self.clock())
        if result.after_commit is not None:
            await result.after_commit()
        return result

    async def _run(self) -> None:
        backoff = 0.0
        while True:
            # Cleared before the step: a NOTIFY during the step must lead to another step (by this
            # loop, or by another that clears it later and so steps after the NOTIFY).
            self._wake.clear()
            try:
                await self._ensure_listener()
                result = await self.run_once()
                backoff = 0.0
            except _UNREACHABLE as exc:
                backoff = min(max(backoff * 2, 0.5), 30.0)
                log.warning("scheduler cannot reach the database; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(backoff)
                continue
            except CONFLICT_ERRORS as exc:
                # Rolled back to break a deadlock with a consumer or another step: run it again soon.
                log.warning("scheduler transaction conflict; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(conflict_pause())
                continue
            except Exception:
                # A bug in one step must not stop every future deadline: log it, back off, go on.
                backoff = min(max(backoff * 2, 1.0), 30.0)
                log.exception("scheduler step failed; retrying")
                await asyncio.sleep(backoff)
                continue
            if result.done >= self.batch_size:
                continue  # a full batch: more is due right now
            await self._sleep_until(result.next_due)

    async def _sleep_until(self, due: datetime | None) -> None:
        seconds = self.max_sleep_seconds
        if due is not None:
            seconds = min(seconds, (due - self.clock()).total_seconds())
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _ensure_listener(self) -> None:
        async with self._listening:  # one listener, whichever loop comes first
            if self._listener is not None and not self._listener.is_closed():
                return
            conn = await asyncpg.connect(self.dsn)
            try:
                await conn.add_listener(channel(self.schema), lambda *_: self._wake.set())
            except BaseException:
                conn.terminate()
                raise
            self._listener = conn

    async def _close_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            with contextlib.suppress(*UNAVAILABLE_ERRORS):
                await self._listener.close(timeout=2)
        self._listener = None
