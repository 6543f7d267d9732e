"""The dashboard's HTTP side: who may see it, the key cookie, HTML errors and the CSV downloads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support import API_KEY, READ_KEY

pytestmark = pytest.mark.integration

NO_KEY = {"authorization": ""}


async def test_without_a_key_the_dashboard_and_its_downloads_send_to_the_login_form(run_service) -> None:
    async with run_service("reporting") as client:
        page = await client.get("/", headers=NO_KEY)
        download = await client.get("/dashboard/scorecards.csv?period=2026-10", headers=NO_KEY)
        form = await client.get("/login", headers=NO_KEY)
    assert (page.status_code, page.headers["location"]) == (303, "/login")
    assert (download.status_code, download.headers["location"]) == (303, "/login")
    assert form.status_code == 200
    assert 'name="api_key"' in form.text


async def test_signing_in_keeps_the_key_in_a_strict_httponly_cookie_secure_behind_tls(run_service) -> None:
    async with run_service("reporting") as client:
        plain = await client.post("/login", data={"api_key": READ_KEY}, headers=NO_KEY)
        proxied = await client.post(
            "/login", data={"api_key": READ_KEY}, headers={**NO_KEY, "x-forwarded-proto": "https"}
        )
        refused = await client.post("/login", data={"api_key": "nope"}, headers=NO_KEY)
        empty = await client.post("/login", data={"api_key": ""}, headers=NO_KEY)
        client.cookies.clear()
        client.cookies.set("bothways_key", READ_KEY)
        page = await client.get("/", headers=NO_KEY)
    assert (plain.status_code, plain.headers["location"]) == (303, "/")
    cookie = plain.headers["set-cookie"]
    assert cookie.startswith(f"bothways_key={READ_KEY};")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie
    assert "Secure" in proxied.headers["set-cookie"]
    assert refused.status_code == 401
    assert "unknown API key" in refused.text
    assert empty.status_code == 422
    assert page.status_code == 200
    assert "No business service has reported anything yet." in page.text


async def test_a_bad_month_on_the_dashboard_is_a_422_page_naming_it(run_service) -> None:
    async with run_service("reporting") as client:
        response = await client.get("/?period=2026-13")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "period &#39;2026-13&#39; is not a month as YYYY-MM" in response.text


async def test_the_signed_in_reader_downloads_the_months_csv(run_service) -> None:
    period = f"{datetime.now(UTC):%Y-%m}"
    async with run_service("reporting") as client:
        client.cookies.set("bothways_key", API_KEY)
        response = await client.get(f"/dashboard/scorecards.csv?period={period}", headers=NO_KEY)
        watermelons = await client.get(f"/dashboard/watermelons.csv?period={period}", headers=NO_KEY)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="scorecards-{period}.csv"'
    assert response.text.startswith("business_service,period,")
    assert watermelons.text.startswith("period,ticket_key,")
