"""Directory: sign/verify, trust in the signing key, rollback, expiry, key windows."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fedkit import NOW, gen

from federation.canonical import canonicalize
from federation.directory import (
    DIRECTORY_SIGNING_CONTEXT,
    Directory,
    KeyEntry,
    NodeEntry,
    directory_signing_input,
    key_valid_at,
    sign_directory,
    verify_directory,
)
from federation.errors import DirectoryExpired, DirectoryInvalid, DirectoryRollback
from federation.keys import b64url_encode, kid_for, private_key_from_seed, public_key_raw

HUB, HUB_KID = gen.PRIV["hub"], gen.KID["hub"]


def signed(**kw: Any) -> dict[str, Any]:
    return sign_directory(gen.directory_unsigned(**kw), HUB, HUB_KID)


def test_sign_and_verify_round_trip() -> None:
    doc = signed()
    d = verify_directory(doc, NOW)
    assert d.to_dict() == doc
    assert d.serial == 7
    assert d.signing_input() == DIRECTORY_SIGNING_CONTEXT + canonicalize({k: v for k, v in doc.items() if k != "sig"})
    assert directory_signing_input(doc) == d.signing_input()
    de = d.node("DE")
    assert de is not None and de.status == "active" and de.mode == "replicate"
    assert d.node("PL") is None
    assert d.key(gen.KID["DE-old"]) == de.key(gen.KID["DE-old"])
    assert d.key(gen.KID["DE-unlisted"]) is None
    assert d.key("XX:aaaaaaaaaaaaaaaa") is None
    assert d.hub.key(HUB_KID) is not None


def test_tampered_directory_is_invalid() -> None:
    doc = signed()
    doc["nodes"][1]["keys"][0]["revoked_at"] = None
    doc["serial"] = 8
    with pytest.raises(DirectoryInvalid, match="signature"):
        verify_directory(doc, NOW)


def test_signature_by_a_key_not_listed_as_hub_key() -> None:
    rogue = private_key_from_seed(bytes(32))
    doc = sign_directory(gen.directory_unsigned(), rogue, kid_for("hub", public_key_raw(rogue)))
    with pytest.raises(DirectoryInvalid, match="not one of its hub keys"):
        verify_directory(doc, NOW)


def test_hub_key_rotation_must_be_signed_by_a_previously_trusted_key() -> None:
    previous = verify_directory(signed(serial=6), NOW)
    new_hub = private_key_from_seed(b"\x07" * 32)
    new_kid = kid_for("hub", public_key_raw(new_hub))
    unsigned = gen.directory_unsigned(serial=8)
    unsigned["hub"]["keys"].append(KeyEntry(new_kid, public_key_raw(new_hub), NOW - timedelta(days=1)).to_dict())
    # Signed by the new key only: a client holding `previous` does not trust it yet.
    with pytest.raises(DirectoryInvalid, match="previously trusted"):
        verify_directory(sign_directory(unsigned, new_hub, new_kid), NOW, previous=previous)
    # Signed by the old key, listing both: accepted; the next one may then use the new key.
    step = verify_directory(sign_directory(unsigned, HUB, HUB_KID), NOW, previous=previous)
    unsigned9 = {**copy.deepcopy(unsigned), "serial": 9}
    assert verify_directory(sign_directory(unsigned9, new_hub, new_kid), NOW, previous=step).serial == 9


def test_trusted_kids_pin_the_hub_key() -> None:
    doc = signed()
    assert verify_directory(doc, NOW, trusted_kids={HUB_KID}).serial == 7
    with pytest.raises(DirectoryInvalid, match="not a trusted"):
        verify_directory(doc, NOW, trusted_kids={"hub:aaaaaaaaaaaaaaaa"})


def test_rollback_and_same_serial() -> None:
    current = verify_directory(signed(), NOW)
    with pytest.raises(DirectoryRollback):
        verify_directory(signed(serial=6), NOW, previous=current)
    assert verify_directory(signed(), NOW, previous=current) is current  # identical re-fetch: no-op
    with pytest.raises(DirectoryRollback, match="different content"):
        verify_directory(signed(issued_at=NOW - timedelta(minutes=5)), NOW, previous=current)
    assert verify_directory(signed(serial=8), NOW, previous=current).serial == 8


def test_expiry_rules() -> None:
    doc = signed(issued_at=NOW - timedelta(hours=1), days=7)
    assert verify_directory(doc, NOW).serial == 7
    expires = NOW - timedelta(hours=1) + timedelta(days=7)
    with pytest.raises(DirectoryExpired, match="expired"):
        verify_directory(doc, expires)
    assert verify_directory(doc, expires - timedelta(seconds=1)).serial == 7
    with pytest.raises(DirectoryExpired, match="window"):
        verify_directory(sign_directory({**gen.directory_unsigned(days=7), "expires_at": "2026-12-03T11:00:01Z"}, HUB, HUB_KID), NOW)
    with pytest.raises(DirectoryExpired, match="window"):
        verify_directory(signed(days=0), NOW)


def test_issued_in_the_future_is_invalid() -> None:
    with pytest.raises(DirectoryInvalid, match="future"):
        verify_directory(signed(issued_at=NOW + timedelta(minutes=6)), NOW)
    assert verify_directory(signed(issued_at=NOW + timedelta(minutes=4)), NOW).serial == 7


def test_hub_key_must_be_valid_at_issued_at() -> None:
    unsigned = gen.directory_unsigned()
    unsigned["hub"]["keys"][0]["revoked_at"] = "2026-01-01T00:00:00Z"
    with pytest.raises(DirectoryInvalid, match="not valid at issued_at"):
        verify_directory(sign_directory(unsigned, HUB, HUB_KID), NOW)


def _mutate(fn: Any) -> dict[str, Any]:
    doc = gen.directory_unsigned()
    fn(doc)
    return doc


MALFORMED = {
    "serial-zero": lambda d: d.update(serial=0),
    "serial-string": lambda d: d.update(serial="7"),
    "ncc-2": lambda d: d.update(ncc=2),
    "bad-issued-at": lambda d: d.update(issued_at="yesterday"),
    "nodes-dict": lambda d: d.update(nodes={}),
    "hub-no-keys": lambda d: d["hub"].update(keys=[]),
    "hub-bad-url": lambda d: d["hub"].update(url="ftp://x"),
    "node-bad-status": lambda d: d["nodes"][0].update(status="gone"),
    "node-bad-mode": lambda d: d["nodes"][0].update(mode="push"),
    "node-lower-country": lambda d: d["nodes"][0].update(country="at"),
    "duplicate-country": lambda d: d["nodes"].append(copy.deepcopy(d["nodes"][0])),
    "kid-other-country": lambda d: d["nodes"][0]["keys"][0].update(kid="FR:" + d["nodes"][0]["keys"][0]["kid"][3:]),
    "kid-not-fingerprint": lambda d: d["nodes"][0]["keys"][0].update(kid="AT:aaaaaaaaaaaaaaaa"),
    "public-key-short": lambda d: d["nodes"][0]["keys"][0].update(public_key=b64url_encode(bytes(31))),
    "public-key-padded": lambda d: d["nodes"][0]["keys"][0].update(public_key=d["nodes"][0]["keys"][0]["public_key"] + "="),
    "not-after-before-not-before": lambda d: d["nodes"][0]["keys"][0].update(not_after="2000-01-01T00:00:00Z"),
    "schemas-not-a-list": lambda d: d.update(schemas="organisation/1"),
    "schemas-bad-name": lambda d: d.update(schemas=["organisation/0"]),
    "schemas-twice": lambda d: d.update(schemas=["organisation/1", "organisation/1"]),
    "schemas-too-many": lambda d: d.update(schemas=[f"t{i}/1" for i in range(300)]),
    "missing-hub": lambda d: d.pop("hub"),
    "key-missing-revoked-at": lambda d: d["nodes"][0]["keys"][0].pop("revoked_at"),
    "hub-key-with-country-prefix": lambda d: d["hub"].update(keys=d["nodes"][0]["keys"]),
}


#: Fields a later version of the protocol may add, at every level of the document (DESIGN §11).
UNKNOWN = {
    "top-level": lambda d: d.update(feed_epochs={"DE": 2}, policy={"x": [1, "y"]}),
    "hub": lambda d: d["hub"].update(contact="ops@eccc.example"),
    "node": lambda d: d["nodes"][0].update(epoch=3),
    "key": lambda d: d["nodes"][0]["keys"][0].update(comment="hardware key"),
}


@pytest.mark.parametrize("name", sorted(UNKNOWN))
def test_unknown_fields_are_ignored_but_kept_so_the_signature_verifies(name: str) -> None:
    """Readers ignore unknown directory fields (a newer hub's), and keep them: the signature covers them."""
    doc = sign_directory(_mutate(UNKNOWN[name]), HUB, HUB_KID)
    d = verify_directory(doc, NOW)
    assert d.to_dict() == doc  # nothing dropped
    assert d.signing_input() == DIRECTORY_SIGNING_CONTEXT + canonicalize({k: v for k, v in doc.items() if k != "sig"})
    assert d.node("DE") is not None
    # the same serial again with the same content is not a rollback (compared with the unknown fields)
    assert verify_directory(doc, NOW, previous=d) is d
    # an unknown field changed after signing breaks the signature like any other field
    tampered = copy.deepcopy(doc)
    UNKNOWN[name](tampered)
    tampered.setdefault("zz", 0)
    tampered["zz"] = 1
    with pytest.raises(DirectoryInvalid):
        verify_directory(tampered, NOW)


def test_accepted_schemas() -> None:
    """``schemas`` lists what the hub accepts; without it, version 1 of each type only."""
    plain = verify_directory(signed(), NOW)
    assert plain.schemas is None and "schemas" not in plain.to_dict()
    assert plain.accepts("organisation/1") and not plain.accepts("organisation/2")
    doc = sign_directory({**gen.directory_unsigned(), "schemas": ["organisation/1", "organisation/2"]}, HUB, HUB_KID)
    listed = verify_directory(doc, NOW)
    assert listed.schemas == ("organisation/1", "organisation/2") and listed.to_dict() == doc
    assert listed.accepts("organisation/2") and not listed.accepts("expert/1")


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_directory(name: str) -> None:
    with pytest.raises(DirectoryInvalid):
        sign_directory(_mutate(MALFORMED[name]), HUB, HUB_KID)


@pytest.mark.parametrize("doc", [None, [], "x", {"sig": {}}])
def test_garbage_is_directory_invalid(doc: Any) -> None:
    with pytest.raises(DirectoryInvalid):
        verify_directory(doc, NOW)


def test_bad_signature_encoding_is_invalid() -> None:
    doc = signed()
    doc["sig"]["value"] = doc["sig"]["value"][:-2]
    with pytest.raises(DirectoryInvalid):
        verify_directory(doc, NOW)
    with pytest.raises(DirectoryInvalid):
        Directory.from_dict({**signed(), "sig": {**signed()["sig"], "alg": "none"}})


def test_key_valid_at_window_edges() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    raw = gen.RAW["DE-current"]
    k = KeyEntry(kid_for("DE", raw), raw, t0, t0 + timedelta(days=10), t0 + timedelta(days=5))
    assert not key_valid_at(k, t0 - timedelta(seconds=1))
    assert key_valid_at(k, t0)
    assert key_valid_at(k, t0 + timedelta(days=5) - timedelta(seconds=1))
    assert not key_valid_at(k, t0 + timedelta(days=5))  # revoked_at is exclusive
    open_ended = KeyEntry(k.kid, raw, t0, t0 + timedelta(days=10))
    assert key_valid_at(open_ended, t0 + timedelta(days=10))  # not_after is inclusive
    assert not key_valid_at(open_ended, t0 + timedelta(days=10, seconds=1))
    assert key_valid_at(KeyEntry(k.kid, raw, t0), t0 + timedelta(days=10_000))


def test_node_entry_round_trip() -> None:
    node = NodeEntry("DE", "https://de.example", "suspended", "query-only", (gen.key_entry("DE-current"),))
    assert NodeEntry.from_dict(node.to_dict()) == node
