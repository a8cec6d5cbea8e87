"""Cursors: opaque, bound to their query, garbage rejected as InvalidParameter."""

from __future__ import annotations

import base64

import pytest

from node.errors import InvalidParameter
from node.search import SearchQuery
from node.search.cursor import decode_cursor, decode_offsets, encode_cursor, encode_offsets, fingerprint


def test_round_trip_and_page_size_may_change() -> None:
    query = SearchQuery(q="grid", filters={"country": ("DE",)}, visibilities=frozenset({"public"}))
    cursor = encode_cursor(40, query)
    assert decode_cursor(cursor, SearchQuery(q="grid", filters={"country": ("DE",)}, limit=50)) == 40
    assert decode_cursor(None, query) == 0


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage",
        "!!!",
        "x" * 1000,
        base64.urlsafe_b64encode(b"[1,2]").decode(),
        base64.urlsafe_b64encode(b'{"o":-1,"f":"x"}').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_garbage_is_invalid_parameter(cursor: str) -> None:
    with pytest.raises(InvalidParameter):
        decode_cursor(cursor, SearchQuery())


def test_cursor_of_another_query_is_rejected() -> None:
    cursor = encode_cursor(20, SearchQuery(q="grid"))
    with pytest.raises(InvalidParameter):
        decode_cursor(cursor, SearchQuery(q="other"))
    with pytest.raises(InvalidParameter):
        decode_cursor(cursor, SearchQuery(q="grid", visibilities=frozenset({"public", "network"})))


def test_merged_cursor_round_trips_and_is_bound_to_the_query() -> None:
    query = SearchQuery(q="grid", filters={"country": ("DE",)})
    cursor = encode_offsets({"_": 20, "AT": 3, "FR": 0}, query)
    assert decode_offsets(cursor, SearchQuery(q="grid", filters={"country": ("DE",)}, limit=5)) == {"_": 20, "AT": 3}
    assert decode_offsets(None, query) == {}
    with pytest.raises(InvalidParameter):
        decode_offsets(cursor, SearchQuery(q="grids"))
    with pytest.raises(InvalidParameter):  # a single-source cursor is not a merged one
        decode_offsets(encode_cursor(20, query), query)
    for junk in ("", "x" * 3000, "!!!", encode_cursor(1, query)[:-2]):
        with pytest.raises(InvalidParameter):
            decode_offsets(junk, query)


def test_excluded_origins_take_part_in_the_fingerprint() -> None:
    query = SearchQuery(q="grid")
    assert fingerprint(query) == fingerprint(SearchQuery(q="grid", exclude_origins=frozenset()))
    assert fingerprint(query) != fingerprint(SearchQuery(q="grid", exclude_origins=frozenset({"AT"})))


def test_merged_cursor_names_every_source_also_those_at_zero() -> None:
    """A later page of a live search keeps the first page's sources (node.services.live): a node that
    gave nothing yet is still named, though its zero offset is left out of the offsets."""
    from node.search.cursor import decode_sources

    query = SearchQuery(q="grid")
    cursor = encode_offsets({"_": 20, "AT": 3, "FR": 0}, query)
    assert decode_sources(cursor, query) == ({"_": 20, "AT": 3}, frozenset({"_", "AT", "FR"}))
    assert decode_sources(None, query) == ({}, frozenset())
