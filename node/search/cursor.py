"""Opaque paging cursors: base64url JSON of an offset and a fingerprint of the query.

The fingerprint ties a cursor to the query that produced it (text, filters, visibilities), so a
cursor replayed against another query, or edited by hand, is rejected instead of paging nonsense.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from node.errors import InvalidParameter

from .base import SearchQuery

MAX_OFFSET = 1_000_000
_MAX_CURSOR_CHARS = 256


def fingerprint(query: SearchQuery) -> str:
    """Return a short stable hash of what selects the result set (not the page size)."""
    parts: list[object] = [
        query.q,
        sorted((dim, sorted(set(values))) for dim, values in query.filters.items() if values),
        sorted(query.visibilities),
    ]
    if query.exclude_origins:  # only then, so that cursors made before the field stay valid
        parts.append(sorted(query.exclude_origins))
    if query.restricted:  # matches differ with the restricted part: a cursor is not carried across
        parts.append("restricted")
    material = json.dumps(
        parts,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def encode_cursor(offset: int, query: SearchQuery) -> str:
    """Return the cursor for the page of ``query`` that starts at ``offset``."""
    return _pack({"o": offset, "f": fingerprint(query)})


def _pack(data: Mapping[str, object]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unpack(cursor: str, max_chars: int, keys: set[str]) -> dict[str, Any]:
    """The JSON object a cursor made by :func:`_pack` holds, with exactly ``keys``.

    Raises ``InvalidParameter`` for anything else.
    """
    if not isinstance(cursor, str) or not cursor or len(cursor) > max_chars:
        raise InvalidParameter("invalid cursor", parameter="cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise InvalidParameter("invalid cursor", parameter="cursor") from exc
    if not isinstance(data, dict) or set(data) != keys:
        raise InvalidParameter("invalid cursor", parameter="cursor")
    return data


def decode_cursor(cursor: str | None, query: SearchQuery) -> int:
    """Return the offset a cursor points at (0 for None).

    Raises ``InvalidParameter`` for anything that is not a cursor this module made for ``query``.
    """
    if cursor is None:
        return 0
    data = _unpack(cursor, _MAX_CURSOR_CHARS, {"o", "f"})
    offset = data["o"]
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidParameter("invalid cursor", parameter="cursor")
    if data["f"] != fingerprint(query):
        raise InvalidParameter("cursor belongs to another query", parameter="cursor")
    return offset


_MAX_MERGED_CURSOR_CHARS = 2048
_MAX_SOURCES = 64


def encode_offsets(offsets: Mapping[str, int], query: SearchQuery) -> str:
    """Return the cursor of a merged answer (the hub's): an offset per source, bound to ``query``.

    Sources are short names (the hub's own index, node countries); zero offsets are left out of the
    offsets, and every source is named under ``n``: a later page keeps the first page's sources
    (``node.services.live``), also those that gave nothing yet.
    """
    kept = {source: offset for source, offset in sorted(offsets.items()) if offset}
    return _pack({"s": kept, "n": sorted(offsets), "f": fingerprint(query)})


def decode_offsets(cursor: str | None, query: SearchQuery) -> dict[str, int]:
    """Return the per-source offsets of a cursor made by :func:`encode_offsets` ({} for None).

    Raises ``InvalidParameter`` for anything that is not such a cursor made for ``query``.
    """
    return decode_sources(cursor, query)[0]


def decode_sources(cursor: str | None, query: SearchQuery) -> tuple[dict[str, int], frozenset[str]]:
    """The per-source offsets of a cursor made by :func:`encode_offsets` and the names of all its
    sources (({}, empty) for None).

    Raises ``InvalidParameter`` for anything that is not such a cursor made for ``query``.
    """
    if cursor is None:
        return {}, frozenset()
    data = _unpack(cursor, _MAX_MERGED_CURSOR_CHARS, {"s", "n", "f"})
    names = data["n"]
    if not isinstance(data["s"], dict) or not isinstance(names, list) or len(names) > _MAX_SOURCES or not all(
        isinstance(name, str) and 0 < len(name) <= 16 for name in names
    ):
        raise InvalidParameter("invalid cursor", parameter="cursor")
    offsets: dict[str, int] = data["s"]
    if len(offsets) > _MAX_SOURCES or not all(
        isinstance(source, str) and 0 < len(source) <= 16
        and not isinstance(offset, bool) and isinstance(offset, int) and 0 <= offset <= MAX_OFFSET
        for source, offset in offsets.items()
    ):
        raise InvalidParameter("invalid cursor", parameter="cursor")
    if data["f"] != fingerprint(query):
        raise InvalidParameter("cursor belongs to another query", parameter="cursor")
    return dict(offsets), frozenset(names) | frozenset(offsets)
