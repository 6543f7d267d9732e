"""Settings fail at start-up, not at 3 a.m."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bothways.events import Topic
from services.ingest.settings import IngestSettings

pytestmark = pytest.mark.unit

REQUIRED = {"BOTHWAYS_DATABASE_URL": "postgresql://db/x", "BOTHWAYS_KAFKA_BOOTSTRAP_SERVERS": "k:9092"}


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> IngestSettings:
    for name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", *REQUIRED):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return IngestSettings()  # type: ignore[call-arg]


def test_the_database_and_broker_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="BOTHWAYS_DATABASE_URL") as error:
        settings(monkeypatch)
    assert "BOTHWAYS_KAFKA_BOOTSTRAP_SERVERS" in str(error.value)


def test_the_plain_database_url_and_kafka_variables_are_read_too(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = settings(monkeypatch, DATABASE_URL="postgresql://plain/x", KAFKA_BOOTSTRAP_SERVERS="plain:9092")
    assert (loaded.database_url, loaded.kafka_bootstrap_servers) == ("postgresql://plain/x", "plain:9092")


def test_the_idempotent_producer_is_on_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings(monkeypatch, **REQUIRED).kafka_idempotent_producer is True
    off = settings(monkeypatch, **REQUIRED, BOTHWAYS_KAFKA_IDEMPOTENT_PRODUCER="false")
    assert off.kafka_idempotent_producer is False


def test_api_keys_carry_known_scopes_only(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = settings(monkeypatch, **REQUIRED, BOTHWAYS_API_KEYS='{"k1": ["read"], "k2": ["read", "admin"]}')
    assert sorted(scopes for scopes in map(sorted, loaded.api_keys.values())) == [["admin", "read"], ["read"]]
    with pytest.raises(ValidationError, match="unknown API key scope"):
        settings(monkeypatch, **REQUIRED, BOTHWAYS_API_KEYS='{"k1": ["superuser"]}')


def test_a_malformed_webhook_secret_fails_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="whsec_"):
        settings(monkeypatch, **REQUIRED, BOTHWAYS_GENERIC_WEBHOOK_SECRETS='["whsec_!!"]')


def test_the_namespace_prefixes_topics_and_consumer_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = settings(monkeypatch, **REQUIRED, BOTHWAYS_KAFKA_NAMESPACE="tenant-a.")
    assert loaded.topic(Topic.TICKETS) == "tenant-a.bothways.tickets.v1"
    assert loaded.consumer_group("sla") == "tenant-a.sla"
