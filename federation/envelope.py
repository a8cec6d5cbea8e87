"""The signed record envelope (DESIGN §3) and its one signing input.

An :class:`Envelope` is immutable and valid by construction: ``Envelope.from_dict`` refuses missing,
extra or wrong-typed fields with :class:`~federation.errors.EnvelopeInvalid`, and ``to_dict`` gives
back exactly the dict it was built from. Unknown fields are *refused* rather than kept (unlike
python-tuf): the signature covers every field, and a field this version does not understand
cannot be checked. A new field means a new ``ncc`` version.

Only :func:`record_signing_input` produces the bytes that get signed
(``b"ncc-record-v1\\n" + JCS(envelope without "sig")``); :func:`sign_record` and
``federation.verify`` both go through :meth:`Envelope.signing_input`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.canonical import MAX_SAFE_INTEGER, canonicalize
from federation.errors import EnvelopeInvalid
from federation.groups import is_visibility
from federation.keys import b64url_decode, b64url_encode, parse_kid
from federation.timefmt import format_timestamp, parse_timestamp

PROTOCOL_VERSION = 1
RECORD_SIGNING_CONTEXT = b"ncc-record-v1\n"
#: Record types this version defines schemas for (the envelope itself accepts any well-formed type
#: name; a type without a schema then fails ``schema_invalid``).
RECORD_TYPES = ("organisation", "expert", "project", "facility")
#: The plain visibilities; a record may also be ``group:<name>`` (DESIGN §15, federation/groups.py).
VISIBILITIES = ("public", "network", "national")
TOMBSTONE_REASONS = ("withdrawn", "erased", "revoked")
SIGNATURE_ALG = "Ed25519"
ENVELOPE_FIELDS = frozenset(
    ("ncc", "id", "type", "schema", "origin", "version", "issued_at", "visibility", "deleted", "payload", "sig")
)
SIGNATURE_FIELDS = frozenset(("alg", "kid", "value"))

_TYPE = r"[a-z][a-z0-9-]{0,31}"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_RECORD_ID = re.compile(rf"\Aurn:ncc:([A-Z]{{2}}):({_TYPE}):({_UUID})\Z")
_ORIGIN = re.compile(r"\A[A-Z]{2}\Z")
_TYPE_RE = re.compile(rf"\A{_TYPE}\Z")
_SCHEMA = re.compile(rf"\A({_TYPE})/([1-9][0-9]{{0,5}})\Z")


def record_id(origin: str, type: str, uuid: str) -> str:
    """``urn:ncc:<origin>:<type>:<uuid>``.

    Raises:
        EnvelopeInvalid: the result would not be a well-formed record id.
    """
    rid = f"urn:ncc:{origin}:{type}:{uuid}"
    parse_record_id(rid)
    return rid


def parse_record_id(rid: str) -> tuple[str, str, str]:
    """Split a record id into ``(origin, type, uuid)``.

    Raises:
        EnvelopeInvalid: not ``urn:ncc:<XX>:<type>:<lower-case uuid>``.
    """
    m = _RECORD_ID.match(rid) if type(rid) is str else None
    if m is None:
        raise EnvelopeInvalid(f"id {rid!r} is not urn:ncc:<origin>:<type>:<uuid>")
    return m.group(1), m.group(2), m.group(3)


def record_signing_input(fields: Mapping[str, Any]) -> bytes:
    """The bytes an origin signs: ``b"ncc-record-v1\\n" + JCS(fields without "sig")``.

    Raises:
        CanonicalizationError: a field value cannot be canonicalised.
    """
    unsigned = dict(fields)
    unsigned.pop("sig", None)
    return RECORD_SIGNING_CONTEXT + canonicalize(unsigned)


_ZERO = timedelta(0)


@dataclass(frozen=True, slots=True)
class Signature:
    """``{"alg": "Ed25519", "kid", "value"}``; ``raw`` is the decoded 64-byte signature."""

    alg: str
    kid: str
    value: str
    raw: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.alg != SIGNATURE_ALG or type(self.alg) is not str:
            raise EnvelopeInvalid("sig.alg must be 'Ed25519'")
        try:
            parse_kid(self.kid)
            raw = b64url_decode(self.value)
        except ValueError as e:
            raise EnvelopeInvalid(f"sig: {e}") from e
        if len(raw) != 64:
            raise EnvelopeInvalid("sig.value must encode 64 bytes")
        object.__setattr__(self, "raw", raw)

    @property
    def kid_prefix(self) -> str:
        """The part of the kid before the colon (the signer's country)."""
        return self.kid.partition(":")[0]

    @classmethod
    def from_dict(cls, data: Any) -> Signature:
        """Build from the ``sig`` object.

        Raises:
            EnvelopeInvalid: not an object with exactly alg, kid, value, all valid.
        """
        if type(data) is not dict or data.keys() != SIGNATURE_FIELDS:
            raise EnvelopeInvalid("sig must be an object with exactly alg, kid, value")
        return cls(data["alg"], data["kid"], data["value"])

    def to_dict(self) -> dict[str, str]:
        """The ``sig`` object."""
        return {"alg": self.alg, "kid": self.kid, "value": self.value}


@dataclass(frozen=True, slots=True)
class Envelope:
    """A signed record version. Valid by construction (raises :class:`EnvelopeInvalid`).

    ``payload`` is the caller's dict, not copied: treat it as read-only.
    """

    ncc: int
    id: str
    type: str
    schema: str
    origin: str
    version: int
    issued_at: datetime
    visibility: str
    deleted: bool
    payload: dict[str, Any]
    sig: Signature

    def __post_init__(self) -> None:
        # Plain if/raise: this runs for every record at ingest, so no message is built unless needed.
        if type(self.ncc) is not int or self.ncc != PROTOCOL_VERSION:
            raise EnvelopeInvalid("ncc must be 1")
        id_origin, id_type, _ = parse_record_id(self.id)
        # Equal to the id's (already validated) parts is the common case and skips two regexes;
        # a well-formed value that differs is origin_mismatch, decided by the verifier.
        if self.type != id_type and (type(self.type) is not str or not _TYPE_RE.match(self.type)):
            raise EnvelopeInvalid("type is not a record type name")
        if self.origin != id_origin and (type(self.origin) is not str or not _ORIGIN.match(self.origin)):
            raise EnvelopeInvalid("origin must be two capital letters")
        if type(self.schema) is not str or (
            self.schema != self.type + "/1"
            and ((m := _SCHEMA.match(self.schema)) is None or m.group(1) != self.type)
        ):
            raise EnvelopeInvalid("schema must be '<type>/<version>' naming the record's type")
        if type(self.version) is not int or not 1 <= self.version <= MAX_SAFE_INTEGER:
            raise EnvelopeInvalid("version must be an integer ≥ 1")
        issued_at = self.issued_at
        if not isinstance(issued_at, datetime) or issued_at.utcoffset() != _ZERO or issued_at.microsecond:
            raise EnvelopeInvalid("issued_at must be a whole-second UTC datetime")
        if type(self.visibility) is not str or not is_visibility(self.visibility):
            raise EnvelopeInvalid("visibility must be public, network, national or group:<name>")
        if type(self.deleted) is not bool:
            raise EnvelopeInvalid("deleted must be a boolean")
        if type(self.payload) is not dict:
            raise EnvelopeInvalid("payload must be an object")
        if self.deleted:
            reason = self.payload.get("reason")
            if self.payload.keys() != {"reason"} or type(reason) is not str or reason not in TOMBSTONE_REASONS:
                raise EnvelopeInvalid("a tombstone's payload must be exactly {'reason': withdrawn|erased|revoked}")
        if not isinstance(self.sig, Signature):
            raise EnvelopeInvalid("sig must be a Signature")

    # -- conversions ------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any) -> Envelope:
        """Build from the wire form.

        Raises:
            EnvelopeInvalid: not an object with exactly the envelope fields, each valid.
        """
        if type(data) is not dict:
            raise EnvelopeInvalid("envelope must be a JSON object")
        _check_keys(data, ENVELOPE_FIELDS)
        try:
            issued_at = parse_timestamp(data["issued_at"])
        except ValueError as e:
            raise EnvelopeInvalid(f"issued_at: {e}") from e
        return cls(  # positional: measurably cheaper than keywords on the ingest path
            data["ncc"],
            data["id"],
            data["type"],
            data["schema"],
            data["origin"],
            data["version"],
            issued_at,
            data["visibility"],
            data["deleted"],
            data["payload"],
            Signature.from_dict(data["sig"]),
        )

    def unsigned_dict(self) -> dict[str, Any]:
        """The wire form without ``sig`` (what the signature covers)."""
        return {
            "ncc": self.ncc,
            "id": self.id,
            "type": self.type,
            "schema": self.schema,
            "origin": self.origin,
            "version": self.version,
            "issued_at": format_timestamp(self.issued_at),
            "visibility": self.visibility,
            "deleted": self.deleted,
            "payload": self.payload,
        }

    def to_dict(self) -> dict[str, Any]:
        """The wire form; ``Envelope.from_dict(d).to_dict() == d`` for every valid ``d``."""
        d = self.unsigned_dict()
        d["sig"] = self.sig.to_dict()
        return d

    # -- signing ----------------------------------------------------------------------------------

    def signing_input(self) -> bytes:
        """The signed bytes (see :func:`record_signing_input`).

        Raises:
            CanonicalizationError: the payload cannot be canonicalised.
        """
        return record_signing_input(self.unsigned_dict())

    def digest(self) -> str:
        """Hex SHA-256 of the signing input: identifies this exact content of (id, version).

        Raises:
            CanonicalizationError: the payload cannot be canonicalised.
        """
        return hashlib.sha256(self.signing_input()).hexdigest()

    @property
    def uuid(self) -> str:
        """The uuid part of the id."""
        return self.id.rsplit(":", 1)[1]


def _check_keys(data: dict[str, Any], expected: frozenset[str]) -> None:
    keys = data.keys()
    if keys != expected:
        missing = sorted(expected - keys)
        extra = sorted(str(k) for k in keys - expected)
        parts = ([f"missing {missing}"] if missing else []) + ([f"unknown {extra}"] if extra else [])
        raise EnvelopeInvalid("envelope fields: " + ", ".join(parts))


def sign_record(fields: Mapping[str, Any], private_key: Ed25519PrivateKey, kid: str) -> Envelope:
    """Sign an envelope given without ``sig`` and return the signed :class:`Envelope`.

    Signing checks structure only; whether ``kid`` belongs to ``origin`` is the verifier's rule.

    Raises:
        EnvelopeInvalid: the fields do not form a valid envelope (or already contain ``sig``).
        CanonicalizationError: the payload cannot be canonicalised.
    """
    return sign_record_with_digest(fields, private_key, kid)[0]


def sign_record_with_digest(fields: Mapping[str, Any], private_key: Ed25519PrivateKey, kid: str) -> tuple[Envelope, str]:
    """:func:`sign_record` and the envelope's :meth:`Envelope.digest`, from one canonicalisation
    of the signing input (a writer that stores the digest needs both).

    Raises:
        EnvelopeInvalid, CanonicalizationError: as :func:`sign_record`.
    """
    if "sig" in fields:
        raise EnvelopeInvalid("fields to sign must not contain 'sig'")
    placeholder = {"alg": SIGNATURE_ALG, "kid": kid, "value": b64url_encode(bytes(64))}
    unsigned = Envelope.from_dict({**fields, "sig": placeholder})
    data = unsigned.signing_input()
    signature = private_key.sign(data)
    signed = dataclasses.replace(unsigned, sig=Signature(SIGNATURE_ALG, kid, b64url_encode(signature)))
    return signed, hashlib.sha256(data).hexdigest()
