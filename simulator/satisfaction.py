"""What a customer answers about a resolved ticket: the satisfaction model. Pure, seeded per ticket.

A customer is as satisfied as the fix was good (the service's `care`), less what went wrong on the
way: a late first response or resolution against the default SLA targets, reopens, reassignments
(having to repeat oneself), and days of waiting. The watermelon service meets its targets, and its
customers are unhappy anyway: that is the gap Bothways exists to show.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from simulator.organisation import BusinessService
from simulator.world import ON_CALL, Status, TicketState, working_seconds

# The default policy's targets (services/sla/policies.yaml) in working seconds on the world's clock:
# around the clock for P1 and P2, office hours (9 a day) otherwise. What the customer was promised.
FIRST_RESPONSE_TARGETS = {"P1": 15 * 60, "P2": 30 * 60, "P3": 4 * 3600, "P4": 9 * 3600}
RESOLUTION_TARGETS = {"P1": 4 * 3600, "P2": 8 * 3600, "P3": 18 * 3600, "P4": 45 * 3600}
# The reasons the survey offers after a low score (services/survey/surveys.yaml).
TOO_LONG = "It took too long"
NOT_RESOLVED = "My issue was not resolved"
REPEATED = "I had to repeat myself"
UNHELPFUL = "The agent was unhelpful"
# Share of customers who answer at all; the unhappy ones answer more often.
ANSWER_RATE = 0.4
UNHAPPY_ANSWER_RATE = 0.6


@dataclass(frozen=True)
class Experience:
    """How a ticket went, from its customer's side."""

    service: BusinessService
    priority: str
    late_response: bool
    late_resolution: bool
    reopens: int
    reassignments: int
    days_open: float


@dataclass(frozen=True)
class Answer:
    """A survey answer: a score from 1 to 5 (4 and 5 are satisfied), and a reason after a low one."""

    score: int
    reason: str | None
    comment: str | None

    @property
    def satisfied(self) -> bool:
        return self.score >= 4


def experience(state: TicketState) -> Experience:
    """The experience of a resolved ticket, from its final state."""
    if state.status is not Status.RESOLVED or state.resolved_at is None:
        raise ValueError("only a resolved ticket has a finished experience")
    on_call = state.priority in ON_CALL
    responded = state.first_response_at or state.resolved_at
    response = working_seconds(state.created_at, responded, around_the_clock=on_call)
    resolution = working_seconds(state.created_at, state.resolved_at, around_the_clock=on_call) - sum(
        working_seconds(start, end, around_the_clock=on_call) for start, end in state.pending_spans
    )
    return Experience(
        service=state.ticket.service,
        priority=state.priority,
        late_response=response > FIRST_RESPONSE_TARGETS[state.priority],
        late_resolution=resolution > RESOLUTION_TARGETS[state.priority],
        reopens=state.reopen_count,
        reassignments=state.reassignments,
        days_open=_days(state.created_at, state.resolved_at),
    )


def expected_score(experience: Experience) -> float:
    """The score this experience earns on average, before the customer's mood of the day."""
    score = 1 + 4 * experience.service.care
    score -= 0.8 * experience.late_response + 1.3 * experience.late_resolution
    score -= 0.9 * experience.reopens + 0.4 * experience.reassignments
    score -= min(0.3 * max(experience.days_open - 2, 0), 1.2)
    return score


def answer(experience: Experience, *, rng: random.Random) -> Answer | None:
    """What the customer answers, or None when they ignore the survey."""
    expected = expected_score(experience)
    if rng.random() >= (UNHAPPY_ANSWER_RATE if expected < 3 else ANSWER_RATE):
        return None
    score = min(max(round(expected + rng.gauss(0, 0.7)), 1), 5)
    if score > 2:
        return Answer(score=score, reason=None, comment=None)
    reason = _reason(experience)
    return Answer(score=score, reason=reason, comment=COMMENTS[reason])


def _reason(experience: Experience) -> str:
    """The main thing that went wrong, as the customer would pick it."""
    if experience.late_resolution or experience.late_response:
        return TOO_LONG
    if experience.reopens or experience.service.care < 0.5:
        return NOT_RESOLVED
    if experience.reassignments:
        return REPEATED
    return UNHELPFUL


COMMENTS = {
    TOO_LONG: "Nobody got back to me for ages.",
    NOT_RESOLVED: "Closed, but the problem is still there.",
    REPEATED: "I had to explain everything again to a second team.",
    UNHELPFUL: "The reply did not help me.",
}


def _days(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 86_400
