"""Ed25519 keys, unpadded base64url, and key ids.

A key id is ``<prefix>:`` + the first 16 characters of base64url(SHA-256(raw public key)) — the
prefix is the node's country (DESIGN §3); hub keys use :data:`HUB_KID_PREFIX`. Key generation is
the only function here that consumes randomness (from the OS, through ``cryptography``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

#: Prefix of the hub's key ids (nodes use their country code).
HUB_KID_PREFIX = "hub"
#: Length of the fingerprint part of a kid.
FINGERPRINT_LENGTH = 16

_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_URL_TO_STD = bytes.maketrans(b"-_", b"+/")
_KID = re.compile(r"\A([A-Za-z]{2,8}):([A-Za-z0-9_-]{16})\Z")


def generate_private_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 private key from the OS random source."""
    return Ed25519PrivateKey.generate()


def private_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """The Ed25519 private key with the given 32 raw bytes (test vectors, fixtures).

    Raises:
        ValueError: ``seed`` is not 32 bytes.
    """
    if len(seed) != 32:
        raise ValueError("an Ed25519 private key is 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def private_key_to_pem(key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (the file's mode 0600 protects it; see node/)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def private_key_from_pem(data: bytes) -> Ed25519PrivateKey:
    """Load an unencrypted PKCS#8 PEM Ed25519 private key.

    Raises:
        ValueError: not PEM, encrypted, or not an Ed25519 key.
    """
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise ValueError(f"cannot load private key: {e}") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("private key is not Ed25519")  # noqa: TRY004 - the documented error of a bad key file
    return key


def public_key_raw(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of the public key (of a private key's public half)."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_from_raw(raw: bytes) -> Ed25519PublicKey:
    """Load a public key from its 32 raw bytes.

    Raises:
        ValueError: not 32 bytes or not a valid encoding.
    """
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise ValueError(f"invalid Ed25519 public key: {e}") from e


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 4648 §5) of ``data``."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode strict unpadded base64url: no padding, no other alphabet, canonical trailing bits.

    Raises:
        ValueError: ``text`` is not a canonical unpadded base64url string.
    """
    if type(text) is not str or "+" in text or "/" in text or "=" in text:
        raise ValueError("not unpadded base64url")
    tail = len(text) % 4
    try:
        if tail == 1:
            raise ValueError("impossible length")
        # The last character of a partial group carries unused low bits that must be zero;
        # otherwise the same bytes would have several spellings.
        if tail and _B64_ALPHABET.index(text[-1]) % (16 if tail == 2 else 4):
            raise ValueError("non-zero padding bits")
        # strict_mode refuses every character outside the alphabet (whitespace included).
        return binascii.a2b_base64(
            text.encode("ascii").translate(_URL_TO_STD) + b"=" * (-len(text) % 4), strict_mode=True
        )
    except (ValueError, binascii.Error) as e:  # UnicodeEncodeError is a ValueError
        raise ValueError(f"not canonical unpadded base64url: {e}") from None


def key_fingerprint(raw_public_key: bytes) -> str:
    """First 16 characters of base64url(SHA-256(raw public key))."""
    return b64url_encode(hashlib.sha256(raw_public_key).digest())[:FINGERPRINT_LENGTH]


def kid_for(prefix: str, raw_public_key: bytes) -> str:
    """The key id ``<prefix>:<fingerprint>``; ``prefix`` is a country code or ``HUB_KID_PREFIX``."""
    return f"{prefix}:{key_fingerprint(raw_public_key)}"


def parse_kid(kid: str) -> tuple[str, str]:
    """Split a kid into ``(prefix, fingerprint)``.

    Raises:
        ValueError: not of the form ``<2–8 letters>:<16 base64url chars>``.
    """
    m = _KID.match(kid) if type(kid) is str else None
    if m is None:
        raise ValueError(f"malformed kid {kid!r}")
    return m.group(1), m.group(2)
