"""Envelope model: validated on construction, exact round trip, one signing input."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from fedkit import gen

from federation.canonical import canonicalize
from federation.envelope import (
    RECORD_SIGNING_CONTEXT,
    Envelope,
    parse_record_id,
    record_id,
    record_signing_input,
    sign_record,
)
from federation.errors import CanonicalizationError, EnvelopeInvalid
from federation.keys import b64url_decode

UUID = gen.ORG_UUID


def good() -> dict[str, Any]:
    return gen.signed()


def test_round_trip_is_exact() -> None:
    d = good()
    env = Envelope.from_dict(d)
    assert env.to_dict() == d
    assert list(env.to_dict()) == list(d)
    assert Envelope.from_dict(env.to_dict()) == env


def test_signing_input_is_prefix_plus_jcs_without_sig() -> None:
    d = good()
    env = Envelope.from_dict(d)
    expected = RECORD_SIGNING_CONTEXT + canonicalize({k: v for k, v in d.items() if k != "sig"})
    assert env.signing_input() == expected
    assert record_signing_input(d) == expected  # "sig" is ignored if present
    assert env.digest() == hashlib.sha256(expected).hexdigest()


def test_sign_record_produces_a_verifiable_signature() -> None:
    fields = gen.fields()
    env = sign_record(fields, gen.PRIV["DE-current"], gen.KID["DE-current"])
    gen.PRIV["DE-current"].public_key().verify(b64url_decode(env.sig.value), env.signing_input())
    assert env.unsigned_dict() == fields


def test_sign_record_refuses_sig_and_bad_fields() -> None:
    with pytest.raises(EnvelopeInvalid):
        sign_record(good(), gen.PRIV["DE-current"], gen.KID["DE-current"])
    with pytest.raises(EnvelopeInvalid):
        sign_record({**gen.fields(), "version": 0}, gen.PRIV["DE-current"], gen.KID["DE-current"])
    with pytest.raises(CanonicalizationError):
        sign_record(gen.fields(payload={"n": 2**60}), gen.PRIV["DE-current"], gen.KID["DE-current"])


def test_envelope_is_frozen() -> None:
    env = Envelope.from_dict(good())
    with pytest.raises(dataclasses.FrozenInstanceError):
        env.version = 2  # type: ignore[misc]


def _with(**changes: Any) -> dict[str, Any]:
    d = good()
    for k, v in changes.items():
        if v is KeyError:
            del d[k]
        else:
            d[k] = v
    return d


BAD: dict[str, Any] = {
    "not-a-dict": [good()],
    "missing-id": _with(id=KeyError),
    "missing-sig": _with(sig=KeyError),
    "extra-field": _with(extra=1),
    "ncc-true": _with(ncc=True),
    "ncc-2": _with(ncc=2),
    "ncc-string": _with(ncc="1"),
    "id-int": _with(id=5),
    "id-bad-uuid": _with(id="urn:ncc:DE:organisation:1234"),
    "id-lower-origin": _with(id=f"urn:ncc:de:organisation:{UUID}"),
    "type-upper": _with(type="Organisation"),
    "type-int": _with(type=1),
    "schema-no-version": _with(schema="organisation"),
    "schema-version-0": _with(schema="organisation/0"),
    "schema-other-type": _with(schema="expert/1"),
    "origin-3-letters": _with(origin="DEU"),
    "origin-lower": _with(origin="de"),
    "version-0": _with(version=0),
    "version-negative": _with(version=-1),
    "version-float": _with(version=1.0),
    "version-bool": _with(version=True),
    "version-2^53": _with(version=2**53),
    "issued-at-date-only": _with(issued_at="2026-11-26"),
    "issued-at-lowercase-z": _with(issued_at="2026-11-26T11:50:00z"),
    "issued-at-millis": _with(issued_at="2026-11-26T11:50:00.000Z"),
    "issued-at-feb-30": _with(issued_at="2026-02-30T11:50:00Z"),
    "issued-at-int": _with(issued_at=1795000000),
    "visibility-unknown": _with(visibility="private"),
    "visibility-list": _with(visibility=["public"]),
    "deleted-int": _with(deleted=0),
    "payload-list": _with(payload=[]),
    "payload-null": _with(payload=None),
    "tombstone-empty": _with(deleted=True, payload={}),
    "tombstone-extra": _with(deleted=True, payload={"reason": "erased", "x": 1}),
    "tombstone-reason": _with(deleted=True, payload={"reason": "deleted"}),
    "sig-not-dict": _with(sig="abc"),
    "sig-extra": _with(sig={**good()["sig"], "x": 1}),
    "sig-alg": _with(sig={**good()["sig"], "alg": "ed25519"}),
    "sig-kid-no-colon": _with(sig={**good()["sig"], "kid": "DEabcdefghijklmnop"}),
    "sig-kid-short": _with(sig={**good()["sig"], "kid": "DE:abc"}),
    "sig-value-std-base64": _with(sig={**good()["sig"], "value": "+" + good()["sig"]["value"][1:]}),
    "sig-value-63-bytes": _with(sig={**good()["sig"], "value": good()["sig"]["value"][:84]}),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_envelopes_are_envelope_invalid(name: str) -> None:
    with pytest.raises(EnvelopeInvalid) as info:
        Envelope.from_dict(BAD[name])
    assert info.value.code == "envelope_invalid"
    assert info.value.detail


@pytest.mark.parametrize("reason", ["withdrawn", "erased", "revoked"])
def test_tombstones_with_each_reason_are_valid(reason: str) -> None:
    env = Envelope.from_dict(_with(deleted=True, payload={"reason": reason}))
    assert env.deleted and env.payload == {"reason": reason}


def test_record_id_helpers() -> None:
    rid = record_id("DE", "expert", UUID)
    assert rid == f"urn:ncc:DE:expert:{UUID}"
    assert parse_record_id(rid) == ("DE", "expert", UUID)
    assert Envelope.from_dict(good()).uuid == UUID
    for bad in ("urn:ncc:DE:expert", f"urn:ncc:DE:Expert:{UUID}", f"URN:ncc:DE:expert:{UUID}", 7):
        with pytest.raises(EnvelopeInvalid):
            parse_record_id(bad)  # type: ignore[arg-type]
    with pytest.raises(EnvelopeInvalid):
        record_id("DEU", "expert", UUID)
