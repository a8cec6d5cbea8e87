"""What the hub does with a verified record, given what it already holds for that id.

A pure function, like python-tuf's trusted-metadata rules: no storage, no clock. The caller looks up
what it holds for ``incoming.envelope.id`` and acts on the decision:

* ``ACCEPT`` — newer version (or first sight): store it;
* ``STALE`` — lower version than held: ignore;
* ``DUPLICATE`` — same version, same digest: ignore;
* ``EQUIVOCATION`` — same version, different digest: the origin signed two different contents for
  one version. Keep both as evidence and quarantine the record with code ``equivocation``
  (:class:`federation.errors.Equivocation`);
* ``REGRESSED`` — newer version whose ``issued_at`` is strictly earlier than the held version's:
  quarantine it with ``issued_at_regressed`` (:class:`federation.errors.IssuedAtRegressed`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from federation.errors import Equivocation, IssuedAtRegressed
from federation.timefmt import format_timestamp
from federation.verify import VerifiedRecord


@dataclass(frozen=True, slots=True)
class Held:
    """The version and digest the hub holds for a record id."""

    version: int
    digest: str
    #: The held version's ``issued_at`` (timestamp text); None when not known.
    issued_at: str | None = None


class Decision(enum.Enum):
    """Outcome of :func:`decide`."""

    ACCEPT = "accept"
    STALE = "stale"
    DUPLICATE = "duplicate"
    EQUIVOCATION = "equivocation"
    REGRESSED = "issued_at_regressed"


def _stamp(value: str | datetime) -> str:
    return value if isinstance(value, str) else format_timestamp(value)


def decide(incoming: VerifiedRecord, held: Held | None) -> Decision:
    """Decide what to do with ``incoming`` given ``held`` (``None`` when nothing is held)."""
    if held is None:
        return Decision.ACCEPT
    version = incoming.envelope.version
    if version > held.version:
        if held.issued_at is not None and _stamp(incoming.envelope.issued_at) < held.issued_at:
            return Decision.REGRESSED  # (whole-second UTC timestamps compare as text)
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


def regressed_error(incoming: VerifiedRecord, held: Held) -> IssuedAtRegressed:
    """The error to quarantine a version whose ``issued_at`` went backwards with."""
    env = incoming.envelope
    return IssuedAtRegressed(
        f"{env.id} version {env.version} issued at {_stamp(env.issued_at)}, before the held version"
        f" {held.version} ({held.issued_at})"
    )
