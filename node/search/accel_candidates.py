"""Consortium candidates from the accelerator's bitmaps (pure: no I/O): ``candidates.ranked``
answered from an :class:`~node.search.accel_index.Index` instead of SQL.

Same answer as the SQL statement for the same data and reader (``tests/unit/search/
test_accel_candidates.py`` compares them): the visible documents of the type asked for holding a
wanted tag, scored by the summed weights of the tags they hold; of them the ``best`` by score
(descending, then ``doc``) and the first ``per_tag`` holders of each wanted tag by ``doc``; of
those, per (wanted tag, country) the best ``per_country``. The cost is a few bitmap operations
per tag plus numpy over the holders, instead of one row per holder and tag in SQL.

Who may see what is not decided here: the visible set is :func:`accel_query.visible` of the plan
search makes of the reader's scope. Tag bitmaps keep stale bits of removed documents, so every
set is intersected with it first. The record type is the ``type`` tag (SQL reads the ``type``
column): every document has exactly one, its type (``documents.py``), as search's type facet
already assumes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pyroaring import BitMap

from .accel_index import Index, _union
from .accel_query import visible


def _holders(index: Index, key: tuple[str, str]) -> BitMap | None:
    return index.tags.get(key[0], {}).get(key[1])


def ranked(
    index: Index,
    plan: Any,
    record_type: str,
    weights: Mapping[tuple[str, str], float],
    wanted: Sequence[tuple[str, str]],
    per_country: int,
    best: int,
    per_tag: int,
) -> list[int]:
    """``candidates.ranked`` over ``index`` for the reader of ``plan`` (``sql.validate``'s), among
    the documents of ``record_type``: sorted ``doc`` numbers."""
    wanted_set = set(wanted)
    held_any = [
        bitmap for key in weights if key in wanted_set and (bitmap := _holders(index, key)) is not None
    ]
    kind = index.tags.get("type", {}).get(record_type)
    if not wanted or not plan.visibilities or not held_any or kind is None:
        return []
    base, _ = visible(index, plan)
    scored = _union(held_any) & base & kind  # a new bitmap: the index's own are never touched
    if not scored:
        return []
    docs = np.frombuffer(scored.to_array(), dtype=np.uint32)
    scores = np.zeros(len(docs), dtype=np.float64)
    for key, weight in weights.items():
        bitmap = _holders(index, key)
        if bitmap is not None:
            hit = bitmap & scored
            if hit:
                scores[np.searchsorted(docs, np.frombuffer(hit.to_array(), dtype=np.uint32))] += float(weight)

    order = np.lexsort((docs, -scores))  # score descending, then doc
    top = BitMap(docs[order[:best]].tolist())
    for key in dict.fromkeys(wanted):
        bitmap = _holders(index, key)
        if bitmap is not None:
            top |= (bitmap & scored)[:per_tag]
    # the chosen in rank order: their tag ids (CSR) give the countries and wanted tags they hold
    chosen = np.frombuffer(top.to_array(), dtype=np.uint32)
    chosen = chosen[np.lexsort((chosen, -scores[np.searchsorted(docs, chosen)]))]
    ids = index.tag_ids_of(chosen).astype(np.int64)
    owner = np.repeat(np.arange(len(chosen)), index.tag_count[chosen].astype(np.int64))
    country_ids = np.array(index.dim_ids.get("country", ((), []))[1], dtype=np.int64)
    in_country = np.isin(ids, country_ids)
    country_owner, country = owner[in_country], ids[in_country]
    keep = np.zeros(len(chosen), dtype=bool)
    for key in dict.fromkeys(wanted):
        tag_id = index.tag_ids.get(key)
        if tag_id is None:
            continue
        holds = np.zeros(len(chosen), dtype=bool)
        holds[owner[ids == tag_id]] = True
        mine = holds[country_owner]
        if not mine.any():
            continue
        who, where = country_owner[mine], country[mine]
        grouped = np.lexsort((who, where))  # by country, then rank
        who, where = who[grouped], where[grouped]
        position = np.arange(len(who))
        starts = np.maximum.accumulate(np.where(np.r_[True, where[1:] != where[:-1]], position, 0))
        keep[who[position - starts < per_country]] = True
    return sorted(chosen[keep].tolist())
