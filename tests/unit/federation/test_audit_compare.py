"""federation.audit: the pure comparison of what a node published with what the hub logged."""

from __future__ import annotations

from federation.audit import Published, compare, foreign_keys, served

A, B, C, D = (f"urn:ncc:DE:organisation:00000000-0000-4000-8000-00000000000{i}" for i in range(4))


def test_an_honest_log_has_no_discrepancy() -> None:
    published = [Published(A, 1, "a1", False), Published(A, 2, "a2", True), Published(B, 1, "b1", True)]
    logged = [{"id": A, "version": 1, "digest": "a1"}, {"id": A, "version": 2, "digest": "a2"},
              {"id": B, "version": 1, "digest": "b1"}]
    assert compare(published, logged) == []
    # a superseded version the hub never saw (the feed compacts) is no discrepancy either
    assert compare(published, logged[1:]) == []


def test_each_kind_is_reported_once_with_its_subject() -> None:
    published = [Published(A, 2, "a2", True), Published(B, 1, "b1", True), Published(C, 1, "c1", True),
                 Published(D, 1, "d1", False)]
    logged = [{"id": B, "version": 1, "digest": "XX"}, {"id": "urn:ncc:DE:organisation:forged", "version": 1,
                                                        "digest": "ff"}]
    lines = [d.line() for d in compare(published, logged, refused=[(C, 1, "schema_invalid")])]
    assert lines == [
        f"altered {B} v1: logged with digest XX…, signed as b1…",
        f"dropped {A} v2: published, passed by the hub's cursor, and not in its log",
        f"refused {C} v1: quarantined at the hub (schema_invalid)",
        "unknown urn:ncc:DE:organisation:forged v1: the log holds a version this node never signed",
    ]


def test_served_copies_and_foreign_keys() -> None:
    published = [Published(A, 2, "a2", True), Published(B, 1, "b1", True)]
    assert [d.kind for d in served(published, {A: (2, "zz"), B: (0, "b0")})] == ["altered", "dropped"]
    assert [d.line() for d in foreign_keys(["DE:new", "DE:mine"], ["DE:mine", "DE:old"])] == [
        "foreign-key DE:new: listed by the hub for this country; not this node's key"]
