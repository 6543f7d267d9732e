"""Survey benchmark: how fast the survey service tracks tickets, decides candidates, runs a campaign and
sends mail, on the real database and a real SMTP server (aiosmtpd).

Run: .venv/bin/python bench/survey.py [--tickets N] [--population P]

It makes a fresh database on DATABASE_URL's server (or the default local one), migrates it, then
measures four phases with the service's own functions, each in the transactions the service uses:
tracking N resolved tickets (what the consumer does per event), the scheduler step deciding those N
candidates, a campaign run over P people, and the courier sending the claimed mails to aiosmtpd.
It prints a table and writes bench/results/survey.json, then drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiosmtpd.controller import Controller

from bothways import devstack
from bothways.cli import ensure_database, migrate_all
from bothways.db import create_pool
from bothways.events import Person, StatusCategory, TicketChanged
from services.survey import campaigns, invitations
from services.survey.campaigns import CampaignSpec
from services.survey.delivery import Channel, SmtpSecurity
from services.survey.duework import due_work
from services.survey.rules import parse_rules
from services.survey.runtime import Survey, courier_for
from services.survey.settings import SurveySettings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "survey.json"
START = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)


def resolved(n: int) -> TicketChanged:
    return TicketChanged(
        ticket_key=f"generic:{n}",
        source="generic",
        external_id=str(n),
        occurred_at=START + timedelta(seconds=n),
        created_at=START - timedelta(hours=2),
        status="Resolved",
        status_category=StatusCategory.RESOLVED,
        change="status_changed",
        priority="P3",
        business_service=f"service-{n % 20}",
        assignment_group="desk",
        title="Cannot send mail",
        requester=Person(id=f"u{n}", email=f"person{n}@example.com", name=f"Person {n}"),
    )


class Counter:
    """An aiosmtpd handler that only counts what it accepts."""

    def __init__(self) -> None:
        self.accepted = 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.accepted += 1
        return "250 OK"


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[Counter, int]]:
    counter = Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=devstack.free_port())
    controller.start()
    try:
        yield counter, controller.port
    finally:
        controller.stop()


async def run(server: str, tickets: int, population: int) -> dict[str, Any]:
    database = f"bw_bench_survey_{uuid.uuid4().hex[:8]}"
    url = await ensure_database(server, database)
    await migrate_all(url)
    pool = await create_pool(url, schema="survey", max_size=8)
    figures: dict[str, Any] = {}
    try:
        with smtp_server() as (counter, smtp_port):
            settings = SurveySettings.model_validate(
                {
                    "database_url": url,
                    "kafka_bootstrap_servers": "unused:9092",
                    "survey_token_secrets": ["bench-secret-" + "x" * 32],
                    "smtp_host": "127.0.0.1",
                    "smtp_port": smtp_port,
                    "smtp_security": SmtpSecurity.NONE,
                    "smtp_from": "Bench <bench@example.com>",
                    "survey_channel": Channel.EMAIL,
                    "survey_send_batch": 50,
                    "survey_send_concurrency": 10,
                }
            )
            rules = parse_rules({"csat": {"rules": [{"name": "now", "delay": "0s"}]}})
            async with httpx.AsyncClient() as http:
                courier = courier_for(settings, pool=pool, http=http, clock=lambda: now)
                survey = Survey(settings=settings, rules=rules, courier=courier)
                now = START + timedelta(hours=1)

                started = time.perf_counter()
                for n in range(tickets):
                    async with pool.acquire() as conn, conn.transaction():
                        await invitations.track_ticket(conn, ticket=resolved(n))
                figures["track_per_s"] = tickets / (time.perf_counter() - started)

                started = time.perf_counter()
                decided = 0
                while True:
                    async with pool.acquire() as conn, conn.transaction():
                        done = await invitations.decide_candidates(
                            conn, rules=rules, channel=Channel.EMAIL, now=now, limit=500
                        )
                    decided += done
                    if not done:
                        break
                figures["decide_per_s"] = decided / (time.perf_counter() - started)

                started = time.perf_counter()
                sent = 0
                while True:
                    async with pool.acquire() as conn, conn.transaction():
                        result = await due_work(conn, now, survey=survey, batch=500)
                    if result.after_commit is None:
                        break
                    await result.after_commit()
                    sent = counter.accepted
                figures["send_per_s"] = sent / (time.perf_counter() - started)
                figures["sent"] = sent

                # A campaign over people who have not been surveyed (different addresses).
                for n in range(tickets, tickets + population):
                    async with pool.acquire() as conn, conn.transaction():
                        open_ticket = resolved(n).model_copy(
                            update={"status": "Open", "status_category": StatusCategory.OPEN}
                        )
                        await invitations.track_ticket(conn, ticket=open_ticket)
                spec = CampaignSpec("bench", 30, [], [], now, None, "Q?", "Why?", timedelta(days=14))
                async with pool.acquire() as conn, conn.transaction():
                    await campaigns.create_campaign(conn, spec=spec, now=now)
                started = time.perf_counter()
                async with pool.acquire() as conn, conn.transaction():
                    invited = await campaigns.run_due_campaigns(
                        conn, rules=rules, channel=Channel.EMAIL, now=now + timedelta(days=1), limit=1
                    )
                elapsed = time.perf_counter() - started
                figures["campaign_people"] = invited  # scheduled and throttled (the CSAT-surveyed ones)
                figures["campaign_run_s"] = elapsed
    finally:
        await pool.close()
        admin = await asyncpg.connect(server)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--population", type=int, default=10000)
    args = parser.parse_args()
    with devstack.postgres(os.environ.get("DATABASE_URL")) as server:
        figures = asyncio.run(run(server, args.tickets, args.population))
    print(f"\nsurvey benchmark on {platform.processor() or platform.machine()}, {args.tickets} tickets")
    print(f"  track a resolved ticket (consumer, one transaction each)   {figures['track_per_s']:>9,.0f} /s")
    print(f"  decide candidates (scheduler step, batches of 500)         {figures['decide_per_s']:>9,.0f} /s")
    print(f"  send to SMTP and record (batches of 50, 10 at a time)      {figures['send_per_s']:>9,.0f} /s")
    print(
        f"  campaign run: {figures['campaign_people']:,} people decided in one transaction  "
        f"{figures['campaign_run_s']:>9.2f} s"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"tickets": args.tickets, "population": args.population, **figures}, indent=2)
    )


if __name__ == "__main__":
    main()
