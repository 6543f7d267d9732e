"""The answer page in headless Chromium, with JavaScript off: one click in the mail, a reason, a submit,
the thank-you page; the answer is stored and announced."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from bothways import devstack
from tests.survey_harness import MONDAY, ticket

pytestmark = pytest.mark.browser

NOW_RULES = {"csat": {"rules": [{"name": "at once", "delay": "0s"}]}}


async def test_click_a_score_in_the_mail_choose_a_reason_submit_and_see_the_thanks(
    survey_service, browser: Browser
) -> None:
    port = devstack.free_port()
    async with (
        survey_service(NOW_RULES, survey_public_url=f"http://127.0.0.1:{port}") as survey,
        survey.served(port),
    ):
        await survey.track(ticket(1))
        await survey.step(MONDAY)
        [mail] = survey.mails()
        context = await browser.new_context(java_script_enabled=False, viewport={"width": 375, "height": 740})
        page = await context.new_page()

        await page.goto(survey.url(mail, 2))
        assert await page.get_attribute("html", "lang") == "en"
        await expect(
            page.get_by_role("heading", name="How satisfied are you with how your request was handled?")
        ).to_be_visible()
        await expect(page.get_by_role("radio", name="Dissatisfied", exact=True)).to_be_checked()
        assert (await survey.invitation())["state"] == "sent", "opening the link records nothing"

        await page.get_by_role("radio", name="My issue was not resolved").check()
        await page.get_by_role("textbox", name="Would you like to tell us more?").fill(
            "The printer still jams."
        )
        await page.get_by_role("button", name="Submit my answer").click()

        await expect(page.get_by_role("heading", name="Thank you for your feedback")).to_be_visible()
        await expect(page.get_by_text("Someone from the team will follow up")).to_be_visible()
        row = await survey.invitation()
        assert (row["state"], row["score"], row["answer_reason"], row["comment"]) == (
            "answered",
            2,
            "My issue was not resolved",
            "The printer still jams.",
        )
        [answered] = await survey.events("survey.answered")
        assert (answered.data.score, answered.data.reason, answered.data.satisfied) == (
            2,
            "My issue was not resolved",
            False,
        )
        assert len(await survey.events("followup.opened")) == 1

        # Back to the form from the thank-you page: the answer can be changed until the survey closes.
        await page.get_by_role("link", name="change your answer").click()
        await expect(page.get_by_text("You answered on")).to_be_visible()
        await page.get_by_role("radio", name="Very satisfied").check()
        await page.get_by_role("button", name="Submit my answer").click()
        await expect(page.get_by_role("heading", name="Thank you for your feedback")).to_be_visible()
        assert (await survey.invitation())["score"] == 5
        await context.close()


async def test_reasons_show_only_after_a_low_score_and_the_page_fits_a_phone(
    survey_service, browser: Browser
) -> None:
    port = devstack.free_port()
    async with (
        survey_service(NOW_RULES, survey_public_url=f"http://127.0.0.1:{port}") as survey,
        survey.served(port),
    ):
        await survey.track(ticket(1))
        await survey.step(MONDAY)
        [mail] = survey.mails()
        page = await browser.new_page(viewport={"width": 320, "height": 640})
        await page.goto(survey.url(mail, 5))
        reason = page.get_by_role("radio", name="It took too long")
        await expect(reason).to_be_hidden()
        await page.get_by_role("radio", name="Very dissatisfied").check()
        await expect(reason).to_be_visible()
        # Every control has a name a screen reader can read, and nothing scrolls sideways.
        for name in (
            "Very satisfied",
            "Satisfied",
            "Neither satisfied nor dissatisfied",
            "Dissatisfied",
            "Very dissatisfied",
        ):
            await expect(page.get_by_role("radio", name=name, exact=True)).to_have_count(1)
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        tap = await page.get_by_role("button", name="Submit my answer").bounding_box()
        assert tap is not None
        assert tap["height"] >= 44
        await page.close()


async def test_an_nps_link_preselects_its_score_on_the_zero_to_ten_scale(
    survey_service, browser: Browser
) -> None:
    port = devstack.free_port()
    async with survey_service(survey_public_url=f"http://127.0.0.1:{port}") as survey, survey.served(port):
        await survey.track(ticket(1, category="open"))
        await survey.client.post("/campaigns", json={"name": "Q1", "population": {"active_within_days": 30}})
        await survey.step(MONDAY)
        [mail] = survey.mails()
        context = await browser.new_context(java_script_enabled=False)
        page = await context.new_page()
        await page.goto(survey.url(mail, 9))
        await expect(page.get_by_role("radio", name="9", exact=True)).to_be_checked()
        await expect(page.get_by_role("radio", name="0, not at all likely")).not_to_be_checked()
        await page.get_by_role("button", name="Submit my answer").click()
        await expect(page.get_by_role("heading", name="Thank you for your feedback")).to_be_visible()
        row = await survey.invitation()
        assert (row["score"], row["band"]) == (9, "promoter")
        await context.close()


async def test_a_forged_link_shows_a_clear_page_in_the_browser(survey_service, browser: Browser) -> None:
    port = devstack.free_port()
    async with (
        survey_service(survey_public_url=f"http://127.0.0.1:{port}") as survey,
        survey.served(port) as base,
    ):
        page = await browser.new_page()
        response = await page.goto(
            f"{base}/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA?score=5"
        )
        assert response is not None
        assert response.status == 404
        await expect(page.get_by_role("heading", name="This survey link is not valid")).to_be_visible()
        await page.close()
