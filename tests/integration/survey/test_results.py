"""GET /results against hand-computed values, with minimum-count gating of breakdowns."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.survey_harness import MONDAY, ticket

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)
NOW_RULES = {"csat": {"rules": [{"name": "at once", "delay": "0s"}]}}


async def answer_every_mail(survey, scores: dict[str, int | None]) -> None:
    """Answer the mails sent so far (they arrive in any order): by recipient, a score or None for no answer."""
    assert len(survey.mails()) == len(scores)
    for mail in survey.mails():
        score = scores[mail["To"]]
        if score is not None:
            path = survey.link(mail, score).split("?")[0]
            response = await survey.client.post(path, data={"score": str(score)})
            assert response.status_code == 200, response.text


async def test_thirty_promoters_ten_passives_ten_detractors_give_nps_40(survey_service) -> None:
    async with survey_service() as survey:
        for n in range(54):
            service = "email" if n < 50 else "vpn"
            await survey.track(
                ticket(n, category="open", email_address=f"p{n}@example.com", business_service=service)
            )
        await survey.client.post("/campaigns", json={"name": "Q1", "population": {"active_within_days": 30}})
        await survey.step(MONDAY)
        survey.clock.now = MONDAY + HOUR
        scores = {
            f"p{n}@example.com": 10 if n < 30 else 8 if n < 40 else 6 if n < 50 else None for n in range(54)
        }
        await answer_every_mail(survey, scores)

        response = await survey.client.get("/results", params={"period": "2031-03", "by": "business_service"})
        assert response.status_code == 200
        results = response.json()
        nps = results["nps"]
        assert nps["nps"] == pytest.approx(40.0)
        assert nps["bands"] == {"promoters": 30, "passives": 10, "detractors": 10}
        assert (nps["invitations_sent"], nps["responses"]) == (54, 50)
        assert nps["response_rate_percent"] == pytest.approx(100 * 50 / 54)
        # Adjusted-Wald by hand (see tests/unit/survey/test_results.py): 16.19 .. 59.28.
        assert nps["interval"]["lower"] == pytest.approx(16.19, abs=0.01)
        assert nps["interval"]["upper"] == pytest.approx(59.28, abs=0.01)
        assert results["csat"]["invitations_sent"] == 0
        email, vpn = results["breakdown"]
        assert (email["key"], email["nps"]["nps"]) == ("email", pytest.approx(40.0))
        assert (
            vpn["key"],
            vpn["nps"]["invitations_sent"],
            vpn["nps"]["too_few_responses"],
            vpn["nps"]["nps"],
        ) == (
            "vpn",
            4,
            True,
            None,
        )
        outside = (await survey.client.get("/results", params={"period": "2031-02"})).json()
        assert outside["nps"]["invitations_sent"] == 0


async def test_csat_with_wilson_interval_and_too_few_responses_per_group(survey_service) -> None:
    async with survey_service(NOW_RULES) as survey:
        scores = [5, 5, 5, 5, 5, 4, 4, 4, 3, 2, 1, 5]  # desk: 9 satisfied of 12
        for n in range(len(scores)):
            await survey.track(ticket(n, email_address=f"c{n}@example.com", assignment_group="desk"))
        for n in range(12, 21):  # network: 9 answers, one short of the minimum
            await survey.track(ticket(n, email_address=f"c{n}@example.com", assignment_group="network"))
        await survey.step(MONDAY)
        survey.clock.now = MONDAY + HOUR
        await answer_every_mail(
            survey, {f"c{n}@example.com": score for n, score in enumerate([*scores, *[5] * 9])}
        )

        results = (await survey.client.get("/results", params={"period": "2031-03-03", "by": "group"})).json()
        overall = results["csat"]
        assert overall["csat_percent"] == pytest.approx(100 * 18 / 21)
        assert overall["mean_score"] == pytest.approx((sum(scores) + 45) / 21)
        desk, network = results["breakdown"]
        assert desk["key"] == "desk"
        assert desk["csat"]["csat_percent"] == pytest.approx(75.0)
        # Wilson for 9/12: (9 + 1.92073 ± 1.959964 * sqrt(9 * 3 / 12 + 0.96036)) / 15.84146.
        assert desk["csat"]["interval"]["lower"] == pytest.approx(46.77, abs=0.01)
        assert desk["csat"]["interval"]["upper"] == pytest.approx(91.11, abs=0.01)
        assert desk["csat"]["bands"] == {"satisfied": 9, "neutral": 1, "dissatisfied": 2}
        assert network["key"] == "network"
        assert network["csat"]["too_few_responses"] is True
        assert (network["csat"]["csat_percent"], network["csat"]["mean_score"], network["csat"]["bands"]) == (
            None,
            None,
            None,
        )
        filtered = (
            await survey.client.get("/results", params={"period": "2031-03-03", "group": "network"})
        ).json()
        assert filtered["csat"]["responses"] == 9
        assert filtered["filters"] == {"group": "network"}


@pytest.mark.parametrize(
    ("params", "field"),
    [({"period": "last quarter"}, "period"), ({"by": "colour"}, "query.by"), ({"kind": "ces"}, "query.kind")],
)
async def test_results_refuse_what_they_cannot_compute_naming_the_parameter(
    survey_service, params, field
) -> None:
    async with survey_service() as survey:
        response = await survey.client.get("/results", params=params)
        assert response.status_code == 422
        body = response.json()
        assert body.get("field") == field or field in [f["field"] for f in body.get("fields", [])]
