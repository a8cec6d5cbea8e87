"""RFC 8785 known answers, refusals, and the fast-path/reference split."""

from __future__ import annotations

import json
from typing import Any

import pytest

from federation.canonical import (
    MAX_SAFE_INTEGER,
    canonicalize,
    canonicalize_reference,
    fast_path_applies,
)
from federation.errors import CanonicalizationError

KNOWN: list[tuple[Any, bytes]] = [
    (1e21, b"1e+21"),
    (1e20, b"100000000000000000000"),
    (1e-7, b"1e-7"),
    (0.000001, b"0.000001"),
    (-0.0, b"0"),
    (1.0, b"1"),
    (4.5, b"4.5"),
    (333333333.33333329, b"333333333.3333333"),
    (1e30, b"1e+30"),
    (5e-324, b"5e-324"),
    ([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER], b"[9007199254740991,-9007199254740991]"),
    ({"b": 1, "a": 2, "A": 3}, b'{"A":3,"a":2,"b":1}'),
    # UTF-16 code-unit order: U+1F600 (D83D DE00) sorts before U+FB33, though its code point is larger.
    ({"\ufb33": 1, "\U0001f600": 2, "\u20ac": 3, "\r": 4}, '{"\\r":4,"\u20ac":3,"\U0001f600":2,"\ufb33":1}'.encode()),
    ({"\ue000": 1, "\U00010000": 2}, '{"𐀀":2,"\ue000":1}'.encode()),
    ("\u0000\u001f\b\f\n\r\t\"\\/\u007f\u2028é😀", '"\\u0000\\u001f\\b\\f\\n\\r\\t\\"\\\\/\u007f\u2028é😀"'.encode()),
    ({"a": [True, False, None, {}, []]}, b'{"a":[true,false,null,{},[]]}'),
    ({"z": {"y": 1, "x": [3, {"b": 0, "a": -1}]}}, b'{"z":{"x":[3,{"a":-1,"b":0}],"y":1}}'),
]


@pytest.mark.parametrize(("value", "expected"), KNOWN)
def test_known_answers(value: Any, expected: bytes) -> None:
    assert canonicalize_reference(value) == expected
    assert canonicalize(value) == expected


def test_rfc8785_section_3_2_2_example() -> None:
    text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert canonicalize(json.loads(text)) == expected


@pytest.mark.parametrize(
    "value",
    [
        2**53,
        -(2**53),
        [2**64],
        {"a": 10**30},
        float("nan"),
        float("inf"),
        [float("-inf")],
        "\ud800",
        {"k": "x\udfffy"},
        {"\ud800": 1},
        {1: "non-string key"},
        b"bytes",
        (1, 2),
        {"a": {1, 2}},
        object(),
    ],
    ids=lambda v: "object()" if type(v) is object else repr(v),  # no address: xdist workers must agree
)
def test_unrepresentable_values_are_refused(value: Any) -> None:
    with pytest.raises(CanonicalizationError) as info:
        canonicalize(value)
    assert info.value.code == "canonicalization_error"


@pytest.mark.parametrize("value", [2**53, float("nan"), float("inf"), "\ud800", {"\udc00": 1}], ids=repr)
def test_reference_refuses_the_same(value: Any) -> None:
    with pytest.raises(CanonicalizationError) as info:
        canonicalize_reference(value)
    assert info.value.__cause__ is not None  # the third-party exception is kept, wrapped


def test_fast_path_taken_for_records_and_not_for_floats_or_astral_keys() -> None:
    assert fast_path_applies({"a": [1, "x", None, True, {"é": "😀"}]})
    assert not fast_path_applies({"a": [1, 2.5]})
    assert not fast_path_applies({"\U0001f600": 1})
    assert fast_path_applies({"k": "\U0001f600 in a value is fine"})


def test_deep_nesting_falls_back_to_reference_and_stays_identical() -> None:
    value: Any = "leaf"
    for _ in range(300):
        value = [value]
    assert not fast_path_applies(value)
    assert canonicalize(value) == b"[" * 300 + b'"leaf"' + b"]" * 300


def test_absurd_nesting_is_a_canonicalization_error_not_a_crash() -> None:
    value: Any = 0
    for _ in range(100_000):
        value = [value]
    with pytest.raises(CanonicalizationError):
        canonicalize(value)


def test_bool_is_not_confused_with_int() -> None:
    assert canonicalize([True, 1, False, 0]) == b"[true,1,false,0]"
