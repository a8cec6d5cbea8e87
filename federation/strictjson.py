"""Strict JSON parsing for untrusted bytes (request bodies, feed lines, files).

Python's ``json`` accepts things the protocol must refuse, and quietly resolves others: duplicate
keys (last wins), ``NaN``/``Infinity``, lone surrogate escapes, integers of any size, unbounded
nesting. This module turns each into exactly one error code (DESIGN §9):

* ``malformed_json`` — empty, not UTF-8, not JSON, duplicate keys, NaN/Infinity, nesting > 64;
* ``canonicalization_error`` — valid JSON that RFC 8785 cannot represent: integers beyond
  ±(2^53−1) or strings (keys included) holding lone surrogates.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from federation.errors import CanonicalizationError, MalformedJSON, ProtocolError

MAX_DEPTH = 64
MAX_SAFE_INTEGER = 2**53 - 1

_SURROGATE = re.compile("[\ud800-\udfff]")
_UNDECIDED = object()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # rare: name the first repeated key
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MalformedJSON(f"duplicate object key {key!r}")
            seen.add(key)
    return obj


def _surely_unproblematic(text: str, value: Any) -> bool:
    """True when :func:`_problem` would find nothing in ``value`` (parsed from ``text``), decided
    ~20× faster than its walk: at most ``MAX_DEPTH`` brackets bound the nesting; orjson with
    ``OPT_STRICT_INTEGER`` refuses integers beyond ±(2^53−1) and lone surrogates (keys included);
    an infinite float would be written ``null``. False means "walk and see" (the walk decides, so
    the verdict and its message never change)."""
    if text.count("[") + text.count("{") > MAX_DEPTH:
        return False
    try:
        out = orjson.dumps(value, option=orjson.OPT_STRICT_INTEGER)
    except (orjson.JSONEncodeError, TypeError):
        return False
    return b"null" not in out


def _no_constants(name: str) -> Any:
    raise MalformedJSON(f"{name} is not valid JSON")


def _problem(value: Any) -> ProtocolError | None:
    """Walk the parsed value (iteratively) for its first problem: ``MalformedJSON`` for nesting
    deeper than ``MAX_DEPTH``, else ``CanonicalizationError`` for an integer outside ±(2^53−1), a
    lone surrogate or an infinite number; None when there is none."""
    canon_problem: str | None = None
    too_deep = False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            too_deep = too_deep or depth > MAX_DEPTH
            for key, child in item.items():
                if canon_problem is None and _SURROGATE.search(key):
                    canon_problem = "object key contains a lone surrogate"
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            too_deep = too_deep or depth > MAX_DEPTH
            stack.extend((child, depth + 1) for child in item)
        elif canon_problem is not None:
            continue
        elif isinstance(item, str):
            if _SURROGATE.search(item):
                canon_problem = "string contains a lone surrogate"
        elif isinstance(item, int) and not isinstance(item, bool):
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                canon_problem = "integer outside ±(2^53−1) cannot be represented in RFC 8785 JSON"
        elif isinstance(item, float) and not math.isfinite(item):
            canon_problem = "number overflows IEEE 754 double precision"
    if too_deep:
        return MalformedJSON(f"nesting deeper than {MAX_DEPTH}")
    if canon_problem is not None:
        return CanonicalizationError(canon_problem)
    return None


def _loads_fast(raw: bytes) -> Any:
    """orjson's parse of ``raw`` when it provably equals the strict parse, else ``_UNDECIDED``.

    The proof: ``raw`` is exactly orjson's own compact serialization of what it parsed (as every
    feed line and stored envelope is). Then nothing was lost in parsing — no duplicate key (the
    dropped member would be missing), no number read inexactly (an integer beyond 64 bits comes
    back as a float) — and orjson itself refuses NaN/Infinity, invalid UTF-8 and lone surrogates;
    ``OPT_STRICT_INTEGER`` refuses integers beyond ±(2^53−1), and at most 64 brackets bound the
    nesting. The same holds when ``raw`` differs from that serialization by JSON whitespace only
    (``json.dumps``' ``", "`` and ``": "``, a pretty-printed file): the two are then equal once
    every space, tab, CR and LF is removed from both. Whitespace inside a string is the string's own
    (the same in both: unescaped control characters are invalid JSON), so removing it cannot hide a
    difference, and a dropped duplicate member or a rewritten number or escape leaves non-space
    characters that differ. Anything else (escapes, every error) takes the slow path, which names
    the exact problem. ~8× faster than the slow path on a feed line.
    """
    if raw.startswith(b"\xef\xbb\xbf") or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        return _UNDECIDED
    try:
        value = orjson.loads(raw)
        again = orjson.dumps(value, option=orjson.OPT_STRICT_INTEGER)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return _UNDECIDED
    if again == raw or raw.translate(None, _JSON_SPACE) == again.translate(None, _JSON_SPACE):
        return value
    return _UNDECIDED


#: The four characters JSON allows between tokens.
_JSON_SPACE = b" \t\r\n"


def loads(data: bytes | str) -> Any:
    """Parse untrusted JSON strictly.

    Raises:
        MalformedJSON: empty input, invalid UTF-8, invalid JSON, duplicate keys, NaN/Infinity,
            nesting deeper than 64.
        CanonicalizationError: integers beyond ±(2^53−1), lone surrogates.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        value = _loads_fast(raw)
        if value is not _UNDECIDED:
            return value
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJSON(f"body is not valid UTF-8 (byte {exc.start})") from exc
    else:
        text = data
    if text.startswith("\ufeff"):
        raise MalformedJSON("byte order mark is not allowed")
    if not text.strip():
        raise MalformedJSON("empty body")
    return loads_slow(text)


def loads_slow(text: str) -> Any:
    """:func:`loads` by Python's parser alone, for a text already decoded and checked for BOM and
    emptiness (the definition the fast path must equal; tests compare the two)."""
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except MalformedJSON:
        raise
    except RecursionError as exc:
        raise MalformedJSON(f"nesting deeper than {MAX_DEPTH}") from exc
    except (json.JSONDecodeError, ValueError) as exc:
        raise MalformedJSON(f"invalid JSON: {exc}") from exc
    if _surely_unproblematic(text, value):
        return value
    error = _problem(value)
    if error is not None:
        raise error
    return value
