"""Error classes: one root, one class per stable code, codes in DESIGN order."""

from __future__ import annotations

import pytest

from federation import errors


def test_every_class_has_a_unique_code_under_one_root() -> None:
    classes = list(errors.ERROR_CLASSES.values())
    assert len({c.code for c in classes}) == len(classes)
    for code, cls in errors.ERROR_CLASSES.items():
        assert issubclass(cls, errors.ProtocolError)
        assert cls.code == code


def test_verification_codes_in_design_order() -> None:
    assert errors.CODES == (
        "envelope_invalid",
        "canonicalization_error",
        "unknown_origin",
        "origin_mismatch",
        "unknown_key",
        "key_not_yet_valid",
        "key_expired",
        "key_revoked",
        "issued_in_future",
        "signature_invalid",
        "schema_invalid",
        "consent_missing",
    )


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (errors.TokenInvalid, "unauthenticated"),
        (errors.MalformedJSON, "malformed_json"),
        (errors.Equivocation, "equivocation"),
        (errors.DirectoryRollback, "directory_rollback"),
    ],
)
def test_codes_of_non_verification_errors(cls: type[errors.ProtocolError], code: str) -> None:
    assert cls.code == code


def test_detail_str_and_dict() -> None:
    e = errors.KeyRevoked("issued after revocation")
    assert e.detail == "issued after revocation"
    assert str(e) == "key_revoked: issued after revocation"
    assert e.to_dict() == {"code": "key_revoked", "detail": "issued after revocation"}
    assert errors.UnknownKey().detail == "unknown_key"


def test_schema_invalid_carries_pointers() -> None:
    e = errors.SchemaInvalid("bad", [{"pointer": "/a/0", "message": "nope"}])
    assert e.errors == [{"pointer": "/a/0", "message": "nope"}]
    assert e.to_dict()["errors"] == [{"pointer": "/a/0", "message": "nope"}]
    assert errors.SchemaInvalid().errors == []
