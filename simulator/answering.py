"""Customers answering satisfaction surveys: the driver's pluggable step after a ticket is resolved.

The driver calls the step once per ticket resolved for good (its story is over). A step decides, with
the satisfaction model, what the customer answers and delivers it through the survey service's real
answer page. Until the survey service can be reached that way, `AwaitingSurveyService` is the step:
it decides the same answers and reports them, sending nothing, and says so.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, Protocol

from simulator.satisfaction import Answer, answer, experience
from simulator.world import TicketState

AWAITING = "waiting on the survey service: answers decided but not sent (no answer page to send them to)"


class SurveyStep(Protocol):
    """What the driver calls for every ticket resolved for good, and asks for a report at the end."""

    async def resolved(self, *, ticket_key: str, state: TicketState) -> None: ...

    def report(self) -> dict[str, Any]: ...


def customer_answer(state: TicketState) -> Answer | None:
    """What this ticket's customer answers (None: they ignore the survey); the same for the same ticket."""
    return answer(experience(state), rng=random.Random(f"survey:{state.ticket.number}:{state.reopen_count}"))


class AwaitingSurveyService:
    """Decides each customer's answer and tallies it per business service, without sending it."""

    def __init__(self) -> None:
        self.resolved_tickets = 0
        self.answers: Counter[str] = Counter()
        self.satisfied: Counter[str] = Counter()

    async def resolved(self, *, ticket_key: str, state: TicketState) -> None:
        """Tally what the customer would answer."""
        self.resolved_tickets += 1
        decided = customer_answer(state)
        if decided is None:
            return
        service = state.ticket.service.id
        self.answers[service] += 1
        self.satisfied[service] += decided.satisfied

    def report(self) -> dict[str, Any]:
        """What would have been answered: counts and the share satisfied (CSAT) per service."""
        return {
            "status": AWAITING,
            "resolved_tickets": self.resolved_tickets,
            "answers_decided": sum(self.answers.values()),
            "csat_percent_by_service": {
                service: round(100 * self.satisfied[service] / count)
                for service, count in sorted(self.answers.items())
            },
        }
