"""A generated month through the real broker into reporting: every figure checked against the plan.

The expected figures are computed here from the plan the events were generated from, with formulas
written out again (the Wilson interval in its textbook form, percentiles by linear interpolation),
not with the reporting service's code.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from datetime import UTC, datetime
from statistics import NormalDist

import pytest

from tests.reporting_month import MonthPlan, applied_events, generate_month, publish
from tests.support import eventually

pytestmark = pytest.mark.integration

Z = NormalDist().inv_cdf(0.975)
WEIGHTS = {"sla_compliance": 0.30, "availability": 0.20, "csat": 0.35, "nps": 0.15}
MIN_RESPONSES = 10
MIN_BREAKDOWN = 10


# --- the expected figures, from the plan -------------------------------------------------------------


def in_month(plan: MonthPlan, instant: datetime | None) -> bool:
    return instant is not None and plan.start <= instant < plan.end


def linear_percentile(values: list[float], q: float) -> float:
    """What PostgreSQL's percentile_cont computes: interpolation between the closest ranks."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def wilson(successes: int, n: int) -> tuple[float, float]:
    """The Wilson score interval in its textbook form, on the proportion p = x / n."""
    p = successes / n
    denominator = 1 + Z**2 / n
    centre = (p + Z**2 / (2 * n)) / denominator
    half = Z / denominator * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return 100 * max(centre - half, 0.0), 100 * min(centre + half, 1.0)


def adjusted_wald_nps(promoters: int, detractors: int, n: int) -> tuple[float, float]:
    """Sauro & Lewis: add 3 answers, three quarters of one to promoters and to detractors."""
    m = n + 3
    pp, pd = (promoters + 0.75) / m, (detractors + 0.75) / m
    centre = pp - pd
    margin = Z * math.sqrt((pp + pd - centre**2) / m)
    return 100 * max(centre - margin, -1.0), 100 * min(centre + margin, 1.0)


def expected_scorecard(plan: MonthPlan, service: str) -> dict:
    tickets = [t for t in plan.tickets if t.service == service]
    timers = [t for t in plan.timers if t.service == service and in_month(plan, t.decided_at)]
    per_metric = {
        metric: Counter(t.outcome for t in timers if t.metric == metric)
        for metric in ("first_response", "resolution")
    }
    met = sum(c["met"] for c in per_metric.values())
    breached = sum(c["breached"] for c in per_metric.values())
    resolved = [t for t in tickets if in_month(plan, t.resolved_at)]
    resolution_times = []
    unstopped_breaches = 0
    for ticket in resolved:
        timer = max(
            (t for t in ticket.timers if t.metric == "resolution" and t.outcome in ("met", "breached")),
            key=lambda t: t.cycle,
        )
        resolution_times.append(timer.elapsed)
        unstopped_breaches += timer.outcome == "breached"
    csat = [
        a for a in plan.answers if a.service == service and a.kind == "csat" and in_month(plan, a.answered_at)
    ]
    nps = [
        a for a in plan.answers if a.service == service and a.kind == "nps" and in_month(plan, a.answered_at)
    ]
    satisfied = sum(a.band == "satisfied" for a in csat)
    promoters = sum(a.band == "promoter" for a in nps)
    detractors = sum(a.band == "detractor" for a in nps)
    sent = sum(
        1 for s, kind, at in plan.invitations_sent if s == service and kind == "csat" and in_month(plan, at)
    )
    followups = [f for f in plan.followups if f.service == service and in_month(plan, f.opened_at)]
    availability = plan.availability[service]
    expected = {
        "tickets_opened": sum(in_month(plan, t.created_at) for t in tickets),
        "tickets_resolved": len(resolved),
        "backlog": sum(
            not t.canceled
            and t.created_at < plan.end
            and (t.resolved_at is None or t.resolved_at >= plan.end)
            for t in tickets
        ),
        "met": {m: c["met"] for m, c in per_metric.items()},
        "breached": {m: c["breached"] for m, c in per_metric.items()},
        "compliance": {
            m: 100 * c["met"] / (c["met"] + c["breached"]) if c["met"] + c["breached"] else None
            for m, c in per_metric.items()
        },
        "pooled": 100 * met / (met + breached),
        "breaches": breached,
        "median_hours": linear_percentile(resolution_times, 0.5) / 3600,
        "p90_hours": linear_percentile(resolution_times, 0.9) / 3600,
        "unstopped_breaches": unstopped_breaches,
        "availability": availability,
        "csat_n": len(csat),
        "csat": 100 * satisfied / len(csat) if len(csat) >= MIN_RESPONSES else None,
        "csat_interval": wilson(satisfied, len(csat)) if len(csat) >= MIN_RESPONSES else None,
        "nps_n": len(nps),
        "nps": 100 * (promoters - detractors) / len(nps) if len(nps) >= MIN_RESPONSES else None,
        "nps_interval": adjusted_wald_nps(promoters, detractors, len(nps))
        if len(nps) >= MIN_RESPONSES
        else None,
        "sent": sent,
        "response_rate": 100 * len(csat) / sent if sent else None,
        "followups": {
            "opened": len(followups),
            "open": sum(f.closed_at is None for f in followups),
            "overdue": sum(
                f.closed_at is None and (f.overdue_at is not None or f.due_at <= plan.now) for f in followups
            ),
        },
    }
    budget_left = availability.budget_remaining_seconds / availability.error_budget_seconds
    components = {
        "sla_compliance": expected["pooled"],
        "availability": 100 * min(max(budget_left, 0.0), 1.0),
        "csat": expected["csat"],
        "nps": (expected["nps"] + 100) / 2 if expected["nps"] is not None else None,
    }
    present = {name: value for name, value in components.items() if value is not None}
    customer = {"csat", "nps"} & set(present)
    expected["experience"] = (
        sum(WEIGHTS[n] * v for n, v in present.items()) / sum(WEIGHTS[n] for n in present)
        if customer
        else None
    )
    provider_green = all(c is None or c >= 95 for c in expected["compliance"].values()) and (
        availability.availability_percent >= availability.objective_percent
    )
    customer_red = (expected["csat_interval"] is not None and expected["csat_interval"][1] < 85) or (
        expected["nps_interval"] is not None and expected["nps_interval"][1] < 0
    )
    expected["watermelon"] = provider_green and customer_red
    return expected


def expected_watermelon_tickets(plan: MonthPlan) -> set[str]:
    by_key = {t.key: t for t in plan.tickets}
    found = set()
    for answer in plan.answers:
        if answer.kind != "csat" or answer.band != "dissatisfied" or not in_month(plan, answer.answered_at):
            continue
        counted = [t for t in by_key[answer.ticket_key].timers if t.outcome != "cancelled"]
        if counted and all(t.outcome == "met" for t in counted):
            found.add(answer.ticket_key)
    return found


# --- the test -----------------------------------------------------------------------------------------


@pytest.fixture
def plan() -> MonthPlan:
    return generate_month(now=datetime.now(UTC))


async def fed(run_service, settings_for, database_url, plan: MonthPlan):
    """The reporting service, running, once it has applied every generated event."""
    settings = settings_for("reporting")
    running = run_service("reporting")
    client = await running.__aenter__()
    await publish(settings, plan.events)
    unique = len(plan.unique_event_ids())

    async def all_applied() -> bool:
        return await applied_events(database_url) == unique

    await eventually(all_applied, timeout=60)
    return running, client


async def test_a_generated_month_gives_the_scorecards_computed_independently(
    run_service, settings_for, database_url, plan
) -> None:
    running, client = await fed(run_service, settings_for, database_url, plan)
    try:
        period = f"{plan.start:%Y-%m}"
        response = await client.get("/scorecards", params={"period": period})
        csv_response = await client.get(
            "/scorecards", params={"period": period}, headers={"accept": "text/csv"}
        )
    finally:
        await running.__aexit__(None, None, None)
    assert response.status_code == 200, response.text
    cards = {card["business_service"]: card for card in response.json()["scorecards"]}
    assert set(cards) == {"email", "payroll", "vpn", "intranet"}
    for service, card in cards.items():
        expected = expected_scorecard(plan, service)
        provider, customer = card["provider"], card["customer"]
        assert provider["tickets_opened"] == expected["tickets_opened"], service
        assert provider["tickets_resolved"] == expected["tickets_resolved"], service
        assert provider["backlog"] == expected["backlog"], service
        for metric in ("first_response", "resolution"):
            figure = provider["sla"][metric]
            assert (figure["met"], figure["breached"]) == (
                expected["met"][metric],
                expected["breached"][metric],
            )
            assert figure["compliance_percent"] == pytest.approx(expected["compliance"][metric]), (
                service,
                metric,
            )
        assert provider["sla_compliance_percent"] == pytest.approx(expected["pooled"])
        assert provider["breaches"] == expected["breaches"]
        resolution = provider["resolution_time"]
        assert resolution["median_business_hours"] == pytest.approx(expected["median_hours"]), service
        assert resolution["p90_business_hours"] == pytest.approx(expected["p90_hours"]), service
        assert resolution["unstopped_breaches"] == expected["unstopped_breaches"]
        availability = expected["availability"]
        assert provider["availability"]["availability_percent"] == pytest.approx(
            availability.availability_percent
        )
        assert provider["availability"]["budget_remaining_seconds"] == pytest.approx(
            availability.budget_remaining_seconds
        )
        assert provider["availability"]["mtrs_seconds"] == pytest.approx(availability.mtrs_seconds)
        assert provider["availability"]["correction"] is True, "the stale computation did not replace it"
        assert customer["csat"]["responses"] == expected["csat_n"]
        assert customer["csat"]["csat_percent"] == pytest.approx(expected["csat"])
        if expected["csat_interval"]:
            interval = customer["csat"]["interval"]
            assert (interval["lower"], interval["upper"]) == pytest.approx(expected["csat_interval"])
        else:
            assert customer["csat"]["interval"] is None
            assert not customer["csat"]["sufficient"]
        assert customer["nps"]["responses"] == expected["nps_n"]
        assert customer["nps"]["nps"] == pytest.approx(expected["nps"])
        if expected["nps_interval"]:
            interval = customer["nps"]["interval"]
            assert (interval["lower"], interval["upper"]) == pytest.approx(expected["nps_interval"])
        assert customer["invitations_sent"] == expected["sent"]
        assert customer["response_rate_percent"] == pytest.approx(expected["response_rate"])
        assert customer["followups"] == expected["followups"], service
        assert card["experience"]["score"] == pytest.approx(expected["experience"]), service
        assert card["watermelon"]["flagged"] is expected["watermelon"], (service, card["watermelon"])
    assert [name for name, card in cards.items() if card["watermelon"]["flagged"]] == ["payroll"]
    assert cards["intranet"]["experience"]["score"] is None, "too few answers: no customer side, no score"
    scores = [
        c["experience"]["score"]
        for c in response.json()["scorecards"]
        if c["experience"]["score"] is not None
    ]
    assert scores == sorted(scores, reverse=True), "best experience first"
    payroll_formula = cards["payroll"]["experience"]["formula"]
    assert payroll_formula.startswith("experience = (0.30 x sla_compliance ")
    assert payroll_formula.endswith(f"= {cards['payroll']['experience']['score']:.1f}")

    assert csv_response.headers["content-type"].startswith("text/csv")
    rows = {row["business_service"]: row for row in csv.DictReader(io.StringIO(csv_response.text))}
    assert set(rows) == set(cards)
    assert float(rows["payroll"]["csat_percent"]) == pytest.approx(
        cards["payroll"]["customer"]["csat"]["csat_percent"]
    )
    assert rows["payroll"]["watermelon"] == "true"
    assert rows["intranet"]["experience_score"] == ""


async def test_the_watermelon_drill_down_lists_met_slas_with_dissatisfied_answers(
    run_service, settings_for, database_url, plan
) -> None:
    running, client = await fed(run_service, settings_for, database_url, plan)
    try:
        period = f"{plan.start:%Y-%m}"
        report = await client.get("/watermelons", params={"period": period})
        one = await client.get(
            "/watermelons", params={"period": period, "service": "payroll", "format": "csv"}
        )
        unknown = await client.get("/watermelons", params={"period": period, "service": "nope"})
    finally:
        await running.__aexit__(None, None, None)
    assert report.status_code == 200, report.text
    body = report.json()
    assert [s["business_service"] for s in body["services"]] == ["payroll"]
    assert body["services"][0]["csat_upper"] < 85
    assert {t["ticket_key"] for t in body["tickets"]} == expected_watermelon_tickets(plan)
    assert {t["ticket_key"] for t in body["tickets"] if t["service_flagged"]} == {
        key for key in expected_watermelon_tickets(plan) if key.startswith("generic:payroll-")
    }
    rows = list(csv.DictReader(io.StringIO(one.text)))
    assert {row["ticket_key"] for row in rows} == {
        key for key in expected_watermelon_tickets(plan) if key.startswith("generic:payroll-")
    }
    assert all(not row["comment"].startswith("=") for row in rows), "no formula reaches a spreadsheet"
    assert unknown.status_code == 404
    assert "unknown business service 'nope'" in unknown.json()["message"]


async def test_breakdowns_gate_small_groups_and_trends_carry_the_change(
    run_service, settings_for, database_url, plan
) -> None:
    running, client = await fed(run_service, settings_for, database_url, plan)
    try:
        period = f"{plan.start:%Y-%m}"
        by_group = await client.get(
            "/scorecards/email/breakdowns/assignment_group", params={"period": period}
        )
        by_priority = await client.get("/scorecards/intranet/breakdowns/priority", params={"period": period})
        trend = await client.get("/scorecards/email/trend", params={"period": period, "months": 3})
        card = await client.get(f"/scorecards/email?period={period}")
    finally:
        await running.__aexit__(None, None, None)
    assert by_group.status_code == 200, by_group.text
    rows = {row["key"]: row for row in by_group.json()["rows"]}
    assert set(rows) == {"service-desk", "network", "apps"}
    for group, row in rows.items():
        timers = [
            t
            for t in plan.timers
            if t.service == "email"
            and t.group == group
            and t.metric == "resolution"
            and in_month(plan, t.decided_at)
        ]
        met, breached = sum(t.outcome == "met" for t in timers), sum(t.outcome == "breached" for t in timers)
        figure = row["sla"]["resolution"]
        assert (figure["met"], figure["breached"]) == (met, breached)
        assert figure["compliance_percent"] == (
            pytest.approx(100 * met / (met + breached)) if met + breached >= MIN_BREAKDOWN else None
        )
    small = by_priority.json()["rows"]
    assert small, "intranet has tickets in every priority"
    assert all(row["csat"]["csat_percent"] is None for row in small), "under ten answers: withheld"
    assert all(
        row["sla"]["resolution"]["compliance_percent"] is None
        for row in small
        if row["sla"]["resolution"]["met"] + row["sla"]["resolution"]["breached"] < MIN_BREAKDOWN
    )
    points = trend.json()["points"]
    assert [p["period"] for p in points][-1] == period
    assert len(points) == 3
    last = points[-1]
    assert last["sla_compliance_percent"] == pytest.approx(card.json()["provider"]["sla_compliance_percent"])
    assert last["csat_percent"] == pytest.approx(card.json()["customer"]["csat"]["csat_percent"])
    assert set(card.json()["breakdowns"]) == {"assignment_group", "priority"}


async def test_redelivering_every_event_changes_no_figure(
    run_service, settings_for, database_url, plan
) -> None:
    running, client = await fed(run_service, settings_for, database_url, plan)
    try:
        period = f"{plan.start:%Y-%m}"
        before = (await client.get("/scorecards", params={"period": period})).json()
        duplicates_before = await duplicates(client)
        await publish(settings_for("reporting"), plan.events)

        async def all_seen_again() -> bool:
            return await duplicates(client) - duplicates_before >= len(plan.events)

        await eventually(all_seen_again, timeout=60)
        after = (await client.get("/scorecards", params={"period": period})).json()
    finally:
        await running.__aexit__(None, None, None)
    assert after == before


async def duplicates(client) -> float:
    metrics = (await client.get("/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("bothways_consumer_events_total{") and 'outcome="duplicate"' in line
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/scorecards?period=2026-13", "is not a month as YYYY-MM"),
        ("/scorecards?period=October", "is not a month as YYYY-MM"),
        ("/scorecards?period=1999-12", "before 2000"),
        ("/scorecards?period=2999-01", "has not begun"),
        ("/scorecards?format=xml", "format"),
        ("/scorecards/email/breakdowns/assignee", "by"),
        ("/scorecards/email/trend?months=1", "months"),
        ("/scorecards/e%00mail", "service"),
        ("/watermelons?service=%01", "service"),
    ],
)
async def test_bad_requests_are_422_naming_the_problem(run_service, path, message) -> None:
    async with run_service("reporting") as client:
        response = await client.get(path)
    assert response.status_code == 422, response.text
    assert message in response.json()["message"]


async def test_an_unknown_service_is_404(run_service) -> None:
    async with run_service("reporting") as client:
        response = await client.get("/scorecards/nope")
    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "message": "unknown business service 'nope': no event has named it",
        "field": "service",
    }
