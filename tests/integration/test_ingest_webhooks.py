"""POST /webhooks/generic: every bad input gets a clear 4xx and stores nothing; good input is stored once."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import pytest

from bothways import db
from tests.support import eventually, signed_generic, ticket_body

pytestmark = pytest.mark.integration

BODY = json.dumps(ticket_body("42")).encode()


async def stored(database_url: str) -> tuple[int, int]:
    pool = await db.create_pool(database_url, schema="ingest")
    try:
        receipts = await pool.fetchval("SELECT count(*) FROM receipt")
        events = await pool.fetchval("SELECT count(*) FROM outbox")
    finally:
        await pool.close()
    return receipts, events


async def test_a_signed_ticket_is_stored_with_its_event_and_answered_202(run_service, database_url) -> None:
    async with run_service("ingest") as ingest:
        response = await ingest.post("/webhooks/generic", content=BODY, headers=signed_generic(BODY))
    assert response.status_code == 202
    assert response.json()["duplicate"] is False
    assert await stored(database_url) == (1, 1)


# Headers are made when the test runs, not when it is collected: a long suite would age every
# timestamp past the five-minute window and turn each case into "outside the accepted window".
@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        (lambda: {"content-type": "application/json"}, 401, "missing webhook-id"),
        (lambda: signed_generic(b"another body"), 401, "no valid signature"),
        (lambda: signed_generic(BODY, timestamp=int(time.time()) - 301), 401, "outside the accepted window"),
        (lambda: {**signed_generic(BODY), "webhook-signature": "v1,AAAA"}, 401, "no valid signature"),
        (
            lambda: {**signed_generic(BODY), "content-type": "text/plain"},
            415,
            "content-type must be application/json",
        ),
    ],
    ids=["unsigned", "signature-of-another-body", "stale-timestamp", "wrong-signature", "wrong-content-type"],
)
async def test_a_delivery_that_is_not_authentic_or_not_json_is_refused_and_nothing_is_stored(
    run_service, database_url, headers, status, message
) -> None:
    async with run_service("ingest") as ingest:
        response = await ingest.post("/webhooks/generic", content=BODY, headers=headers())
    assert response.status_code == status
    assert message in response.json()["message"]
    assert await stored(database_url) == (0, 0)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, None),
        (json.dumps(ticket_body(status_category="sleeping")).encode(), 422, "status_category"),
        (
            json.dumps({k: v for k, v in ticket_body().items() if k != "created_at"}).encode(),
            422,
            "created_at",
        ),
        (json.dumps(ticket_body(occurred_at="2026-11-02T09:00:00")).encode(), 422, "occurred_at"),
    ],
    ids=["malformed-json", "bad-category", "missing-created-at", "naive-timestamp"],
)
async def test_a_signed_but_invalid_body_is_refused_naming_the_field_and_emits_nothing(
    run_service, database_url, body, status, field
) -> None:
    async with run_service("ingest") as ingest:
        response = await ingest.post("/webhooks/generic", content=body, headers=signed_generic(body))
    assert response.status_code == status, response.text
    if field:
        assert response.json()["field"] == field
        assert field in response.json()["message"]
        # Authentic but unreadable: kept as rejected (for a replay after a fix), no event.
        assert await stored(database_url) == (1, 0)
    else:
        assert await stored(database_url) == (0, 0)


async def test_an_oversized_body_is_refused_with_413(run_service, database_url) -> None:
    body = json.dumps(ticket_body(title="x" * 1500, custom={"blob": "y" * 5000})).encode()
    async with run_service("ingest", max_body_bytes=4096) as ingest:
        declared = await ingest.post("/webhooks/generic", content=body, headers=signed_generic(body))

        async def chunks():
            yield body[:3000]
            yield body[3000:]

        streamed = await ingest.post("/webhooks/generic", content=chunks(), headers=signed_generic(body))
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert "exceeds the limit of 4096 bytes" in streamed.json()["message"]
    assert await stored(database_url) == (0, 0)


async def test_with_the_database_down_ingest_answers_503_and_never_202(
    run_service, cuttable_database
) -> None:
    via_proxy, database_link = cuttable_database
    async with run_service("ingest", database_url=via_proxy) as ingest:
        await database_link.cut()
        down = await ingest.post("/webhooks/generic", content=BODY, headers=signed_generic(BODY))
        await database_link.restore()
        again = signed_generic(BODY)
        up = await ingest.post("/webhooks/generic", content=BODY, headers=again)
    assert down.status_code == 503
    assert down.headers["retry-after"] == "5"
    assert up.status_code == 202


async def waiting_for_a_lock(conn: asyncpg.Connection) -> None:
    """Until ingest's first commit waits on the lock the test holds, and the others have queued behind it."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    await eventually(lambda: conn.fetchval(query), timeout=10)
    await asyncio.sleep(0.3)


async def test_concurrent_webhooks_are_committed_together_and_each_answered_after_its_commit(
    run_service, database_url
) -> None:
    bodies = [json.dumps(ticket_body(f"group-{i}")).encode() for i in range(20)]
    repeated = signed_generic(bodies[0])
    blocker = await asyncpg.connect(database_url)
    try:
        async with run_service("ingest") as ingest:
            # The receipt table is locked: the first webhook's transaction waits, the others queue.
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE ingest.receipt IN EXCLUSIVE MODE")
            posts = [
                asyncio.create_task(
                    ingest.post("/webhooks/generic", content=body, headers=signed_generic(body))
                )
                for body in bodies
            ]
            posts.append(
                asyncio.create_task(ingest.post("/webhooks/generic", content=bodies[0], headers=repeated))
            )
            posts.append(
                asyncio.create_task(ingest.post("/webhooks/generic", content=bodies[0], headers=repeated))
            )
            await waiting_for_a_lock(blocker)
            assert not any(post.done() for post in posts)  # nothing is answered before its commit
            await transaction.rollback()
            responses = await asyncio.gather(*posts)
        transactions = await blocker.fetchval("SELECT count(DISTINCT xmin::text) FROM ingest.receipt")
    finally:
        await blocker.close()
    assert [r.status_code for r in responses] == [202] * 22
    # The delivery sent twice in the same batch is stored once; its repeat is answered as a duplicate.
    first, again = responses[-2].json(), responses[-1].json()
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert first["event_ids"] == again["event_ids"]
    assert await stored(database_url) == (21, 21)
    # One transaction per webhook would be 21; the batch that waited on the lock took what had queued by
    # then (all of them, when they were all parsed before it started), the next one the rest.
    assert transactions <= 2


async def test_with_the_database_gone_during_a_group_commit_every_webhook_in_it_is_answered_503(
    run_service, database_url, cuttable_database
) -> None:
    via_proxy, database_link = cuttable_database
    bodies = [json.dumps(ticket_body(f"lost-{i}")).encode() for i in range(20)]
    blocker = await asyncpg.connect(database_url)
    try:
        async with run_service("ingest", database_url=via_proxy) as ingest:
            async with blocker.transaction():
                await blocker.execute("LOCK TABLE ingest.receipt IN EXCLUSIVE MODE")
                posts = [
                    asyncio.create_task(
                        ingest.post("/webhooks/generic", content=body, headers=signed_generic(body))
                    )
                    for body in bodies
                ]
                await waiting_for_a_lock(blocker)
                await (
                    database_link.cut()
                )  # the commit in flight loses its connection, the queued ones find none
                responses = await asyncio.gather(*posts)
    finally:
        await blocker.close()
    assert [r.status_code for r in responses] == [503] * 20
    assert await stored(database_url) == (0, 0)
