"""The transparency log's entries and signed tree heads (DESIGN §14) — pure.

An entry is the JCS of ``{"id", "version", "origin", "deleted", "digest"}`` for a record version
(``digest`` = lowercase hex SHA-256 of the record's signing input, the digest the hub compares at
ingest), or of ``{"directory": serial, "digest"}`` for a signed directory. Entries carry no personal
data, so they outlive an erasure. A tree head is ``{"size", "root", "timestamp", "sig"}``, signed by a
hub key over ``b"ncc-log-head-v1\\n" + JCS(head without sig)``; hashes travel as base64url without
padding. An erasure receipt ``{"id", "version", "purged_at", "log_index", "sig"}`` is signed over
``b"ncc-erasure-v1\\n" + JCS(receipt without sig)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from federation.canonical import canonicalize
from federation.keys import b64url_decode, b64url_encode
from federation.timefmt import format_timestamp, parse_timestamp

HEAD_CONTEXT = b"ncc-log-head-v1\n"
ERASURE_CONTEXT = b"ncc-erasure-v1\n"


class LogError(ValueError):
    """A tree head, proof or receipt that does not hold (malformed, or a bad signature)."""


def record_entry(record_id: str, version: int, origin: str, deleted: bool, digest: str) -> bytes:
    """The log entry of one accepted record version (bytes hashed into the leaf)."""
    return canonicalize({"id": record_id, "version": version, "origin": origin, "deleted": deleted,
                         "digest": digest})


def directory_entry(serial: int, document_signing_input: bytes) -> bytes:
    """The log entry of a signed directory: its serial and the digest of its signing input."""
    return canonicalize({"directory": serial, "digest": hashlib.sha256(document_signing_input).hexdigest()})


def head_signing_input(head: Mapping[str, Any]) -> bytes:
    return HEAD_CONTEXT + canonicalize({k: v for k, v in head.items() if k != "sig"})


def receipt_signing_input(receipt: Mapping[str, Any]) -> bytes:
    return ERASURE_CONTEXT + canonicalize({k: v for k, v in receipt.items() if k != "sig"})


def _signed(unsigned: dict[str, Any], signing_input: bytes, key: Ed25519PrivateKey, kid: str) -> dict[str, Any]:
    return {**unsigned, "sig": {"alg": "Ed25519", "kid": kid, "value": b64url_encode(key.sign(signing_input))}}


def sign_head(size: int, root: bytes, timestamp: datetime, key: Ed25519PrivateKey, kid: str) -> dict[str, Any]:
    head = {"size": size, "root": b64url_encode(root), "timestamp": format_timestamp(timestamp)}
    return _signed(head, head_signing_input(head), key, kid)


def sign_receipt(record_id: str, version: int, purged_at: datetime, log_index: int, key: Ed25519PrivateKey,
                 kid: str) -> dict[str, Any]:
    receipt = {"id": record_id, "version": version, "purged_at": format_timestamp(purged_at),
               "log_index": log_index}
    return _signed(receipt, receipt_signing_input(receipt), key, kid)


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes
    timestamp: datetime
    kid: str


def _verify_sig(doc: Mapping[str, Any], signing_input: bytes, keys: Mapping[str, Ed25519PublicKey]) -> str:
    sig = doc.get("sig")
    if not isinstance(sig, Mapping) or sig.get("alg") != "Ed25519" or not isinstance(sig.get("value"), str):
        raise LogError("missing or malformed sig")
    kid = sig.get("kid")
    if not isinstance(kid, str) or kid not in keys:
        raise LogError(f"signed by an unknown key {kid!r}")
    try:
        keys[kid].verify(b64url_decode(sig["value"]), signing_input)
    except (InvalidSignature, ValueError) as exc:
        raise LogError("bad signature") from exc
    return kid


def verify_head(doc: Any, keys: Mapping[str, Ed25519PublicKey]) -> TreeHead:
    """Check a signed tree head against the hub keys (kid → public key) and return it.

    Raises:
        LogError: malformed, or not signed by one of ``keys``.
    """
    if not isinstance(doc, Mapping) or set(doc) != {"size", "root", "timestamp", "sig"}:
        raise LogError("a tree head has exactly size, root, timestamp and sig")
    size, root, timestamp = doc["size"], doc["root"], doc["timestamp"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not isinstance(root, str):
        raise LogError("size must be a whole number and root a base64url hash")
    try:
        raw_root, when = b64url_decode(root), parse_timestamp(timestamp)
    except (ValueError, TypeError) as exc:
        raise LogError("root or timestamp malformed") from exc
    if len(raw_root) != 32:
        raise LogError("root must be 32 bytes")
    kid = _verify_sig(doc, head_signing_input(doc), keys)
    return TreeHead(size, raw_root, when, kid)


def verify_receipt(doc: Any, keys: Mapping[str, Ed25519PublicKey]) -> dict[str, Any]:
    """Check an erasure receipt's form and signature; return it.

    Raises:
        LogError: malformed, or not signed by one of ``keys``.
    """
    if not isinstance(doc, Mapping) or set(doc) != {"id", "version", "purged_at", "log_index", "sig"}:
        raise LogError("a receipt has exactly id, version, purged_at, log_index and sig")
    _verify_sig(doc, receipt_signing_input(doc), keys)
    return dict(doc)


def encode_path(path: list[bytes]) -> list[str]:
    return [b64url_encode(p) for p in path]


def decode_path(items: Any) -> list[bytes]:
    """A proof path from the wire (at most 64 hashes of 32 bytes).

    Raises:
        LogError: anything else.
    """
    if not isinstance(items, list) or len(items) > 64:
        raise LogError("a path is a list of at most 64 hashes")
    try:
        out = [b64url_decode(i) for i in items]
    except (ValueError, TypeError) as exc:
        raise LogError("a path item is not base64url") from exc
    if any(len(p) != 32 for p in out):
        raise LogError("a path item is not 32 bytes")
    return out
