"""The hub's signed directory of nodes and keys (DESIGN §4), and key validity at a time.

Wire form::

    {"ncc": 1, "serial": N, "issued_at": T, "expires_at": T,
     "hub": {"url": U, "keys": [KeyEntry]},
     "nodes": [{"country", "url", "status": "active"|"suspended", "mode": "replicate"|"query-only",
                "keys": [KeyEntry]}],
     "schemas": ["organisation/1", "organisation/2", ...],   (optional)
     "groups": [{"name": "civil-defence", "countries": ["DE", "FR"]}],   (optional, DESIGN §15)
     "sig": {"alg": "Ed25519", "kid", "value"}}

    KeyEntry = {"kid", "public_key" (base64url raw 32 bytes), "not_before", "not_after"|null,
                "revoked_at"|null}

Signed over ``b"ncc-directory-v1\\n" + JCS(document without "sig")`` (:func:`directory_signing_input`
is the only producer of those bytes). Node kids are ``<country>:<fingerprint of public_key>``;
hub kids ``hub:<fingerprint>``. A key is valid at ``t`` when ``not_before <= t``, ``t <= not_after``
(if set) and ``t < revoked_at`` (if set): records are judged at their ``issued_at``, so records
signed inside a key's validity stay valid after rotation.

``schemas`` (optional) lists the record schemas (``<type>/<n>``) the hub accepts; a node publishes a
new schema version only once it is listed (DESIGN §11), and a directory without it accepts version 1
of each type only.

``groups`` (optional) are the sharing groups and their member countries (DESIGN §15). The hub
serves them to enrolled nodes and analysts; anonymous readers get a copy of the same serial that
the hub signed without them, so both verify. A node fetches (and holds) the full one.

Tolerant reading (DESIGN §11, "readers ignore unknown fields"): every object except ``sig`` may carry
fields this version does not know. They are kept, not dropped (python-tuf's ``unrecognized_fields``):
``to_dict`` gives them back, so the signature over a newer hub's directory still verifies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from federation.canonical import MAX_SAFE_INTEGER, canonicalize
from federation.errors import (
    CanonicalizationError,
    DirectoryExpired,
    DirectoryInvalid,
    DirectoryRollback,
)
from federation.groups import valid_group_name
from federation.keys import (
    HUB_KID_PREFIX,
    b64url_decode,
    b64url_encode,
    key_fingerprint,
    parse_kid,
    public_key_from_raw,
)
from federation.timefmt import format_timestamp, parse_timestamp

DIRECTORY_SIGNING_CONTEXT = b"ncc-directory-v1\n"
#: The hub's feed requests carry the serial of its current directory in this header (DESIGN §15: a
#: node holding an older one fetches it first, so group membership changes take effect in that pull).
DIRECTORY_SERIAL_HEADER = "NCC-Directory-Serial"
DIRECTORY_VERSION = 1
#: Longest validity window a directory may claim.
MAX_DIRECTORY_VALIDITY = timedelta(days=7)
NODE_STATUSES = ("active", "suspended")
NODE_MODES = ("replicate", "query-only")

_DIRECTORY_FIELDS = frozenset(("ncc", "serial", "issued_at", "expires_at", "hub", "nodes", "sig"))
_HUB_FIELDS = frozenset(("url", "keys"))
_NODE_FIELDS = frozenset(("country", "url", "status", "mode", "keys"))
_KEY_FIELDS = frozenset(("kid", "public_key", "not_before", "not_after", "revoked_at"))
_SIG_FIELDS = frozenset(("alg", "kid", "value"))
_OPTIONAL_DIRECTORY_FIELDS = frozenset(("schemas", "groups"))
_GROUP_FIELDS = frozenset(("name", "countries"))
#: Most groups a directory may list.
MAX_GROUPS = 1000
#: Most schema names a directory may list.
MAX_SCHEMAS = 256
_SCHEMA_NAME = re.compile(r"\A[a-z][a-z0-9-]{0,31}/[1-9][0-9]{0,5}\Z")
_COUNTRY = re.compile(r"\A[A-Z]{2}\Z")
_URL = re.compile(r"\Ahttps?://[^\s/?#]+[^\s]*\Z")


def _need(cond: bool, detail: str) -> None:
    if not cond:
        raise DirectoryInvalid(detail)


def _fields(data: Any, expected: frozenset[str], what: str) -> dict[str, Any]:
    """``data`` as an object with exactly the ``expected`` fields (the signature object)."""
    _need(type(data) is dict, f"{what} must be an object")
    keys = data.keys()
    _need(keys == expected, f"{what} fields must be exactly {sorted(expected)}, got {sorted(map(str, keys))}")
    return data  # type: ignore[no-any-return]


def _tolerant(data: Any, required: frozenset[str], what: str,
              optional: frozenset[str] = frozenset()) -> tuple[dict[str, Any], dict[str, Any]]:
    """``data`` as an object with at least the ``required`` fields; also return its unknown fields."""
    _need(type(data) is dict, f"{what} must be an object")
    missing = required - data.keys()
    _need(not missing, f"{what} lacks the fields {sorted(missing)}")
    known = required | optional
    return data, {k: v for k, v in data.items() if k not in known}


def _schemas(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    _need(type(value) is list and len(value) <= MAX_SCHEMAS, f"schemas must be a list of at most {MAX_SCHEMAS}")
    _need(all(type(v) is str and _SCHEMA_NAME.match(v) for v in value), "schemas items must be '<type>/<n>'")
    _need(len(set(value)) == len(value), "schemas lists a schema twice")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class GroupEntry:
    """A sharing group: its name and member countries (sorted)."""

    name: str
    countries: tuple[str, ...]
    unrecognized: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        _need(valid_group_name(self.name), "group name must match ^[a-z0-9-]{1,63}$")
        _need(all(type(c) is str and _COUNTRY.match(c) for c in self.countries),
              f"group {self.name}: countries must be XX codes")
        _need(len(set(self.countries)) == len(self.countries), f"group {self.name} lists a country twice")

    @classmethod
    def from_dict(cls, data: Any) -> GroupEntry:
        """Build from the wire form. Raises DirectoryInvalid."""
        d, unknown = _tolerant(data, _GROUP_FIELDS, "group")
        _need(type(d["countries"]) is list, "group.countries must be a list")
        return cls(name=d["name"], countries=tuple(d["countries"]), unrecognized=unknown)

    def to_dict(self) -> dict[str, Any]:
        """The wire form (unknown fields it was read with included)."""
        return {**self.unrecognized, "name": self.name, "countries": list(self.countries)}


def _groups(value: Any) -> tuple[GroupEntry, ...] | None:
    if value is None:
        return None
    _need(type(value) is list and len(value) <= MAX_GROUPS, f"groups must be a list of at most {MAX_GROUPS}")
    groups = tuple(GroupEntry.from_dict(g) for g in value)
    _need(len({g.name for g in groups}) == len(groups), "groups lists a group twice")
    return groups


def _time(value: Any, what: str) -> datetime:
    try:
        return parse_timestamp(value)
    except ValueError as e:
        raise DirectoryInvalid(f"{what}: {e}") from e


def _optional_time(value: Any, what: str) -> datetime | None:
    return None if value is None else _time(value, what)


def _fmt(dt: datetime | None) -> str | None:
    return None if dt is None else format_timestamp(dt)


def directory_signing_input(unsigned: Mapping[str, Any]) -> bytes:
    """The bytes the hub signs: ``b"ncc-directory-v1\\n" + JCS(document without "sig")``.

    Raises:
        DirectoryInvalid: the document cannot be canonicalised.
    """
    try:
        return DIRECTORY_SIGNING_CONTEXT + canonicalize({k: v for k, v in unsigned.items() if k != "sig"})
    except CanonicalizationError as e:
        raise DirectoryInvalid(f"directory cannot be canonicalised: {e.detail}") from e


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """A public key with its validity window; ``public_key`` holds the 32 raw bytes."""

    kid: str
    public_key: bytes
    not_before: datetime
    not_after: datetime | None = None
    revoked_at: datetime | None = None
    unrecognized: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            _, fingerprint = parse_kid(self.kid)
            key = public_key_from_raw(self.public_key)
        except (ValueError, TypeError) as e:
            raise DirectoryInvalid(f"key {self.kid!r}: {e}") from e
        _need(fingerprint == key_fingerprint(self.public_key), f"kid {self.kid} does not match its public key")
        _need(
            self.not_after is None or self.not_after >= self.not_before,
            f"key {self.kid}: not_after precedes not_before",
        )
        object.__setattr__(self, "key", key)

    @property
    def prefix(self) -> str:
        """The kid's prefix (a country, or ``hub``)."""
        return self.kid.partition(":")[0]

    @classmethod
    def from_dict(cls, data: Any) -> KeyEntry:
        """Build from the wire form.

        Raises:
            DirectoryInvalid: malformed entry, or kid not the fingerprint of the key.
        """
        d, unknown = _tolerant(data, _KEY_FIELDS, "key")
        try:
            raw = b64url_decode(d["public_key"])
        except ValueError as e:
            raise DirectoryInvalid(f"key {d['kid']!r}: public_key: {e}") from e
        return cls(
            kid=d["kid"],
            public_key=raw,
            not_before=_time(d["not_before"], "not_before"),
            not_after=_optional_time(d["not_after"], "not_after"),
            revoked_at=_optional_time(d["revoked_at"], "revoked_at"),
            unrecognized=unknown,
        )

    def to_dict(self) -> dict[str, Any]:
        """The wire form (unknown fields it was read with included)."""
        return {
            **self.unrecognized,
            "kid": self.kid,
            "public_key": b64url_encode(self.public_key),
            "not_before": format_timestamp(self.not_before),
            "not_after": _fmt(self.not_after),
            "revoked_at": _fmt(self.revoked_at),
        }

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` is this key's Ed25519 signature over ``data``."""
        try:
            self.key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


def key_valid_at(key: KeyEntry, t: datetime) -> bool:
    """True when ``not_before <= t``, ``t <= not_after`` (if set) and ``t < revoked_at`` (if set)."""
    return (
        key.not_before <= t
        and (key.not_after is None or t <= key.not_after)
        and (key.revoked_at is None or t < key.revoked_at)
    )


def _unique_keys(keys: Iterable[KeyEntry], what: str) -> tuple[KeyEntry, ...]:
    out = tuple(keys)
    kids = [k.kid for k in out]
    _need(len(set(kids)) == len(kids), f"{what}: duplicate kid")
    return out


@dataclass(frozen=True, slots=True)
class HubEntry:
    """The hub's public URL and its directory-signing keys."""

    url: str
    keys: tuple[KeyEntry, ...]
    unrecognized: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        _need(type(self.url) is str and bool(_URL.match(self.url)), "hub.url must be an http(s) URL")
        _need(len(self.keys) >= 1, "hub.keys must not be empty")
        _unique_keys(self.keys, "hub.keys")
        for k in self.keys:
            _need(k.prefix == HUB_KID_PREFIX, f"hub kid {k.kid} must start with '{HUB_KID_PREFIX}:'")

    def key(self, kid: str) -> KeyEntry | None:
        """The hub key with this kid, if listed."""
        return next((k for k in self.keys if k.kid == kid), None)

    @classmethod
    def from_dict(cls, data: Any) -> HubEntry:
        """Build from the wire form. Raises DirectoryInvalid."""
        d, unknown = _tolerant(data, _HUB_FIELDS, "hub")
        _need(type(d["keys"]) is list, "hub.keys must be a list")
        return cls(url=d["url"], keys=tuple(KeyEntry.from_dict(k) for k in d["keys"]), unrecognized=unknown)

    def to_dict(self) -> dict[str, Any]:
        """The wire form (unknown fields it was read with included)."""
        return {**self.unrecognized, "url": self.url, "keys": [k.to_dict() for k in self.keys]}


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """One enrolled node. A suspended node's records still verify: suspension is the hub's
    decision about pulling and serving, not a statement about signatures already made."""

    country: str
    url: str
    status: str
    mode: str
    keys: tuple[KeyEntry, ...]
    unrecognized: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _by_kid: dict[str, KeyEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _need(type(self.country) is str and bool(_COUNTRY.match(self.country)), "node.country must be XX")
        _need(type(self.url) is str and bool(_URL.match(self.url)), f"node {self.country}: url must be http(s)")
        _need(self.status in NODE_STATUSES, f"node {self.country}: status must be one of {NODE_STATUSES}")
        _need(self.mode in NODE_MODES, f"node {self.country}: mode must be one of {NODE_MODES}")
        _unique_keys(self.keys, f"node {self.country}")
        for k in self.keys:
            _need(k.prefix == self.country, f"node {self.country}: kid {k.kid} has another country's prefix")
        object.__setattr__(self, "_by_kid", {k.kid: k for k in self.keys})

    def key(self, kid: str) -> KeyEntry | None:
        """This node's key with that kid, if listed."""
        return self._by_kid.get(kid)

    @classmethod
    def from_dict(cls, data: Any) -> NodeEntry:
        """Build from the wire form. Raises DirectoryInvalid."""
        d, unknown = _tolerant(data, _NODE_FIELDS, "node")
        _need(type(d["keys"]) is list, "node.keys must be a list")
        return cls(
            country=d["country"],
            url=d["url"],
            status=d["status"],
            mode=d["mode"],
            keys=tuple(KeyEntry.from_dict(k) for k in d["keys"]),
            unrecognized=unknown,
        )

    def to_dict(self) -> dict[str, Any]:
        """The wire form (unknown fields it was read with included)."""
        return {
            **self.unrecognized,
            "country": self.country,
            "url": self.url,
            "status": self.status,
            "mode": self.mode,
            "keys": [k.to_dict() for k in self.keys],
        }


@dataclass(frozen=True, slots=True)
class DirectorySignature:
    """The directory's ``sig``: ``raw`` is the decoded 64-byte signature."""

    alg: str
    kid: str
    value: str
    raw: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _need(self.alg == "Ed25519", "sig.alg must be 'Ed25519'")
        try:
            parse_kid(self.kid)
            raw = b64url_decode(self.value)
        except ValueError as e:
            raise DirectoryInvalid(f"sig: {e}") from e
        _need(len(raw) == 64, "sig.value must encode 64 bytes")
        object.__setattr__(self, "raw", raw)

    def to_dict(self) -> dict[str, str]:
        """The wire form."""
        return {"alg": self.alg, "kid": self.kid, "value": self.value}


@dataclass(frozen=True, slots=True)
class Directory:
    """A parsed (structurally valid) directory. Only :func:`verify_directory` says it is trusted."""

    ncc: int
    serial: int
    issued_at: datetime
    expires_at: datetime
    hub: HubEntry
    nodes: tuple[NodeEntry, ...]
    sig: DirectorySignature
    schemas: tuple[str, ...] | None = None
    groups: tuple[GroupEntry, ...] | None = None
    unrecognized: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _by_country: dict[str, NodeEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _need(type(self.ncc) is int and self.ncc == DIRECTORY_VERSION, "ncc must be 1")
        _need(type(self.serial) is int and 1 <= self.serial <= MAX_SAFE_INTEGER, "serial must be an int ≥ 1")
        by_country = {n.country: n for n in self.nodes}
        _need(len(by_country) == len(self.nodes), "duplicate node country")
        kids = [k.kid for n in self.nodes for k in n.keys] + [k.kid for k in self.hub.keys]
        _need(len(set(kids)) == len(kids), "a kid is listed twice")
        object.__setattr__(self, "_by_country", by_country)

    def node(self, country: str) -> NodeEntry | None:
        """The node of that country, if enrolled."""
        return self._by_country.get(country)

    def accepts(self, schema: str) -> bool:
        """Whether the hub accepts records of ``schema`` (``"organisation/2"``); without a ``schemas``
        list, version 1 of every type (what every hub has always accepted)."""
        if self.schemas is None:
            return schema.endswith("/1")
        return schema in self.schemas

    def group_members(self) -> dict[str, frozenset[str]]:
        """Each sharing group's member countries (none without ``groups``)."""
        return {g.name: frozenset(g.countries) for g in self.groups or ()}

    def groups_of(self, country: str) -> frozenset[str]:
        """The sharing groups ``country`` is a member of."""
        return frozenset(g.name for g in self.groups or () if country in g.countries)

    def key(self, kid: str) -> KeyEntry | None:
        """The node key with this kid (looked up under the kid's country), if listed."""
        node = self._by_country.get(kid.partition(":")[0])
        return node.key(kid) if node is not None else None

    @classmethod
    def from_dict(cls, data: Any) -> Directory:
        """Parse the wire form (no signature or freshness check: see :func:`verify_directory`).

        Raises:
            DirectoryInvalid: missing/extra/wrong-typed fields, bad keys or timestamps.
        """
        d, unknown = _tolerant(data, _DIRECTORY_FIELDS, "directory", _OPTIONAL_DIRECTORY_FIELDS)
        _need(type(d["nodes"]) is list, "nodes must be a list")
        sig = _fields(d["sig"], _SIG_FIELDS, "sig")
        return cls(
            ncc=d["ncc"],
            serial=d["serial"],
            issued_at=_time(d["issued_at"], "issued_at"),
            expires_at=_time(d["expires_at"], "expires_at"),
            hub=HubEntry.from_dict(d["hub"]),
            nodes=tuple(NodeEntry.from_dict(n) for n in d["nodes"]),
            sig=DirectorySignature(sig["alg"], sig["kid"], sig["value"]),
            schemas=_schemas(d.get("schemas")),
            groups=_groups(d.get("groups")),
            unrecognized=unknown,
        )

    def unsigned_dict(self) -> dict[str, Any]:
        """The wire form without ``sig`` (unknown fields it was read with included)."""
        doc = build_directory(
            self.serial, self.issued_at, self.expires_at, self.hub.url, self.hub.keys, self.nodes,
            schemas=self.schemas,
        )
        if self.groups is not None:
            doc["groups"] = [g.to_dict() for g in self.groups]
        doc["hub"] = self.hub.to_dict()
        return {**self.unrecognized, **doc}

    def to_dict(self) -> dict[str, Any]:
        """The wire form, exactly as signed."""
        return {**self.unsigned_dict(), "sig": self.sig.to_dict()}

    def signing_input(self) -> bytes:
        """The signed bytes (:func:`directory_signing_input`). Raises DirectoryInvalid."""
        return directory_signing_input(self.unsigned_dict())


def build_directory(
    serial: int,
    issued_at: datetime,
    expires_at: datetime,
    hub_url: str,
    hub_keys: Iterable[KeyEntry],
    nodes: Iterable[NodeEntry],
    schemas: Iterable[str] | None = None,
    groups: Iterable[GroupEntry] | None = None,
) -> dict[str, Any]:
    """The unsigned wire form of a directory (nodes sorted by country), ready for :func:`sign_directory`.

    ``schemas``: the record schemas the hub accepts (``<type>/<n>``); left out when None.
    ``groups``: the sharing groups (sorted by name); left out when None (the anonymous copy).
    """
    doc = {
        "ncc": DIRECTORY_VERSION,
        "serial": serial,
        "issued_at": format_timestamp(issued_at),
        "expires_at": format_timestamp(expires_at),
        "hub": {"url": hub_url, "keys": [k.to_dict() for k in hub_keys]},
        "nodes": [n.to_dict() for n in sorted(nodes, key=lambda n: n.country)],
    }
    if schemas is not None:
        doc["schemas"] = list(schemas)
    if groups is not None:
        doc["groups"] = [g.to_dict() for g in sorted(groups, key=lambda g: g.name)]
    return doc


def sign_directory(unsigned: Mapping[str, Any], hub_private_key: Ed25519PrivateKey, kid: str) -> dict[str, Any]:
    """Sign an unsigned directory dict and return the signed wire form.

    Raises:
        DirectoryInvalid: the document is not a valid directory (checked by parsing the result).
    """
    signature = hub_private_key.sign(directory_signing_input(unsigned))
    doc = {**unsigned, "sig": {"alg": "Ed25519", "kid": kid, "value": b64url_encode(signature)}}
    Directory.from_dict(doc)
    return doc


def verify_directory(
    doc: Any,
    now: datetime,
    previous: Directory | None = None,
    trusted_kids: set[str] | frozenset[str] | None = None,
    *,
    max_skew: timedelta = timedelta(minutes=5),
) -> Directory:
    """Parse and verify a signed directory; return it only if every check passes.

    Checks, in order: structure; the signing kid is a hub key listed in the document, valid at
    ``issued_at``, and — when given — one of ``previous``'s hub keys and one of ``trusted_kids``
    (hub key rotation: the new directory is signed by a key the client already trusts); the
    signature; ``issued_at`` not in the future (beyond ``max_skew``); validity window
    ``0 < expires_at − issued_at ≤ 7 days`` and ``now < expires_at``; serial against ``previous``
    (a lower serial, or the same serial with different content, is a rollback; the same serial with
    identical content returns ``previous``).

    Raises:
        DirectoryInvalid: malformed, signed by an untrusted key, bad signature, issued in the future.
        DirectoryExpired: expired, or a window longer than 7 days.
        DirectoryRollback: serial lower than ``previous`` (or equal with different content).
    """
    directory = Directory.from_dict(doc)
    kid = directory.sig.kid
    hub_key = directory.hub.key(kid)
    if hub_key is None:
        raise DirectoryInvalid(f"directory signed by {kid}, which is not one of its hub keys")
    _need(key_valid_at(hub_key, directory.issued_at), f"hub key {kid} is not valid at issued_at")
    if previous is not None:
        _need(previous.hub.key(kid) is not None, f"directory signed by {kid}, not a previously trusted hub key")
    if trusted_kids is not None:
        _need(kid in trusted_kids, f"directory signed by {kid}, not a trusted hub key")
    _need(hub_key.verify(directory.sig.raw, directory.signing_input()), "directory signature does not verify")
    _need(directory.issued_at <= now + max_skew, "directory issued in the future")
    window = directory.expires_at - directory.issued_at
    if not timedelta(0) < window <= MAX_DIRECTORY_VALIDITY:
        raise DirectoryExpired(f"validity window {window} is not within (0, 7 days]")
    if now >= directory.expires_at:
        raise DirectoryExpired(f"directory expired at {format_timestamp(directory.expires_at)}")
    if previous is not None:
        if directory.serial < previous.serial:
            raise DirectoryRollback(f"serial {directory.serial} is lower than held {previous.serial}")
        if directory.serial == previous.serial:
            if directory.to_dict() != previous.to_dict():
                raise DirectoryRollback(f"serial {directory.serial} already held with different content")
            return previous
    return directory


__all__ = [
    "DIRECTORY_SIGNING_CONTEXT",
    "MAX_DIRECTORY_VALIDITY",
    "Directory",
    "DirectorySignature",
    "GroupEntry",
    "HubEntry",
    "KeyEntry",
    "NodeEntry",
    "build_directory",
    "directory_signing_input",
    "key_valid_at",
    "sign_directory",
    "verify_directory",
]
