"""Envelope and directory schemas (DESIGN §3, §4)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schemas import load_schema_documents

Check = Callable[[str, Any], list[tuple[str, str]]]

ENVELOPE = "https://schemas.ncc-federation.eu/envelope/1"
DIRECTORY = "https://schemas.ncc-federation.eu/directory/1"
UUID = "0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a11"


def b64url(data: bytes) -> str:
    """Unpadded base64url, as the protocol writes keys and signatures."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_KEY = Ed25519PrivateKey.generate()
_RAW = _KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
PUBLIC_KEY = b64url(_RAW)
KID = "DE:" + b64url(hashlib.sha256(_RAW).digest())[:16]
HUB_KID = "hub:" + KID[3:]
SIG = {"alg": "Ed25519", "kid": KID, "value": b64url(_KEY.sign(b"anything"))}


def envelope(**changes: Any) -> dict[str, Any]:
    """A schema-valid envelope (the signature is well-formed, not verified here)."""
    base: dict[str, Any] = {
        "ncc": 1,
        "id": f"urn:ncc:DE:organisation:{UUID}",
        "type": "organisation",
        "schema": "organisation/1",
        "origin": "DE",
        "version": 3,
        "issued_at": "2026-11-26T22:50:01Z",
        "visibility": "public",
        "deleted": False,
        "payload": {"legal_name": "Cyber Lab GmbH"},
        "sig": dict(SIG),
    }
    base.update(changes)
    return base


def key(**changes: Any) -> dict[str, Any]:
    """A directory key entry."""
    return {
        "kid": KID,
        "public_key": PUBLIC_KEY,
        "not_before": "2026-01-01T00:00:00Z",
        "not_after": None,
        "revoked_at": None,
        **changes,
    }


def directory(**changes: Any) -> dict[str, Any]:
    """A schema-valid directory."""
    base: dict[str, Any] = {
        "ncc": 1,
        "serial": 7,
        "issued_at": "2026-11-26T00:00:00Z",
        "expires_at": "2026-12-03T00:00:00Z",
        "hub": {"url": "https://hub.ncc-federation.eu", "keys": [key(kid=HUB_KID)]},
        "nodes": [
            {
                "country": "DE",
                "url": "https://ncc.example.de",
                "status": "active",
                "mode": "replicate",
                "keys": [key(not_after="2026-06-01T00:00:00Z"), key(revoked_at="2026-02-01T12:00:00Z")],
            },
            {
                "country": "FR",
                "url": "http://127.0.0.1:8081",
                "status": "suspended",
                "mode": "query-only",
                "keys": [key()],
            },
        ],
        "sig": {**SIG, "kid": HUB_KID},
    }
    base.update(changes)
    return base


def pointers(found: list[tuple[str, str]]) -> list[str]:
    """The distinct JSON pointers of the errors."""
    return sorted({where for where, _ in found})


def test_generated_key_material_has_the_pinned_lengths() -> None:
    assert len(PUBLIC_KEY) == 43 and len(SIG["value"]) == 86


def test_design_envelope_validates(errors: Check) -> None:
    assert errors(ENVELOPE, envelope()) == []


@pytest.mark.parametrize("reason", ["withdrawn", "erased", "revoked"])
def test_tombstone_validates(reason: str, errors: Check) -> None:
    assert errors(ENVELOPE, envelope(deleted=True, version=4, payload={"reason": reason})) == []


@pytest.mark.parametrize(
    "payload", [{}, {"reason": "bored"}, {"reason": "erased", "legal_name": "x"}, {"legal_name": "x"}]
)
def test_tombstone_payload_is_exactly_a_reason(payload: dict[str, Any], errors: Check) -> None:
    found = pointers(errors(ENVELOPE, envelope(deleted=True, payload=payload)))
    assert found in (["/payload"], ["/payload/reason"])


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"ncc": 2}, "/ncc"),
        ({"ncc": "1"}, "/ncc"),
        ({"id": f"urn:ncc:de:organisation:{UUID}"}, "/id"),
        ({"id": f"urn:ncc:DE:person:{UUID}"}, "/id"),
        ({"id": f"urn:ncc:DE:organisation:{UUID.upper()}"}, "/id"),
        ({"id": f"urn:ncc:DE:organisation:{UUID}\n"}, "/id"),
        ({"type": "person"}, "/type"),
        ({"schema": "organisation/0"}, "/schema"),
        ({"schema": "expert/1"}, "/schema"),
        ({"origin": "Germany"}, "/origin"),
        ({"version": 0}, "/version"),
        ({"version": 1.5}, "/version"),
        ({"version": "3"}, "/version"),
        ({"issued_at": "2026-11-26T22:50:01.123Z"}, "/issued_at"),
        ({"issued_at": "2026-11-26T22:50:01+00:00"}, "/issued_at"),
        ({"visibility": "secret"}, "/visibility"),
        ({"deleted": "false"}, "/deleted"),
        ({"payload": []}, "/payload"),
        ({"sig": {**SIG, "alg": "EdDSA"}}, "/sig/alg"),
        ({"sig": {**SIG, "kid": "DE:short"}}, "/sig/kid"),
        ({"sig": {**SIG, "value": SIG["value"] + "="}}, "/sig/value"),
        ({"sig": {**SIG, "value": SIG["value"][:-1] + "+"}}, "/sig/value"),
        ({"sig": {**SIG, "extra": 1}}, "/sig"),
        ({"redacted": []}, ""),
    ],
)
def test_envelope_rules(changes: dict[str, Any], where: str, errors: Check) -> None:
    assert pointers(errors(ENVELOPE, envelope(**changes))) == [where]


@pytest.mark.parametrize(
    "field",
    [
        "ncc",
        "id",
        "type",
        "schema",
        "origin",
        "version",
        "issued_at",
        "visibility",
        "deleted",
        "payload",
        "sig",
    ],
)
def test_envelope_fields_required(field: str, errors: Check) -> None:
    body = envelope()
    del body[field]
    assert pointers(errors(ENVELOPE, body)) == [""]


def test_directory_validates(errors: Check) -> None:
    assert errors(DIRECTORY, directory()) == []
    assert errors(DIRECTORY, directory(nodes=[])) == []


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"serial": 0}, "/serial"),
        ({"serial": 1.0001}, "/serial"),
        ({"expires_at": "2026-12-03"}, "/expires_at"),
        ({"hub": {"url": "https://hub.example.eu", "keys": []}}, "/hub/keys"),
        ({"hub": {"url": "hub.example.eu", "keys": [key(kid=HUB_KID)]}}, "/hub/url"),
        (
            {
                "nodes": [
                    {
                        "country": "DE",
                        "url": "https://x.de",
                        "status": "paused",
                        "mode": "replicate",
                        "keys": [key()],
                    }
                ]
            },
            "/nodes/0/status",
        ),
        (
            {
                "nodes": [
                    {
                        "country": "DE",
                        "url": "https://x.de",
                        "status": "active",
                        "mode": "push",
                        "keys": [key()],
                    }
                ]
            },
            "/nodes/0/mode",
        ),
        (
            {
                "nodes": [
                    {
                        "country": "DE",
                        "url": "https://x.de",
                        "status": "active",
                        "mode": "replicate",
                        "keys": [key(public_key=PUBLIC_KEY + "A")],
                    }
                ]
            },
            "/nodes/0/keys/0/public_key",
        ),
        (
            {
                "nodes": [
                    {
                        "country": "DE",
                        "url": "https://x.de",
                        "status": "active",
                        "mode": "replicate",
                        "keys": [key(not_after="soon")],
                    }
                ]
            },
            "/nodes/0/keys/0/not_after",
        ),
        (
            {
                "nodes": [
                    {
                        "country": "DE",
                        "url": "https://x.de",
                        "status": "active",
                        "mode": "replicate",
                        "keys": [
                            {"kid": KID, "public_key": PUBLIC_KEY, "not_before": "2026-01-01T00:00:00Z"}
                        ],
                    }
                ]
            },
            "/nodes/0/keys/0",
        ),
        ({"extra": True}, ""),
        ({"hub": {"url": "https://hub.example.eu", "keys": [key()]}}, "/hub/keys/0/kid"),
        ({"sig": {**SIG, "kid": KID}}, "/sig/kid"),
    ],
)
def test_directory_rules(changes: dict[str, Any], where: str, errors: Check) -> None:
    assert pointers(errors(DIRECTORY, directory(**changes))) == [where]


def test_validator_from_the_document_itself_works_too(registry: Any) -> None:
    """The registry resolves $refs whether one validates via {"$ref": id} or the document itself."""
    import jsonschema_rs

    from federation.formats import CUSTOM_FORMATS

    document = next(d for d in load_schema_documents() if d["$id"] == ENVELOPE)
    validator = jsonschema_rs.validator_for(
        document, formats=CUSTOM_FORMATS, validate_formats=True, registry=registry
    )
    assert validator.is_valid(envelope())
    assert not validator.is_valid(envelope(origin="de"))
