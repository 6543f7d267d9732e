"""Reporting's /metrics: the current month's scorecard figures per service, read from PostgreSQL at scrape."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.reporting_month import applied_events, generate_month, month_start, publish
from tests.support import READ_KEY, eventually

pytestmark = pytest.mark.integration


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_the_scorecard_gauges_match_the_scorecards_and_pass_promtool(
    run_service, settings_for, database_url
) -> None:
    # A month generated as "the month before next month": the current month, so the gauges show it.
    next_month = month_start(month_start(datetime.now(UTC)) + timedelta(days=32))
    plan = generate_month(now=next_month + timedelta(days=1))
    async with run_service("reporting") as client:
        empty = await client.get("/metrics", headers={"authorization": f"Bearer {READ_KEY}"})
        await publish(settings_for("reporting"), plan.events)

        async def all_applied() -> bool:
            return await applied_events(database_url) == len(plan.unique_event_ids())

        await eventually(all_applied, timeout=60)
        scraped = await client.get("/metrics", headers={"authorization": f"Bearer {READ_KEY}"})
        cards = (await client.get("/scorecards")).json()["scorecards"]
    assert "bothways_scorecard_experience_score{" not in empty.text, "no service yet: no series"
    found = samples(scraped.text)
    for card in cards:
        service = (("business_service", card["business_service"]),)
        score = card["experience"]["score"]
        if score is None:
            assert ("bothways_scorecard_experience_score", service) not in found
        else:
            assert found["bothways_scorecard_experience_score", service] == pytest.approx(score)
        assert found["bothways_scorecard_watermelon", service] == float(card["watermelon"]["flagged"])
        assert found["bothways_scorecard_tickets_opened", service] == card["provider"]["tickets_opened"]
        for metric, figure in card["provider"]["sla"].items():
            key = ("bothways_scorecard_sla_compliance_ratio", (*service, ("metric", metric)))
            if figure["compliance_percent"] is not None:
                assert found[key] == pytest.approx(figure["compliance_percent"] / 100)
        csat = card["customer"]["csat"]
        if csat["interval"]:
            assert found["bothways_scorecard_csat_upper_ratio", service] == pytest.approx(
                csat["interval"]["upper"] / 100
            )
        availability = card["provider"]["availability"]
        assert found["bothways_scorecard_error_budget_remaining_seconds", service] == pytest.approx(
            availability["budget_remaining_seconds"]
        )
    assert found["bothways_scorecard_watermelon", (("business_service", "payroll"),)] == 1.0
    label_names = {
        name for (metric, labels) in found if metric.startswith("bothways_scorecard_") for name, _ in labels
    }
    assert label_names == {"business_service", "metric"}, "low-cardinality labels only"
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make test-tools` installs Debian's prometheus package"
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=scraped.content, capture_output=True, check=False
    )
    assert lint.returncode == 0, lint.stdout.decode() + lint.stderr.decode()
