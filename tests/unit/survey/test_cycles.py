"""Resolution cycles from ticket snapshots arriving late and out of order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bothways.events import StatusCategory, TicketChanged
from services.survey.cycles import TicketState, transition

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def snapshot(category: str, minutes: int, *, change: str = "status_changed") -> TicketChanged:
    return TicketChanged(
        ticket_key="jira:SUP-1",
        source="jira",
        external_id="SUP-1",
        occurred_at=T0 + timedelta(minutes=minutes),
        created_at=T0,
        status=category.title(),
        status_category=StatusCategory(category),
        change=change,
    )


def replay(*snapshots: TicketChanged) -> list[tuple[int | None, StatusCategory | None]]:
    state, seen = None, []
    for ticket in snapshots:
        change = transition(state, ticket)
        state = change.state
        seen.append((change.resolved_cycle, change.undone_by))
    return seen


def test_reaching_resolved_starts_cycle_one_and_closing_it_starts_nothing() -> None:
    assert replay(snapshot("open", 0), snapshot("resolved", 10), snapshot("closed", 20)) == [
        (None, None),
        (1, None),
        (None, None),
    ]


def test_a_reopen_undoes_the_resolution_and_a_new_resolve_is_cycle_two() -> None:
    seen = replay(
        snapshot("open", 0), snapshot("resolved", 10), snapshot("open", 20), snapshot("resolved", 30)
    )
    assert seen == [(None, None), (1, None), (None, StatusCategory.OPEN), (2, None)]


def test_a_cancel_undoes_whatever_is_pending() -> None:
    assert replay(snapshot("resolved", 10), snapshot("canceled", 20)) == [
        (1, None),
        (None, StatusCategory.CANCELED),
    ]


def test_a_repeated_resolved_snapshot_is_the_same_cycle() -> None:
    assert replay(snapshot("resolved", 10), snapshot("resolved", 11)) == [(1, None), (None, None)]


def test_a_late_snapshot_changes_nothing() -> None:
    state = TicketState(T0 + timedelta(minutes=30), StatusCategory.RESOLVED, 1)
    change = transition(state, snapshot("open", 5))
    assert change.late
    assert change.state == state
    assert change.undone_by is None


def test_an_imported_resolution_counts_the_cycle_but_invites_nobody() -> None:
    change = transition(None, snapshot("resolved", 10, change="imported"))
    assert change.state.cycle == 1
    assert change.resolved_cycle is None
