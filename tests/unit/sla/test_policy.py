"""SLA policies parsed from YAML-style definitions: matching, targets, defaults and errors naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml

from bothways.events import Priority, StatusCategory, TicketChanged, TicketKind
from services.sla.policy import (
    DEFAULT_WARNINGS,
    Metric,
    Policy,
    PolicyBook,
    PolicyConfigError,
    ReopenRule,
    SlaConfig,
    Target,
)

pytestmark = pytest.mark.unit

POLICIES_FILE = Path(__file__).parents[3] / "services" / "sla" / "policies.yaml"


def config(**overrides: Any) -> dict[str, Any]:
    """A valid policy definition with top-level fields replaced."""
    base: dict[str, Any] = {
        "name": "standard",
        "version": 2,
        "metrics": {"resolution": {"calendar": "office", "targets": {"P1": "4h", "P3": "2d"}}},
    }
    return {**base, **overrides}


def resolution(**fields: Any) -> dict[str, Any]:
    """A valid definition whose resolution metric has fields replaced."""
    return config(metrics={"resolution": {"calendar": "office", "targets": {"P3": "8h"}, **fields}})


def ticket(**fields: Any) -> TicketChanged:
    moment = datetime(2026, 11, 2, 8, tzinfo=UTC)
    base: dict[str, Any] = {
        "ticket_key": "jira:SUP-1",
        "source": "jira",
        "external_id": "SUP-1",
        "occurred_at": moment,
        "created_at": moment,
        "status": "Open",
        "status_category": StatusCategory.OPEN,
        "priority": Priority.P3,
    }
    return TicketChanged(**{**base, **fields})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4h", Target(seconds=4 * 3600)),
        ("30m", Target(seconds=1800)),
        ("90s", Target(seconds=90)),
        ("1h30m", Target(seconds=5400)),
        (600, Target(seconds=600)),
        ("2d", Target(business_days=2)),
    ],
)
def test_targets_read_business_seconds_minutes_hours_or_days(text: object, expected: Target) -> None:
    assert Target.parse(text) == expected


@pytest.mark.parametrize("text", ["", "4", "4x", "0h", "1d2h", "-3h", True, 1.5, None])
def test_malformed_or_empty_targets_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match=r"."):
        Target.parse(text)


def test_metric_defaults_pause_on_pending_warn_at_50_75_90_and_open_a_new_cycle_on_reopen() -> None:
    rules = Policy.from_config(config()).metric(Metric.RESOLUTION)
    assert rules is not None
    assert rules.pause_categories == frozenset({StatusCategory.PENDING})
    assert rules.warnings == DEFAULT_WARNINGS == (Fraction(1, 2), Fraction(3, 4), Fraction(9, 10))
    assert rules.reopen is ReopenRule.NEW_CYCLE
    assert rules.target_for(Priority.P2) is None
    assert rules.target_for(Priority.P3) == Target(business_days=2)


def test_first_response_resumes_on_reopen_by_default() -> None:
    policy = Policy.from_config(
        config(metrics={"first_response": {"calendar": "office", "targets": {"P1": "1h"}}})
    )
    rules = policy.metric(Metric.FIRST_RESPONSE)
    assert rules is not None
    assert rules.reopen is ReopenRule.RESUME


def test_pause_statuses_match_case_insensitively_besides_the_categories() -> None:
    rules = Policy.from_config(resolution(pause={"statuses": ["Waiting for Vendor"]})).metrics[0]
    assert rules.pauses_on(status="waiting for vendor", category=StatusCategory.OPEN)
    assert rules.pauses_on(status="Pending", category=StatusCategory.PENDING)
    assert not rules.pauses_on(status="In Progress", category=StatusCategory.OPEN)


def test_default_target_covers_tickets_without_a_named_priority() -> None:
    rules = Policy.from_config(resolution(targets={"P1": "1h", "default": "8h"})).metrics[0]
    assert rules.target_for(None) == rules.target_for(Priority.P4) == Target(seconds=8 * 3600)


def test_percentages_are_read_exactly() -> None:
    rules = Policy.from_config(resolution(warnings=["87.5%", 95])).metrics[0]
    assert rules.warnings == (Fraction(7, 8), Fraction(19, 20))


def test_first_matching_policy_wins() -> None:
    book = PolicyBook.from_config(
        [
            config(name="major", match={"kind": "incident", "priority": ["P1", "P2"]}),
            config(name="acme", match={"organization": "ACME", "business_service": ["mail", "vpn"]}),
            config(name="catch-all"),
        ]
    )
    assert book.match(ticket(priority=Priority.P1)).name == "major"  # type: ignore[union-attr]
    assert book.match(ticket(organization="ACME", business_service="vpn")).name == "acme"  # type: ignore[union-attr]
    assert book.match(ticket(kind=TicketKind.REQUEST, priority=Priority.P1)).name == "catch-all"  # type: ignore[union-attr]


def test_policy_without_a_catch_all_matches_nothing_else() -> None:
    book = PolicyBook.from_config([config(match={"source": ["zendesk"]})])
    assert book.match(ticket()) is None


def test_policy_carries_its_version() -> None:
    assert Policy.from_config(config(version=7)).version == 7
    assert Policy.from_config({k: v for k, v in config().items() if k != "version"}).version == 1


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        (resolution(targets={"P1": "4x"}), "metrics.resolution.targets.P1"),
        (resolution(targets={"P9": "4h"}), "metrics.resolution.targets.P9"),
        (resolution(targets={}), "metrics.resolution.targets"),
        (resolution(calendar=""), "metrics.resolution.calendar"),
        (resolution(warnings=[75, 50]), "metrics.resolution.warnings[1]"),
        (resolution(warnings=[100]), "metrics.resolution.warnings[0]"),
        (resolution(reopen="restart"), "metrics.resolution.reopen"),
        (resolution(pause={"categories": ["sleeping"]}), "metrics.resolution.pause.categories"),
        (resolution(pause={"statuses": "x", "when": 1}), "metrics.resolution.pause.when"),
        (resolution(target={"P1": "1h"}), "metrics.resolution.target"),
        (config(metrics={"resolve": {}}), "metrics.resolve"),
        (config(metrics={}), "metrics"),
        (config(match={"priority": ["P0"]}), "match.priority"),
        (config(match={"team": "x"}), "match.team"),
        (config(version=0), "version"),
        (config(name=None), "name"),
        (config(owner="me"), "owner"),
    ],
)
def test_bad_definition_raises_an_error_naming_the_field(definition: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyConfigError) as caught:
        Policy.from_config(definition)
    assert caught.value.field == field


def test_error_inside_a_book_names_the_policy_position() -> None:
    with pytest.raises(PolicyConfigError) as caught:
        PolicyBook.from_config([config(), resolution(targets={"P1": "soon"})])
    assert caught.value.field == "policies[1].metrics.resolution.targets.P1"


def test_same_policy_name_twice_is_refused() -> None:
    with pytest.raises(PolicyConfigError, match="given twice"):
        PolicyBook.from_config([config(), config()])


def test_policy_naming_a_calendar_that_is_not_defined_is_refused() -> None:
    calendars = [{"name": "elsewhere", "timezone": "UTC", "weekly": {"mon": ["09:00-17:00"]}}]
    with pytest.raises(PolicyConfigError) as caught:
        SlaConfig.from_config({"calendars": calendars, "policies": [config()]})
    assert caught.value.field == "policies[0].metrics.resolution.calendar"


def test_bad_calendar_is_reported_under_its_position() -> None:
    with pytest.raises(PolicyConfigError) as caught:
        SlaConfig.from_config({"calendars": [{"name": "office", "timezone": "Mars/Base"}], "policies": []})
    assert caught.value.field == "calendars[0].timezone"


def test_packaged_example_file_parses_and_every_policy_finds_its_calendars() -> None:
    sla = SlaConfig.from_config(yaml.safe_load(POLICIES_FILE.read_text(encoding="utf-8")))
    assert [p.name for p in sla.policies.policies] == ["major-incidents", "standard"]
    assert set(sla.calendars) == {"office-berlin", "around-the-clock"}
    assert sla.policies.match(ticket(priority=Priority.P1)).name == "major-incidents"  # type: ignore[union-attr]


# The API's parsers (services.sla.rulebook) give the same answers as the file's, with JSON definitions.


def test_api_parsers_refuse_what_the_file_parser_refuses_naming_the_same_field() -> None:
    from services.sla.rulebook import parse_calendars, parse_policies

    office = {"name": "office", "timezone": "UTC", "weekly": {"mon": ["09:00-17:00"]}}
    with pytest.raises(PolicyConfigError) as caught:
        parse_calendars([office, office])
    assert caught.value.field == "calendars[1].name"
    with pytest.raises(PolicyConfigError) as caught:
        parse_policies([config()], calendars={"elsewhere"})
    assert caught.value.field == "policies[0].metrics.resolution.calendar"
    with pytest.raises(PolicyConfigError) as caught:
        parse_policies([config(), config()], calendars={"office"})
    assert caught.value.field == "policies[1].name"


def test_api_parsers_return_each_definition_as_json_next_to_what_it_parsed_to() -> None:
    from services.sla.rulebook import parse_calendars, parse_policies

    closed = {"name": "office", "timezone": "UTC", "weekly": {"mon": ["09:00-17:00"]}, "custom_holidays": []}
    [(calendar, definition)] = parse_calendars(
        [{**closed, "custom_holidays": [datetime(2026, 12, 24).date()]}]
    )
    assert calendar.name == "office"
    assert definition["custom_holidays"] == ["2026-12-24"]
    [(policy, policy_definition)] = parse_policies([config()], calendars={"office"})
    assert (policy.name, policy.version) == ("standard", 2)
    assert policy_definition == config()
