"""DirectRoute: the endpoint gets the Request and its path parameters, and may declare nothing else."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import PlainTextResponse, Response

from bothways.web import DirectRoute

pytestmark = pytest.mark.unit


async def test_the_endpoint_gets_the_request_and_the_matched_path_parameters() -> None:
    router = APIRouter(route_class=DirectRoute)

    @router.post("/things/{kind}/{name}")
    async def thing(request: Request, kind: str, name: str) -> Response:
        return PlainTextResponse(f"{kind}/{name}/{(await request.body()).decode()}")

    app = FastAPI()
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.post("/things/lamp/desk", content=b"on")
    assert response.text == "lamp/desk/on"
    assert "/things/{kind}/{name}" in app.openapi()["paths"]


@pytest.mark.parametrize("declared", ["query", "no request"])
def test_an_endpoint_declaring_more_than_the_request_and_path_parameters_is_refused(declared: str) -> None:
    router = APIRouter(route_class=DirectRoute)

    async def with_query(request: Request, kind: str, limit: int = Query(10)) -> Response:
        return Response()

    async def without_request(kind: str) -> Response:
        return Response()

    endpoint = with_query if declared == "query" else without_request
    with pytest.raises(TypeError, match="takes the Request and path parameters only"):
        router.add_api_route("/things/{kind}", endpoint, methods=["GET"])
