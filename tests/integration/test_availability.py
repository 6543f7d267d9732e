"""Business service availability through the real sla service: outage signals and P1 tickets in from
Kafka, merged outages and corrected monthly figures out, read back through the API and /metrics."""

from __future__ import annotations

import calendar
import hashlib
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bothways.events import (
    Event,
    OutageEnded,
    OutageStarted,
    OutageUpdated,
    TicketChanged,
    Topic,
    decode_record,
    deterministic_id,
    envelope_for,
)
from services.ingest.mapping import load_mapping
from services.ingest.normalizers import alertmanager
from tests.support import eventually, publish, read_topic

pytestmark = pytest.mark.integration

HOUR = 3600
OBJECTIVE = 99.9
CATALOGUE = {
    "major_incidents": {
        "kinds": ["incident"],
        "priorities": {"P1": "major", "P2": "partial"},
        "impact_start_field": "custom.impact_started_at",
    },
    "services": [
        {
            "id": "checkout",
            "name": "Checkout",
            "owner_group": "Commerce",
            "tier": 1,
            "objective_percent": OBJECTIVE,
            "timezone": "UTC",
            "match": {"aliases": ["Online Checkout"], "alert_labels": {"service": ["checkout-api"]}},
        },
        {"id": "email", "name": "E-mail", "objective_percent": 99.5, "timezone": "UTC"},
    ],
}


@pytest.fixture
def catalogue_file(tmp_path: Path) -> Path:
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(CATALOGUE))
    return path


def last_month(now: datetime) -> tuple[str, datetime, int]:
    """The previous UTC calendar month: its label, its first instant and its length in seconds."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (first - timedelta(days=1)).replace(day=1)
    days = calendar.monthrange(start.year, start.month)[1]
    return start.strftime("%Y-%m"), start, days * 86_400


def alert(
    fingerprint: str, *, starts: datetime, ends: datetime | None, service: str = "checkout-api"
) -> dict:
    return {
        "status": "resolved" if ends else "firing",
        "labels": {"alertname": "ProbeFailure", "service": service, "severity": "critical"},
        "annotations": {"summary": "Checkout unreachable"},
        "startsAt": starts.isoformat(),
        "endsAt": ends.isoformat() if ends else "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    }


async def send_alerts(settings, *alerts: dict) -> None:
    """Alertmanager notifications normalised the way ingest does, then published as ingest would."""
    payload = {"version": "4", "status": "firing", "receiver": "bothways", "alerts": list(alerts)}
    signals = alertmanager.normalize(
        payload, mapping=load_mapping().alertmanager, received_at=datetime.now(UTC)
    )
    delivery = alertmanager.delivery_id(payload)
    await send(
        settings,
        Topic.OUTAGES,
        [(s, deterministic_id("alertmanager", delivery, str(i))) for i, s in enumerate(signals)],
    )


async def send(settings, topic: Topic, events: Sequence[tuple[Event, str]]) -> None:
    envelopes = [envelope_for(event, event_id=event_id, source="/test") for event, event_id in events]
    await publish(settings.kafka_bootstrap_servers, settings.topic(topic), envelopes)


def ticket(key: str, *, at: datetime, created: datetime, category: str, **fields: Any) -> TicketChanged:
    return TicketChanged.model_validate(
        {
            "ticket_key": f"generic:{key}",
            "source": "generic",
            "external_id": key,
            "occurred_at": at,
            "created_at": created,
            "status": category.title(),
            "status_category": category,
            "priority": "P1",
            "business_service": "Online Checkout",
            **fields,
        }
    )


def signal(kind: type[Event], key: str, **fields: Any) -> Event:
    base = {
        "signal_key": key,
        "source": "generic",
        "service_reference": "checkout",
        "business_service": "checkout",
    }
    return kind.model_validate(base | fields)


def event_id(event: Event) -> str:
    return "e-" + hashlib.sha256(event.model_dump_json().encode()).hexdigest()[:16]


async def availability_events(settings, *, count: int, timeout: float = 15) -> list[Any]:
    records = await read_topic(
        settings.kafka_bootstrap_servers, settings.topic(Topic.AVAILABILITY), count=count, timeout=timeout
    )
    return [decode_record(record.headers, record.value).data for record in records]


async def events_until(settings, done, *, timeout: float = 20) -> list[Any]:
    """The availability events published so far, once `done(events)` holds."""

    async def check() -> list[Any] | None:
        events = await availability_events(settings, count=10_000, timeout=0.5)
        return events if done(events) else None

    found: list[Any] = await eventually(check, timeout=timeout)
    return found


def last_computed(events: list[Any], period: str, *, downtime: float) -> bool:
    """Whether the latest figures announced for the month have this weighted downtime."""
    computed = [e for e in of_type(events, "computed") if e.period == period]
    return bool(computed) and computed[-1].downtime_seconds == downtime


def of_type(events: list[Any], suffix: str) -> list[Any]:
    return [e for e in events if e.type.endswith(suffix)]


async def figures(sla, service: str, period: str, *, outages: int) -> dict:
    async def check() -> dict | None:
        body = (await sla.get(f"/services/{service}/availability", params={"period": period})).json()
        return body if body["outages"] == outages else None

    result: dict = await eventually(check)
    return result


def promtool_check_metrics(text: bytes) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: install Debian's prometheus package (make test-tools does)")
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, check=False)
    assert lint.returncode == 0, lint.stdout.decode() + lint.stderr.decode()


async def test_an_alert_and_a_p1_ticket_overlapping_last_month_count_once_through_kafka(
    run_service, settings_for, catalogue_file
) -> None:
    settings = settings_for("sla")
    label, month_start, month_seconds = last_month(datetime.now(UTC))
    day = month_start + timedelta(days=9)
    async with run_service("sla", availability_catalogue_file=catalogue_file) as sla:
        # Alertmanager: down 10:00-10:30. The P1 ticket: impact from 10:15 (its own field), resolved 10:45.
        await send_alerts(
            settings, alert("fp1", starts=day + timedelta(hours=10), ends=day + timedelta(hours=10.5))
        )
        created = day + timedelta(hours=10, minutes=20)
        opened = ticket(
            "P1-1",
            at=created,
            created=created,
            category="open",
            custom={"impact_started_at": (day + timedelta(hours=10.25)).isoformat()},
        )
        resolved = TicketChanged.model_validate(
            opened.model_dump()
            | {
                "occurred_at": day + timedelta(hours=10.75),
                "status": "Resolved",
                "status_category": "resolved",
                "resolved_at": day + timedelta(hours=10.75),
            }
        )
        await send(settings, Topic.TICKETS, [(opened, "t-1"), (resolved, "t-2")])

        async def both_signals() -> list | None:
            found = (await sla.get("/services/checkout/outages")).json()
            return found if found and len(found[0]["signals"]) == 2 and found[0]["restored_at"] else None

        await eventually(both_signals)
        body = await figures(sla, "checkout", label, outages=1)
        # Hand computed: the union 10:00-10:45 is 2,700 s of a month of 24x7 agreed time.
        assert body["agreed_seconds"] == month_seconds
        assert body["weighted_downtime_seconds"] == 2700
        assert body["availability_percent"] == pytest.approx(100 * (1 - 2700 / month_seconds))
        assert body["mtrs_seconds"] == 2700
        assert body["error_budget"]["allowed_seconds"] == pytest.approx(0.001 * month_seconds)
        assert body["error_budget"]["remaining_seconds"] == pytest.approx(0.001 * month_seconds - 2700)

        outages = (await sla.get("/services/checkout/outages")).json()
        assert len(outages) == 1
        assert datetime.fromisoformat(outages[0]["started_at"]) == day + timedelta(hours=10)
        assert datetime.fromisoformat(outages[0]["restored_at"]) == day + timedelta(hours=10.75)
        assert [s["signal_key"] for s in outages[0]["signals"]] == ["alertmanager:fp1", "ticket:generic:P1-1"]

        events = await events_until(settings, lambda found: last_computed(found, label, downtime=2700))
        computed = [e for e in of_type(events, "computed") if e.period == label]
        assert computed[-1].downtime_seconds == 2700
        assert computed[-1].availability_percent == pytest.approx(100 * (1 - 2700 / month_seconds), abs=1e-6)
        # Closed once restored; whichever signal came second then updated it (or closed it) to 45 minutes.
        announced = [
            e for e in events if ".service_outage." in e.type and e.outage_id == outages[0]["outage_id"]
        ]
        kinds = [e.type.rsplit(".", 1)[1] for e in announced]
        assert kinds[0] == "opened"
        assert "closed" in kinds
        assert (announced[-1].status, announced[-1].duration_seconds) == ("restored", 2700)

        metrics = await sla.get("/metrics")
        promtool_check_metrics(metrics.content)
        assert 'bothways_business_service_up{business_service="checkout"} 1.0' in metrics.text
        assert (
            'bothways_business_service_weighted_downtime_seconds_total{business_service="checkout"}'
            in metrics.text
        )
        assert (
            'bothways_business_service_restore_duration_seconds_count{business_service="checkout"}'
            in metrics.text
        )
        overview = (await sla.get("/availability", params={"period": label})).json()
        # Sorted by budget remaining: checkout spent some, e-mail none.
        assert [row["business_service"] for row in overview] == ["checkout", "email"]


async def test_an_ongoing_outage_puts_the_objective_at_risk_and_the_service_down(
    run_service, settings_for, catalogue_file
) -> None:
    settings = settings_for("sla")
    now = datetime.now(UTC).replace(microsecond=0)
    async with run_service("sla", availability_catalogue_file=catalogue_file) as sla:
        await send_alerts(settings, alert("fp2", starts=now - timedelta(hours=2), ends=None))
        events = await events_until(settings, lambda found: len(of_type(found, "objective_at_risk")) == 2)
        at_risk = of_type(events, "objective_at_risk")
        # Down for two hours: both windows of both SRE workbook alerts burn at 1/(1-0.999) = 1000x.
        assert sorted(e.alert for e in at_risk) == ["fast-burn", "slow-burn"]
        assert at_risk[0].long_burn_rate == pytest.approx(1000)
        assert of_type(events, "service_outage.opened")[0].status == "open"
        body = (await sla.get("/services/checkout/availability", params={"period": "7d"})).json()
        assert body["up"] is False
        assert set(body["burn_alerts"]) == {"fast-burn", "slow-burn"}
        assert body["burn_rates"]["1h"] == pytest.approx(1000)
        metrics = await sla.get("/metrics")
        assert 'bothways_business_service_up{business_service="checkout"} 0.0' in metrics.text
        promtool_check_metrics(metrics.content)


async def test_a_backdated_impact_start_corrects_published_figures_visibly(
    run_service, settings_for, catalogue_file
) -> None:
    settings = settings_for("sla")
    label, month_start, _month_seconds = last_month(datetime.now(UTC))
    start = month_start + timedelta(days=3, hours=8)
    first = signal(OutageStarted, "generic:db-1", occurred_at=start, started_at=start)
    ended = signal(
        OutageEnded,
        "generic:db-1",
        occurred_at=start + timedelta(minutes=20),
        started_at=start,
        ended_at=start + timedelta(minutes=20),
    )
    async with run_service("sla", availability_catalogue_file=catalogue_file) as sla:
        await send(settings, Topic.OUTAGES, [(first, event_id(first)), (ended, event_id(ended))])
        assert (await figures(sla, "checkout", label, outages=1))["weighted_downtime_seconds"] == 1200
        # The post-mortem finds the impact began 40 minutes earlier.
        backdated = signal(
            OutageUpdated,
            "generic:db-1",
            occurred_at=start + timedelta(hours=1),
            started_at=start - timedelta(minutes=40),
        )
        await send(settings, Topic.OUTAGES, [(backdated, event_id(backdated))])

        async def corrected() -> dict | None:
            body = (await sla.get("/services/checkout/availability", params={"period": label})).json()
            return body if body["weighted_downtime_seconds"] == 3600 else None

        await eventually(corrected)
        events = await events_until(settings, lambda found: last_computed(found, label, downtime=3600))
        computed = [e for e in of_type(events, "computed") if e.period == label]
        assert [e.downtime_seconds for e in computed][-2:] == [1200, 3600]
        assert computed[-1].correction is True
        audit = (await sla.get("/services/checkout/audit")).json()
        kinds = [entry["kind"] for entry in audit]
        assert "signal_corrected" in kinds
        assert "figures_corrected" in kinds
        updated = of_type(events, "service_outage.updated")
        assert updated[-1].started_at == start - timedelta(minutes=40)


async def test_bad_outage_input_is_kept_visible_and_never_counted_wrong(
    run_service, settings_for, catalogue_file
) -> None:
    settings = settings_for("sla")
    label, month_start, month_seconds = last_month(datetime.now(UTC))
    at = month_start + timedelta(days=5, hours=12)
    end_only = signal(
        OutageEnded,
        "generic:late",
        occurred_at=at + timedelta(minutes=10),
        started_at=at,
        ended_at=at + timedelta(minutes=10),
    )
    backwards = signal(
        OutageEnded, "generic:bad", occurred_at=at, started_at=at, ended_at=at - timedelta(hours=1)
    )
    stranger = signal(
        OutageStarted,
        "generic:who",
        business_service=None,
        service_reference="payroll",
        occurred_at=at,
        started_at=at,
    )
    async with run_service("sla", availability_catalogue_file=catalogue_file) as sla:
        events = [
            (end_only, event_id(end_only)),
            (backwards, event_id(backwards)),
            (stranger, event_id(stranger)),
        ]
        # Each twice: once redelivered with the same id, once restated under another id.
        await send(settings, Topic.OUTAGES, [*events, *events, (end_only, "another-id")])

        async def anomalies() -> list | None:
            found = (await sla.get("/availability/anomalies")).json()
            return found if len(found) == 3 else None

        found = {a["kind"]: a for a in await eventually(anomalies)}
        assert set(found) == {"end_without_start", "ends_before_start", "unmapped_service"}
        assert "payroll" in found["unmapped_service"]["detail"]
        # The end without a start counts from its own start, once; the backwards one not at all.
        body = await figures(sla, "checkout", label, outages=1)
        assert body["weighted_downtime_seconds"] == 600
        assert 0 <= body["availability_percent"] <= 100

        # Mapping the unknown service later counts its outage and clears the anomaly.
        services = (await sla.get("/services")).json()
        payroll = {
            "id": "payroll",
            "name": "Payroll",
            "objective_percent": 99.0,
            "match": {"aliases": ["payroll"]},
        }
        changed = await sla.put(
            "/services", json={"services": [*[_definition(s) for s in services], payroll]}
        )
        assert changed.status_code == 200, changed.text
        outages = (await sla.get("/services/payroll/outages")).json()
        assert [o["status"] for o in outages] == ["open"]
        assert (await sla.get("/availability/anomalies", params={"kind": "unmapped_service"})).json() == []
        # Its outage began last month, before payroll joined the catalogue: that month is announced too.
        down_since = (month_start + timedelta(seconds=month_seconds) - at).total_seconds()
        await events_until(
            settings,
            lambda found: any(
                e.business_service == "payroll" and e.period == label and e.downtime_seconds == down_since
                for e in of_type(found, "computed")
            ),
        )
        metrics = (await sla.get("/metrics")).text
        assert 'bothways_availability_anomalies{kind="ends_before_start"} 1.0' in metrics


def _definition(service: dict) -> dict:
    return {key: value for key, value in service.items() if key != "maintenance"}


async def test_catalogue_windows_and_periods_are_validated_with_4xx_naming_the_problem(
    run_service, catalogue_file
) -> None:
    async with run_service("sla", availability_catalogue_file=catalogue_file) as sla:
        unknown_calendar = await sla.put(
            "/services",
            json={"services": [{"id": "x", "name": "X", "objective_percent": 99, "calendar": "nope"}]},
        )
        assert unknown_calendar.status_code == 422
        assert "unknown calendar 'nope'" in unknown_calendar.json()["message"]
        too_high = await sla.put(
            "/services", json={"services": [{"id": "x", "name": "X", "objective_percent": 100}]}
        )
        assert too_high.status_code == 422
        assert "objective_percent" in too_high.json()["message"]
        clash = await sla.put(
            "/services",
            json={
                "services": [
                    {
                        "id": "x",
                        "name": "X",
                        "objective_percent": 99,
                        "match": {"aliases": ["online checkout"]},
                    }
                ]
            },
        )
        assert clash.status_code == 422
        assert "already names service 'checkout'" in clash.json()["message"]
        backwards = await sla.put(
            "/services/checkout/maintenance",
            json={"windows": [{"start": "2026-10-04T02:00:00Z", "end": "2026-10-04T01:00:00Z"}]},
        )
        assert backwards.status_code == 422
        assert "is not after start" in backwards.json()["message"]
        assert (await sla.put("/services/nobody/maintenance", json={"windows": []})).status_code == 404
        assert (await sla.get("/services/nobody/availability")).status_code == 404
        bad_month = await sla.get("/services/checkout/availability", params={"period": "2026-13"})
        assert bad_month.status_code == 422
        assert "MM from 01 to 12" in bad_month.json()["message"]
        both = await sla.get(
            "/services/checkout/availability", params={"period": "30d", "from": "2026-10-01T00:00:00Z"}
        )
        assert both.status_code == 422
        assert (
            await sla.get("/services/checkout/availability", params={"period": "1900-01"})
        ).status_code == 422


async def test_a_window_covering_an_outage_corrects_the_month_and_openslo_exports_the_objective(
    run_service, settings_for, catalogue_file
) -> None:
    settings = settings_for("sla")
    label, month_start, month_seconds = last_month(datetime.now(UTC))
    start = month_start + timedelta(days=12, hours=2)
    down = signal(
        OutageEnded,
        "generic:change-7",
        occurred_at=start + timedelta(hours=1),
        started_at=start,
        ended_at=start + timedelta(hours=1),
    )
    async with run_service("sla", availability_catalogue_file=catalogue_file) as sla:
        await send(settings, Topic.OUTAGES, [(down, event_id(down))])
        assert (await figures(sla, "checkout", label, outages=1))["weighted_downtime_seconds"] == HOUR
        # An agreed window 02:00-02:30 that day: only the half hour outside it counts.
        window = {
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "description": "change 7",
        }
        put = await sla.put("/services/checkout/maintenance", json={"windows": [window]})
        assert put.status_code == 200, put.text
        body = (await sla.get("/services/checkout/availability", params={"period": label})).json()
        assert body["weighted_downtime_seconds"] == 1800
        assert body["maintenance_seconds"] == 1800
        assert body["agreed_seconds"] == month_seconds - 1800
        events = await events_until(settings, lambda found: last_computed(found, label, downtime=1800))
        computed = [e for e in of_type(events, "computed") if e.period == label]
        assert computed[-1].correction is True

        document = await sla.get("/services/checkout/openslo")
        assert document.headers["content-type"].startswith("application/yaml")
        service, slo = yaml.safe_load_all(document.text)
        assert (service["kind"], slo["kind"]) == ("Service", "SLO")
        assert slo["spec"]["objectives"][0]["target"] == pytest.approx(0.999)
        ratio = slo["spec"]["indicator"]["spec"]["ratioMetric"]
        assert ratio["total"]["metricSource"]["spec"]["query"] == (
            'bothways_business_service_agreed_service_seconds_total{business_service="checkout"}'
        )
