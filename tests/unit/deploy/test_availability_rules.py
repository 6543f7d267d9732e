"""The availability recording and burn-rate alert rules are valid Prometheus rules and behave as specified."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services.sla.availability import SRE_BURN_ALERTS

pytestmark = pytest.mark.unit

PROMETHEUS = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: install Debian's prometheus package (make test-tools does)")
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False, cwd=PROMETHEUS)


def alerts() -> dict[str, dict]:
    groups = yaml.safe_load((RULES / "availability.yml").read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def test_promtool_accepts_the_availability_rules() -> None:
    checked = promtool("check", "rules", "rules/availability.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout


def test_the_rules_pass_their_promtool_unit_tests() -> None:
    tested = promtool("test", "rules", "tests/availability.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_burn_rate_alerts_never_carry_business_service_so_they_never_come_back_as_outages() -> None:
    # Alertmanager routes business_service=~".+" to ingest as outages (alertmanager.yml).
    for name, rule in alerts().items():
        assert rule["expr"].lstrip().startswith("max without (business_service) (label_replace("), name
        assert '"slo_business_service", "$1", "business_service"' in rule["expr"], name
        assert "business_service" not in rule["labels"], name


def test_the_page_alerts_use_the_thresholds_and_windows_the_sla_service_announces() -> None:
    pages = sorted(
        (rule["labels"]["long_window"], rule["labels"]["short_window"], rule["expr"])
        for rule in alerts().values()
        if rule["labels"]["severity"] == "critical"
    )
    # The same pairs as objective_at_risk on bothways.availability.v1 (services/sla/availability.py).
    expected = sorted(
        (
            _duration(alert.long_window.total_seconds()),
            _duration(alert.short_window.total_seconds()),
            alert.threshold,
        )
        for alert in SRE_BURN_ALERTS
    )
    assert [(long, short) for long, short, _ in pages] == [(long, short) for long, short, _ in expected]
    for (_, _, expr), (_, _, threshold) in zip(pages, expected, strict=True):
        assert f"({threshold:g} * business_service:availability_error_budget:ratio)" in expr


def _duration(seconds: float) -> str:
    return f"{int(seconds) // 3600}h" if seconds % 3600 == 0 else f"{int(seconds) // 60}m"
