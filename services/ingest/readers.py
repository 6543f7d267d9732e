"""Which reader turns which kind of history file into rows (routing is data)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bothways.errors import InvalidInput
from services.ingest.history import DEFAULT_DATE_FORMATS, HistoryResult, read_history
from services.ingest.imports import read_jsonl
from services.ingest.mapping import Mapping as SourceMappings

Reader = Callable[[Iterable[str], int], Iterator[HistoryResult]]


def reader_for(
    kind: str, *, mappings: SourceMappings, time_zone: str = "UTC", date_formats: Sequence[str] | None = None
) -> Reader:
    """The row reader of an import kind, configured; bad options are InvalidInput naming them."""
    if kind == "jsonl":
        return lambda lines, after: read_jsonl(lines, after_line=after)
    if kind != "servicenow-csv":
        raise InvalidInput(f"unknown import kind {kind!r}", field="kind")
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {time_zone!r}", field="time_zone") from exc
    formats = tuple(date_formats or DEFAULT_DATE_FORMATS)
    mapping = mappings.for_source("servicenow")
    return lambda lines, after: read_history(
        lines, mapping=mapping, zone=zone, date_formats=formats, after_line=after
    )
