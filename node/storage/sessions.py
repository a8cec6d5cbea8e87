"""Storage of portal sessions (only a SHA-256 of each session id is kept) and the token rows they use."""

from __future__ import annotations

from node.storage.models import ApiToken, PortalSession


async def find(id_hash: str) -> PortalSession | None:
    return await PortalSession.filter(id_hash=id_hash).first()


async def delete(id_hash: str) -> None:
    await PortalSession.filter(id_hash=id_hash).delete()


async def create(id_hash: str, jti: str, created_at: str, expires_at: int) -> None:
    await PortalSession.create(id_hash=id_hash, jti=jti, created_at=created_at, expires_at=expires_at)


async def purge(now_ts: int) -> int:
    """Drop sessions that expired at or before ``now_ts`` (seconds); return how many."""
    return await PortalSession.filter(expires_at__lte=now_ts).delete()


async def token(jti: str) -> ApiToken | None:
    return await ApiToken.filter(jti=jti).first()
