"""A stand-in for the ECCC Atlas: a Drupal-style JSON:API server written for the tests.

It runs in its own thread and event loop on a free loopback port, like a real remote, and is strict
where the real one is: the ``api-key`` header, the ``application/vnd.api+json`` media type on writes,
the document shape (``{"data": {"type": "node--cluster", …}}``, known attributes only), and every
relationship checked against its own taxonomy lists (a term it does not have is a 422). It pages
collections (``links.next``), answers 429/503 on demand, and lets a test change an entry remotely
(a conflict) or seed one (matching before creating). Every request is logged for assertions.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

import schemas

MEDIA = "application/vnd.api+json"
ATTRIBUTES = frozenset({
    "title", "field_institution_name_in_nation", "field_entity_department", "field_address",
    "field_general_contact_e_mail", "field_phone_number", "field_url", "field_registration_number",
    "field_question_headquarter", "field_headquarter", "field_question_subsidiaries", "field_subsidiaries_eu",
    "field_question_majority", "field_majority_shares_noneu", "field_article_136_compliance",
    "field_data_sharing_consent", "field_first_name", "field_family_name", "field_e_mail", "field_position",
    "field_representative_phone_numbe", "field_field_of_activity_descr", "moderation_state",
})
RELATIONSHIPS = {
    "field_country": "country", "field_cluster_type": "cluster_type",
    "field_cluster_thematic_area": "cluster_thematic_area", "field_sectors": "sectors",
    "field_technologies": "technologies", "field_use_cases": "use_cases",
    "field_field_of_activity": "fields_of_activity",
}
OURS = {"cluster_type": "organisation_types", "sectors": "sectors", "technologies": "technologies",
        "use_cases": "use_cases", "fields_of_activity": "fields_of_activity"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_terms() -> dict[str, list[dict[str, Any]]]:
    """The Atlas's taxonomies as our vocabularies name them (UUIDs of its own, except the thematic areas,
    which carry the UUIDs our vocabularies hold)."""
    vocab = schemas.load_vocabularies()
    terms: dict[str, list[dict[str, Any]]] = {}
    terms["cluster_thematic_area"] = [
        {"id": t["atlas_uuid"], "attributes": {"name": t["label"]}}
        for name in ("knowledge_domains", "subdomains") for t in vocab[name] if t.get("atlas_uuid")]
    terms["country"] = [{"id": str(uuid.uuid4()), "attributes": {"name": t["label"],
                                                                  "field_iso_code": t.get("eu_code") or t["id"]}}
                        for t in vocab["countries"]]
    for atlas_name, ours in OURS.items():
        terms[atlas_name] = [{"id": str(uuid.uuid4()), "attributes": {"name": t["label"]}} for t in vocab[ours]]
    return terms


@dataclass
class AtlasServer:
    api_key: str = "atlas-test-key"
    page_size: int = 20
    terms: dict[str, list[dict[str, Any]]] = field(default_factory=default_terms)
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    #: answer this status (with Retry-After: 0) to the next N requests of any method
    fail_next: list[int] = field(default_factory=list)
    #: answer this status to every request of the method (e.g. {"PATCH": 503})
    refuse: dict[str, int] = field(default_factory=dict)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] in ("POST", "PATCH", "DELETE")]

    def term_id(self, vocabulary: str, name: str) -> str:
        return next(t["id"] for t in self.terms[vocabulary] if t["attributes"]["name"] == name)

    def country_id(self, iso: str) -> str:
        return next(t["id"] for t in self.terms["country"] if t["attributes"]["field_iso_code"] == iso)

    def change_remotely(self, entry: str, **attributes: Any) -> None:
        """Someone at the Centre edits the entry (its ``changed`` moves on)."""
        self.clusters[entry]["attributes"].update(attributes)
        self.clusters[entry]["attributes"]["changed"] = _now()

    def seed(self, title: str, country_iso: str) -> str:
        """An entry made at the Atlas by hand (not by us)."""
        entry = str(uuid.uuid4())
        self.clusters[entry] = {"type": "node--cluster", "id": entry,
                                "attributes": {"title": title, "changed": _now(), "moderation_state": "published"},
                                "relationships": {"field_country": {"data": {
                                    "type": "taxonomy_term--country", "id": self.country_id(country_iso)}}}}
        return entry

    # -- the app ------------------------------------------------------------------------------------

    def _error(self, status: int, title: str) -> web.Response:
        return web.Response(status=status, body=orjson.dumps({"errors": [{"status": str(status), "title": title}]}),
                            content_type=MEDIA)

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        if self.fail_next:
            status = self.fail_next.pop(0)
            return web.Response(status=status, headers={"Retry-After": "0"}, text="busy")
        if request.method in self.refuse:
            return self._error(self.refuse[request.method], "unavailable")
        if request.headers.get("api-key") != self.api_key:
            return self._error(403, "bad api-key")
        if request.method in ("POST", "PATCH") and request.content_type != MEDIA:
            return self._error(415, f"media type must be {MEDIA}")
        return await handler(request)

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> web.Response:
        offset = int(request.query.get("page[offset]", "0"))
        page = items[offset: offset + self.page_size]
        links: dict[str, Any] = {}
        if offset + self.page_size < len(items):
            query = {k: v for k, v in request.query.items() if k != "page[offset]"}
            query["page[offset]"] = str(offset + self.page_size)
            links["next"] = {"href": str(request.url.with_query(query))}
        return web.Response(body=orjson.dumps({"data": page, "links": links}), content_type=MEDIA)

    async def _terms(self, request: web.Request) -> web.Response:
        vocabulary = request.match_info["vocabulary"]
        if vocabulary not in self.terms:
            return self._error(404, "no such vocabulary")
        items = [{"type": f"taxonomy_term--{vocabulary}", **t} for t in self.terms[vocabulary]]
        return self._page(request, items)

    async def _list(self, request: web.Request) -> web.Response:
        items = list(self.clusters.values())
        title = request.query.get("filter[title]")
        if title is not None:
            items = [c for c in items if c["attributes"].get("title") == title]
        return self._page(request, items)

    async def _get(self, request: web.Request) -> web.Response:
        entry = self.clusters.get(request.match_info["id"])
        if entry is None:
            return self._error(404, "not found")
        return web.Response(body=orjson.dumps({"data": entry}), content_type=MEDIA)

    def _check(self, data: Any, *, patch: bool) -> str | None:
        if not isinstance(data, dict) or data.get("type") != "node--cluster":
            return "data must be a node--cluster resource"
        attributes = data.get("attributes", {})
        if not isinstance(attributes, dict) or (not patch and not attributes.get("title")):
            return "attributes.title is required"
        unknown = set(attributes) - ATTRIBUTES
        if unknown:
            return f"unknown attributes {sorted(unknown)}"
        desc = attributes.get("field_field_of_activity_descr")
        if isinstance(desc, str) and len(desc) > 800:
            return "field_field_of_activity_descr is longer than 800"
        for name, rel in (data.get("relationships") or {}).items():
            vocabulary = RELATIONSHIPS.get(name)
            if vocabulary is None:
                return f"unknown relationship {name}"
            items = rel.get("data") if isinstance(rel, dict) else None
            for item in items if isinstance(items, list) else [items] if items else []:
                ids = {t["id"] for t in self.terms[vocabulary]}
                if item.get("type") != f"taxonomy_term--{vocabulary}" or item.get("id") not in ids:
                    return f"{name}: unknown term {item}"
        return None

    async def _post(self, request: web.Request) -> web.Response:
        data = (orjson.loads(await request.read())).get("data")
        problem = self._check(data, patch=False)
        if problem:
            return self._error(422, problem)
        entry = str(uuid.uuid4())
        self.clusters[entry] = {"type": "node--cluster", "id": entry,
                                "attributes": {**data["attributes"], "changed": _now()},
                                "relationships": data.get("relationships", {})}
        return web.Response(status=201, body=orjson.dumps({"data": self.clusters[entry]}), content_type=MEDIA)

    async def _patch(self, request: web.Request) -> web.Response:
        entry = self.clusters.get(request.match_info["id"])
        if entry is None:
            return self._error(404, "not found")
        data = (orjson.loads(await request.read())).get("data")
        problem = self._check(data, patch=True)
        if problem or data.get("id") != entry["id"]:
            return self._error(422, problem or "id mismatch")
        for key, value in data.get("attributes", {}).items():
            if value is None:
                entry["attributes"].pop(key, None)
            else:
                entry["attributes"][key] = value
        entry["relationships"].update(data.get("relationships", {}))
        entry["attributes"]["changed"] = _now()
        return web.Response(body=orjson.dumps({"data": entry}), content_type=MEDIA)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/jsonapi/taxonomy_term/{vocabulary}", self._terms)
        app.router.add_get("/jsonapi/node/cluster", self._list)
        app.router.add_post("/jsonapi/node/cluster", self._post)
        app.router.add_get("/jsonapi/node/cluster/{id}", self._get)
        app.router.add_patch("/jsonapi/node/cluster/{id}", self._patch)
        return app


_CLOCK = [0]


def _now() -> str:
    """Drupal's ``changed``: an ISO time, distinct for every change (a counter keeps two changes in one
    second apart)."""
    _CLOCK[0] += 1
    return f"{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%S')}+00:00#{_CLOCK[0]}"


def serve(server: AtlasServer) -> Iterator[AtlasServer]:
    """Run ``server`` in a thread until the generator is closed (for a pytest fixture)."""
    server.port = _free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(server.app())
    started = threading.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", server.port).start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=main, name="atlas-server", daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
