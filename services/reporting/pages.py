"""The dashboard: server-rendered HTML at `/`, for people, with a login form that keeps the API key in a cookie.

No JavaScript and no network beyond this service: the charts are inline SVG laid out by charts.py and
the stylesheet is inlined, so the page works offline, with scripts disabled, on a laptop or a phone.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from bothways.web import RuntimeDep, scopes_of
from services.reporting import reports, tables
from services.reporting.api import Now, Rules, Snapshot, csv_response
from services.reporting.charts import Month, two_sided_chart
from services.reporting.periods import InvalidPeriod, Period
from services.reporting.scorecard import Trend

router = APIRouter(tags=["dashboard"])
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

COOKIE = "bothways_key"
COOKIE_SECONDS = 12 * 3600
READING_SCOPES = frozenset({"read", "admin"})
NO_FIGURE = "\u2013"  # an en dash where there is no figure (withheld or not measured)


def _percent(value: float | None, digits: int = 1) -> str:
    return NO_FIGURE if value is None else f"{value:.{digits}f}%"


def _signed(value: float | None) -> str:
    return NO_FIGURE if value is None else f"{value:+.0f}"


def _instant(value: datetime | None) -> str:
    return NO_FIGURE if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _hours(seconds: float | None) -> str:
    return NO_FIGURE if seconds is None else f"{seconds / 3600:.1f} h"


templates.env.filters.update(percent=_percent, signed=_signed, instant=_instant, hours=_hours)


def presented_key(request: Request) -> str | None:
    """The API key of the request: the dashboard cookie, or a bearer header (for scripts and curl)."""
    kind, _, bearer = request.headers.get("authorization", "").partition(" ")
    if kind.lower() == "bearer" and bearer.strip():
        return bearer.strip()
    return request.cookies.get(COOKIE) or None


def may_read(request: Request, runtime: RuntimeDep) -> bool:
    """Whether the request carries a key with the read (or admin) scope."""
    key = presented_key(request)
    scopes = scopes_of(key, runtime.settings) if key else None
    return bool(scopes and scopes & READING_SCOPES)


def to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


@router.get("/", response_class=HTMLResponse)
async def show_dashboard(
    request: Request,
    runtime: RuntimeDep,
    conn: Snapshot,
    rules: Rules,
    now: Now,
    period: Annotated[str | None, Query(max_length=20, description="a month as YYYY-MM")] = None,
) -> Response:
    """The dashboard of a month (the current one by default); without a key, the login form."""
    if not may_read(request, runtime):
        return to_login()
    try:
        month = Period.parse(period, now=now) if period else Period.of(now)
    except InvalidPeriod as exc:
        failed = {"error": exc.message, "period": period, "current": str(Period.of(now))}
        return templates.TemplateResponse(request, "dashboard.html", failed, status_code=422)
    board = await reports.dashboard(conn, period=month, rules=rules, now=now)
    context: dict[str, object] = {
        "board": board,
        "period": str(month),
        "current": str(Period.of(now)),
        "charts": {service: two_sided_chart(chart_months(trend)) for service, trend in board.trends.items()},
        "now": now,
    }
    return templates.TemplateResponse(request, "dashboard.html", context)


@router.get("/login", response_class=HTMLResponse)
async def show_login(request: Request) -> Response:
    """The sign-in form."""
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
async def sign_in(
    request: Request, runtime: RuntimeDep, api_key: Annotated[str, Form(min_length=1, max_length=500)]
) -> Response:
    """Keep a key with the read scope in an HttpOnly cookie; refuse any other, saying why."""
    scopes = scopes_of(api_key.strip(), runtime.settings)
    if not scopes or not scopes & READING_SCOPES:
        error = "unknown API key" if not scopes else "this API key lacks the 'read' scope"
        return templates.TemplateResponse(request, "login.html", {"error": error}, status_code=401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE,
        api_key.strip(),
        max_age=COOKIE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    return response


@router.post("/logout")
async def sign_out() -> Response:
    """Forget the key."""
    response = to_login()
    response.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return response


@router.get("/dashboard/scorecards.csv")
async def download_scorecards(
    request: Request,
    runtime: RuntimeDep,
    conn: Snapshot,
    rules: Rules,
    now: Now,
    period: Annotated[str, Query(max_length=20, description="a month as YYYY-MM")],
) -> Response:
    """The month's scorecards as CSV, for the dashboard's signed-in reader."""
    if not may_read(request, runtime):
        return to_login()
    month = Period.parse(period, now=now)
    listed = await reports.scorecards(conn, period=month, rules=rules, now=now)
    rows = tables.scorecard_rows(listed.scorecards)
    return csv_response(rows, columns=tables.SCORECARD_COLUMNS, filename=f"scorecards-{month}")


@router.get("/dashboard/watermelons.csv")
async def download_watermelons(
    request: Request,
    runtime: RuntimeDep,
    conn: Snapshot,
    rules: Rules,
    now: Now,
    period: Annotated[str, Query(max_length=20, description="a month as YYYY-MM")],
) -> Response:
    """The month's watermelon drill-down as CSV, for the dashboard's signed-in reader."""
    if not may_read(request, runtime):
        return to_login()
    month = Period.parse(period, now=now)
    found = await reports.watermelons(conn, period=month, rules=rules, now=now)
    rows = tables.watermelon_rows(found)
    return csv_response(rows, columns=tables.WATERMELON_COLUMNS, filename=f"watermelons-{month}")


def chart_months(trend: Trend) -> list[Month]:
    """A trend's points as the chart's months."""
    return [
        Month(
            period=p.period,
            sla_compliance=p.sla_compliance_percent,
            availability=p.availability_percent,
            availability_objective=p.availability_objective_percent,
            csat=p.csat_percent,
            nps=p.nps,
        )
        for p in trend.points
    ]


def is_https(request: Request) -> bool:
    """Whether the browser reached us over TLS (directly, or through a proxy that says so)."""
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip() == "https"
