"""Who is calling: the principal every access decision is made for.

Apart from any transport: ``node.http.auth`` makes one from a request's bearer token, the portal
from its session, and services (``node.services.assessment``, ``node.access``) decide by it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The user roles of each instance role (DESIGN §5; assessor: DESIGN §12).
NODE_ROLES = ("admin", "editor", "reader", "assessor")
HUB_ROLES = ("admin", "analyst")


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``anonymous``, a ``user`` with a role, or a ``service`` (another instance)."""

    kind: str
    role: str | None = None
    subject: str = ""
    issuer: str = ""
    #: A hub analyst's sharing groups (DESIGN §15), as its stored token row says.
    groups: frozenset[str] = frozenset()

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"

    def has_role(self, *roles: str) -> bool:
        return self.kind == "user" and self.role in roles


ANONYMOUS = Principal("anonymous")
