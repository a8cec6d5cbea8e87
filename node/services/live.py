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
import contextlib
import logging
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson

from federation import strictjson
from federation.errors import ProtocolError
from federation.tokens import issue_service_token
from node.access import SHAREABLE, Access
from node.config import Settings
from node.errors import InvalidParameter
from node.keystore import InstanceKey
from node.search import DIMENSIONS, SearchQuery
from node.search.cursor import decode_sources, encode_cursor, encode_offsets
from node.search.text import parse_terms, relaxable
from node.services.divergence import record_live
from node.services.fedclient import FedClient, FedError, Limits, error_summary
from node.services.ratelimit import ConcurrencyCap, WindowLimiter
from node.services.search import SearchService, filter_values, result_to_json
from node.storage.hub_models import FederatedNode, HubRecord

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

# -- a node's answer is a claim (DESIGN §10): every value bounded, only what the merge needs -----------

#: Largest total a node may claim (more records than any registry holds); larger claims are clamped.
MAX_TOTAL = 10_000_000
#: Scores are clamped to this range (a node cannot push its hits past every other source's by far).
MAX_SCORE = 1000.0
MAX_TITLE = 500
MAX_SNIPPET = 1000
MAX_TERMS = 64
_RECORD_ID = re.compile(r"\Aurn:ncc:([A-Z]{2}):(organisation|expert|project|facility):"
                        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_DIGEST = re.compile(r"\A[0-9a-f]{64}\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _count(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _text(value: Any, cap: int) -> str | None:
    if not isinstance(value, str):
        return None
    return _CONTROL.sub("", value[:cap])


def _hit(raw: Any, country: str) -> dict[str, Any] | None:
    """A node's hit rebuilt from its known fields, or None when it is not this node's own record.

    The node's ``verified`` claim is dropped: the hub decides it (see ``LiveQuery._merge``).
    """
    if not isinstance(raw, dict):
        return None
    rid = raw.get("id")
    match = _RECORD_ID.match(rid) if isinstance(rid, str) else None
    if match is None or match.group(1) != country or raw.get("origin", country) != country:
        return None  # a node answers only for its own records
    version = raw.get("version")
    if type(version) is not int or not 1 <= version <= 2**53 - 1:
        return None
    score = raw.get("score")
    if type(score) not in (int, float) or not math.isfinite(score):
        score = 0.0
    digest = raw.get("digest")
    return {
        "id": rid, "type": match.group(2), "origin": country,
        "title": _text(raw.get("title"), MAX_TITLE) or "", "snippet": _text(raw.get("snippet"), MAX_SNIPPET) or "",
        "score": min(max(float(score), 0.0), MAX_SCORE), "version": version,
        "digest": digest if isinstance(digest, str) and _DIGEST.match(digest) else None,
    }


def _facets(raw: Any, country: str, total: int) -> dict[str, dict[str, int]]:
    """A node's facets for known dimensions and values only; its ``country`` facet counts only its own
    country; every count is clamped to the node's total."""
    if not isinstance(raw, dict):
        return {}
    allowed = filter_values()
    out: dict[str, dict[str, int]] = {}
    for dim in DIMENSIONS:
        counts = raw.get(dim)
        if not isinstance(counts, dict):
            continue
        known = allowed.get(dim)
        kept: dict[str, int] = {}
        for value, n in counts.items():
            n = _count(n)
            if n is None or not n or (dim == "country" and value != country):
                continue
            if known is not None and value not in known:
                continue
            kept[value] = min(n, total)
        if kept:
            out[dim] = kept
    return out


def _answer_parts(answer: Any, country: str, limit: int, offset: int = 0) -> _Answer:
    """The parts of a node's answer that the merge uses, each bounded. Raises ``BadAnswer``."""
    if not isinstance(answer, dict):
        raise BadAnswer("not an object")
    total = _count(answer.get("total"))
    results = answer.get("results")
    if total is None or not isinstance(results, list):
        raise BadAnswer("total or results malformed")
    hits: list[dict[str, Any]] = []
    seen: set[str] = set()
    for raw in results[:limit]:
        hit = _hit(raw, country)
        if hit is not None and hit["id"] not in seen:
            seen.add(hit["id"])
            hits.append(hit)
    total = min(max(total, offset + len(hits)), MAX_TOTAL)
    absent = answer.get("absent_terms")
    absent = [t[:500] for t in absent[:MAX_TERMS] if isinstance(t, str)] if isinstance(absent, list) else []
    return total, hits, _facets(answer.get("facets"), country, total), absent


def _add_facets(into: dict[str, dict[str, int]], facets: Mapping[str, Any]) -> None:
    for dim, counts in facets.items():
        if dim not in DIMENSIONS or not isinstance(counts, dict):
            continue
        merged = into.setdefault(dim, {})
        for value, n in counts.items():
            if isinstance(value, str) and isinstance(n, int) and not isinstance(n, bool) and n >= 0:
                merged[value] = merged.get(value, 0) + n


async def held_digests(ids: list[str]) -> dict[str, tuple[int, str]]:
    """What the hub holds (and serves) of ``ids``: id -> (version, digest); quarantined and deleted
    records are not vouched for."""
    unique = list(dict.fromkeys(ids))
    if not unique:
        return {}
    rows = await HubRecord.filter(id__in=unique, quarantined=False, deleted=False).values_list(
        "id", "version", "digest")
    return {str(rid): (int(version), str(digest)) for rid, version, digest in rows}


@dataclass
class LiveQuery:
    settings: Settings
    key: Callable[[], InstanceKey]
    search_service: SearchService
    clock: Callable[[], datetime]
    #: The federation client (node/services/fedclient.py): the only way the hub reads a node.
    client: FedClient = None  # type: ignore[assignment]
    _anonymous_rate: WindowLimiter = field(init=False)
    _anonymous_cap: ConcurrencyCap = field(init=False)

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = FedClient(self.settings.allow_private_node_urls)
        self._anonymous_rate = WindowLimiter(self.settings.live_rate_per_min)
        self._anonymous_cap = ConcurrencyCap(self.settings.live_max_concurrent)

    @contextlib.contextmanager
    def admitted(self, client: str, anonymous: bool, live: bool) -> Iterator[None]:
        """Admit one search: an anonymous ``live=true`` one (it makes the hub call every node) counts
        against ``live_rate_per_min`` per client address and ``live_max_concurrent`` at once.

        Raises:
            RateLimited: (429) over either.
        """
        if not (anonymous and live):
            yield
            return
        self._anonymous_rate.check(client, "anonymous live searches")
        with self._anonymous_cap.slot("anonymous live searches"):
            yield

    async def close(self) -> None:
        await self.client.close()

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
        offsets, sources = decode_sources(query.cursor, query)
        nodes = await FederatedNode.filter(status="active").order_by("country")
        asked = [n for n in nodes if live or n.mode == "query-only"]
        if query.cursor is not None:
            # A later page keeps the first page's split between the index and the nodes: a node that
            # was not a source then (not asked, or stood in for by the index) stays the index's, else
            # its records would come twice or not at all.
            asked = [n for n in asked if n.country in sources]
        local, answered, missing = await self._round(query, asked, offsets, deadline, sources)
        total = int(local["total"]) + sum(answer[0] for answer in answered.values())
        clauses = parse_terms(query.q).clauses
        if total == 0 and len(clauses) > 1:
            absent = set(local.get("absent_terms") or [])
            for answer in answered.values():
                absent &= set(answer[3])
            if relaxable(len(absent), len(clauses)):
                query = replace(query, drop_terms=frozenset(absent))
                asked = [n for n in asked if n.country in answered]
                local, answered, more_missing = await self._round(query, asked, offsets, deadline, sources)
                missing += more_missing
        return await self._merge(query, local, answered, missing, offsets)

    async def _round(
        self, query: SearchQuery, asked: list[FederatedNode], offsets: Mapping[str, int], deadline: float,
        sources: frozenset[str] = frozenset(),
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
                    answered[country] = _answer_parts(task.result(), country, query.limit,
                                                      offsets.get(country, 0))
                    continue
                except BadAnswer as exc:
                    error = FedError("bad_answer", 200, str(exc))
            # (the code only: a node's bytes never reach the hub's logs)
            log.info("live query failed", extra={"node": country, "error": error_summary(error)})
            missing.append(country)
        local = await local_task
        await record_live(asked, answered.keys(), round(deadline * 1000), self.settings.live_timeout_ms, self.clock())
        stand_in = frozenset(c for c in missing if c not in sources)
        if stand_in:
            # What the hub holds of the silent nodes stands in for them — on the first page: a node that
            # was a source of the earlier pages and falls silent is reported missing instead (the index's
            # offset counts pages without its records: standing in then repeated records across pages).
            local = await self._local(query, asked_countries - stand_in, offsets.get(INDEX, 0))
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
        held = await held_digests([hit["id"] for name, hit in page if name != INDEX])
        results: list[dict[str, Any]] = []
        for name, hit in page:
            if name == INDEX:
                results.append(hit)
                continue
            # verified: the hub holds (so has verified) exactly this version with the same content
            digest = hit.pop("digest", None)
            verified = digest is not None and held.get(hit["id"]) == (hit["version"], digest)
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
        token = issue_service_token(key.private_key, key.kid, "hub", f"node:{country}", self.clock(),
                                    ttl_s=self.settings.service_token_ttl_s)
        payload: dict[str, Any] = {
            "q": query.q, "limit": query.limit, "visibilities": sorted(v for v in query.visibilities if v in SHAREABLE), "strict": True,
            **{dim: list(values) for dim, values in query.filters.items()},
        }
        if offset:
            payload["offset"] = offset
        if query.drop_terms:
            payload["drop_terms"] = sorted(query.drop_terms)
        if query.restricted:  # the reader may see every field: the node may match them too (node.access)
            payload["restricted"] = True
        groups = Access.live_groups(query, country)  # only the groups this node is a member of
        if groups:
            payload["groups"] = groups
        # the caller's deadline cancels this call; the limit here is a backstop of its own
        limits = Limits(max_bytes=self.settings.live_answer_max_bytes, timeout_s=60)
        resp = await self.client.request(
            "POST", f"{url.rstrip('/')}/federation/v1/search", limits, data=orjson.dumps(payload),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            data = strictjson.loads(resp.body)
        except ProtocolError as exc:
            raise BadAnswer("not strict JSON") from exc
        finally:
            resp.release()
        if not isinstance(data, dict):
            raise BadAnswer("not an object")
        return data
