"""Property tests: the fast path is byte-identical to the rfc8785 reference.

≥ 2,000 examples per property (the issue's bar for CI). The strategies cover arbitrary JSON
(floats and astral keys included, where ``canonicalize`` must fall back) and the fast path alone
(no floats, BMP-only keys), plus values shaped like our envelopes.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.canonical import MAX_SAFE_INTEGER, canonicalize, canonicalize_reference, fast_path_applies
from tests.conftest import examples

PROPERTY = settings(max_examples=examples(2000), deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

safe_ints = st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
any_text = st.text()  # every code point except surrogates
bmp_text = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)))
scalars = st.none() | st.booleans() | safe_ints | finite_floats | any_text


def json_values(leaves: st.SearchStrategy[Any], keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=6) | st.dictionaries(keys, children, max_size=6),
        max_leaves=40,
    )


ARBITRARY_JSON = json_values(scalars, any_text)
FAST_PATH_JSON = json_values(st.none() | st.booleans() | safe_ints | any_text, bmp_text)


@PROPERTY
@given(ARBITRARY_JSON)
def test_canonicalize_equals_reference_on_arbitrary_json(value: Any) -> None:
    assert canonicalize(value) == canonicalize_reference(value)


@PROPERTY
@given(FAST_PATH_JSON)
def test_orjson_sorted_equals_reference_without_floats_or_astral_keys(value: Any) -> None:
    assert fast_path_applies(value)
    fast = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER)
    assert fast == canonicalize_reference(value)


vocab_id = st.from_regex(r"\A[a-z]{2,4}(\.[0-9]{2})?\Z")
payloads = st.fixed_dictionaries(
    {
        "legal_name": any_text,
        "country": st.sampled_from(["DE", "FR", "AT", "EL"]),
        "domains": st.lists(vocab_id, max_size=5),
        "description": any_text,
        "sme": st.booleans(),
    },
    optional={
        "contact": st.dictionaries(bmp_text, any_text, max_size=4),
        "identifiers": st.dictionaries(st.sampled_from(["pic", "vat", "ror"]), any_text),
        "extra": FAST_PATH_JSON,
    },
)
envelopes = st.fixed_dictionaries(
    {
        "ncc": st.just(1),
        "id": st.uuids().map(lambda u: f"urn:ncc:DE:organisation:{u}"),
        "type": st.just("organisation"),
        "schema": st.just("organisation/1"),
        "origin": st.just("DE"),
        "version": st.integers(min_value=1, max_value=MAX_SAFE_INTEGER),
        "issued_at": st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
        "visibility": st.sampled_from(["public", "network", "national"]),
        "deleted": st.booleans(),
        "payload": payloads,
    }
)


@PROPERTY
@given(envelopes)
def test_record_shaped_values_take_the_fast_path_and_match(value: dict[str, Any]) -> None:
    assert fast_path_applies(value)
    assert canonicalize(value) == canonicalize_reference(value)


@settings(max_examples=examples(300), deadline=None, database=None)
@given(
    st.integers(min_value=MAX_SAFE_INTEGER + 1) | st.integers(max_value=-MAX_SAFE_INTEGER - 1),
    st.sampled_from(["bare", "list", "dict"]),
)
def test_out_of_range_integers_fail_in_both(n: int, where: str) -> None:
    value: Any = {"bare": n, "list": [1, n], "dict": {"a": {"b": n}}}[where]
    for fn in (canonicalize, canonicalize_reference):
        try:
            fn(value)
        except Exception as e:  # noqa: BLE001 - asserting the exact class below
            assert e.__class__.__name__ == "CanonicalizationError"
        else:
            raise AssertionError(f"{fn.__name__} accepted {n}")
