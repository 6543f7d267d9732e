"""HTTP routes of business service availability: the catalogue, maintenance windows, figures, outages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel

from bothways.scheduler import utc_now
from bothways.web import AdminScope, Conn, ReadScope
from services.sla import availability_reads as reads
from services.sla import availability_store as store
from services.sla import outages
from services.sla.catalogue import SERVICE_ID_PATTERN, BusinessService, MajorIncidentRule
from services.sla.maintenance import MAX_WINDOWS, MaintenanceWindow

router = APIRouter(dependencies=[ReadScope], tags=["availability"])

ServiceId = Annotated[str, Path(pattern=SERVICE_ID_PATTERN, examples=["webshop"])]
PeriodSpec = Annotated[
    str | None,
    Query(
        max_length=20,
        description='A calendar month "YYYY-MM" (service time zone) or rolling "7d", "30d", "90d"; '
        "default the current month",
        examples=["2026-10", "30d"],
    ),
]
From = Annotated[AwareDatetime | None, Query(alias="from", description="start of a range (with to)")]
To = Annotated[AwareDatetime | None, Query(alias="to", description="end of a range (with from)")]
Limit = Annotated[int, Query(ge=1, le=1000)]


class ServiceOut(BusinessService):
    maintenance: list[dict[str, Any]]


class ErrorBudgetOut(BaseModel):
    allowed_seconds: float
    consumed_seconds: float
    remaining_seconds: float
    remaining_ratio: float | None


class AvailabilityOut(BaseModel):
    business_service: str
    name: str
    period: str
    period_start: datetime
    period_end: datetime
    as_of: datetime
    timezone: str
    calendar: str
    objective_percent: float
    agreed_seconds: int
    maintenance_seconds: int
    downtime_seconds: int
    weighted_downtime_seconds: float
    availability_percent: float | None
    outages: int
    mtrs_seconds: float | None
    mtbf_seconds: float | None
    mtbsi_seconds: float | None
    error_budget: ErrorBudgetOut
    burn_rates: dict[str, float | None]
    burn_alerts: list[str]
    up: bool


class SignalOut(BaseModel):
    signal_key: str
    source: str
    title: str | None
    service_reference: str
    episodes: list[dict[str, Any]]


class OutageOut(BaseModel):
    outage_id: str
    business_service: str
    started_at: datetime
    restored_at: datetime | None
    status: str
    impact: str
    duration_seconds: int
    revision: int
    signals: list[SignalOut]
    timezone: str


class AnomalyOut(BaseModel):
    id: int
    kind: str
    signal_key: str
    event_id: str
    business_service: str | None
    detail: str
    recorded_at: datetime
    resolved_at: datetime | None


class AuditOut(BaseModel):
    id: int
    business_service: str | None
    period: str | None
    kind: str
    cause: str
    detail: dict[str, Any]
    recorded_at: datetime


@router.get("/services", response_model=list[ServiceOut])
async def read_services(conn: Conn) -> list[dict[str, Any]]:
    """The business service catalogue, with each service's maintenance windows."""
    return [{**row["definition"], "maintenance": row["maintenance"]} for row in await store.services(conn)]


@router.put("/services", response_model=list[BusinessService], dependencies=[AdminScope])
async def write_services(
    conn: Conn, services: Annotated[list[BusinessService], Body(embed=True, max_length=500)]
) -> list[dict[str, Any]]:
    """Add or change business services; changed figures are recomputed and announced as corrections."""
    definitions = [service.model_dump(mode="json") for service in services]
    async with conn.transaction():
        return await outages.put_services(conn, definitions=definitions, now=utc_now())


@router.get("/services/{service_id}", response_model=ServiceOut)
async def read_service(conn: Conn, service_id: ServiceId) -> dict[str, Any]:
    """One business service."""
    return await reads.catalogue_entry(conn, service_id=service_id)


@router.get("/services/{service_id}/maintenance", response_model=list[MaintenanceWindow])
async def read_maintenance(conn: Conn, service_id: ServiceId) -> list[dict[str, Any]]:
    """A service's maintenance windows."""
    return await reads.maintenance(conn, service_id=service_id)


@router.put(
    "/services/{service_id}/maintenance", response_model=list[MaintenanceWindow], dependencies=[AdminScope]
)
async def write_maintenance(
    conn: Conn,
    service_id: ServiceId,
    windows: Annotated[list[MaintenanceWindow], Body(embed=True, max_length=MAX_WINDOWS)],
) -> list[dict[str, Any]]:
    """Replace a service's maintenance windows (one-off or weekly); the figures they touch are recomputed."""
    definitions = [window.model_dump(mode="json", exclude_none=True) for window in windows]
    async with conn.transaction():
        return await outages.put_maintenance(
            conn, service_id=service_id, definitions=definitions, now=utc_now()
        )


@router.get("/services/{service_id}/availability", response_model=AvailabilityOut)
async def read_availability(
    conn: Conn, service_id: ServiceId, period: PeriodSpec = None, start: From = None, end: To = None
) -> dict[str, Any]:
    """Availability, outages, MTRS, MTBF, MTBSI, error budget and burn rates of one service over a period."""
    return await reads.service_availability(
        conn, service_id=service_id, spec=period, start=start, end=end, now=utc_now().replace(microsecond=0)
    )


@router.get("/availability", response_model=list[AvailabilityOut])
async def read_all_availability(
    conn: Conn, period: PeriodSpec = None, start: From = None, end: To = None
) -> list[dict[str, Any]]:
    """Every service over a period, the least error budget remaining first."""
    return await reads.overview(conn, spec=period, start=start, end=end, now=utc_now().replace(microsecond=0))


@router.get("/availability/anomalies", response_model=list[AnomalyOut])
async def read_anomalies(
    conn: Conn,
    kind: Annotated[str | None, Query(max_length=100)] = None,
    resolved: Annotated[bool, Query(description="include anomalies that no longer hold")] = False,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    """Outage input kept but not counted as sent: unmapped services, ends before starts, ends without starts."""
    return await store.anomalies(conn, resolved=resolved, kind=kind, limit=limit)


@router.get("/services/{service_id}/outages", response_model=list[OutageOut])
async def read_outages(
    conn: Conn,
    service_id: ServiceId,
    start: From = None,
    end: To = None,
    withdrawn: Annotated[bool, Query(description="include outages withdrawn by corrections")] = False,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    """A service's merged outages, newest first, with the signals behind each."""
    return await reads.service_outages(
        conn, service_id=service_id, start=start, end=end, withdrawn=withdrawn, limit=limit, now=utc_now()
    )


@router.get("/services/{service_id}/audit", response_model=list[AuditOut])
async def read_audit(
    conn: Conn,
    service_id: ServiceId,
    period: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    """The audit trail of a service: corrections, published figures, catalogue and window changes."""
    return await reads.audit_trail(conn, service_id=service_id, period=period, limit=limit)


@router.get(
    "/services/{service_id}/openslo",
    response_class=Response,
    responses={200: {"content": {"application/yaml": {}, "application/json": {}}}},
)
async def read_openslo(
    conn: Conn, service_id: ServiceId, format: Literal["yaml", "json"] = "yaml"
) -> Response:
    """The service's objective as OpenSLO v1 documents (a Service and an SLO with burn-rate alerts)."""
    documents = await reads.openslo(conn, service_id=service_id)
    if format == "json":
        return JSONResponse(documents)
    return Response(yaml.safe_dump_all(documents, sort_keys=False), media_type="application/yaml")


@router.get("/major-incidents", response_model=MajorIncidentRule)
async def read_major_incident_rule(conn: Conn) -> MajorIncidentRule:
    """Which tickets count as outages (kinds, priority -> impact) and where their impact starts and ends."""
    return await outages.load_rule(conn)


@router.put("/major-incidents", response_model=MajorIncidentRule, dependencies=[AdminScope])
async def write_major_incident_rule(conn: Conn, rule: MajorIncidentRule) -> dict[str, Any]:
    """Change the major-incident rule; it applies to ticket events from now on."""
    async with conn.transaction():
        return await outages.put_rule(conn, definition=rule.model_dump(mode="json"))
