"""Whatever is sent, no service answers 5xx: schemathesis on each OpenAPI schema, and mutated webhooks."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import API_KEY

pytestmark = pytest.mark.e2e

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
