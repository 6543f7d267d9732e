"""ServiceNow incident history CSV exports become canonical snapshots, lazily, with rejected rows named."""

from __future__ import annotations

import csv
import io
import itertools
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bothways.events import Person, Priority, StatusCategory, TicketChange, TicketChanged
from services.ingest.history import (
    HistoryHeaderError,
    HistoryResult,
    HistorySummary,
    ImportedRow,
    RejectedRow,
    read_history,
    row_delivery_id,
)
from services.ingest.mapping import SourceMapping, load_mapping

pytestmark = pytest.mark.unit

EXPORT = Path(__file__).parent / "payloads" / "servicenow_csv" / "incident_history.csv"
MAPPING = load_mapping().for_source("servicenow")
PARIS = ZoneInfo("Europe/Paris")
MINI_COLUMNS = ("number", "state", "sys_updated_on", "opened_at", "priority", "assigned_to")


def export_lines() -> list[str]:
    with EXPORT.open(encoding="utf-8", newline="") as export:
        return list(export)


HEADER, *RECORDS = list(csv.reader(export_lines()))


def read(
    lines: list[str] | None = None, mapping: SourceMapping = MAPPING, **options: Any
) -> list[HistoryResult]:
    return list(
        read_history(export_lines() if lines is None else lines, mapping=mapping, zone=PARIS, **options)
    )


def snapshots(results: list[HistoryResult], number: str | None = None) -> list[TicketChanged]:
    return [
        r.snapshot
        for r in results
        if isinstance(r, ImportedRow) and (number is None or r.snapshot.external_id == number)
    ]


def mini(*rows: dict[str, str], columns: tuple[str, ...] = MINI_COLUMNS) -> list[str]:
    """A small export with the given columns, unlisted cells unknown."""
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=columns, restval="?", extrasaction="ignore", lineterminator="\r\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().splitlines(keepends=True)


def row(number: str, state: str, updated: str, **cells: str) -> dict[str, str]:
    return {
        "number": number,
        "state": state,
        "sys_updated_on": updated,
        "opened_at": "01-06-2024 09:00",
        **cells,
    }


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_state_labels_map_through_the_mapping_and_the_older_labels_through_their_aliases() -> None:
    incident = snapshots(read(), "INC0000045")

    assert [(s.status, s.status_category) for s in incident] == [
        ("New", StatusCategory.NEW),
        ("Active", StatusCategory.OPEN),
        ("Active", StatusCategory.OPEN),
        ("Awaiting User Info", StatusCategory.PENDING),
        ("Active", StatusCategory.OPEN),
        ("Resolved", StatusCategory.RESOLVED),
        ("Closed", StatusCategory.CLOSED),
    ]
    assert {s.status_category for s in snapshots(read(), "INC0000048")} == {
        StatusCategory.NEW,
        StatusCategory.CANCELED,
    }


def test_state_codes_map_through_the_mapping_and_sys_updated_on_stands_for_sys_updated_at() -> None:
    lines = mini(*(row("INC1", code, f"01-06-2024 1{code}:00") for code in ("1", "2", "3", "6", "7")))

    assert [s.status_category for s in snapshots(read(lines))] == [
        StatusCategory.NEW,
        StatusCategory.OPEN,
        StatusCategory.PENDING,
        StatusCategory.RESOLVED,
        StatusCategory.CLOSED,
    ]


def test_a_sites_own_mapping_of_a_label_wins_over_the_local_alias() -> None:
    site = load_mapping(None, {"servicenow": {"statuses": {"active": "pending"}}}).for_source("servicenow")

    assert snapshots(read(mini(row("INC1", "Active", "01-06-2024 10:00")), site))[0].status_category is (
        StatusCategory.PENDING
    )


def test_display_and_bare_priorities_map_to_canonical_priorities_and_the_raw_value_is_kept() -> None:
    results = read()

    assert {(s.raw_priority, s.priority) for s in snapshots(results)} == {
        ("3 - Moderate", Priority.P3),
        ("4 - Low", Priority.P4),
        ("2 - High", Priority.P2),
        ("3", Priority.P3),
    }


def test_a_renamed_priority_label_still_maps_by_its_code_and_an_unknown_one_maps_to_none() -> None:
    lines = mini(
        row("INC1", "New", "01-06-2024 10:00", priority="3 - Medium"),
        row("INC2", "New", "01-06-2024 10:00", priority="Whenever"),
    )

    assert [(s.raw_priority, s.priority) for s in snapshots(read(lines))] == [
        ("3 - Medium", Priority.P3),
        ("Whenever", None),
    ]


def test_occurred_at_is_read_in_the_configured_zone_across_the_spring_change_and_given_in_utc() -> None:
    incident = snapshots(read(), "INC0000045")

    assert [s.occurred_at for s in incident[:5]] == [
        utc("2024-03-30T08:12"),  # CET, UTC+1
        utc("2024-03-30T08:20"),
        utc("2024-03-30T09:05"),
        utc("2024-03-31T01:30"),  # CEST, UTC+2, from 02:00 local that night
        utc("2024-04-02T06:00:15"),  # the format with seconds
    ]
    assert incident[0].created_at == utc("2024-03-30T08:12")


def test_a_wall_clock_time_repeated_when_summer_time_ends_reads_as_its_first_occurrence() -> None:
    incident = snapshots(read(), "INC0000046")

    assert [s.occurred_at for s in incident[:3]] == [
        utc("2024-10-26T23:50"),
        utc("2024-10-27T00:30"),  # 02:30 happened twice; the first was still CEST
        utc("2024-10-27T02:10"),  # 03:10 CET
    ]


def test_the_same_export_read_in_another_zone_shifts_every_time_by_the_offset() -> None:
    in_utc = snapshots(list(read_history(export_lines(), mapping=MAPPING, zone=ZoneInfo("UTC"))))

    assert in_utc[0].occurred_at == utc("2024-03-30T09:12")
    assert snapshots(read())[0].occurred_at == in_utc[0].occurred_at - timedelta(hours=1)


def test_change_names_what_differs_from_the_incidents_previous_row() -> None:
    results = read()

    assert [s.change for s in snapshots(results, "INC0000045")] == [
        TicketChange.CREATED,
        TicketChange.STATUS_CHANGED,  # and assigned: the status change wins, as for webhooks
        TicketChange.ASSIGNED,
        TicketChange.STATUS_CHANGED,
        TicketChange.STATUS_CHANGED,
        TicketChange.STATUS_CHANGED,
        TicketChange.STATUS_CHANGED,
    ]
    assert [s.change for s in snapshots(results, "INC0000046")] == [
        TicketChange.CREATED,
        TicketChange.STATUS_CHANGED,
        TicketChange.PRIORITY_CHANGED,
        TicketChange.STATUS_CHANGED,
        TicketChange.STATUS_CHANGED,
        TicketChange.STATUS_CHANGED,
        TicketChange.STATUS_CHANGED,
    ]


def test_a_row_that_changes_nothing_tracked_is_an_update() -> None:
    lines = mini(row("INC1", "New", "01-06-2024 10:00"), row("INC1", "New", "01-06-2024 10:05"))

    assert [s.change for s in snapshots(read(lines))] == [TicketChange.CREATED, TicketChange.UPDATED]


def test_a_late_row_is_an_update_and_the_next_row_compares_with_the_latest_state() -> None:
    lines = mini(
        row("INC1", "New", "01-06-2024 10:00"),
        row("INC1", "Resolved", "01-06-2024 12:00"),
        row("INC1", "In Progress", "01-06-2024 11:00"),  # exported after the row it precedes
        row("INC1", "Resolved", "01-06-2024 13:00", assigned_to="Alice Martin"),
    )

    assert [s.change for s in snapshots(read(lines))] == [
        TicketChange.CREATED,
        TicketChange.STATUS_CHANGED,
        TicketChange.UPDATED,
        TicketChange.ASSIGNED,
    ]


def test_a_reopen_is_a_status_change_that_drops_resolved_at_and_carries_servicenows_reopen_count() -> None:
    resolved, reopened, resolved_again = snapshots(read(), "INC0000046")[3:6]

    assert resolved.resolved_at == utc("2024-10-27T04:00")
    assert (reopened.change, reopened.status_category) == (TicketChange.STATUS_CHANGED, StatusCategory.OPEN)
    assert (reopened.reopen_count, reopened.resolved_at) == (1, None)
    assert (resolved_again.reopen_count, resolved_again.resolved_at) == (1, utc("2024-10-28T10:00"))


def test_closing_keeps_the_resolution_time_and_sets_the_closure_time() -> None:
    closed = snapshots(read(), "INC0000045")[-1]

    assert (closed.resolved_at, closed.closed_at) == (utc("2024-04-02T07:00"), utc("2024-04-05T07:00"))


def test_business_service_falls_back_on_the_configuration_item_and_is_none_when_both_are_unknown() -> None:
    first_of = {s.external_id: s for s in reversed(snapshots(read()))}

    assert first_of["INC0000045"].business_service == "Email"
    assert first_of["INC0000046"].business_service == "VPN-GW-02"
    assert first_of["INC0000047"].business_service is None


def test_the_caller_is_the_requester_by_name_or_by_sys_id() -> None:
    first_of = {s.external_id: s for s in reversed(snapshots(read()))}

    assert first_of["INC0000045"].requester == Person(name="Dana Whitfield")
    assert first_of["INC0000046"].requester == Person(id="62826bf03710200044e0bfc8bcbe5df1")
    assert first_of["INC0000048"].requester is None


def test_question_marks_and_empty_cells_are_unknown() -> None:
    new, assigned = snapshots(read(), "INC0000045")[:2]
    printer = snapshots(read(), "INC0000048")[0]

    assert (new.assignment_group, new.assignee, new.resolved_at) == (None, None, None)
    assert (assigned.assignment_group, assigned.assignee) == ("Service Desk", "Alice Martin")
    assert printer.created_at == utc("2024-07-01T14:45")  # opened_at empty: sys_created_on
    assert "u_symptom" not in snapshots(read(), "INC0000046")[0].custom


def test_custom_keeps_the_reporting_columns_and_the_u_columns() -> None:
    assert snapshots(read(), "INC0000045")[0].custom == {
        "contact_type": "Email",
        "category": "Software",
        "subcategory": "Mail client",
        "u_symptom": "Cannot send mail",
        "impact": "2 - Medium",
        "urgency": "2 - Medium",
    }


def test_a_canceled_incident_is_closed_when_canceled_and_keeps_its_multiline_title() -> None:
    snapshot = snapshots(read(), "INC0000048")[1]

    assert (snapshot.ticket_key, snapshot.source) == ("servicenow:INC0000048", "servicenow")
    assert snapshot.title == "Printer jams\non floor 3"
    assert snapshot.closed_at == utc("2024-07-01T15:05")  # canceled: closed when it happened


def test_rejected_rows_name_their_line_and_the_column_at_fault() -> None:
    rejected = [r for r in read() if isinstance(r, RejectedRow)]

    assert [(r.line_number, r.field) for r in rejected] == [
        (17, "sys_updated_at"),  # 31 February
        (18, "number"),
        (19, "incident_state"),  # -100, in no mapping
        (24, "columns"),  # cut off
    ]
    assert "'31-02-2024 10:00'" in rejected[0].reason
    assert all(r.field in r.reason for r in rejected)


@pytest.mark.parametrize(
    ("column", "value"),
    [("resolved_at", "yesterday"), ("opened_at", "2024-06-01 09:00"), ("reopen_count", "two")],
)
def test_an_unreadable_cell_rejects_its_row_naming_the_column(column: str, value: str) -> None:
    lines = mini(
        row("INC1", "New", "01-06-2024 10:00", **{column: value}),
        columns=(*MINI_COLUMNS, "resolved_at", "reopen_count"),
    )

    (rejected,) = read(lines)

    assert isinstance(rejected, RejectedRow)
    assert (rejected.line_number, rejected.field) == (2, column)


def test_a_row_spanning_lines_is_numbered_by_the_line_it_starts_on() -> None:
    assert [r.line_number for r in read() if r.line_number >= 20] == [20, 22, 24]


def test_a_blank_line_is_no_row_but_still_counts_as_a_line() -> None:
    lines = mini(row("INC1", "New", "01-06-2024 10:00"), row("INC1", "Closed", "01-06-2024 11:00"))

    assert [r.line_number for r in read([*lines[:2], "\r\n", lines[2]])] == [2, 4]


def test_a_header_without_a_state_column_is_refused_naming_the_columns_it_may_be() -> None:
    lines = mini(row("INC1", "New", "01-06-2024 10:00"), columns=("number", "sys_updated_on", "opened_at"))

    with pytest.raises(HistoryHeaderError, match="incident_state or state"):
        read(lines)


def test_a_byte_order_mark_and_the_case_of_the_header_hide_no_column() -> None:
    header, *rows = mini(row("INC1", "New", "01-06-2024 10:00"))

    assert len(snapshots(read(["\ufeff" + header.upper(), *rows]))) == 1


def test_an_empty_export_yields_nothing() -> None:
    assert read([]) == []


def test_the_date_formats_are_configurable() -> None:
    lines = mini(row("INC1", "New", "2024-06-01 10:00:00", opened_at="2024-06-01 09:00:00"))

    (snapshot,) = snapshots(read(lines, date_formats=("%Y-%m-%d %H:%M:%S",)))

    assert snapshot.occurred_at == utc("2024-06-01T08:00")


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)),
    date_format=st.sampled_from(
        [
            "%d-%m-%Y %H:%M",
            "%d-%m-%Y %H:%M:%S",
            "%Y-%m-%d %H:%M:%S",
            "%d.%m.%Y  %H:%M",
            "%m/%d/%Y %I:%M:%S %p",
        ]
    ),
)
def test_any_time_written_in_a_configured_format_reads_as_strptime_reads_it(
    moment: datetime, date_format: str
) -> None:
    text = moment.strftime(date_format)
    lines = mini(row("INC1", "New", text, opened_at=text))

    (snapshot,) = snapshots(
        list(read_history(lines, mapping=MAPPING, zone=ZoneInfo("UTC"), date_formats=[date_format]))
    )

    assert snapshot.occurred_at == datetime.strptime(text, date_format).replace(tzinfo=UTC)


def endless_export(consumed: list[int]) -> Iterator[str]:
    """A header, then rows of 50 incidents forever, counting the lines handed out."""
    yield ",".join(MINI_COLUMNS) + "\r\n"
    start = datetime(2024, 6, 1, 9, 0)
    for n in itertools.count():
        consumed[0] += 1
        # Times cycle through two hours, so the date cache fills during a warm-up and then stays.
        updated = (start + timedelta(minutes=n % 120)).strftime("%d-%m-%Y %H:%M")
        state = ("New", "In Progress", "On Hold", "Resolved")[n % 4]
        yield f"INC{n % 50:07d},{state},{updated},01-06-2024 09:00,{n % 5 + 1},Agent {n % 7}\r\n"


def test_rows_are_read_lazily_so_an_endless_export_yields_its_first_rows() -> None:
    consumed = [0]

    first = list(itertools.islice(read_history(endless_export(consumed), mapping=MAPPING, zone=PARIS), 1000))

    assert all(isinstance(r, ImportedRow) for r in first)
    assert consumed[0] == 1000


def test_memory_stays_flat_while_rows_of_the_same_incidents_keep_coming() -> None:
    results = read_history(endless_export([0]), mapping=MAPPING, zone=PARIS)
    for _ in itertools.islice(results, 200):  # every incident seen, every time of day cached
        pass
    tracemalloc.start()
    try:
        for _ in itertools.islice(results, 3000):
            pass
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # One dict entry per row (the state keyed by line, say) would hold some 330 KiB here.
    assert kept < 32 * 1024


@settings(max_examples=40, deadline=None)
@given(order=st.permutations(range(len(RECORDS))))
def test_snapshots_are_the_same_in_any_row_order_apart_from_change(order: list[int]) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([HEADER, *(RECORDS[i] for i in order)])

    def states(results: list[HistoryResult]) -> set[str]:
        return {s.model_copy(update={"change": "any"}).model_dump_json() for s in snapshots(results)}

    shuffled = read(out.getvalue().splitlines(keepends=True))

    assert states(shuffled) == states(read())
    assert sorted(r.field for r in shuffled if isinstance(r, RejectedRow)) == sorted(
        ["sys_updated_at", "number", "incident_state", "columns"]
    )


def test_resuming_after_a_line_yields_exactly_the_rest_with_the_same_snapshots() -> None:
    assert read(after_line=12) == [r for r in read() if r.line_number > 12]


def test_the_same_row_of_the_same_file_always_has_the_same_delivery_id() -> None:
    digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

    assert row_delivery_id(digest, 7) == row_delivery_id(digest, 7)
    assert len({row_delivery_id(digest, 7), row_delivery_id(digest, 8), row_delivery_id("0" * 64, 7)}) == 3


def test_the_summary_counts_every_row_but_keeps_only_the_first_rejections_in_full() -> None:
    summary = HistorySummary(keep=2)

    passed = list(summary.counted(read_history(export_lines(), mapping=MAPPING, zone=PARIS)))

    assert passed == read()
    assert (summary.rows_read, summary.events_emitted, summary.rejected) == (21, 17, 4)
    assert [r.line_number for r in summary.rejections] == [17, 18]
    assert summary.last_line == 24
