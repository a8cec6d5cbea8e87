"""Storage of the replay-protection table: the ``jti`` of every accepted service token, until it expires."""

from __future__ import annotations

from datetime import datetime

from node.storage.models import SeenJti

#: A stored jti is kept this long past its token's ``exp``: more than the verifier's leeway (30 s), so
#: no token is still acceptable when its jti goes.
PURGE_AFTER_EXP_S = 60


async def purge_seen_jtis(now: datetime) -> int:
    """Drop replay-protection entries whose tokens have expired anyway (run every minute, both roles)."""
    return await SeenJti.filter(expires_at__lt=int(now.timestamp()) - PURGE_AFTER_EXP_S).delete()
