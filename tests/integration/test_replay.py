"""Replaying stored deliveries: a mapping fix turns a rejected delivery into events, and nothing doubles."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bothways.events import Topic, decode_record
from tests.integration.test_platform_webhooks import PAYLOADS, receipts
from tests.support import read_topic

pytestmark = pytest.mark.integration

FRESH_AUTH = {"content-type": "application/json", "authorization": "Bearer fresh-token"}


def ticket_in_custom_status() -> bytes:
    document = json.loads((PAYLOADS / "freshservice" / "ticket_created.json").read_bytes())
    document["ticket"]["status"] = 6  # a status this site added to Freshservice ("Awaiting vendor")
    return json.dumps(document).encode()


async def test_after_a_mapping_fix_a_replay_emits_what_was_rejected(
    run_service, settings_for, tmp_path: Path
) -> None:
    settings = settings_for("ingest")
    body = ticket_in_custom_status()
    async with run_service("ingest") as ingest:
        rejected = await ingest.post("/webhooks/freshservice", content=body, headers=FRESH_AUTH)
    assert rejected.status_code == 422
    assert rejected.json()["field"] == "ticket.status"

    site_mapping = tmp_path / "mapping.yaml"
    site_mapping.write_text(yaml.safe_dump({"freshservice": {"statuses": {"6": "pending"}}}))
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    overrides = {"freshservice": {"priorities": {"2": "P5"}}}  # the environment has the last word
    async with run_service("ingest", mapping_file=site_mapping, mapping_overrides=overrides) as ingest:
        first = await ingest.post("/admin/replay", json={"since": since, "source": "freshservice"})
        again = await ingest.post("/admin/replay", json={"since": since})
        records = await read_topic(
            settings.kafka_bootstrap_servers, settings.topic(Topic.TICKETS), count=2, timeout=5
        )
    assert first.json() == {"receipts": 1, "events": 1, "ignored": 0, "rejected": 0}
    assert again.json()["events"] == 1
    ids = {decode_record(r.headers, r.value).id for r in records}
    assert len(ids) == 1, "the second replay re-sent the same event id, which consumers drop"
    [event] = [decode_record(r.headers, r.value).data for r in records[:1]]
    assert event.status_category == "pending"
    assert event.priority == "P5"


async def test_a_replay_request_is_validated_and_needs_the_admin_scope(run_service) -> None:
    from tests.support import READ_KEY

    async with run_service("ingest") as ingest:
        backwards = await ingest.post(
            "/admin/replay", json={"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}
        )
        naive = await ingest.post("/admin/replay", json={"since": "2026-11-02T00:00:00"})
        as_reader = await ingest.post(
            "/admin/replay",
            json={"since": "2026-11-02T00:00:00Z"},
            headers={"authorization": f"Bearer {READ_KEY}"},
        )
    assert backwards.status_code == 422
    assert "until must be after since" in backwards.json()["message"]
    assert naive.status_code == 422
    assert as_reader.status_code == 403


async def test_the_replay_command_reads_the_same_receipts(run_service, database_url, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    body = ticket_in_custom_status()
    async with run_service("ingest") as ingest:
        await ingest.post("/webhooks/freshservice", content=body, headers=FRESH_AUTH)
    site_mapping = tmp_path / "mapping.yaml"
    site_mapping.write_text(yaml.safe_dump({"freshservice": {"statuses": {"6": "pending"}}}))
    env = {**os.environ, "DATABASE_URL": database_url, "BOTHWAYS_MAPPING_FILE": str(site_mapping)}
    result = subprocess.run(
        [sys.executable, "-m", "bothways.cli", "replay", "--since", "2026-01-01", "--source", "freshservice"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"receipts": 1, "events": 1, "ignored": 0, "rejected": 0}
    [receipt] = await receipts(database_url)
    assert receipt["outcome"] == "accepted"
