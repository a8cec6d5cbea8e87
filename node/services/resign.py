"""After a key revocation: sign again, under the node's new key, every latest shared version signed by
the revoked key that the hub does not hold (DESIGN §10).

The hub accepts a version only if it received it before its key was revoked, whatever its
``issued_at``: it quarantines the others (``key_revoked``), so without this they would never reach
it and the hub would keep showing the version before (or a record the node has since deleted). The
hub does not hold a version signed after the revocation, one it had not pulled yet (after its
cursor in this feed), nor one it refused (its quarantine for this node). Each such record gets one
new version — the same content (payload, visibility, deleted) signed with the current key — so it
reaches the hub at the next pull. What the hub received before the revocation is left alone.

Only the feed matters: it holds, per record, the latest version that leaves the node. For a record
that has since become ``national`` that version is the ``withdrawn`` tombstone that took it off the
hub; it is signed again with the next national version (as ``Publisher.update`` does when a record
turns national), so the record stays national on the node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from federation.directory import Directory
from federation.timefmt import parse_timestamp
from node.services.publish import Publisher
from node.storage import sql


def revoked_keys(directory_doc: Mapping[str, Any], country: str) -> dict[str, datetime]:
    """This node's revoked kids in a (verified) directory, with when each was revoked."""
    entry = Directory.from_dict(directory_doc).node(country)
    if entry is None:
        return {}
    return {k.kid: k.revoked_at for k in entry.keys if k.revoked_at is not None}


@dataclass(frozen=True)
class HubView:
    """What the hub holds of this node, as far as re-signing needs: its cursor in this node's feed, and
    the records it quarantined as signed by a revoked or retired key."""

    cursor: int
    refused: frozenset[str]


def _signed_by_revoked(envelope: Mapping[str, Any], revoked: Mapping[str, datetime]) -> bool:
    return envelope.get("sig", {}).get("kid") in revoked


def _hub_lacks(seq: int, envelope: Mapping[str, Any], revoked: Mapping[str, datetime], hub: HubView | None) -> bool:
    """Whether the hub does not hold this feed version, which a revoked key signed (DESIGN §10: the hub
    accepts a version only if it received it before the key's revocation)."""
    kid = envelope.get("sig", {}).get("kid")
    if kid not in revoked:
        return False
    if parse_timestamp(envelope["issued_at"]) >= revoked[kid]:
        return True  # signed after the revocation: refused whenever it arrives
    if hub is None:
        return True  # the hub could not be asked: sign again (a new version of the same content is harmless)
    # not pulled yet (it would arrive after the revocation), or pulled after it and refused
    return seq > hub.cursor or envelope.get("id") in hub.refused


async def _candidates(revoked: Mapping[str, datetime], hub: HubView | None) -> list[str]:
    from tortoise.connection import connections

    found: list[str] = []
    for kid in revoked:
        # the kid is in every envelope it signed: narrow in SQL, then decide on the parsed envelope
        rows = await sql.fetch(connections.get("default"),
                               "SELECT record_id, seq, envelope FROM feed WHERE envelope LIKE ? ESCAPE '\\'",
                               [sql.signed_by_pattern(kid)])
        found += [str(r["record_id"]) for r in rows
                  if _hub_lacks(int(r["seq"]), orjson.loads(r["envelope"]), revoked, hub)]
    return sorted(found)


async def resign_after_revocation(publisher: Publisher, revoked: Mapping[str, datetime],
                                  hub: HubView | None = None) -> list[str]:
    """Publish a new version, signed with ``publisher``'s key, of every record whose feed version a key
    in ``revoked`` signed and the hub does not hold (see ``_hub_lacks``; ``hub`` is what the hub said
    it holds, None when it could not be asked); return their ids.

    Safe to run while the node serves and to run again (a record already signed again no longer
    matches). Raises what the database raises.
    """
    return [rid for rid in await _candidates(revoked, hub)
            if await publisher.sign_again(rid, lambda shared: _signed_by_revoked(shared, revoked))]
