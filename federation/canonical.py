"""RFC 8785 (JSON Canonicalization Scheme) with a fast path.

``canonicalize_reference`` is the pure-Python ``rfc8785`` package: the definition of correct output.
It runs at about the speed of Ed25519 verification, which would double the cost of ingest, so
``canonicalize`` first walks the value once and, when it holds

* no floats (JCS number formatting is ECMAScript's, which orjson does not reproduce:
  ``1.0`` → ``1``, ``1e-07`` → ``1e-7``, ``-0.0`` → ``0``), and
* no object keys outside the Basic Multilingual Plane (JCS sorts keys by UTF-16 code units,
  orjson by code points; the two orders agree exactly when every key is BMP-only), and
* nesting below orjson's recursion limit,

serialises with ``orjson`` and sorted keys, which is then byte-identical to the reference (string
escapes and integer formatting coincide; proven by the known-answer vectors and the hypothesis
property tests in ``tests/unit/federation/test_canonical*.py``). Anything else goes to the reference.
Record schemas allow no floats, so records always take the fast path.

Values RFC 8785 cannot represent raise :class:`~federation.errors.CanonicalizationError`: NaN and
±Infinity, integers beyond ±(2^53−1), lone surrogates, non-string keys, non-JSON types.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785

from federation.errors import CanonicalizationError

#: Largest integer magnitude representable exactly as an IEEE-754 double (I-JSON / RFC 8785).
MAX_SAFE_INTEGER = 2**53 - 1

_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
# orjson refuses nesting deeper than 255; stay well below and let the reference handle the rest.
_FAST_MAX_DEPTH = 200


def canonicalize(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON value.

    Raises:
        CanonicalizationError: the value holds something JCS cannot represent.
    """
    if _fast_path_applies(value):
        try:
            return orjson.dumps(value, option=_ORJSON_OPTIONS)
        except orjson.JSONEncodeError as e:  # lone surrogates (the walk does not scan strings)
            raise CanonicalizationError(f"cannot canonicalize: {e}") from e
    return canonicalize_reference(value)


def canonicalize_reference(value: Any) -> bytes:
    """Return RFC 8785 bytes computed by the reference implementation (``rfc8785``).

    Raises:
        CanonicalizationError: the value holds something JCS cannot represent.
    """
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeError, TypeError, ValueError, RecursionError) as e:
        raise CanonicalizationError(f"cannot canonicalize: {e}") from e


def fast_path_applies(value: Any) -> bool:
    """True when ``canonicalize`` will use orjson for ``value`` (exposed for tests and benchmarks).

    Raises:
        CanonicalizationError: an integer is out of range or a type is not JSON.
    """
    return _fast_path_applies(value)


def _fast_path_applies(value: Any) -> bool:
    t = type(value)
    if t is dict or t is list:
        return _walk(value, 0)
    if t is str or t is bool or value is None:
        return True
    if t is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return True
        raise CanonicalizationError(f"integer {value} is outside ±(2^53−1)")
    if t is float:
        return False
    raise CanonicalizationError(f"{t.__name__} is not a JSON type")


def _walk(container: dict[str, Any] | list[Any], depth: int) -> bool:
    # This walk is most of the fast path's cost, so it is written for speed: recursion (bounded by
    # _FAST_MAX_DEPTH, far below Python's limit) is cheaper than an explicit stack, and the common
    # types are tested first. Exact type checks: subclasses and foreign types are refused.
    if depth >= _FAST_MAX_DEPTH:
        return False
    if type(container) is dict:
        try:
            keys = "".join(container)
        except TypeError:
            bad = next(k for k in container if type(k) is not str)
            raise CanonicalizationError(f"object key {bad!r} is not a string") from None
        if not keys.isascii() and max(keys) > "\uffff":
            return False  # a key outside the BMP: UTF-16 order differs from code-point order
        items: Any = container.values()
    else:
        items = container
    for item in items:
        t = type(item)
        if t is str:
            continue
        if t is list:
            try:
                "".join(item)  # succeeds only for a list of strings (tag lists): nothing to check
            except TypeError:
                if not _walk(item, depth + 1):
                    return False
            continue
        if t is dict:
            if not _walk(item, depth + 1):
                return False
            continue
        if t is int:
            if -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                continue
            raise CanonicalizationError(f"integer {item} is outside ±(2^53−1)")
        if t is bool or item is None:
            continue
        if t is float:
            return False
        raise CanonicalizationError(f"{t.__name__} is not a JSON type")
    return True
