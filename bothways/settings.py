"""Base settings every service shares; each service subclasses it once, in its app.py."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bothways.events import Topic

SCOPES = frozenset({"read", "admin"})


class ServiceSettings(BaseSettings):
    """Read once at start-up; a required value without a default fails the start, not a request."""

    model_config = SettingsConfigDict(env_prefix="BOTHWAYS_", extra="ignore", frozen=True)

    database_url: str = Field(validation_alias=AliasChoices("BOTHWAYS_DATABASE_URL", "DATABASE_URL"))
    kafka_bootstrap_servers: str = Field(
        validation_alias=AliasChoices("BOTHWAYS_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS")
    )
    # Apache Kafka: keep on (acks=all + idempotence). The local Tansu broker does not support it,
    # so `bothways dev` and the tests turn it off explicitly.
    kafka_idempotent_producer: bool = True
    kafka_topic_partitions: int = Field(default=6, ge=1, le=1000)
    # Prepended to every topic and consumer group: lets tests and tenants share one broker.
    kafka_namespace: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    # How fast a dead consumer is noticed; Tansu also holds a group join for about half of it.
    consumer_session_timeout_ms: int = Field(default=10_000, ge=1000, le=300_000)
    # How long the broker may hold a fetch waiting for data: the floor of end-to-end latency.
    consumer_fetch_max_wait_ms: int = Field(default=100, ge=0, le=10_000)
    consumer_max_attempts: int = Field(default=3, ge=1, le=100)
    consumer_retry_backoff_seconds: float = Field(default=0.2, ge=0)
    outbox_batch_size: int = Field(default=500, ge=1, le=10_000)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    # Due work (SLA deadlines, survey sends) claimed per scheduler transaction.
    scheduler_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Scheduler steps run side by side in one process (each claims its own rows with SKIP LOCKED).
    scheduler_concurrency: int = Field(default=2, ge=1, le=16)
    db_pool_min_size: int = Field(default=1, ge=0)
    db_pool_max_size: int = Field(default=10, ge=1)
    # API keys and their scopes, e.g. BOTHWAYS_API_KEYS='{"k3y...": ["read", "admin"]}'.
    api_keys: dict[SecretStr, frozenset[str]] = Field(default_factory=dict)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Routes a service declares as uploads (history imports) take bodies up to this size instead.
    max_upload_bytes: int = Field(default=1 << 30, ge=1024)
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    log_level: str = "INFO"

    @field_validator("api_keys")
    @classmethod
    def _known_scopes(cls, keys: dict[SecretStr, frozenset[str]]) -> dict[SecretStr, frozenset[str]]:
        for scopes in keys.values():
            if unknown := scopes - SCOPES:
                raise ValueError(f"unknown API key scope(s) {sorted(unknown)}; allowed: {sorted(SCOPES)}")
        return keys

    def topic(self, topic: Topic) -> str:
        """The broker-side name of a topic, within this deployment's namespace."""
        return f"{self.kafka_namespace}{topic.value}"

    def consumer_group(self, service: str) -> str:
        return f"{self.kafka_namespace}{service}"
