"""History imports: a file's rows become canonical events, in batches, resumable and idempotent.

Each row's event id derives from the file's content digest and the row's line, so importing the
same file twice (or resuming an interrupted import) emits nothing twice. Memory stays constant:
rows are streamed, and at most one batch of events is held.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from bothways.db import Pool
from bothways.errors import InvalidInput
from bothways.events import envelope_for
from bothways.outbox import enqueue
from services.ingest import generic, store
from services.ingest.history import HistoryResult, HistorySummary, ImportedRow, RejectedRow, row_delivery_id

Progress = Callable[[HistorySummary], None]
BATCH_SIZE = 1000


class Rejection(BaseModel):
    line: int
    field: str
    reason: str


class ImportSummary(BaseModel):
    """What an import did, for the command line and the HTTP answer."""

    name: str
    file_digest: str
    rows_read: int
    events_emitted: int
    rejected: int
    rejections: list[Rejection]
    resumed_after_line: int
    already_imported: bool


@dataclass(frozen=True)
class ImportFile:
    kind: str  # "servicenow-csv" or "jsonl"
    name: str
    path: Path

    def digest(self) -> str:
        """The SHA-256 of the file's bytes, read in blocks."""
        sha = hashlib.sha256()
        with self.path.open("rb") as file:
            while block := file.read(1 << 20):
                sha.update(block)
        return sha.hexdigest()


def read_jsonl(lines: Iterable[str], *, after_line: int = 0) -> Iterator[HistoryResult]:
    """One canonical ticket per line (the generic webhook's body); blank lines are skipped."""
    for line_number, line in enumerate(lines, start=1):
        if line_number <= after_line or not line.strip():
            continue
        try:
            [ticket] = generic.normalize(json.loads(line))
        except json.JSONDecodeError as exc:
            yield RejectedRow(line_number, "(line)", f"not JSON: {exc.msg}")
        except InvalidInput as exc:
            yield RejectedRow(line_number, exc.field or "(line)", exc.message)
        else:
            yield ImportedRow(line_number, ticket)


async def import_file(
    pool: Pool,
    file: ImportFile,
    *,
    read: Callable[[Iterable[str], int], Iterator[HistoryResult]],
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportSummary:
    """Import a file's rows into the outbox, a batch per transaction, resuming where it stopped."""
    digest = file.digest()
    async with pool.acquire() as conn:
        earlier = await store.import_run(conn, file_digest=digest)
    if earlier and earlier["finished_at"]:
        return _summary(file, digest, HistorySummary(), after=earlier["last_line"], done=True)
    after = earlier["last_line"] if earlier else 0
    summary = HistorySummary()
    with file.path.open(newline="", encoding="utf-8-sig") as lines:
        batch: list[HistoryResult] = []
        for result in summary.counted(read(lines, after)):
            batch.append(result)
            if len(batch) >= batch_size:
                await _commit_batch(pool, file, digest, batch)
                batch = []
                if progress:
                    progress(summary)
        await _commit_batch(pool, file, digest, batch)
    async with pool.acquire() as conn:
        await store.finish_import_run(conn, file_digest=digest)
    if progress:
        progress(summary)
    return _summary(file, digest, summary, after=after, done=False)


async def _commit_batch(pool: Pool, file: ImportFile, digest: str, batch: list[HistoryResult]) -> None:
    if not batch:
        return
    envelopes = [
        envelope_for(
            result.snapshot,
            event_id=row_delivery_id(digest, result.line_number),
            source=f"/bothways/ingest/import/{file.kind}",
        )
        for result in batch
        if isinstance(result, ImportedRow)
    ]
    async with pool.acquire() as conn, conn.transaction():
        await enqueue(conn, envelopes)
        await store.record_import_progress(
            conn,
            file_digest=digest,
            kind=file.kind,
            name=file.name,
            last_line=max((r.line_number for r in batch), default=0),
            rows_read=len(batch),
            events_emitted=len(envelopes),
            rejected=len(batch) - len(envelopes),
        )


def _summary(
    file: ImportFile, digest: str, summary: HistorySummary, *, after: int, done: bool
) -> ImportSummary:
    return ImportSummary(
        name=file.name,
        file_digest=digest,
        rows_read=summary.rows_read,
        events_emitted=summary.events_emitted,
        rejected=summary.rejected,
        rejections=[
            Rejection(line=r.line_number, field=r.field, reason=r.reason) for r in summary.rejections
        ],
        resumed_after_line=after,
        already_imported=done,
    )
