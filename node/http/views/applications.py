"""Gatekeeper API (DESIGN §12): applications, confirmation, the applicant's file, decisions, history."""

from __future__ import annotations

import re

from aiohttp import web

from node.errors import NotFound, Unauthenticated
from node.http.auth import require_user
from node.http.clientaddr import client_address
from node.http.problems import read_json
from node.http.views.common import ctx, json_response, object_body, principal, record_id_param
from node.services import assessment
from node.services.applications import Gatekeeper

APP_ID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def _gatekeeper(request: web.Request) -> Gatekeeper:
    gk = ctx(request).gatekeeper
    assert gk is not None  # node role
    return gk


def application_id(request: web.Request) -> str:
    app_id = request.match_info["id"]
    if not APP_ID.match(app_id):
        raise NotFound(f"no application {app_id!r}")
    return app_id


def no_store(response: web.StreamResponse) -> web.StreamResponse:
    """Answers that carry or follow a link token are never cached and never leak a Referer."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def apply(request: web.Request) -> web.Response:
    """POST /api/v1/applications — anonymous; 202 {id, status: unconfirmed}."""
    settings = ctx(request).settings
    body = await read_json(request, settings.max_body_bytes)
    result = await _gatekeeper(request).apply(body, client_address(request, settings.trusted_proxies))
    response = json_response(result, status=202)
    response.headers["Location"] = f"/api/v1/applications/{result['id']}"
    return response


async def confirm(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/applications/{id}/confirm {token} — 200 {id, record_id, status: applied}."""
    app_id = application_id(request)
    body = object_body(await read_json(request, 16 * 1024), frozenset({"token"}))
    return no_store(json_response(await _gatekeeper(request).confirm(app_id, body.get("token"))))


async def application_status(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/applications/{id} with ``Authorization: Bearer <manage token>`` — the applicant's file."""
    app_id = application_id(request)
    return no_store(json_response(await _gatekeeper(request).status(app_id, _bearer(request))))


async def propose(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/applications/{id}/changes {payload, visibility?} with the manage link's token as
    ``Authorization: Bearer`` — later changes, assessed like an application."""
    app_id = application_id(request)
    token = _bearer(request)
    body = await read_json(request, ctx(request).settings.max_body_bytes)
    return no_store(json_response(await _gatekeeper(request).propose(app_id, token, body), status=202))


def _bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send the token of your manage link as 'Authorization: Bearer <token>'")
    return token.strip()


async def manage_link(request: web.Request) -> web.Response:
    """POST /api/v1/manage-links {email} — 202 whether or not that address applied."""
    settings = ctx(request).settings
    body = await read_json(request, 16 * 1024)
    await _gatekeeper(request).resend_manage_link(body, client_address(request, settings.trusted_proxies))
    return json_response({"status": "sent if known"}, status=202)


async def application_queue(request: web.Request) -> web.Response:
    """GET /api/v1/applications — assessors and admins: what waits for a decision."""
    require_user(await principal(request), assessment.DECIDERS)
    return json_response({"applications": await assessment.queue()})


async def decide(request: web.Request) -> web.Response:
    """POST /api/v1/records/{id}/decisions {status, ground?, note?} — 201 the new signed version."""
    rid = record_id_param(request)
    p = await principal(request)
    require_user(p, assessment.DECIDERS)
    decision = assessment.parse_decision(await read_json(request, 64 * 1024))
    context = ctx(request)
    assert context.publisher is not None
    env = await assessment.decide(context.publisher, context.gatekeeper, rid, decision, p, context.clock,
                                  context.atlas)
    response = json_response(env.to_dict(), status=201)
    response.headers["Location"] = f"/api/v1/records/{env.id}"
    response.headers["ETag"] = f'"{env.version}"'
    return response


async def history(request: web.Request) -> web.Response:
    """GET /api/v1/records/{id}/history — every version: who, when, decision, ground, note, changes."""
    rid = record_id_param(request)
    require_user(await principal(request), assessment.HISTORY_READERS)
    versions = await assessment.history(rid)
    if versions is None:
        raise NotFound(f"no record {rid}")
    return json_response({"id": rid, "versions": versions})
