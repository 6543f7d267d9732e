"""Merged outages of a service keep their ids across corrections, and each change is announced once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.sla.availability import Impact, ServiceRecord
from services.sla.catalogue import BusinessService
from services.sla.openslo import openslo_documents
from services.sla.outage_ledger import ChangeKind, Outage, OutageStatus, merged_outages, reconcile
from services.sla.signals import Episode

pytestmark = pytest.mark.unit

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=6)
OPEN, RESTORED, WITHDRAWN = OutageStatus.OPEN, OutageStatus.RESTORED, OutageStatus.WITHDRAWN


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def outage(
    start: float,
    end: float | None,
    *,
    signals: tuple[str, ...] = ("a",),
    impact: Impact = Impact.MAJOR,
    **fields,
) -> Outage:
    status = fields.pop("status", OPEN if end is None else RESTORED)
    return Outage(at(start), None if end is None else at(end), impact, signals, status, **fields)


def merged(episodes: dict[str, list[Episode]]) -> list[Outage]:
    record = ServiceRecord(outages=tuple(e.signal() for stretch in episodes.values() for e in stretch))
    return merged_outages(record, episodes=episodes, now=NOW)


def test_overlapping_signals_merge_into_one_outage_with_the_worst_impact_and_both_signals() -> None:
    outages = merged(
        {
            "alertmanager:fp": [Episode(at(0), at(30), Impact.PARTIAL)],
            "ticket:jira:INC-1": [Episode(at(15), at(45), Impact.MAJOR)],
            "pagerduty:P1": [Episode(at(120), None, Impact.PARTIAL)],
        }
    )
    assert outages == [
        Outage(at(0), at(45), Impact.MAJOR, ("alertmanager:fp", "ticket:jira:INC-1"), RESTORED),
        Outage(at(120), None, Impact.PARTIAL, ("pagerduty:P1",), OPEN),
    ]


def test_a_degraded_only_stretch_is_no_outage_by_default() -> None:
    assert merged({"x": [Episode(at(0), at(30), Impact.DEGRADED)]}) == []


def test_a_new_outage_is_opened() -> None:
    changes = reconcile([], [outage(0, None)], now=NOW)
    assert [(c.kinds, c.outage.revision) for c in changes] == [((ChangeKind.OPENED,), 1)]


def test_an_outage_reported_after_it_ended_is_opened_and_closed() -> None:
    changes = reconcile([], [outage(0, 30)], now=NOW)
    assert [(c.kinds, c.outage.revision, c.outage.id) for c in changes] == [
        ((ChangeKind.OPENED, ChangeKind.CLOSED), 2, None)
    ]


def test_restoration_closes_the_outage_under_its_id() -> None:
    changes = reconcile([outage(0, None, id=7, revision=1)], [outage(0, 30)], now=NOW)
    assert [(c.kinds, c.outage.id, c.outage.revision, c.outage.status) for c in changes] == [
        ((ChangeKind.CLOSED,), 7, 2, RESTORED)
    ]


def test_a_backdated_start_updates_the_outage_under_its_id() -> None:
    changes = reconcile([outage(0, 30, id=7, revision=2)], [outage(-40, 30)], now=NOW)
    assert [(c.kinds, c.outage.id, c.outage.started_at) for c in changes] == [
        ((ChangeKind.UPDATED,), 7, at(-40))
    ]


def test_two_outages_merged_by_a_correction_keep_the_older_id_and_withdraw_the_other() -> None:
    stored = [outage(0, 30, id=1, revision=2), outage(60, 90, id=2, revision=2, signals=("b",))]
    changes = reconcile(stored, [outage(0, 90, signals=("a", "b"))], now=NOW)
    assert sorted((c.outage.id, c.outage.status, c.kinds) for c in changes) == [
        (1, RESTORED, (ChangeKind.UPDATED,)),
        (2, WITHDRAWN, (ChangeKind.UPDATED,)),
    ]


def test_an_outage_whose_signals_are_gone_is_withdrawn_and_stays_so() -> None:
    changes = reconcile([outage(0, 30, id=3, revision=2)], [], now=NOW)
    assert [(c.outage.id, c.outage.status, c.outage.revision) for c in changes] == [(3, WITHDRAWN, 3)]
    assert reconcile([changes[0].outage], [], now=NOW) == []


def test_nothing_changed_announces_nothing() -> None:
    assert reconcile([outage(0, 30, id=1, revision=2)], [outage(0, 30)], now=NOW) == []


# OpenSLO


def test_the_openslo_slo_takes_the_two_counters_the_objective_and_the_sre_burn_pairs() -> None:
    service = BusinessService(id="web_shop", name="Web shop", objective_percent=99.5, owner_group="Commerce")
    document_service, slo = openslo_documents(service, timezone="Europe/Berlin")
    assert document_service["metadata"]["name"] == "web-shop"
    assert slo["apiVersion"] == "openslo/v1"
    assert slo["spec"]["service"] == "web-shop"
    assert slo["spec"]["objectives"] == [{"displayName": "99.5 %", "target": pytest.approx(0.995)}]
    assert slo["spec"]["timeWindow"][0]["calendar"]["timeZone"] == "Europe/Berlin"
    ratio = slo["spec"]["indicator"]["spec"]["ratioMetric"]
    assert ratio["counter"] is True
    assert ratio["bad"]["metricSource"]["spec"]["query"] == (
        'bothways_business_service_weighted_downtime_seconds_total{business_service="web_shop"}'
    )
    conditions = [c["spec"]["condition"] for c in slo["spec"]["alertPolicies"][0]["spec"]["conditions"]]
    assert [(c["threshold"], c["lookbackWindow"]) for c in conditions] == [(14.4, "1h"), (6.0, "6h")]
