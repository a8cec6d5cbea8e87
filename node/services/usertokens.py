"""Issuing user tokens: the one place that signs a user JWT and records it in ``api_tokens``.

The row is what authentication trusts (node/http/auth.py: ``check_stored_token``): its expiry, its
revocation, its role and the kid that signed it, whatever the JWT itself claims.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from federation.timefmt import format_timestamp
from federation.tokens import issue_user_token
from node.keystore import InstanceKey
from node.storage.models import ApiToken


@dataclass(frozen=True)
class IssuedToken:
    token: str
    jti: str
    subject: str
    expires_at: str


async def issue_and_record(key: InstanceKey, instance: str, role: str, subject: str, now: datetime,
                           ttl_s: int, groups: tuple[str, ...] = ()) -> IssuedToken:
    """Sign a user token with ``key`` and record it (call inside an open database).

    Raises:
        ValueError: ``ttl_s`` is not positive.
    """
    now = now.replace(microsecond=0)
    jti = uuid.uuid4().hex
    subject = subject or f"{role}-{jti[:8]}"
    groups = tuple(sorted(set(groups)))
    token = issue_user_token(key.private_key, key.kid, instance, role, subject, now, ttl_s, jti, groups)
    expires_at = format_timestamp(now + timedelta(seconds=ttl_s))
    await ApiToken.create(jti=jti, role=role, subject=subject, created_at=format_timestamp(now),
                          expires_at=expires_at, kid=key.kid, groups=",".join(groups) or None)
    return IssuedToken(token, jti, subject, expires_at)
