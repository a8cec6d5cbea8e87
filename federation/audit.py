"""A node's audit of the hub (DESIGN §14) — pure: what the node published against what the hub logged.

The node knows every version it signed and the latest shareable version of each record (its feed);
the hub's log lists what the hub accepted from it. The comparison reports one discrepancy a line,
``<kind> <id> v<version>``:

- ``dropped``: the node's latest shared version (up to the hub's cursor: the feed compacts, so older
  versions may never have reached the hub) is not in the log;
- ``altered``: the log (or the hub's copy) holds that id and version with another digest;
- ``unknown``: the log holds a version for this origin that the node never signed;
- ``refused``: the hub quarantined the version (with its code);
- ``inconsistent``: a tree head that is not an extension of the one seen before, or a proof that fails;
- ``foreign-key``: the hub's directory lists a key for this country that the node does not hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

KINDS = ("dropped", "altered", "unknown", "refused", "inconsistent", "foreign-key")


@dataclass(frozen=True, order=True)
class Discrepancy:
    kind: str
    subject: str  # a record id, a kid, or "log"
    version: int | None = None
    detail: str = ""

    def line(self) -> str:
        head = f"{self.kind} {self.subject}" + (f" v{self.version}" if self.version is not None else "")
        return f"{head}: {self.detail}" if self.detail else head


@dataclass(frozen=True)
class Published:
    """A version the node signed: ``shared`` when it is the latest shareable version of its record and
    the hub's cursor has passed it (so the hub must hold it)."""

    record_id: str
    version: int
    digest: str
    shared: bool


def compare(published: Iterable[Published], logged: Iterable[Mapping[str, object]],
            refused: Iterable[tuple[str, int, str]] = ()) -> list[Discrepancy]:
    """Compare the node's versions with the log entries of its origin (``{"id", "version", "digest"}``)
    and the hub's quarantine (``(id, version, code)``)."""
    mine = {(p.record_id, p.version): p for p in published}
    seen: dict[tuple[str, int], str] = {}
    out: list[Discrepancy] = []
    for entry in logged:
        raw_version = entry.get("version")
        version = raw_version if isinstance(raw_version, int) and not isinstance(raw_version, bool) else 0
        rid, digest = str(entry.get("id")), str(entry.get("digest"))
        key = (rid, version)
        seen[key] = digest
        ours = mine.get(key)
        if ours is None:
            out.append(Discrepancy("unknown", rid, version, "the log holds a version this node never signed"))
        elif ours.digest != digest:
            out.append(Discrepancy("altered", rid, version, f"logged with digest {digest[:16]}…, "
                                                           f"signed as {ours.digest[:16]}…"))
    quarantined = {(rid, version): code for rid, version, code in refused}
    for (rid, version), code in sorted(quarantined.items()):
        if (rid, version) in mine and (rid, version) not in seen:
            out.append(Discrepancy("refused", rid, version, f"quarantined at the hub ({code})"))
    for p in mine.values():
        if p.shared and (p.record_id, p.version) not in seen and (p.record_id, p.version) not in quarantined:
            out.append(Discrepancy("dropped", p.record_id, p.version, "published, passed by the hub's cursor, "
                                                                      "and not in its log"))
    return sorted(out)


def served(published: Iterable[Published], held: Mapping[str, tuple[int, str]]) -> list[Discrepancy]:
    """Check what the hub serves: each live shared record at the version and digest the node published
    (``held``: id → (version, digest) as the hub serves them)."""
    out: list[Discrepancy] = []
    for p in published:
        if not p.shared or p.record_id not in held:
            continue
        version, digest = held[p.record_id]
        if version == p.version and digest != p.digest:
            out.append(Discrepancy("altered", p.record_id, p.version, "served with another digest"))
        elif version < p.version:
            out.append(Discrepancy("dropped", p.record_id, p.version, f"the hub serves v{version}"))
    return sorted(out)


def foreign_keys(listed: Iterable[str], own: Iterable[str]) -> list[Discrepancy]:
    """Keys the directory lists for this country that the node never held (a key the hub added)."""
    known = set(own)
    return [Discrepancy("foreign-key", kid, None, "listed by the hub for this country; not this node's key")
            for kid in sorted(set(listed) - known)]
