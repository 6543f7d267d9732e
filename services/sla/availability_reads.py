"""What the availability API and the metrics read: figures computed from the stored signals as of now."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bothways.db import Connection, Pool
from bothways.errors import InvalidInput, NotFound
from bothways.scheduler import utc_now
from services.sla import availability_store as store
from services.sla.availability import (
    ROLLING_DAYS,
    AvailabilityError,
    Period,
    availability_figures,
    burn_rates,
    calendar_month,
    exceeded_burn_alerts,
    failures,
    month_of,
    parse_period,
    rolling_days,
)
from services.sla.availability_metrics import COLLECTOR, ServiceGauges
from services.sla.openslo import openslo_documents
from services.sla.outages import ServiceContext, all_contexts, load_context

# Business calendars answer for these years; a period outside them is refused rather than guessed.
_FIRST, _LAST = 1970, 2199
_LONGEST_RANGE = timedelta(days=366)
_BURN_SPAN = timedelta(days=3)


def resolve_period(
    *, spec: str | None, start: datetime | None, end: datetime | None, tz: str, now: datetime
) -> Period:
    """The period asked for: a month or rolling days (`period`), a range (`from`, `to`), else this month."""
    if spec is not None and (start is not None or end is not None):
        raise InvalidInput("give either period or from and to, not both", field="period")
    if (start is None) != (end is None):
        raise InvalidInput("a range needs both from and to", field="from" if start is None else "to")
    try:
        if start is not None and end is not None:
            period = Period(start, end, label="range")
        else:
            period = parse_period(spec or month_of(now, tz=tz), tz=tz, now=now)
    except AvailabilityError as error:
        raise InvalidInput(str(error), field="period" if spec else "to") from error
    if period.end - period.start > _LONGEST_RANGE:
        raise InvalidInput(f"a range spans at most {_LONGEST_RANGE.days} days", field="to")
    if not (period.start.year >= _FIRST and period.end.year <= _LAST):
        raise InvalidInput(f"periods lie between {_FIRST} and {_LAST}", field="period" if spec else "from")
    return period


def _figures(context: ServiceContext, period: Period, *, now: datetime) -> dict[str, Any]:
    service = context.service
    record = context.record(start=min(period.start, now - _BURN_SPAN), end=max(period.end, now))
    figures = availability_figures(record, period=period, now=now, objective=service.objective)
    rates = burn_rates(record, now=now, objective=service.objective)
    firing = exceeded_burn_alerts(record, now=now, objective=service.objective)
    budget = figures.budget
    assert budget is not None
    ongoing = [f for f in failures(record, now=now) if f.restored_at is None]
    return {
        "business_service": service.id,
        "name": service.name,
        "period": period.label,
        "period_start": period.start,
        "period_end": period.end,
        "as_of": now,
        "timezone": context.timezone,
        "calendar": service.calendar,
        "objective_percent": service.objective_percent,
        "agreed_seconds": figures.agreed_seconds,
        "maintenance_seconds": figures.maintenance_seconds,
        "downtime_seconds": figures.downtime_seconds,
        "weighted_downtime_seconds": figures.weighted_downtime_seconds,
        "availability_percent": None if figures.availability is None else figures.availability * 100,
        "outages": figures.outages,
        "mtrs_seconds": figures.mtrs_seconds,
        "mtbf_seconds": figures.mtbf_seconds,
        "mtbsi_seconds": figures.mtbsi_seconds,
        "error_budget": {
            "allowed_seconds": budget.allowed_seconds,
            "consumed_seconds": budget.consumed_seconds,
            "remaining_seconds": budget.remaining_seconds,
            "remaining_ratio": budget.remaining_ratio,
        },
        "burn_rates": {
            "1h": rates.one_hour,
            "6h": rates.six_hours,
            "1d": rates.one_day,
            "3d": rates.three_days,
        },
        "burn_alerts": [alert.name for alert in firing],
        "up": not ongoing,
    }


async def _context(conn: Connection, service_id: str) -> ServiceContext:
    context = await load_context(conn, service_id=service_id)
    if context is None:
        raise NotFound(f"no business service {service_id!r} in the catalogue")
    return context


async def service_availability(
    conn: Connection,
    *,
    service_id: str,
    spec: str | None,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    """One service's figures over the period asked for, as of now."""
    context = await _context(conn, service_id)
    period = resolve_period(spec=spec, start=start, end=end, tz=context.timezone, now=now)
    return _figures(context, period, now=now)


async def overview(
    conn: Connection, *, spec: str | None, start: datetime | None, end: datetime | None, now: datetime
) -> list[dict[str, Any]]:
    """Every service's figures over the period, the least budget remaining first."""
    rows = []
    for context in await all_contexts(conn):
        period = resolve_period(spec=spec, start=start, end=end, tz=context.timezone, now=now)
        rows.append(_figures(context, period, now=now))
    # Services without agreed time in the period have no budget to rank by: they come last.
    return sorted(
        rows,
        key=lambda r: (
            r["agreed_seconds"] == 0,
            r["error_budget"]["remaining_seconds"],
            r["business_service"],
        ),
    )


async def service_outages(
    conn: Connection,
    *,
    service_id: str,
    start: datetime | None,
    end: datetime | None,
    withdrawn: bool,
    limit: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """A service's merged outages, newest first, with the signals behind each and their stretches."""
    context = await _context(conn, service_id)
    rows = await store.outage_page(
        conn, service_id=service_id, withdrawn=withdrawn, start=start, end=end, limit=limit
    )
    signals = {s["signal_key"]: s for s in await store.service_signals(conn, service_id=service_id)}
    return [
        {
            "outage_id": f"{service_id}/{row['id']}",
            "business_service": service_id,
            "started_at": row["started_at"],
            "restored_at": row["restored_at"],
            "status": row["status"],
            "impact": row["impact"],
            "duration_seconds": int(((row["restored_at"] or now) - row["started_at"]).total_seconds()),
            "revision": row["revision"],
            "signals": [_signal_view(signals[key]) for key in row["signals"] if key in signals],
            "timezone": context.timezone,
        }
        for row in rows
    ]


def _signal_view(signal: dict[str, Any]) -> dict[str, Any]:
    return {
        "signal_key": signal["signal_key"],
        "source": signal["source"],
        "title": signal["title"],
        "service_reference": signal["service_reference"],
        "episodes": signal["episodes"],
    }


async def openslo(conn: Connection, *, service_id: str) -> list[dict[str, Any]]:
    """The OpenSLO documents of one service's objective."""
    context = await _context(conn, service_id)
    return openslo_documents(context.service, timezone=context.timezone)


async def catalogue_entry(conn: Connection, *, service_id: str) -> dict[str, Any]:
    """One catalogue entry with its maintenance windows."""
    row = await store.service(conn, service_id=service_id)
    if row is None:
        raise NotFound(f"no business service {service_id!r} in the catalogue")
    return {**row["definition"], "maintenance": row["maintenance"]}


async def maintenance(conn: Connection, *, service_id: str) -> list[dict[str, Any]]:
    entry = await catalogue_entry(conn, service_id=service_id)
    windows: list[dict[str, Any]] = entry["maintenance"]
    return windows


async def audit_trail(
    conn: Connection, *, service_id: str, period: str | None, limit: int
) -> list[dict[str, Any]]:
    """A service's audit trail, newest first."""
    await catalogue_entry(conn, service_id=service_id)
    return await store.audit_trail(conn, service_id=service_id, period=period, limit=limit)


# Metrics


def gauges(context: ServiceContext, *, months: list[dict[str, Any]], now: datetime) -> ServiceGauges:
    """One service's figures for the scrape: ratios, budget, up, and the two running totals."""
    service = context.service
    month = calendar_month(month_of(now, tz=context.timezone), tz=context.timezone)
    start = min(month.start, now - timedelta(days=max(ROLLING_DAYS)))
    agreed_total, weighted_total, live_from = _final_totals(context, months)
    record = context.record(start=min(start, live_from), end=max(month.end, now))
    periods = {"month": month, **{f"{days}d": rolling_days(days, now=now) for days in ROLLING_DAYS}}
    ratios = {}
    for name, period in periods.items():
        ratios[name] = availability_figures(record, period=period, now=now).availability
    this_month = availability_figures(record, period=month, now=now, objective=service.objective)
    live = availability_figures(record, period=Period(live_from, max(live_from, now)), now=now)
    assert this_month.budget is not None
    return ServiceGauges(
        service_id=service.id,
        up=all(f.restored_at is not None for f in failures(record, now=now)),
        objective=service.objective,
        ratios=ratios,
        budget_remaining_seconds=this_month.budget.remaining_seconds,
        agreed_seconds_total=agreed_total + live.agreed_seconds,
        weighted_downtime_seconds_total=weighted_total + live.weighted_downtime_seconds,
    )


def _final_totals(context: ServiceContext, months: list[dict[str, Any]]) -> tuple[float, float, datetime]:
    """Agreed and weighted seconds of the final months in an unbroken run from the service's first month,
    and the instant after which the totals are computed live."""
    first = calendar_month(month_of(context.created_at, tz=context.timezone), tz=context.timezone)
    final = {row["period_start"]: row for row in months if row["final"]}
    agreed = weighted = 0.0
    cursor = first.start
    while cursor in final:
        row = final[cursor]
        agreed += row["figures"]["agreed_seconds"]
        weighted += row["figures"]["downtime_seconds"]
        cursor = row["period_end"]
    return agreed, weighted, cursor


async def refresh_availability_metrics(pool: Pool) -> None:
    """Read every service's figures into the collector (a refresher of /metrics)."""
    now = utc_now().replace(microsecond=0)
    async with pool.acquire() as conn:
        contexts = await all_contexts(conn)
        months = await store.all_months(conn)
        anomalies = await store.open_anomaly_counts(conn)
    by_service: dict[str, list[dict[str, Any]]] = {}
    for row in months:
        by_service.setdefault(row["business_service"], []).append(row)
    COLLECTOR.update(
        [gauges(c, months=by_service.get(c.service.id, []), now=now) for c in contexts], anomalies=anomalies
    )
