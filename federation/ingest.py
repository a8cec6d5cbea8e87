"""What the hub does with a verified record, given what it already holds for that id.

A pure function, like python-tuf's trusted-metadata rules: no storage, no clock. The caller looks up
what it holds for ``incoming.envelope.id`` and acts on the decision:

* ``ACCEPT`` — newer version (or first sight): store it;
* ``STALE`` — lower version than held: ignore;
* ``DUPLICATE`` — same version, same digest: ignore;
* ``EQUIVOCATION`` — same version, different digest: the origin signed two different contents for
  one version. Keep both as evidence and quarantine the record with code ``equivocation``
  (:class:`federation.errors.Equivocation`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from federation.errors import Equivocation
from federation.verify import VerifiedRecord


@dataclass(frozen=True, slots=True)
class Held:
    """The version and digest the hub holds for a record id."""

    version: int
    digest: str


class Decision(enum.Enum):
    """Outcome of :func:`decide`."""

    ACCEPT = "accept"
    STALE = "stale"
    DUPLICATE = "duplicate"
    EQUIVOCATION = "equivocation"


def decide(incoming: VerifiedRecord, held: Held | None) -> Decision:
    """Decide what to do with ``incoming`` given ``held`` (``None`` when nothing is held)."""
    if held is None:
        return Decision.ACCEPT
    version = incoming.envelope.version
    if version > held.version:
        return Decision.ACCEPT
    if version < held.version:
        return Decision.STALE
    return Decision.DUPLICATE if incoming.digest == held.digest else Decision.EQUIVOCATION


def equivocation_error(incoming: VerifiedRecord, held: Held) -> Equivocation:
    """The error to quarantine an equivocating record with (both digests in the detail)."""
    env = incoming.envelope
    return Equivocation(
        f"{env.id} version {env.version}: held digest {held.digest}, incoming digest {incoming.digest}"
    )
