"""Generate the protocol's known-answer vectors (see README.md in this directory).

Deterministic: Ed25519 signatures are deterministic, every private key is
SHA-256(b"ncc-test-vector-key:" + label), and the clock is the fixed ``NOW``. Running this script
rewrites the JSON files next to it; ``tests/unit/federation/test_vectors.py`` fails if the
committed files differ from what it generates.

    python tests/vectors/generate.py
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from federation.canonical import canonicalize_reference
from federation.directory import KeyEntry, NodeEntry, build_directory, sign_directory
from federation.envelope import record_signing_input, sign_record
from federation.keys import b64url_encode, kid_for, private_key_from_seed, public_key_raw
from federation.timefmt import format_timestamp
from federation.tokens import (
    enrollment_proof,
    issue_enrollment_token,
    issue_service_token,
    issue_user_token,
    make_rotation_statement,
)

VECTOR_DIR = Path(__file__).resolve().parent
NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
T = format_timestamp


def seed(label: str) -> bytes:
    """The private key bytes of a test key."""
    return hashlib.sha256(b"ncc-test-vector-key:" + label.encode()).digest()


# label -> (kid prefix, not_before, not_after, revoked_at); "unlisted" keys are not in the directory.
KEYS: dict[str, tuple[str, datetime, datetime | None, datetime | None]] = {
    "hub": ("hub", datetime(2025, 1, 1, tzinfo=UTC), None, None),
    "DE-current": ("DE", datetime(2026, 1, 1, tzinfo=UTC), None, None),
    "DE-old": ("DE", datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), None),
    "DE-revoked": ("DE", datetime(2025, 6, 1, tzinfo=UTC), None, datetime(2026, 6, 1, tzinfo=UTC)),
    "DE-later": ("DE", NOW + timedelta(days=1), None, None),
    "FR-current": ("FR", datetime(2026, 1, 1, tzinfo=UTC), None, None),
    "AT-suspended": ("AT", datetime(2026, 1, 1, tzinfo=UTC), None, None),
    "DE-unlisted": ("DE", NOW, None, None),
    "PL-unenrolled": ("PL", NOW, None, None),
}
UNLISTED = ("DE-unlisted", "PL-unenrolled")

PRIV = {label: private_key_from_seed(seed(label)) for label in KEYS}
RAW = {label: public_key_raw(key) for label, key in PRIV.items()}
KID = {label: kid_for(KEYS[label][0], RAW[label]) for label in KEYS}

ORG_UUID = "0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a11"
EXPERT_UUID = "7d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"

ORGANISATION = {
    "legal_name": "Cyber Lab GmbH",
    "national_name": "Cyber Lab GmbH",
    "country": "DE",
    "website": "https://cyberlab.example.de/",
    "org_type": "ctype.industry-sme",
    "sme": True,
    "fields_of_activity": ["foa.academia-research-innovation"],
    "domains": ["cry"],
    "subdomains": ["cry.10"],
    "sectors": ["sec.energy"],
    "description": "Post-quantum cryptography for energy grids. Straße, café, 日本, emoji \U0001f510.",
    "contact": {"first_name": "Jürgen", "family_name": "Größ", "email": "jg@cyberlab.example.de"},
    "consent": {"share_with_eccc_and_nccs": True},
}
EXPERT = {
    "name": "Zoë Łukasiewicz",
    "country": "DE",
    "roles": ["ecsf.penetration-tester"],
    "domains": ["nds"],
    "subdomains": ["nds.08"],
    "languages": ["de", "en"],
    "consent": {"given": True, "at": "2026-02-01T08:15:00Z", "scope": "public"},
}


def key_entry(label: str) -> KeyEntry:
    _, not_before, not_after, revoked_at = KEYS[label]
    return KeyEntry(KID[label], RAW[label], not_before, not_after, revoked_at)


def directory_unsigned(serial: int = 7, issued_at: datetime | None = None, days: int = 6) -> dict[str, Any]:
    issued = issued_at or NOW - timedelta(hours=1)

    def node(country: str, status: str, mode: str) -> NodeEntry:
        labels = [lb for lb in KEYS if KEYS[lb][0] == country and lb not in UNLISTED]
        return NodeEntry(country, f"https://ncc-{country.lower()}.example.eu", status, mode, tuple(map(key_entry, labels)))

    nodes = [node("DE", "active", "replicate"), node("FR", "active", "query-only"), node("AT", "suspended", "replicate")]
    return build_directory(serial, issued, issued + timedelta(days=days), "https://hub.example.eu", [key_entry("hub")], nodes)


def fields(
    label: str = "DE-current",
    *,
    origin: str = "DE",
    type_: str = "organisation",
    uuid: str = ORG_UUID,
    version: int = 1,
    issued_at: datetime | None = None,
    visibility: str = "public",
    deleted: bool = False,
    payload: Any = None,
    schema: int = 1,
) -> dict[str, Any]:
    return {
        "ncc": 1,
        "id": f"urn:ncc:{origin}:{type_}:{uuid}",
        "type": type_,
        "schema": f"{type_}/{schema}",
        "origin": origin,
        "version": version,
        "issued_at": T(issued_at or NOW - timedelta(minutes=10)),
        "visibility": visibility,
        "deleted": deleted,
        "payload": copy.deepcopy(ORGANISATION if payload is None else payload),
    }


#: The FORM-ECCC-001 sections organisation/2 adds (DESIGN §12).
FORM_ECCC: dict[str, Any] = {
    "general_email": "info@cyberlab.example", "phone": "+49 30 1234567",
    "headquarters": {"is_headquarters": False, "parent": "Cyber Holding AG (AT)"},
    "subsidiaries": {"in_other_member_states": True, "list": ["Cyber Lab SARL (FR)"]},
    "majority_owned_outside_eu": {"value": False}, "exclusion_declaration": True,
}


def signed(label: str = "DE-current", **kw: Any) -> dict[str, Any]:
    return sign_record(fields(label, **kw), PRIV[label], KID[label]).to_dict()


def signed_raw(unsigned: dict[str, Any], label: str = "DE-current") -> dict[str, Any]:
    """Sign without any structural check (for envelopes that must fail before the signature)."""
    try:
        value = b64url_encode(PRIV[label].sign(record_signing_input(unsigned)))
    except Exception:  # noqa: BLE001 - not canonicalisable: the signature is never reached, any 64 bytes do
        value = b64url_encode(bytes(64))
    return {**unsigned, "sig": {"alg": "Ed25519", "kid": KID[label], "value": value}}


def good_envelopes() -> list[dict[str, Any]]:
    expert = {"type_": "expert", "uuid": EXPERT_UUID, "payload": EXPERT}
    cases = [
        ("organisation", signed()),
        ("organisation-v2-network", signed(version=2, visibility="network")),
        ("expert-public-consent", signed(**expert)),
        ("expert-national-no-consent", signed(**{**expert, "payload": {**EXPERT, "consent": {"given": False}}}, visibility="national")),
        ("tombstone-withdrawn", signed(version=3, deleted=True, payload={"reason": "withdrawn"})),
        ("old-key-inside-window", signed("DE-old", issued_at=datetime(2025, 6, 1, tzinfo=UTC))),
        ("revoked-key-before-revocation", signed("DE-revoked", issued_at=datetime(2026, 5, 31, 23, 59, 59, tzinfo=UTC))),
        ("issued-within-skew", signed(issued_at=NOW + timedelta(minutes=5))),
        ("suspended-node", signed("AT-suspended", origin="AT", payload={**ORGANISATION, "country": "AT"})),
        # DESIGN §11: a newer schema version, validated against the version the envelope names
        ("organisation-schema-2", signed(schema=2, payload={**ORGANISATION, **FORM_ECCC})),
        ("organisation-schema-2-minimal", signed(schema=2)),
    ]
    out = []
    for name, env in cases:
        unsigned = {k: v for k, v in env.items() if k != "sig"}
        signing_input = record_signing_input(unsigned)
        out.append(
            {
                "name": name,
                "envelope": env,
                "signing_input_utf8": signing_input.decode("utf-8"),
                "digest": hashlib.sha256(signing_input).hexdigest(),
            }
        )
    return out


def bad_envelopes() -> list[dict[str, Any]]:
    base = signed()
    expert = {"type_": "expert", "uuid": EXPERT_UUID}
    cases: list[dict[str, Any]] = []

    def add(name: str, code: str, env: dict[str, Any], **extra: Any) -> None:
        cases.append({"name": name, "code": code, "envelope": env, **extra})

    def without(key: str) -> dict[str, Any]:
        return {k: v for k, v in base.items() if k != key}

    add("missing-sig", "envelope_invalid", without("sig"))
    add("missing-payload", "envelope_invalid", without("payload"))
    add("unknown-field", "envelope_invalid", {**base, "comment": "hi"})
    add("version-zero", "envelope_invalid", signed_raw({**fields(), "version": 0}))
    add("version-bool", "envelope_invalid", signed_raw({**fields(), "version": True}))
    add("ncc-2", "envelope_invalid", signed_raw({**fields(), "ncc": 2}))
    add("id-not-urn", "envelope_invalid", signed_raw({**fields(), "id": "DE-123"}))
    add("id-uppercase-uuid", "envelope_invalid", signed_raw({**fields(), "id": f"urn:ncc:DE:organisation:{ORG_UUID.upper()}"}))
    add("issued-at-fractional", "envelope_invalid", signed_raw({**fields(), "issued_at": "2026-11-26T11:50:00.5Z"}))
    add("issued-at-offset", "envelope_invalid", signed_raw({**fields(), "issued_at": "2026-11-26T11:50:00+00:00"}))
    add("visibility-unknown", "envelope_invalid", signed_raw({**fields(), "visibility": "secret"}))
    add("schema-other-type", "envelope_invalid", signed_raw({**fields(), "schema": "expert/1"}))
    add("tombstone-with-data", "envelope_invalid", signed_raw(fields(deleted=True, payload={"reason": "withdrawn", "legal_name": "x"})))
    add("tombstone-bad-reason", "envelope_invalid", signed_raw(fields(deleted=True, payload={"reason": "bored"})))
    add("sig-alg-hs256", "envelope_invalid", {**base, "sig": {**base["sig"], "alg": "HS256"}})
    add("sig-padded-base64", "envelope_invalid", {**base, "sig": {**base["sig"], "value": base["sig"]["value"] + "=="}})
    add("sig-short", "envelope_invalid", {**base, "sig": {**base["sig"], "value": base["sig"]["value"][:40]}})
    add("payload-int-2^53", "canonicalization_error", signed_raw(fields(payload={**ORGANISATION, "n": 2**53})))
    add("payload-lone-surrogate", "canonicalization_error", signed_raw(fields(payload={**ORGANISATION, "description": "a\ud800b"})))
    add("payload-key-lone-surrogate", "canonicalization_error", signed_raw(fields(payload={**ORGANISATION, "\udc00": 1})))
    add("unenrolled-origin", "unknown_origin", signed("PL-unenrolled", origin="PL", payload={**ORGANISATION, "country": "PL"}))
    add("id-origin-differs", "origin_mismatch", signed_raw({**fields(), "id": f"urn:ncc:FR:organisation:{ORG_UUID}"}))
    add("id-type-differs", "origin_mismatch", signed_raw({**fields(), "id": f"urn:ncc:DE:expert:{ORG_UUID}"}))
    add("kid-of-other-country", "origin_mismatch", signed_raw(fields(), "FR-current"))
    add("served-by-other-feed", "origin_mismatch", base, feed_origin="FR")
    add("key-not-in-directory", "unknown_key", signed("DE-unlisted"))
    add("key-not-yet-valid", "key_not_yet_valid", signed("DE-later"))
    add("key-expired", "key_expired", signed("DE-old", issued_at=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)))
    add("key-revoked-at-instant", "key_revoked", signed("DE-revoked", issued_at=datetime(2026, 6, 1, tzinfo=UTC)))
    add("key-revoked", "key_revoked", signed("DE-revoked", issued_at=datetime(2026, 7, 1, tzinfo=UTC)))
    add("issued-beyond-skew", "issued_in_future", signed(issued_at=NOW + timedelta(minutes=5, seconds=1)))
    add("payload-tampered", "signature_invalid", {**base, "payload": {**base["payload"], "legal_name": "Evil GmbH"}})
    add("version-bumped", "signature_invalid", {**base, "version": 2})
    add("signature-of-other-record", "signature_invalid", {**base, "sig": signed(version=2)["sig"]})
    org_missing = {k: v for k, v in ORGANISATION.items() if k != "legal_name"}
    add("organisation-missing-legal-name", "schema_invalid", signed(payload=org_missing), pointers=["/payload/legal_name"])
    add("organisation-unknown-subdomain", "schema_invalid", signed(payload={**ORGANISATION, "subdomains": ["cry.999"]}), pointers=["/payload/subdomains/0"])
    add("organisation-float", "schema_invalid", signed(payload={**ORGANISATION, "sme": 1.5}), pointers=["/payload/sme"])
    add("organisation-schema-1-with-schema-2-fields", "schema_invalid",
        signed(payload={**ORGANISATION, "general_email": "info@cyberlab.example"}), pointers=["/payload"])
    add("organisation-unknown-schema-version", "schema_invalid", signed(schema=3), pointers=["/payload"])
    add("unknown-record-type", "schema_invalid", signed(type_="spaceship", payload={"name": "x"}), pointers=["/payload"])
    no_consent = {**EXPERT, "consent": {"given": False}}
    add("expert-public-without-consent", "consent_missing", signed(**expert, payload=no_consent))
    add("expert-network-without-consent", "consent_missing", signed(**expert, payload=no_consent, visibility="network"))
    narrow = {**EXPERT, "consent": {"given": True, "scope": "network"}}
    add("expert-public-network-scope", "consent_missing", signed(**expert, payload=narrow))
    return cases


def ingest_cases(good: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_name = {g["name"]: g for g in good}
    v1 = by_name["organisation"]
    v2 = by_name["organisation-v2-network"]
    other_v1 = signed(payload={**ORGANISATION, "legal_name": "Cyber Lab AG"})
    other_digest = hashlib.sha256(record_signing_input({k: v for k, v in other_v1.items() if k != "sig"})).hexdigest()
    return [
        {"name": "first-sight", "incoming": v1["envelope"], "held": None, "decision": "accept"},
        {"name": "newer", "incoming": v2["envelope"], "held": {"version": 1, "digest": v1["digest"]}, "decision": "accept"},
        {"name": "stale", "incoming": v1["envelope"], "held": {"version": 2, "digest": v2["digest"]}, "decision": "stale"},
        {"name": "duplicate", "incoming": v1["envelope"], "held": {"version": 1, "digest": v1["digest"]}, "decision": "duplicate"},
        {
            "name": "equivocation",
            "code": "equivocation",
            "incoming": other_v1,
            "held": {"version": 1, "digest": v1["digest"]},
            "incoming_digest": other_digest,
            "decision": "equivocation",
        },
        # DESIGN §15: the hub takes a live group record only from a member of the group (``groups``: each
        # group's members at the hub); a tombstone always
        {"name": "group-member", "incoming": signed(visibility="group:civdef"), "held": None,
         "groups": {"civdef": ["DE", "FR"]}, "decision": "accept"},
        {"name": "group-non-member", "code": "group_invalid", "incoming": signed(visibility="group:civdef"),
         "held": None, "groups": {"civdef": ["FR"]}, "decision": "accept"},
        {"name": "group-unknown", "code": "group_invalid", "incoming": signed(visibility="group:gone"),
         "held": None, "groups": {"civdef": ["DE"]}, "decision": "accept"},
    ]


def directories() -> dict[str, Any]:
    hub, hub_kid = PRIV["hub"], KID["hub"]
    good = sign_directory(directory_unsigned(), hub, hub_kid)
    previous = sign_directory(directory_unsigned(serial=6, issued_at=NOW - timedelta(days=2)), hub, hub_kid)
    newer = sign_directory(directory_unsigned(serial=8), hub, hub_kid)
    tampered = copy.deepcopy(good)
    tampered["nodes"][0]["url"] = "https://evil.example.eu"
    other_hub = private_key_from_seed(seed("rogue-hub"))
    rogue_kid = kid_for("hub", public_key_raw(other_hub))
    rogue_unsigned = directory_unsigned(serial=9)
    rogue_unsigned["hub"]["keys"] = [KeyEntry(rogue_kid, public_key_raw(other_hub), NOW - timedelta(days=1)).to_dict()]
    rogue = sign_directory(rogue_unsigned, other_hub, rogue_kid)
    same_serial = sign_directory(directory_unsigned(serial=7, issued_at=NOW - timedelta(minutes=30)), hub, hub_kid)
    # DESIGN §11: a newer hub's directory, with the accepted schemas and a field this version does not
    # know (kept, so its signature verifies)
    newer_hub = directory_unsigned(serial=8)
    newer_hub["schemas"] = ["expert/1", "facility/1", "organisation/1", "organisation/2", "project/1"]
    newer_hub["nodes"][0]["epoch"] = 2
    newer_hub["future_field"] = {"any": ["value"]}
    return {
        "now": T(NOW),
        "good": good,
        "previous": previous,
        "newer": newer,
        "newer-hub-fields": sign_directory(newer_hub, hub, hub_kid),
        "bad": [
            {"name": "tampered", "code": "directory_invalid", "directory": tampered},
            {"name": "missing-field", "code": "directory_invalid", "directory": {k: v for k, v in good.items() if k != "serial"}},
            {"name": "signed-by-unlisted-key", "code": "directory_invalid",
             "directory": {**good, "sig": {**rogue["sig"]}}},
            {"name": "rogue-hub-key", "code": "directory_invalid", "directory": rogue, "previous": "good"},
            {"name": "lower-serial", "code": "directory_rollback", "directory": previous, "previous": "good"},
            {"name": "same-serial-other-content", "code": "directory_rollback", "directory": same_serial, "previous": "good"},
            {"name": "expired", "code": "directory_expired",
             "directory": sign_directory(directory_unsigned(issued_at=NOW - timedelta(days=7), days=7), hub, hub_kid)},
            {"name": "window-over-7-days", "code": "directory_expired",
             "directory": sign_directory(directory_unsigned(days=8), hub, hub_kid)},
            {"name": "issued-in-future", "code": "directory_invalid",
             "directory": sign_directory(directory_unsigned(issued_at=NOW + timedelta(hours=1)), hub, hub_kid)},
        ],
    }


def tokens() -> dict[str, Any]:
    de, de_kid, hub, hub_kid = PRIV["DE-current"], KID["DE-current"], PRIV["hub"], KID["hub"]
    good = issue_service_token(de, de_kid, "DE", "hub", NOW, ttl_s=60, jti="svc-1")
    pub_pem = de.public_key().public_bytes_raw()
    hs256 = jwt.api_jws.PyJWS(algorithms=["HS256"]).encode(
        json.dumps({"iss": "DE", "aud": "hub", "iat": 1, "exp": 2**40, "jti": "x", "typ": "service"}).encode(),
        pub_pem,
        algorithm="HS256",
        headers={"kid": de_kid},
    )
    unsigned_header = b64url_encode(json.dumps({"alg": "none", "kid": de_kid, "typ": "JWT"}).encode())
    unsigned_claims = b64url_encode(json.dumps({"iss": "DE", "aud": "hub", "iat": int(NOW.timestamp()),
                                                "exp": int(NOW.timestamp()) + 60, "jti": "n", "typ": "service"}).encode())
    later = NOW - timedelta(minutes=10)
    return {
        "now": T(NOW),
        "audience": "hub",
        "service": {"good": {"token": good, "kid": de_kid}},
        "service_bad": [
            {"name": "alg-none", "code": "unauthenticated", "token": f"{unsigned_header}.{unsigned_claims}."},
            {"name": "hs256-public-key-as-secret", "code": "unauthenticated", "token": hs256},
            {"name": "expired", "code": "unauthenticated", "token": issue_service_token(de, de_kid, "DE", "hub", later, jti="e")},
            {"name": "wrong-audience", "code": "unauthenticated", "token": issue_service_token(de, de_kid, "DE", "FR", NOW, jti="a")},
            {"name": "lifetime-over-5-min", "code": "unauthenticated",
             "token": jwt.encode({"iss": "DE", "aud": "hub", "iat": int(NOW.timestamp()), "exp": int(NOW.timestamp()) + 301,
                                  "jti": "l", "typ": "service"}, de, algorithm="EdDSA", headers={"kid": de_kid})},
            {"name": "user-token-as-service", "code": "unauthenticated",
             "token": issue_user_token(de, de_kid, "hub", "admin", "alice", NOW, 60, "u")},
            {"name": "unknown-kid", "code": "unauthenticated",
             "token": issue_service_token(PRIV["DE-unlisted"], KID["DE-unlisted"], "DE", "hub", NOW, jti="k")},
            {"name": "garbage", "code": "unauthenticated", "token": "not.a.jwt"},
        ],
        "enrollment": {
            "token": issue_enrollment_token(hub, hub_kid, "FR", NOW, "enroll-jti-1", hub_url="https://hub.example.eu"),
            "hub_kid": hub_kid,
            "jti": "enroll-jti-1",
            "node_public_key": b64url_encode(RAW["FR-current"]),
            "proof_input_utf8": "ncc-enroll-v1\nenroll-jti-1",
            "proof": enrollment_proof(PRIV["FR-current"], "enroll-jti-1"),
        },
        "rotation": make_rotation_statement(PRIV["DE-old"], KID["DE-old"], RAW["DE-current"], "DE", NOW),
    }


CANON_CASES: list[tuple[str, str]] = [
    # (name, input as JSON text); expected output is computed by the reference (rfc8785).
    ("rfc8785-3.2.2-numbers", "[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]"),
    ("rfc8785-3.2.2-literals", ('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
                               ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
                               ' "literals": [null, true, false]}')),
    ("number-1e21", "1e21"),
    ("number-1e20", "1e20"),
    ("number-1e-7", "1e-7"),
    ("number-1e-6", "0.000001"),
    ("negative-zero", "-0.0"),
    ("float-integral", "1.0"),
    ("float-rounding", "5e-324"),
    ("max-double", "1.7976931348623157e308"),
    ("max-safe-integer", "9007199254740991"),
    ("min-safe-integer", "-9007199254740991"),
    ("utf16-key-order", ('{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh",'
                        ' "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control",'
                        ' "\\u00f6": "Latin Small Letter O With Diaeresis"}')),
    ("bmp-private-use-vs-astral-key", '{"\\ue000": 1, "\\ud800\\udc00": 2}'),
    ("string-escapes", '"\\u0000\\u0001\\u001f \\b\\f\\n\\r\\t \\" \\\\ / \\u007f \\u2028\\u2029 \\u00e9 \\ud83d\\udd10"'),
    ("nested", '{"b": [1, {"z": null, "a": true}], "a": {"c": "x", "b": []}}'),
    ("empty", '{"a": {}, "b": [], "c": ""}'),
]
CANON_ERRORS: list[tuple[str, str]] = [
    ("integer-2^53", "9007199254740992"),
    ("integer-minus-2^53", "-9007199254740992"),
    ("nan", "NaN"),
    ("infinity", "[Infinity]"),
    ("lone-high-surrogate", '"\\ud800"'),
    ("lone-low-surrogate-key", '{"\\udc00": 1}'),
]


def canonicalization() -> dict[str, Any]:
    good = []
    for name, text in CANON_CASES:
        out = canonicalize_reference(json.loads(text))
        good.append({"name": name, "input": text, "expected_hex": out.hex(), "expected_utf8": out.decode("utf-8")})
    return {
        "note": "input is JSON text; parse it preserving numbers as IEEE-754 doubles (integers up to 2^53 exact)",
        "good": good,
        "bad": [{"name": n, "input": t, "code": "canonicalization_error"} for n, t in CANON_ERRORS],
    }


STRICTJSON_BAD: list[tuple[str, bytes, str]] = [
    ("empty", b"", "malformed_json"),
    ("not-json", b"{nope}", "malformed_json"),
    ("invalid-utf8", b'{"a": "\xff"}', "malformed_json"),
    ("duplicate-key", b'{"a": 1, "a": 2}', "malformed_json"),
    ("nan", b'{"a": NaN}', "malformed_json"),
    ("too-deep", b"[" * 65 + b"]" * 65, "malformed_json"),
    ("integer-2^53", b'{"a": 9007199254740992}', "canonicalization_error"),
    ("lone-surrogate", b'{"a": "\\ud800"}', "canonicalization_error"),
]


def strictjson() -> dict[str, Any]:
    return {"bad": [{"name": n, "input_hex": b.hex(), "code": c} for n, b, c in STRICTJSON_BAD]}


def keys() -> dict[str, Any]:
    return {
        "derivation": 'private key = SHA-256(b"ncc-test-vector-key:" + label)',
        "keys": [
            {
                "label": label,
                "private_key_hex": seed(label).hex(),
                "public_key": b64url_encode(RAW[label]),
                "kid": KID[label],
                "in_directory": label not in UNLISTED,
            }
            for label in KEYS
        ],
    }


def translog() -> dict[str, Any]:
    """The transparency log (DESIGN §14): entries, leaf hashes, roots, every inclusion and consistency
    proof of a 10-entry log, a signed tree head and an erasure receipt."""
    from federation import merkle
    from federation.translog import directory_entry, record_entry, sign_head, sign_receipt

    entries = [record_entry(f"urn:ncc:DE:organisation:00000000-0000-4000-8000-{i:012d}", 1 + i % 3, "DE",
                            i == 7, hashlib.sha256(f"record {i}".encode()).hexdigest()) for i in range(9)]
    entries.append(directory_entry(2, b"ncc-directory-v1\n{}"))
    leaves = [merkle.leaf_hash(e) for e in entries]
    nodes: dict[tuple[int, int], bytes] = {}
    frontier: list[bytes] = []
    for size, leaf in enumerate(leaves):
        created = merkle.append(size, frontier, leaf)
        nodes.update(created)
        frontier = merkle.next_frontier(size, frontier, created)
    n = len(leaves)
    head = sign_head(n, merkle.root(n, nodes), NOW, PRIV["hub"], KID["hub"])
    receipt = sign_receipt(
        "urn:ncc:DE:organisation:00000000-0000-4000-8000-000000000007", 2, NOW, 7, PRIV["hub"], KID["hub"])
    return {
        "hashing": "leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right) (RFC 9162); hex",
        "entries": [{"entry": e.decode(), "leaf_hash": leaf.hex()} for e, leaf in zip(entries, leaves, strict=True)],
        "roots": {str(size): merkle.root(size, nodes).hex() for size in range(n + 1)},
        "inclusion": [{"index": m, "size": size, "path": [h.hex() for h in merkle.inclusion_path(m, size, nodes)]}
                      for size in range(1, n + 1) for m in range(size)],
        "consistency": [{"from": m, "to": size, "path": [h.hex() for h in merkle.consistency_path(m, size, nodes)]}
                        for size in range(1, n + 1) for m in range(1, size + 1)],
        "head": {"key": "hub", "signed": head},
        "erasure_receipt": {"key": "hub", "signed": receipt},
    }


def build() -> dict[str, str]:
    """Every vector file: name -> exact text."""
    good = good_envelopes()
    envelopes = {"now": T(NOW), "max_skew_s": 300, "directory": "directory.json#good",
                 "good": good, "bad": bad_envelopes(), "ingest": ingest_cases(good)}
    docs = {
        "keys.json": keys(),
        "canonicalization.json": canonicalization(),
        "directory.json": directories(),
        "envelopes.json": envelopes,
        "tokens.json": tokens(),
        "strictjson.json": strictjson(),
        "translog.json": translog(),
    }
    # ASCII-only output: lone surrogates must survive as \\u escapes, and every byte is unambiguous.
    return {name: json.dumps(doc, indent=1, ensure_ascii=True) + "\n" for name, doc in docs.items()}


def main() -> int:
    for name, text in build().items():
        (VECTOR_DIR / name).write_text(text, encoding="ascii")
    return 0


if __name__ == "__main__":
    sys.exit(main())
