"""One signal's episodes folded from its events, and the outage a major-incident ticket stands for."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from bothways.events import TicketChanged
from services.sla.availability import Impact
from services.sla.catalogue import MajorIncidentRule
from services.sla.signals import (
    AnomalyKind,
    Episode,
    SignalEvent,
    SignalKind,
    fold_signal,
    major_incident_episode,
    plausible,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def event(
    kind: SignalKind,
    *,
    occurred: float,
    start: float,
    end: float | None = None,
    impact: Impact = Impact.MAJOR,
    planned: bool = False,
    event_id: str | None = None,
) -> SignalEvent:
    return SignalEvent(
        event_id=event_id or f"{kind}-{occurred}",
        kind=kind,
        occurred_at=at(occurred),
        started_at=at(start),
        ended_at=None if end is None else at(end),
        impact=impact,
        planned=planned,
    )


STARTED, UPDATED, ENDED = SignalKind.STARTED, SignalKind.UPDATED, SignalKind.ENDED


def test_a_start_and_its_end_make_one_episode() -> None:
    folded = fold_signal([event(STARTED, occurred=0, start=0), event(ENDED, occurred=30, start=0, end=30)])
    assert folded.episodes == (Episode(at(0), at(30), Impact.MAJOR),)
    assert folded.anomalies == ()


def test_arrival_order_does_not_matter_only_occurred_at_does() -> None:
    events = [
        event(STARTED, occurred=0, start=0),
        event(UPDATED, occurred=10, start=0, impact=Impact.PARTIAL),
        event(ENDED, occurred=30, start=0, end=30, impact=Impact.PARTIAL),
        event(STARTED, occurred=60, start=60),
        event(ENDED, occurred=70, start=60, end=70),
    ]
    expected = fold_signal(events)
    for seed in range(5):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        assert fold_signal(shuffled) == expected
    assert [(e.started_at, e.ended_at) for e in expected.episodes] == [(at(0), at(30)), (at(60), at(70))]


def test_a_backdated_start_on_an_open_outage_moves_its_start() -> None:
    folded = fold_signal([event(STARTED, occurred=0, start=0), event(UPDATED, occurred=5, start=-40)])
    assert folded.episodes == (Episode(at(-40), None, Impact.MAJOR),)


def test_a_backdated_start_after_the_end_corrects_the_ended_outage_instead_of_opening_one() -> None:
    folded = fold_signal(
        [
            event(STARTED, occurred=0, start=0),
            event(ENDED, occurred=20, start=0, end=20),
            event(UPDATED, occurred=120, start=-40),
        ]
    )
    assert folded.episodes == (Episode(at(-40), at(20), Impact.MAJOR),)
    assert folded.anomalies == ()


def test_a_reclassification_after_the_end_changes_the_whole_outage() -> None:
    folded = fold_signal(
        [
            event(STARTED, occurred=0, start=0),
            event(ENDED, occurred=20, start=0, end=20),
            event(UPDATED, occurred=90, start=0, impact=Impact.PARTIAL, planned=True),
        ]
    )
    assert folded.episodes == (Episode(at(0), at(20), Impact.PARTIAL, planned=True),)


def test_pagerduty_reopen_is_a_second_stretch_and_the_later_resolve_closes_it_not_the_first() -> None:
    # PagerDuty sends the incident's creation as the start of every event but the reopen.
    folded = fold_signal(
        [
            event(STARTED, occurred=0, start=0),
            event(ENDED, occurred=30, start=0, end=30),
            event(STARTED, occurred=60, start=60),
            event(ENDED, occurred=90, start=0, end=90),
        ]
    )
    assert [(e.started_at, e.ended_at) for e in folded.episodes] == [(at(0), at(30)), (at(60), at(90))]


def test_an_alert_firing_again_after_its_resolution_opens_a_new_stretch() -> None:
    folded = fold_signal(
        [
            event(STARTED, occurred=0, start=0),
            event(ENDED, occurred=10, start=0, end=10),
            event(STARTED, occurred=50, start=50),
        ]
    )
    assert folded.episodes == (Episode(at(0), at(10), Impact.MAJOR), Episode(at(50), None, Impact.MAJOR))


def test_restating_the_same_outage_under_other_ids_changes_nothing() -> None:
    once = [event(STARTED, occurred=0, start=0), event(ENDED, occurred=30, start=0, end=30)]
    again = [
        event(STARTED, occurred=0, start=0, event_id="x1"),
        event(ENDED, occurred=30, start=0, end=30, event_id="x2"),
        event(ENDED, occurred=31, start=0, end=30, event_id="x3"),
    ]
    assert fold_signal(once + again).episodes == fold_signal(once).episodes


def test_an_end_without_a_start_counts_from_its_own_start_and_is_reported() -> None:
    folded = fold_signal([event(ENDED, occurred=30, start=0, end=30, event_id="lonely")])
    assert folded.episodes == (Episode(at(0), at(30), Impact.MAJOR),)
    assert [(a.kind, a.event_id) for a in folded.anomalies] == [(AnomalyKind.END_WITHOUT_START, "lonely")]


def test_an_end_before_its_start_is_reported_and_not_counted() -> None:
    folded = fold_signal([event(ENDED, occurred=30, start=30, end=0, event_id="backwards")])
    assert folded.episodes == ()
    assert [a.kind for a in folded.anomalies] == [AnomalyKind.ENDS_BEFORE_START]
    assert "before it starts" in folded.anomalies[0].detail


def test_an_end_before_the_start_of_the_open_outage_leaves_it_open() -> None:
    folded = fold_signal(
        [event(STARTED, occurred=0, start=60), event(ENDED, occurred=70, start=60, end=10, event_id="b")]
    )
    assert folded.episodes == (Episode(at(60), None, Impact.MAJOR),)
    assert [a.kind for a in folded.anomalies] == [AnomalyKind.ENDS_BEFORE_START]


def test_an_end_without_an_end_time_ends_when_it_occurred_and_is_reported() -> None:
    folded = fold_signal([event(STARTED, occurred=0, start=0), event(ENDED, occurred=45, start=0)])
    assert folded.episodes == (Episode(at(0), at(45), Impact.MAJOR),)
    assert [a.kind for a in folded.anomalies] == [AnomalyKind.END_WITHOUT_END_TIME]


def test_an_update_for_an_outage_never_started_opens_it_and_is_reported() -> None:
    folded = fold_signal([event(UPDATED, occurred=5, start=0)])
    assert folded.episodes == (Episode(at(0), None, Impact.MAJOR),)
    assert [a.kind for a in folded.anomalies] == [AnomalyKind.UPDATE_WITHOUT_START]


def test_starts_before_1970_or_days_ahead_are_reported_and_not_counted() -> None:
    now = at(0)
    zero_date = Episode(datetime(1, 1, 1, tzinfo=UTC), at(1), Impact.MAJOR)
    ahead = Episode(now + timedelta(days=2), None, Impact.MAJOR)
    skewed = Episode(now + timedelta(minutes=2), None, Impact.MAJOR)
    kept, anomalies = plausible([zero_date, ahead, skewed], now=now)
    assert kept == (skewed,)
    assert [a.kind for a in anomalies] == [AnomalyKind.IMPLAUSIBLE_TIME] * 2


# Major incidents from tickets

RULE = MajorIncidentRule(
    priorities={"P1": "major", "P2": "partial"},
    impact_start_field="custom.impact_started_at",
    restored_field="custom.service_restored_at",
)


def ticket(**fields: object) -> TicketChanged:
    base: dict[str, object] = {
        "ticket_key": "jira:INC-1",
        "source": "jira",
        "external_id": "INC-1",
        "occurred_at": at(30),
        "created_at": at(10),
        "status": "In Progress",
        "status_category": "open",
        "priority": "P1",
        "business_service": "webshop",
    }
    return TicketChanged.model_validate(base | fields)


def test_an_open_p1_is_an_open_outage_from_its_impact_start() -> None:
    episode, anomalies = major_incident_episode(
        ticket(custom={"impact_started_at": at(-5).isoformat()}), rule=RULE
    )
    assert episode == Episode(at(-5), None, Impact.MAJOR)
    assert anomalies == []


def test_without_an_impact_start_the_outage_starts_at_creation_and_ends_at_resolution() -> None:
    resolved = ticket(status="Resolved", status_category="resolved", resolved_at=at(50))
    assert major_incident_episode(resolved, rule=RULE) == (Episode(at(10), at(50), Impact.MAJOR), [])


def test_service_restored_ends_the_outage_before_the_ticket_is_resolved() -> None:
    restored = ticket(custom={"service_restored_at": at(25).isoformat()})
    episode, _ = major_incident_episode(restored, rule=RULE)
    assert episode == Episode(at(10), at(25), Impact.MAJOR)


def test_a_p2_counts_at_the_impact_its_priority_maps_to() -> None:
    episode, _ = major_incident_episode(ticket(priority="P2"), rule=RULE)
    assert episode is not None
    assert episode.impact is Impact.PARTIAL


@pytest.mark.parametrize(
    "fields",
    [
        {"priority": "P3"},
        {"business_service": None},
        {"status": "Canceled", "status_category": "canceled"},
        {"kind": "request"},
    ],
    ids=["lower-priority", "no-service", "canceled", "not-an-incident"],
)
def test_a_ticket_outside_the_rule_is_no_outage(fields: dict[str, object]) -> None:
    assert major_incident_episode(ticket(**fields), rule=RULE) == (None, [])


def test_an_unreadable_impact_start_is_reported_and_creation_used() -> None:
    episode, anomalies = major_incident_episode(ticket(custom={"impact_started_at": "yesterday"}), rule=RULE)
    assert episode == Episode(at(10), None, Impact.MAJOR)
    assert [a.kind for a in anomalies] == [AnomalyKind.INVALID_TICKET_FIELD]
    assert "custom.impact_started_at" in anomalies[0].detail


def test_a_restoration_before_the_impact_start_is_reported_and_not_counted() -> None:
    backwards = ticket(
        custom={"impact_started_at": at(20).isoformat(), "service_restored_at": at(5).isoformat()}
    )
    episode, anomalies = major_incident_episode(backwards, rule=RULE)
    assert episode is None
    assert [a.kind for a in anomalies] == [AnomalyKind.ENDS_BEFORE_START]
