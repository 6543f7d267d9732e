"""A real Prometheus Alertmanager delivers a firing and then a resolved alert to a real ingest process."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from bothways import devstack
from bothways.events import OutageEnded, OutageImpact, OutageStarted, Topic, decode_record
from tests.support import eventually, read_topic

pytestmark = pytest.mark.e2e

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.fixture
def alertmanager(tmp_path: Path):
    """Start Alertmanager with a webhook receiver pointing at `url`; stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(url: str) -> str:
        if ALERTMANAGER is None:
            pytest.fail("Alertmanager is missing: install Debian's prometheus-alertmanager (make test does)")
        config = {
            "route": {
                "receiver": "bothways",
                "group_by": ["alertname"],
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "bothways",
                    "webhook_configs": [
                        {
                            "url": url,
                            "send_resolved": True,
                            "http_config": {"authorization": {"credentials": "am-token"}},
                        }
                    ],
                }
            ],
        }
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
        port = devstack.free_port()
        with (tmp_path / "alertmanager.log").open("wb") as log:
            process = subprocess.Popen(
                [
                    ALERTMANAGER,
                    f"--config.file={tmp_path / 'alertmanager.yml'}",
                    f"--storage.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        devstack.wait_for_port(port, process=process)
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        devstack.stop_process(process)


async def test_alertmanager_firing_then_resolved_becomes_an_outage_on_the_topic(
    start, alertmanager, settings_for
) -> None:
    settings = settings_for("ingest")
    ingest = await start("ingest")
    alerts_api = alertmanager(f"{ingest.url}/webhooks/alertmanager") + "/api/v2/alerts"
    began = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    alert = {
        "labels": {"alertname": "CheckoutDown", "business_service": "checkout", "severity": "critical"},
        "annotations": {"summary": "Checkout answers 503"},
        "startsAt": began.isoformat(),
    }
    async with httpx.AsyncClient(timeout=5) as client:
        assert (await client.post(alerts_api, json=[alert])).status_code == 200
        firing = await read_topic(
            settings.kafka_bootstrap_servers, settings.topic(Topic.OUTAGES), count=1, timeout=20
        )
        ended = datetime.now(UTC).replace(microsecond=0)
        assert (
            await client.post(alerts_api, json=[{**alert, "endsAt": ended.isoformat()}])
        ).status_code == 200

    async def resolved():
        records = await read_topic(
            settings.kafka_bootstrap_servers, settings.topic(Topic.OUTAGES), count=2, timeout=2
        )
        return records if len(records) >= 2 else None

    records = await eventually(resolved, timeout=30)
    started_event, ended_event = (decode_record(r.headers, r.value).data for r in records[:2])
    assert len(firing) == 1
    assert isinstance(started_event, OutageStarted)
    assert isinstance(ended_event, OutageEnded)
    assert started_event.signal_key == ended_event.signal_key
    assert started_event.signal_key.startswith("alertmanager:")
    assert (started_event.business_service, started_event.impact) == ("checkout", OutageImpact.MAJOR)
    assert started_event.started_at == began
    assert ended_event.ended_at == ended
