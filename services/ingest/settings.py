"""The ingest service's settings (BOTHWAYS_* environment variables).

Secrets are JSON lists so several can be valid at once during rotation, e.g.
BOTHWAYS_JIRA_WEBHOOK_SECRETS='["old", "new"]'. A source with nothing configured refuses every delivery.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator

from bothways.settings import ServiceSettings
from bothways.signing import decode_secret

Secrets = list[SecretStr]


class IngestSettings(ServiceSettings):
    port: int = Field(default=8001, ge=1, le=65535)
    # Standard Webhooks secrets (`whsec_...`): the generic source, and ServiceNow when it signs.
    generic_webhook_secrets: Secrets = Field(default_factory=list)
    servicenow_webhook_secrets: Secrets = Field(default_factory=list)
    # HMAC secrets as configured on the platform.
    jira_webhook_secrets: Secrets = Field(default_factory=list)
    zendesk_webhook_secrets: Secrets = Field(default_factory=list)
    pagerduty_webhook_secrets: Secrets = Field(default_factory=list)
    # Platforms that sign nothing: bearer tokens, or basic credentials as "user:password".
    servicenow_bearer_tokens: Secrets = Field(default_factory=list)
    freshservice_bearer_tokens: Secrets = Field(default_factory=list)
    freshservice_basic_auth: Secrets = Field(default_factory=list)
    alertmanager_bearer_tokens: Secrets = Field(default_factory=list)
    alertmanager_basic_auth: Secrets = Field(default_factory=list)
    # A site's mapping file, merged over the packaged services/ingest/mapping.yaml.
    mapping_file: Path | None = None
    # Last word over both files, e.g. BOTHWAYS_MAPPING_OVERRIDES='{"zendesk": {"statuses": {"hold": "pending"}}}'.
    mapping_overrides: dict[str, Any] = Field(default_factory=dict)

    @field_validator("generic_webhook_secrets", "servicenow_webhook_secrets")
    @classmethod
    def _well_formed(cls, secrets: Secrets) -> Secrets:
        for secret in secrets:
            decode_secret(secret.get_secret_value())
        return secrets

    @field_validator("freshservice_basic_auth", "alertmanager_basic_auth")
    @classmethod
    def _user_and_password(cls, credentials: Secrets) -> Secrets:
        if any(":" not in c.get_secret_value() for c in credentials):
            raise ValueError("basic credentials are written 'user:password'")
        return credentials

    def standard_keys(self, secrets: Secrets) -> list[bytes]:
        return [decode_secret(s.get_secret_value()) for s in secrets]

    def generic_keys(self) -> list[bytes]:
        return self.standard_keys(self.generic_webhook_secrets)


def raw(secrets: Secrets) -> list[bytes]:
    """Secrets as the bytes an HMAC or a comparison takes."""
    return [s.get_secret_value().encode() for s in secrets]
