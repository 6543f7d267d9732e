"""What happens in the simulated organisation, as a timeline of facts. Pure: seeded, the time passed in.

Tickets arrive in daily and weekly waves (busy weekday mornings, quiet nights and weekends) and live
their lifecycle: an agent takes them and replies, asks the customer and waits, reassigns, changes the
priority, resolves; customers reopen; some are canceled. Outages start and end, and bring a burst of
urgent tickets for their service. Each UTC day is generated from the seed and its date alone, so a
window of days is the same whichever window it is part of: replaying an overlapping window again sends
the same webhooks (which ingest deduplicates), and ticket numbers never collide across days.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from simulator.organisation import Agent, BusinessService, Customer, Organisation

ZONE = ZoneInfo("Europe/Berlin")
# Agents (and customers) work Monday to Friday 08:00-17:00 local time, as the default office calendar.
OPENS, CLOSES = time(8), time(17)
# Share of a day's tickets arriving in each local hour, and of a week's on each weekday (Monday first).
HOURLY = (
    0.2,
    0.1,
    0.1,
    0.1,
    0.1,
    0.2,
    0.6,
    2.5,
    7,
    10,
    9.5,
    8,
    5.5,
    7,
    8,
    7.5,
    6,
    3.5,
    2,
    1.2,
    1,
    0.8,
    0.5,
    0.3,
)
WEEKDAYS = (1.25, 1.05, 1.0, 0.95, 0.8, 0.1, 0.07)
PRIORITIES = ("P1", "P2", "P3", "P4")
PRIORITY_WEIGHTS = (3, 12, 55, 30)
# P1 and P2 are worked around the clock (on call); the others in office hours.
ON_CALL = frozenset({"P1", "P2"})
# Median working minutes until an agent takes a ticket, and of work until it is resolved.
PICKUP_MINUTES = {"P1": 4, "P2": 10, "P3": 60, "P4": 180}
WORK_MINUTES = {"P1": 75, "P2": 150, "P3": 300, "P4": 720}
ORIGIN = date(2000, 1, 1)
DAY_CAPACITY = 10_000  # tickets a day can number
# Platforms where an agent can cancel a ticket (a Zendesk trigger cannot report a deletion).
CANCELING_PLATFORMS = frozenset({"jira", "servicenow"})
ONE_SECOND = timedelta(seconds=1)


class Change(StrEnum):
    """What a fact says happened; each becomes one platform webhook."""

    OPENED = "opened"
    TAKEN = "taken"  # an agent takes the ticket and starts work on it
    REPLIED = "replied"  # an agent's public reply
    AWAITING_CUSTOMER = "awaiting_customer"
    CUSTOMER_REPLIED = "customer_replied"
    RESUMED = "resumed"  # back to work after the customer's answer
    REASSIGNED = "reassigned"
    REPRIORITIZED = "reprioritized"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CANCELED = "canceled"
    OUTAGE_STARTED = "outage_started"
    OUTAGE_ENDED = "outage_ended"


class Status(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CANCELED = "canceled"


STATUS_AFTER = {
    Change.OPENED: Status.NEW,
    Change.TAKEN: Status.OPEN,
    Change.AWAITING_CUSTOMER: Status.PENDING,
    Change.RESUMED: Status.OPEN,
    Change.RESOLVED: Status.RESOLVED,
    Change.REOPENED: Status.OPEN,
    Change.CANCELED: Status.CANCELED,
}


@dataclass(frozen=True)
class Ticket:
    """What does not change about a ticket."""

    number: int
    service: BusinessService
    customer: Customer
    kind: str  # incident | request
    title: str

    @property
    def platform(self) -> str:
        return self.customer.platform


@dataclass(frozen=True)
class TicketFact:
    """One thing that happened to a ticket; `seq` counts from 0 (opened), `last` ends its story."""

    occurred_at: datetime
    ticket: Ticket
    change: Change
    seq: int
    last: bool = False
    agent: Agent | None = None
    group: str | None = None
    priority: str | None = None

    @property
    def key(self) -> str:
        return f"ticket:{self.ticket.number}"


@dataclass(frozen=True)
class Outage:
    """An outage of a business service, as its monitoring alert names it."""

    id: str
    service: BusinessService
    severity: str  # critical | warning
    alertname: str


@dataclass(frozen=True)
class OutageFact:
    occurred_at: datetime
    outage: Outage
    change: Change  # OUTAGE_STARTED | OUTAGE_ENDED
    seq: int
    last: bool = False

    @property
    def key(self) -> str:
        return f"outage:{self.outage.id}"


Fact = TicketFact | OutageFact


@dataclass(frozen=True)
class World:
    """An organisation, a seed and a ticket volume: everything the timeline depends on."""

    organisation: Organisation
    seed: int
    tickets_per_weekday: float
    # 0 for history; a live run numbers its tickets in a series of its own, so that they never take the
    # number of a ticket of another run (a number names one story: two would make one history of both).
    series: int = 0


def build_world(
    organisation: Organisation, *, seed: int, tickets_per_weekday: float, series: int = 0
) -> World:
    """A world of an organisation; validates what the numbering needs."""
    if not 0 <= seed < 100_000:
        raise ValueError("the seed is a number from 0 to 99999 (it is part of every ticket number)")
    if tickets_per_weekday < 0:
        raise ValueError("tickets per weekday cannot be negative")
    if not 0 <= series < 90_000:
        raise ValueError("a series is a number from 0 to 89999")
    return World(organisation=organisation, seed=seed, tickets_per_weekday=tickets_per_weekday, series=series)


# --- working time -----------------------------------------------------------------------------------


def _office_windows(moment: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The office-hours windows (UTC) from the local day of `moment` on."""
    day = moment.astimezone(ZONE).date()
    while True:
        if day.weekday() < 5:
            yield (
                datetime.combine(day, OPENS, ZONE).astimezone(UTC),
                datetime.combine(day, CLOSES, ZONE).astimezone(UTC),
            )
        day += timedelta(days=1)


def working_after(moment: datetime, seconds: float, *, around_the_clock: bool) -> datetime:
    """The moment when `seconds` of working time have passed after `moment`."""
    if around_the_clock:
        return moment + timedelta(seconds=seconds)
    for opens, closes in _office_windows(moment):
        if closes <= moment:
            continue
        moment = max(moment, opens)
        available = (closes - moment).total_seconds()
        if seconds <= available:
            return moment + timedelta(seconds=seconds)
        seconds -= available
    raise AssertionError("office windows never end")


def working_seconds(start: datetime, end: datetime, *, around_the_clock: bool) -> float:
    """The working time between two moments."""
    if around_the_clock or end <= start:
        return max((end - start).total_seconds(), 0.0)
    total = 0.0
    for opens, closes in _office_windows(start):
        if opens >= end:
            return total
        total += max((min(closes, end) - max(opens, start)).total_seconds(), 0.0)
    raise AssertionError("office windows never end")


# --- arrivals ---------------------------------------------------------------------------------------


def arrival_rate(world: World, moment: datetime) -> float:
    """Expected new tickets per hour at `moment`: the weekday's share of the week, the hour's of the day."""
    local = moment.astimezone(ZONE)
    return world.tickets_per_weekday * WEEKDAYS[local.weekday()] * HOURLY[local.hour] / sum(HOURLY)


def _arrivals(world: World, day_start: datetime, rng: random.Random) -> list[datetime]:
    """The regular arrivals of one day: a Poisson process with the rate above, by thinning."""
    peak = world.tickets_per_weekday * max(WEEKDAYS) * max(HOURLY) / sum(HOURLY)
    found: list[datetime] = []
    if peak <= 0:
        return found
    hours = 0.0
    while True:
        hours += rng.expovariate(peak)
        if hours >= 24:
            return found
        moment = day_start + timedelta(hours=hours)
        if rng.random() * peak < arrival_rate(world, moment):
            found.append(_whole(moment))


@dataclass(frozen=True)
class _Arrival:
    at: datetime
    service: BusinessService | None = None  # set for tickets about an outage
    priority: str | None = None


@dataclass(frozen=True)
class _OutageSpan:
    outage: Outage
    started_at: datetime
    ended_at: datetime


def _outages(world: World, day: date, day_start: datetime, rng: random.Random) -> list[_OutageSpan]:
    spans = []
    for service in world.organisation.services:
        if rng.random() >= service.outages_per_week / 7:
            continue
        started = _whole(day_start + timedelta(seconds=rng.uniform(0, 86_400)))
        minutes = min(10 + rng.lognormvariate(math.log(35), 0.8), 240)
        severity = "critical" if rng.random() < 0.6 else "warning"
        name = "ServiceDown" if severity == "critical" else "ServiceDegraded"
        outage = Outage(
            id=f"{service.id}:{day.isoformat()}", service=service, severity=severity, alertname=name
        )
        spans.append(_OutageSpan(outage, started, started + timedelta(minutes=round(minutes))))
    return spans


def _outage_reports(span: _OutageSpan, rng: random.Random) -> list[_Arrival]:
    """Customers who notice an outage raise urgent tickets about it while it lasts."""
    count = 1 + min(int(rng.expovariate(0.4)), 8) if span.outage.severity == "critical" else rng.randint(0, 2)
    length = (span.ended_at - span.started_at).total_seconds()
    return [
        _Arrival(
            at=_whole(span.started_at + timedelta(seconds=rng.uniform(120, max(length, 121)))),
            service=span.outage.service,
            priority="P1" if rng.random() < 0.4 else "P2",
        )
        for _ in range(count)
    ]


# --- lifecycles -------------------------------------------------------------------------------------


@dataclass
class _Story:
    """A ticket's facts as they are written, with the clock of the story."""

    ticket: Ticket
    rng: random.Random
    now: datetime
    priority: str
    facts: list[TicketFact]

    def tell(
        self,
        change: Change,
        *,
        agent: Agent | None = None,
        group: str | None = None,
        priority: str | None = None,
    ) -> None:
        fact = TicketFact(
            self.now, self.ticket, change, seq=len(self.facts), agent=agent, group=group, priority=priority
        )
        self.facts.append(fact)

    def wait(self, seconds: float) -> None:
        """Wall-clock time passes (at least a second, so every fact has its own second)."""
        self.now = _whole(self.now + timedelta(seconds=max(seconds, 1)))

    def work(self, median_minutes: float, *, sigma: float = 0.6) -> None:
        """Agents' working time passes: around the clock for urgent tickets, else in office hours."""
        seconds = 60 * median_minutes * self.ticket.service.speed * self.rng.lognormvariate(0, sigma)
        self.now = _whole(working_after(self.now, max(seconds, 1), around_the_clock=self.on_call))
        self.wait(1)

    def customer_time(self, median_minutes: float) -> None:
        """The customer answers in their own office hours."""
        seconds = 60 * median_minutes * self.rng.lognormvariate(0, 0.8)
        self.now = _whole(working_after(self.now, max(seconds, 60), around_the_clock=False))
        self.wait(1)

    @property
    def on_call(self) -> bool:
        return self.priority in ON_CALL


def lifecycle(
    organisation: Organisation, ticket: Ticket, *, created_at: datetime, priority: str, rng: random.Random
) -> list[TicketFact]:
    """Every fact of one ticket's life, from opening to resolution or cancellation."""
    story = _Story(ticket=ticket, rng=rng, now=created_at, priority=priority, facts=[])
    group = ticket.service.group
    story.tell(Change.OPENED, priority=priority, group=group)
    agent = rng.choice(organisation.agents_of(group))
    story.work(PICKUP_MINUTES[priority])
    story.tell(Change.TAKEN, agent=agent)
    story.wait(rng.uniform(30, 300))
    story.tell(Change.REPLIED, agent=agent)
    if rng.random() < 0.08:
        _reprioritize(story)
    if rng.random() < min(0.1 * ticket.service.speed, 0.3):
        agent = _reassign(story, organisation)
    _ask_the_customer(story, agent=agent)
    if ticket.platform in CANCELING_PLATFORMS and rng.random() < 0.04:
        story.work(WORK_MINUTES[story.priority] / 4)
        story.tell(Change.CANCELED, agent=agent)
    else:
        _resolve(story, agent=agent)
    story.facts[-1] = replace(story.facts[-1], last=True)
    return story.facts


def _reprioritize(story: _Story) -> None:
    index = PRIORITIES.index(story.priority)
    moves = [step for step in (-1, 1) if 0 <= index + step < len(PRIORITIES)]
    story.priority = PRIORITIES[index + story.rng.choice(moves)]
    story.work(30, sigma=0.8)
    story.tell(Change.REPRIORITIZED, priority=story.priority)


def _reassign(story: _Story, organisation: Organisation) -> Agent:
    """Handed to another group, which takes it over (the first one guessed wrong)."""
    groups = [g for g in organisation.groups if g != story.ticket.service.group] or list(organisation.groups)
    group = story.rng.choice(groups)
    agent = story.rng.choice(organisation.agents_of(group))
    story.work(60)
    story.tell(Change.REASSIGNED, agent=agent, group=group)
    return agent


def _ask_the_customer(story: _Story, *, agent: Agent) -> None:
    """Zero or more rounds of question, waiting on the customer, answer, and back to work."""
    rounds = 0
    while rounds < 3 and story.rng.random() < (0.3 if rounds == 0 else 0.2):
        rounds += 1
        story.work(45)
        story.tell(Change.REPLIED, agent=agent)
        story.wait(story.rng.uniform(20, 120))
        story.tell(Change.AWAITING_CUSTOMER, agent=agent)
        story.customer_time(120)
        story.tell(Change.CUSTOMER_REPLIED)
        story.wait(story.rng.uniform(5, 90))  # the platform's automation puts it back to work
        story.tell(Change.RESUMED)


def _resolve(story: _Story, *, agent: Agent) -> None:
    story.work(WORK_MINUTES[story.priority], sigma=0.7)
    story.tell(Change.RESOLVED, agent=agent)
    if story.rng.random() < story.ticket.service.reopen_rate:
        story.customer_time(180)
        story.tell(Change.REOPENED)
        story.work(PICKUP_MINUTES[story.priority])
        story.tell(Change.REPLIED, agent=agent)
        story.work(WORK_MINUTES[story.priority] / 2, sigma=0.7)
        story.tell(Change.RESOLVED, agent=agent)


# --- the timeline -----------------------------------------------------------------------------------


def ticket_number(*, seed: int, series: int, day: date, index: int) -> int:
    """A ticket's number from its series, seed, day and place in the day: unique, and the same in every
    window that holds the day (at most 19 digits, a Zendesk id's size)."""
    if index >= DAY_CAPACITY:
        raise ValueError(f"more than {DAY_CAPACITY} tickets on {day}: lower the ticket volume")
    if not 0 <= (day - ORIGIN).days < 100_000:
        raise ValueError(f"{day} is outside the simulated calendar (from {ORIGIN}, 100,000 days)")
    return ((series * 100_000 + seed) * 100_000 + (day - ORIGIN).days) * DAY_CAPACITY + index


def day_facts(world: World, day: date) -> list[Fact]:
    """Every fact that starts on one UTC day: its outages and its tickets, with their whole lives."""
    day_start = datetime.combine(day, time(), UTC)
    rng = random.Random(f"{world.seed}:day:{day.isoformat()}")
    spans = _outages(world, day, day_start, rng)
    arrivals = [_Arrival(at) for at in _arrivals(world, day_start, rng)]
    arrivals += [report for span in spans for report in _outage_reports(span, rng)]
    facts: list[Fact] = [fact for span in spans for fact in _outage_facts(span)]
    for index, arrival in enumerate(sorted(arrivals, key=lambda a: (a.at, a.service is None))):
        number = ticket_number(seed=world.seed, series=world.series, day=day, index=index)
        facts += _ticket(
            world, arrival, number=number, rng=random.Random(f"{world.seed}:ticket:{day}:{index}")
        )
    return facts


def _outage_facts(span: _OutageSpan) -> list[Fact]:
    return [
        OutageFact(span.started_at, span.outage, Change.OUTAGE_STARTED, seq=0),
        OutageFact(span.ended_at, span.outage, Change.OUTAGE_ENDED, seq=1, last=True),
    ]


def _ticket(world: World, arrival: _Arrival, *, number: int, rng: random.Random) -> list[TicketFact]:
    organisation = world.organisation
    service = (
        arrival.service
        or rng.choices(organisation.services, weights=[s.volume for s in organisation.services])[0]
    )
    customer = rng.choice(organisation.customers)
    kind = "incident" if customer.platform == "servicenow" or rng.random() < 0.7 else "request"
    if arrival.service is not None:
        kind = "incident"
    ticket = Ticket(
        number=number, service=service, customer=customer, kind=kind, title=rng.choice(service.topics)
    )
    priority = arrival.priority or rng.choices(PRIORITIES, weights=PRIORITY_WEIGHTS)[0]
    return lifecycle(organisation, ticket, created_at=arrival.at, priority=priority, rng=rng)


def timeline(world: World, *, start: datetime, end: datetime | None = None) -> Iterator[Fact]:
    """Every fact of tickets and outages that begin in [start, end), in the order they happen.

    Facts later than `end` are left out (the future); `end=None` goes on forever, lazily."""
    pending: list[tuple[datetime, str, int, Fact]] = []
    day = start.astimezone(UTC).date()
    while True:
        day_start = datetime.combine(day, time(), UTC)
        while pending and pending[0][0] < day_start and (end is None or pending[0][0] < end):
            yield heapq.heappop(pending)[3]
        if end is not None and day_start >= end:
            return
        for fact in _begun_in(day_facts(world, day), start=start, end=end):
            heapq.heappush(pending, (fact.occurred_at, fact.key, fact.seq, fact))
        day += timedelta(days=1)


def _begun_in(facts: list[Fact], *, start: datetime, end: datetime | None) -> Iterator[Fact]:
    """The facts of stories that begin in the window, up to its end."""
    begun = {fact.key for fact in facts if fact.seq == 0 and fact.occurred_at >= start}
    return (f for f in facts if f.key in begun and (end is None or f.occurred_at < end))


def live_schedule(facts: Iterable[Fact], *, start: datetime, rate: float) -> Iterator[Fact]:
    """The facts re-stamped one every 1/rate seconds from `start` (a load generator's live clock).

    Their order is kept, except that the next fact of a ticket (or outage) waits until a second after its
    previous one and other facts go first meanwhile: platforms stamp to the second, and two snapshots
    of one ticket in the same second could not be told apart."""
    source = iter(facts)
    ready_at: dict[str, datetime] = {}
    queued: dict[str, deque[Fact]] = {}
    waiting: list[tuple[datetime, int, str]] = []
    tie = itertools.count()
    for slot in itertools.count():
        at = start + timedelta(seconds=slot / rate)
        fact = _next_live(source, at=at, ready_at=ready_at, queued=queued, waiting=waiting, tie=tie)
        if fact is None:
            return
        at = max(at, ready_at.get(fact.key, at))
        if fact.last:
            ready_at.pop(fact.key, None)
        else:
            ready_at[fact.key] = at + ONE_SECOND
        if queued.get(fact.key):
            heapq.heappush(waiting, (at + ONE_SECOND, next(tie), fact.key))
        yield replace(fact, occurred_at=at)


def _next_live(
    source: Iterator[Fact],
    *,
    at: datetime,
    ready_at: dict[str, datetime],
    queued: dict[str, deque[Fact]],
    waiting: list[tuple[datetime, int, str]],
    tie: Iterator[int],
) -> Fact | None:
    """The fact for the slot at `at`: a held-back one now due, else the next one of the source that may go."""
    if waiting and waiting[0][0] <= at:
        return _release(waiting, queued)
    for fact in source:
        if queued.get(fact.key):
            queued[fact.key].append(fact)
        elif fact.key in ready_at and ready_at[fact.key] > at:
            queued[fact.key] = deque([fact])
            heapq.heappush(waiting, (ready_at[fact.key], next(tie), fact.key))
        else:
            return fact
        if waiting and waiting[0][0] <= at:
            return _release(waiting, queued)
    return _release(waiting, queued) if waiting else None


def _release(waiting: list[tuple[datetime, int, str]], queued: dict[str, deque[Fact]]) -> Fact:
    _, _, key = heapq.heappop(waiting)
    fact = queued[key].popleft()
    if not queued[key]:
        del queued[key]
    return fact


# --- the state of a ticket --------------------------------------------------------------------------


@dataclass(frozen=True)
class Comment:
    at: datetime
    agent: Agent | None  # None: the customer wrote it
    after_reopen: bool = False


@dataclass(frozen=True)
class TicketState:
    """A ticket as of one fact: what a platform's snapshot shows, and how the ticket went so far."""

    ticket: Ticket
    status: Status
    priority: str
    group: str
    agent: Agent | None
    created_at: datetime
    updated_at: datetime
    revision: int = 0
    resolved_at: datetime | None = None
    reopen_count: int = 0
    comments: tuple[Comment, ...] = ()
    first_response_at: datetime | None = None
    reassignments: int = 0
    pending_since: datetime | None = None
    # When the ticket waited on the customer (the SLA clocks pause then).
    pending_spans: tuple[tuple[datetime, datetime], ...] = ()


def advance(state: TicketState | None, fact: TicketFact) -> TicketState:
    """The state after one fact (the first fact, OPENED, starts from None)."""
    if state is None:
        return TicketState(
            ticket=fact.ticket,
            status=Status.NEW,
            priority=fact.priority or "P3",
            group=fact.group or fact.ticket.service.group,
            agent=None,
            created_at=fact.occurred_at,
            updated_at=fact.occurred_at,
        )
    at = fact.occurred_at
    status = STATUS_AFTER.get(fact.change, state.status)
    state = replace(
        state,
        status=status,
        updated_at=at,
        revision=state.revision + 1,
        priority=fact.priority or state.priority,
        group=fact.group or state.group,
        agent=fact.agent or state.agent,
        resolved_at=at if status is Status.RESOLVED else None,
        reopen_count=state.reopen_count + (fact.change is Change.REOPENED),
        reassignments=state.reassignments + (fact.change is Change.REASSIGNED),
    )
    return _with_waiting(_with_comment(state, fact), status=status, at=at)


def _with_comment(state: TicketState, fact: TicketFact) -> TicketState:
    if fact.change is Change.REPLIED:
        return replace(
            state,
            comments=(*state.comments, Comment(fact.occurred_at, fact.agent, state.reopen_count > 0)),
            first_response_at=state.first_response_at or fact.occurred_at,
        )
    if fact.change is Change.CUSTOMER_REPLIED:
        return replace(state, comments=(*state.comments, Comment(fact.occurred_at, None)))
    return state


def _with_waiting(state: TicketState, *, status: Status, at: datetime) -> TicketState:
    if status is Status.PENDING and state.pending_since is None:
        return replace(state, pending_since=at)
    if status is not Status.PENDING and state.pending_since is not None:
        spans = (*state.pending_spans, (state.pending_since, at))
        return replace(state, pending_since=None, pending_spans=spans)
    return state


@dataclass(frozen=True)
class OutageState:
    outage: Outage
    started_at: datetime
    ended_at: datetime | None = None


def advance_outage(state: OutageState | None, fact: OutageFact) -> OutageState:
    """The outage after one of its facts."""
    if state is None:
        return OutageState(outage=fact.outage, started_at=fact.occurred_at)
    return replace(state, ended_at=fact.occurred_at if fact.change is Change.OUTAGE_ENDED else None)


class Ledger:
    """The current state of every ticket and outage whose story is not over: folds facts in order."""

    def __init__(self) -> None:
        self._tickets: dict[int, TicketState] = {}
        self._outages: dict[str, OutageState] = {}

    def ticket(self, fact: TicketFact) -> tuple[TicketState | None, TicketState]:
        """The ticket before and after the fact; a finished story is forgotten."""
        before = self._tickets.get(fact.ticket.number)
        after = advance(before, fact)
        if fact.last:
            self._tickets.pop(fact.ticket.number, None)
        else:
            self._tickets[fact.ticket.number] = after
        return before, after

    def outage(self, fact: OutageFact) -> OutageState:
        """The outage after the fact; an ended one is forgotten."""
        after = advance_outage(self._outages.get(fact.outage.id), fact)
        if fact.last:
            self._outages.pop(fact.outage.id, None)
        else:
            self._outages[fact.outage.id] = after
        return after

    def __len__(self) -> int:
        return len(self._tickets) + len(self._outages)


def _whole(moment: datetime) -> datetime:
    """To the whole second: ServiceNow stamps to the second, and so does the world."""
    return moment.replace(microsecond=0)
