"""Transactional CSAT decided for one resolution: delay, sampling, one per resolution, age, address, budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bothways.events import SurveyKind
from services.survey.csat import Outcome, Resolution, decide
from services.survey.fatigue import PastInvitation, ThrottleCode
from services.survey.rules import TicketFacts, parse_rules, sampled

pytestmark = pytest.mark.unit

RESOLVED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
RULES = parse_rules({})


def resolution(
    cycle: int = 1, *, key: str = "jira:SUP-1", reachable: bool = True, **ticket: str
) -> Resolution:
    facts = {"source": "jira", "kind": "incident", "business_service": "email", "priority": "P3", **ticket}
    return Resolution(key, cycle, TicketFacts(**facts), RESOLVED, reachable)


def test_the_survey_is_sent_one_hour_after_the_resolution() -> None:
    verdict = decide(resolution(), rules=RULES, now=RESOLVED, history=[], surveyed_cycles=())
    assert verdict.outcome is Outcome.SCHEDULED
    assert verdict.send_at == RESOLVED + timedelta(hours=1)


def test_a_resolution_seen_late_is_sent_at_once_and_one_seen_too_late_not_at_all() -> None:
    late = decide(
        resolution(), rules=RULES, now=RESOLVED + timedelta(hours=5), history=[], surveyed_cycles=()
    )
    assert late.send_at == RESOLVED + timedelta(hours=5)
    stale = decide(
        resolution(), rules=RULES, now=RESOLVED + timedelta(days=8), history=[], surveyed_cycles=()
    )
    assert stale.outcome is Outcome.THROTTLED
    assert stale.throttle.code is ThrottleCode.TOO_OLD


def test_tickets_no_rule_surveys_are_excluded_not_throttled() -> None:
    rules = parse_rules(
        {"csat": {"rules": [{"name": "no-changes", "match": {"kind": "change"}, "survey": False}]}}
    )
    assert (
        decide(resolution(kind="change"), rules=rules, now=RESOLVED, history=[], surveyed_cycles=()).outcome
        is Outcome.EXCLUDED
    )
    assert (
        decide(resolution(), rules=rules, now=RESOLVED, history=[], surveyed_cycles=()).outcome
        is Outcome.EXCLUDED
    )


def test_a_resolved_again_ticket_is_surveyed_again_only_if_the_rule_says_so() -> None:
    once = decide(resolution(2), rules=RULES, now=RESOLVED, history=[], surveyed_cycles={1})
    assert once.outcome is Outcome.THROTTLED
    assert once.throttle.code is ThrottleCode.ALREADY_SURVEYED
    each = parse_rules({"csat": {"rules": [{"name": "each", "each_resolution": True}]}})
    assert (
        decide(resolution(2), rules=each, now=RESOLVED, history=[], surveyed_cycles={1}).outcome
        is Outcome.SCHEDULED
    )
    # The first cycle's survey was never sent (a reopen canceled it): the second cycle is surveyed.
    assert (
        decide(resolution(2), rules=RULES, now=RESOLVED, history=[], surveyed_cycles=()).outcome
        is Outcome.SCHEDULED
    )


def test_sampling_follows_the_seeded_hash() -> None:
    rules = parse_rules(
        {"csat": {"rules": [{"name": "half", "sampling_percent": 50}], "sampling_seed": "q4"}}
    )
    outcomes = {}
    for n in range(200):
        candidate = resolution(key=f"jira:SUP-{n}")
        verdict = decide(candidate, rules=rules, now=RESOLVED, history=[], surveyed_cycles=())
        expected = sampled(seed="q4", key=f"jira:SUP-{n}#1", percent=50)
        assert (verdict.outcome is Outcome.SCHEDULED) == expected
        outcomes[verdict.outcome] = outcomes.get(verdict.outcome, 0) + 1
        if not expected:
            assert verdict.throttle.code is ThrottleCode.SAMPLING
    assert 70 < outcomes[Outcome.SCHEDULED] < 130


def test_no_address_and_the_fatigue_budget_throttle_with_their_reason() -> None:
    unreachable = decide(
        resolution(reachable=False), rules=RULES, now=RESOLVED, history=[], surveyed_cycles=()
    )
    assert unreachable.throttle.code is ThrottleCode.NO_ADDRESS
    recent_nps = [PastInvitation(SurveyKind.NPS, RESOLVED - timedelta(days=3))]
    tired = decide(resolution(), rules=RULES, now=RESOLVED, history=recent_nps, surveyed_cycles=())
    assert tired.outcome is Outcome.THROTTLED
    assert tired.throttle.code is ThrottleCode.COOLDOWN
