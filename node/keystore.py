"""The instance's Ed25519 keys on disk: ``<data-dir>/keys/instance.pem`` (mode 0600).

A key has one of three states:

* **current** — ``keys/instance.pem``: signs records and tokens;
* **retired** — ``keys/retired/<fingerprint>.pem`` after ``ncc keys rotate``, with
  ``<fingerprint>.json`` saying when it was retired: it still verifies the user tokens it signed
  while it was current (each up to its stored expiry), and nothing it would sign later;
* **compromised** — ``keys/compromised/<fingerprint>.pem`` after ``ncc enroll --new-key`` (or a
  key the hub revoked): kept for the record, verifies nothing at all.

Every one of them is checked like ``instance.pem``: a file readable by group or others is refused.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from federation.keys import (
    HUB_KID_PREFIX,
    generate_private_key,
    key_fingerprint,
    kid_for,
    private_key_from_pem,
    private_key_to_pem,
    public_key_raw,
)
from federation.timefmt import format_timestamp, parse_timestamp
from node.files import FileModeError, check_private, write_private


class KeyStoreError(Exception):
    """The key file is missing, unreadable or too widely readable."""


@dataclass(frozen=True)
class InstanceKey:
    """A private key with its kid."""

    private_key: Ed25519PrivateKey
    kid: str
    #: When a retired key stopped being current (None: the current key).
    retired_at: datetime | None = None

    @property
    def public_raw(self) -> bytes:
        return public_key_raw(self.private_key)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()


def kid_prefix(role: str, country: str) -> str:
    """Records and tokens of a node carry its country; the hub's carry ``HUB_KID_PREFIX``."""
    return HUB_KID_PREFIX if role == "hub" else country


def _write_private(path: Path, key: Ed25519PrivateKey) -> None:
    write_private(path, private_key_to_pem(key))


def create_key(path: Path) -> Ed25519PrivateKey:
    """Generate and store a new key; refuse to overwrite an existing one.

    Raises:
        KeyStoreError: a key already exists at ``path``.
    """
    if path.exists():
        raise KeyStoreError(f"{path} already exists; refusing to overwrite an instance key")
    key = generate_private_key()
    _write_private(path, key)
    return key


def load_key(path: Path, role: str, country: str) -> InstanceKey:
    """Load the instance key.

    Raises:
        KeyStoreError: missing, unreadable, or readable by group/others.
    """
    key = _read_key(path, "instance key", missing_hint=" (run `ncc init`)")
    return InstanceKey(key, kid_for(kid_prefix(role, country), public_key_raw(key)))


def _read_key(path: Path, what: str, missing_hint: str = "") -> Ed25519PrivateKey:
    try:
        mode = path.stat().st_mode & 0o077
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyStoreError(f"{what} {path} not found{missing_hint}") from exc
    except OSError as exc:
        raise KeyStoreError(f"{what} {path} unreadable: {exc.strerror}") from exc
    if mode:
        raise KeyStoreError(f"{what} {path} must not be readable by group or others (chmod 600 {path})")
    try:
        return private_key_from_pem(data)
    except Exception as exc:
        raise KeyStoreError(f"{what} {path} is not an Ed25519 PEM private key") from exc


def retire_and_replace(path: Path, new_key: Ed25519PrivateKey, *, compromised: bool = False,
                       now: datetime | None = None) -> Path:
    """Move the current key out of service and install ``new_key``; return where the old key went.

    A rotated key goes to ``retired/`` with the time it stopped being current; a ``compromised`` one
    (key-compromise recovery: ``ncc enroll --new-key``) to ``compromised/``, where nothing loads it
    to verify anything.
    """
    old = private_key_from_pem(path.read_bytes())
    fingerprint = key_fingerprint(public_key_raw(old))
    folder = path.parent / ("compromised" if compromised else "retired")
    moved = folder / f"{fingerprint}.pem"
    stamp = format_timestamp((now or datetime.now(UTC)).replace(microsecond=0))
    _write_private(moved, old)
    record = {"retired_at": stamp, "compromised": compromised}
    write_private(folder / f"{fingerprint}.json", orjson.dumps(record))
    _write_private(path, new_key)
    if compromised:
        # the same key retired earlier (a rotation back to it) must not verify either
        (path.parent / "retired" / f"{fingerprint}.pem").unlink(missing_ok=True)
        (path.parent / "retired" / f"{fingerprint}.json").unlink(missing_ok=True)
    return moved


def load_retired(path: Path, role: str, country: str) -> list[InstanceKey]:
    """Keys rotated out of service, each with the time it was retired.

    Raises:
        KeyStoreError: a retired key (or its record) readable by group or others, or unreadable.
    """
    keys = []
    folder = path.parent / "retired"
    compromised = path.parent / "compromised"
    if folder.is_dir():
        for file in sorted(folder.glob("*.pem")):
            if (compromised / file.name).exists():
                continue  # declared compromised since: verifies nothing
            key = _read_key(file, "retired key")
            keys.append(InstanceKey(key, kid_for(kid_prefix(role, country), public_key_raw(key)),
                                    _retired_at(file)))
    return keys


def load_compromised(path: Path, role: str, country: str) -> list[InstanceKey]:
    """Keys given up after a compromise: never used to verify, but the node did hold them (its audit of
    the hub's directory must not call them foreign).

    Raises:
        KeyStoreError: a key file readable by group or others, or unreadable.
    """
    folder = path.parent / "compromised"
    keys = []
    if folder.is_dir():
        for file in sorted(folder.glob("*.pem")):
            key = _read_key(file, "compromised key")
            kid = kid_for(kid_prefix(role, country), public_key_raw(key))
            keys.append(InstanceKey(key, kid, _retired_at(file)))
    return keys


def _retired_at(pem: Path) -> datetime:
    """When the key in ``pem`` was retired: its ``.json`` record, else (keys retired before the record
    existed) the file's modification time, which ``retire_and_replace`` set."""
    meta = pem.with_suffix(".json")
    try:
        check_private(meta)
        return parse_timestamp(orjson.loads(meta.read_bytes())["retired_at"])
    except FileModeError as exc:
        raise KeyStoreError(str(exc)) from exc
    except FileNotFoundError:
        return datetime.fromtimestamp(int(pem.stat().st_mtime), UTC)
    except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise KeyStoreError(f"retired key record {meta} is unreadable: {exc}") from exc


def load_secret(path: Path, *, create: bool = True) -> bytes:
    """A random 32-byte server secret kept in ``path`` (0600), made on first use (portal CSRF tokens).

    Raises:
        KeyStoreError: readable by group or others, unreadable, or too short.
    """
    if create and not path.exists():
        try:
            write_private(path, secrets.token_hex(32) + "\n", exclusive=True)
        except FileExistsError:
            pass  # another process made it first: use theirs
    try:
        check_private(path)
        text = path.read_text().strip()
    except FileModeError as exc:
        raise KeyStoreError(str(exc)) from exc
    except OSError as exc:
        raise KeyStoreError(f"secret {path} unreadable: {exc.strerror}") from exc
    if len(text) < 32:
        raise KeyStoreError(f"secret {path} is too short (delete it: a new one is made)")
    return text.encode()
