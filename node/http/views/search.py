"""GET /api/v1/search on both roles, and the node's answer to the hub's live query."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web

from federation.errors import SchemaErrorItem, SchemaInvalid
from federation.groups import valid_group_name
from node.http.auth import require_service
from node.http.problems import read_json
from node.http.views.common import ctx, json_response, principal
from node.search.base import DIMENSIONS
from node.search.cursor import MAX_OFFSET, encode_cursor
from node.services.nodefed import version_digests
from node.services.search import bool_param, query_from_params, result_to_json


async def search(request: web.Request) -> web.Response:
    """Full-text + faceted search over what the reader may see.

    Both roles answer the same shape. ``nodes`` is, at the hub, every enrolled node's status; at a
    node, the node itself (``{"<its country>": "ok"}``: it answers from its own records, so there
    is nothing to be stale or missing).
    """
    c = ctx(request)
    p = await principal(request)
    query = await c.access.search_scope(p, query_from_params(request.query, frozenset(), c.settings.search_max_limit))
    if c.settings.role == "hub":
        from node.http.views.hub import node_statuses

        live = bool_param(request.query, "live")
        with c.live.admitted(request.remote or "", p.is_anonymous, live):
            body = await c.live.search(query, request.query, live=live)
        body["nodes"] = await node_statuses(request)
        return json_response(body)
    bool_param(request.query, "live")  # a node has no one to ask, but a bad value is still an error
    body = result_to_json(await c.search.search(query))
    body["nodes"] = {c.settings.country: "ok"} if c.settings.country else {}
    return json_response(body)


async def federated_search(request: web.Request) -> web.Response:
    """POST /federation/v1/search — the hub asks this node (public and network records, and group
    records of the groups the hub names that this node is a member of; the restricted part of the
    index only when the hub asks for an analyst: ``node.access``).

    ``offset`` (optional) starts the page that far into the ranked results: the hub pages its
    merged answer with one offset per node. ``strict: true`` keeps the words no record here has
    (reporting them in ``absent_terms`` when nothing matched) and ``drop_terms`` leaves out the
    words the hub found in no record of the federation.
    """
    require_service(await principal(request), issuers=("hub",))
    c = ctx(request)
    params = live_query(await read_json(request, c.settings.max_body_bytes))
    query = await c.access.live_scope(params, query_from_params(params, frozenset(), c.settings.search_max_limit))
    query = replace(query, relax=not params.get("strict"), drop_terms=frozenset(params.get("drop_terms") or ()))
    if params.get("offset"):
        query = replace(query, cursor=encode_cursor(params["offset"], query))
    result = await c.search.search(query)
    body = {**result_to_json(result), "absent_terms": list(result.absent)}
    # each hit's digest: the hub marks a live hit verified only when it holds the same content
    digests = await version_digests([(h["id"], h["version"]) for h in body["results"]])
    for hit in body["results"]:
        hit["digest"] = digests.get((hit["id"], hit["version"]))
    return json_response(body)


def live_query(body: Any) -> dict[str, Any]:
    """The hub's live query: an object whose members have the types the hub sends.

    Raises:
        SchemaInvalid: anything else (a non-object, a filter that is not a list of strings, …).
    """
    if not isinstance(body, dict):
        raise SchemaInvalid("request body must be a JSON object", [{"pointer": "", "message": "not an object"}])
    errors: list[SchemaErrorItem] = []
    for name in ("q", "cursor"):
        if body.get(name) is not None and not isinstance(body[name], str):
            errors.append({"pointer": f"/{name}", "message": "not a string"})
    if "limit" in body and (type(body["limit"]) is not int):
        errors.append({"pointer": "/limit", "message": "not an integer"})
    for name in ("strict", "restricted"):
        if name in body and not isinstance(body[name], bool):
            errors.append({"pointer": f"/{name}", "message": "not a boolean"})
    terms = body.get("drop_terms", [])
    if not (isinstance(terms, list) and len(terms) <= 64 and all(isinstance(t, str) and len(t) <= 500 for t in terms)):
        errors.append({"pointer": "/drop_terms", "message": "not a list of at most 64 strings"})
    if "offset" in body and not (type(body["offset"]) is int and 0 <= body["offset"] <= MAX_OFFSET):
        errors.append({"pointer": "/offset", "message": f"not an integer from 0 to {MAX_OFFSET}"})
    for name in DIMENSIONS:
        value = body.get(name, [])
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            errors.append({"pointer": f"/{name}", "message": "not a list of strings"})
    visibilities = body.get("visibilities", [])
    if not (isinstance(visibilities, list) and all(v in ("public", "network") for v in visibilities)):
        errors.append({"pointer": "/visibilities", "message": "a list of public and network"})
    groups = body.get("groups", [])
    if not (isinstance(groups, list) and len(groups) <= 1000 and all(valid_group_name(g) for g in groups)):
        errors.append({"pointer": "/groups", "message": "a list of group names"})
    if errors:
        raise SchemaInvalid(f"invalid live query ({errors[0]['pointer']}: {errors[0]['message']})", errors)
    return body
