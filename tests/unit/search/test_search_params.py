"""Search query parameters (node.services.search): bad values are 400 invalid_parameter (DESIGN §9).

Regression: ``GET /api/v1/search?type=foo&live=maybe&role=ecsf.x`` answered 200 with
``facets.type == {"foo": 0}``, and ``live=maybe`` was taken for false.
"""

from __future__ import annotations

import pytest
from multidict import MultiDict

from node.errors import InvalidParameter
from node.services.search import bool_param, filter_values, query_from_params

PUBLIC = frozenset({"public"})


def params(**values: str) -> MultiDict[str]:
    return MultiDict(values)


@pytest.mark.parametrize(
    ("name", "value"),
    [("type", "foo"), ("role", "ecsf.x"), ("domain", "nope"), ("subdomain", "cry"), ("country", "XX"),
     ("sector", "cry"), ("technology", "sec.energy"), ("use_case", "x"), ("org_type", "ctype.nope")],
)
def test_unknown_record_type_or_vocabulary_id_is_invalid_parameter(name: str, value: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        query_from_params(params(**{name: value}), PUBLIC, 100)
    assert caught.value.extra == {"parameter": name}
    assert value in caught.value.detail


def test_known_values_are_accepted() -> None:
    query = query_from_params(
        MultiDict([("type", "organisation"), ("type", "expert"), ("role", "ecsf.penetration-tester"),
                   ("domain", "cry"), ("subdomain", "cry.10"), ("country", "AT"), ("sector", "sec.energy")]),
        PUBLIC, 100,
    )
    assert query.filters["type"] == ("organisation", "expert") and query.filters["country"] == ("AT",)
    assert {"organisation", "expert", "project", "facility"} == filter_values()["type"]


@pytest.mark.parametrize("value", ["maybe", "2", "on", "truee"])
def test_live_must_be_a_boolean(value: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        bool_param(params(live=value), "live")
    assert caught.value.extra == {"parameter": "live"}


def test_live_booleans() -> None:
    assert [bool_param(params(live=v), "live") for v in ("true", "TRUE", "1", "yes")] == [True] * 4
    assert [bool_param(params(live=v), "live") for v in ("false", "0", "no", "")] == [False] * 4
    assert bool_param(params(), "live") is False


def test_a_country_filter_is_taken_in_any_case_as_everywhere_a_country_is_typed() -> None:
    """Regression: ``ncc init --country de`` was accepted while ``country=de`` in search was a 400."""
    query = query_from_params(MultiDict([("country", "de"), ("country", " At "), ("country", "DE")]), PUBLIC, 100)
    assert query.filters["country"] == ("DE", "AT")
    with pytest.raises(InvalidParameter):
        query_from_params(params(country="d1"), PUBLIC, 100)
