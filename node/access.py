"""Who may see what: the one access policy of the API, the portal, search and export.

DESIGN §4, §7, §11, house rule 11. Every read path asks this module; nothing else decides.

- **Records.** On a node, users with a token (``admin``, ``editor``, ``reader``) see every record it
  holds; on the hub, ``analyst`` and ``admin`` see ``public`` and ``network`` records (a quarantined
  one too). Anonymous readers — and every other principal (a service token, a user of a role this
  instance does not know) — see ``public`` records only, never a quarantined one.
- **Fields.** Whoever may see a record's every visibility sees it whole, exactly as signed. Anyone
  else gets the payload's ``x-ncc-public`` fields only (default deny, ``federation.schemas.disclose``),
  without ``sig``, with ``redacted`` listing what was removed. A tombstone carries no payload to hide.
- **Search.** The reader's visibilities, and whether the restricted part of the index (every field
  not marked public) may match, rank and be snippeted: privileged readers only.
- **Live queries** (the hub asking a node): what the hub asks for, within ``public``/``network``;
  the restricted part only when the hub asks for it on behalf of an analyst.
- **Transparency log** (DESIGN §14): anonymous readers see the entries of ``public`` records (and
  directories); a node, with its service token, its own origin's; analysts and the hub admin all.

Errors: :class:`node.errors.NotFound` for what the reader may not see (indistinguishable from an
unknown id), :class:`node.errors.Gone` after a tombstone the reader could otherwise see.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson

from federation.schemas import Annotations, SchemaRegistry, redacted_envelope
from node.errors import Forbidden, Gone, NotFound
from node.search.base import SearchQuery
from node.storage import reads
from node.storage.reads import StoredRecord

_COUNTRY = re.compile(r"\A[A-Z]{2}\Z")
#: Node roles that see every record of the node, whole.
NODE_READERS = ("admin", "editor", "reader", "assessor")  # assessors judge national records (§12)
#: Hub roles that see ``network`` records, whole.
HUB_READERS = ("admin", "analyst")
ANONYMOUS_VISIBILITIES: frozenset[str] = frozenset({"public"})
NODE_VISIBILITIES: frozenset[str] = frozenset({"public", "network", "national"})
HUB_VISIBILITIES: frozenset[str] = frozenset({"public", "network"})
#: What a live query may ever reach on a node: national records never leave it.
SHAREABLE: frozenset[str] = frozenset({"public", "network"})


class Reader(Protocol):
    """What the policy needs of a principal (``node.http.auth.Principal``)."""

    @property
    def kind(self) -> str: ...

    @property
    def issuer(self) -> str: ...

    def has_role(self, *roles: str) -> bool: ...


@dataclass(frozen=True)
class Shown:
    """A record as one reader may see it."""

    envelope: dict[str, Any]
    redacted: list[str]  # JSON pointers into the envelope (``/payload/…``) removed for this reader
    full: bool  # the stored envelope exactly as signed
    quarantined: bool = False
    version: int = 0

    def to_json(self) -> dict[str, Any]:
        """The API body: the envelope, plus ``redacted`` when fields were withheld."""
        if self.full or self.envelope.get("deleted"):
            return self.envelope
        return {**self.envelope, "redacted": self.redacted}


@dataclass(frozen=True)
class Access:
    """The policy of one instance (``role`` node or hub) over its schemas' annotations."""

    role: str
    annotations: SchemaRegistry | Annotations

    # -- who ---------------------------------------------------------------------------------------

    def privileged(self, p: Reader) -> bool:
        """True for the readers who see every record this instance shows and every field of it."""
        return p.has_role(*(HUB_READERS if self.role == "hub" else NODE_READERS))

    def visibilities(self, p: Reader) -> frozenset[str]:
        """The record visibilities ``p`` may see here."""
        if not self.privileged(p):
            return ANONYMOUS_VISIBILITIES
        return HUB_VISIBILITIES if self.role == "hub" else NODE_VISIBILITIES

    def may_see(self, p: Reader, visibility: str, quarantined: bool = False) -> bool:
        """True when ``p`` may see a record of this visibility (quarantined: analysts/admins only)."""
        if quarantined and not self.privileged(p):
            return False
        return visibility in self.visibilities(p)

    # -- fields ------------------------------------------------------------------------------------

    def present(self, p: Reader, envelope: dict[str, Any], quarantined: bool = False) -> Shown:
        """The envelope as ``p`` may see it: whole and signed, or its public fields without ``sig``.

        Call only for a record :meth:`may_see` allows.
        """
        version = int(envelope.get("version") or 0)
        if self.privileged(p) or envelope.get("deleted"):
            return Shown(envelope, [], full=True, quarantined=quarantined, version=version)
        shown, removed = self.redact(envelope)
        return Shown(shown, removed, full=False, version=version)

    def redact(self, envelope: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """What an anonymous reader sees of an envelope, and the pointers removed (``/payload/…``)."""
        return redacted_envelope(envelope, self.annotations)

    # -- reads -------------------------------------------------------------------------------------

    async def _stored(self, rid: str) -> StoredRecord | None:
        return await (reads.hub_record(rid) if self.role == "hub" else reads.node_record(rid))

    async def record(self, p: Reader, rid: str) -> Shown:
        """The current version of record ``rid`` as ``p`` may see it.

        Raises:
            NotFound: unknown here, or not visible to ``p``.
            Gone: deleted (``version`` = the tombstone's).
        """
        row = await self._stored(rid)
        if row is None or not self.may_see(p, row.visibility, row.quarantined):
            raise NotFound(f"no record {rid}")
        if row.deleted:
            what = "was withdrawn by its origin" if self.role == "hub" else "was deleted"
            raise Gone(f"{rid} {what}", version=row.version)
        return self.present(p, orjson.loads(row.envelope), quarantined=row.quarantined)

    async def records(
        self, p: Reader, rtype: str | None, before: int | None, limit: int
    ) -> tuple[list[Shown], int | None]:
        """A page of this node's live records that ``p`` may see, newest change first, each as
        ``p`` may see it; and the ``before`` of the next page (None on the last)."""
        rows = await reads.node_records(rtype, self.visibilities(p), before, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        shown = [self.present(p, orjson.loads(r.envelope)) for r in rows]
        return shown, (rows[-1].seq if more and rows else None)

    def _require_privileged(self, p: Reader) -> None:
        if not self.privileged(p):
            raise Forbidden("this needs a node user's role")

    async def own_records(
        self, p: Reader, rtype: str | None, before: int | None, limit: int
    ) -> tuple[list[StoredRecord], int | None]:
        """The node admin pages' list: every live record, whole (node users only).

        Raises:
            Forbidden: ``p`` is not a node user.
        """
        self._require_privileged(p)
        rows = await reads.node_records(rtype, None, before, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].seq if more and rows else None)

    async def own_record(self, p: Reader, rid: str) -> dict[str, Any]:
        """The current envelope of one of this node's records, whole, for editing (node users only).

        Raises:
            Forbidden: ``p`` is not a node user.
            NotFound, Gone.
        """
        self._require_privileged(p)
        row = await reads.node_record(rid)
        if row is None:
            raise NotFound(f"no record {rid}")
        if row.deleted:
            raise Gone(f"{rid} was deleted", version=row.version)
        return dict(orjson.loads(row.envelope))

    # -- search ------------------------------------------------------------------------------------

    def search_scope(self, p: Reader, query: SearchQuery) -> SearchQuery:
        """``query`` limited to what ``p`` may find: visibilities, and the restricted part of the
        index for privileged readers only (anonymous matches, snippets and facets use public fields)."""
        return replace(query, visibilities=self.visibilities(p), restricted=self.privileged(p))

    def live_scope(self, asked: Mapping[str, Any], query: SearchQuery) -> SearchQuery:
        """A node answering the hub's live query (the caller checked the hub's service token).

        The hub names the visibilities its reader may see and whether the reader sees restricted
        fields; the node never goes beyond ``public``/``network``, and the restricted part only with
        ``network`` (the hub's analysts see network records whole).
        """
        visibilities = frozenset(asked.get("visibilities") or ["public"]) & SHAREABLE
        restricted = asked.get("restricted") is True and "network" in visibilities
        return replace(query, visibilities=visibilities, restricted=restricted)

    def live_request(self, p: Reader) -> dict[str, Any]:
        """The hub's side: what a live query carries about its reader."""
        return {"visibilities": sorted(self.visibilities(p)), "restricted": self.privileged(p)}

    # -- transparency log (hub) --------------------------------------------------------------------

    def _log_origin(self, p: Reader) -> str | None:
        """The country of a node calling with its service token (not the hub's own tokens)."""
        issuer = p.issuer if p.kind == "service" else ""
        return issuer if _COUNTRY.match(issuer) else None

    def log_entry_visible(self, p: Reader, visibility: str, origin: str | None) -> bool:
        """May ``p`` see the log entry of a record with this visibility and origin?"""
        if self.privileged(p):
            return True
        if origin is not None and self._log_origin(p) == origin:
            return True
        return visibility == "public"

    def receipts_origin(self, p: Reader) -> str | None:
        """Whose erasure receipts ``p`` may read: a node its own (service token), nobody else's."""
        return self._log_origin(p)

    def log_visibilities(self, p: Reader, origin: str) -> tuple[str, ...] | None:
        """The visibilities of ``origin``'s entries ``p`` may list (None: every entry)."""
        return None if self.privileged(p) or self._log_origin(p) == origin else ("public",)
