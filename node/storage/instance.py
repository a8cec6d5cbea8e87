"""Which instance a database belongs to: one database, one instance.

``ncc init`` claims the database it is given and refuses one that already holds an instance (a second
node on a node's database, or a hub on a node's, would mix two registries and their keys). The claim
is a row of ``node_state``; databases initialised before the claim existed are recognised by what
they hold.
"""

from __future__ import annotations

from typing import Any

import orjson

from node.storage.hub_models import DirectoryDoc, FederatedNode, HubRecord
from node.storage.models import ApiToken, FeedEntry, NodeState, Record

CLAIM_KEY = "instance"


async def holder() -> dict[str, Any] | None:
    """The instance this database belongs to (``{"role", "country", "kid", "created_at"}``), ``{}``
    for an instance initialised before claims were recorded, or None for a database nobody holds."""
    row = await NodeState.filter(key=CLAIM_KEY).first()
    if row is not None:
        claim = orjson.loads(row.value)
        return claim if isinstance(claim, dict) else {}
    for model in (Record, FeedEntry, ApiToken, HubRecord, FederatedNode, DirectoryDoc):
        if await model.exists():
            return {}
    return None


async def claim(role: str, country: str, kid: str, created_at: str) -> None:
    """Record that this instance holds the database (inside the caller's checks: see ``holder``)."""
    value = orjson.dumps({"role": role, "country": country, "kid": kid, "created_at": created_at}).decode()
    await NodeState.create(key=CLAIM_KEY, value=value)


def describe(claim: dict[str, Any]) -> str:
    """``the node instance DE:abc… (initialised 2026-…)`` for a refusal message."""
    if not claim:
        return "an existing instance"
    who = "hub" if claim.get("role") == "hub" else f"{claim.get('country', '?')} node"
    return f"the {who} instance {claim.get('kid', '?')} (initialised {claim.get('created_at', '?')})"
