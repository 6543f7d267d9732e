"""The business service catalogue: validation naming the field, and which service a signal belongs to."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from bothways.events import TicketChanged
from services.sla.availability import Interval
from services.sla.catalogue import (
    BusinessService,
    Catalogue,
    CatalogueError,
    check_aliases,
    parse_rule,
    parse_services,
    ticket_attributes,
)
from services.sla.maintenance import MaintenanceError, MaintenanceWindow, parse_windows, window_intervals

pytestmark = pytest.mark.unit


def service(service_id: str, **fields: object) -> BusinessService:
    return BusinessService.model_validate(
        {"id": service_id, "name": service_id.title(), "objective_percent": 99.9} | fields
    )


CATALOGUE = Catalogue(
    (
        service("webshop", match={"aliases": ["Online Shop"], "alert_labels": {"service": ["checkout-api"]}}),
        service(
            "email", match={"ticket_fields": {"assignment_group": ["Messaging"], "custom.ci": ["exch01"]}}
        ),
    )
)


@pytest.mark.parametrize(
    ("named", "attributes", "ticket", "expected"),
    [
        (["webshop"], {}, False, "webshop"),
        (["online shop"], {}, False, "webshop"),
        ([None, "  Online Shop "], {}, False, "webshop"),
        (["unmapped-ref"], {"service": "checkout-api"}, False, "webshop"),
        (["Mail"], {"assignment_group": "Messaging"}, True, "email"),
        (["Mail"], {"custom.ci": "exch01"}, True, "email"),
        # Alert labels do not map tickets, ticket fields do not map alerts.
        (["Mail"], {"assignment_group": "Messaging"}, False, None),
        (["x"], {"service": "checkout-api"}, True, None),
        (["payroll"], {"service": "payroll-api"}, False, None),
    ],
)
def test_a_signal_maps_by_id_then_alias_then_labels_or_ticket_fields(
    named, attributes, ticket, expected
) -> None:
    assert CATALOGUE.resolve(named=named, attributes=attributes, ticket=ticket) == expected


def test_the_ticket_fields_a_service_can_be_matched_on() -> None:
    ticket = TicketChanged.model_validate(
        {
            "ticket_key": "jira:INC-1",
            "source": "jira",
            "external_id": "INC-1",
            "occurred_at": datetime(2026, 10, 5, tzinfo=UTC),
            "created_at": datetime(2026, 10, 5, tzinfo=UTC),
            "status": "Open",
            "status_category": "open",
            "assignment_group": "Messaging",
            "custom": {"ci": "exch01", "flag": True, "nested": {"a": 1}},
        }
    )
    assert ticket_attributes(ticket) == {
        "source": "jira",
        "assignment_group": "Messaging",
        "custom.ci": "exch01",
    }


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        ({"id": "x", "name": "X", "objective_percent": 100}, "objective_percent"),
        ({"id": "x", "name": "X", "objective_percent": 0}, "objective_percent"),
        # Found by schemathesis: 5e-324 % is a ratio of 0, an objective without any meaning.
        ({"id": "x", "name": "X", "objective_percent": 5e-324}, "objective_percent"),
        ({"id": "x", "name": "X", "objective_percent": 99.99999}, "objective_percent"),
        ({"id": "Bad Id", "name": "X", "objective_percent": 99}, "services[0].id"),
        ({"id": "x", "name": "X", "objective_percent": 99, "calendar": "nope"}, "unknown calendar 'nope'"),
        ({"id": "x", "name": "X", "objective_percent": 99, "timezone": "Mars/Base"}, "unknown time zone"),
        ({"id": "x", "name": "X", "objective_percent": 99, "weights": {"partial": 1.2}}, "weights.partial"),
        ({"id": "x", "name": "X", "objective_percent": 99, "weights": {"major": 0.2}}, "major >= partial"),
        (
            {
                "id": "x",
                "name": "X",
                "objective_percent": 99,
                "match": {"ticket_fields": {"priority": ["P1"]}},
            },
            "unknown ticket field",
        ),
        ({"id": "x", "name": "X", "objective_percent": 99, "owner": "me"}, "owner"),
    ],
)
def test_a_bad_service_definition_is_refused_naming_the_field(definition: dict, problem: str) -> None:
    with pytest.raises(CatalogueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse_services([definition], calendars={"office-berlin"})


def test_a_service_given_twice_is_refused() -> None:
    twice = [{"id": "x", "name": "X", "objective_percent": 99}] * 2
    with pytest.raises(CatalogueError, match=r"services\[1\].id: service 'x' given twice"):
        parse_services(twice, calendars=set())


def test_an_alias_naming_two_services_is_refused() -> None:
    with pytest.raises(CatalogueError, match="'WEBSHOP' already names service 'webshop'"):
        check_aliases([service("webshop"), service("shop", match={"aliases": ["WEBSHOP"]})])


def test_months_are_taken_in_the_services_zone_else_its_calendars_else_utc() -> None:
    zones = {"office-berlin": "Europe/Berlin"}
    assert service("a", calendar="office-berlin").time_zone(zones) == "Europe/Berlin"
    assert (
        service("b", calendar="office-berlin", timezone="Europe/London").time_zone(zones) == "Europe/London"
    )
    assert service("c").time_zone(zones) == "UTC"


def test_the_default_weights_are_1_for_major_03_for_partial_and_0_for_degraded() -> None:
    weights = service("x").weights.weights()
    assert (weights.major, weights.partial, weights.degraded) == (1.0, 0.3, 0.0)


def test_the_major_incident_rule_names_a_bad_field() -> None:
    assert parse_rule(None).priorities == {"P1": "major"}
    with pytest.raises(CatalogueError, match=r"major_incidents.priorities.P9"):
        parse_rule({"priorities": {"P9": "major"}})
    with pytest.raises(CatalogueError, match="restored_field"):
        parse_rule({"restored_field": "status"})


# Maintenance windows


def test_a_window_ending_before_it_starts_is_refused_naming_it() -> None:
    with pytest.raises(MaintenanceError, match=r"windows\[1\]: .*is not after start"):
        parse_windows(
            [
                {"start": "2026-10-04T01:00:00Z", "end": "2026-10-04T02:00:00Z"},
                {"start": "2026-10-04T02:00:00Z", "end": "2026-10-04T01:00:00Z"},
            ]
        )


@pytest.mark.parametrize(
    "definition",
    [
        {"start": "2026-10-04T01:00:00Z"},
        {"start": "2026-10-04T01:00:00Z", "end": "2026-10-04T02:00:00Z", "weekly_on": ["sun"]},
        {"weekly_on": ["sun"], "at": "02:00", "duration_minutes": 60},
        {"weekly_on": ["sun"], "at": "02:00", "duration_minutes": 60, "timezone": "Nowhere/City"},
        {"weekly_on": ["sun"], "at": "02:00", "duration_minutes": 0, "timezone": "UTC"},
        {"start": "2026-10-04T01:00:00", "end": "2026-10-04T02:00:00"},
    ],
    ids=["no-end", "both-kinds", "no-zone", "bad-zone", "empty", "naive"],
)
def test_a_window_that_is_neither_one_off_nor_weekly_is_refused(definition: dict) -> None:
    with pytest.raises(MaintenanceError, match=r"windows\[0\]"):
        parse_windows([definition])


def test_a_weekly_sunday_window_keeps_its_local_time_across_the_end_of_summer_time() -> None:
    window = MaintenanceWindow(
        weekly_on=["sun"], at=time(2, 0), duration_minutes=120, timezone="Europe/Berlin"
    )
    found = window_intervals(
        [window], start=datetime(2026, 10, 17, tzinfo=UTC), end=datetime(2026, 11, 2, tzinfo=UTC)
    )
    # 18 October (CEST, UTC+2) at 00:00 UTC. On 25 October 02:00 happens twice (03:00 CEST goes back to
    # 02:00 CET): the first, still CEST, is taken. From 1 November (CET, UTC+1) it is 01:00 UTC.
    assert found == [
        Interval(datetime(2026, 10, 18, 0, 0, tzinfo=UTC), datetime(2026, 10, 18, 2, 0, tzinfo=UTC)),
        Interval(datetime(2026, 10, 25, 0, 0, tzinfo=UTC), datetime(2026, 10, 25, 2, 0, tzinfo=UTC)),
        Interval(datetime(2026, 11, 1, 1, 0, tzinfo=UTC), datetime(2026, 11, 1, 3, 0, tzinfo=UTC)),
    ]


def test_a_weekly_window_applies_only_within_its_effective_dates() -> None:
    window = MaintenanceWindow(
        weekly_on=["mon", "thu"],
        at=time(22, 0),
        duration_minutes=30,
        timezone="UTC",
        effective_from=date(2026, 10, 6),
        effective_until=date(2026, 10, 12),
    )
    found = window_intervals(
        [window], start=datetime(2026, 10, 1, tzinfo=UTC), end=datetime(2026, 10, 31, tzinfo=UTC)
    )
    assert [interval.start.date() for interval in found] == [date(2026, 10, 8), date(2026, 10, 12)]
