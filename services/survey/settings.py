"""The survey service's settings (BOTHWAYS_* environment variables).

The answer-link secrets are required and have no default: a link signed with a publicly known secret
could be forged by anyone. `bothways dev` and the tests make their own. The rules (which tickets are
surveyed, the fatigue budget, follow-ups) live in a YAML file, see services/survey/surveys.yaml.
"""

from __future__ import annotations

from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator

from bothways.settings import ServiceSettings
from bothways.signing import decode_secret
from services.survey.delivery import Channel, RetryPolicy, SmtpSecurity, SmtpServer

MIN_TOKEN_SECRET_LENGTH = 32


class SurveySettings(ServiceSettings):
    port: int = Field(default=8003, ge=1, le=65535)
    # Sign answer links: the first signs, every one verifies (rotation). Each at least 32 characters.
    survey_token_secrets: list[SecretStr] = Field(min_length=1)
    # Where customers reach the answer pages (GET/POST /s/{token}), as put into links.
    survey_public_url: str = "http://127.0.0.1:8003"
    # A site's rules file; the packaged services/survey/surveys.yaml when unset.
    survey_rules_file: Path | None = None
    # How invitations leave: e-mail over SMTP, or a signed webhook to a platform that mails them itself.
    survey_channel: Channel = Channel.EMAIL
    # The time zone of dates shown to customers (the answer deadline).
    survey_time_zone: str = "UTC"
    survey_team_name: str = Field(default="IT Service Desk", min_length=1, max_length=100)
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: SmtpSecurity = SmtpSecurity.STARTTLS
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # The From header, e.g. "IT Service Desk <servicedesk@example.com>"; required with smtp_host.
    smtp_from: str | None = None
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # The webhook channel: where invitations are posted, signed with every secret listed (whsec_...).
    survey_webhook_url: str | None = None
    survey_webhook_secrets: list[SecretStr] = Field(default_factory=list)
    # Optional: where a closed follow-up asks to reopen or annotate its ticket (signed the same way).
    ticket_webhook_url: str | None = None
    survey_max_attempts: int = Field(default=6, ge=1, le=50)
    survey_retry_base_seconds: float = Field(default=60.0, gt=0)
    # How long a claimed send may take before another replica assumes the sender died.
    survey_send_lease_seconds: int = Field(default=300, ge=10)
    survey_send_batch: int = Field(default=20, ge=1, le=1000)
    survey_send_concurrency: int = Field(default=5, ge=1, le=100)

    @field_validator("survey_token_secrets")
    @classmethod
    def _long_enough(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        if any(len(s.get_secret_value()) < MIN_TOKEN_SECRET_LENGTH for s in secrets):
            raise ValueError(
                f"each survey token secret must be at least {MIN_TOKEN_SECRET_LENGTH} characters "
                "(generate one: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return secrets

    @field_validator("survey_webhook_secrets")
    @classmethod
    def _standard_webhook_secrets(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        for secret in secrets:
            decode_secret(secret.get_secret_value())
        return secrets

    @field_validator("survey_public_url")
    @classmethod
    def _public_url(cls, url: str) -> str:
        return _http_url(url)

    @field_validator("survey_webhook_url", "ticket_webhook_url")
    @classmethod
    def _optional_url(cls, url: str | None) -> str | None:
        return _http_url(url) if url else None

    @field_validator("survey_time_zone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {zone!r}") from exc
        return zone

    @field_validator("smtp_host", "smtp_username", "smtp_from", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("smtp_password", mode="before")
    @classmethod
    def _empty_password_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _channel_is_complete(self) -> SurveySettings:
        if self.smtp_host and not self.smtp_from:
            raise ValueError("smtp_from (BOTHWAYS_SMTP_FROM) is required with smtp_host")
        if self.survey_channel is Channel.WEBHOOK and not (
            self.survey_webhook_url and self.survey_webhook_secrets
        ):
            raise ValueError(
                "the webhook channel needs survey_webhook_url and survey_webhook_secrets "
                "(BOTHWAYS_SURVEY_WEBHOOK_URL, BOTHWAYS_SURVEY_WEBHOOK_SECRETS)"
            )
        if self.ticket_webhook_url and not self.survey_webhook_secrets:
            raise ValueError("ticket_webhook_url needs survey_webhook_secrets to sign with")
        return self

    def token_keys(self) -> list[bytes]:
        """The answer-link secrets as HMAC keys, the signing one first."""
        return [s.get_secret_value().encode() for s in self.survey_token_secrets]

    def webhook_secrets(self) -> list[str]:
        """The Standard Webhooks secrets that sign outgoing webhooks."""
        return [s.get_secret_value() for s in self.survey_webhook_secrets]

    def smtp_server(self) -> SmtpServer | None:
        """The SMTP server, or None when mail is not configured."""
        if not self.smtp_host:
            return None
        return SmtpServer(
            host=self.smtp_host,
            port=self.smtp_port,
            security=self.smtp_security,
            username=self.smtp_username,
            password=self.smtp_password.get_secret_value() if self.smtp_password else None,
            timeout_seconds=self.smtp_timeout_seconds,
        )

    def retry_policy(self) -> RetryPolicy:
        """The delivery retry schedule."""
        return RetryPolicy(
            max_attempts=self.survey_max_attempts, base=timedelta(seconds=self.survey_retry_base_seconds)
        )

    def public_host(self) -> str:
        """The host of the public URL."""
        return urlsplit(self.survey_public_url).hostname or "localhost"

    def mail_domain(self) -> str:
        """The domain of Message-IDs: the sender's, else the public URL's host."""
        _, address = parseaddr(self.smtp_from or "")
        return address.rpartition("@")[2] or self.public_host()


def _http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL, got {url!r}")
    return url.rstrip("/")
