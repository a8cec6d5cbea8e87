"""What ``ncc demo`` prints: progress, the cross-border searches (each shown envelope's signature
checked here against the hub's signed directory), and how to reach the running federation."""

from __future__ import annotations

import shlex
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp

from federation.directory import Directory, verify_directory
from federation.errors import ProtocolError
from federation.verify import verify
from node.context import build_registry, utc_now

if TYPE_CHECKING:
    from node.demo.orchestrate import Demo


@dataclass(frozen=True)
class Search:
    """One demo search: a caption, its query parameters, and who asks."""

    caption: str
    params: tuple[tuple[str, str], ...]
    as_analyst: bool = False
    show: int = 6


SEARCHES: tuple[Search, ...] = (
    Search("post-quantum expertise for the energy sector", (("q", "post-quantum"), ("sector", "sec.energy"))),
    Search("German keyword, accent- and case-insensitive", (("q", "kryptografie"),)),
    Search("prefix match across languages (cryptography, cryptographie, …), analyst sees network records",
           (("q", "cryptograph"), ("type", "organisation")), as_analyst=True),
)
FACETS = Search("facet listing: who is in the Community (analyst view)", (("limit", "1"),), as_analyst=True, show=0)


class Reporter:
    """Prints the demo's progress and results through ``out``."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out

    def header(self, demo: Demo) -> None:
        o = demo.options
        self.out(f"ncc demo: hub + {len(demo.nodes)} nodes ({', '.join(n.name for n in demo.nodes)}), "
                 f"{o.records} records per node, seed {o.seed}")

    def step(self, what: str, detail: str, since: float | None) -> None:
        took = f"  [{time.monotonic() - since:.1f} s]" if since is not None else ""
        self.out(f"  {what:<11} {detail}{took}")

    def loaded(self, demo: Demo, since: float) -> None:
        total = sum(len(v) for v in demo.loaded.values())
        types = Counter(r["type"] for rows in demo.loaded.values() for r in rows)
        plural = {"organisation": "organisations", "expert": "experts", "project": "projects",
                  "facility": "facilities"}
        kinds = ", ".join(f"{types[t]} {plural[t]}" for t in plural)
        self.step("loaded", f"{total} signed records through POST /api/v1/records ({kinds})", since)

    def synced(self, demo: Demo, nodes: list[dict[str, Any]], since: float) -> None:
        national = {c: sum(1 for r in rows if r["visibility"] == "national") for c, rows in demo.loaded.items()}
        if len(nodes) <= 5:
            parts = [f"{n['country']} cursor {n['cursor']} lag {n['lag']} ({n['status']}, "
                     f"{national.get(n['country'], 0)} national stayed home)" for n in nodes]
            self.step("synced", "; ".join(parts), since)
        else:
            statuses = Counter(n["status"] for n in nodes)
            self.step("synced", f"{len(nodes)} nodes at lag {max(n['lag'] for n in nodes)} "
                      f"({', '.join(f'{v} {k}' for k, v in sorted(statuses.items()))}); "
                      f"{sum(national.values())} national records stayed on their nodes", since)
        bad = {n["country"]: n["quarantined"] for n in nodes if n.get("quarantined")}
        if bad:
            self.out(f"  WARNING    quarantined at the hub: {bad}")

    async def searches(self, demo: Demo, http: aiohttp.ClientSession) -> None:
        async with http.get(demo.hub.url + "/federation/v1/directory") as r:
            doc = await r.json()
        try:
            directory = verify_directory(doc, utc_now())
        except ProtocolError as exc:
            self.out(f"  WARNING    the hub's directory does not verify: {exc.code}")
            directory = None
        checker = _Checker(directory, demo.tokens["hub:analyst"])
        for search in SEARCHES:
            body = await self._query(demo, http, search)
            self.out("")
            self.out(f"Search: {search.caption}")
            self.out(f"  GET {self._url(demo, search)}")
            countries = sorted({h["origin"] for h in body["results"]})
            for hit in body["results"][: search.show]:
                own = await checker.check(http, demo.hub.url, hit["id"])
                node = body.get("nodes", {}).get(hit["origin"], "?")
                verified = "verified" if hit.get("verified") else "NOT VERIFIED"
                self.out(f"  {hit['origin']}  {hit['type']:<12} {_cut(hit['title'], 58):<58}  v{hit['version']}  "
                         f"{verified}, signature {own}, node {node}")
            more = body["total"] - min(len(body["results"]), search.show)
            tail = f" (+{more} more)" if more > 0 else ""
            all_verified = all(h.get("verified") for h in body["results"])
            self.out(f"  -> {body['total']} results{tail} from {len(countries)} countries: "
                     f"{', '.join(countries) or '-'}; {'all verified' if all_verified else 'NOT ALL VERIFIED'}")
        body = await self._query(demo, http, FACETS)
        self.out("")
        self.out(f"Search: {FACETS.caption}")
        self.out(f"  GET {self._url(demo, FACETS)}")
        for name in ("country", "type", "org_type", "sector", "domain"):
            counts = body.get("facets", {}).get(name) or {}
            top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:6]
            self.out(f"  {name:<9} " + ", ".join(f"{k} {v}" for k, v in top))
        self.out("  nodes     " + ", ".join(f"{k} {v}" for k, v in sorted(body.get("nodes", {}).items())))

    def access(self, demo: Demo, once: bool = False) -> None:
        """Where the federation runs, tokens and commands to try; with ``--once`` only where it ran
        (everything is stopped as soon as this is printed)."""
        hub = demo.hub.url
        first = demo.nodes[0]
        self.out("")
        if once:
            self.out("The federation ran at (--once: every process is stopped now; run without --once "
                     "to keep it serving and get tokens to try it):")
            self.out(f"  hub        {hub}")
            for node in demo.nodes:
                self.out(f"  node {node.name}    {node.url}")
            return
        self.out("The federation is running:")
        self.out(f"  hub        {hub}   (search {hub}/api/v1/search, nodes {hub}/api/v1/nodes, "
                 f"directory {hub}/federation/v1/directory, API {hub}/openapi.json)")
        for node in demo.nodes:
            self.out(f"  node {node.name}    {node.url}   (data {node.data_dir})")
        if demo.pages:
            self.out(f"  portal     {'  '.join(demo.pages)}   (sign in at /login with a token below)")
        self.out("")
        self.out("Tokens (valid 7 days):")
        self.out(f"  hub analyst:        {demo.tokens['hub:analyst']}")
        self.out(f"  hub admin:          {demo.tokens['hub:admin']}")
        self.out(f"  node {first.name} editor:     {demo.tokens[first.name + ':editor']}")
        self.out(f"  node {first.name} assessor:   {demo.tokens[first.name + ':assessor']}"
                 f"   (queue: {first.url}/admin/assessments; apply: {first.url}/apply)")
        self.out("")
        self.out("Try:")
        analyst = demo.tokens["hub:analyst"]
        editor = demo.tokens[first.name + ":editor"]
        self.out(f"  curl -s {shlex.quote(hub + '/api/v1/search?q=post-quantum&sector=sec.energy')}")
        self.out(f"  curl -s -H 'Authorization: Bearer {analyst}' {shlex.quote(hub + '/api/v1/search?q=cryptograph')}")
        self.out(f"  curl -s {hub}/api/v1/nodes")
        body = ('{"type": "organisation", "visibility": "public", "payload": {"legal_name": "Cyber Lab GmbH", '
                f'"country": "{first.name}", "org_type": "ctype.industry-sme", "fields_of_activity": '
                '["foa.academia-research-innovation"], "domains": ["cry"], "subdomains": ["cry.10"], '
                '"description": "Post-quantum cryptography for energy grids."}}')
        self.out(f"  curl -s -X POST -H 'Authorization: Bearer {editor}' -H 'Content-Type: application/json' "
                 f"{first.url}/api/v1/records -d {shlex.quote(body)}")
        self.out(f"  ncc sync --data-dir {demo.hub.data_dir}")

    async def _query(self, demo: Demo, http: aiohttp.ClientSession, search: Search) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {demo.tokens['hub:analyst']}"} if search.as_analyst else {}
        async with http.get(demo.hub.url + "/api/v1/search", params=list(search.params), headers=headers) as r:
            body: dict[str, Any] = await r.json(content_type=None)
            if r.status != 200:
                from node.demo.processes import DemoError

                raise DemoError(f"hub search failed: HTTP {r.status} {body}")
            return body

    @staticmethod
    def _url(demo: Demo, search: Search) -> str:
        who = "  (as analyst)" if search.as_analyst else ""
        return f"{demo.hub.url}/api/v1/search?{urlencode(search.params)}{who}"


class _Checker:
    """Fetches a record's signed envelope from the hub and verifies it here, end to end."""

    def __init__(self, directory: Directory | None, analyst_token: str) -> None:
        self.directory = directory
        self.headers = {"Authorization": f"Bearer {analyst_token}"}
        self.registry = build_registry()

    async def check(self, http: aiohttp.ClientSession, hub_url: str, record_id: str) -> str:
        if self.directory is None:
            return "unchecked"
        async with http.get(f"{hub_url}/api/v1/records/{record_id}", headers=self.headers) as r:
            if r.status != 200:
                return f"unavailable (HTTP {r.status})"
            envelope = await r.json()
        try:
            record = verify(envelope, self.directory, utc_now(), self.registry)
        except ProtocolError as exc:
            return f"INVALID ({exc.code})"
        return f"ok ({record.envelope.sig.kid})"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
