"""HTTP routes of the ingest service: thin, each parses, calls one function, returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, model_validator

from bothways.errors import InvalidInput, Unauthenticated
from bothways.signing import SignatureRejected
from bothways.web import AdminScope, DirectRoute, RuntimeDep, invalid_path_parameter
from services.ingest import intake
from services.ingest.imports import ImportFile, ImportSummary, import_file
from services.ingest.intake import Accepted, ReceiptWriter, spooled
from services.ingest.mapping import Mapping as SourceMappings
from services.ingest.metrics import WEBHOOKS
from services.ingest.normalizers import IgnoredEvent
from services.ingest.readers import reader_for
from services.ingest.replay import ReplaySummary, replay
from services.ingest.settings import IngestSettings
from services.ingest.sources import SOURCES

router = APIRouter()
# The webhook route is the hot one: its endpoint is called without FastAPI's parameter resolution.
webhook_router = APIRouter(tags=["webhooks"], route_class=DirectRoute)

SourceName = Literal["generic", "jira", "zendesk", "servicenow", "freshservice", "pagerduty", "alertmanager"]


async def source_mappings(runtime: RuntimeDep) -> SourceMappings:
    return cast(SourceMappings, runtime.extras["mappings"])


Mappings = Annotated[SourceMappings, Depends(source_mappings)]


@dataclass(frozen=True)
class Webhooks:
    """What the webhook route needs, gathered at start and read from the app's state, not resolved as
    FastAPI dependencies per request (their resolution was a seventh of ingest's CPU per webhook)."""

    settings: IngestSettings
    mappings: SourceMappings
    receipts: ReceiptWriter


def _webhooks(request: Request) -> Webhooks:
    return cast(Webhooks, request.app.state.runtime.extras["webhooks"])


@webhook_router.post(
    "/webhooks/{source}",
    status_code=202,
    response_model=Accepted,
    responses={
        401: {"description": "not authentic"},
        422: {"description": "stored as rejected, naming the field; or an unknown source, not stored"},
    },
)
async def receive_webhook(
    request: Request,
    source: Annotated[SourceName, Path(description="the platform that sends the webhook")],
) -> Response:
    """A platform's webhook: authenticated its own way, stored durably, answered 202 (or 422 naming the field)."""
    spec = SOURCES.get(source)
    if spec is None:  # a DirectRoute: the path parameter arrives unchecked
        raise invalid_path_parameter("source", f"no webhook source {source!r}; one of {', '.join(SOURCES)}")
    webhooks = _webhooks(request)
    body = await request.body()
    now = datetime.now(UTC)
    try:
        signed_id = spec.authenticate(request.headers, body, webhooks.settings, now)
    except SignatureRejected as exc:
        WEBHOOKS.labels(source, "unauthenticated").inc()
        raise Unauthenticated(str(exc)) from exc
    intake.require_json(request.headers.get("content-type"))
    payload = intake.parse_json(body)
    delivery_id = signed_id or spec.delivery_id(request.headers, payload, body)
    delivery = intake.Delivery(source, delivery_id, now, dict(request.headers), body)
    try:
        events = spec.normalize(payload, webhooks.mappings, now)
    except IgnoredEvent as exc:
        return _answer(await _stored(webhooks.receipts, delivery, outcome="ignored", note=exc.reason))
    except InvalidInput as exc:
        stored = await _stored(webhooks.receipts, delivery, outcome="rejected", note=exc.message)
        body_out = {
            "error": exc.code,
            "message": exc.message,
            "field": exc.field,
            "duplicate": stored.duplicate,
        }
        return JSONResponse(body_out, status_code=422)
    accepted = await webhooks.receipts.store(intake.receipt_for(delivery, events))
    WEBHOOKS.labels(source, "duplicate" if accepted.duplicate else accepted.outcome).inc()
    return _answer(accepted)


def _answer(accepted: Accepted) -> Response:
    """The 202, rendered here: through response_model FastAPI would validate the model again."""
    return Response(accepted.model_dump_json(), status_code=202, media_type="application/json")


async def _stored(receipts: ReceiptWriter, delivery: intake.Delivery, *, outcome: str, note: str) -> Accepted:
    stored = await receipts.store(intake.receipt_for(delivery, [], outcome=outcome, note=note))
    WEBHOOKS.labels(delivery.source, "duplicate" if stored.duplicate else outcome).inc()
    return stored


class ReplayRequest(BaseModel):
    """Which stored deliveries to normalise again: received in [since, until), optionally of one source."""

    since: AwareDatetime
    until: AwareDatetime | None = None
    source: SourceName | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ReplayRequest:
        if self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")
        return self


@router.post("/admin/replay", response_model=ReplaySummary, dependencies=[AdminScope], tags=["admin"])
async def replay_receipts(request: ReplayRequest, runtime: RuntimeDep, mappings: Mappings) -> ReplaySummary:
    """Re-derive events from stored deliveries with the current mapping and send them again."""
    until = request.until or datetime.now(UTC)
    return await replay(
        runtime.pool, mappings=mappings, since=request.since, until=until, source=request.source
    )


ImportKind = Literal["servicenow-csv", "jsonl"]


@router.post("/imports/{kind}", response_model=ImportSummary, dependencies=[AdminScope], tags=["admin"])
async def import_history(
    kind: ImportKind,
    request: Request,
    runtime: RuntimeDep,
    mappings: Mappings,
    time_zone: Annotated[str, Query(description="zone of the export's dates")] = "UTC",
    date_format: Annotated[list[str] | None, Query(description="strptime format(s) of the dates")] = None,
    name: Annotated[str, Query(max_length=200, description="a name for the file in the summary")] = "upload",
) -> ImportSummary:
    """Import a history file (the body, streamed to disk): resumable, and a second upload changes nothing."""
    read = reader_for(kind, mappings=mappings, time_zone=time_zone, date_formats=date_format)
    async with spooled(request) as path:
        return await import_file(runtime.pool, ImportFile(kind, name, path), read=read)
