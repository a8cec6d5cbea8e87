"""Which keys this instance trusts for service tokens.

* At a node: the hub's keys, from the signed directory the node holds (pinned at enrollment).
* At the hub: the keys of enrolled nodes, valid now and not revoked (a suspended node authenticates,
  and the federation routes refuse it with 403).
"""

from __future__ import annotations

from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation.keys import b64url_decode, parse_kid, public_key_from_raw
from federation.timefmt import format_timestamp
from node.context import Context
from node.errors import Forbidden, Unauthenticated
from node.storage.models import NodeState

DIRECTORY_STATE_KEY = "hub_directory"


async def held_directory() -> dict[str, Any] | None:
    """The last verified directory this node received from its hub, if enrolled."""
    row = await NodeState.filter(key=DIRECTORY_STATE_KEY).first()
    return None if row is None else orjson.loads(row.value)


async def service_key(context: Context, kid: str) -> Ed25519PublicKey | None:
    """The public key a service token with this ``kid`` must be signed with, or None (unknown key).

    Raises:
        Unauthenticated: at the hub, a known node key that is revoked, not yet valid or expired, with
            a detail and ``reason`` saying which.
    """
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
    if key_row is None:
        return None
    node = await FederatedNode.filter(country=key_row.country).first()
    if node is None:
        return None
    # The directory is public, so saying why a known key is refused tells a forger nothing new, and
    # it tells the node what to do (a revoked key: re-enroll with a new one; an old key: use the current).
    now = format_timestamp(context.clock())
    if key_row.revoked_at is not None:
        raise Unauthenticated(
            f"key {kid} was revoked at {key_row.revoked_at}; the node must re-enroll with a fresh "
            "invitation and a new key", reason="key_revoked")
    if key_row.not_before > now:
        raise Unauthenticated(f"key {kid} is valid only from {key_row.not_before}", reason="key_not_yet_valid")
    if key_row.not_after is not None and key_row.not_after < now:
        raise Unauthenticated(f"key {kid} expired at {key_row.not_after} (rotated out)", reason="key_expired")
    # A suspended node still authenticates; the federation routes then refuse it with 403 and say why
    # (require_active_node), so a forged token naming a suspended node stays a plain 401.
    return public_key_from_raw(b64url_decode(key_row.public_key))


async def require_active_node(country: str) -> None:
    """At the hub: refuse an authenticated node the hub has suspended.

    Raises:
        Forbidden: the node is suspended (``reason: node_suspended``) or no longer enrolled.
    """
    from node.storage.hub_models import FederatedNode

    node = await FederatedNode.filter(country=country).first()
    if node is None:
        raise Forbidden(f"node {country} is not enrolled at this hub")
    if node.status != "active":
        raise Forbidden(f"node {country} is {node.status} at this hub: the hub neither accepts its calls nor "
                        "pulls it until the hub admin reactivates it", reason="node_suspended")
