"""RFC 9457 problem documents: the one place where errors become HTTP responses.

Every error a request can end with — service errors (``node.errors.ApiError``), protocol errors
(``federation.errors.ProtocolError``), aiohttp's own HTTP exceptions (unknown route, wrong method,
body too large) — is turned into ``application/problem+json`` with a stable ``code``. A database
that cannot be reached (restarting, connection cut) is 503 ``unavailable`` with ``Retry-After``, as
``/readyz`` says meanwhile. Anything else is a bug: it is logged with the request id and answered 500
``internal_error``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from federation import strictjson
from federation.errors import ProtocolError
from node.errors import ApiError, MalformedRequest, PayloadTooLarge, ServiceUnavailable
from node.storage.availability import database_unavailable

log = logging.getLogger("ncc.http")

PROBLEM_TYPE_BASE = "https://schemas.ncc-federation.eu/problems/"

#: Request storage key of the request id (aiohttp ≥ 3.14 warns on plain string keys).
REQUEST_ID = web.RequestKey("request_id", str)

# HTTP status of each protocol error code when a client's request carries the bad data.
PROTOCOL_STATUS: dict[str, int] = {
    "malformed_json": 400,
    "unauthenticated": 401,
    "equivocation": 409,
}
DEFAULT_PROTOCOL_STATUS = 422

#: ``Retry-After`` of a 503 while the database cannot be reached (a restart takes seconds).
RETRY_AFTER_S = 5

AIOHTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


def problem(status: int, code: str, title: str, detail: str, request: web.Request | None = None,
            **extra: Any) -> web.Response:
    """Build a problem+json response."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.path
        rid = request.get(REQUEST_ID)
        if rid:
            body["request_id"] = rid
    body.update(extra)
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/problem+json"
    )


def from_exception(exc: BaseException, request: web.Request) -> web.Response:
    """Map any exception to its problem response (walking the class hierarchy)."""
    if isinstance(exc, ApiError):
        response = problem(exc.status, exc.code, exc.title, exc.detail, request, **exc.extra)
        if isinstance(exc.extra.get("retry_after"), int):  # a rate limit says when to come back
            response.headers["Retry-After"] = str(exc.extra["retry_after"])
        return response
    if isinstance(exc, ProtocolError):
        status = PROTOCOL_STATUS.get(exc.code, DEFAULT_PROTOCOL_STATUS)
        extra = {k: v for k, v in exc.to_dict().items() if k not in ("code", "detail")}
        return problem(status, exc.code, exc.code.replace("_", " ").capitalize(), exc.detail, request, **extra)
    if isinstance(exc, web.HTTPException):
        code, title = AIOHTTP_CODES.get(exc.status, (f"http_{exc.status}", exc.reason))
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else title
        response = problem(exc.status, code, title, detail, request)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    if database_unavailable(exc):
        log.warning("database unavailable", extra={"request_id": request.get(REQUEST_ID),
                                                   "error": f"{exc.__class__.__name__}: {exc}"})
        response = from_exception(ServiceUnavailable("the database cannot be reached; retry shortly"), request)
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response
    log.exception("unhandled error", extra={"request_id": request.get(REQUEST_ID)}, exc_info=exc)
    return problem(500, "internal_error", "Internal error", "unexpected server error", request)


@web.middleware
async def problem_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return from_exception(exc, request)
    except (ApiError, ProtocolError) as exc:
        return from_exception(exc, request)
    except Exception as exc:  # noqa: BLE001 - the one place that answers for unexpected errors
        return from_exception(exc, request)


async def read_json(request: web.Request, max_bytes: int) -> Any:
    """Read and strictly parse the request body.

    Raises:
        PayloadTooLarge: more than ``max_bytes``.
        MalformedRequest / CanonicalizationError: see ``federation.strictjson``.
    """
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"body of {request.content_length} bytes exceeds {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"body exceeds {max_bytes} bytes")
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise MalformedRequest("empty body")
    return strictjson.loads(data)


def _unparsable_request_problem(
    self: Any, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None
) -> web.StreamResponse:
    """``RequestHandler.handle_error`` for what aiohttp refuses before any handler or middleware runs —
    a request line or header over its limits (8190 bytes), a malformed request — answered as a
    problem document like every other client error, not aiohttp's ``text/plain``. Server errors and
    responses already under way keep aiohttp's own handling."""
    if status >= 500 or request.writer.output_size > 0:
        return _AIOHTTP_HANDLE_ERROR(self, request, status, exc, message)
    code, title = AIOHTTP_CODES.get(status, (f"http_{status}", "Bad request"))
    detail = (str(exc.message) if exc is not None and getattr(exc, "message", None) else message) or title
    log.info("request refused before routing", extra={"status": status, "error": detail[:300]})
    response = problem(status, code, title, detail[:300])
    response.force_close()
    return response


_AIOHTTP_HANDLE_ERROR: Any = None


def install_unparsable_request_problems() -> None:
    """Route aiohttp's pre-handler refusals through :func:`_unparsable_request_problem` (idempotent)."""
    global _AIOHTTP_HANDLE_ERROR
    from aiohttp.web_protocol import RequestHandler

    if _AIOHTTP_HANDLE_ERROR is None:
        _AIOHTTP_HANDLE_ERROR = RequestHandler.handle_error
        RequestHandler.handle_error = _unparsable_request_problem  # type: ignore[method-assign]
