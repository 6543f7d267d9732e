"""Survey rules: the packaged file, defaults, errors naming the entry, rule matching and seeded sampling."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bothways.events import SurveyKind
from services.survey.rules import (
    DEFAULT_RULES_FILE,
    RulesConfigError,
    SurveyRules,
    TicketFacts,
    load_rules,
    parse_duration,
    parse_rules,
    sampled,
)
from services.survey.scoring import CsatScale

pytestmark = pytest.mark.unit

EMAIL_P3 = TicketFacts(source="jira", kind="incident", business_service="email", priority="P3")


def test_the_packaged_rules_file_says_what_the_defaults_are() -> None:
    assert load_rules(DEFAULT_RULES_FILE) == SurveyRules()


def test_the_defaults_are_the_issue_s_defaults() -> None:
    rules = parse_rules({})
    [rule] = rules.csat_rules
    assert (rule.delay, rule.sampling_percent, rule.expiry, rule.scale) == (
        timedelta(hours=1),
        100.0,
        timedelta(days=7),
        CsatScale.FIVE_POINT,
    )
    assert rules.fatigue.cooldown == {SurveyKind.CSAT: timedelta(days=30), SurveyKind.NPS: timedelta(days=90)}
    assert rules.fatigue.max_per_30_days is None
    assert rules.followup.due == timedelta(hours=48)
    assert rules.min_responses == 10


def test_the_first_matching_rule_applies_and_an_unmatched_ticket_has_none() -> None:
    rules = parse_rules(
        {
            "csat": {
                "rules": [
                    {"name": "no-changes", "match": {"kind": "change"}, "survey": False},
                    {
                        "name": "email",
                        "match": {"business_service": ["email"], "priority": ["P3", "P4"]},
                        "delay": "24h",
                    },
                    {"name": "servicenow", "match": {"source": "servicenow"}},
                ]
            }
        }
    )
    assert rules.rule_for(EMAIL_P3).name == "email"
    assert rules.rule_for(EMAIL_P3).delay == timedelta(hours=24)
    change = TicketFacts(source="jira", kind="change", business_service="email", priority="P3")
    assert rules.rule_for(change).name == "no-changes"
    assert rules.rule_for(TicketFacts("servicenow", "incident", "vpn", "P1")).name == "servicenow"
    assert rules.rule_for(TicketFacts("jira", "incident", "vpn", "P1")) is None


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"csat": {"rules": [{"name": "a", "delay": "soon"}]}}, "csat.rules[0].delay"),
        ({"csat": {"rules": [{"name": "a", "sampling_percent": 120}]}}, "csat.rules[0].sampling_percent"),
        ({"csat": {"rules": [{"name": "a", "scale": "ten_point"}]}}, "csat.rules[0].scale"),
        ({"csat": {"rules": [{"name": "a", "match": {"team": "x"}}]}}, "csat.rules[0].match.team"),
        ({"csat": {"rules": [{"name": "a"}, {"name": "a"}]}}, "csat.rules"),
        ({"csat": {"rules": [{"name": "a", "expiry": "0s"}]}}, "csat.rules[0].expiry"),
        ({"csat": {"reasons": ["slow", "slow"]}}, "csat.reasons"),
        ({"fatigue": {"cooldown": {"csat": "a month"}}}, "fatigue.cooldown.csat"),
        ({"fatigue": {"max_per_30_days": 0}}, "fatigue.max_per_30_days"),
        (
            {"followup": {"calendar": {"name": "x", "timezone": "Mars/Olympus", "weekly": {}}}},
            "followup.calendar.timezone",
        ),
        ({"results": {"min_responses": 0}}, "results.min_responses"),
        ({"surveys": {}}, "surveys"),
    ],
)
def test_an_invalid_entry_is_named(document: dict, field: str) -> None:
    with pytest.raises(RulesConfigError) as error:
        parse_rules(document)
    assert error.value.field == field


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("1h30m", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        (3600, timedelta(hours=1)),
        ("0s", timedelta(0)),
    ],
)
def test_durations(text: object, expected: timedelta) -> None:
    assert parse_duration(text, field="x") == expected


def test_sampling_is_seeded_stable_and_near_its_rate() -> None:
    keys = [f"jira:SUP-{n}#1" for n in range(10_000)]
    first = [sampled(seed="s1", key=key, percent=25) for key in keys]
    again = [sampled(seed="s1", key=key, percent=25) for key in keys]
    other_seed = [sampled(seed="s2", key=key, percent=25) for key in keys]
    assert first == again
    assert first != other_seed
    assert 0.23 < sum(first) / len(keys) < 0.27
    assert all(sampled(seed="s1", key=key, percent=100) for key in keys[:100])
    assert not any(sampled(seed="s1", key=key, percent=0) for key in keys[:100])


def test_a_lower_rate_samples_a_subset_of_a_higher_one() -> None:
    # The same hash is compared with the rate: raising the rate only adds candidates.
    keys = [f"zendesk:{n}#1" for n in range(2_000)]
    low = {key for key in keys if sampled(seed="s", key=key, percent=10)}
    high = {key for key in keys if sampled(seed="s", key=key, percent=50)}
    assert low < high
