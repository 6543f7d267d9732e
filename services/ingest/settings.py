"""The ingest service's settings (BOTHWAYS_* environment variables)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from bothways.settings import ServiceSettings
from bothways.signing import decode_secret


class IngestSettings(ServiceSettings):
    port: int = Field(default=8001, ge=1, le=65535)
    # Standard Webhooks secrets (`whsec_...`) for POST /webhooks/generic; several during rotation.
    generic_webhook_secrets: list[SecretStr] = Field(default_factory=list)

    @field_validator("generic_webhook_secrets")
    @classmethod
    def _well_formed(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        for secret in secrets:
            decode_secret(secret.get_secret_value())
        return secrets

    def generic_keys(self) -> list[bytes]:
        return [decode_secret(s.get_secret_value()) for s in self.generic_webhook_secrets]
