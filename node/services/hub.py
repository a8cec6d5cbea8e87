"""The hub's directory of nodes: signed directory documents, invitations, enrollment, key rotation,
suspension and revocation.

Every change to the set of nodes or keys publishes a new directory with the next serial, signed
with the hub key (``b"ncc-directory-v1\\n" + JCS(...)``, federation.directory). Nodes pin the hub key
from their invitation and refuse a directory whose serial goes backwards.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from federation.directory import (
    Directory,
    GroupEntry,
    KeyEntry,
    NodeEntry,
    build_directory,
    directory_signing_input,
    sign_directory,
)
from federation.errors import GroupInvalid, ProtocolError, TokenInvalid
from federation.groups import valid_group_name
from federation.keys import b64url_decode, b64url_encode, kid_for, public_key_from_raw
from federation.timefmt import format_timestamp, parse_timestamp
from federation.tokens import (
    issue_enrollment_token,
    peek_enrollment_token,
    verify_enrollment_proof,
    verify_enrollment_token,
    verify_rotation_statement,
)
from node.config import Settings
from node.errors import ApiError, Conflict, EnrollmentTokenUsed, NotFound, Unauthenticated
from node.keystore import InstanceKey
from node.services.divergence import INSTANCE_RE, epoch_on_enrollment
from node.services.fedclient import url_is_public
from node.services.translog import directory_append
from node.storage import translog
from node.storage.hub_models import DirectoryDoc, FederatedNode, HubGroup, Invite, NodeKey, PullState
from schemas import record_schemas

# \A…\Z (not ^…$: "$" also matches before a trailing newline) and no control characters: the URL goes
# into every signed directory, and one the directory refuses would make every later publish fail.
URL_RE = re.compile(r"\Ahttps?://[^\s/?#\x00-\x1f\x7f]+(/[^\s?#\x00-\x1f\x7f]*)?\Z")
# Re-publish the directory this long before it expires (a job checks hourly).
REFRESH_BEFORE = timedelta(days=2)


class EnrollmentInvalid(ApiError):
    code, status, title = "enrollment_invalid", 422, "Enrollment request invalid"


class CountryEnrolled(Conflict):
    """An invitation for an enrolled country without ``replace``."""


def hub_key_entry(key: InstanceKey, not_before: str) -> KeyEntry:
    return KeyEntry.from_dict(
        {"kid": key.kid, "public_key": b64url_encode(key.public_raw), "not_before": not_before,
         "not_after": None, "revoked_at": None}
    )


async def bootstrap_hub(settings: Settings, key: InstanceKey, now: datetime | None = None) -> None:
    """Publish the first (empty) directory when the hub is initialised."""
    from node.context import utc_now

    hub = HubService(settings, lambda: key, now and (lambda: now) or utc_now)
    if await DirectoryDoc.all().count() == 0:
        await hub.publish_directory()


@dataclass
class HubService:
    """Directory, enrollment and node administration."""

    settings: Settings
    key: Callable[[], InstanceKey]
    clock: Callable[[], datetime]
    on_directory: Callable[[dict[str, Any]], None] | None = None

    # -- directory -----------------------------------------------------------------------------

    async def current_directory(self) -> dict[str, Any]:
        """The newest signed directory (re-published first if it is close to expiry)."""
        row = await DirectoryDoc.all().order_by("-serial").first()
        if row is None:
            return await self.publish_directory()
        doc: dict[str, Any] = orjson.loads(row.document)
        if parse_timestamp(doc["expires_at"]) - self.clock() < REFRESH_BEFORE:
            return await self.publish_directory()
        if doc.get("schemas") != record_schemas():
            # this hub (upgraded) accepts other schemas than its last directory says: tell the nodes
            return await self.publish_directory()
        return doc

    async def current(self) -> Directory:
        return Directory.from_dict(await self.current_directory())

    async def directory_for_pull(self, country: str) -> dict[str, Any]:
        """The newest signed directory, published anew first when it does not list ``country``'s keys as
        the database holds them.

        An enrollment, a rotation or a revocation commits its rows, then signs the directory that shows
        them: a pull in between (the scheduler's, or one a notification started) verified the node's
        records against the older directory — an enrolling node's whole feed was quarantined as signed
        by an unknown key (seen once in a loaded test run), a key revoked a moment before still trusted.
        The pull takes its directory here, so it never verifies against one the database has overtaken.
        """
        doc = await self.current_directory()
        rows = await NodeKey.filter(country=country).order_by("not_before", "kid")
        held = [KeyEntry.from_dict(_key_dict(k)).to_dict() for k in rows]
        listed = next((entry.get("keys") for entry in doc.get("nodes", ())
                       if isinstance(entry, dict) and entry.get("country") == country), None)
        if listed != held:
            doc = await self.publish_directory()
        return doc

    async def public_directory(self) -> dict[str, Any]:
        """The newest directory as anonymous readers get it: signed without ``groups`` (DESIGN §15)."""
        doc = await self.current_directory()
        row = await DirectoryDoc.filter(serial=doc["serial"]).first()
        if row is None or not row.public_document:
            # signed before this hub knew groups (or by an older hub): publish one that has both copies
            doc = await self.publish_directory()
            row = await DirectoryDoc.get(serial=doc["serial"])
        return dict(orjson.loads(row.public_document or "{}"))

    # -- sharing groups (DESIGN §15) -----------------------------------------------------------

    async def groups(self) -> dict[str, list[str]]:
        """Every sharing group's member countries (sorted), by name."""
        return {g.name: sorted(g.members) for g in await HubGroup.all().order_by("name")}

    def _check_group(self, name: Any, countries: Any = ()) -> None:
        if not valid_group_name(name):
            raise GroupInvalid(f"group name {str(name)[:80]!r} must match ^[a-z0-9-]{{1,63}}$")
        wrong = [c for c in countries if c not in self.settings.allowed_countries]
        if wrong:
            raise GroupInvalid(f"not a country of this federation (allowed_countries): {', '.join(map(str, wrong))[:200]}")

    async def create_group(self, name: Any, countries: Any) -> dict[str, Any]:
        """Create a group with these member countries and publish the directory.

        Raises:
            GroupInvalid: a malformed name, or a country not in ``allowed_countries``.
            Conflict: the group exists.
        """
        if not (isinstance(countries, list) and all(isinstance(c, str) for c in countries)):
            raise GroupInvalid("countries must be a list of country codes")
        self._check_group(name, countries)
        try:
            await HubGroup.create(name=name, countries=",".join(sorted(set(countries))),
                                  created_at=format_timestamp(self.clock()))
        except IntegrityError as exc:
            raise Conflict(f"group {name} exists") from exc
        await self.publish_directory()
        return {"name": name, "countries": sorted(set(countries))}

    async def set_member(self, name: Any, country: Any, member: bool) -> dict[str, Any]:
        """Add ``country`` to group ``name`` (``member``) or remove it, and publish the directory.

        Removing a country hides its records of the group at once: the readers' scopes are built from
        the current members (``node.access``); its node publishes their tombstones when it sees the
        directory (at the next pull, which carries the directory serial).

        Raises:
            GroupInvalid: a malformed name or country. NotFound: no such group.
        """
        self._check_group(name, [country])
        async with in_transaction() as conn:
            group = await HubGroup.filter(name=name).using_db(conn).select_for_update().first()
            if group is None:
                raise NotFound(f"no group {name}")
            members = set(group.members)
            changed = (country not in members) if member else (country in members)
            members = members | {country} if member else members - {country}
            if changed:
                await HubGroup.filter(name=name).using_db(conn).update(countries=",".join(sorted(members)))
        if changed:
            await self.publish_directory()
        return {"name": name, "countries": sorted(members)}

    async def delete_group(self, name: Any) -> None:
        """Delete a group (its records are hidden at once, as if every member left).

        Raises:
            NotFound: no such group.
        """
        if not valid_group_name(name) or not await HubGroup.filter(name=name).delete():
            raise NotFound(f"no group {name}")
        await self.publish_directory()

    async def publish_directory(self) -> dict[str, Any]:
        """Sign and store a directory with the next serial from the nodes and keys held now.

        Two hub processes publishing at once both try the same serial; the loser retries.
        """
        for attempt in range(5):
            try:
                return await self._publish_directory()
            except IntegrityError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _publish_directory(self) -> dict[str, Any]:
        now = self.clock()
        key = self.key()
        async with in_transaction() as conn:
            last = await DirectoryDoc.all().using_db(conn).order_by("-serial").first()
            serial = (last.serial if last else 0) + 1
            nodes = []
            for node in await FederatedNode.all().using_db(conn).order_by("country"):
                keys = await NodeKey.filter(country=node.country).using_db(conn).order_by("not_before", "kid")
                nodes.append(NodeEntry.from_dict({
                    "country": node.country, "url": node.url, "status": node.status, "mode": node.mode,
                    "keys": [_key_dict(k) for k in keys],
                }))
            first_issued = await DirectoryDoc.all().using_db(conn).order_by("serial").first()
            hub_since = first_issued.issued_at if first_issued else format_timestamp(now)
            groups = [GroupEntry(g.name, tuple(sorted(g.members)))
                      for g in await HubGroup.all().using_db(conn).order_by("name")]
            parts = (serial, now, now + timedelta(seconds=self.settings.directory_ttl_s), self.settings.base_url,
                     [hub_key_entry(key, hub_since)], nodes)
            doc = sign_directory(build_directory(*parts, schemas=record_schemas(), groups=groups),
                                 key.private_key, key.kid)
            # the anonymous directory omits the groups (DESIGN §15): the same serial, signed without them
            public = sign_directory(build_directory(*parts, schemas=record_schemas()), key.private_key, key.kid)
            await DirectoryDoc.create(
                serial=serial, issued_at=doc["issued_at"], document=orjson.dumps(doc).decode(),
                public_document=orjson.dumps(public).decode(), using_db=conn,
            )
            # on the record: a key the hub adds for a country is in the log (DESIGN §14)
            await translog.append(conn, [directory_append(serial, directory_signing_input(doc))])
        if self.on_directory is not None:
            self.on_directory(doc)
        return doc

    # -- invitations and enrollment ------------------------------------------------------------

    async def invite(self, country: str, replace: bool = False) -> str:
        """A one-time enrollment token for ``country`` (24 h by default).

        An invitation for an enrolled country re-points its URL and ends all its keys when used (a
        takeover, if it leaks), so it is made only with ``replace``.

        Raises:
            ApiError: country not allowed; ``CountryEnrolled`` (409) when it is enrolled and not ``replace``.
        """
        if country not in self.settings.allowed_countries:
            raise EnrollmentInvalid(f"{country} is not in allowed_countries")
        node = await FederatedNode.filter(country=country).first()
        if node is not None and not replace:
            raise CountryEnrolled(
                f"{country} is enrolled (url {node.url}, since {node.enrolled_at}): its invitation would "
                "re-point the URL and end every key of the running node; use --replace to invite anyway")
        now = self.clock()
        jti = uuid.uuid4().hex
        ttl = self.settings.invite_ttl_s
        key = self.key()
        token = issue_enrollment_token(key.private_key, key.kid, country, now, jti, min(ttl, 86400),
                                       self.settings.base_url)
        await Invite.create(jti=jti, country=country, created_at=format_timestamp(now),
                            expires_at=format_timestamp(now + timedelta(seconds=ttl)), replace=replace)
        return token

    async def invitations(self, include_all: bool = False) -> list[dict[str, Any]]:
        """Invitations, newest first: by default those still usable (not used, cancelled or expired)."""
        now = format_timestamp(self.clock())
        out = []
        for row in await Invite.all().order_by("-created_at", "jti"):
            state = ("used" if row.used_at else "cancelled" if row.cancelled_at
                     else "expired" if row.expires_at <= now else "pending")
            if include_all or state == "pending":
                out.append({"jti": row.jti, "country": row.country, "state": state, "replace": row.replace,
                            "created_at": row.created_at, "expires_at": row.expires_at,
                            "used_at": row.used_at, "cancelled_at": row.cancelled_at})
        return out

    async def cancel_invitation(self, jti: str) -> dict[str, Any]:
        """Cancel an unused invitation: enrolling with it is then refused (401).

        Raises:
            NotFound: no such invitation. Conflict: already used or cancelled.
        """
        stamp = format_timestamp(self.clock())
        if await Invite.filter(jti=jti, used_at=None, cancelled_at=None).update(cancelled_at=stamp):
            return {"jti": jti, "cancelled_at": stamp}
        row = await Invite.filter(jti=jti).first()
        if row is None:
            raise NotFound(f"no invitation {jti}")
        raise Conflict(f"invitation {jti} was already {'used' if row.used_at else 'cancelled'}")

    async def enroll(self, body: Any) -> dict[str, Any]:
        """Check an enrollment request, add (or re-enroll) the node, publish the directory.

        Raises:
            Unauthenticated: forged or expired token.
            EnrollmentTokenUsed: the invitation was already used.
            EnrollmentInvalid: country/key/proof/url do not match the token and each other, or the key
                was revoked (``reason: key_revoked``; the invitation stays unused).
        """
        if not isinstance(body, dict):
            raise EnrollmentInvalid("enrollment request must be an object")
        fields = {k: body.get(k) for k in ("token", "country", "url", "public_key", "kid", "proof")}
        missing = [k for k, v in fields.items() if not isinstance(v, str) or not v]
        if missing:
            raise EnrollmentInvalid(f"missing or non-string fields: {', '.join(missing)}")
        key = self.key()
        now = self.clock()
        try:
            claims = verify_enrollment_token(fields["token"], {key.kid: key.public_key}, now)
        except TokenInvalid as exc:
            raise Unauthenticated(f"enrollment token rejected: {exc.detail}") from exc
        country = fields["country"]
        if claims["sub"] != country:
            raise EnrollmentInvalid(f"token was issued for {claims['sub']}, not {country}")
        if not URL_RE.match(fields["url"]):
            raise EnrollmentInvalid("url must be an http(s) base URL")
        if not self.settings.allow_private_node_urls and not await url_is_public(fields["url"]):
            # DESIGN §10 (no pivoting): the hub would otherwise call an internal address for the node
            raise EnrollmentInvalid(
                "url must resolve only to global addresses (not loopback, private or link-local); the hub"
                " setting allow_private_node_urls (NCC_ALLOW_PRIVATE_NODE_URLS) allows others",
                reason="url_not_public",
            )
        try:
            raw = b64url_decode(fields["public_key"])
            public_key_from_raw(raw)
        except (ValueError, ProtocolError) as exc:
            raise EnrollmentInvalid("public_key must be base64url of a raw 32-byte Ed25519 key") from exc
        if kid_for(country, raw) != fields["kid"]:
            raise EnrollmentInvalid("kid does not match the country and public key")
        try:
            verify_enrollment_proof(raw, str(claims["jti"]), fields["proof"])
        except ProtocolError as exc:
            raise EnrollmentInvalid("proof is not a signature of the token's jti by the node key") from exc
        instance = body.get("instance")  # optional: a new instance of the country starts a new feed epoch
        if instance is not None and not (isinstance(instance, str) and INSTANCE_RE.match(instance)):
            raise EnrollmentInvalid("instance must be 8 to 64 letters, digits or hyphens")
        stamp = format_timestamp(now)
        key_from = format_timestamp(self._new_key_valid_from(now, body.get("not_before")))
        async with in_transaction() as conn:
            known = await NodeKey.filter(kid=fields["kid"]).using_db(conn).first()
            if known is not None and known.revoked_at is not None:
                # Re-enrolling would put the compromised key back in service (and, before this check,
                # left the node with only that key, every later record quarantined). Checked before the
                # invitation is spent, so the node can retry the same invitation with a new key.
                raise EnrollmentInvalid(
                    f"key {known.kid} was revoked at {known.revoked_at}: enroll with a new key "
                    "(ncc enroll makes one when the hub refuses the node's key as revoked)",
                    reason="key_revoked",
                )
            invitation = await Invite.filter(jti=claims["jti"]).using_db(conn).first()
            if invitation is None:
                raise Unauthenticated("unknown invitation")
            if invitation.cancelled_at is not None:
                raise Unauthenticated(f"this invitation was cancelled at {invitation.cancelled_at}")
            node = await FederatedNode.filter(country=country).using_db(conn).first()
            if node is not None and not invitation.replace and invitation.used_at is None:
                # made while the country was not enrolled (or an older invitation): it may not take over
                # the node enrolled since. Checked before the invitation is spent.
                raise EnrollmentInvalid(
                    f"{country} is enrolled: only an invitation made with `ncc hub invite --replace` may "
                    "re-enroll it", reason="country_enrolled")
            unused = Invite.filter(jti=claims["jti"], used_at=None, cancelled_at=None)
            used = await unused.using_db(conn).update(used_at=stamp)
            if not used:
                raise EnrollmentTokenUsed("this invitation was already used")
            if node is None:
                await FederatedNode.create(country=country, url=fields["url"], status="active",
                                           mode="replicate", enrolled_at=stamp, using_db=conn)
                await PullState.create(country=country, using_db=conn)
            else:
                # Re-enrollment (an invitation made with --replace): new URL and key; every older key of
                # the previous instance stops now, a rotated-out one in its grace period included (the
                # usual reason to re-enroll is a lost or stolen key); what they signed while valid stays.
                await FederatedNode.filter(country=country).using_db(conn).update(url=fields["url"], status="active")
                others = NodeKey.filter(country=country).exclude(kid=fields["kid"]).using_db(conn)
                await others.filter(not_after=None).update(not_after=stamp)
                await others.filter(not_after__gt=stamp).update(not_after=stamp)
            await epoch_on_enrollment(conn, country, instance)
            if known is None:
                await NodeKey.create(kid=fields["kid"], country=country, public_key=fields["public_key"],
                                     not_before=key_from, using_db=conn)
            elif known.not_after is not None:
                # Re-enrolled with a key it had rotated away from (a rotation whose answer was lost): the
                # line above ended every other key, so this one must not end either.
                await NodeKey.filter(kid=known.kid).using_db(conn).update(not_after=None)
        return {"directory": await self.publish_directory()}

    def _new_key_valid_from(self, now: datetime, claimed: Any = None) -> datetime:
        """``not_before`` of a node key the hub adds now: ``clock_skew_s`` before now, so that a node
        whose clock lags the hub's can sign with it at once, or earlier when the enrolling node says it
        signed records with the key before it enrolled (its optional ``not_before``; the node owns those
        records, and a key's window only keeps *other* keys of the node from signing in it).

        Raises:
            EnrollmentInvalid: ``not_before`` is not a timestamp, or lies in the future.
        """
        skew = timedelta(seconds=self.settings.clock_skew_s)
        valid_from = now - skew
        if claimed is None:
            return valid_from
        try:
            claimed_at = parse_timestamp(claimed)
        except ValueError as exc:
            raise EnrollmentInvalid("not_before must be a timestamp like 2026-01-01T00:00:00Z") from exc
        if claimed_at > now + skew:
            raise EnrollmentInvalid("not_before lies in the future")
        return min(valid_from, claimed_at)

    # -- key rotation, suspension, revocation --------------------------------------------------

    async def rotate(self, country: str, statement: Any) -> dict[str, Any]:
        """Add a node's new key (signed by its current key); the old key expires after the grace period.

        Raises:
            EnrollmentInvalid: the statement is malformed, for another country, or badly signed.
        """
        if not isinstance(statement, dict) or statement.get("country") != country:
            raise EnrollmentInvalid("rotation statement must be an object for the calling node's country")
        old = await NodeKey.filter(kid=str(statement.get("old_kid", "")), country=country).first()
        if old is None or old.revoked_at is not None:
            raise EnrollmentInvalid("old_kid is not a current key of this node")
        try:
            new_kid, new_raw = verify_rotation_statement(
                statement, public_key_from_raw(b64url_decode(old.public_key))
            )
        except ProtocolError as exc:
            raise EnrollmentInvalid(f"rotation statement rejected: {exc.detail}") from exc
        if old.not_after is not None:
            # Only the current key may name a successor. A rotated-out key (still valid for its grace
            # period, or expired) must not: whoever stole it could otherwise add keys of their own after
            # the node rotated away from it. Repeating the rotation that retired it is harmless (a node
            # retrying after a lost answer) and answers as before.
            if not await NodeKey.filter(kid=new_kid, country=country).exists():
                raise EnrollmentInvalid("old_kid was already rotated out: only the current key may rotate")
            return {"directory": await self.current_directory(), "kid": new_kid, "old_key_not_after": old.not_after}
        now = self.clock()
        grace = format_timestamp(now + timedelta(seconds=self.settings.key_grace_s))
        async with in_transaction() as conn:
            if not await NodeKey.filter(kid=new_kid).using_db(conn).exists():
                await NodeKey.create(kid=new_kid, country=country, public_key=b64url_encode(new_raw),
                                     not_before=format_timestamp(self._new_key_valid_from(now)), using_db=conn)
            if old.not_after is None or old.not_after > grace:
                await NodeKey.filter(kid=old.kid).using_db(conn).update(not_after=grace)
        return {"directory": await self.publish_directory(), "kid": new_kid, "old_key_not_after": grace}

    async def set_node(self, country: str, status: str | None = None, mode: str | None = None) -> dict[str, Any]:
        """Suspend/reactivate a node or switch it between replicate and query-only.

        Raises:
            NotFound: no such node.
        """
        node = await FederatedNode.filter(country=country).first()
        if node is None:
            raise NotFound(f"no enrolled node {country}")
        changes = {k: v for k, v in (("status", status), ("mode", mode)) if v is not None}
        if changes:
            await FederatedNode.filter(country=country).update(**changes)
            await self.publish_directory()
        node = await FederatedNode.get(country=country)
        return {"country": node.country, "status": node.status, "mode": node.mode}

    async def revoke_key(self, kid: str, revoked_at: datetime | None = None, search: Any = None) -> dict[str, Any]:
        """Revoke a node key: what the hub receives signed by it from ``revoked_at`` on is rejected,
        whatever ``issued_at`` it claims (DESIGN §10).

        A ``revoked_at`` in the past also withdraws from the index, and quarantines as
        ``key_revoked``, what the hub received from that key since then (``withdrawn`` in the answer;
        ``search`` is the hub's search service, needed for that).

        Raises:
            NotFound: unknown kid.
            Conflict: already revoked.
        """
        from node.services.ingest import withdraw_received_after
        from node.services.search import SearchService

        key = await NodeKey.filter(kid=kid).first()
        if key is None:
            raise NotFound(f"no key {kid}")
        if key.revoked_at is not None:
            raise Conflict(f"{kid} was revoked at {key.revoked_at}")
        now = self.clock()
        stamp = format_timestamp(revoked_at or now)
        withdrawn: list[str] = []
        async with in_transaction() as conn:
            await NodeKey.filter(kid=kid).using_db(conn).update(revoked_at=stamp)
            if stamp < format_timestamp(now):
                withdrawn = await withdraw_received_after(conn, key.country, kid, stamp, now,
                                                          search or SearchService(accelerated=False))
        await self.publish_directory()
        return {"kid": kid, "revoked_at": stamp, "withdrawn": len(withdrawn)}


def _key_dict(k: NodeKey) -> dict[str, Any]:
    return {"kid": k.kid, "public_key": k.public_key, "not_before": k.not_before, "not_after": k.not_after,
            "revoked_at": k.revoked_at}


def invitation_claims(token: str) -> dict[str, Any]:
    """Unverified claims of an invitation (used by a node to learn the jti and hub key to pin).

    Raises:
        node.errors.Unauthenticated: not an invitation token.
    """
    try:
        return peek_enrollment_token(token)
    except ProtocolError as exc:
        raise Unauthenticated(f"not an enrollment token: {exc.detail}") from exc
