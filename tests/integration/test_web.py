"""What every service shares: health, readiness, API keys and scopes, metrics, JSON errors."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support import API_KEY, READ_KEY

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", ["ingest", "sla", "survey", "reporting"])
async def test_each_service_is_alive_ready_and_serves_valid_prometheus_metrics(run_service, service) -> None:
    async with run_service(service) as client:
        health = await client.get("/healthz", headers={"authorization": ""})
        ready = await client.get("/readyz", headers={"authorization": ""})
        metrics = await client.get("/metrics")
    assert health.json() == {"status": "ok", "service": service}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "broker": "ok"}
    assert "bothways_outbox_backlog_events 0.0" in metrics.text
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: install Debian's prometheus package (.ci/run does)")
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=metrics.content, capture_output=True, check=False
    )
    assert lint.returncode == 0, lint.stdout.decode() + lint.stderr.decode()


async def test_readiness_reports_the_database_when_it_is_down(run_service, cuttable_database) -> None:
    via_proxy, database_link = cuttable_database
    async with run_service("sla", database_url=via_proxy) as sla:
        await database_link.cut()
        ready = await sla.get("/readyz")
        await database_link.restore()
    assert ready.status_code == 503
    assert ready.json()["database"].startswith("unavailable")
    assert ready.json()["broker"] == "ok"


@pytest.mark.parametrize(
    ("authorization", "status", "message"),
    [
        ("", 401, "missing API key"),
        ("Basic dXNlcjpwYXNz", 401, "missing API key"),
        ("Bearer not-a-key", 401, "unknown API key"),
    ],
)
async def test_rest_apis_refuse_requests_without_a_valid_key(
    run_service, authorization, status, message
) -> None:
    async with run_service("sla") as sla:
        response = await sla.get("/tickets/generic:1", headers={"authorization": authorization})
    assert response.status_code == status
    assert response.json()["error"] == "unauthenticated"
    assert response.json()["message"].startswith(message)


async def test_a_read_key_reads_but_an_admin_route_refuses_it_with_403(settings_for) -> None:
    import httpx
    from fastapi import APIRouter

    from bothways.cli import service_spec
    from bothways.web import AdminScope, ServiceSpec, create_app

    admin_only = APIRouter(dependencies=[AdminScope])

    @admin_only.put("/admin-thing")
    async def change_thing() -> dict[str, str]:
        return {"changed": "yes"}

    spec = ServiceSpec(
        name="sla", version="test", routers=[admin_only], migrations=service_spec("sla").migrations
    )
    app = create_app(spec, settings_for("sla"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            as_reader = await client.put("/admin-thing", headers={"authorization": f"Bearer {READ_KEY}"})
            as_admin = await client.put("/admin-thing", headers={"authorization": f"Bearer {API_KEY}"})
            metrics_as_reader = await client.get("/metrics", headers={"authorization": f"Bearer {READ_KEY}"})
    assert as_reader.status_code == 403
    assert as_reader.json() == {"error": "forbidden", "message": "this API key lacks the 'admin' scope"}
    assert as_admin.json() == {"changed": "yes"}
    assert metrics_as_reader.status_code == 200


async def test_an_unknown_route_and_a_bad_path_parameter_answer_json(run_service) -> None:
    async with run_service("sla") as sla:
        missing = await sla.get("/nowhere")
        invalid = await sla.get("/tickets/NOT A KEY")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    assert invalid.status_code == 422
    assert invalid.json()["fields"][0]["field"] == "path.ticket_key"


async def test_request_metrics_use_route_templates_and_fold_unknown_methods(run_service) -> None:
    async with run_service("sla") as sla:
        await sla.get("/tickets/generic:secret-42/slas")
        await sla.request("BREW", "/tickets/generic:secret-43/slas")
        metrics = (await sla.get("/metrics")).text
    durations = [
        line
        for line in metrics.splitlines()
        if line.startswith("bothways_http_request_duration_seconds_count")
    ]
    assert any('method="GET",route="/tickets/{ticket_key}/slas"' in line for line in durations), durations
    assert any('method="other"' in line for line in durations), durations
    assert not any("BREW" in line or "secret" in line for line in durations), durations
