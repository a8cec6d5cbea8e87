"""Strict JSON: every refusal has one code, and the orjson fast path equals Python's parser."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation import strictjson
from federation.errors import CanonicalizationError, MalformedJSON, ProtocolError
from tests.conftest import examples

CASES: list[tuple[str, type[ProtocolError] | None]] = [
    ('{"a": 1, "b": [1, 2.5, "x", null, true]}', None),
    ('{"a": 1, "a": 2}', MalformedJSON),
    ('{"k": {"a": 1, "b": 2, "a": 3}}', MalformedJSON),
    ('{"a:": 1, "a": 2}', None),  # a colon inside a key is not a member
    ('{"a\\":": 1, "b": ":"}', None),  # escaped quote, colons in strings
    ('{"a": NaN}', MalformedJSON),
    ('{"a": -Infinity}', MalformedJSON),
    ('{"a": 9007199254740991}', None),
    ('{"a": 9007199254740992}', CanonicalizationError),
    ('{"a": -9007199254740992}', CanonicalizationError),
    ('{"a": 123456789012345678901234567890}', CanonicalizationError),
    ('{"a": 1234567890123456.5}', None),
    ('{"a": 1e400}', CanonicalizationError),
    ('{"a": "\\ud800"}', CanonicalizationError),
    ('{"\\udfff": 1}', CanonicalizationError),
    ('{"a": "\\ud83d\\ude00"}', None),
    ("[" * 64 + "]" * 64, None),
    ("[" * 65 + "]" * 65, MalformedJSON),
    ('{"a":' * 70 + "1" + "}" * 70, MalformedJSON),
    ("[" * 10_000 + "]" * 10_000, MalformedJSON),
    ('{"a": 1, "a": 9007199254740992}', MalformedJSON),  # the duplicate is named before the integer
    ('{"a": 1,}', MalformedJSON),
    ('{"a": "\x01"}', MalformedJSON),
    (" \n{}\t ", None),
    ("", MalformedJSON),
    ("   ", MalformedJSON),
    ("\ufeff{}", MalformedJSON),
]


@pytest.mark.parametrize(("text", "error"), CASES)
def test_each_input_gets_its_code(text: str, error: type[ProtocolError] | None) -> None:
    if error is None:
        assert strictjson.loads(text) == json.loads(text)
        assert strictjson.loads(text.encode()) == json.loads(text)
    else:
        with pytest.raises(error):
            strictjson.loads(text)


def test_invalid_utf8_is_malformed() -> None:
    with pytest.raises(MalformedJSON, match="UTF-8"):
        strictjson.loads(b'{"a": "\xff"}')


def outcome(parse: Any, text: str) -> Any:
    try:
        return ("ok", parse(text))
    except ProtocolError as exc:
        return ("error", exc.code)


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(st.tuples(st.sampled_from(["a", "b", "a:", ':"', "\\", "é"]), children), max_size=4),
    ),
    max_leaves=20,
)


def _render(value: Any, compact: bool, ascii: bool) -> str:
    """JSON text of ``value`` where lists of pairs become objects (so duplicate keys can occur);
    compact and unescaped is orjson's own form, which the fast path takes."""
    comma, colon = (",", ":") if compact else (", ", ": ")
    if isinstance(value, list) and value and all(isinstance(v, tuple) for v in value):
        return "{" + comma.join(
            f"{json.dumps(k, ensure_ascii=ascii)}{colon}{_render(v, compact, ascii)}" for k, v in value
        ) + "}"
    if isinstance(value, list):
        return "[" + comma.join(_render(v, compact, ascii) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii)


@settings(max_examples=examples(3000))
@given(_values, st.booleans(), st.booleans())
def test_fast_path_equals_pythons_parser(value: Any, compact: bool, ascii: bool) -> None:
    text = _render(value, compact, ascii)
    expected = outcome(strictjson.loads_slow, text)
    assert outcome(strictjson.loads, text) == expected
    with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate cannot be UTF-8 encoded
        assert outcome(strictjson.loads, text.encode()) == expected


def test_fast_path_is_taken_for_orjsons_own_form() -> None:
    line = orjson.dumps({"seq": 3, "record": {"id": "urn:ncc:AT:x", "version": 9007199254740991, "n": [1.5, None]}})
    assert strictjson._loads_fast(line) is not strictjson._UNDECIDED
    # whitespace between tokens only (json.dumps' form, a pretty-printed file): decided, same value
    for spaced in (line + b" ", line.replace(b":", b": ").replace(b",", b", "), b'\n{ "a" :\t"b c" }\r\n'):
        assert strictjson._loads_fast(spaced) == orjson.loads(spaced)
    for other in (b'{"a":1,"a":1}', b'{"a": 1, "a": 1}', b'{"a":9007199254740992}', b'{"a": "\\u0041"}',
                  b'[1.50]', b'[-0]', b'{"a": "b", "a": "b"}'):
        assert strictjson._loads_fast(other) is strictjson._UNDECIDED


@settings(max_examples=examples(1000))
@given(st.text(alphabet='{}[]":,0123456789.eE-+ \\ud800nulltrufase\\\'', max_size=40))
def test_fast_path_equals_pythons_parser_on_near_json(text: str) -> None:
    if not text.strip() or text.startswith("\ufeff"):
        return
    assert outcome(strictjson.loads, text) == outcome(strictjson.loads_slow, text)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "\\ud800"}', '{"\\udfff": 1}', '["\\uD83D\\uDE00"]', "[9007199254740991]", "[9007199254740992]",
        "[-9007199254740993]", "[1e999]", "[1E400]", "[-1e309]", "[1.5e3]", '{"a": "2e9 words"}',
        '{"a": "\\u00e9", "b": [1, 2.5]}', "[" * 64 + "]" * 64, "[" * 65 + "]" * 65, '{"a": "[[[["}',
        "[" + "1" * 400 + ".0]", '{"k": {"k": {"k": "v"}}}', '{"a": null, "b": 1e999}', '[null]',
        '{"a": [1, "\ud800", 99999999999999999999]}',
    ],
)
def test_skipping_the_walk_never_changes_the_verdict(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``loads_slow`` skips the value walk when the text cannot hold what it looks for; the verdict
    must equal the one with the walk always done."""
    from federation import strictjson

    def verdict() -> object:
        try:
            return ("ok", strictjson.loads_slow(text))
        except ProtocolError as exc:
            return (exc.code, exc.detail)

    fast = verdict()
    monkeypatch.setattr(strictjson, "_surely_unproblematic", lambda text, value: False)  # always walk
    assert verdict() == fast
