"""The hub's live federated query: ask nodes directly, merge their answers with the index.

Query-only nodes are never replicated, so they are asked on every search; with ``live=true`` every
active node is asked. Each node gets the same deadline; a node that hangs is simply reported in
``missing`` and the answer is marked ``partial`` — it never delays the response past the deadline.

Counting once: a node that answers speaks for its own records. The hub's index is searched without
the records of the nodes asked (``SearchQuery.exclude_origins``) — it may hold copies of them from
before a node became query-only, or from the last pull — so ``total`` is the index's total plus each
answering node's, and facets add up the same way: every record is counted by exactly one source.
A node that does not answer in time is served from the index instead (what the hub holds of it).

Paging merges the sources' ranked lists: each page takes, from every source, the next ``limit``
hits after that source's offset, and picks the best ``limit`` of them by score (ties: the index
first, then nodes by country). ``next_cursor`` holds one offset per source, so page n+1 continues
each list exactly where page n stopped: no duplicates, no gaps, and the same total on every page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import aiohttp
import orjson

from federation.tokens import issue_service_token
from node.config import Settings
from node.errors import InvalidParameter
from node.keystore import InstanceKey
from node.search import DIMENSIONS, SearchQuery
from node.search.cursor import decode_offsets, encode_cursor, encode_offsets
from node.search.text import parse_terms, relaxable
from node.services.divergence import record_live
from node.services.search import SearchService, result_to_json
from node.storage.hub_models import FederatedNode

log = logging.getLogger("ncc.live")

#: The source name of the hub's own index in merged cursors (node sources are country codes).
INDEX = "_"


class BadAnswer(Exception):
    """A node's answer to the live query is not what the protocol says (the node counts as missing)."""


@dataclass
class _Source:
    """One ranked list taking part in a merged page."""

    name: str
    offset: int
    total: int
    hits: list[dict[str, Any]]
    taken: int = 0

    def exhausted(self) -> bool:
        return self.offset + self.taken >= self.total


def _score(hit: Mapping[str, Any]) -> float:
    try:
        return float(hit.get("score") or 0)
    except (TypeError, ValueError):
        return 0.0


def merge_page(sources: list[_Source], limit: int) -> list[tuple[str, dict[str, Any]]]:
    """Take the best ``limit`` hits (with their source's name) from the heads of ``sources`` (each
    already ranked), greedily. Ties go to the earlier source. Each source's ``taken`` says how many
    of its hits were used.
    """
    page: list[tuple[str, dict[str, Any]]] = []
    while len(page) < limit:
        best: _Source | None = None
        for source in sources:
            if source.taken < len(source.hits) and (
                best is None or _score(source.hits[source.taken]) > _score(best.hits[best.taken])
            ):
                best = source
        if best is None:
            break
        page.append((best.name, best.hits[best.taken]))
        best.taken += 1
    return page


#: A node's answer: total, hits (its own records only), facets, the words it reports absent.
_Answer = tuple[int, list[dict[str, Any]], dict[str, Any], list[str]]


def _answer_parts(answer: Mapping[str, Any], country: str) -> _Answer:
    """The parts of a node's answer that the merge uses. Raises ``BadAnswer``."""
    total = answer.get("total")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise BadAnswer("total is not a count")
    results = answer.get("results")
    facets = answer.get("facets") or {}
    if not isinstance(results, list) or not isinstance(facets, dict):
        raise BadAnswer("results or facets malformed")
    hits = [
        hit for hit in results
        if isinstance(hit, dict) and hit.get("origin") == country and isinstance(hit.get("id"), str)
    ]  # a node answers only for its own records
    absent = answer.get("absent_terms")
    absent = [t for t in absent if isinstance(t, str)] if isinstance(absent, list) else []
    return total, hits, facets, absent


def _add_facets(into: dict[str, dict[str, int]], facets: Mapping[str, Any]) -> None:
    for dim, counts in facets.items():
        if dim not in DIMENSIONS or not isinstance(counts, dict):
            continue
        merged = into.setdefault(dim, {})
        for value, n in counts.items():
            if isinstance(value, str) and isinstance(n, int) and not isinstance(n, bool) and n >= 0:
                merged[value] = merged.get(value, 0) + n


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

    async def _local(self, query: SearchQuery, excluded: frozenset[str], offset: int) -> dict[str, Any]:
        local = replace(query, exclude_origins=excluded, cursor=None, relax=False)
        if offset:
            local = replace(local, cursor=encode_cursor(offset, local))
        result = await self.search_service.search(local)
        return {**result_to_json(result), "absent_terms": list(result.absent)}

    async def search(self, query: SearchQuery, params: Mapping[str, Any], live: bool = True) -> dict[str, Any]:
        """The index's results merged with the answers of the nodes asked (see the module doc).

        Words no record has are judged for the whole federation: every source is asked to keep
        them (``strict``) and to report them when nothing matched; the words *every* source
        reports are then left out everywhere in a second round (only when nothing matched).

        Raises:
            InvalidParameter: a bad ``timeout_ms`` or a cursor that is not this query's.
        """
        deadline = self.timeout_ms(params) / 1000
        offsets = decode_offsets(query.cursor, query)
        nodes = await FederatedNode.filter(status="active").order_by("country")
        asked = [n for n in nodes if live or n.mode == "query-only"]
        local, answered, missing = await self._round(query, asked, offsets, deadline)
        total = int(local["total"]) + sum(answer[0] for answer in answered.values())
        clauses = parse_terms(query.q).clauses
        if total == 0 and len(clauses) > 1:
            absent = set(local.get("absent_terms") or [])
            for answer in answered.values():
                absent &= set(answer[3])
            if relaxable(len(absent), len(clauses)):
                query = replace(query, drop_terms=frozenset(absent))
                asked = [n for n in asked if n.country in answered]
                local, answered, more_missing = await self._round(query, asked, offsets, deadline)
                missing += more_missing
        return await self._merge(query, local, answered, missing, offsets)

    async def _round(
        self, query: SearchQuery, asked: list[FederatedNode], offsets: Mapping[str, int], deadline: float
    ) -> tuple[dict[str, Any], dict[str, _Answer], list[str]]:
        """Ask the index and ``asked`` once: (the index's answer, the nodes' answers, missing)."""
        asked_countries = frozenset(n.country for n in asked)
        local_task = asyncio.ensure_future(self._local(query, asked_countries, offsets.get(INDEX, 0)))
        remote = {
            n.country: asyncio.ensure_future(self._ask(n.url, n.country, query, offsets.get(n.country, 0)))
            for n in asked
        }
        if remote:
            await asyncio.wait(list(remote.values()), timeout=deadline)
        answered: dict[str, _Answer] = {}
        missing: list[str] = []
        for country, task in remote.items():
            if not task.done():
                task.cancel()
                missing.append(country)
                continue
            error = task.exception()
            if error is None:
                try:
                    answered[country] = _answer_parts(task.result(), country)
                    continue
                except BadAnswer as exc:
                    error = exc
            log.info("live query failed", extra={"node": country, "error": repr(error)})
            missing.append(country)
        local = await local_task
        await record_live(asked, answered.keys(), round(deadline * 1000), self.settings.live_timeout_ms, self.clock())
        if missing:
            # What the hub holds of the silent nodes stands in for them.
            local = await self._local(query, frozenset(answered), offsets.get(INDEX, 0))
        return local, answered, missing

    async def _merge(
        self, query: SearchQuery, local: dict[str, Any], answered: dict[str, _Answer], missing: list[str],
        offsets: Mapping[str, int],
    ) -> dict[str, Any]:
        sources = [_Source(INDEX, offsets.get(INDEX, 0), int(local["total"]), local["results"])]
        facets: dict[str, dict[str, int]] = {dim: dict(counts) for dim, counts in local["facets"].items()}
        total = int(local["total"])
        for country in sorted(answered):
            node_total, hits, node_facets, _ = answered[country]
            sources.append(_Source(country, offsets.get(country, 0), node_total, hits))
            total += node_total
            _add_facets(facets, node_facets)
        page = merge_page(sources, query.limit)
        held = await self.search_service.held_versions([hit["id"] for name, hit in page if name != INDEX])
        results: list[dict[str, Any]] = []
        for name, hit in page:
            if name == INDEX:
                results.append(hit)
                continue
            version = hit.get("version")
            # verified: the hub's index holds (so has verified) exactly this version of the record
            verified = isinstance(version, int) and held.get(hit["id"]) == version
            results.append({**hit, "verified": verified, "live": True})
        return {
            "total": total,
            "results": results,
            "facets": {
                dim: dict(sorted(facets.get(dim, {}).items(), key=lambda kv: (-kv[1], kv[0])))
                for dim in DIMENSIONS
            },
            "next_cursor": (
                encode_offsets({s.name: s.offset + s.taken for s in sources}, query)
                if any(not s.exhausted() for s in sources) else None
            ),
            "ignored_terms": list(local.get("ignored_terms") or []),
            "partial": bool(missing),
            "missing": sorted(missing),
        }

    async def _ask(self, url: str, country: str, query: SearchQuery, offset: int = 0) -> dict[str, Any]:
        key = self.key()
        token = issue_service_token(key.private_key, key.kid, "hub", f"node:{country}", self.clock(), ttl_s=60)
        payload: dict[str, Any] = {
            "q": query.q, "limit": query.limit, "visibilities": sorted(query.visibilities), "strict": True,
            **{dim: list(values) for dim, values in query.filters.items()},
        }
        if offset:
            payload["offset"] = offset
        if query.drop_terms:
            payload["drop_terms"] = sorted(query.drop_terms)
        if query.restricted:  # the reader may see every field: the node may match them too (node.access)
            payload["restricted"] = True
        async with self.session().post(
            f"{url.rstrip('/')}/federation/v1/search", data=orjson.dumps(payload),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        ) as resp:
            if resp.status != 200:
                raise RuntimeError(f"{country} answered HTTP {resp.status}")
            data = orjson.loads(await resp.read())
            if not isinstance(data, dict):
                raise BadAnswer(f"{country} answered a non-object")
            return data
