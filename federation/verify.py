"""Record verification: the envelope in, the verified record out, or exactly one error code.

Checks run in the order of DESIGN §3 and the first failure is reported:

1. ``envelope_invalid`` — structure (:meth:`Envelope.from_dict`);
2. ``canonicalization_error`` — the signing input cannot be computed;
3. ``unknown_origin`` — ``origin`` is not a node of the directory;
4. ``origin_mismatch`` — id's origin or type ≠ the fields, kid prefix ≠ ``origin``, or (at ingest)
   the feed's node ≠ ``origin``;
5. ``unknown_key`` — the kid is not one of that node's keys;
6. ``key_not_yet_valid`` / ``key_expired`` / ``key_revoked`` — the key's window judged at the
   record's ``issued_at`` (not at ``now``: records signed inside a key's validity stay valid);
7. ``issued_in_future`` — ``issued_at > now + max_skew``;
8. ``signature_invalid``;
9. ``schema_invalid`` — the payload against its record schema (tombstones carry only a reason,
   already checked structurally, so they skip it);
10. ``consent_missing`` — an expert shared (network/public) without consent covering that visibility.

A *suspended* node's records still verify: suspension stops the hub pulling and serving that node,
it does not make signatures already made untrue. Deciding what to do with them is the hub's business.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from federation.directory import Directory, KeyEntry
from federation.envelope import Envelope, record_signing_input
from federation.errors import (
    ConsentMissing,
    IssuedInFuture,
    KeyExpired,
    KeyNotYetValid,
    KeyRevoked,
    OriginMismatch,
    ProtocolError,
    SchemaInvalid,
    SignatureInvalid,
    UnknownKey,
    UnknownOrigin,
)
from federation.groups import group_of
from federation.schemas import SchemaRegistry, schema_id_for, within

DEFAULT_MAX_SKEW = timedelta(minutes=5)
#: Record types holding personal data: sharing beyond the node needs the person's consent.
PERSONAL_DATA_TYPES = frozenset(("expert",))
#: Which consent scope covers which visibility.
_SCOPE_COVERS = {"public": frozenset(("public", "network")), "network": frozenset(("network",))}


@dataclass(frozen=True, slots=True)
class VerifiedRecord:
    """A record whose signature, key, schema and consent have all been checked.

    ``digest`` is the hex SHA-256 of the signing input (see :meth:`Envelope.digest`); ``key`` the
    directory key that signed it.
    """

    envelope: Envelope
    digest: str
    key: KeyEntry


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """Non-raising outcome of :func:`check`: exactly one of ``record`` and ``error`` is set."""

    record: VerifiedRecord | None
    error: ProtocolError | None

    @property
    def ok(self) -> bool:
        """True when the record verified."""
        return self.error is None


def verify(
    envelope_dict: Any,
    directory: Directory,
    now: datetime,
    registry: SchemaRegistry,
    *,
    feed_origin: str | None = None,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    received_at: datetime | None = None,
) -> VerifiedRecord:
    """Verify one envelope (wire form) against a verified directory at time ``now``.

    Args:
        envelope_dict: the parsed envelope, untrusted.
        directory: a directory that passed :func:`federation.directory.verify_directory`.
        now: the current time (aware UTC datetime).
        registry: payload schemas.
        feed_origin: at ingest, the country of the node whose feed carried the record.
        max_skew: how far in the future ``issued_at`` may lie.
        received_at: at the hub, when it received this version (DESIGN §10): a key signs nothing new
            once revoked or retired, whatever ``issued_at`` claims — the version must have been
            received before the key's ``revoked_at`` and ``not_after``.

    Raises:
        EnvelopeInvalid, CanonicalizationError, UnknownOrigin, OriginMismatch, UnknownKey,
        KeyNotYetValid, KeyExpired, KeyRevoked, IssuedInFuture, SignatureInvalid, SchemaInvalid,
        ConsentMissing: the first check that fails, in that order.
    """
    envelope = Envelope.from_dict(envelope_dict)
    # from_dict accepted exactly the wire fields with their exact types and the one timestamp
    # spelling, so the input dict canonicalises to the same bytes as envelope.signing_input();
    # using it skips rebuilding the dict for every record.
    signing_input = record_signing_input(envelope_dict)
    origin = envelope.origin
    node = directory.node(origin)
    if node is None:
        raise UnknownOrigin(f"{origin} is not a node of directory serial {directory.serial}")
    if not envelope.id.startswith(f"urn:ncc:{origin}:{envelope.type}:"):
        raise OriginMismatch(f"id {envelope.id} does not match origin {origin} and type {envelope.type}")
    if envelope.sig.kid_prefix != origin:
        raise OriginMismatch(f"kid {envelope.sig.kid} does not belong to origin {origin}")
    if feed_origin is not None and feed_origin != origin:
        raise OriginMismatch(f"record of {origin} served by the feed of {feed_origin}")
    key = node.key(envelope.sig.kid)
    if key is None:
        raise UnknownKey(f"{envelope.sig.kid} is not a key of {origin}")
    issued_at = envelope.issued_at
    if issued_at < key.not_before:
        raise KeyNotYetValid(f"issued before {key.kid} became valid")
    if key.not_after is not None and issued_at > key.not_after:
        raise KeyExpired(f"issued after {key.kid} expired")
    if key.revoked_at is not None and issued_at >= key.revoked_at:
        raise KeyRevoked(f"issued after {key.kid} was revoked")
    if received_at is not None:
        # issued_at is the signer's claim; when the hub got the version is not (a stolen key
        # backdating new records would otherwise pass the two checks above)
        if key.not_after is not None and received_at > key.not_after:
            raise KeyExpired(f"received after {key.kid} was retired")
        if key.revoked_at is not None and received_at >= key.revoked_at:
            raise KeyRevoked(f"received after {key.kid} was revoked")
    if issued_at > now + max_skew:
        raise IssuedInFuture(f"issued_at is more than {max_skew} ahead of now")
    if not key.verify(envelope.sig.raw, signing_input):
        raise SignatureInvalid(f"signature by {key.kid} does not verify")
    if not envelope.deleted:
        try:
            registry.validate(schema_id_for(envelope.schema), envelope.payload)
        except SchemaInvalid as exc:
            raise within(exc, "/payload") from None  # pointers into the envelope
        _check_consent(envelope)
    return VerifiedRecord(envelope, hashlib.sha256(signing_input).hexdigest(), key)


def check(
    envelope_dict: Any,
    directory: Directory,
    now: datetime,
    registry: SchemaRegistry,
    *,
    feed_origin: str | None = None,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
) -> VerificationResult:
    """:func:`verify` without raising: the record, or the one :class:`ProtocolError` it failed with."""
    try:
        record = verify(envelope_dict, directory, now, registry, feed_origin=feed_origin, max_skew=max_skew)
    except ProtocolError as e:
        return VerificationResult(None, e)
    return VerificationResult(record, None)


def consent_covers(payload: dict[str, Any], visibility: str) -> bool:
    """True when ``payload["consent"]`` is ``{"given": true, ...}`` and its ``scope`` covers
    ``visibility``: ``public`` or no scope covers public and network; ``network`` (or any other
    scope, read as the narrower one) covers network only."""
    consent = payload.get("consent")
    if not isinstance(consent, dict) or consent.get("given") is not True:
        return False
    scope = consent.get("scope", "public")
    covers = _SCOPE_COVERS.get(scope, _SCOPE_COVERS["network"]) if isinstance(scope, str) else _SCOPE_COVERS["network"]
    if group_of(visibility) is not None:  # a group is a narrower audience than the network
        return "network" in covers
    return visibility in covers


def _check_consent(envelope: Envelope) -> None:
    if (envelope.type in PERSONAL_DATA_TYPES and envelope.visibility != "national"
            and not consent_covers(envelope.payload, envelope.visibility)):
        raise ConsentMissing(f"{envelope.type} shared as {envelope.visibility} without covering consent")
