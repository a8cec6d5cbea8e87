"""Protocol errors: one root, one class per stable code.

Every failure the protocol can report is a :class:`ProtocolError` subclass whose class attribute
``code`` is the machine-readable string of DESIGN §3/§4/§9 (the HTTP layer maps classes to
status codes in one place). Third-party exceptions never escape ``federation/``: they are wrapped
(``raise SignatureInvalid(...) from e``) so callers only ever catch ``ProtocolError``.
"""

from __future__ import annotations

from typing import Any, ClassVar, NotRequired, TypedDict


class SchemaErrorItem(TypedDict):
    """One JSON Schema failure: where in the instance, and what is wrong.

    ``keyword``: the JSON Schema keyword that failed (``required``, ``minItems``, ``pattern``, …), when
    a schema validator reported it — for clients that say it in their own words (the portal's forms).
    """

    pointer: str
    message: str
    keyword: NotRequired[str]


class ProtocolError(Exception):
    """Root of every protocol failure.

    ``code`` is the stable code string (class attribute); ``detail`` a human-readable explanation
    that may change between releases and must not be matched on.
    """

    code: ClassVar[str] = "protocol_error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code)
        self.detail = detail or self.code

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary ``{"code", "detail"}`` (subclasses may add fields)."""
        return {"code": self.code, "detail": self.detail}


# -- record verification, in the order of DESIGN §3 ----------------------------------------------


class EnvelopeInvalid(ProtocolError):
    """The envelope is not structurally valid (missing/extra/wrong-typed field, bad id form, ...)."""

    code = "envelope_invalid"


class CanonicalizationError(ProtocolError):
    """The value cannot be represented in RFC 8785 canonical JSON (NaN, ±Inf, |int| > 2^53−1,
    lone surrogates, non-JSON types)."""

    code = "canonicalization_error"


class UnknownOrigin(ProtocolError):
    """The record's origin is not a node of the directory."""

    code = "unknown_origin"


class OriginMismatch(ProtocolError):
    """The id, the kid prefix or the feed's node disagree with the record's ``origin``."""

    code = "origin_mismatch"


class UnknownKey(ProtocolError):
    """The signing kid is not among the origin node's keys."""

    code = "unknown_key"


class KeyNotYetValid(ProtocolError):
    """The record was issued before the key's ``not_before``."""

    code = "key_not_yet_valid"


class KeyExpired(ProtocolError):
    """The record was issued after the key's ``not_after``."""

    code = "key_expired"


class KeyRevoked(ProtocolError):
    """The record was issued at or after the key's ``revoked_at``."""

    code = "key_revoked"


class IssuedInFuture(ProtocolError):
    """``issued_at`` lies further in the future than the allowed clock skew."""

    code = "issued_in_future"


class SignatureInvalid(ProtocolError):
    """The Ed25519 signature does not verify over the signing input."""

    code = "signature_invalid"


class SchemaInvalid(ProtocolError):
    """The instance fails its JSON Schema; ``errors`` lists every failure with a JSON pointer."""

    code = "schema_invalid"

    def __init__(self, detail: str = "", errors: list[SchemaErrorItem] | None = None) -> None:
        super().__init__(detail)
        self.errors: list[SchemaErrorItem] = list(errors or [])

    def to_dict(self) -> dict[str, Any]:
        """``{"code", "detail", "errors": [{"pointer", "message"}]}``."""
        return {**super().to_dict(), "errors": [dict(e) for e in self.errors]}


class ConsentMissing(ProtocolError):
    """A personal-data record is shared (network/public) without consent covering that visibility."""

    code = "consent_missing"


class GroupInvalid(ProtocolError):
    """A ``group:<name>`` visibility naming no group its origin is a member of, or a malformed group
    name (DESIGN §15)."""

    code = "group_invalid"


# -- ingest, parsing, trust -----------------------------------------------------------------------


class Equivocation(ProtocolError):
    """The origin signed two different records with the same id and version."""

    code = "equivocation"


class IssuedAtRegressed(ProtocolError):
    """A newer version claims an ``issued_at`` strictly earlier than the version the hub holds
    (DESIGN §10: a backdated version, e.g. signed by a stolen key to pass a revocation)."""

    code = "issued_at_regressed"


class MalformedJSON(ProtocolError):
    """Bytes that are not strict JSON (invalid UTF-8, duplicate keys, NaN, too deep, ...)."""

    code = "malformed_json"


class DirectoryInvalid(ProtocolError):
    """The directory is malformed, or not signed by a trusted hub key."""

    code = "directory_invalid"


class DirectoryRollback(ProtocolError):
    """The directory's serial is lower than (or equal with other content to) the one held."""

    code = "directory_rollback"


class DirectoryExpired(ProtocolError):
    """The directory has expired, or claims a validity window longer than 7 days."""

    code = "directory_expired"


class TokenInvalid(ProtocolError):
    """A JWT, enrollment proof or rotation statement failed verification (HTTP 401)."""

    code = "unauthenticated"


#: Verification codes in the order DESIGN §3 checks them; ``verify()`` reports the first that applies.
CODES: tuple[str, ...] = (
    EnvelopeInvalid.code,
    CanonicalizationError.code,
    UnknownOrigin.code,
    OriginMismatch.code,
    UnknownKey.code,
    KeyNotYetValid.code,
    KeyExpired.code,
    KeyRevoked.code,
    IssuedInFuture.code,
    SignatureInvalid.code,
    SchemaInvalid.code,
    ConsentMissing.code,
)

#: Every ProtocolError subclass by its code.
ERROR_CLASSES: dict[str, type[ProtocolError]] = {
    cls.code: cls
    for cls in (
        EnvelopeInvalid,
        CanonicalizationError,
        UnknownOrigin,
        OriginMismatch,
        UnknownKey,
        KeyNotYetValid,
        KeyExpired,
        KeyRevoked,
        IssuedInFuture,
        SignatureInvalid,
        SchemaInvalid,
        ConsentMissing,
        GroupInvalid,
        Equivocation,
        MalformedJSON,
        DirectoryInvalid,
        DirectoryRollback,
        DirectoryExpired,
        TokenInvalid,
    )
}
