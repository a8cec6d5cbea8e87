"""Node registry API: create, read, update, delete and list this node's records."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from aiohttp import web

from federation.envelope import VISIBILITIES
from federation.errors import SchemaInvalid
from federation.schemas import within
from node.errors import InvalidParameter
from node.http.auth import require_user
from node.http.problems import read_json
from node.http.views.common import (
    choice_param,
    ctx,
    int_param,
    json_response,
    object_body,
    principal,
    record_id_param,
)
from node.services import assessment
from node.services.publish import Actor, Publisher
from schemas import RECORD_TYPES

WRITERS = ("admin", "editor")
CREATE_FIELDS = frozenset({"type", "visibility", "payload"})
UPDATE_FIELDS = frozenset({"payload", "visibility", "version"})
MAX_SEQ = 2**63 - 1


def _publisher(request: web.Request) -> Publisher:
    publisher = ctx(request).publisher
    assert publisher is not None  # node role always has one
    return publisher



def _check_body(body: dict[str, Any]) -> None:
    """Body-level rules, so that every schema error the publisher raises lies inside the payload.

    Raises:
        SchemaInvalid: unknown visibility, or a payload that is missing or not an object.
    """
    vis = body.get("visibility")
    if "visibility" in body and vis not in VISIBILITIES and not (isinstance(vis, str) and vis.startswith("group:")):
        # a group:<name> goes on: the publisher says whether it is one of this node's groups (group_invalid)
        raise SchemaInvalid(f"unknown visibility {vis!r}",
                            [{"pointer": "/visibility", "message": "must be public, network, national or group:<name>"}])
    if not isinstance(body.get("payload"), dict):
        raise SchemaInvalid("payload must be an object", [{"pointer": "/payload", "message": "required object"}])


@contextmanager
def _payload_errors() -> Iterator[None]:
    """Report the publisher's schema errors with pointers into the request body (``/payload/…``)."""
    try:
        yield
    except SchemaInvalid as exc:
        raise within(exc, "/payload") from None


async def create_record(request: web.Request) -> web.Response:
    """POST /api/v1/records — sign and store version 1."""
    p = await principal(request)
    require_user(p, WRITERS)
    body = object_body(await read_json(request, ctx(request).settings.max_body_bytes), CREATE_FIELDS)
    rtype = body.get("type")
    if not isinstance(rtype, str) or rtype not in RECORD_TYPES:
        raise SchemaInvalid(f"unknown record type {rtype!r}", [{"pointer": "/type", "message": "unknown type"}])
    _check_body(body)
    assessment.check_create(p, body["payload"])
    default_vis = "national" if rtype == "expert" else "public"
    with _payload_errors():
        env = await _publisher(request).create(rtype, body.get("visibility", default_vis), body["payload"],
                                               actor=Actor(assessment.actor_name(p)))
    response = json_response(env.to_dict(), status=201)
    response.headers["Location"] = f"/api/v1/records/{env.id}"
    response.headers["ETag"] = f'"{env.version}"'
    return response


async def get_record(request: web.Request) -> web.Response:
    """GET /api/v1/records/{id} — the current version (410 once deleted)."""
    shown = await ctx(request).access.record(await principal(request), record_id_param(request))
    response = json_response(shown.to_json())
    response.headers["ETag"] = f'"{shown.version}"'
    return response


async def update_record(request: web.Request) -> web.Response:
    """PUT /api/v1/records/{id} — replace the payload; ``version`` is the one being replaced."""
    rid = record_id_param(request)
    p = await principal(request)
    require_user(p, WRITERS)
    body = object_body(await read_json(request, ctx(request).settings.max_body_bytes), UPDATE_FIELDS)
    version = body.get("version")
    if type(version) is not int:
        raise SchemaInvalid("version (the version being replaced) is required, an integer",
                            [{"pointer": "/version", "message": "required integer"}])
    _check_body(body)
    with _payload_errors():
        env = await _publisher(request).update(rid, body["payload"], version, body.get("visibility"),
                                               actor=Actor(assessment.actor_name(p)),
                                               guard=assessment.membership_guard(p))
    response = json_response(env.to_dict())
    response.headers["ETag"] = f'"{env.version}"'
    return response


async def delete_record(request: web.Request) -> web.Response:
    """DELETE /api/v1/records/{id}?reason=withdrawn|erased|revoked — publish a tombstone."""
    rid = record_id_param(request)
    p = await principal(request)
    require_user(p, WRITERS)
    reason = choice_param(request, "reason", ("withdrawn", "erased", "revoked"), "withdrawn")
    assert reason is not None
    env = await _publisher(request).delete(rid, reason, actor=Actor(assessment.actor_name(p)))
    if reason == "erased" and ctx(request).gatekeeper is not None:
        await ctx(request).gatekeeper.forget_record(rid)  # its mails and application too (DESIGN §11)
    return json_response(env.to_dict())


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"s": seq})).decode().rstrip("=")


def _decode_cursor(raw: str) -> int:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        seq = data["s"]
        # bounded: a seq beyond the databases' BIGINT would fail in the driver (500), not here
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_SEQ:
            raise ValueError
        return seq
    except Exception as exc:
        raise InvalidParameter("cursor is not valid", parameter="cursor") from exc


async def list_records(request: web.Request) -> web.Response:
    """GET /api/v1/records?type=&cursor=&limit= — current records the reader may see, newest change
    first, each as the reader may see it."""
    p = await principal(request)
    rtype = choice_param(request, "type", RECORD_TYPES, None)
    limit = int_param(request, "limit", 50, 1, 1000)
    cursor = request.query.get("cursor")
    before = _decode_cursor(cursor) if cursor else None
    shown, next_before = await ctx(request).access.records(p, rtype, before, limit)
    return json_response({"records": [s.to_json() for s in shown],
                          "next_cursor": _encode_cursor(next_before) if next_before is not None else None})
