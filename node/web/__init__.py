"""The web portal: server-rendered HTML pages (aiohttp-jinja2), no script, one stylesheet.

Hub: Europe-wide search with facets and node freshness, record pages, federation status.
Node: a public search over its own records, and administration behind a user token (records
created and edited with forms generated from the JSON Schemas, import, the hub's quarantine).
The routes are part of :func:`node.http.routes.all_routes` (via :func:`node.web.routes.portal_routes`),
so they are registered and documented in ``/openapi.json`` like the API.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from node.web.render import visibility_badge

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"


def setup_portal(app: web.Application, role: str) -> jinja2.Environment:
    """Set up the template environment (autoescaping, strict undefined) of ``role``'s portal.

    The routes themselves (pages and ``/static/{name}``) come with the route table.
    """
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["portal_role"] = role
    env.globals["visibility_badge_of"] = visibility_badge
    return env
