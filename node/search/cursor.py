"""Opaque paging cursors: base64url JSON of an offset and a fingerprint of the query.

The fingerprint ties a cursor to the query that produced it (text, filters, visibilities), so a
cursor replayed against another query, or edited by hand, is rejected instead of paging nonsense.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from node.errors import InvalidParameter

from .base import SearchQuery

MAX_OFFSET = 1_000_000
_MAX_CURSOR_CHARS = 256


def fingerprint(query: SearchQuery) -> str:
    """Return a short stable hash of what selects the result set (not the page size)."""
    material = json.dumps(
        [
            query.q,
            sorted((dim, sorted(set(values))) for dim, values in query.filters.items() if values),
            sorted(query.visibilities),
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def encode_cursor(offset: int, query: SearchQuery) -> str:
    """Return the cursor for the page of ``query`` that starts at ``offset``."""
    raw = json.dumps({"o": offset, "f": fingerprint(query)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str | None, query: SearchQuery) -> int:
    """Return the offset a cursor points at (0 for None).

    Raises ``InvalidParameter`` for anything that is not a cursor this module made for ``query``.
    """
    if cursor is None:
        return 0
    if not isinstance(cursor, str) or not cursor or len(cursor) > _MAX_CURSOR_CHARS:
        raise InvalidParameter("invalid cursor", parameter="cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise InvalidParameter("invalid cursor", parameter="cursor") from exc
    if not isinstance(data, dict) or set(data) != {"o", "f"}:
        raise InvalidParameter("invalid cursor", parameter="cursor")
    offset = data["o"]
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidParameter("invalid cursor", parameter="cursor")
    if data["f"] != fingerprint(query):
        raise InvalidParameter("cursor belongs to another query", parameter="cursor")
    return offset
