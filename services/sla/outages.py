"""Availability of business services, wired: signals and major incidents in, outages and figures out.

Every change is recomputed, never patched: a signal's episodes are folded again from all its events, a
service's outages and the monthly figures it touches are computed again from all its signals, and what
differs from what was announced is announced (the outbox, in the caller's transaction). A service's row
is locked while it is recomputed, so the consumer and the scheduler never announce the same change twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bothways.db import Connection
from bothways.errors import InvalidInput, NotFound
from bothways.events import (
    AvailabilityComputed,
    Envelope,
    ObjectiveAtRisk,
    OutageEnded,
    OutageImpact,
    OutageSignal,
    OutageStarted,
    ServiceOutageClosed,
    ServiceOutageEvent,
    ServiceOutageOpened,
    ServiceOutageUpdated,
    TicketChanged,
    deterministic_id,
    envelope_for,
)
from bothways.outbox import enqueue
from bothways.scheduler import StepResult, wake_scheduler
from services.sla import availability_store as store
from services.sla.availability import (
    SRE_BURN_ALERTS,
    AvailabilityFigures,
    Impact,
    Period,
    ServiceRecord,
    agreed_service_time,
    always_agreed,
    availability_figures,
    burn_rate,
    calendar_month,
    error_budget,
    exceeded_burn_alerts,
    month_of,
    months_overlapping,
)
from services.sla.availability_metrics import record_restored
from services.sla.calendar import BusinessClock
from services.sla.catalogue import (
    ALWAYS,
    BusinessService,
    Catalogue,
    CatalogueError,
    MajorIncidentRule,
    check_aliases,
    parse_rule,
    parse_services,
    ticket_attributes,
)
from services.sla.maintenance import MaintenanceError, MaintenanceWindow, parse_windows, window_intervals
from services.sla.outage_ledger import ChangeKind, Outage, OutageStatus, merged_outages, reconcile
from services.sla.rulebook import Rulebook
from services.sla.signals import (
    Anomaly,
    Episode,
    SignalEvent,
    SignalKind,
    fold_signal,
    major_incident_episode,
    plausible,
)
from services.sla.tracker import RULES

log = logging.getLogger(__name__)

EVENT_SOURCE = "/bothways/sla/availability"
RULE_SETTING = "major_incidents"
TICKET_SIGNAL_PREFIX = "ticket:"
# Burn-rate alerts need evaluating while a failure is within the longest alert window.
_BURN_HORIZON = max(alert.long_window for alert in SRE_BURN_ALERTS)
_OUTAGE_EVENTS: dict[ChangeKind, type[ServiceOutageEvent]] = {
    ChangeKind.OPENED: ServiceOutageOpened,
    ChangeKind.UPDATED: ServiceOutageUpdated,
    ChangeKind.CLOSED: ServiceOutageClosed,
}
# The figures a published month is compared on; rounding absorbs float noise, not real changes.
_COMPARED = (
    "objective_percent",
    "agreed_seconds",
    "downtime_seconds",
    "availability_percent",
    "error_budget_seconds",
    "budget_remaining_seconds",
    "outages",
    "mtrs_seconds",
    "mtbf_seconds",
)


@dataclass(frozen=True)
class ServiceContext:
    """Everything one business service's figures are computed from."""

    service: BusinessService
    timezone: str
    windows: tuple[MaintenanceWindow, ...]
    episodes: Mapping[str, tuple[Episode, ...]]
    clock: BusinessClock | None
    created_at: datetime

    def record(self, *, start: datetime, end: datetime, agreed_time: bool = True) -> ServiceRecord:
        """The service's record with agreed time and windows laid out over [start, end); without
        `agreed_time` the agreed time is left 24x7, enough for failures, which are wall-clock."""
        agreed = (
            always_agreed()
            if self.clock is None or not agreed_time
            else agreed_service_time(self.clock.open_intervals(start=start, end=end))
        )
        return ServiceRecord(
            outages=tuple(e.signal() for stretches in self.episodes.values() for e in stretches),
            maintenance=tuple(window_intervals(self.windows, start=start, end=end)),
            agreed=agreed,
            weights=self.service.weights.weights(),
        )

    def earliest(self, *, now: datetime) -> datetime:
        """The first instant any signal of the service reports, or `now`."""
        return min((e.started_at for s in self.episodes.values() for e in s), default=now)

    def figures(self, period: Period, *, now: datetime) -> AvailabilityFigures:
        """The figures of one period as of `now`."""
        record = self.record(start=period.start, end=period.end)
        return availability_figures(record, period=period, now=now, objective=self.service.objective)


# Loading


async def load_catalogue(conn: Connection) -> Catalogue:
    """The business services in the catalogue."""
    return Catalogue(
        tuple(BusinessService.model_validate(row["definition"]) for row in await store.services(conn))
    )


async def load_rule(conn: Connection) -> MajorIncidentRule:
    """The rule saying which tickets are major incidents (the default one when none is stored)."""
    return parse_rule(await store.setting(conn, name=RULE_SETTING))


def _clock(rulebook: Rulebook, calendar: str) -> BusinessClock | None:
    if calendar == ALWAYS:
        return None
    version = rulebook.current_calendars[calendar]
    return rulebook.clocks({calendar: version})[calendar]


def _zones(rulebook: Rulebook) -> dict[str, str]:
    current = rulebook.current_calendars
    return {name: rulebook.calendars[(name, version)].timezone for name, version in current.items()}


def _context(row: dict[str, Any], *, signals: Sequence[dict[str, Any]], rulebook: Rulebook) -> ServiceContext:
    service = BusinessService.model_validate(row["definition"])
    return ServiceContext(
        service=service,
        timezone=service.time_zone(_zones(rulebook)),
        windows=tuple(MaintenanceWindow.model_validate(w) for w in row["maintenance"]),
        episodes={s["signal_key"]: tuple(Episode.from_json(e) for e in s["episodes"]) for s in signals},
        clock=_clock(rulebook, service.calendar),
        created_at=row["created_at"],
    )


async def load_context(conn: Connection, *, service_id: str, lock: bool = False) -> ServiceContext | None:
    """One service's context; `lock` holds its row until the transaction ends."""
    row = await (store.lock_service if lock else store.service)(conn, service_id=service_id)
    if row is None:
        return None
    signals = await store.service_signals(conn, service_id=service_id)
    return _context(row, signals=signals, rulebook=await RULES.get(conn))


async def all_contexts(conn: Connection) -> list[ServiceContext]:
    """Every service's context (for the metrics and the overview)."""
    rulebook = await RULES.get(conn)
    signals: dict[str, list[dict[str, Any]]] = {}
    for signal in await store.mapped_signals(conn):
        signals.setdefault(signal["business_service"], []).append(signal)
    return [
        _context(row, signals=signals.get(row["id"], []), rulebook=rulebook)
        for row in await store.services(conn)
    ]


# Signals in


_KINDS = {OutageStarted: SignalKind.STARTED, OutageEnded: SignalKind.ENDED}


async def record_signal(conn: Connection, *, signal: OutageSignal, event_id: str, now: datetime) -> None:
    """Add an outage signal event, fold the signal again and recompute what it changes."""
    kind = _KINDS.get(type(signal), SignalKind.UPDATED)
    if not await store.record_signal_event(conn, event_id=event_id, kind=kind.value, signal=signal):
        return
    previous = await store.lock_signal(conn, signal_key=signal.signal_key)
    events = [
        SignalEvent(
            event_id=row["event_id"],
            kind=SignalKind(row["kind"]),
            occurred_at=row["occurred_at"],
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            impact=Impact(row["impact"]),
            planned=row["planned"],
        )
        for row in await store.signal_events(conn, signal_key=signal.signal_key)
    ]
    folded = fold_signal(events)
    episodes, implausible = plausible(folded.episodes, now=now)
    catalogue = await load_catalogue(conn)
    service_id = catalogue.resolve(
        named=[signal.business_service, signal.service_reference], attributes=signal.labels
    )
    row = {
        "signal_key": signal.signal_key,
        "source": signal.source,
        "business_service": service_id,
        "reported_service": signal.business_service,
        "service_reference": signal.service_reference,
        "labels": signal.labels,
        "title": signal.title,
        "episodes": [e.to_json() for e in episodes],
    }
    anomalies = (*folded.anomalies, *implausible)
    await _save_signal(conn, row=row, previous=previous, anomalies=anomalies, cause=event_id, now=now)


async def track_major_incidents(
    conn: Connection, *, snapshots: Sequence[tuple[str, TicketChanged]], now: datetime
) -> None:
    """Derive the outages of a batch's major-incident tickets from their newest snapshots (stored already)."""
    rule = await load_rule(conn)
    keys = {TICKET_SIGNAL_PREFIX + ticket.ticket_key for _, ticket in snapshots}
    known = await store.existing_signals(conn, signal_keys=sorted(keys))
    latest_event: dict[str, str] = {}
    for event_id, ticket in snapshots:
        key = TICKET_SIGNAL_PREFIX + ticket.ticket_key
        # Only a ticket that is (or was) a major incident costs more than this loop.
        if key in known or rule.covers(ticket):
            latest_event[ticket.ticket_key] = event_id
    for ticket_key in sorted(latest_event):
        await _track_major_incident(
            conn, ticket_key=ticket_key, rule=rule, event_id=latest_event[ticket_key], now=now
        )


async def _track_major_incident(
    conn: Connection, *, ticket_key: str, rule: MajorIncidentRule, event_id: str, now: datetime
) -> None:
    key = TICKET_SIGNAL_PREFIX + ticket_key
    previous = await store.lock_signal(conn, signal_key=key)
    stored = await store.latest_ticket(conn, ticket_key=ticket_key)
    if stored is None:
        return
    latest = TicketChanged.model_validate_json(stored)
    episode, anomalies = major_incident_episode(latest, rule=rule)
    if previous is None and episode is None and not anomalies:
        return
    episodes, implausible = plausible([episode] if episode else [], now=now)
    attributes = ticket_attributes(latest)
    catalogue = await load_catalogue(conn)
    row = {
        "signal_key": key,
        "source": latest.source,
        "business_service": catalogue.resolve(
            named=[latest.business_service], attributes=attributes, ticket=True
        ),
        "reported_service": latest.business_service,
        "service_reference": latest.business_service or latest.ticket_key,
        "labels": attributes,
        "title": latest.title,
        "episodes": [e.to_json() for e in episodes],
    }
    tagged = [Anomaly(a.kind, a.detail, event_id) for a in (*anomalies, *implausible)]
    await _save_signal(conn, row=row, previous=previous, anomalies=tagged, cause=event_id, now=now)


async def _save_signal(
    conn: Connection,
    *,
    row: dict[str, Any],
    previous: dict[str, Any] | None,
    anomalies: Sequence[Anomaly],
    cause: str,
    now: datetime,
) -> None:
    """Store a signal's new state, its anomalies, and recompute the services it counted and counts for."""
    key, service_id = row["signal_key"], row["business_service"]
    await store.save_signal(conn, row=row)
    await store.record_anomalies(
        conn,
        rows=[
            {
                "kind": a.kind.value,
                "signal_key": key,
                "event_id": a.event_id,
                "business_service": service_id,
                "detail": a.detail,
            }
            for a in anomalies
        ],
    )
    await _track_mapping(conn, row=row, now=now)
    before = [Episode.from_json(e) for e in previous["episodes"]] if previous else []
    after = [Episode.from_json(e) for e in row["episodes"]]
    old_service = previous["business_service"] if previous else None
    if before and before != after and not _only_extended(before, after):
        detail = {
            "signal_key": key,
            "before": previous["episodes"] if previous else [],
            "after": row["episodes"],
        }
        await store.audit(
            conn, service_id=service_id, period=None, kind="signal_corrected", cause=cause, detail=detail
        )
    if old_service == service_id:
        changed = set(before) ^ set(after)
        if changed and service_id is not None:
            await refresh_service(
                conn, service_id=service_id, stretches=_stretches(changed, now=now), cause=cause, now=now
            )
        return
    for affected in sorted({old_service, service_id} - {None}):
        assert affected is not None
        stretches = _stretches([*before, *after], now=now)
        await refresh_service(conn, service_id=affected, stretches=stretches, cause=cause, now=now)


def _only_extended(before: Sequence[Episode], after: Sequence[Episode]) -> bool:
    """Whether the change only closed open episodes or added new ones (the normal course, not a correction)."""

    def kept(episode: Episode) -> bool:
        if episode in after:
            return True
        return episode.ended_at is None and any(
            (e.started_at, e.impact, e.planned) == (episode.started_at, episode.impact, episode.planned)
            for e in after
        )

    return all(kept(episode) for episode in before)


async def _track_mapping(conn: Connection, *, row: dict[str, Any], now: datetime) -> None:
    """Show a signal with outages that maps to no service as an anomaly; clear it once it maps."""
    if row["business_service"] is None and row["episodes"]:
        named = row["reported_service"] or row["service_reference"]
        detail = f"no business service in the catalogue is {named!r} or matches its labels; kept, not counted"
        await store.open_unmapped(conn, signal_key=row["signal_key"], detail=detail)
    else:
        await store.resolve_unmapped(conn, signal_key=row["signal_key"], at=now)


def _stretches(episodes: Iterable[Episode], *, now: datetime) -> list[tuple[datetime, datetime]]:
    """The stretches up to `now` whose figures the episodes can change."""
    return [(e.started_at, min(e.ended_at or now, now)) for e in episodes if e.started_at < now]


# Recomputing one service


async def refresh_service(
    conn: Connection,
    *,
    service_id: str,
    stretches: Sequence[tuple[datetime, datetime]] = (),
    every_month: bool = False,
    cause: str,
    now: datetime,
) -> None:
    """Recompute a service's outages and the months the stretches touch (or every published month)."""
    context = await load_context(conn, service_id=service_id, lock=True)
    if context is None:
        return
    await _reconcile_outages(conn, context, now=now)
    labels = {
        label
        for start, end in stretches
        for label in months_overlapping(start, max(start, end), tz=context.timezone)
    }
    if every_month:
        labels |= {row["period"] for row in await store.months(conn, service_id=service_id)}
        labels.add(month_of(now, tz=context.timezone))
    await publish_months(conn, context, labels=labels, cause=cause, now=now)
    await store.evaluate_by(conn, service_id=service_id, at=now)
    await wake_scheduler(conn)


async def _reconcile_outages(conn: Connection, context: ServiceContext, *, now: datetime) -> None:
    """Announce what changed on the service's merged outages."""
    service_id = context.service.id
    # The whole history, but failures are wall-clock: no need to lay out years of opening hours.
    record = context.record(start=context.earliest(now=now), end=now, agreed_time=False)
    fresh = merged_outages(record, episodes=context.episodes, now=now)
    stored = [_outage(row) for row in await store.outages(conn, service_id=service_id)]
    envelopes: list[Envelope] = []
    for change in reconcile(stored, fresh, now=now):
        outage = change.outage
        values = _outage_values(outage)
        if outage.id is None:
            outage_id = await store.insert_outage(conn, service_id=service_id, outage=values)
        else:
            outage_id = outage.id
            await store.update_outage(conn, outage={**values, "id": outage_id})
        first = outage.revision - len(change.kinds) + 1
        for offset, kind in enumerate(change.kinds):
            event = _outage_event(
                kind, outage, service_id=service_id, outage_id=outage_id, revision=first + offset, now=now
            )
            identifier = deterministic_id("service_outage", service_id, str(outage_id), str(event.revision))
            envelopes.append(envelope_for(event, event_id=identifier, source=EVENT_SOURCE))
            await store.audit(
                conn,
                service_id=service_id,
                period=None,
                kind=f"outage_{kind.value}",
                cause=f"outage {service_id}/{outage_id}",
                detail=event.model_dump(mode="json"),
            )
        if ChangeKind.CLOSED in change.kinds and outage.restored_at is not None:
            record_restored(service_id, (outage.restored_at - outage.started_at).total_seconds())
    await enqueue(conn, envelopes)


def _outage(row: dict[str, Any]) -> Outage:
    return Outage(
        started_at=row["started_at"],
        restored_at=row["restored_at"],
        impact=Impact(row["impact"]),
        signals=tuple(row["signals"]),
        status=OutageStatus(row["status"]),
        id=row["id"],
        revision=row["revision"],
    )


def _outage_values(outage: Outage) -> dict[str, Any]:
    return {
        "started_at": outage.started_at,
        "restored_at": outage.restored_at,
        "impact": outage.impact.value,
        "status": outage.status.value,
        "signals": list(outage.signals),
        "revision": outage.revision,
    }


def _outage_event(
    kind: ChangeKind, outage: Outage, *, service_id: str, outage_id: int, revision: int, now: datetime
) -> ServiceOutageEvent:
    """The event announcing one change; an opening announced with its closing still says open."""
    opening = kind is ChangeKind.OPENED
    restored = None if opening else outage.restored_at
    status = OutageStatus.OPEN if opening else outage.status
    occurred = {ChangeKind.OPENED: outage.started_at, ChangeKind.CLOSED: outage.restored_at}.get(kind) or now
    return _OUTAGE_EVENTS[kind](
        business_service=service_id,
        outage_id=f"{service_id}/{outage_id}",
        occurred_at=occurred,
        started_at=outage.started_at,
        restored_at=restored,
        status=status.value,
        impact=OutageImpact(outage.impact.value),
        duration_seconds=max(0, int(((restored or now) - outage.started_at).total_seconds())),
        signals=list(outage.signals)[:500],
        revision=revision,
    )


# Monthly figures


def _month_figures(context: ServiceContext, period: Period, figures: AvailabilityFigures) -> dict[str, Any]:
    """The published figures of a month: AvailabilityComputed's fields but the instant and correction flag."""
    assert figures.budget is not None
    availability = figures.availability
    return {
        "business_service": context.service.id,
        "period": period.label,
        "period_start": period.start.isoformat(),
        "period_end": period.end.isoformat(),
        "objective_percent": context.service.objective_percent,
        "agreed_seconds": figures.agreed_seconds,
        "downtime_seconds": round(figures.weighted_downtime_seconds, 3),
        "availability_percent": None if availability is None else round(availability * 100, 6),
        "error_budget_seconds": round(figures.budget.allowed_seconds, 3),
        "budget_remaining_seconds": round(figures.budget.remaining_seconds, 3),
        "outages": figures.outages,
        "mtrs_seconds": None if figures.mtrs_seconds is None else round(figures.mtrs_seconds, 3),
        "mtbf_seconds": None if figures.mtbf_seconds is None else round(figures.mtbf_seconds, 3),
    }


def _same(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    return all(left.get(name) == right.get(name) for name in _COMPARED)


async def publish_months(
    conn: Connection, context: ServiceContext, *, labels: Iterable[str], cause: str, now: datetime
) -> None:
    """Announce the figures of the months given where they differ from those last announced."""
    stored = {row["period"]: row for row in await store.months(conn, service_id=context.service.id)}
    envelopes = []
    for label in sorted(set(labels)):
        period = calendar_month(label, tz=context.timezone)
        if period.start >= now:
            continue
        envelope = await _publish_month(
            conn, context, period=period, previous=stored.get(label), cause=cause, now=now
        )
        if envelope is not None:
            envelopes.append(envelope)
    await enqueue(conn, envelopes)


async def _publish_month(
    conn: Connection,
    context: ServiceContext,
    *,
    period: Period,
    previous: dict[str, Any] | None,
    cause: str,
    now: datetime,
) -> Envelope | None:
    service_id, final = context.service.id, now >= period.end
    figures = _month_figures(context, period, context.figures(period, now=now))
    if previous is not None and _same(previous["figures"], figures):
        if previous["final"] != final:
            await store.set_month_final(conn, service_id=service_id, period=period.label, final=final)
        return None
    # A correction changes what was announced: the figures as of the last announcement, recomputed now.
    correction = previous is not None and not _same(
        previous["figures"], _month_figures(context, period, context.figures(period, now=previous["as_of"]))
    )
    revision = (previous["revision"] if previous else 0) + 1
    row = {
        "business_service": service_id,
        "period": period.label,
        "period_start": period.start,
        "period_end": period.end,
        "as_of": now,
        "final": final,
        "figures": figures,
        "revision": revision,
    }
    await store.save_month(conn, row=row)
    await store.audit(
        conn,
        service_id=service_id,
        period=period.label,
        kind="figures_corrected" if correction else "figures_published",
        cause=cause,
        detail={"revision": revision, "before": previous["figures"] if previous else None, "after": figures},
    )
    event = AvailabilityComputed.model_validate({**figures, "occurred_at": now, "correction": correction})
    identifier = deterministic_id("availability.computed", service_id, period.label, str(revision))
    return envelope_for(event, event_id=identifier, source=EVENT_SOURCE)


# The scheduler's step: months closed, burn-rate alerts evaluated


async def evaluate_due(conn: Connection, now: datetime, *, limit: int, every: timedelta) -> StepResult:
    """Evaluate the services due at `now`: close their ended months, raise their burn-rate alerts."""
    now = now.replace(microsecond=0)
    service_ids = await store.claim_due_services(conn, now=now, limit=limit)
    for service_id in service_ids:
        context = await load_context(conn, service_id=service_id)
        if context is None:
            continue
        await _close_months(conn, context, now=now)
        await _evaluate_burn(conn, context, now=now)
        await store.set_next_evaluation(
            conn, service_id=service_id, at=_next_evaluation(context, now=now, every=every)
        )
    return StepResult(done=len(service_ids), next_due=await store.next_evaluation(conn))


async def _close_months(conn: Connection, context: ServiceContext, *, now: datetime) -> None:
    """Publish every month since the service joined the catalogue that has none yet, and each ended month once final."""
    stored = {row["period"]: row for row in await store.months(conn, service_id=context.service.id)}
    since = calendar_month(month_of(context.created_at, tz=context.timezone), tz=context.timezone).start
    wanted = set(months_overlapping(min(since, now), now, tz=context.timezone))
    due = {label for label in wanted if label not in stored}
    due |= {label for label, row in stored.items() if not row["final"] and row["period_end"] <= now}
    await publish_months(conn, context, labels=due, cause="scheduled: month opened or closed", now=now)


async def _evaluate_burn(conn: Connection, context: ServiceContext, *, now: datetime) -> None:
    """Announce each burn-rate alert that starts firing; record those that stop."""
    service = context.service
    record = context.record(start=now - _BURN_HORIZON, end=now)
    firing = {alert.name for alert in exceeded_burn_alerts(record, now=now, objective=service.objective)}
    states = await store.burn_states(conn, service_id=service.id)
    envelopes = []
    for alert in SRE_BURN_ALERTS:
        was = bool(states.get(alert.name, {}).get("firing"))
        if (alert.name in firing) == was:
            continue
        await store.save_burn_state(conn, service_id=service.id, alert=alert.name, firing=not was, since=now)
        kind = "objective_recovered" if was else "objective_at_risk"
        await store.audit(
            conn,
            service_id=service.id,
            period=None,
            kind=kind,
            cause=f"burn-rate alert {alert.name}",
            detail={},
        )
        if not was:
            envelopes.append(_at_risk(context, record, alert_name=alert.name, now=now))
    await enqueue(conn, envelopes)


def _at_risk(context: ServiceContext, record: ServiceRecord, *, alert_name: str, now: datetime) -> Envelope:
    alert = next(a for a in SRE_BURN_ALERTS if a.name == alert_name)
    service = context.service
    label = month_of(now, tz=context.timezone)
    month = calendar_month(label, tz=context.timezone)
    budget = error_budget(
        context.record(start=month.start, end=month.end), period=month, now=now, objective=service.objective
    )

    def rate(window: timedelta) -> float:
        return burn_rate(record, window=window, now=now, objective=service.objective) or 0.0

    event = ObjectiveAtRisk(
        business_service=service.id,
        occurred_at=now,
        alert=alert.name,
        severity=alert.severity,
        objective_percent=service.objective_percent,
        threshold=alert.threshold,
        long_window_seconds=int(alert.long_window.total_seconds()),
        short_window_seconds=int(alert.short_window.total_seconds()),
        long_burn_rate=round(rate(alert.long_window), 3),
        short_burn_rate=round(rate(alert.short_window), 3),
        period=label,
        budget_remaining_seconds=round(budget.remaining_seconds, 3),
    )
    identifier = deterministic_id("availability.objective_at_risk", service.id, alert.name, now.isoformat())
    return envelope_for(event, event_id=identifier, source=EVENT_SOURCE)


def _next_evaluation(context: ServiceContext, *, now: datetime, every: timedelta) -> datetime:
    """Soon while a failure is within the burn-rate windows; else when the current month ends."""
    recent = now - _BURN_HORIZON
    if any(e.ended_at is None or e.ended_at > recent for s in context.episodes.values() for e in s):
        return now + every
    return calendar_month(month_of(now, tz=context.timezone), tz=context.timezone).end


# The catalogue, the major-incident rule and maintenance windows


def read_catalogue_file(path: Path) -> dict[str, Any]:
    """A YAML file of business services and the major-incident rule."""
    config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, dict):
        raise CatalogueError(f"{path} does not hold a mapping of services and major_incidents")
    return config


async def seed_catalogue(conn: Connection, *, config: Mapping[str, Any], now: datetime) -> bool:
    """Load a catalogue into an empty store; afterwards the API is the source of truth."""
    await store.lock_catalogue(conn)
    if await store.services(conn) or await store.setting(conn, name=RULE_SETTING) is not None:
        return False
    await put_rule(conn, definition=config.get("major_incidents") or {})
    await put_services(conn, definitions=config.get("services") or [], now=now)
    return True


async def put_rule(conn: Connection, *, definition: object) -> dict[str, Any]:
    """Store the major-incident rule; it applies to ticket events from now on."""
    try:
        rule = parse_rule(definition)
    except CatalogueError as error:
        raise InvalidInput(str(error)) from error
    value = rule.model_dump(mode="json")
    await store.put_setting(conn, name=RULE_SETTING, value=value)
    return value


async def put_services(conn: Connection, *, definitions: object, now: datetime) -> list[dict[str, Any]]:
    """Add or change services; signals are mapped again and the changed services' months recomputed."""
    await store.lock_catalogue(conn)
    rulebook = await RULES.get(conn, fresh=True)
    current = await load_catalogue(conn)
    try:
        parsed = parse_services(definitions, calendars=set(rulebook.current_calendars))
        merged = {s.id: s for s in current.services} | {s.id: s for s in parsed}
        check_aliases(list(merged.values()))
    except CatalogueError as error:
        raise InvalidInput(str(error)) from error
    changed = [s for s in parsed if current.get(s.id) != s]
    if not changed:
        return [service.model_dump(mode="json") for service in current.services]
    # Signals before services, the order the consumer takes them in, so the two never deadlock.
    signals = await store.lock_signals(conn)
    for service in changed:
        await _put_service(conn, service=service, before=current.get(service.id), now=now)
    remapped = await _remap_signals(
        conn, signals=signals, catalogue=Catalogue(tuple(merged.values())), now=now
    )
    for service_id in sorted({*remapped, *(s.id for s in changed)}):
        stretches = remapped.get(service_id, [])
        await refresh_service(
            conn, service_id=service_id, stretches=stretches, every_month=True, cause="PUT /services", now=now
        )
    return [service.model_dump(mode="json") for service in (await load_catalogue(conn)).services]


async def _put_service(
    conn: Connection, *, service: BusinessService, before: BusinessService | None, now: datetime
) -> None:
    definition = service.model_dump(mode="json")
    await store.put_service(conn, service_id=service.id, definition=definition, now=now)
    detail = {"before": before.model_dump(mode="json") if before else None, "after": definition}
    await store.audit(
        conn, service_id=service.id, period=None, kind="service_changed", cause="PUT /services", detail=detail
    )


async def _remap_signals(
    conn: Connection, *, signals: Sequence[dict[str, Any]], catalogue: Catalogue, now: datetime
) -> dict[str, list[tuple[datetime, datetime]]]:
    """Map every signal again under a changed catalogue: the stretches each service gained or lost."""
    touched: dict[str, list[tuple[datetime, datetime]]] = {}
    for row in signals:
        ticket = row["signal_key"].startswith(TICKET_SIGNAL_PREFIX)
        named = [row["reported_service"], None if ticket else row["service_reference"]]
        service_id = catalogue.resolve(named=named, attributes=row["labels"], ticket=ticket)
        if service_id == row["business_service"]:
            continue
        stretches = _stretches((Episode.from_json(e) for e in row["episodes"]), now=now)
        for affected in {row["business_service"], service_id} - {None}:
            touched.setdefault(affected, []).extend(stretches)
        await store.set_signal_service(conn, signal_key=row["signal_key"], service_id=service_id)
        await _track_mapping(conn, row={**row, "business_service": service_id}, now=now)
    return touched


async def put_maintenance(
    conn: Connection, *, service_id: str, definitions: object, now: datetime
) -> list[dict[str, Any]]:
    """Replace a service's maintenance windows and recompute its published months."""
    try:
        windows = parse_windows(definitions)
    except MaintenanceError as error:
        raise InvalidInput(str(error)) from error
    row = await store.lock_service(conn, service_id=service_id)
    if row is None:
        raise NotFound(f"no business service {service_id!r} in the catalogue")
    values = [window.model_dump(mode="json", exclude_none=True) for window in windows]
    await store.set_maintenance(conn, service_id=service_id, windows=values)
    detail = {"before": row["maintenance"], "after": values}
    await store.audit(
        conn,
        service_id=service_id,
        period=None,
        kind="maintenance_changed",
        cause="PUT maintenance",
        detail=detail,
    )
    await refresh_service(
        conn, service_id=service_id, every_month=True, cause="maintenance windows changed", now=now
    )
    return values
