"""`bothways simulate`: reproducible output for a seed, and credentials from the dev stack or the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bothways.cli import dev_secrets, main, platform_environment
from simulator.command import load_credentials
from simulator.platforms import ZENDESK_SERVICE_FIELD

pytestmark = pytest.mark.unit

WINDOW = ["--until", "2026-11-02T00:00Z", "--days", "3"]


def dry_run(capsys: pytest.CaptureFixture[str], *options: str) -> list[str]:
    assert main(["simulate", "--dry-run", *WINDOW, *options]) == 0
    return capsys.readouterr().out.splitlines()


def test_a_dry_run_prints_the_same_webhooks_for_the_same_seed(capsys: pytest.CaptureFixture[str]) -> None:
    first = dry_run(capsys, "--seed", "9")
    assert first == dry_run(capsys, "--seed", "9")
    assert first != dry_run(capsys, "--seed", "10")
    paths = {json.loads(line)["path"] for line in first}
    assert {"/webhooks/jira", "/webhooks/zendesk", "/webhooks/servicenow"} <= paths
    assert len(first) > 100


def test_credentials_come_from_the_dev_secrets_and_the_environment_wins(tmp_path: Path) -> None:
    keys = dev_secrets(tmp_path)
    from_file = load_credentials(tmp_path / "dev-secrets.json", {})
    assert from_file.jira_secret == keys["jira_webhook_secret"]
    assert from_file.servicenow_secret.startswith("whsec_")
    remote = load_credentials(tmp_path / "dev-secrets.json", {"BOTHWAYS_SIMULATOR_JIRA_SECRET": "remote"})
    assert remote.jira_secret == "remote"
    assert remote.zendesk_secret == keys["zendesk_webhook_secret"]


def test_a_missing_credential_names_the_variable_that_would_give_it(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="BOTHWAYS_SIMULATOR_ALERTMANAGER_TOKEN"):
        load_credentials(tmp_path / "none.json", {})


def test_an_older_dev_secrets_file_gains_the_platform_secrets_and_keeps_its_own(tmp_path: Path) -> None:
    (tmp_path / "dev-secrets.json").write_text(
        json.dumps({"api_key": "kept", "generic_webhook_secret": "whsec_a2VwdA=="})
    )
    keys = dev_secrets(tmp_path)
    assert keys["api_key"] == "kept"
    assert {"jira_webhook_secret", "zendesk_webhook_secret", "alertmanager_bearer_token"} <= keys.keys()
    assert json.loads((tmp_path / "dev-secrets.json").read_text()) == keys
    assert dev_secrets(tmp_path) == keys


def test_the_dev_stack_tells_ingest_the_platform_secrets_and_where_zendesk_keeps_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = dev_secrets(tmp_path)
    monkeypatch.setenv(
        "BOTHWAYS_MAPPING_OVERRIDES", json.dumps({"zendesk": {"statuses": {"hold": "pending"}}})
    )
    env = platform_environment(keys)
    assert json.loads(env["BOTHWAYS_JIRA_WEBHOOK_SECRETS"]) == [keys["jira_webhook_secret"]]
    overrides = json.loads(env["BOTHWAYS_MAPPING_OVERRIDES"])
    assert overrides["zendesk"]["paths"]["business_service"] == f"custom_fields.{ZENDESK_SERVICE_FIELD}"
    assert overrides["zendesk"]["statuses"] == {"hold": "pending"}, "the developer's own overrides are kept"


@pytest.mark.parametrize("option", ["--days", "--seconds", "--rate", "--concurrency"])
def test_a_run_that_could_not_happen_is_refused(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", option, "0"]) == 2
    assert f"{option} must be positive" in capsys.readouterr().err


def test_the_demo_surveys_the_replayed_month_unless_the_developer_set_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bothways.cli import demo_surveys
    from services.survey.rules import load_rules

    monkeypatch.delenv("BOTHWAYS_SURVEY_RULES_FILE", raising=False)
    rules = load_rules(Path(demo_surveys()["BOTHWAYS_SURVEY_RULES_FILE"]))
    assert rules.max_age.days == 31
    assert [rule.name for rule in rules.csat_rules] == ["default"]
    monkeypatch.setenv("BOTHWAYS_SURVEY_RULES_FILE", "/etc/bothways/surveys.yaml")
    assert demo_surveys() == {}
