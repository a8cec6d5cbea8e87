"""Keys, base64url, kids and the timestamp format."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from federation.keys import (
    b64url_decode,
    b64url_encode,
    generate_private_key,
    key_fingerprint,
    kid_for,
    parse_kid,
    private_key_from_pem,
    private_key_from_seed,
    private_key_to_pem,
    public_key_from_raw,
    public_key_raw,
)
from federation.timefmt import format_timestamp, parse_timestamp, truncate_to_second


def test_kid_is_country_and_16_chars_of_sha256_of_raw_key() -> None:
    key = private_key_from_seed(bytes(range(32)))
    raw = public_key_raw(key)
    digest = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
    assert kid_for("DE", raw) == "DE:" + digest[:16]
    assert key_fingerprint(raw) == digest[:16]
    assert parse_kid(kid_for("hub", raw)) == ("hub", digest[:16])


def test_pem_round_trip_and_public_key_loading() -> None:
    key = generate_private_key()
    again = private_key_from_pem(private_key_to_pem(key))
    assert public_key_raw(again) == public_key_raw(key)
    assert public_key_raw(public_key_from_raw(public_key_raw(key))) == public_key_raw(key)


@pytest.mark.parametrize("data", [b"", b"not pem", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"])
def test_bad_pem_is_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        private_key_from_pem(data)


def test_non_ed25519_pem_is_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="not Ed25519"):
        private_key_from_pem(pem)


@pytest.mark.parametrize("raw", [b"", bytes(31), bytes(33)])
def test_public_key_must_be_32_bytes(raw: bytes) -> None:
    with pytest.raises(ValueError):
        public_key_from_raw(raw)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xff\xfe", bytes(range(64))])
def test_b64url_round_trip(data: bytes) -> None:
    text = b64url_encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64url_decode(text) == data


@pytest.mark.parametrize("text", ["AA==", "A", "+/8", "AB", "a b", "AAA\n", "ÄA", 5])
def test_b64url_decode_is_strict(text: object) -> None:
    # "AB" has non-zero padding bits: a second spelling of b"\x00"
    with pytest.raises(ValueError):
        b64url_decode(text)  # type: ignore[arg-type]


@pytest.mark.parametrize("kid", ["DE", "DE:", "DE:short", "D:aaaaaaaaaaaaaaaa", "DE:aaaaaaaaaaaaaaa=", None])
def test_parse_kid_rejects(kid: object) -> None:
    with pytest.raises(ValueError):
        parse_kid(kid)  # type: ignore[arg-type]


def test_timestamp_round_trip_and_utc_conversion() -> None:
    t = datetime(2026, 11, 26, 22, 50, 1, tzinfo=UTC)
    assert format_timestamp(t) == "2026-11-26T22:50:01Z"
    assert parse_timestamp("2026-11-26T22:50:01Z") == t
    assert format_timestamp(t.astimezone(timezone(timedelta(hours=2)))) == "2026-11-26T22:50:01Z"
    assert format_timestamp(t.replace(microsecond=999_999)) == "2026-11-26T22:50:01Z"
    assert truncate_to_second(t.replace(microsecond=5)) == t


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError):
        format_timestamp(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-26T22:50:01",
        "2026-11-26T22:50:01+00:00",
        "2026-11-26 22:50:01Z",
        "2026-11-26T22:50:01.0Z",
        "2026-13-01T00:00:00Z",
        "2026-11-26T24:00:00Z",
        "2026-11-26T22:50:01Z\n",
        "２０２６-11-26T22:50:01Z",
        "",
        None,
    ],
)
def test_parse_timestamp_is_strict(text: object) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)  # type: ignore[arg-type]
