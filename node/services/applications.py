"""Applications (DESIGN §12): anonymous, abuse-limited, confirmed by a single-use mailed link.

An application is stored ``unconfirmed`` with a confirmation mail queued in the same transaction.
The link carries a JWT signed with the instance key (``typ: apply-confirm``, ``sub`` = application
id, 48 h): confirming it (POST only) creates a ``national`` organisation record with
``membership.status = applied`` and tells the applicant and the assessors. The same application can
be followed with a separate, longer-lived manage link (``typ: apply-manage``), which can be asked
for again by e-mail at any time. Unconfirmed applications are purged after ``application_ttl_s``.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
import orjson
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from federation.envelope import Envelope
from federation.errors import SchemaInvalid
from federation.schemas import SchemaRegistry, schema_id_for, within
from federation.timefmt import format_timestamp
from node.config import EMAIL_RE, Settings
from node.context import Keyring
from node.errors import ApiError, Conflict, InvalidParameter, NotFound, RateLimited, Unauthenticated
from node.services import mail
from node.services.mail_templates import language_for, render
from node.services.publish import Actor, Amendment, Publisher
from node.storage.gatekeeper_models import Application, MailMessage, VersionEvent
from node.storage.models import Record

APPLY_FIELDS = frozenset({"type", "payload", "visibility", "applicant", "accept_terms"})
APPLICANT_FIELDS = frozenset({"name", "email"})
#: What the node sets on an application's record; an applicant may not send them.
NODE_SET_FIELDS = ("membership", "consent")
CONFIRM = "apply-confirm"
MANAGE = "apply-manage"
WINDOW_S = 3600
#: Sent mails keep their row (recipient, kind, when; no body) this long, for the operator's questions.
SENT_KEPT_S = 30 * 86400
MAX_TOKEN_CHARS = 2048
_CRLF = re.compile(r"[\r\n\x00\u2028\u2029\u0085]")


def application_schema() -> str:
    """The payload schema applications are validated against and records created with: the one place
    that names it (``organisation/2`` once the hub accepts it)."""
    return "organisation/2"


def record_fields() -> dict[str, Any]:
    """What the NCC sets on an application's record when it is confirmed."""
    return {"membership": {"status": "applied"}, "consent": {"share_with_eccc_and_nccs": True}}


class TokenUsed(ApiError):
    code, status, title = "token_used", 409, "Link already used"


class HeaderUnsafe(InvalidParameter):
    """CR/LF in a value that would reach a mail header (DESIGN §10: a 400)."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def email_key(email: str) -> str:
    return _digest("email:" + email.strip().lower())


def _schema_error(message: str, pointer: str) -> SchemaInvalid:
    return SchemaInvalid(message, [{"pointer": pointer, "message": message}])


@dataclass(frozen=True)
class Applicant:
    name: str
    email: str


def parse_applicant(raw: Any) -> Applicant:
    """The ``applicant`` object: ``name`` (1–200 characters, no line breaks) and a valid ``email``.

    Raises:
        SchemaInvalid: missing, wrong type, unknown field, bad address.
        HeaderUnsafe: CR/LF (or another line break) in the name or address.
    """
    if not isinstance(raw, dict):
        raise _schema_error("applicant must be an object {name, email}", "/applicant")
    unknown = sorted(set(raw) - APPLICANT_FIELDS)
    if unknown:
        raise _schema_error(f"unknown field {unknown[0]!r} in applicant", f"/applicant/{unknown[0]}")
    name, email = raw.get("name"), raw.get("email")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
        raise _schema_error("applicant name is required (1 to 200 characters)", "/applicant/name")
    if not isinstance(email, str) or not email:
        raise _schema_error("applicant email is required", "/applicant/email")
    for key, value in (("name", name), ("email", email)):
        if _CRLF.search(value):
            raise HeaderUnsafe(f"applicant {key} may not contain line breaks", parameter=f"applicant.{key}")
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise _schema_error("applicant email is not a valid address", "/applicant/email")
    return Applicant(name.strip(), email)


@dataclass
class Gatekeeper:
    """Applications, their links and their mails."""

    settings: Settings
    keyring: Keyring
    registry: SchemaRegistry
    publisher: Publisher
    clock: Callable[[], datetime]

    # -- helpers -------------------------------------------------------------------------------

    @property
    def language(self) -> str:
        return language_for(self.settings.country, self.settings.mail_language)

    def link(self, app_id: str, token: str, manage: bool = False) -> str:
        base = self.settings.base_url
        return f"{base}/apply/{app_id}/status?token={token}" if manage else f"{base}/apply/{app_id}?token={token}"

    def issue(self, app_id: str, purpose: str, ttl_s: int) -> str:
        """A link token signed with the instance key."""
        key = self.keyring.key()
        now = self.clock()
        claims = {"typ": purpose, "sub": app_id, "iss": self.settings.instance_id,
                  "aud": self.settings.instance_id, "iat": int(now.timestamp()),
                  "exp": int(now.timestamp()) + ttl_s, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})

    def check(self, token: Any, app_id: str, purpose: str) -> None:
        """Verify a link token for ``app_id``.

        Raises:
            Unauthenticated: forged, expired, for another application or purpose, or not a token.
        """
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise Unauthenticated("the link's token is missing or not valid")
        try:
            kid = str(jwt.get_unverified_header(token).get("kid", ""))
            key = self.keyring.public_keys().get(kid)
            if key is None:
                raise Unauthenticated("the link was not issued by this node")
            # time is checked against the service's clock below, not pyjwt's wall clock
            claims = jwt.decode(
                token, key, algorithms=["EdDSA"], audience=self.settings.instance_id,
                issuer=self.settings.instance_id,
                options={"require": ["exp", "sub", "iat"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated("the link is not valid") from exc
        exp = claims.get("exp")
        if not isinstance(exp, int) or isinstance(exp, bool) or exp <= self.clock().timestamp():
            raise Unauthenticated("the link has expired; apply again or ask for a new link")
        if claims.get("typ") != purpose or claims.get("sub") != app_id:
            raise Unauthenticated("the link is not valid for this application")

    async def _mail(self, conn: BaseDBAsyncClient | None, kind: str, to: Applicant | tuple[str, str],
                    rid: str | None, app_id: str | None, **values: Any) -> None:
        name, addr = (to.name, to.email) if isinstance(to, Applicant) else to
        subject, body = render(kind, self.language, self.settings.country, name=name, **values)
        await mail.enqueue(conn, self.clock(), kind, addr, subject, body, to_name=name, record_id=rid,
                           application_id=app_id)

    def _expires_text(self, ttl_s: int) -> str:
        return format_timestamp(self.clock() + timedelta(seconds=ttl_s)).replace("T", " ").replace("Z", " UTC")

    # -- apply ---------------------------------------------------------------------------------

    async def check_payload(self, payload: Any) -> None:
        """Validate an application's payload like a record's (pointers inside ``/payload``): against
        the application schema, and as the record it becomes will be written (the publisher's check:
        a schema version the hub does not accept yet is refused now, not at confirmation).

        Raises:
            SchemaInvalid: not an object, carries membership/consent, fails the schema or the country.
        """
        if not isinstance(payload, dict):
            raise _schema_error("payload must be an object", "/payload")
        for key in NODE_SET_FIELDS:
            if key in payload:
                raise _schema_error(f"{key} is set by the NCC, not by the applicant", f"/payload/{key}")
        try:
            self.registry.validate(schema_id_for(application_schema()), payload)
        except SchemaInvalid as exc:
            raise within(exc, "/payload") from None
        if payload.get("country") != self.settings.country:
            raise _schema_error(f"an organisation applying to the {self.settings.country} NCC must be "
                                f"established in {self.settings.country}", "/payload/country")
        versions = getattr(self.publisher, "schemas", None)  # which version writes use, where chosen
        if versions is not None:
            await versions.refresh()
        try:
            self.publisher.check_payload("organisation", "national", {**payload, **record_fields()})
        except SchemaInvalid as exc:
            raise within(exc, "/payload") from None

    async def _limit(self, field: str, key: str, limit: int, what: str) -> None:
        now = self.clock()
        since = format_timestamp(now - timedelta(seconds=WINDOW_S))
        rows = await Application.filter(**{field: key}, created_at__gt=since).order_by("created_at") \
            .limit(limit).values_list("created_at", flat=True)
        if len(rows) >= limit:
            raise RateLimited(f"too many applications from this {what}; try again later",
                              retry_after_s=_retry_after(now, str(rows[0])))

    async def _mail_cap(self) -> None:
        now = self.clock()
        since = format_timestamp(now - timedelta(seconds=WINDOW_S))
        cap = self.settings.confirmation_mails_per_hour
        rows = await MailMessage.filter(kind__in=["confirm", "manage"], created_at__gt=since) \
            .order_by("created_at").limit(cap).values_list("created_at", flat=True)
        if len(rows) >= cap:
            raise RateLimited("the node is sending too many confirmation mails; try again later",
                              retry_after_s=_retry_after(now, str(rows[0])))

    async def apply(self, body: Any, client: str) -> dict[str, str]:
        """Store an application and queue its confirmation mail.

        Raises:
            SchemaInvalid, CanonicalizationError, HeaderUnsafe, RateLimited.
        """
        if not isinstance(body, dict):
            raise _schema_error("request body must be a JSON object", "")
        unknown = sorted(set(body) - APPLY_FIELDS)
        if unknown:
            raise SchemaInvalid(f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(APPLY_FIELDS))})",
                                [{"pointer": f"/{k}", "message": "unknown field"} for k in unknown])
        if body.get("type") != "organisation":
            raise _schema_error("type must be organisation", "/type")
        visibility = body.get("visibility", "network")
        if visibility not in ("public", "network"):
            raise _schema_error("visibility must be public or network (what you consent to once registered)",
                                "/visibility")
        if body.get("accept_terms") is not True:
            raise _schema_error("accept_terms must be true", "/accept_terms")
        applicant = parse_applicant(body.get("applicant"))
        await self.check_payload(body.get("payload"))
        client_key = _digest("client:" + client)
        ekey = email_key(applicant.email)
        await self._limit("client_key", client_key, self.settings.application_rate_per_address, "address")
        await self._limit("email_key", ekey, self.settings.application_rate_per_email, "e-mail address")
        await self._mail_cap()
        app_id = str(uuid.uuid4())
        now = self.clock()
        ttl = self.settings.application_ttl_s
        confirm = self.link(app_id, self.issue(app_id, CONFIRM, ttl))
        manage = self.link(app_id, self.issue(app_id, MANAGE, self.settings.manage_link_ttl_s), manage=True)
        payload = body["payload"]
        async with in_transaction() as conn:
            await Application.create(
                id=app_id, status="unconfirmed", created_at=format_timestamp(now), client_key=client_key,
                email_key=ekey, name=applicant.name, email=applicant.email, visibility=visibility,
                body=orjson.dumps({"type": "organisation", "payload": payload}).decode(), using_db=conn,
            )
            await self._mail(conn, "confirm", applicant, None, app_id, organisation=payload.get("legal_name", ""),
                             confirm_link=confirm, manage_link=manage, expires=self._expires_text(ttl))
        return {"id": app_id, "status": "unconfirmed"}

    # -- confirm -------------------------------------------------------------------------------

    async def confirm(self, app_id: str, token: Any) -> dict[str, str]:
        """Use a confirmation link: create the ``national`` record with ``membership.status = applied``.

        Raises:
            Unauthenticated: forged or expired token. NotFound: no such application (purged).
            TokenUsed: the application was confirmed already.
        """
        self.check(token, app_id, CONFIRM)
        app = await Application.filter(id=app_id).first()
        if app is None:
            raise NotFound(f"no application {app_id}")
        # claim it first: two clicks at once confirm once, the other is told the link was used
        if not await Application.filter(id=app_id, status="unconfirmed").update(status="confirming"):
            raise TokenUsed("this confirmation link was already used")
        stored = orjson.loads(app.body)
        payload = {**stored["payload"], **record_fields()}
        applicant = Applicant(app.name, app.email)
        manage = self.link(app_id, self.issue(app_id, MANAGE, self.settings.manage_link_ttl_s), manage=True)
        organisation = str(payload.get("legal_name", ""))

        async def tell(conn: BaseDBAsyncClient, env: Envelope) -> None:
            await Application.filter(id=app_id).using_db(conn).update(
                status="applied", record_id=env.id, confirmed_at=format_timestamp(self.clock()))
            await self._mail(conn, "received", applicant, env.id, app_id, organisation=organisation,
                             manage_link=manage)
            await self._tell_assessors(conn, env.id, app_id, organisation)

        try:
            env = await self.publisher.create("organisation", "national", payload,
                                              actor=Actor("applicant", "applicant", decision="applied"),
                                              then=tell)
        except BaseException:
            await Application.filter(id=app_id, status="confirming").update(status="unconfirmed")
            raise
        return {"id": app_id, "record_id": env.id, "status": "applied"}

    # -- follow --------------------------------------------------------------------------------

    async def status(self, app_id: str, token: Any) -> dict[str, Any]:
        """What the applicant may see of its file (manage link).

        Raises:
            Unauthenticated, NotFound.
        """
        self.check(token, app_id, MANAGE)
        app = await Application.filter(id=app_id).first()
        if app is None:
            raise NotFound(f"no application {app_id} (unconfirmed applications are deleted after "
                           f"{self.settings.application_ttl_s // 3600} hours)")
        stored = orjson.loads(app.body or "{}")
        events = []
        if app.record_id:
            for ev in await VersionEvent.filter(record_id=app.record_id, decision__not_isnull=True).order_by("version"):
                events.append({"at": ev.at, "status": ev.decision, "ground": ev.ground, "note": ev.note})
        return {"id": app.id, "status": app.status if app.status != "confirming" else "unconfirmed",
                "record_id": app.record_id, "proposal": "pending" if app.proposal else None, "organisation": (stored.get("payload") or {}).get("legal_name"),
                "submitted_at": app.created_at, "confirmed_at": app.confirmed_at, "decisions": events}

    async def propose(self, app_id: str, token: Any, body: Any) -> dict[str, Any]:
        """The applicant's later changes, with the manage link, assessed like an application: a rejected or
        revoked organisation applies again (``applied``, national until registered); a pending one
        replaces what it sent; a registered member's change waits as a proposal for an assessor (the
        published record does not change until then). Assessors are told.

        Raises:
            Unauthenticated, NotFound, SchemaInvalid, Conflict (not confirmed yet).
        """
        self.check(token, app_id, MANAGE)
        app = await Application.filter(id=app_id).first()
        if app is None:
            raise NotFound(f"no application {app_id}")
        if not app.record_id:
            raise Conflict("confirm the application first (the link in the first mail)")
        if not isinstance(body, dict) or set(body) - {"payload", "visibility"}:
            raise _schema_error("body must be {payload, visibility?}", "")
        await self.check_payload(body.get("payload"))
        visibility = body.get("visibility", app.visibility)
        if visibility not in ("public", "network"):
            raise _schema_error("visibility must be public or network", "/visibility")
        payload: dict[str, Any] = body["payload"]
        rid = app.record_id
        organisation = str(payload.get("legal_name", ""))
        now = format_timestamp(self.clock())
        record = await Record.filter(id=rid).first()
        if record is None or record.deleted:
            raise NotFound(f"the record of application {app_id} no longer exists")
        status = (orjson.loads(record.envelope)["payload"].get("membership") or {}).get("status")
        if status == "registered":
            async with in_transaction() as conn:
                await Application.filter(id=app_id).using_db(conn).update(
                    proposal=orjson.dumps({"payload": payload, "visibility": visibility}).decode(), proposed_at=now)
                await self._tell_assessors(conn, rid, app_id, organisation)
            return {"id": app_id, "record_id": rid, "status": "registered", "proposal": "pending"}

        def change(current: Record, old: dict[str, Any]) -> Amendment:
            before = (old.get("membership") or {}).get("status")
            consent = {"share_with_eccc_and_nccs": True}
            if before in ("rejected", "revoked"):  # a new application
                return Amendment({**payload, "membership": {"status": "applied"}, "consent": consent}, "national")
            if before in ("applied", "assessed"):
                return Amendment({**payload, "membership": old["membership"], "consent": consent},
                                 current.visibility)
            raise Conflict(f"the membership is {before}; try again")

        reapply = status in ("rejected", "revoked")

        async def tell(conn: BaseDBAsyncClient, env: Envelope) -> None:
            await Application.filter(id=app_id).using_db(conn).update(
                visibility=visibility, status="applied" if reapply else app.status,
                body=orjson.dumps({"type": "organisation", "payload": payload}).decode())
            await self._tell_assessors(conn, rid, app_id, organisation)

        actor = Actor("applicant", "applicant", decision="applied" if reapply else None)
        env = await self.publisher.amend(rid, change, actor, then=tell)
        return {"id": app_id, "record_id": rid,
                "status": env.payload["membership"]["status"], "proposal": None}

    async def _tell_assessors(self, conn: BaseDBAsyncClient, rid: str, app_id: str, organisation: str) -> None:
        for addr in self.settings.assessor_emails:
            await self._mail(conn, "assessor", ("", addr), rid, app_id, organisation=organisation, record_id=rid,
                             queue_link=f"{self.settings.base_url}/admin/assessments/{rid}")

    async def resend_manage_link(self, body: Any, client: str) -> None:
        """Mail a fresh manage link for every confirmed application of an address (same answer whether
        there are any or not, so the endpoint tells nobody who applied).

        Raises:
            SchemaInvalid, HeaderUnsafe, RateLimited.
        """
        if not isinstance(body, dict) or set(body) - {"email"}:
            raise _schema_error("body must be {\"email\"}", "")
        email = body.get("email")
        if not isinstance(email, str) or _CRLF.search(email) or len(email) > 254 or not EMAIL_RE.match(email):
            raise _schema_error("email is not a valid address", "/email")
        ekey = email_key(email)
        now = self.clock()
        since = format_timestamp(now - timedelta(seconds=WINDOW_S))
        sent = await MailMessage.filter(kind="manage", to_addr=email, created_at__gt=since).order_by("created_at") \
            .values_list("created_at", flat=True)
        if len(sent) >= self.settings.application_rate_per_email:
            raise RateLimited("too many link requests for this address; try again later",
                              retry_after_s=_retry_after(now, str(sent[0])))
        await self._mail_cap()
        apps = await Application.filter(email_key=ekey, record_id__not_isnull=True).order_by("-created_at").limit(20)
        ttl = self.settings.manage_link_ttl_s
        async with in_transaction() as conn:
            for app in apps:
                stored = orjson.loads(app.body or "{}")
                manage = self.link(app.id, self.issue(app.id, MANAGE, ttl), manage=True)
                await self._mail(conn, "manage", Applicant(app.name, app.email), app.record_id, app.id,
                                 organisation=(stored.get("payload") or {}).get("legal_name", ""),
                                 manage_link=manage, expires=self._expires_text(ttl))

    # -- housekeeping --------------------------------------------------------------------------

    async def purge_unconfirmed(self) -> int:
        """Delete applications never confirmed within ``application_ttl_s`` with every mail about them
        (rows and .eml files: a stranger's name and address are not kept), and the address of sent mails
        older than :data:`SENT_KEPT_S`. Returns how many applications went."""
        now = self.clock()
        old_sent = format_timestamp(now - timedelta(seconds=SENT_KEPT_S))
        await MailMessage.filter(state="sent", sent_at__lt=old_sent).delete()
        cutoff = format_timestamp(now - timedelta(seconds=self.settings.application_ttl_s))
        ids = list(await Application.filter(status="unconfirmed", created_at__lt=cutoff).values_list("id", flat=True))
        if not ids:
            return 0
        mails = list(await MailMessage.filter(application_id__in=ids).values_list("id", flat=True))
        async with in_transaction() as conn:
            await MailMessage.filter(application_id__in=ids).using_db(conn).delete()
            await Application.filter(id__in=ids, status="unconfirmed").using_db(conn).delete()
        mail.remove_files(self.settings.outbox_dir, [int(m) for m in mails])
        return len(ids)

    async def forget_record(self, record_id: str) -> int:
        """After an ``erased`` tombstone (DESIGN §11): drop every mail about the record — queued or
        sent, its row and its .eml file — so no byte of it stays in the outbox. Returns how many."""
        app_ids = list(await Application.filter(record_id=record_id).values_list("id", flat=True))
        rows = await MailMessage.filter(record_id=record_id).values_list("id", flat=True)
        if app_ids:
            rows = [*rows, *await MailMessage.filter(application_id__in=app_ids).values_list("id", flat=True)]
        ids = sorted(set(rows))
        if not ids:
            return 0
        await MailMessage.filter(id__in=ids).delete()
        await Application.filter(record_id=record_id).update(body="{}", name="", email="", email_key="",
                                                             client_key="")
        mail.remove_files(self.settings.outbox_dir, ids)
        return len(ids)

    async def applicant_of(self, record_id: str) -> tuple[Applicant, Application] | None:
        app = await Application.filter(record_id=record_id).order_by("-created_at").first()
        if app is None or not app.email:
            return None
        return Applicant(app.name, app.email), app


def _retry_after(now: datetime, oldest: str) -> int:
    from federation.timefmt import parse_timestamp

    free_at = parse_timestamp(oldest) + timedelta(seconds=WINDOW_S)
    return max(1, math.ceil((free_at - now).total_seconds()))


__all__ = ["Applicant", "Conflict", "Gatekeeper", "TokenUsed", "application_schema", "parse_applicant"]
