"""The hub's live federated query: ask nodes directly, merge their answers with the index.

Query-only nodes are never replicated, so they are asked on every search; with ``live=true`` every
active node is asked. Each node gets the same deadline; a node that hangs is simply reported in
``missing`` and the answer is marked ``partial`` — it never delays the response past the deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import orjson

from federation.tokens import issue_service_token
from node.config import Settings
from node.errors import InvalidParameter
from node.keystore import InstanceKey
from node.search import SearchQuery
from node.services.search import SearchService, result_to_json
from node.storage.hub_models import FederatedNode

log = logging.getLogger("ncc.live")


@dataclass
class LiveQuery:
    settings: Settings
    key: Callable[[], InstanceKey]
    search_service: SearchService
    clock: Callable[[], datetime]
    _session: aiohttp.ClientSession | None = field(default=None)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def timeout_ms(self, params: Mapping[str, Any]) -> int:
        raw = params.get("timeout_ms")
        if raw in (None, ""):
            return self.settings.live_timeout_ms
        try:
            value = int(str(raw))
        except ValueError as exc:
            raise InvalidParameter("timeout_ms must be an integer", parameter="timeout_ms") from exc
        if not 1 <= value <= 60000:
            raise InvalidParameter("timeout_ms must be between 1 and 60000", parameter="timeout_ms")
        return value

    async def search(self, query: SearchQuery, params: Mapping[str, Any], live: bool = True) -> dict[str, Any]:
        """Index results merged with the nodes' own answers."""
        deadline = self.timeout_ms(params) / 1000
        nodes = await FederatedNode.filter(status="active").order_by("country")
        asked = [n for n in nodes if live or n.mode == "query-only"]
        local_task = asyncio.ensure_future(self.search_service.search(query))
        remote = {n.country: asyncio.ensure_future(self._ask(n.url, n.country, query)) for n in asked}
        if remote:
            await asyncio.wait(list(remote.values()), timeout=deadline)
        local = await local_task
        body = result_to_json(local)
        seen = {r["id"]: r for r in body["results"]}
        missing: list[str] = []
        for country, task in remote.items():
            if not task.done():
                task.cancel()
                missing.append(country)
                continue
            if task.exception() is not None:
                log.info("live query failed", extra={"node": country, "error": repr(task.exception())})
                missing.append(country)
                continue
            answer = task.result()
            for hit in answer.get("results", []):
                if not isinstance(hit, dict) or hit.get("origin") != country or "id" not in hit:
                    continue  # a node answers only for its own records
                held = seen.get(hit["id"])
                if held is None or int(hit.get("version", 0)) > int(held.get("version", 0)):
                    hit = {**hit, "verified": False, "live": True}
                    if held is None:
                        body["total"] += 1
                        body["results"].append(hit)
                    else:
                        body["results"][body["results"].index(held)] = hit
                    seen[hit["id"]] = hit
            node_mode = next(n.mode for n in asked if n.country == country)
            if node_mode == "query-only":
                for dim, counts in (answer.get("facets") or {}).items():
                    merged = body["facets"].setdefault(dim, {})
                    for value, n in (counts or {}).items():
                        if isinstance(n, int):
                            merged[value] = merged.get(value, 0) + n
        body["results"].sort(key=lambda r: -float(r.get("score") or 0))
        body["results"] = body["results"][: query.limit]
        body["partial"] = bool(missing)
        body["missing"] = sorted(missing)
        return body

    async def _ask(self, url: str, country: str, query: SearchQuery) -> dict[str, Any]:
        key = self.key()
        token = issue_service_token(key.private_key, key.kid, "hub", f"node:{country}", self.clock(), ttl_s=60)
        payload = {"q": query.q, "limit": query.limit, "visibilities": sorted(query.visibilities),
                   **{dim: list(values) for dim, values in query.filters.items()}}
        async with self.session().post(
            f"{url.rstrip('/')}/federation/v1/search", data=orjson.dumps(payload),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        ) as resp:
            if resp.status != 200:
                raise RuntimeError(f"{country} answered HTTP {resp.status}")
            data = orjson.loads(await resp.read())
            if not isinstance(data, dict):
                raise RuntimeError(f"{country} answered a non-object")
            return data
