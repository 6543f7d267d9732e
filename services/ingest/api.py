"""HTTP routes of the ingest service: thin, each parses, calls one function, returns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Request

from bothways import signing
from bothways.errors import Unauthenticated
from bothways.web import RuntimeDep
from services.ingest import generic, intake
from services.ingest.intake import Accepted
from services.ingest.metrics import WEBHOOKS
from services.ingest.settings import IngestSettings

router = APIRouter(tags=["webhooks"])


def ingest_settings(runtime: RuntimeDep) -> IngestSettings:
    return cast(IngestSettings, runtime.settings)


Settings = Annotated[IngestSettings, Depends(ingest_settings)]


@router.post("/webhooks/generic", status_code=202, response_model=Accepted)
async def receive_generic(request: Request, runtime: RuntimeDep, settings: Settings) -> Accepted:
    """A canonical ticket signed per Standard Webhooks; answered 202 once stored durably."""
    body = await request.body()
    now = datetime.now(UTC)
    try:
        delivery_id = signing.verify(request.headers, body, keys=settings.generic_keys(), now=now)
    except signing.SignatureRejected as exc:
        WEBHOOKS.labels("generic", "unauthenticated").inc()
        raise Unauthenticated(str(exc)) from exc
    intake.require_json(request.headers.get("content-type"))
    events = generic.normalize(intake.parse_json(body))
    delivery = intake.Delivery("generic", delivery_id, now, dict(request.headers), body)
    accepted = await intake.accept(runtime.pool, delivery=delivery, events=events)
    WEBHOOKS.labels("generic", "duplicate" if accepted.duplicate else "accepted").inc()
    return accepted
