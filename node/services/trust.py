"""Which keys this instance trusts for service tokens.

* At a node: the hub's keys, from the signed directory the node holds (pinned at enrollment).
* At the hub: the keys of enrolled, active nodes, valid now and not revoked.
"""

from __future__ import annotations

from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation.keys import b64url_decode, parse_kid, public_key_from_raw
from federation.timefmt import format_timestamp
from node.context import Context
from node.storage.models import NodeState

DIRECTORY_STATE_KEY = "hub_directory"


async def held_directory() -> dict[str, Any] | None:
    """The last verified directory this node received from its hub, if enrolled."""
    row = await NodeState.filter(key=DIRECTORY_STATE_KEY).first()
    return None if row is None else orjson.loads(row.value)


async def service_key(context: Context, kid: str) -> Ed25519PublicKey | None:
    """The public key a service token with this ``kid`` must be signed with, or None."""
    try:
        # The kid comes from an unverified token header: anything that is not a well-formed kid names
        # no key, and never reaches SQL (PostgreSQL fails on a NUL character: a 500 for anyone).
        parse_kid(kid)
    except ValueError:
        return None
    if context.settings.role == "node":
        directory = await held_directory()
        if directory is None:
            return None
        for key in directory.get("hub", {}).get("keys", []):
            if key.get("kid") == kid and not key.get("revoked_at"):
                return public_key_from_raw(b64url_decode(key["public_key"]))
        return None
    from node.storage.hub_models import FederatedNode, NodeKey

    key_row = await NodeKey.filter(kid=kid).first()
    if key_row is None or key_row.revoked_at is not None:
        return None
    now = format_timestamp(context.clock())
    if key_row.not_before > now or (key_row.not_after is not None and key_row.not_after < now):
        return None
    node = await FederatedNode.filter(country=key_row.country).first()
    if node is None or node.status != "active":
        return None
    return public_key_from_raw(b64url_decode(key_row.public_key))
