"""Protocol costs per record, on one core: ``python -m benchmarks.protocol [--n N] [--repeat R]``.

Prints one JSON object with rates per second (median of R runs of N operations each):

- ``verify_only_per_s`` — bare Ed25519 verification of a prepared signing input (the floor);
- ``canonicalize_fast_per_s`` / ``canonicalize_reference_per_s`` — RFC 8785 by the fast path
  (``federation.canonical.canonicalize``) and by the pure-Python reference (``rfc8785``);
- ``validate_per_s`` — compiled JSON Schema validation of the payload;
- ``pipeline_per_s`` — ``federation.verify.verify``: parse the envelope, canonicalise, directory and
  key checks, signature, schema, consent;
- ``pipeline_vs_verify`` — pipeline / bare verify, the median of per-round ratios with the two
  measured back to back in each round (target ≥ 0.8).

Records are realistic organisation envelopes of about 1.5 KB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any

import schemas
from benchmarks._harness import one_core
from federation.canonical import canonicalize, canonicalize_reference, fast_path_applies
from federation.directory import KeyEntry, NodeEntry, build_directory, sign_directory, verify_directory
from federation.envelope import sign_record
from federation.formats import CUSTOM_FORMATS
from federation.keys import b64url_decode, kid_for, private_key_from_seed, public_key_raw
from federation.schemas import SchemaRegistry, schema_id_for
from federation.timefmt import format_timestamp
from federation.verify import verify

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)

PAYLOAD: dict[str, Any] = {
    "legal_name": "Österreichisches Institut für Kryptografie und Netzsicherheit GmbH",
    "national_name": "Österreichisches Institut für Kryptografie und Netzsicherheit",
    "country": "AT",
    "website": "https://www.oeik.example.at/",
    "org_type": "ctype.academic-research",
    "sme": False,
    "identifiers": {"pic": "912345678", "vat": "ATU12345678", "registration_number": "FN 123456a"},
    "fields_of_activity": ["foa.academia-research-innovation", "foa.training-education"],
    "domains": ["cry", "dsp"],
    "subdomains": ["cry.01", "cry.10"],
    "sectors": ["sec.energy", "sec.financial"],
    "technologies": ["tech.quantum-technologies-e-g-computing-and-communication"],
    "use_cases": ["uc.critical-infrastructure-protection-cip"],
    "description": (
        "Forschung zu Post-Quanten-Kryptografie und sicheren Schlüsselverwaltungssystemen für "
        "Energienetze; Schulungen für Betreiber kritischer Infrastrukturen in ganz Österreich."
    ),
    "keywords": ["Kryptografie", "post-quantum", "Schlüsselverwaltung", "Energienetze"],
    "contact": {
        "first_name": "Jürgen",
        "family_name": "Größ",
        "email": "juergen.groess@oeik.example.at",
        "position": "Leiter Forschung",
        "phone": "+43 1 4277 38000",
    },
    "membership": {"status": "registered", "assessed_at": "2026-03-12T09:30:00Z", "assessed_by": "NCC-AT"},
    "consent": {"share_with_eccc_and_nccs": True},
}


def _once(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def _rate(fn: Callable[[], object], n: int, repeat: int) -> float:
    for _ in range(min(n, 200)):  # warm-up
        fn()
    return round(statistics.median(_once(fn, n) for _ in range(repeat)), 1)


def _paired(base: Callable[[], object], other: Callable[[], object], n: int, repeat: int) -> tuple[float, float, float]:
    """Rates of ``base`` and ``other`` measured back to back in each round, and the median ratio.

    The machine is noisy (2× swings between runs); pairing the two in every round keeps the ratio
    meaningful even when the absolute rates drift.
    """
    for _ in range(min(n, 200)):
        base()
        other()
    rounds = [(_once(base, n), _once(other, n)) for _ in range(repeat)]
    ratio = statistics.median(o / b for b, o in rounds)
    return (
        round(statistics.median(b for b, _ in rounds), 1),
        round(statistics.median(o for _, o in rounds), 1),
        round(ratio, 3),
    )


def _setup() -> tuple[dict[str, Any], Any, SchemaRegistry]:
    node_key = private_key_from_seed(b"\x11" * 32)
    hub_key = private_key_from_seed(b"\x22" * 32)
    node_kid = kid_for("AT", public_key_raw(node_key))
    hub_kid = kid_for("hub", public_key_raw(hub_key))
    since = NOW - timedelta(days=30)
    unsigned_directory = build_directory(
        1,
        NOW - timedelta(hours=1),
        NOW + timedelta(days=6),
        "https://hub.example.eu",
        [KeyEntry(hub_kid, public_key_raw(hub_key), since)],
        [NodeEntry("AT", "https://ncc-at.example.eu", "active", "replicate",
                   (KeyEntry(node_kid, public_key_raw(node_key), since),))],
    )
    directory = verify_directory(sign_directory(unsigned_directory, hub_key, hub_kid), NOW)
    fields = {
        "ncc": 1,
        "id": "urn:ncc:AT:organisation:0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a11",
        "type": "organisation",
        "schema": "organisation/1",
        "origin": "AT",
        "version": 3,
        "issued_at": format_timestamp(NOW - timedelta(minutes=10)),
        "visibility": "public",
        "deleted": False,
        "payload": PAYLOAD,
    }
    envelope = sign_record(fields, node_key, node_kid).to_dict()
    registry = SchemaRegistry(schemas.load_schema_documents(), CUSTOM_FORMATS)
    return envelope, directory, registry


def run(n: int, repeat: int) -> dict[str, Any]:
    """Measure and return the report (on one core: the affinity is restored when it returns)."""
    with one_core() as pinned:
        return _run(n, repeat, pinned)


def _run(n: int, repeat: int, pinned: str) -> dict[str, Any]:
    envelope, directory, registry = _setup()
    unsigned = {k: v for k, v in envelope.items() if k != "sig"}
    assert fast_path_applies(unsigned) and canonicalize(unsigned) == canonicalize_reference(unsigned)
    record = verify(envelope, directory, NOW, registry)  # also proves the setup verifies
    signing_input = record.envelope.signing_input()
    signature = b64url_decode(envelope["sig"]["value"])
    public_key = record.key.key
    sid = schema_id_for(envelope["schema"])

    verify_only, pipeline, ratio = _paired(
        lambda: public_key.verify(signature, signing_input),
        lambda: verify(envelope, directory, NOW, registry),
        n,
        repeat,
    )
    fast = _rate(lambda: canonicalize(unsigned), n, repeat)
    reference = _rate(lambda: canonicalize_reference(unsigned), max(n // 4, 1), repeat)
    validate = _rate(lambda: registry.validate(sid, PAYLOAD), n, repeat)
    return {
        "benchmark": "protocol",
        "record_bytes": len(json.dumps(envelope, ensure_ascii=False).encode("utf-8")),
        "n": n,
        "repeat": repeat,
        "verify_only_per_s": verify_only,
        "canonicalize_fast_per_s": fast,
        "canonicalize_reference_per_s": reference,
        "canonicalize_fast_vs_reference": round(fast / reference, 1),
        "validate_per_s": validate,
        "validate_vs_verify": round(validate / verify_only, 1),
        "pipeline_per_s": pipeline,
        "pipeline_vs_verify": ratio,
        "target_pipeline_vs_verify": 0.8,
        "machine": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpu_count": os.cpu_count(),
            "pinned": pinned,
            "libraries": {
                name: metadata.version(name)
                for name in ("cryptography", "orjson", "rfc8785", "jsonschema-rs", "PyJWT")
            },
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.protocol", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="operations per run (default 3000)")
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement; the median is reported")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeat < 1:
        parser.error("--n and --repeat must be ≥ 1")
    print(json.dumps(run(args.n, args.repeat), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
