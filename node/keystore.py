"""The instance's Ed25519 keys on disk: ``<data-dir>/keys/instance.pem`` (mode 0600).

Retired keys (after ``ncc keys rotate``) move to ``keys/retired/<fingerprint>.pem`` so that
tokens they signed can still be checked until they expire.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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


class KeyStoreError(Exception):
    """The key file is missing, unreadable or too widely readable."""


@dataclass(frozen=True)
class InstanceKey:
    """A private key with its kid."""

    private_key: Ed25519PrivateKey
    kid: str

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
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_key_to_pem(key))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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
    try:
        mode = path.stat().st_mode & 0o077
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyStoreError(f"instance key {path} not found (run `ncc init`)") from exc
    except OSError as exc:
        raise KeyStoreError(f"instance key {path} unreadable: {exc.strerror}") from exc
    if mode:
        raise KeyStoreError(f"instance key {path} must not be readable by group or others (chmod 600)")
    try:
        key = private_key_from_pem(data)
    except Exception as exc:
        raise KeyStoreError(f"instance key {path} is not an Ed25519 PEM private key") from exc
    return InstanceKey(key, kid_for(kid_prefix(role, country), public_key_raw(key)))


def retire_and_replace(path: Path, new_key: Ed25519PrivateKey) -> Path:
    """Move the current key to ``retired/`` and install ``new_key``; return the retired path."""
    old = private_key_from_pem(path.read_bytes())
    retired = path.parent / "retired" / f"{key_fingerprint(public_key_raw(old))}.pem"
    _write_private(retired, old)
    _write_private(path, new_key)
    return retired


def load_retired(path: Path, role: str, country: str) -> list[InstanceKey]:
    """Keys rotated out of service (still trusted to verify what they signed)."""
    keys = []
    folder = path.parent / "retired"
    if folder.is_dir():
        for file in sorted(folder.glob("*.pem")):
            key = private_key_from_pem(file.read_bytes())
            keys.append(InstanceKey(key, kid_for(kid_prefix(role, country), public_key_raw(key))))
    return keys
