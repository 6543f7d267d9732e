"""History imports against the real database and broker: events on the topic, resumable, idempotent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bothways import db
from bothways.events import Topic, decode_record
from services.ingest.imports import ImportFile, import_file
from services.ingest.mapping import load_mapping
from services.ingest.readers import reader_for
from tests.support import read_topic, ticket_body

pytestmark = pytest.mark.integration

EXPORT = (
    Path(__file__).parent.parent / "unit" / "ingest" / "payloads" / "servicenow_csv" / "incident_history.csv"
)


@pytest.fixture
async def pool(database_url: str):
    pool = await db.create_pool(database_url, schema="ingest")
    yield pool
    await pool.close()


def expected_rows() -> tuple[int, int]:
    """(snapshots, rejections) the export gives, read by the pure reader."""
    reader = reader_for("servicenow-csv", mappings=load_mapping(), time_zone="Europe/Paris")
    with EXPORT.open(newline="") as lines:
        results = list(reader(lines, 0))
    snapshots = sum(1 for r in results if hasattr(r, "snapshot"))
    return snapshots, len(results) - snapshots


async def outbox_ids(pool) -> list[str]:
    return [r["event_id"] for r in await pool.fetch("SELECT event_id FROM outbox ORDER BY id")]


async def test_the_command_imports_an_export_and_a_second_run_changes_nothing(database_url, pool) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    command = [
        sys.executable,
        "-m",
        "bothways.cli",
        "import",
        "servicenow-csv",
        str(EXPORT),
        "--time-zone",
        "Europe/Paris",
    ]
    first = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    snapshots, rejections = expected_rows()
    assert (summary["events_emitted"], summary["rejected"]) == (snapshots, rejections)
    assert all(r["line"] > 1 and r["field"] and r["reason"] for r in summary["rejections"])
    assert "rows" in first.stderr, "progress is shown"
    ids = await outbox_ids(pool)
    assert len(ids) == len(set(ids)) == snapshots

    second = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert second.returncode == 0
    assert "imported before" in second.stdout
    assert await outbox_ids(pool) == ids


async def test_an_interrupted_import_resumes_after_its_last_committed_batch(pool) -> None:
    reader = reader_for("servicenow-csv", mappings=load_mapping(), time_zone="Europe/Paris")
    snapshots, _ = expected_rows()

    def failing_after_four(lines, after):
        for count, result in enumerate(reader(lines, after)):
            if count == 4:
                raise ConnectionResetError("the importer's host went away")
            yield result

    file = ImportFile("servicenow-csv", EXPORT.name, EXPORT)
    with pytest.raises(ConnectionResetError):
        await import_file(pool, file, read=failing_after_four, batch_size=2)
    assert len(await outbox_ids(pool)) in (3, 4), "the committed batches stay"
    resumed = await import_file(pool, file, read=reader, batch_size=2)
    assert resumed.resumed_after_line > 1
    ids = await outbox_ids(pool)
    assert len(ids) == len(set(ids)) == snapshots


async def test_the_endpoint_imports_an_upload_and_its_events_reach_the_topic(
    run_service, settings_for
) -> None:
    settings = settings_for("ingest")
    lines = [json.dumps(ticket_body(str(i))) for i in range(5)] + [
        "{broken",
        json.dumps({"external_id": "x"}),
    ]
    async with run_service("ingest") as ingest:
        response = await ingest.post(
            "/imports/jsonl", params={"name": "tickets.jsonl"}, content="\n".join(lines).encode()
        )
        assert response.status_code == 200, response.text
        records = await read_topic(settings.kafka_bootstrap_servers, settings.topic(Topic.TICKETS), count=5)
    summary = response.json()
    assert (summary["events_emitted"], summary["rejected"]) == (5, 2)
    assert [r["line"] for r in summary["rejections"]] == [6, 7]
    assert sorted(decode_record(r.headers, r.value).data.external_id for r in records) == [
        "0",
        "1",
        "2",
        "3",
        "4",
    ]


async def test_an_import_upload_may_exceed_the_webhook_body_limit_but_not_the_upload_limit(
    run_service,
) -> None:
    body = ("\n".join(json.dumps(ticket_body(str(i))) for i in range(40))).encode()
    async with run_service("ingest", max_body_bytes=2048, max_upload_bytes=len(body) + 10) as ingest:
        fits = await ingest.post("/imports/jsonl", content=body)
        too_big = await ingest.post("/imports/jsonl", content=body + b"\n" + body)
    assert fits.status_code == 200
    assert too_big.status_code == 413


async def test_an_unknown_time_zone_is_422_naming_it(run_service) -> None:
    async with run_service("ingest") as ingest:
        response = await ingest.post(
            "/imports/servicenow-csv", params={"time_zone": "Mars/Olympus"}, content=b"x"
        )
    assert response.status_code == 422
    assert response.json()["field"] == "time_zone"
