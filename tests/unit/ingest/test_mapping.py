"""The ingest mapping: packaged defaults, a site's YAML file, overrides, and errors naming the bad key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bothways.events import Priority, StatusCategory, TicketKind
from services.ingest.mapping import DEFAULT_MAPPING_PATH, SOURCES, MappingError, load_mapping, merged

pytestmark = pytest.mark.unit

keys = st.sampled_from("abcde")
leaves = st.integers(min_value=0, max_value=9)
trees = st.recursive(leaves, lambda children: st.dictionaries(keys, children, max_size=3), max_leaves=6)
dict_trees = st.dictionaries(keys, trees, max_size=3)


def write_yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def mapping_error(overrides: dict[str, Any]) -> str:
    with pytest.raises(MappingError) as raised:
        load_mapping(None, overrides)
    return str(raised.value)


def test_the_packaged_defaults_cover_every_platform() -> None:
    mapping = load_mapping()

    assert DEFAULT_MAPPING_PATH.name == "mapping.yaml"
    assert all(mapping.for_source(source) is getattr(mapping, source) for source in SOURCES)
    assert mapping.jira.priority("Highest") is Priority.P1
    assert mapping.zendesk.status_category("solved") is StatusCategory.RESOLVED
    assert mapping.servicenow.status_category("8") is StatusCategory.CANCELED
    assert mapping.freshservice.priority("1") is Priority.P4


def test_lookups_ignore_case_and_spacing() -> None:
    jira = load_mapping().jira

    assert jira.status_category("  Waiting   for CUSTOMER ") is StatusCategory.PENDING
    assert jira.kind("SERVICE REQUEST") is TicketKind.REQUEST


def test_an_unknown_kind_is_the_default_kind() -> None:
    assert load_mapping().servicenow.kind("u_security_case") is TicketKind.INCIDENT
    assert (
        load_mapping(None, {"servicenow": {"default_kind": "request"}}).servicenow.kind(None)
        is TicketKind.REQUEST
    )


def test_a_sites_file_is_merged_over_the_defaults(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path,
        """
jira:
  paths:
    business_service: fields.customfield_10050
  statuses:
    Triage: new
""",
    )

    jira = load_mapping(path).jira

    assert jira.paths.business_service == ("fields.customfield_10050",)
    assert jira.paths.kind == ("fields.issuetype.name",)
    assert jira.status_category("triage") is StatusCategory.NEW
    assert jira.status_category("Waiting for customer") is StatusCategory.PENDING


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "zendesk:\n  statuses:\n    hold: pending\n")

    zendesk = load_mapping(path, {"zendesk": {"statuses": {"hold": "open"}}}).zendesk

    assert zendesk.status_category("hold") is StatusCategory.OPEN


def test_null_removes_a_default_entry() -> None:
    zendesk = load_mapping(None, {"zendesk": {"statuses": {"deleted": None}}}).zendesk

    assert zendesk.status_category("deleted") is None
    assert zendesk.status_category("open") is StatusCategory.OPEN


def test_a_path_may_be_one_string_or_a_list_of_candidates() -> None:
    paths = load_mapping(
        None,
        {
            "freshservice": {
                "paths": {"business_service": ["custom_fields.service", "category"], "kind": None}
            }
        },
    ).freshservice.paths

    assert paths.business_service == ("custom_fields.service", "category")
    assert paths.kind == ()


def test_a_servicenow_instance_overrides_only_what_it_names() -> None:
    servicenow = load_mapping(
        None,
        {"servicenow": {"instances": {"ACME": {"statuses": {"9": "pending"}, "time_zone": "Europe/Paris"}}}},
    ).servicenow

    acme = servicenow.for_instance("acme")
    assert acme.status_category("9") is StatusCategory.PENDING
    assert acme.status_category("1") is StatusCategory.NEW
    assert acme.time_zone == "Europe/Paris"
    assert servicenow.status_category("9") is None
    assert servicenow.for_instance("globex") is servicenow
    assert servicenow.for_instance(None) is servicenow


def test_an_unknown_category_names_the_bad_key() -> None:
    message = mapping_error({"jira": {"statuses": {"Triage": "todo"}}})

    assert "jira.statuses.triage" in message


def test_an_unknown_priority_names_the_bad_key() -> None:
    assert "zendesk.priorities.urgent" in mapping_error({"zendesk": {"priorities": {"urgent": "P0"}}})


def test_a_misspelt_setting_names_the_bad_key() -> None:
    assert "jira.stauses" in mapping_error({"jira": {"stauses": {"open": "open"}}})
    assert "servicenow.paths.business_servce" in mapping_error(
        {"servicenow": {"paths": {"business_servce": "u_service"}}}
    )


def test_an_unknown_source_names_the_bad_key() -> None:
    assert "jiraa" in mapping_error({"jiraa": {"statuses": {}}})


def test_an_unknown_time_zone_names_the_bad_key() -> None:
    assert "servicenow.time_zone" in mapping_error({"servicenow": {"time_zone": "Mars/Olympus_Mons"}})


def test_an_instance_error_names_the_instance() -> None:
    message = mapping_error({"servicenow": {"instances": {"acme": {"time_zone": "Nowhere/Land"}}}})

    assert "servicenow.instances.acme.time_zone" in message


def test_a_setting_of_another_platform_names_where_it_is_not_read() -> None:
    message = mapping_error({"zendesk": {"agent_account_types": ["agent"]}})
    assert "zendesk" in message
    assert "agent_account_types is only read for jira" in message
    assert "instances is only read for servicenow" in mapping_error({"jira": {"instances": {"acme": {}}}})


def test_a_file_that_is_not_yaml_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "jira: {statuses: [unclosed\n")

    with pytest.raises(MappingError, match=r"mapping\.yaml is not valid YAML"):
        load_mapping(path)


def test_a_file_whose_top_level_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="top level"):
        load_mapping(write_yaml(tmp_path, "- jira\n- zendesk\n"))


def test_a_missing_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"absent\.yaml"):
        load_mapping(tmp_path / "absent.yaml")


def test_an_empty_file_keeps_the_defaults(tmp_path: Path) -> None:
    assert load_mapping(write_yaml(tmp_path, "")) == load_mapping()


def test_an_unknown_source_name_is_not_routed() -> None:
    with pytest.raises(KeyError, match="remedy"):
        load_mapping().for_source("remedy")


# Generation is cheap; the health check only trips when a shared machine is busy.
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(base=dict_trees, overlay=dict_trees)
def test_merging_keeps_what_the_overlay_does_not_name_and_takes_its_plain_values(
    base: dict[str, Any], overlay: dict[str, Any]
) -> None:
    result = merged(base, overlay)

    assert all(result[key] == value for key, value in base.items() if key not in overlay)
    assert all(result[key] == value for key, value in overlay.items() if not isinstance(value, dict))
    assert merged(result, {}) == result
