"""Whatever is sent, no service answers 5xx and nothing private answers a stranger: schemathesis on each
OpenAPI schema, every non-public route called without valid credentials, and mutated webhooks."""

from __future__ import annotations

import collections
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import API_KEY, READ_KEY

pytestmark = pytest.mark.reliability

PAYLOADS = Path(__file__).parent.parent / "unit" / "ingest" / "payloads"
ODD_VALUES: list[Any] = [
    None,
    "",
    0,
    -1,
    1e308,
    True,
    [],
    {},
    "x" * 5000,
    "2026-13-45T99:99:99Z",
    {"id": None},
]


@pytest.mark.parametrize("service", ["ingest", "sla", "survey", "reporting"])
async def test_schemathesis_finds_no_server_error(start, service: str, tmp_path: Path) -> None:
    running = await start(service)
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "run",
            f"{running.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "40",
            "--seed",
            "20261123",
            "--header",
            f"Authorization: Bearer {API_KEY}",
            "--request-timeout",
            "10",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


# The routes anyone may call: health probes, webhooks (each authenticated by its platform's own signature
# or token, tested per source in test_webhook_signatures.py), the survey answer page (its link carries a
# signed, expiring token) and the dashboard's login and logout.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/webhooks/{source}"),
    ("GET", "/s/{token}"),
    ("POST", "/s/{token}"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
}
# The dashboard's pages answer a browser without a session by sending it to the login page.
BROWSER_PAGES = {("GET", "/"), ("GET", "/dashboard/scorecards.csv"), ("GET", "/dashboard/watermelons.csv")}
QUERY_VALUES = {"period": "2026-10"}
WRONG_CREDENTIALS = {
    "none": {},
    "unknown key": {"authorization": "Bearer not-a-key"},
    "another scheme": {"authorization": f"Basic {API_KEY}"},
}


@pytest.mark.parametrize("service", ["ingest", "sla", "survey", "reporting"])
async def test_every_route_that_is_not_public_refuses_a_caller_without_a_valid_api_key(
    start, service
) -> None:
    running = await start(service)
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
        schema = (await client.get("/openapi.json")).json()
        routes = [
            (method.upper(), path)
            for path, operations in schema["paths"].items()
            for method in operations
            if (method.upper(), path) not in PUBLIC
        ]
        # Required query parameters get a valid value, so that a refusal cannot hide behind a 422.
        queries = {
            (method.upper(), path): {
                p["name"]: QUERY_VALUES.get(p["name"], "x")
                for p in operation.get("parameters", [])
                if p["in"] == "query" and p.get("required")
            }
            for path, operations in schema["paths"].items()
            for method, operation in operations.items()
        }
        answers: collections.Counter[int] = collections.Counter()
        for method, path in routes:
            url = path.replace("{", "").replace("}", "")  # each path parameter filled with its own name
            for credentials, headers in WRONG_CREDENTIALS.items():
                response = await client.request(
                    method, url, headers=headers, params=queries[(method, path)], json={}
                )
                answers[response.status_code] += 1
                if (method, path) in BROWSER_PAGES:
                    assert response.status_code in (303, 401), (method, path, credentials, response.text)
                    if response.status_code == 303:
                        assert response.headers["location"].startswith("/login")
                else:
                    assert response.status_code == 401, (method, path, credentials, response.text)
        # A key that may only read gets no further than 403 on the routes that change things.
        writes = [(m, p) for m, p in routes if m in ("PUT", "POST") and (m, p) not in BROWSER_PAGES]
        readers: collections.Counter[int] = collections.Counter()
        for method, path in writes:
            url = path.replace("{", "").replace("}", "")
            response = await client.request(
                method,
                url,
                headers={"authorization": f"Bearer {READ_KEY}"},
                params=queries[(method, path)],
                json={},
            )
            readers[response.status_code] += 1
            assert response.status_code < 500, (method, path, response.text)
    print(
        f"{service}: {len(routes)} non-public routes x {len(WRONG_CREDENTIALS)} kinds of missing or wrong "
        f"credentials: {answers.total()} calls, statuses {dict(sorted(answers.items()))}; "
        f"{len(writes)} write routes with a read-only key: {dict(sorted(readers.items()))}"
    )


def leaf_paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(document, dict):
        return [p for key, value in document.items() for p in leaf_paths(value, (*prefix, key))] or [prefix]
    if isinstance(document, list):
        return [p for i, value in enumerate(document) for p in leaf_paths(value, (*prefix, i))] or [prefix]
    return [prefix]


def mutated(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    copied = copy.deepcopy(document)
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copied


@pytest.mark.parametrize(
    ("source", "fixture"),
    [
        ("freshservice", "ticket_created"),
        ("servicenow", "incident_resolved"),
        ("freshservice", "reply_by_agent"),
    ],
)
async def test_an_authentic_webhook_with_any_field_mangled_gets_202_400_or_422(
    start, source, fixture
) -> None:
    ingest = await start("ingest")
    document = json.loads((PAYLOADS / source / f"{fixture}.json").read_text())
    token = {"freshservice": "fresh-token", "servicenow": "snow-token"}[source]
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=ingest.url, timeout=10) as client:
        for path in leaf_paths(document):
            for value in ODD_VALUES:
                body = json.dumps(mutated(document, path, value)).encode() if path else b"[]"
                response = await client.post(f"/webhooks/{source}", content=body, headers=headers)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                assert response.status_code in (202, 400, 422), (path, value, response.text)
    print(f"{source}/{fixture}: {sum(statuses.values())} mangled deliveries, statuses {statuses}")
