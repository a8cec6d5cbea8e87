"""After a key revocation: sign again, under the node's new key, what the node published with the
revoked key after it was revoked.

The hub quarantines such versions (``key_revoked``), so without this they would never reach it: the
hub would keep showing the version before (or a record the node has since deleted). Each affected
record gets one new version — the same content (payload, visibility, deleted) signed with the
current key — so it reaches the hub at the next pull. Records signed before the revocation are
left alone: they stay valid.

Only the feed matters: it holds, per record, the latest version that leaves the node. For a record
that has since become ``national`` that version is the ``withdrawn`` tombstone that took it off the
hub; it is signed again with the next national version (as ``Publisher.update`` does when a record
turns national), so the record stays national on the node.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def _signed_after_revocation(envelope: Mapping[str, Any], revoked: Mapping[str, datetime]) -> bool:
    kid = envelope.get("sig", {}).get("kid")
    return kid in revoked and parse_timestamp(envelope["issued_at"]) >= revoked[kid]


async def _candidates(revoked: Mapping[str, datetime]) -> list[str]:
    from tortoise.connection import connections

    found: list[str] = []
    for kid in revoked:
        # the kid is in every envelope it signed: narrow in SQL, then decide on the parsed envelope
        rows = await sql.fetch(connections.get("default"),
                               "SELECT record_id, envelope FROM feed WHERE envelope LIKE ? ESCAPE '\\'",
                               [sql.signed_by_pattern(kid)])
        found += [str(r["record_id"]) for r in rows if _signed_after_revocation(orjson.loads(r["envelope"]), revoked)]
    return sorted(found)


async def resign_after_revocation(publisher: Publisher, revoked: Mapping[str, datetime]) -> list[str]:
    """Publish a new version, signed with ``publisher``'s key, of every record whose feed version a
    key in ``revoked`` signed at or after its revocation; return their ids.

    Safe to run while the node serves and to run again (a record already signed again no longer
    matches). Raises what the database raises.
    """
    return [rid for rid in await _candidates(revoked)
            if await publisher.sign_again(rid, lambda shared: _signed_after_revocation(shared, revoked))]
