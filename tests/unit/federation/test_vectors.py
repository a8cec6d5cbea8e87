"""The committed known-answer vectors: regenerated identically, and each one checked."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fedkit import VECTOR_DIR, directory, gen, registry

from federation import errors
from federation.canonical import canonicalize, canonicalize_reference
from federation.directory import Directory, verify_directory
from federation.errors import ProtocolError
from federation.groups import check_group_member
from federation.ingest import Decision, Held, decide, equivocation_error
from federation.keys import b64url_decode, public_key_from_raw
from federation.timefmt import parse_timestamp
from federation.tokens import (
    peek_enrollment_token,
    verify_enrollment_proof,
    verify_enrollment_token,
    verify_rotation_statement,
    verify_service_token,
)
from federation.verify import verify


def load(name: str) -> Any:
    return json.loads((VECTOR_DIR / name).read_text(encoding="ascii"))


ENVELOPES = load("envelopes.json")
NOW = parse_timestamp(ENVELOPES["now"])


@pytest.mark.parametrize("name", sorted(gen.build()))
def test_committed_vectors_equal_generator_output(name: str) -> None:
    assert (VECTOR_DIR / name).read_text(encoding="ascii") == gen.build()[name], (
        f"{name} is stale: run python tests/vectors/generate.py"
    )


def test_readme_names_every_vector_file() -> None:
    readme = (VECTOR_DIR / "README.md").read_text(encoding="utf-8")
    for name in gen.build():
        assert name in readme


def test_every_error_code_has_a_failing_vector() -> None:
    covered = {c["code"] for c in ENVELOPES["bad"]}
    covered |= {c["code"] for c in ENVELOPES["ingest"] if "code" in c}
    covered |= {c["code"] for c in load("directory.json")["bad"]}
    covered |= {c["code"] for c in load("tokens.json")["service_bad"]}
    covered |= {c["code"] for c in load("canonicalization.json")["bad"]}
    covered |= {c["code"] for c in load("strictjson.json")["bad"]}
    assert covered == set(errors.ERROR_CLASSES)
    assert set(errors.CODES) <= {c["code"] for c in ENVELOPES["bad"]}


# -- canonicalization --------------------------------------------------------------------------


@pytest.mark.parametrize("case", load("canonicalization.json")["good"], ids=lambda c: c["name"])
def test_canonicalization_vector(case: dict[str, Any]) -> None:
    value = json.loads(case["input"])
    expected = bytes.fromhex(case["expected_hex"])
    assert expected.decode("utf-8") == case["expected_utf8"]
    assert canonicalize(value) == expected
    assert canonicalize_reference(value) == expected


@pytest.mark.parametrize("case", load("canonicalization.json")["bad"], ids=lambda c: c["name"])
def test_canonicalization_failure_vector(case: dict[str, Any]) -> None:
    value = json.loads(case["input"])
    for fn in (canonicalize, canonicalize_reference):
        with pytest.raises(ProtocolError) as info:
            fn(value)
        assert info.value.code == case["code"]


@pytest.mark.parametrize("case", load("strictjson.json")["bad"], ids=lambda c: c["name"])
def test_strictjson_failure_vector(case: dict[str, Any]) -> None:
    loads = pytest.importorskip("federation.strictjson").loads

    with pytest.raises(ProtocolError) as info:
        loads(bytes.fromhex(case["input_hex"]))
    assert info.value.code == case["code"]


# -- envelopes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ENVELOPES["good"], ids=lambda c: c["name"])
def test_good_envelope_verifies(case: dict[str, Any]) -> None:
    record = verify(case["envelope"], directory(), NOW, registry())
    assert record.digest == case["digest"]
    assert record.envelope.signing_input() == case["signing_input_utf8"].encode("utf-8")
    assert record.envelope.to_dict() == case["envelope"]


@pytest.mark.parametrize("case", ENVELOPES["bad"], ids=lambda c: c["name"])
def test_bad_envelope_fails_with_its_code(case: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        verify(case["envelope"], directory(), NOW, registry(), feed_origin=case.get("feed_origin"))
    assert info.value.code == case["code"], info.value.detail
    if "pointers" in case:
        assert isinstance(info.value, errors.SchemaInvalid)
        assert {e["pointer"] for e in info.value.errors} == set(case["pointers"])


@pytest.mark.parametrize("case", ENVELOPES["ingest"], ids=lambda c: c["name"])
def test_ingest_vector(case: dict[str, Any]) -> None:
    record = verify(case["incoming"], directory(), NOW, registry())
    if "groups" in case:  # the hub's sharing groups (DESIGN §15)
        envelope = record.envelope
        if "code" in case:
            with pytest.raises(errors.GroupInvalid):
                check_group_member(envelope.visibility, envelope.origin, envelope.deleted, case["groups"])
        else:
            check_group_member(envelope.visibility, envelope.origin, envelope.deleted, case["groups"])
    held = Held(**case["held"]) if case["held"] else None
    decision = decide(record, held)
    assert decision == Decision(case["decision"])
    if decision is Decision.EQUIVOCATION:
        assert held is not None
        assert record.digest == case["incoming_digest"]
        assert equivocation_error(record, held).code == case["code"]


# -- directories, tokens -------------------------------------------------------------------------


def test_directory_vectors() -> None:
    doc = load("directory.json")
    now = parse_timestamp(doc["now"])
    good = verify_directory(doc["good"], now)
    assert good.to_dict() == doc["good"]
    previous = verify_directory(doc["previous"], now)
    assert verify_directory(doc["good"], now, previous=previous).serial == good.serial
    assert verify_directory(doc["newer"], now, previous=good).serial == good.serial + 1
    # readers ignore fields they do not know and keep them: the newer hub's signature verifies
    tolerant = verify_directory(doc["newer-hub-fields"], now, previous=good)
    assert tolerant.to_dict() == doc["newer-hub-fields"] and tolerant.accepts("organisation/2")


@pytest.mark.parametrize("case", load("directory.json")["bad"], ids=lambda c: c["name"])
def test_bad_directory_vector(case: dict[str, Any]) -> None:
    doc = load("directory.json")
    now = parse_timestamp(doc["now"])
    previous: Directory | None = verify_directory(doc[case["previous"]], now) if "previous" in case else None
    with pytest.raises(ProtocolError) as info:
        verify_directory(case["directory"], now, previous=previous)
    assert info.value.code == case["code"], info.value.detail


def _resolver(kid: str) -> Any:
    key = directory().key(kid)
    return key.key if key is not None else None


def test_token_vectors() -> None:
    doc = load("tokens.json")
    now = parse_timestamp(doc["now"])
    good = doc["service"]["good"]
    claims = verify_service_token(good["token"], _resolver, doc["audience"], now)
    assert claims["kid"] == good["kid"] and claims["iss"] == "DE"
    enroll = doc["enrollment"]
    hub = directory().hub.key(enroll["hub_kid"])
    assert hub is not None
    assert peek_enrollment_token(enroll["token"])["jti"] == enroll["jti"]
    assert verify_enrollment_token(enroll["token"], {hub.kid: hub.key}, now)["sub"] == "FR"
    verify_enrollment_proof(b64url_decode(enroll["node_public_key"]), enroll["jti"], enroll["proof"])
    rotation = doc["rotation"]
    old = directory().key(rotation["old_kid"])
    assert old is not None
    new_kid, new_raw = verify_rotation_statement(rotation, old.key)
    assert directory().key(new_kid) is not None
    public_key_from_raw(new_raw)


@pytest.mark.parametrize("case", load("tokens.json")["service_bad"], ids=lambda c: c["name"])
def test_bad_token_vector(case: dict[str, Any]) -> None:
    doc = load("tokens.json")
    with pytest.raises(ProtocolError) as info:
        verify_service_token(case["token"], _resolver, doc["audience"], parse_timestamp(doc["now"]))
    assert info.value.code == case["code"]


def test_transparency_log_vectors() -> None:
    """translog.json: leaves, roots and proofs recomputed naively (RFC 9162 §2.1), every proof verifying,
    and the signed tree head and erasure receipt checked against the hub key."""
    import hashlib

    from federation import merkle
    from federation.translog import verify_head, verify_receipt

    doc = load("translog.json")
    leaves = [bytes.fromhex(e["leaf_hash"]) for e in doc["entries"]]
    for e, leaf in zip(doc["entries"], leaves, strict=True):
        assert hashlib.sha256(b"\x00" + e["entry"].encode()).digest() == leaf

    def mth(items: list[bytes]) -> bytes:
        if not items:
            return hashlib.sha256(b"").digest()
        if len(items) == 1:
            return items[0]
        k = 1 << ((len(items) - 1).bit_length() - 1)
        return hashlib.sha256(b"\x01" + mth(items[:k]) + mth(items[k:])).digest()

    roots = {int(n): bytes.fromhex(r) for n, r in doc["roots"].items()}
    assert all(roots[n] == mth(leaves[:n]) for n in roots)
    for case in doc["inclusion"]:
        path = [bytes.fromhex(h) for h in case["path"]]
        assert merkle.verify_inclusion(leaves[case["index"]], case["index"], case["size"], path, roots[case["size"]])
    for case in doc["consistency"]:
        path = [bytes.fromhex(h) for h in case["path"]]
        assert merkle.verify_consistency(case["from"], case["to"], path, roots[case["from"]], roots[case["to"]])
    hub = next(k for k in load("keys.json")["keys"] if k["label"] == doc["head"]["key"])
    keys = {hub["kid"]: public_key_from_raw(b64url_decode(hub["public_key"]))}
    head = verify_head(doc["head"]["signed"], keys)
    assert head.size == len(leaves) and head.root == roots[len(leaves)]
    assert verify_receipt(doc["erasure_receipt"]["signed"], keys)["log_index"] == 7
