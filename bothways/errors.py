"""Domain errors, raised where they happen and mapped to HTTP once, in bothways.web."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a client can cause; `code` and `status_code` shape the HTTP answer."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class Unauthenticated(DomainError):
    status_code = 401
    code = "unauthenticated"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class InvalidInput(DomainError):
    status_code = 422
    code = "validation_failed"


class MalformedBody(DomainError):
    status_code = 400
    code = "malformed_body"


class UnsupportedMediaType(DomainError):
    status_code = 415
    code = "unsupported_media_type"


class BodyTooLarge(DomainError):
    status_code = 413
    code = "body_too_large"
