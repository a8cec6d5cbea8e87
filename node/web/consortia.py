"""``/consortia`` (hub) — the consortium builder's page: the API's form, its proposals as cards.

The page asks ``node.services.consortium`` exactly as ``GET /api/v1/consortia`` does (same
parameters, same reader scope); without parameters it shows the form only. A bad parameter is
shown above the form (400), the form keeping what was chosen.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from federation.consortium import DIMENSIONS
from node.errors import InvalidParameter
from node.http.keys import CONTEXT
from node.services.consortium import build, requirements_from_params
from node.web import data
from node.web.render import page, render
from node.web.session import portal_principal
from schemas import load_vocabularies

TITLES = {
    "subdomain": "Sub-domains",
    "domain": "Knowledge domains",
    "sector": "Sectors",
    "technology": "Technologies",
}
VOCABULARY = {
    "subdomain": "subdomains",
    "domain": "knowledge_domains",
    "sector": "sectors",
    "technology": "technologies",
}


@functools.cache
def _options() -> dict[str, list[tuple[str, str, str]]]:
    """Per dimension: (id, label, group label) of every term, sub-domains grouped by domain."""
    vocab = load_vocabularies()
    domains = {t["id"]: t["label"] for t in vocab["knowledge_domains"]}
    out: dict[str, list[tuple[str, str, str]]] = {}
    for dim, name in VOCABULARY.items():
        out[dim] = [
            (
                str(t["id"]),
                str(t["label"]),
                domains.get(str(t.get("parent", "")), "") if dim == "subdomain" else "",
            )
            for t in vocab[name]
        ]
    return out


def _chosen(query: Any, name: str) -> list[str]:
    return [v.strip() for raw in query.getall(name, []) for v in str(raw).split(",") if v.strip()]


@page
async def consortia_page(request: web.Request) -> web.Response:
    """The form; with at least one required tag, the proposals for this reader."""
    query = request.query
    chosen = {dim: set(_chosen(query, dim)) for dim in DIMENSIONS}
    form = {
        "chosen": chosen,
        "min_countries": query.get("min_countries", "3") or "3",
        "size": query.get("size", "5") or "5",
        "k": query.get("k", "3") or "3",
        "sme": (query.get("sme") or "").lower() in ("true", "1", "yes", "on"),
        "exclude": _chosen(query, "exclude"),
    }
    context: dict[str, Any] = {
        "form": form,
        "dimensions": DIMENSIONS,
        "titles": TITLES,
        "options": _options(),
        "result": None,
        "error": None,
    }
    if not query:  # the empty form; anything submitted is checked as the API checks it
        return await render(request, "consortia.html", context)
    try:
        req = requirements_from_params(query)
    except InvalidParameter as exc:
        return await render(request, "consortia.html", {**context, "error": exc.detail}, status=400)
    c = request.app[CONTEXT]
    p = await portal_principal(request)
    result = await build(c.search, c.access, p, req)
    pairs = [(k, v) for k, v in query.items()]
    for proposal in result["consortia"]:
        for member in proposal["members"]:
            member["country_label"] = data.label("country", member["country"])
            member["without_href"] = "/consortia?" + urlencode([*pairs, ("exclude", member["id"])])
    context.update(
        result=result, label=lambda v: data.label("", v), required=[(t.dim, t.value) for t in req.tags]
    )
    return await render(request, "consortia.html", context)
