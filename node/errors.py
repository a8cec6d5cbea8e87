"""Service-level errors, each carrying the stable problem ``code`` and HTTP status.

Protocol errors (``federation.errors.ProtocolError``) carry their own codes; the HTTP
middleware maps both families to RFC 9457 problem documents in one place.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Root of the errors a request can end with; ``code`` is stable, ``status`` the HTTP status."""

    code = "internal_error"
    status = 500
    title = "Internal error"

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class InvalidParameter(ApiError):
    code, status, title = "invalid_parameter", 400, "Invalid query parameter"


class MalformedRequest(ApiError):
    code, status, title = "malformed_json", 400, "Malformed JSON body"


class Unauthenticated(ApiError):
    code, status, title = "unauthenticated", 401, "Authentication required"


class Forbidden(ApiError):
    code, status, title = "forbidden", 403, "Forbidden"


class NotFound(ApiError):
    code, status, title = "not_found", 404, "Not found"


class Gone(ApiError):
    code, status, title = "gone", 410, "Gone"


class VersionConflict(ApiError):
    code, status, title = "version_conflict", 409, "Version conflict"


class EnrollmentTokenUsed(ApiError):
    code, status, title = "enrollment_token_used", 409, "Enrollment token already used"


class Conflict(ApiError):
    code, status, title = "conflict", 409, "Conflict"


class PayloadTooLarge(ApiError):
    code, status, title = "payload_too_large", 413, "Payload too large"


class UnsupportedMediaType(ApiError):
    code, status, title = "unsupported_media_type", 415, "Unsupported media type"


class RateLimited(ApiError):
    code, status, title = "rate_limited", 429, "Too many requests"


class ServiceUnavailable(ApiError):
    code, status, title = "unavailable", 503, "Service unavailable"


def header_safe(value: str, parameter: str) -> str:
    """``value`` unchanged, when it may go into an HTTP (or mail) header: no CR, LF or other control
    character (DESIGN §10: header injection). The one check for every value that reaches a header.

    Raises:
        InvalidParameter: (400) it carries one.
    """
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InvalidParameter(f"{parameter} must not contain control characters (CR, LF, …)", parameter=parameter)
    return value
