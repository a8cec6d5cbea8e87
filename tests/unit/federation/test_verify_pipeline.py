"""verify(): one code per failure, checked in DESIGN §3 order; the verified record on success."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fedkit import NOW, directory, gen, registry

from federation.errors import ProtocolError, SchemaInvalid
from federation.verify import check, consent_covers, verify

EXPERT = {"type_": "expert", "uuid": gen.EXPERT_UUID}


def code_of(env: Any, **kw: Any) -> str:
    with pytest.raises(ProtocolError) as info:
        verify(env, directory(), NOW, registry(), **kw)
    return info.value.code


def test_verified_record_carries_envelope_digest_and_key() -> None:
    env = gen.signed()
    rec = verify(env, directory(), NOW, registry(), feed_origin="DE")
    assert rec.envelope.to_dict() == env
    assert rec.digest == rec.envelope.digest()
    assert rec.key.kid == gen.KID["DE-current"]


def test_suspended_node_records_still_verify() -> None:
    env = gen.signed("AT-suspended", origin="AT", payload={**gen.ORGANISATION, "country": "AT"})
    node = directory().node("AT")
    assert node is not None and node.status == "suspended"
    assert verify(env, directory(), NOW, registry()).envelope.origin == "AT"


def test_order_envelope_before_canonicalization() -> None:
    env = gen.signed_raw({**gen.fields(payload={"n": 2**60}), "version": 0})
    assert code_of(env) == "envelope_invalid"


def test_order_canonicalization_before_origin() -> None:
    env = gen.signed_raw(gen.fields("PL-unenrolled", origin="PL", payload={"n": 2**60}), "PL-unenrolled")
    assert code_of(env) == "canonicalization_error"


def test_order_unknown_origin_before_mismatch() -> None:
    env = gen.signed_raw({**gen.fields(origin="PL"), "id": f"urn:ncc:DE:organisation:{gen.ORG_UUID}"}, "DE-current")
    assert code_of(env) == "unknown_origin"


def test_order_mismatch_before_unknown_key() -> None:
    assert code_of(gen.signed("DE-unlisted"), feed_origin="FR") == "origin_mismatch"


def test_order_unknown_key_before_future() -> None:
    assert code_of(gen.signed("DE-unlisted", issued_at=NOW + timedelta(hours=1))) == "unknown_key"


def test_order_key_window_before_future_and_signature() -> None:
    later = datetime(2026, 7, 1, tzinfo=UTC)
    env = gen.signed("DE-revoked", issued_at=later)
    env["payload"] = {"tampered": True}
    assert code_of(env) == "key_revoked"
    # DE-later is valid from NOW + 1 day: a record claiming NOW + 2 days is future, not key_not_yet_valid
    assert code_of(gen.signed("DE-later", issued_at=NOW + timedelta(days=2))) == "issued_in_future"


def test_order_future_before_signature() -> None:
    env = gen.signed(issued_at=NOW + timedelta(minutes=6))
    env["version"] = 9
    assert code_of(env) == "issued_in_future"


def test_order_signature_before_schema() -> None:
    env = gen.signed(payload={"not": "an organisation"})
    assert code_of(env) == "schema_invalid"
    env["version"] = 2
    assert code_of(env) == "signature_invalid"


def test_order_schema_before_consent() -> None:
    payload = {k: v for k, v in gen.EXPERT.items() if k not in ("consent", "name")}
    assert code_of(gen.signed(**EXPERT, payload=payload)) == "schema_invalid"  # no name, and no consent


def test_key_windows_are_judged_at_issued_at_not_now() -> None:
    inside = gen.signed("DE-old", issued_at=datetime(2026, 1, 1, tzinfo=UTC))  # not_after, inclusive
    assert verify(inside, directory(), NOW, registry()).key.kid == gen.KID["DE-old"]
    before = gen.signed("DE-revoked", issued_at=datetime(2026, 5, 31, 23, 59, 59, tzinfo=UTC))
    assert verify(before, directory(), NOW, registry()).key.kid == gen.KID["DE-revoked"]
    assert code_of(gen.signed("DE-old", issued_at=datetime(2024, 12, 31, tzinfo=UTC))) == "key_not_yet_valid"


def test_skew_is_configurable() -> None:
    env = gen.signed(issued_at=NOW + timedelta(minutes=3))
    assert verify(env, directory(), NOW, registry()).envelope.version == 1
    with pytest.raises(ProtocolError) as info:
        verify(env, directory(), NOW, registry(), max_skew=timedelta(minutes=1))
    assert info.value.code == "issued_in_future"


def test_schema_invalid_lists_pointers() -> None:
    payload = {**gen.ORGANISATION, "subdomains": ["cry.10", "nope"], "website": 5}
    with pytest.raises(SchemaInvalid) as info:
        verify(gen.signed(payload=payload), directory(), NOW, registry())
    assert {e["pointer"] for e in info.value.errors} == {"/payload/subdomains/1", "/payload/website"}


def test_a_missing_required_field_is_pointed_at_itself() -> None:
    """Regression (README walk-through): a missing ``legal_name`` was reported at ``/payload``, the
    object holding it, so the portal could not show the error next to the field."""
    payload = {k: v for k, v in gen.ORGANISATION.items() if k not in ("legal_name", "country")}
    with pytest.raises(SchemaInvalid) as info:
        verify(gen.signed(payload=payload), directory(), NOW, registry())
    assert {e["pointer"] for e in info.value.errors} == {"/payload/legal_name", "/payload/country"}


def test_tombstones_skip_payload_schema_and_consent() -> None:
    env = gen.signed(**EXPERT, version=4, deleted=True, payload={"reason": "erased"})
    assert verify(env, directory(), NOW, registry()).envelope.deleted


@pytest.mark.parametrize(
    ("visibility", "consent", "ok"),
    [
        ("national", None, True),
        ("national", {"given": False}, True),
        ("network", {"given": True, "scope": "network"}, True),
        ("network", {"given": True, "scope": "public"}, True),
        ("public", {"given": True, "scope": "public"}, True),
        ("public", {"given": True, "scope": "network"}, False),
        ("public", {"given": True}, True),  # a consent without scope is not narrowed
        ("network", {"given": True, "at": "2026-01-01T00:00:00Z"}, True),
        ("public", {"given": True, "scope": "nccs-and-eccc"}, False),  # an unknown scope reads as network
        ("network", {"given": True, "scope": "nccs-and-eccc"}, True),
        ("network", {"given": False, "scope": "public"}, False),
        ("network", None, False),  # no consent object at all: consent_missing, not schema_invalid
        ("public", None, False),
    ],
)
def test_expert_consent(visibility: str, consent: dict[str, Any] | None, ok: bool) -> None:
    payload = {k: v for k, v in gen.EXPERT.items() if k != "consent"}
    if consent is not None:
        payload["consent"] = consent
    result = check(gen.signed(**EXPERT, payload=payload, visibility=visibility), directory(), NOW, registry())
    assert result.ok is ok
    if not ok:
        assert result.error is not None and result.error.code == "consent_missing" and result.record is None


def test_consent_covers_tolerates_garbage() -> None:
    assert not consent_covers({}, "public")
    assert not consent_covers({"consent": "yes"}, "public")
    assert not consent_covers({"consent": {"given": 1, "scope": "public"}}, "public")
    assert not consent_covers({"consent": {"given": True, "scope": ["public"]}}, "public")
    assert consent_covers({"consent": {"given": True, "scope": ["public"]}}, "network")  # read as network


def test_organisations_need_no_consent_field() -> None:
    payload = {k: v for k, v in gen.ORGANISATION.items() if k != "consent"}
    assert verify(gen.signed(payload=payload), directory(), NOW, registry()).envelope.visibility == "public"


def test_check_returns_record_on_success() -> None:
    result = check(gen.signed(), directory(), NOW, registry())
    assert result.ok and result.record is not None and result.error is None


@pytest.mark.parametrize("garbage", [None, [], "x", 1, {"ncc": 1}])
def test_garbage_is_envelope_invalid(garbage: Any) -> None:
    assert code_of(garbage) == "envelope_invalid"
