"""Who may see what: the one access policy of the API, the portal, search and export.

DESIGN §4, §7, §11, house rule 11. Every read path asks this module; nothing else decides.

- **Records.** On a node, users with a token (``admin``, ``editor``, ``reader``) see every record it
  holds; on the hub, ``analyst`` and ``admin`` see ``public`` and ``network`` records (a quarantined
  one too). Anonymous readers — and every other principal (a service token, a user of a role this
  instance does not know) — see ``public`` records only, never a quarantined one.
- **Sharing groups** (DESIGN §15). A ``group:<name>`` record is seen at the hub only by analysts whose
  token carries that group (the hub admin: every group), and only while its origin is a member of the
  group *now*. Each request resolves the reader's :class:`Scope`: the audience keys it may see
  (``federation.groups.audience``: the visibility, or ``group:<name>:<origin>``), built from the hub's
  current groups. The search index holds the same key per document, so one ``visibility IN (…)``
  condition limits results, totals and facets alike, and a country leaving a group drops out of every
  scope at once. To everyone else a group record is 404, as if it did not exist.
- **Fields.** Whoever may see a record's every visibility sees it whole, exactly as signed. Anyone
  else gets the payload's ``x-ncc-public`` fields only (default deny, ``federation.schemas.disclose``),
  without ``sig``, with ``redacted`` listing what was removed. A tombstone carries no payload to hide.
- **Search.** The reader's visibilities, and whether the restricted part of the index (every field
  not marked public) may match, rank and be snippeted: privileged readers only.
- **Live queries** (the hub asking a node): what the hub asks for, within ``public``/``network``, and
  the groups it names that this node is a member of (by the directory it holds); the restricted part
  only when the hub asks for it on behalf of an analyst.
- **Transparency log** (DESIGN §14): anonymous readers see the entries of ``public`` records (and
  directories); a node, with its service token, its own origin's; analysts and the hub admin those of
  the records they may see (group records as above).

Errors: :class:`node.errors.NotFound` for what the reader may not see (indistinguishable from an
unknown id), :class:`node.errors.Gone` after a tombstone the reader could otherwise see.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson

from federation.groups import audience, group_audiences, group_of, group_visibility
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
class Scope:
    """What one reader may see here, resolved for one request.

    ``audiences`` are the audience keys of the records it may see (``federation.groups.audience``);
    ``every``: all records of this instance (node users); ``groups``: the sharing groups it reads, with
    ``members`` their member countries now.
    """

    privileged: bool
    audiences: frozenset[str]
    every: bool = False
    groups: frozenset[str] = frozenset()
    members: Mapping[str, frozenset[str]] | None = None

    def sees(self, visibility: str, origin: str, quarantined: bool = False) -> bool:
        """May this reader see a record of this visibility and origin?"""
        if quarantined and not self.privileged:
            return False
        return self.every or audience(visibility, origin) in self.audiences

    def log_visibilities(self, origin: str) -> tuple[str, ...]:
        """The record visibilities of ``origin``'s log entries this reader may list."""
        members = self.members or {}
        plain = tuple(v for v in ("public", "network") if v in self.audiences)
        return plain + tuple(sorted(group_visibility(g) for g in self.groups if origin in members.get(g, ())))


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
    country: str = ""  # a node's own country (live queries: the groups it is a member of)

    # -- who ---------------------------------------------------------------------------------------

    def privileged(self, p: Reader) -> bool:
        """True for the readers who see every record this instance shows and every field of it."""
        return p.has_role(*(HUB_READERS if self.role == "hub" else NODE_READERS))

    def visibilities(self, p: Reader) -> frozenset[str]:
        """The record visibilities ``p`` may see here."""
        if not self.privileged(p):
            return ANONYMOUS_VISIBILITIES
        return HUB_VISIBILITIES if self.role == "hub" else NODE_VISIBILITIES

    def reader_groups(self, p: Reader, known: Mapping[str, frozenset[str]]) -> frozenset[str]:
        """The sharing groups ``p`` reads at the hub: all for the admin, its token's for an analyst."""
        if self.role != "hub" or not self.privileged(p):
            return frozenset()
        if p.has_role("admin"):
            return frozenset(known)
        return frozenset(getattr(p, "groups", ())) & frozenset(known)

    async def scope(self, p: Reader) -> Scope:
        """What ``p`` may see here now (the hub's groups are read for readers that have any)."""
        privileged = self.privileged(p)
        if self.role != "hub":
            return Scope(privileged, self.visibilities(p), every=privileged)
        if not privileged:
            return Scope(False, ANONYMOUS_VISIBILITIES)
        known = await reads.hub_groups()
        groups = self.reader_groups(p, known)
        return Scope(True, HUB_VISIBILITIES | group_audiences(groups, known), groups=groups, members=known)

    def may_see(self, p: Reader, visibility: str, quarantined: bool = False) -> bool:
        """True when ``p`` may see a record of this plain visibility (quarantined: analysts/admins
        only). Group records need the reader's :class:`Scope` (:meth:`scope`)."""
        if quarantined and not self.privileged(p):
            return False
        return visibility in self.visibilities(p)

    def sees_directory_groups(self, p: Reader) -> bool:
        """Whether ``p`` gets the directory with its sharing groups: enrolled nodes (service tokens of a
        country) and the hub's analysts and admin; anonymous readers get it without (DESIGN §15)."""
        return self.privileged(p) or self._log_origin(p) is not None

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
        if row is None or not (await self.scope(p)).sees(row.visibility, row.origin, row.quarantined):
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
        rows = await reads.node_records(rtype, None if self.privileged(p) else self.visibilities(p), before,
                                        limit + 1)
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

    async def search_scope(self, p: Reader, query: SearchQuery) -> SearchQuery:
        """``query`` limited to what ``p`` may find: its audience keys (group records of its groups'
        current members), and the restricted part of the index for privileged readers only (anonymous
        matches, snippets and facets use public fields)."""
        scope = await self.scope(p)
        audiences = scope.audiences
        if scope.every:  # a node's users: every record it holds, its group records included
            audiences = audiences | await reads.indexed_group_audiences()
        return replace(query, visibilities=audiences, restricted=scope.privileged)

    async def live_scope(self, asked: Mapping[str, Any], query: SearchQuery) -> SearchQuery:
        """A node answering the hub's live query (the caller checked the hub's service token).

        The hub names the visibilities its reader may see, the reader's sharing groups (``groups``),
        and whether the reader sees restricted fields; the node never goes beyond ``public``/
        ``network`` and the groups it is a member of now, and the restricted part only with ``network``
        (the hub's analysts see network records whole; a group's readers are analysts).
        """
        visibilities = frozenset(asked.get("visibilities") or ["public"]) & SHAREABLE
        asked_groups = frozenset(asked.get("groups") or ())
        if asked_groups and self.country:
            member = await reads.held_member_groups(self.country)
            visibilities |= group_audiences(asked_groups & member, {g: (self.country,) for g in member})
        restricted = asked.get("restricted") is True and "network" in visibilities
        return replace(query, visibilities=visibilities, restricted=restricted)

    @staticmethod
    def live_groups(query: SearchQuery, country: str) -> list[str]:
        """The hub's side: the sharing groups a live query to ``country``'s node names — those of the
        reader's scope that the country is a member of now (other nodes never learn them)."""
        return sorted({name for key in query.visibilities
                       if (name := group_of(key.rpartition(":")[0])) is not None and key.endswith(f":{country}")})

    # -- transparency log (hub) --------------------------------------------------------------------

    def _log_origin(self, p: Reader) -> str | None:
        """The country of a node calling with its service token (not the hub's own tokens)."""
        issuer = p.issuer if p.kind == "service" else ""
        return issuer if _COUNTRY.match(issuer) else None

    async def log_entry_visible(self, p: Reader, visibility: str, origin: str | None) -> bool:
        """May ``p`` see the log entry of a record with this visibility and origin?"""
        if origin is not None and self._log_origin(p) == origin:
            return True
        if visibility == "public":
            return True
        if not self.privileged(p):
            return False
        return origin is None or (await self.scope(p)).sees(visibility, origin)

    def receipts_origin(self, p: Reader) -> str | None:
        """Whose erasure receipts ``p`` may read: a node its own (service token), nobody else's."""
        return self._log_origin(p)

    async def log_visibilities(self, p: Reader, origin: str) -> tuple[str, ...] | None:
        """The visibilities of ``origin``'s entries ``p`` may list (None: every entry)."""
        if self._log_origin(p) == origin:
            return None
        if not self.privileged(p):
            return ("public",)
        return (await self.scope(p)).log_visibilities(origin)
