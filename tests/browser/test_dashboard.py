"""The dashboard in headless Chromium: sign in, the seeded month's figures, offline, without JavaScript, on a phone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page

from bothways import devstack
from services.reporting.pages import NO_FIGURE
from tests.reporting_month import MonthPlan, applied_events, generate_month, publish
from tests.support import API_KEY, READ_KEY, eventually

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / ".bothways" / "test-artifacts"
LAPTOP = {"width": 1366, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def seeded(service_env, settings_for, database_url, tmp_path) -> AsyncIterator[tuple[str, MonthPlan]]:
    """The reporting service as a real process on a free port, with last month's generated events applied."""
    plan = generate_month(now=datetime.now(UTC))
    log = tmp_path / "reporting.log"
    service = devstack.start_service("reporting", port=devstack.free_port(), env=service_env, log_path=log)
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=service.url, timeout=2) as client:
            while True:
                assert service.process.poll() is None, log.read_text()[-3000:]
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "reporting not ready"
                await asyncio.sleep(0.1)
        await publish(settings_for("reporting"), plan.events)

        async def all_applied() -> bool:
            return await applied_events(database_url) == len(plan.unique_event_ids())

        await eventually(all_applied, timeout=60)
        yield service.url, plan
    finally:
        devstack.stop_process(service.process)


async def api(url: str, path: str) -> dict:
    async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {API_KEY}"}) as client:
        response = await client.get(path)
    response.raise_for_status()
    return response.json()


async def sign_in(page: Page, url: str, key: str = READ_KEY) -> None:
    await page.goto(f"{url}/")
    assert page.url == f"{url}/login", "the dashboard asks for a key first"
    await page.fill("#api_key", key)
    await page.click("button[type=submit]")


async def test_the_dashboard_shows_the_seeded_month_ranked_with_its_watermelon(
    browser: Browser, seeded
) -> None:
    url, plan = seeded
    period = f"{plan.start:%Y-%m}"
    expected = (await api(url, f"/scorecards?period={period}"))["scorecards"]
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    escaped: list[str] = []

    async def only_the_service(route) -> None:
        if route.request.url.startswith(url):
            await route.continue_()
        else:
            escaped.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_the_service)
    await sign_in(page, url)
    await page.goto(f"{url}/?period={period}")
    assert await page.title() == f"Bothways · Service excellence · {period}"
    rows = page.locator("#scorecards tbody tr")
    assert await rows.count() == len(expected)
    shown = [await rows.nth(i).get_attribute("data-service") for i in range(await rows.count())]
    assert shown == [card["business_service"] for card in expected], "sorted by experience score"
    for card in expected:
        row = page.locator(f'#scorecards tr[data-service="{card["business_service"]}"]')
        csat = card["customer"]["csat"]["csat_percent"]
        csat_text = await row.locator('[data-figure="csat"]').inner_text()
        assert csat_text.startswith(f"{csat:.1f}%" if csat is not None else NO_FIGURE), (
            card["business_service"],
            csat_text,
        )
        score = card["experience"]["score"]
        experience = await row.locator('[data-figure="experience"]').inner_text()
        assert experience.startswith(f"{score:.1f}" if score is not None else NO_FIGURE)
        sla = await row.locator('[data-figure="sla"]').inner_text()
        assert sla == f"{card['provider']['sla_compliance_percent']:.1f}%"
    assert await page.locator('#scorecards tr[data-service="payroll"] .flag').inner_text() == "watermelon"
    assert await page.locator('#watermelons li[data-service="payroll"]').count() == 1
    drill_down = (await api(url, f"/watermelons?period={period}"))["tickets"]
    assert await page.locator("#watermelons tbody tr").count() == len(drill_down) > 0
    assert await page.locator("#followups tbody tr").count() > 0
    assert await page.locator("#at-risk tbody tr").count() > 0
    chart = page.locator('#charts figure[data-service="email"] svg')
    assert await chart.locator("g[data-series=sla] circle").count() >= 1
    assert (await chart.locator("g[data-series=csat] circle title").first.text_content() or "").startswith(
        "CSAT: "
    )
    assert escaped == [], "the dashboard must work offline"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "dashboard-laptop.png", full_page=True)
    await context.close()


async def test_the_dashboard_works_with_javascript_disabled_and_fits_a_phone(
    browser: Browser, seeded
) -> None:
    url, plan = seeded
    period = f"{plan.start:%Y-%m}"
    without_scripts = await browser.new_context(viewport=PHONE, java_script_enabled=False, is_mobile=True)
    page = await without_scripts.new_page()
    await sign_in(page, url)
    await page.goto(f"{url}/?period={period}")
    assert await page.locator("#scorecards tbody tr").count() == 4
    assert await page.locator('#charts figure[data-service="payroll"] polyline').count() >= 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "dashboard-phone.png", full_page=True)
    await without_scripts.close()

    phone = await browser.new_context(viewport=PHONE, is_mobile=True)
    page = await phone.new_page()
    await sign_in(page, url)
    await page.goto(f"{url}/?period={period}")
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "wide tables scroll inside their section, the page does not"
    await phone.close()


async def test_a_wrong_key_is_refused_and_signing_out_forgets_the_key(browser: Browser, seeded) -> None:
    url, _ = seeded
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    await sign_in(page, url, key="not-a-key")
    assert await page.locator("[role=alert]").inner_text() == "unknown API key"
    await page.fill("#api_key", READ_KEY)
    await page.click("button[type=submit]")
    assert page.url == f"{url}/"
    cookie = next(c for c in await context.cookies() if c["name"] == "bothways_key")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    await page.click("header button.quiet")
    assert page.url == f"{url}/login"
    await page.goto(f"{url}/")
    assert page.url == f"{url}/login"
    await context.close()
