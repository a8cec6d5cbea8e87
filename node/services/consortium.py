"""The consortium builder as the service layer sees it (DESIGN §16): parameters, candidates, JSON.

Candidates come through the reader's search scope (``Access.search_scope``) and the search index
(``node.search.candidates``); each is then checked against the record the hub holds with
``Access.may_see`` and read as the reader may see it (``Access.present``: anonymous readers get
the public fields only), which is where the SME flag comes from. The ranking and the proposals are
the pure ``federation.consortium``. Nothing here decides visibility.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import orjson
from tortoise.connection import connections

from federation.consortium import (
    DIMENSIONS,
    MAX_K,
    MAX_SIZE,
    RELATED_WEIGHT,
    TAG_WEIGHTS,
    Candidate,
    RequiredTag,
    Requirements,
    Result,
    propose,
)
from node.access import Access, Reader
from node.errors import InvalidParameter
from node.search import SearchQuery
from node.search import candidates as index
from node.search.documents import VocabularyIndex
from node.search.sql import SqlSearchBackend
from node.search.text import Clause, tokens
from node.services.search import SearchService, bool_param, filter_values, repeated
from node.storage import reads
from schemas import load_vocabularies

#: Per wanted tag and country, the best organisations kept as candidates.
PER_COUNTRY = 4
#: Per wanted tag, organisations found by description evidence at most.
PER_TAG_TEXT = 25
#: Required tags per request at most (bounds the look-ups).
MAX_TAGS = 20
#: The organisation type of SMEs (the candidates of ``sme=true`` beyond the tag holders).
SME_TYPE = ("org_type", "ctype.industry-sme")
#: ``exclude`` ids per request at most.
MAX_EXCLUDE = 200


def _integer(params: Mapping[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(str(raw))
    except ValueError as exc:
        raise InvalidParameter(f"{name} must be an integer", parameter=name) from exc
    if not lo <= value <= hi:
        raise InvalidParameter(f"{name} must be between {lo} and {hi}", parameter=name)
    return value


def requirements_from_params(params: Mapping[str, Any]) -> Requirements:
    """The request of ``GET /api/v1/consortia`` (a multidict: tags and ``exclude`` repeat).

    Raises:
        InvalidParameter: no required tag, a tag that is not an id of its dimension's vocabulary,
            more than ``MAX_TAGS`` tags, ``size``/``k`` outside 1..10, ``min_countries`` outside
            1..size, ``sme`` not a boolean, more than ``MAX_EXCLUDE`` ids to exclude.
    """
    allowed = filter_values()
    tags: list[RequiredTag] = []
    for dim in DIMENSIONS:
        chosen = repeated(params, dim)
        unknown = [value for value in chosen if value not in allowed[dim]]
        if unknown:
            raise InvalidParameter(f"unknown {dim} id: {', '.join(unknown[:5])}"[:300], parameter=dim)
        tags.extend(RequiredTag(dim, value) for value in chosen)
    if not tags:
        raise InvalidParameter(
            "name at least one required tag: domain, subdomain, sector or technology", parameter="subdomain"
        )
    if len(tags) > MAX_TAGS:
        raise InvalidParameter(f"at most {MAX_TAGS} required tags", parameter=tags[MAX_TAGS].dim)
    size = _integer(params, "size", 5, 1, MAX_SIZE)
    min_countries = _integer(params, "min_countries", 3, 1, MAX_SIZE)
    if min_countries > size:
        raise InvalidParameter(
            f"min_countries ({min_countries}) is larger than size ({size})", parameter="min_countries"
        )
    exclude = repeated(params, "exclude")
    if len(exclude) > MAX_EXCLUDE:
        raise InvalidParameter(f"at most {MAX_EXCLUDE} ids to exclude", parameter="exclude")
    return Requirements(
        tags=tuple(tags),
        min_countries=min_countries,
        size=size,
        sme=bool_param(params, "sme"),
        exclude=frozenset(exclude),  # unknown or invisible ids are ignored alike
        k=_integer(params, "k", 3, 1, MAX_K),
    )


@functools.cache
def _vocabulary() -> VocabularyIndex:
    return VocabularyIndex.build(load_vocabularies())


def evidence_phrase(tag_id: str) -> Clause:
    """The phrase whose presence in a description is evidence for a tag: its label without the
    parenthesised part ("Crypto material management (e.g. key management, PKI)")."""
    label = _vocabulary().labels.get(tag_id, "")
    core = re.sub(r"\s*\([^)]*\)", "", label).strip()
    return Clause(tuple(tokens(core)), text=core)


def parent_domain(subdomain: str) -> str:
    return _vocabulary().parent.get(subdomain) or subdomain.split(".", 1)[0]


async def candidates(search: SearchService, access: Access, p: Reader, req: Requirements) -> list[Candidate]:
    """The organisations ``p`` may see that bring something to ``req``, as the algorithm takes them."""
    conn = connections.get("default")
    backend = search.backend(conn)
    if not isinstance(backend, SqlSearchBackend):  # both backends are; a new one must implement these reads
        raise TypeError(f"no consortium candidates for {type(backend).__name__}")
    scope = await access.search_scope(p, SearchQuery())
    wanted = [(t.dim, t.value) for t in req.tags]
    related = {("domain", parent_domain(t.value)) for t in req.tags if t.dim == "subdomain"}
    weights = {pair: RELATED_WEIGHT for pair in related} | {(d, v): TAG_WEIGHTS[d] for d, v in wanted}
    # the index holds no SME flag: with sme=true the SME organisation type finds them too (the flag
    # decides, below), per country the best by what they hold, so that an SME can join without a tag
    extra = [SME_TYPE] if req.sme and SME_TYPE not in weights else []
    docs = await index.ranked(
        backend, conn, scope, {**weights, **dict.fromkeys(extra, 0.0)}, [*wanted, *extra], PER_COUNTRY
    )
    mentions: dict[int, set[str]] = {}
    for dim, value in wanted:
        for doc in await index.mentioning(
            backend, conn, scope, (dim, value), evidence_phrase(value), PER_TAG_TEXT
        ):
            mentions.setdefault(doc, set()).add(value)
    found = await index.details(backend, conn, [*docs, *mentions], list(weights))
    held = await reads.current_records([f.id for f in found], hub=access.role == "hub")
    out: list[Candidate] = []
    for f in found:
        row = held.get(f.id)
        if (
            row is None
            or row.deleted
            or row.type != "organisation"
            or not access.may_see(p, row.visibility, row.quarantined)
        ):
            continue
        payload = access.present(p, orjson.loads(row.envelope), row.quarantined).envelope.get("payload") or {}
        out.append(
            Candidate(
                id=f.id,
                country=f.country,
                title=f.title,
                sme=payload.get("sme") is True,
                tags=frozenset(v for d, v in wanted if (d, v) in f.tags),
                evidence=frozenset(mentions.get(f.doc, ())),
                related=frozenset(
                    t.value
                    for t in req.tags
                    if t.dim == "subdomain" and ("domain", parent_domain(t.value)) in f.tags
                ),
            )
        )
    return out


async def build(search: SearchService, access: Access, p: Reader, req: Requirements) -> dict[str, Any]:
    """The answer of ``GET /api/v1/consortia`` for reader ``p``."""
    return result_to_json(propose(req, await candidates(search, access, p, req)))


def result_to_json(result: Result) -> dict[str, Any]:
    return {
        "consortia": [
            {
                "members": [
                    {
                        "id": m.id,
                        "country": m.country,
                        "title": m.title,
                        "covers": list(m.covers),
                        "evidence": list(m.evidence),
                        "sme": m.sme,
                        "score": m.score,
                    }
                    for m in proposal.members
                ],
                "covers": list(proposal.covers),
                "missing": list(proposal.missing),
                "countries": list(proposal.countries),
                "score": proposal.score,
                "unmet": list(proposal.unmet),
            }
            for proposal in result.consortia
        ],
        "missing": list(result.missing),
    }
