"""deploy/prometheus/ is valid for the real tools and agrees with the code: promtool checks the
configuration and the rules and runs the rule unit tests, amtool checks Alertmanager's routing, and
every metric a rule reads is one the services export (or one promised by a service's issue)."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from bothways import devstack

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
ALERTMANAGER_CONFIG = PROMETHEUS / "alertmanager.yml"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())

# Metrics a service's issue promises before the service exports them (none now: the survey service's
# counters are exported and covered by the registry check below).
PROMISED_METRICS: dict[str, str] = {}
SERIES_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: `make test-tools` installs it from Debian")
    return path


def run(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, cwd=cwd)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict[str, Any]]:
    return [rule for path in RULE_FILES for group in load(path)["groups"] for rule in group["rules"]]


def with_credentials_file(config: Path, tmp_path: Path, *, kubernetes_sd: str = "keep") -> Path:
    """A copy of a Prometheus configuration whose credentials file exists on this machine.

    promtool stats every credentials_file, and the real ones only exist inside the containers; only
    that path changes (and, for Debian's promtool, which is built without Kubernetes discovery, the
    discovery block)."""
    loaded = load(config)
    secret = tmp_path / "api-key"
    secret.write_text("not-a-real-key\n")
    for job in loaded["scrape_configs"]:
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(secret)
        if kubernetes_sd == "replace" and job.pop("kubernetes_sd_configs", None) is not None:
            job["static_configs"] = [{"targets": ["pod.invalid:8001"]}]
    copy = tmp_path / config.name
    copy.write_text(yaml.safe_dump(loaded))
    shutil.copytree(PROMETHEUS / "rules", tmp_path / "rules", dirs_exist_ok=True)
    return copy


# --- promtool -------------------------------------------------------------------------------------


def test_promtool_accepts_the_compose_configuration_and_its_rules(tmp_path: Path) -> None:
    result = run(
        tool("promtool"),
        "check",
        "config",
        str(with_credentials_file(PROMETHEUS / "prometheus.yml", tmp_path)),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout + result.stderr


def test_promtool_accepts_the_kubernetes_configuration_but_for_discovery(tmp_path: Path) -> None:
    config = with_credentials_file(
        PROMETHEUS / "prometheus-kubernetes.yml", tmp_path, kubernetes_sd="replace"
    )
    result = run(tool("promtool"), "check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_every_rule_file() -> None:
    assert RULE_FILES, "deploy/prometheus/rules/ holds the alert and recording rules"
    result = run(tool("promtool"), "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_unit_tests_pass() -> None:
    assert RULE_TESTS
    result = run(tool("promtool"), "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_makes_it_fire() -> None:
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    fired = {
        case["alertname"]
        for path in RULE_TESTS
        for test in load(path)["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - fired == set(), f"alerts never shown to fire: {sorted(alerts - fired)}"


def test_every_alert_has_a_severity_and_a_summary() -> None:
    for rule in rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]


# --- the rules read metrics that exist ----------------------------------------------------------------


def exported_series() -> set[str]:
    """Every series name the four services can export, from their metric definitions."""
    for service in devstack.SERVICES:
        importlib.import_module(f"services.{service}.app")
    names = set()
    for family in REGISTRY.collect():
        for suffix in SERIES_SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def promised_series() -> set[str]:
    return {name + suffix for name, kind in PROMISED_METRICS.items() for suffix in SERIES_SUFFIXES[kind]}


def test_every_metric_a_rule_reads_is_exported_or_promised() -> None:
    known = exported_series() | promised_series()
    for rule in rules():
        for name in re.findall(r"(?<![\w:])(bothways_[a-z0-9_]+)(?![\w:])", rule["expr"]):
            assert name in known, (
                f"{rule.get('alert') or rule.get('record')} reads {name}, which nothing exports"
            )


def test_the_rules_read_the_core_pipeline_metrics() -> None:
    read = " ".join(rule["expr"] for rule in rules())
    for name in (
        "bothways_consumer_lag_records",
        "bothways_consumer_events_total",
        "bothways_outbox_backlog_events",
        "bothways_outbox_publish_failures_total",
        "bothways_webhooks_received_total",
        "bothways_http_request_duration_seconds_bucket",
    ):
        assert name in exported_series(), f"{name} is no longer exported"
        assert name in read, f"no rule reads {name}"


# --- scraping agrees with the compose stack -----------------------------------------------------------


def test_prometheus_scrapes_each_service_on_its_port_labelled_with_its_name() -> None:
    job = next(
        j for j in load(PROMETHEUS / "prometheus.yml")["scrape_configs"] if j["job_name"] == "bothways"
    )
    targets = {
        group["labels"]["component"]: target for group in job["static_configs"] for target in group["targets"]
    }
    assert targets == {name: f"{name}:{port}" for name, port in devstack.SERVICES.items()}
    for name, port in devstack.SERVICES.items():
        assert COMPOSE["services"][name]["environment"]["BOTHWAYS_PORT"] == str(port)
    assert job.get("metrics_path", "/metrics") == "/metrics"


def test_prometheus_and_alertmanager_read_their_credentials_from_the_secrets_compose_mounts() -> None:
    job = next(
        j for j in load(PROMETHEUS / "prometheus.yml")["scrape_configs"] if j["job_name"] == "bothways"
    )
    receiver = next(r for r in load(ALERTMANAGER_CONFIG)["receivers"] if r["name"] == "bothways-ingest")
    for service, path in (
        ("prometheus", job["authorization"]["credentials_file"]),
        ("alertmanager", receiver["webhook_configs"][0]["http_config"]["authorization"]["credentials_file"]),
    ):
        mounted = {f"/run/secrets/{name}" for name in COMPOSE["services"][service]["secrets"]}
        assert path in mounted, f"{service} reads {path}; compose mounts {sorted(mounted)}"
    assert COMPOSE["secrets"]["bothways_metrics_api_key"] == {"environment": "BOTHWAYS_METRICS_API_KEY"}
    assert COMPOSE["secrets"]["bothways_alertmanager_token"] == {"environment": "BOTHWAYS_ALERTMANAGER_TOKEN"}


def test_prometheus_reads_the_configuration_and_rules_from_this_folder() -> None:
    prometheus = COMPOSE["services"]["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert load(PROMETHEUS / "prometheus.yml")["rule_files"] == ["rules/*.yml"]
    alertmanagers = load(PROMETHEUS / "prometheus.yml")["alerting"]["alertmanagers"][0]["static_configs"]
    assert alertmanagers == [{"targets": ["alertmanager:9093"]}]


# --- Alertmanager ---------------------------------------------------------------------------------


def routed_to(*labels: str) -> str:
    result = run(tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_amtool_accepts_the_alertmanager_configuration() -> None:
    result = run(tool("amtool"), "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_business_service_alerts_go_to_ingest_and_bothways_alerts_to_the_operators() -> None:
    assert routed_to("alertname=BusinessServiceProbeFailing", "business_service=webshop") == "bothways-ingest"
    for rule in rules():
        if "alert" in rule:
            labels = [f"alertname={rule['alert']}", "component=sla", "job=bothways"]
            labels += [f"{k}={v}" for k, v in rule["labels"].items()]
            assert routed_to(*labels) == "operators", rule["alert"]
            assert "business_service" not in rule["labels"]


def test_alertmanager_posts_to_ingest_alertmanager_webhook_with_resolutions() -> None:
    from services.ingest.sources import SOURCES

    receiver = next(r for r in load(ALERTMANAGER_CONFIG)["receivers"] if r["name"] == "bothways-ingest")
    webhook = receiver["webhook_configs"][0]
    assert webhook["url"] == f"http://ingest:{devstack.SERVICES['ingest']}/webhooks/alertmanager"
    assert webhook["send_resolved"] is True, "the outage ends when the alert resolves"
    assert "alertmanager" in SOURCES
    ingest = importlib.import_module("services.ingest.app").SPEC
    routes = {route.path for router in ingest.routers for route in router.routes}
    assert "/webhooks/{source}" in routes
