"""ServiceNow incident history CSV exports, streamed row by row into canonical ticket snapshots.

An export holds one row per audit update of an incident, with a header of ServiceNow field names
(`number`, `incident_state` or `state`, `sys_updated_at` or `sys_updated_on`, `opened_at`, `priority`
...). Values are display values; `?` or an empty cell means unknown. Dates are wall-clock times in the
exporting user's date format and time zone, which the caller states (the export does not say).

Memory stays proportional to the number of distinct incidents, not to the row count: rows are read
lazily and only each incident's latest status, priority and assignment are remembered, to name the
`change` of its next row. Open files with `newline=""` so that quoted cells may hold line breaks.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from bothways.events import Person, Priority, StatusCategory, TicketChange, TicketChanged, deterministic_id
from services.ingest.mapping import SourceMapping, fold
from services.ingest.normalizers import (
    Facts,
    InvalidField,
    Mapped,
    MissingField,
    canonical_ticket,
    mapped_fields,
    person,
)
from services.ingest.normalizers.servicenow import SYS_ID

SOURCE = "servicenow"
# The delivery id namespace of history rows, apart from webhook deliveries of the same tickets.
DELIVERY_KIND = "servicenow-history-csv"
# Tried in order; ServiceNow's list exports give minutes, so that format goes first.
DEFAULT_DATE_FORMATS = ("%d-%m-%Y %H:%M", "%d-%m-%Y %H:%M:%S")
DEFAULT_KEPT_REJECTIONS = 100
UNKNOWN = "?"
# Where a canonical field may live in an export, first present column wins: `incident_state` keeps the
# incident-specific labels where an export has both, `sys_updated_on` is the Table API's own name.
NUMBER_COLUMN = "number"
STATE_COLUMNS = ("incident_state", "state")
UPDATED_COLUMNS = ("sys_updated_at", "sys_updated_on")
CREATED_COLUMNS = ("opened_at", "sys_created_on")
# Reporting dimensions the canonical ticket has no field for; `u_*` custom columns are kept as well.
CUSTOM_COLUMNS = ("category", "subcategory", "contact_type", "impact", "urgency")
CUSTOM_PREFIX = "u_"
# Labels of the `incident_state` field in older releases (and in exports of it) that the packaged
# mapping does not know: each reads as the current label it became, and the mapping is asked first,
# so a site that maps e.g. "active" itself wins. A label in neither is a rejected row, never a guess.
STATE_ALIASES = {
    "active": "in progress",
    "awaiting user info": "on hold",
    "awaiting caller": "on hold",
    "awaiting problem": "on hold",
    "awaiting vendor": "on hold",
    "awaiting evidence": "on hold",
    "awaiting change": "on hold",
}
# strptime's numeric directives as regex groups, read as strptime reads them: one or two digits, four
# for the year. A format made of the date, hours, minutes and maybe seconds, each once, is read with
# these; any other format (names of months, say) is left to strptime itself.
NUMERIC_DIRECTIVES = {
    "%d": r"(?P<day>\d{1,2})",
    "%m": r"(?P<month>\d{1,2})",
    "%Y": r"(?P<year>\d{4})",
    "%H": r"(?P<hour>\d{1,2})",
    "%M": r"(?P<minute>\d{1,2})",
    "%S": r"(?P<second>\d{1,2})",
}
REGEX_READ_DIRECTIVES = (frozenset(NUMERIC_DIRECTIVES) - {"%S"}, frozenset(NUMERIC_DIRECTIVES))
# Dates repeat across an incident's rows (opened_at on every one); the bound keeps memory flat.
DATE_CACHE_SIZE = 8192


class HistoryHeaderError(ValueError):
    """An export whose header lacks a column every row needs; the message names it."""


@dataclass(frozen=True, slots=True)
class ImportedRow:
    """The snapshot one row of the export gives, with the line the row starts on."""

    line_number: int
    snapshot: TicketChanged


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row that gives no snapshot: the line it starts on, the column at fault and why."""

    line_number: int
    field: str
    reason: str


HistoryResult = ImportedRow | RejectedRow


@dataclass(kw_only=True)
class HistorySummary:
    """What an import read: counts, and the first `keep` rejections in full (the rest only counted)."""

    keep: int = DEFAULT_KEPT_REJECTIONS
    rows_read: int = 0
    events_emitted: int = 0
    rejected: int = 0
    last_line: int = 0
    rejections: list[RejectedRow] = field(default_factory=list)

    def add(self, result: HistoryResult) -> None:
        """Count one result."""
        self.rows_read += 1
        self.last_line = max(self.last_line, result.line_number)
        if isinstance(result, ImportedRow):
            self.events_emitted += 1
            return
        self.rejected += 1
        if len(self.rejections) < self.keep:
            self.rejections.append(result)

    def counted(self, results: Iterable[HistoryResult]) -> Iterator[HistoryResult]:
        """The results, unchanged and as lazily, each counted as it passes."""
        for result in results:
            self.add(result)
            yield result


def row_delivery_id(file_digest: str, line_number: int) -> str:
    """The delivery id of one row of one export: the same file imported twice gives the same ids."""
    return deterministic_id(DELIVERY_KIND, file_digest, str(line_number))


def read_history(
    lines: Iterable[str],
    *,
    mapping: SourceMapping,
    zone: ZoneInfo,
    date_formats: Sequence[str] = DEFAULT_DATE_FORMATS,
    after_line: int = 0,
) -> Iterator[HistoryResult]:
    """One snapshot or rejection per row of a ServiceNow incident history CSV export, read lazily.

    `change` compares a row with the latest earlier row of its incident seen so far in the file:
    `created` for an incident's first row in the file, then `status_changed`, `priority_changed`,
    `assigned` (group or assignee), else `updated`. A row older than one already seen (out of order)
    is `updated`: its true predecessor is unknown without keeping every row, and it does not become
    the incident's latest state. Every other field of a snapshot comes from its own row alone, so
    the snapshots are the same in any row order, except that when the export leaves `resolved_at` or
    `closed_at` empty they are taken from a `created` or `status_changed` row, as for webhooks.

    Rows starting on or before `after_line` are read, so the incidents' previous states are known,
    but not yielded: an import resumed after its last acknowledged line yields exactly the rest.
    """
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        return
    rows = _RowReader(
        columns=_columns(header),
        mapping=_without_first_response(mapping),
        first_response=mapping.paths.first_response,
        zone=zone,
        formats=tuple(date_formats),
    )
    latest: dict[str, _Latest] = {}
    next_line = reader.line_num + 1
    for values in reader:
        line_number, next_line = next_line, reader.line_num + 1
        if not values:
            continue  # a blank line is no row
        result = _result(rows, values, line_number=line_number, latest=latest)
        if line_number > after_line:
            yield result


@dataclass(frozen=True, slots=True)
class _Columns:
    """The header, and which column holds each field that has aliases."""

    names: tuple[str, ...]
    state: str
    updated: str
    created: tuple[str, ...]
    custom: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Latest:
    """What is remembered of an incident: its latest row's time and what `change` compares."""

    occurred_at: datetime
    status: str
    priority: str | None
    assignment_group: str | None
    assignee: str | None


@dataclass(frozen=True, slots=True)
class _Row:
    """One row, read as far as its change can be named: the rest of its facts come after."""

    number: str
    cells: dict[str, str]
    mapped: Mapped
    latest: _Latest


def _result(
    rows: _RowReader, values: list[str], *, line_number: int, latest: dict[str, _Latest]
) -> HistoryResult:
    try:
        row = rows.read(values)
        previous = latest.get(row.number)
        snapshot = canonical_ticket(rows.facts(row, change=_change(row.latest, previous)))
    except (MissingField, InvalidField) as exc:
        return RejectedRow(line_number=line_number, field=exc.path, reason=str(exc))
    if previous is None or row.latest.occurred_at >= previous.occurred_at:
        latest[row.number] = row.latest
    return ImportedRow(line_number=line_number, snapshot=snapshot)


def _change(current: _Latest, previous: _Latest | None) -> TicketChange:
    if previous is None:
        return TicketChange.CREATED
    if current.occurred_at < previous.occurred_at:
        return TicketChange.UPDATED
    if current.status != previous.status:
        return TicketChange.STATUS_CHANGED
    if current.priority != previous.priority:
        return TicketChange.PRIORITY_CHANGED
    if (current.assignment_group, current.assignee) != (previous.assignment_group, previous.assignee):
        return TicketChange.ASSIGNED
    return TicketChange.UPDATED


@dataclass(frozen=True, slots=True)
class _RowReader:
    """Reads rows of one export: its columns, the mapping, and how its dates are written."""

    columns: _Columns
    mapping: SourceMapping
    first_response: tuple[str, ...]
    zone: ZoneInfo
    formats: tuple[str, ...]

    def read(self, values: list[str]) -> _Row:
        cells = self._cells(values)
        mapped = mapped_fields(cells, mapping=self.mapping)
        priority = cells.get("priority")
        return _Row(
            number=_required(cells, NUMBER_COLUMN),
            cells=cells,
            mapped=mapped,
            latest=_Latest(
                occurred_at=self._required_time(cells, self.columns.updated),
                status=_folded(_required(cells, self.columns.state)),
                priority=_folded(priority) if priority else None,
                assignment_group=mapped.assignment_group,
                assignee=cells.get("assigned_to"),
            ),
        )

    def facts(self, row: _Row, *, change: TicketChange) -> Facts:
        cells, occurred_at = row.cells, row.latest.occurred_at
        raw_priority = cells.get("priority")
        return Facts(
            source=SOURCE,
            external_id=row.number,
            mapping=self.mapping,
            mapped=self._with_first_response(row.mapped, cells),
            change=change,
            occurred_at=occurred_at,
            created_at=self._created_at(cells),
            status=cells[self.columns.state],
            status_category=self._category(cells, table=row.mapped.kind_name or "incident"),
            raw_priority=raw_priority,
            priority=_priority(self.mapping, raw_priority),
            title=cells.get("short_description"),
            assignee=cells.get("assigned_to"),
            requester=_requester(cells.get("caller_id")),
            updated_at=occurred_at,
            resolved_at=self._time(cells, "resolved_at"),
            closed_at=self._time(cells, "closed_at"),
            extra_custom=tuple((name, cells[name]) for name in self.columns.custom if name in cells),
        )

    def _cells(self, values: list[str]) -> dict[str, str]:
        names = self.columns.names
        if len(values) != len(names):
            raise InvalidField("columns", f"{len(values)} values for {len(names)} columns")
        # Unknown cells are left out, so that every reader sees them as absent.
        return {
            name: text
            for name, value in zip(names, values, strict=True)
            if (text := value.strip()) and text != UNKNOWN
        }

    def _category(self, cells: dict[str, str], *, table: str) -> StatusCategory:
        column = self.columns.state
        raw = _required(cells, column)
        category = self.mapping.status_category(f"{table}:{raw}", raw, STATE_ALIASES.get(_folded(raw)))
        if category is None:
            raise InvalidField(
                column, f"state {raw!r} of {table} is not in the servicenow mapping (statuses)"
            )
        return category

    def _created_at(self, cells: dict[str, str]) -> datetime:
        for column in self.columns.created:
            found = self._time(cells, column)
            if found is not None:
                return found
        raise MissingField(self.columns.created[0])

    def _with_first_response(self, mapped: Mapped, cells: dict[str, str]) -> Mapped:
        if not self.first_response:
            return mapped  # the default: the export has no first-response column
        found = next(filter(None, (self._time(cells, column) for column in self.first_response)), None)
        return dataclasses.replace(mapped, first_response_at=found)

    def _required_time(self, cells: dict[str, str], column: str) -> datetime:
        found = self._time(cells, column)
        if found is None:
            raise MissingField(column)
        return found

    def _time(self, cells: dict[str, str], column: str) -> datetime | None:
        text = cells.get(column)
        if text is None:
            return None
        found = _utc_time(text, self.zone, self.formats)
        if found is None:
            shown = " or ".join(self.formats)
            raise InvalidField(column, f"not a date-time in {shown} ({self.zone.key}): {text!r}")
        return found


@lru_cache(maxsize=DATE_CACHE_SIZE)
def _utc_time(text: str, zone: ZoneInfo, formats: tuple[str, ...]) -> datetime | None:
    for date_format in formats:
        naive = _wall_clock(text, date_format)
        if naive is not None:
            # fold=0: a wall-clock time repeated when summer time ends reads as its first occurrence;
            # one skipped when it starts (never exported) reads with the offset before the change.
            return naive.replace(tzinfo=zone).astimezone(UTC)
    return None


def _wall_clock(text: str, date_format: str) -> datetime | None:
    pattern = _numeric_pattern(date_format)
    if pattern is None:
        try:
            return datetime.strptime(text, date_format)
        except ValueError:
            return None
    found = pattern.match(text)
    if found is None:
        return None
    parts = found.groupdict()
    try:
        return datetime(
            int(parts["year"]),
            int(parts["month"]),
            int(parts["day"]),
            int(parts["hour"]),
            int(parts["minute"]),
            int(parts.get("second", 0)),
        )
    except ValueError:
        return None  # 31 February, hour 25


@lru_cache(maxsize=32)
def _numeric_pattern(date_format: str) -> re.Pattern[str] | None:
    """The regex that reads a format of numeric directives only, else None: strptime reads it."""
    # strptime checks its locale and takes a lock on every call: it was a sixth of a row's time.
    parts = [part for part in re.split(r"(%.)", date_format) if part]
    directives = [part for part in parts if part.startswith("%")]
    if len(set(directives)) != len(directives) or frozenset(directives) not in REGEX_READ_DIRECTIVES:
        return None
    return re.compile("".join(NUMERIC_DIRECTIVES.get(part) or _literal(part) for part in parts) + r"\Z")


def _literal(text: str) -> str:
    # As strptime: whitespace in the format matches any run of whitespace.
    return r"\s+".join(re.escape(word) for word in re.split(r"\s+", text))


def _columns(header: list[str]) -> _Columns:
    # Excel-made and ServiceNow exports often start with a UTF-8 byte order mark.
    names = tuple(name.lstrip("\ufeff").strip().lower() for name in header)
    missing = [
        " or ".join(aliases)
        for aliases in ((NUMBER_COLUMN,), STATE_COLUMNS, UPDATED_COLUMNS, CREATED_COLUMNS)
        if not any(alias in names for alias in aliases)
    ]
    if missing:
        raise HistoryHeaderError(f"the export's header lacks the column(s): {'; '.join(missing)}")
    return _Columns(
        names=names,
        state=_first_present(STATE_COLUMNS, names),
        updated=_first_present(UPDATED_COLUMNS, names),
        created=tuple(column for column in CREATED_COLUMNS if column in names),
        custom=tuple(name for name in names if name in CUSTOM_COLUMNS or name.startswith(CUSTOM_PREFIX)),
    )


def _first_present(aliases: tuple[str, ...], names: tuple[str, ...]) -> str:
    return next(alias for alias in aliases if alias in names)


def _without_first_response(mapping: SourceMapping) -> SourceMapping:
    # mapped_fields() reads ISO 8601 only; the export's own date format is read here instead.
    return mapping.model_copy(update={"paths": mapping.paths.model_copy(update={"first_response": ()})})


# States and priorities take a handful of values: one shared string each, not one per incident.
_folded = lru_cache(maxsize=256)(fold)


def _required(cells: dict[str, str], column: str) -> str:
    found = cells.get(column)
    if found is None:
        raise MissingField(column)
    return found


def _priority(mapping: SourceMapping, raw: str | None) -> Priority | None:
    # The code before " - " still maps when a site renamed the label ("3 - Medium").
    code = raw.partition(" - ")[0] if raw else None
    return mapping.priority(raw, code)


def _requester(caller: str | None) -> Person | None:
    if caller is None:
        return None
    # An export gives the caller's display name, or the sys_id when exported as values.
    return person(id=caller) if SYS_ID.match(caller) else person(name=caller)
