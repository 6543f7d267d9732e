"""`bothways reporting rebuild`: fold every event again, from the first offset of every topic.

The procedure (docs/reporting.md): stop every reporting replica, run the command, start them again.
The command refuses while a replica is connected to the database, then
1. rewinds the `reporting` consumer group to the first offset of every partition of its topics: it
   joins the group, waits until it holds every partition (so no replica is left in it), and commits
   each partition's beginning offset as a member (brokers, Tansu included, refuse offset commits from
   outside a group that still lists members);
2. empties the read models and the inbox in one transaction.
In this order a failure halfway is harmless: rewound offsets with the inbox intact replay as
duplicates and change nothing, and running the command again finishes the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from bothways.db import check_schema_name
from bothways.events import Topic
from bothways.kafka import ensure_topics
from bothways.settings import ServiceSettings
from services.reporting import store

SERVICE = "reporting"
APPLICATION_NAME = "bothways-rebuild"
# A reporting replica's pool connections carry application_name = its schema (see bothways.db.create_pool).
REPLICA_CONNECTIONS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()
"""


class RebuildRefused(RuntimeError):
    """The rebuild cannot run now; the message says what to do."""


@dataclass(frozen=True)
class Rebuilt:
    """What the rebuild did."""

    partitions: dict[str, int]  # topic -> partitions rewound
    tables: tuple[str, ...]


async def rebuild(
    settings: ServiceSettings, *, topics: Sequence[Topic], assignment_seconds: float = 60.0
) -> Rebuilt:
    """Refuse while a replica runs; rewind the consumer group; empty the read models and the inbox."""
    conn = await asyncpg.connect(
        settings.database_url,
        server_settings={"application_name": APPLICATION_NAME, "search_path": check_schema_name(SERVICE)},
    )
    try:
        replicas = await conn.fetchval(REPLICA_CONNECTIONS, SERVICE)
        if replicas:
            raise RebuildRefused(
                f"{replicas} database connection(s) of the reporting service are open: "
                "stop every reporting replica first, then run the rebuild again"
            )
        rewound = await rewind_consumer_group(settings, topics=topics, within=assignment_seconds)
        async with conn.transaction():
            await store.reset_read_models(conn)
    finally:
        await conn.close()
    counted: dict[str, int] = {}
    for partition in rewound:
        counted[partition.topic] = counted.get(partition.topic, 0) + 1
    return Rebuilt(partitions=counted, tables=(*store.READ_MODEL_TABLES, "inbox"))


async def rewind_consumer_group(
    settings: ServiceSettings, *, topics: Sequence[Topic], within: float
) -> dict[TopicPartition, int]:
    """Commit the first offset of every partition for the service's group, as its only member."""
    names = [settings.topic(topic) for topic in topics]
    await ensure_topics(settings.kafka_bootstrap_servers, names, partitions=settings.kafka_topic_partitions)
    consumer = AIOKafkaConsumer(
        *names,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.consumer_group(SERVICE),
        client_id=f"{settings.kafka_namespace}{APPLICATION_NAME}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.consumer_session_timeout_ms,
        heartbeat_interval_ms=settings.consumer_session_timeout_ms // 4,
    )
    await consumer.start()
    try:
        wanted = {
            TopicPartition(name, p) for name in names for p in consumer.partitions_for_topic(name) or ()
        }
        deadline = asyncio.get_running_loop().time() + within
        while consumer.assignment() != wanted:
            if asyncio.get_running_loop().time() > deadline:
                raise RebuildRefused(
                    f"the {settings.consumer_group(SERVICE)!r} consumer group still gives partitions to another "
                    f"member after {within:.0f} s: stop every reporting replica first"
                )
            await consumer.getmany(timeout_ms=200, max_records=1)  # polling runs the group protocol
        beginnings: dict[TopicPartition, int] = await consumer.beginning_offsets(sorted(wanted))
        await consumer.commit(beginnings)
        return beginnings
    finally:
        await consumer.stop()
