"""The satisfaction model: how a ticket went decides the answer, and the watermelon's customers are unhappy."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from statistics import mean

import pytest

from simulator.answering import AWAITING, AwaitingSurveyService, customer_answer
from simulator.organisation import CATALOGUE, build_organisation
from simulator.satisfaction import NOT_RESOLVED, TOO_LONG, Experience, answer, expected_score, experience
from simulator.world import ZONE, Ledger, Status, Ticket, TicketFact, TicketState, build_world, timeline

pytestmark = pytest.mark.unit

EMAIL, WATERMELON, OVERLOADED = CATALOGUE[0], CATALOGUE[1], CATALOGUE[2]
START = datetime(2026, 6, 1, tzinfo=UTC)


def resolved_states(days: int = 56) -> list[TicketState]:
    """The final state of every ticket resolved in eight simulated weeks."""
    organisation = build_organisation(seed=5, services=6, agents=12, customers=300)
    world = build_world(organisation, seed=5, tickets_per_weekday=60)
    ledger, finished = Ledger(), []
    for fact in timeline(world, start=START, end=START + timedelta(days=days)):
        if isinstance(fact, TicketFact):
            state = ledger.ticket(fact)[1]
            if fact.last and state.status is Status.RESOLVED:
                finished.append(state)
    return finished


STATES = resolved_states()


def on_time(item: Experience) -> bool:
    return not (item.late_response or item.late_resolution)


def ticket_state(*, priority: str, created: datetime, responded: datetime, resolved: datetime) -> TicketState:
    customer = build_organisation(seed=1, services=3, agents=3, customers=1).customers[0]
    ticket = Ticket(number=1, service=EMAIL, customer=customer, kind="incident", title="Mailbox full")
    return TicketState(
        ticket=ticket,
        status=Status.RESOLVED,
        priority=priority,
        group=EMAIL.group,
        agent=None,
        created_at=created,
        updated_at=resolved,
        resolved_at=resolved,
        first_response_at=responded,
    )


def test_the_watermelon_meets_its_targets_and_its_customers_are_unhappy_all_the_same() -> None:
    by_service: dict[str, list[Experience]] = defaultdict(list)
    for state in STATES:
        by_service[state.ticket.service.id].append(experience(state))
    watermelon, email = by_service[WATERMELON.id], by_service[EMAIL.id]
    assert sum(map(on_time, watermelon)) / len(watermelon) > 0.9, "its SLAs are green"
    assert mean(expected_score(e) for e in watermelon if on_time(e)) < 3
    assert mean(expected_score(e) for e in email if on_time(e)) > 4


def test_the_overloaded_service_breaches_more_often_than_the_others() -> None:
    late: dict[str, list[bool]] = defaultdict(list)
    for state in STATES:
        late[state.ticket.service.id].append(not on_time(experience(state)))
    rates = {service: mean(values) for service, values in late.items()}
    assert rates[OVERLOADED.id] > 2 * rates[EMAIL.id]
    assert rates[OVERLOADED.id] > 0.2


def test_answers_are_less_satisfied_after_a_breach_a_reopen_or_a_reassignment() -> None:
    good = Experience(EMAIL, "P3", False, False, reopens=0, reassignments=0, days_open=1)
    worse = [
        replace(good, late_resolution=True),
        replace(good, late_response=True),
        replace(good, reopens=1),
        replace(good, reassignments=1),
        replace(good, days_open=6),
    ]
    assert all(expected_score(item) < expected_score(good) for item in worse)

    def satisfied_share(item: Experience) -> float:
        answers = [answer(item, rng=random.Random(n)) for n in range(2000)]
        given = [a for a in answers if a is not None]
        return mean(a.satisfied for a in given)

    assert satisfied_share(good) > 0.85
    assert satisfied_share(replace(good, late_resolution=True, reopens=1)) < 0.35
    assert satisfied_share(replace(good, service=WATERMELON)) < 0.35


def test_a_low_score_gives_the_reason_that_matters_most() -> None:
    late = Experience(OVERLOADED, "P3", False, True, reopens=2, reassignments=0, days_open=9)
    careless = Experience(WATERMELON, "P3", False, False, reopens=0, reassignments=0, days_open=0.2)
    low_late = [a for n in range(300) if (a := answer(late, rng=random.Random(n))) and a.score <= 2]
    low_careless = [a for n in range(300) if (a := answer(careless, rng=random.Random(n))) and a.score <= 2]
    assert low_late
    assert {a.reason for a in low_late} == {TOO_LONG}
    assert low_careless
    assert {a.reason for a in low_careless} == {NOT_RESOLVED}
    assert all(a.comment for a in low_late + low_careless)


def test_some_customers_do_not_answer_and_the_unhappy_answer_more() -> None:
    happy = Experience(EMAIL, "P3", False, False, 0, 0, 1)
    unhappy = replace(happy, service=WATERMELON)
    answered = {
        name: mean(answer(item, rng=random.Random(n)) is not None for n in range(3000))
        for name, item in (("happy", happy), ("unhappy", unhappy))
    }
    assert 0.3 < answered["happy"] < 0.5 < answered["unhappy"] < 0.7


def test_lateness_counts_office_hours_for_standard_tickets_and_every_hour_for_urgent_ones() -> None:
    friday = datetime(2026, 6, 5, 16, 0, tzinfo=ZONE)
    monday_morning = datetime(2026, 6, 8, 9, 30, tzinfo=ZONE)  # 1.5 office hours later
    standard = experience(
        ticket_state(priority="P3", created=friday, responded=monday_morning, resolved=monday_morning)
    )
    assert not standard.late_response
    night = datetime(2026, 6, 3, 2, 0, tzinfo=ZONE)
    urgent = experience(
        ticket_state(
            priority="P1",
            created=night,
            responded=night + timedelta(minutes=30),
            resolved=night + timedelta(hours=3),
        )
    )
    assert urgent.late_response
    assert not urgent.late_resolution


def test_time_waiting_on_the_customer_does_not_make_a_resolution_late() -> None:
    created = datetime(2026, 6, 3, 9, 0, tzinfo=ZONE)
    resolved = datetime(2026, 6, 5, 16, 0, tzinfo=ZONE)  # 25 office hours: late against 18
    state = ticket_state(
        priority="P3", created=created, responded=created + timedelta(minutes=20), resolved=resolved
    )
    assert experience(state).late_resolution
    waited = replace(
        state, pending_spans=((created + timedelta(hours=1), created + timedelta(days=1, hours=1)),)
    )
    assert not experience(waited).late_resolution


def test_only_a_resolved_ticket_has_an_experience() -> None:
    state = replace(STATES[0], status=Status.OPEN, resolved_at=None)
    with pytest.raises(ValueError, match="resolved"):
        experience(state)


def test_the_same_ticket_always_gets_the_same_answer() -> None:
    assert [customer_answer(s) for s in STATES[:200]] == [customer_answer(s) for s in STATES[:200]]


def test_while_the_survey_service_cannot_be_reached_the_step_reports_what_would_be_answered() -> None:
    step = AwaitingSurveyService()

    async def feed() -> None:
        for state in STATES:
            await step.resolved(ticket_key="x", state=state)

    asyncio.run(feed())
    report = step.report()
    assert report["status"] == AWAITING
    assert report["resolved_tickets"] == len(STATES)
    assert 0.3 * len(STATES) < report["answers_decided"] < 0.6 * len(STATES)
    csat = report["csat_percent_by_service"]
    assert csat[WATERMELON.id] < 20
    assert csat[OVERLOADED.id] < 40
    assert min(csat[service] for service in ("email", "vpn", "webshop", "laptops")) > 65
