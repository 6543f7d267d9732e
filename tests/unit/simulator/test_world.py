"""The simulated world: waves of tickets, lifecycles that make sense, the same facts for the same seed."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from simulator.organisation import build_organisation
from simulator.world import (
    CANCELING_PLATFORMS,
    ON_CALL,
    ZONE,
    Change,
    Fact,
    OutageFact,
    Status,
    TicketFact,
    World,
    advance,
    build_world,
    live_schedule,
    timeline,
    working_after,
    working_seconds,
)

pytestmark = pytest.mark.unit

START = datetime(2026, 9, 7, tzinfo=UTC)  # a Monday
MONTH = START + timedelta(days=28)


def world(seed: int = 7, *, per_weekday: float = 40, services: int = 6) -> World:
    organisation = build_organisation(seed=seed, services=services, agents=12, customers=200)
    return build_world(organisation, seed=seed, tickets_per_weekday=per_weekday)


def month(seed: int = 7, **options: float) -> list[Fact]:
    return list(timeline(world(seed, **options), start=START, end=MONTH))


def stories(facts: list[Fact]) -> dict[str, list[TicketFact]]:
    by_ticket: dict[str, list[TicketFact]] = defaultdict(list)
    for fact in facts:
        if isinstance(fact, TicketFact):
            by_ticket[fact.key].append(fact)
    return by_ticket


def openings(facts: list[Fact]) -> list[datetime]:
    return [f.occurred_at.astimezone(ZONE) for f in facts if isinstance(f, TicketFact) and f.seq == 0]


def test_weekday_mornings_are_far_busier_than_nights() -> None:
    opened = openings(month(per_weekday=60))
    mornings = [t for t in opened if t.weekday() < 5 and 8 <= t.hour < 12]
    nights = [t for t in opened if t.hour >= 22 or t.hour < 6]
    # 20 weekdays x 4 morning hours, against 28 days x 8 night hours
    per_morning_hour, per_night_hour = len(mornings) / 80, len(nights) / 224
    assert per_morning_hour > 10 * per_night_hour, (per_morning_hour, per_night_hour)


def test_weekends_are_quiet_and_mondays_are_the_busiest_weekday() -> None:
    by_weekday = Counter(t.weekday() for t in openings(month(per_weekday=60)))
    weekday_mean = sum(by_weekday[d] for d in range(5)) / 5
    assert by_weekday[5] + by_weekday[6] < 0.2 * weekday_mean
    assert by_weekday[0] == max(by_weekday.values())


def test_the_volume_follows_the_configured_tickets_per_weekday() -> None:
    opened = openings(month(per_weekday=40))
    tuesdays_to_thursdays = [t for t in opened if t.weekday() in (1, 2, 3)]
    # 12 such days: weights 1.05, 1.0, 0.95 average 1.0, so about 40 a day (outages add a few)
    assert 33 <= len(tuesdays_to_thursdays) / 12 <= 48


def test_the_same_seed_gives_the_same_facts_and_another_seed_others() -> None:
    assert month(seed=3) == month(seed=3)
    assert month(seed=3) != month(seed=4)


def test_a_window_inside_another_replays_the_same_facts_for_the_stories_it_holds() -> None:
    later = START + timedelta(days=9, hours=13)
    inner = list(timeline(world(), start=later, end=MONTH))
    outer = [f for f in month() if f.key in {g.key for g in inner}]
    assert inner == outer
    assert len(inner) > 100


def test_ticket_numbers_are_unique_and_carry_the_seed() -> None:
    first = {f.ticket.number for f in month(seed=3) if isinstance(f, TicketFact)}
    second = {f.ticket.number for f in month(seed=4) if isinstance(f, TicketFact)}
    assert not first & second
    assert all(str(number).startswith("3") for number in first)


def test_facts_come_in_the_order_they_happened() -> None:
    times = [f.occurred_at for f in month()]
    assert times == sorted(times)
    assert all(t.microsecond == 0 for t in times)
    assert times[0] >= START
    assert times[-1] < MONTH


def test_every_story_starts_opened_and_its_facts_follow_each_other_by_at_least_a_second() -> None:
    for facts in stories(month()).values():
        assert facts[0].change is Change.OPENED
        assert [f.seq for f in facts] == list(range(len(facts)))
        gaps = [(b.occurred_at - a.occurred_at).total_seconds() for a, b in itertools.pairwise(facts)]
        assert all(gap >= 1 for gap in gaps), facts[0].key
        assert not any(f.last for f in facts[:-1])


def test_lifecycles_only_make_moves_their_state_allows() -> None:
    allowed = {
        Change.TAKEN: {Status.NEW},
        Change.REPLIED: {Status.OPEN},
        Change.AWAITING_CUSTOMER: {Status.OPEN},
        Change.CUSTOMER_REPLIED: {Status.PENDING},
        Change.RESUMED: {Status.PENDING},
        Change.REASSIGNED: {Status.OPEN},
        Change.REPRIORITIZED: {Status.OPEN},
        Change.RESOLVED: {Status.OPEN},
        Change.REOPENED: {Status.RESOLVED},
        Change.CANCELED: {Status.OPEN},
    }
    seen: Counter[Change] = Counter()
    for facts in stories(month()).values():
        state = advance(None, facts[0])
        for fact in facts[1:]:
            assert state.status in allowed[fact.change], (fact.key, fact.change, state.status)
            state = advance(state, fact)
            seen[fact.change] += 1
        if facts[-1].last:
            assert state.status in (Status.RESOLVED, Status.CANCELED)
    assert set(seen) == set(allowed), "every kind of move happens in a month"


def test_no_resolution_before_creation_and_a_reopen_only_after_a_resolution() -> None:
    for facts in stories(month()).values():
        opened = facts[0].occurred_at
        changes = [f.change for f in facts]
        assert all(f.occurred_at > opened for f in facts[1:])
        for index, change in enumerate(changes):
            if change is Change.REOPENED:
                assert Change.RESOLVED in changes[:index]


def test_only_platforms_that_can_report_it_see_cancellations() -> None:
    canceled = {
        f.ticket.platform for f in month() if isinstance(f, TicketFact) and f.change is Change.CANCELED
    }
    assert canceled
    assert canceled <= CANCELING_PLATFORMS


def test_tickets_spread_over_the_three_platforms_and_every_service() -> None:
    first = [f for f in month() if isinstance(f, TicketFact) and f.seq == 0]
    assert Counter(f.ticket.platform for f in first).keys() == {"jira", "zendesk", "servicenow"}
    assert min(Counter(f.ticket.platform for f in first).values()) > len(first) / 6
    assert {f.ticket.service.id for f in first} == {s.id for s in world().organisation.services}


def test_outages_start_then_end_and_bring_urgent_tickets_for_their_service() -> None:
    facts = month()
    outages = [f for f in facts if isinstance(f, OutageFact)]
    starts = {f.outage.id: f.occurred_at for f in outages if f.change is Change.OUTAGE_STARTED}
    ends = {f.outage.id: f.occurred_at for f in outages if f.change is Change.OUTAGE_ENDED}
    assert starts
    assert starts.keys() == ends.keys()
    assert all(ends[key] > starts[key] for key in starts)
    urgent_during = 0
    for key, started in starts.items():
        service = key.split(":")[0]
        urgent_during += sum(
            1
            for f in facts
            if isinstance(f, TicketFact)
            and f.seq == 0
            and f.ticket.service.id == service
            and started <= f.occurred_at <= ends[key]
            and f.priority in ON_CALL
        )
    assert urgent_during >= len(starts)


def test_the_watermelon_answers_faster_than_the_overloaded_service() -> None:
    facts = month(per_weekday=60)
    first_reply: dict[str, list[float]] = defaultdict(list)
    for story in stories(facts).values():
        replied = next((f for f in story if f.change is Change.REPLIED), None)
        if replied is not None and story[0].priority not in ON_CALL:
            business = working_seconds(story[0].occurred_at, replied.occurred_at, around_the_clock=False)
            first_reply[story[0].ticket.service.id].append(business)
    median = {service: sorted(times)[len(times) // 2] for service, times in first_reply.items()}
    assert median["hr-portal"] < median["email"] < median["erp"]
    assert world().organisation.services[1].watermelon


def test_working_time_skips_nights_and_weekends_in_local_time() -> None:
    friday_afternoon = datetime(2026, 10, 23, 16, 30, tzinfo=ZONE)
    after = working_after(friday_afternoon, 3600, around_the_clock=False)
    assert after == datetime(2026, 10, 26, 8, 30, tzinfo=ZONE)  # Monday, across the change from CEST
    assert working_seconds(friday_afternoon, after, around_the_clock=False) == 3600
    assert working_after(friday_afternoon, 3600, around_the_clock=True) == friday_afternoon + timedelta(
        hours=1
    )


def test_a_live_schedule_keeps_the_rate_and_spaces_each_ticket_by_a_second() -> None:
    start = datetime(2026, 11, 2, 12, tzinfo=UTC)
    live = list(itertools.islice(live_schedule(timeline(world(), start=START), start=start, rate=200), 3000))
    on_slot = sum(1 for i, f in enumerate(live) if f.occurred_at == start + timedelta(seconds=i / 200))
    assert on_slot == len(live), "one fact in each slot, none late"
    by_key: dict[str, list[Fact]] = defaultdict(list)
    for fact in live:
        by_key[fact.key].append(fact)
    for key, replayed in by_key.items():
        assert [f.seq for f in replayed] == list(range(len(replayed))), key
        gaps = [(b.occurred_at - a.occurred_at).total_seconds() for a, b in itertools.pairwise(replayed)]
        assert all(gap >= 1 for gap in gaps), key
    assert sum(1 for f in live if f.seq > 0) > 1000, "whole stories, not only openings"


def test_an_organisation_needs_room_for_its_watermelon() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        build_organisation(seed=1, services=2, agents=5, customers=10)
    with pytest.raises(ValueError, match="seed"):
        build_world(
            build_organisation(seed=1, services=3, agents=5, customers=10), seed=-1, tickets_per_weekday=1
        )


def test_a_live_series_renumbers_the_same_stories() -> None:
    organisation = build_organisation(seed=7, services=6, agents=12, customers=200)
    history = build_world(organisation, seed=7, tickets_per_weekday=40)
    live = build_world(organisation, seed=7, tickets_per_weekday=40, series=89_999)
    day = START + timedelta(days=1)
    original = list(timeline(history, start=START, end=day))
    renumbered = list(timeline(live, start=START, end=day))
    assert [(f.occurred_at, f.change) for f in original] == [(f.occurred_at, f.change) for f in renumbered]
    numbers = {f.ticket.number for f in original if isinstance(f, TicketFact)}
    assert numbers.isdisjoint({f.ticket.number for f in renumbered if isinstance(f, TicketFact)})
    assert max(numbers | {f.ticket.number for f in renumbered if isinstance(f, TicketFact)}) < 2**63
