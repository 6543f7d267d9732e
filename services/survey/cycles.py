"""Resolution cycles: when a ticket snapshot starts a new resolution (a survey candidate) or undoes one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from bothways.events import StatusCategory, TicketChange, TicketChanged

DONE: Final = frozenset({StatusCategory.RESOLVED, StatusCategory.CLOSED})


@dataclass(frozen=True)
class TicketState:
    """What the survey service remembers of a ticket: its newest snapshot and its resolution count."""

    occurred_at: datetime
    status_category: StatusCategory
    cycle: int


@dataclass(frozen=True)
class Transition:
    """What one snapshot means for surveys."""

    # The state to keep; the previous one when the snapshot is older than what is known.
    state: TicketState
    late: bool = False
    # A new resolution began: the cycle number of the survey candidate.
    resolved_cycle: int | None = None
    # The ticket was reopened or canceled: surveys not yet sent must not be.
    undone_by: StatusCategory | None = None


def transition(previous: TicketState | None, ticket: TicketChanged) -> Transition:
    """Compare a snapshot with the ticket's newest known state (snapshots arrive late and out of order)."""
    if previous is not None and ticket.occurred_at < previous.occurred_at:
        return Transition(state=previous, late=True)
    was_done = previous is not None and previous.status_category in DONE
    is_done = ticket.status_category in DONE
    cycle = previous.cycle if previous is not None else 0
    if is_done and not was_done:
        state = TicketState(ticket.occurred_at, ticket.status_category, cycle + 1)
        # History imports describe the past: nobody is asked about a ticket solved months ago.
        imported = ticket.change == TicketChange.IMPORTED
        return Transition(state=state, resolved_cycle=None if imported else cycle + 1)
    state = TicketState(ticket.occurred_at, ticket.status_category, cycle)
    if ticket.status_category is StatusCategory.CANCELED or (was_done and not is_done):
        return Transition(state=state, undone_by=ticket.status_category)
    return Transition(state=state)
