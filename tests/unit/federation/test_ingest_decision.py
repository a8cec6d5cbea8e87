"""Ingest decision: a pure function of the incoming verified record and what is held."""

from __future__ import annotations

import pytest
from fedkit import NOW, directory, gen, registry

from federation.errors import Equivocation
from federation.ingest import Decision, Held, decide, equivocation_error
from federation.verify import VerifiedRecord, verify


def record(version: int = 2, legal_name: str = "Cyber Lab GmbH") -> VerifiedRecord:
    env = gen.signed(version=version, payload={**gen.ORGANISATION, "legal_name": legal_name})
    return verify(env, directory(), NOW, registry())


@pytest.mark.parametrize(
    ("held_version", "same_digest", "expected"),
    [
        (None, True, Decision.ACCEPT),
        (1, False, Decision.ACCEPT),
        (3, False, Decision.STALE),
        (3, True, Decision.STALE),
        (2, True, Decision.DUPLICATE),
        (2, False, Decision.EQUIVOCATION),
    ],
)
def test_decide(held_version: int | None, same_digest: bool, expected: Decision) -> None:
    incoming = record()
    held = None if held_version is None else Held(held_version, incoming.digest if same_digest else "0" * 64)
    assert decide(incoming, held) is expected


def test_equivocation_between_two_real_signatures() -> None:
    a, b = record(legal_name="A"), record(legal_name="B")
    held = Held(a.envelope.version, a.digest)
    assert decide(b, held) is Decision.EQUIVOCATION
    err = equivocation_error(b, held)
    assert isinstance(err, Equivocation) and err.code == "equivocation"
    assert a.digest in err.detail and b.digest in err.detail
