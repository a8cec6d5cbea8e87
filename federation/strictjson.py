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

from federation.errors import CanonicalizationError, MalformedJSON

MAX_DEPTH = 64
MAX_SAFE_INTEGER = 2**53 - 1

_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise MalformedJSON(f"duplicate object key {key!r}")
        obj[key] = value
    return obj


def _no_constants(name: str) -> Any:
    raise MalformedJSON(f"{name} is not valid JSON")


def _scan(value: Any) -> None:
    """Check nesting depth, then representability, over the parsed value (iteratively).

    Raises:
        MalformedJSON: nesting deeper than ``MAX_DEPTH``.
        CanonicalizationError: an integer outside ±(2^53−1) or a lone surrogate.
    """
    canon_problem: str | None = None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_DEPTH:
                raise MalformedJSON(f"nesting deeper than {MAX_DEPTH}")
            for key, child in item.items():
                if canon_problem is None and _SURROGATE.search(key):
                    canon_problem = "object key contains a lone surrogate"
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                raise MalformedJSON(f"nesting deeper than {MAX_DEPTH}")
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
    if canon_problem is not None:
        raise CanonicalizationError(canon_problem)


def loads(data: bytes | str) -> Any:
    """Parse untrusted JSON strictly.

    Raises:
        MalformedJSON: empty input, invalid UTF-8, invalid JSON, duplicate keys, NaN/Infinity,
            nesting deeper than 64.
        CanonicalizationError: integers beyond ±(2^53−1), lone surrogates.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJSON(f"body is not valid UTF-8 (byte {exc.start})") from exc
    else:
        text = data
    if text.startswith("\ufeff"):
        raise MalformedJSON("byte order mark is not allowed")
    if not text.strip():
        raise MalformedJSON("empty body")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except MalformedJSON:
        raise
    except RecursionError as exc:
        raise MalformedJSON(f"nesting deeper than {MAX_DEPTH}") from exc
    except (json.JSONDecodeError, ValueError) as exc:
        raise MalformedJSON(f"invalid JSON: {exc}") from exc
    _scan(value)
    return value
