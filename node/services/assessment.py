"""Assessment (DESIGN §12): decisions on membership, the one path by which a status changes through
the API, and the history of who caused each version.

Rules held here and nowhere else:
- decision transitions: applied → assessed | rejected; assessed → registered | rejected;
  registered → revoked; rejected | revoked → applied only through a new application;
- ``ground`` (a schema ground code) required for rejected/revoked, refused otherwise; ``note`` ≤ 2,000;
- the server sets ``membership.assessed_by`` (the token's subject) and ``assessed_at``;
- effects: ``registered`` takes the visibility the applicant consented to (so it is published);
  ``revoked`` on a shared record turns it national and the feed publishes a ``revoked`` tombstone;
  ``rejected`` changes no visibility (a record that never left the node publishes nothing);
- editors' POST/PUT may not set or change ``membership`` (403); a PUT leaving it out keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from tortoise.backends.base.client import BaseDBAsyncClient

from federation.envelope import Envelope
from federation.errors import SchemaInvalid
from federation.timefmt import format_timestamp
from node.errors import Forbidden
from node.principal import Principal
from node.services.applications import Gatekeeper
from node.services.publish import Actor, Amendment, InvalidTransition, Publisher, changed_pointers
from node.storage.gatekeeper_models import Application, VersionEvent
from node.storage.models import Record, RecordVersion

DECISIONS = ("assessed", "registered", "rejected", "revoked")
GROUNDS = ("criteria-not-met", "criteria-no-longer-met", "financial-regulation-exclusion", "security-reasons")
NEEDS_GROUND = frozenset({"rejected", "revoked"})
DECISION_TRANSITIONS: dict[str | None, frozenset[str]] = {
    "applied": frozenset({"assessed", "rejected"}),
    "assessed": frozenset({"registered", "rejected"}),
    "registered": frozenset({"revoked"}),
}
DECISION_FIELDS = frozenset({"status", "ground", "note"})
MAX_NOTE = 2000
#: Roles that may decide; roles that may read the history.
DECIDERS = ("assessor", "admin")
HISTORY_READERS = ("editor", "assessor", "admin")
#: Roles whose record writes may not touch ``membership`` (admins may, as `ncc import` does).
MEMBERSHIP_LOCKED = ("editor",)


def _invalid(message: str, pointer: str) -> SchemaInvalid:
    return SchemaInvalid(message, [{"pointer": pointer, "message": message}])


@dataclass(frozen=True)
class Decision:
    status: str
    ground: str | None
    note: str | None


def parse_decision(body: Any) -> Decision:
    """``{"status", "ground"?, "note"?}``.

    Raises:
        SchemaInvalid: not an object, unknown field or status, a ground missing, not allowed or
            unknown, a note too long or not text.
    """
    if not isinstance(body, dict):
        raise _invalid("request body must be a JSON object", "")
    unknown = sorted(set(body) - DECISION_FIELDS)
    if unknown:
        raise _invalid(f"unknown field {unknown[0]!r} (allowed: ground, note, status)", f"/{unknown[0]}")
    status = body.get("status")
    if status not in DECISIONS:
        raise _invalid(f"status must be one of {', '.join(DECISIONS)}", "/status")
    ground = body.get("ground")
    if status in NEEDS_GROUND:
        if ground is None:
            raise _invalid(f"a {status} decision needs a ground: one of {', '.join(GROUNDS)}", "/ground")
        if ground not in GROUNDS:
            raise _invalid(f"ground must be one of {', '.join(GROUNDS)}", "/ground")
    elif ground is not None:
        raise _invalid(f"a {status} decision takes no ground", "/ground")
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        raise _invalid(f"note must be text of at most {MAX_NOTE} characters", "/note")
    return Decision(str(status), ground, note or None)


def actor_name(p: Principal) -> str:
    return p.subject or str(p.role)


def membership_guard(p: Principal) -> Callable[[dict[str, Any], Any], Any]:
    """For a PUT: keep the current membership when the new payload leaves it out; refuse an editor's
    change of it (403).

    Raises (from the returned function):
        Forbidden: an editor's payload sets a membership different from the current one.
    """

    def guard(current: dict[str, Any], new: Any) -> Any:
        if not isinstance(new, dict):
            return new
        if "membership" not in new:
            return {**new, "membership": current["membership"]} if "membership" in current else new
        if p.has_role(*MEMBERSHIP_LOCKED) and new.get("membership") != current.get("membership"):
            raise Forbidden("membership is decided by assessors (POST /api/v1/records/{id}/decisions); "
                            "editors may not set or change it")
        return new

    return guard


def check_create(p: Principal, payload: Any) -> None:
    """An editor's new record may not carry ``membership``.

    Raises:
        Forbidden: it does.
    """
    if p.has_role(*MEMBERSHIP_LOCKED) and isinstance(payload, dict) and "membership" in payload:
        raise Forbidden("membership is decided by assessors (POST /api/v1/records/{id}/decisions); "
                        "editors may not set it")


async def decide(publisher: Publisher, gatekeeper: Gatekeeper | None, rid: str, decision: Decision,
                 p: Principal, now: Callable[[], datetime], atlas: Any = None) -> Envelope:
    """Write the decision as the record's next signed version and tell the applicant; with the Atlas
    connector (``atlas``: ``node.services.atlas.AtlasPusher``) a registration or revocation queues a push.

    Raises:
        NotFound, Gone, InvalidTransition (422), SchemaInvalid (not an organisation).
    """
    found = await gatekeeper.applicant_of(rid) if gatekeeper is not None else None
    consented = found[1].visibility if found else None
    proposal = orjson.loads(found[1].proposal) if found and found[1].proposal else None

    def change(current: Record, payload: dict[str, Any]) -> Amendment:
        if current.type != "organisation":
            raise _invalid("only organisations have a Community membership", "/status")
        before = (payload.get("membership") or {}).get("status")
        accepting = before == "registered" and decision.status == "registered" and proposal is not None
        if not accepting and decision.status not in DECISION_TRANSITIONS.get(before, frozenset()):
            raise InvalidTransition(f"membership status cannot change from {before or 'none'} to {decision.status}")
        if accepting:  # a registered member's proposed changes, accepted (DESIGN §12: assessed like an application)
            assert proposal is not None
            payload = {**proposal["payload"], "consent": payload.get("consent") or {"share_with_eccc_and_nccs": True}}
        membership: dict[str, Any] = {"status": decision.status, "assessed_at": format_timestamp(now()),
                                      "assessed_by": actor_name(p)[:200]}
        if decision.ground:
            membership["ground"] = decision.ground
        visibility, reason = current.visibility, "withdrawn"
        if accepting and proposal is not None:
            visibility = proposal["visibility"]
        elif decision.status == "registered" and consented is not None:
            visibility = consented
        elif decision.status == "revoked" and current.visibility != "national":
            visibility, reason = "national", "revoked"
        return Amendment({**payload, "membership": membership}, visibility, reason)

    async def tell(conn: BaseDBAsyncClient, env: Envelope) -> None:
        await Application.filter(record_id=rid).using_db(conn).update(status=decision.status, proposal=None,
                                                                        proposed_at=None)
        if found is None or gatekeeper is None:
            return
        applicant, app = found
        manage = gatekeeper.link(app.id, gatekeeper.issue(app.id, "apply-manage",
                                                          gatekeeper.settings.manage_link_ttl_s), manage=True)
        await gatekeeper._mail(conn, decision.status, applicant, rid, app.id,
                               organisation=str(env.payload.get("legal_name", "")), ground=decision.ground,
                               note=decision.note, manage_link=manage)

    actor = Actor(actor_name(p), "user", decision=decision.status, ground=decision.ground, note=decision.note)
    env = await publisher.amend(rid, change, actor, then=tell)
    if atlas is not None and decision.status in ("registered", "revoked"):
        await atlas.request(rid)  # DESIGN §13: a registration decision queues a push (a revocation, a report)
    return env


async def history(rid: str) -> list[dict[str, Any]] | None:
    """Every version of a record with who caused it, when, the decision, ground, note and changed
    fields (``None``: no such record). Versions written before the history existed (or by a path
    that records no actor) say ``actor: null``; their changes are computed from the stored versions."""
    versions = await RecordVersion.filter(record_id=rid).order_by("version")
    if not versions:
        return None
    events = {e.version: e for e in await VersionEvent.filter(record_id=rid)}
    out: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    previous_visibility: str | None = None
    for v in versions:
        payload = orjson.loads(v.envelope)["payload"] if v.envelope else None
        ev = events.get(v.version)
        if ev is not None:
            changed = orjson.loads(ev.changed)
        elif payload is not None and (previous is not None or v.version == 1):
            changed = changed_pointers(previous or {}, payload)
            if previous_visibility is not None and previous_visibility != v.visibility:
                changed.append("visibility")
        else:
            changed = None  # erased: what changed is not known any more
        out.append({
            "version": v.version, "at": v.issued_at, "visibility": v.visibility, "deleted": v.deleted,
            "actor": ev.actor if ev else None, "actor_kind": ev.actor_kind if ev else None,
            "decision": ev.decision if ev else None, "ground": ev.ground if ev else None,
            "note": ev.note if ev else None, "changed": changed,
        })
        previous, previous_visibility = payload, v.visibility
    return out


async def queue(limit: int = 200) -> list[dict[str, Any]]:
    """Applications waiting for a decision (applied or assessed), oldest first."""
    from tortoise.expressions import Q

    rows = await Application.filter(Q(status__in=["applied", "assessed"]) | Q(proposal__not_isnull=True)) \
        .order_by("confirmed_at").limit(limit)
    out = []
    for app in rows:
        stored = orjson.loads(app.body or "{}")
        out.append({"id": app.id, "record_id": app.record_id, "status": app.status,
                    "organisation": (stored.get("payload") or {}).get("legal_name"),
                    "confirmed_at": app.confirmed_at, "visibility": app.visibility,
                    "proposal": "pending" if app.proposal else None})
    return out
