"""Node administration pages: records (list, create, edit, withdraw), import, the hub's quarantine.

Writes go through the same :class:`node.services.publish.Publisher` as the API, so a form can do
nothing the API refuses; ``schema_invalid`` errors come back next to the fields their JSON pointers
name. Every POST checks the session's CSRF token first.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from federation.envelope import TOMBSTONE_REASONS, VISIBILITIES
from federation.errors import ConsentMissing, ProtocolError, SchemaInvalid
from federation.groups import group_of, group_visibility, is_visibility
from node.errors import ApiError, Forbidden, InvalidParameter
from node.http.auth import NODE_ROLES, Principal
from node.http.views.common import ctx, int_param, record_id_param
from node.services import assessment
from node.services.atlas import sync_state
from node.services.nodefed import FederationError
from node.services.publish import Actor, Publisher
from node.storage import reads
from node.web import data
from node.web.form_errors import field_errors
from node.web.form_sections import sections
from node.web.public import _form, parse_form_body
from node.web.render import LoginRequired, page, redirect, render
from node.web.schema_forms import (
    FormInputError,
    fields_by_pointer,
    form_fields,
    form_values,
    parse_form,
    text_value,
    type_description,
    type_title,
    typed_values,
)
from node.web.session import check_csrf, portal_principal
from schemas import RECORD_TYPES

WRITERS = ("admin", "editor")
VISIBILITY_HELP = {
    "public": "Public — anyone can find it, but anonymous readers see only the fields its schema marks public "
              "(identifiers, address, contact and assessment details stay with the network).",
    "network": "Network — the NCCs and the Centre's analysts only.",
    "national": "National — stays on this node, never sent to the hub.",
}
GROUP_HELP = ("Sharing group {name} — only the hub's analysts of this group see it, and only while this "
              "country is a member (DESIGN §15).")


async def _visibility_choices(request: web.Request, current: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The visibilities a form offers: the plain ones, the sharing groups this node is a member of (by
    the hub directory it holds) and the record's own (a group it has left: to narrow or widen it)."""
    groups = set(await reads.held_member_groups(ctx(request).settings.country or ""))
    if current is not None and group_of(current) is not None:
        groups.add(str(group_of(current)))
    choices = [*VISIBILITIES, *(group_visibility(g) for g in sorted(groups))]
    return choices, {**VISIBILITY_HELP, **{group_visibility(g): GROUP_HELP.format(name=g) for g in groups}}
REASON_HELP = {
    "withdrawn": "Withdrawn — no longer listed; earlier versions are kept.",
    "erased": "Erased (GDPR Art. 17) — also purges the payloads of all earlier versions on this node.",
    "revoked": "Revoked — the Community membership was revoked.",
}


async def _user(request: web.Request, roles: tuple[str, ...] = NODE_ROLES) -> Principal:
    """The signed-in user, who must hold one of ``roles``.

    Raises:
        LoginRequired: nobody signed in.
        Forbidden: the user's role does not allow the page.
    """
    p = await portal_principal(request)
    if p.is_anonymous:
        raise LoginRequired()
    if not p.has_role(*roles):
        raise Forbidden(f"your role ({p.role}) does not allow this; it needs {' or '.join(roles)}")
    return p


def _publisher(request: web.Request) -> Publisher:
    publisher = ctx(request).publisher
    assert publisher is not None  # node role
    return publisher


# -- records ------------------------------------------------------------------------------------


@page
async def records_list(request: web.Request) -> web.Response:
    """``/admin/records`` — this node's current records, newest change first."""
    p = await _user(request)
    rtype = data.record_type_param(request.query.get("type"))
    before = int_param(request, "before", 0, 1, 2**63 - 1) or None
    records, next_before = await data.list_own_records(request, p, rtype, before, 50)
    return await render(request, "admin_records.html", {
        "records": records, "type": rtype, "types": RECORD_TYPES, "type_labels": data.TYPE_LABELS,
        "type_plurals": data.TYPE_PLURALS,
        "next_before": next_before, "can_write": p.has_role(*WRITERS),
        "notice": _notice(request.query.get("done", ""), request.query.get("id", "")),
    })


def _notice(done: str, rid: str) -> str | None:
    return {"deleted": f"Record {rid} was withdrawn (a signed tombstone was published).",
            "created": f"Record {rid} was created and signed.",
            "saved": f"Record {rid} was saved as a new signed version."}.get(done)


@page
async def record_new(request: web.Request) -> web.Response:
    """``/admin/records/new`` — choose a type, then the form generated from its schema."""
    await _user(request, WRITERS)
    rtype = data.record_type_param(request.query.get("type"))
    if rtype is None:
        kinds = [{"type": t, "title": type_title(t), "description": type_description(t)} for t in RECORD_TYPES]
        return await render(request, "admin_types.html", {"kinds": kinds})
    visibility = "national" if rtype == "expert" else "public"
    return await _record_form(request, rtype, None, new_record_values(rtype, ctx(request).settings.country),
                              visibility, [])


def new_record_values(rtype: str, country: str) -> dict[str, Any]:
    """What a new record's form starts with: the node's own country, where the type has a country."""
    country_field = fields_by_pointer(form_fields(rtype)).get("/country")
    if country_field is not None and any(o.value == country for o in country_field.options):
        return {"/country": country}
    return {}


@page
async def record_create(request: web.Request) -> web.Response:
    p = await _user(request, WRITERS)
    form = await _form(request, ctx(request).settings.max_form_bytes)
    await check_csrf(request, form.get("csrf"))
    rtype = data.record_type_param(str(form.get("type", "")), required=True)
    assert rtype is not None
    visibility = _visibility(form)
    try:
        payload = parse_form(rtype, form)
    except FormInputError as exc:
        return await _record_form(request, rtype, None, typed_values(form, form_fields(rtype)), visibility, exc.errors,
                                  status=422)
    try:
        assessment.check_create(p, payload)  # editors may not set membership (DESIGN §12)
        env = await _publisher(request).create(rtype, visibility, payload, actor=Actor(p.subject or str(p.role)))
    except (ProtocolError, ApiError) as exc:
        return await _failed(request, rtype, None, payload, visibility, exc)
    return redirect(f"/admin/records?done=created&id={env.id}")


@page
async def record_edit(request: web.Request) -> web.Response:
    """``/admin/records/{id}/edit`` — the form filled with the current version, and withdrawal."""
    p = await _user(request, WRITERS)
    rid = record_id_param(request)
    env = await data.own_record(request, p, rid)
    saved = request.query.get("done") == "saved"
    return await _record_form(request, env["type"], env, form_values(env["payload"]), env["visibility"], [],
                              notice=f"Saved as version {env['version']}." if saved else None,
                              atlas=await sync_state(rid) if env["type"] == "organisation" else None)


@page
async def record_update(request: web.Request) -> web.Response:
    p = await _user(request, WRITERS)
    rid = record_id_param(request)
    form = await _form(request, ctx(request).settings.max_form_bytes)
    await check_csrf(request, form.get("csrf"))
    current = await data.own_record(request, p, rid)
    rtype = current["type"]
    visibility = _visibility(form)
    try:
        version = int(str(form.get("version", "")))
    except ValueError as exc:
        raise InvalidParameter("the form lacks the version it edits", parameter="version") from exc
    shown = {**current, "version": version}
    try:
        payload = parse_form(rtype, form)
    except FormInputError as exc:
        return await _record_form(request, rtype, shown, typed_values(form, form_fields(rtype)), visibility, exc.errors,
                                  status=422)
    try:
        await _publisher(request).update(rid, payload, version, visibility, actor=Actor(p.subject or str(p.role)),
                                         guard=assessment.membership_guard(p))
    except (ProtocolError, ApiError) as exc:
        return await _failed(request, rtype, shown, payload, visibility, exc)
    return redirect(f"/admin/records/{rid}/edit?done=saved")


@page
async def record_delete(request: web.Request) -> web.Response:
    """POST ``/admin/records/{id}/delete`` — publish a tombstone with the chosen reason."""
    p = await _user(request, WRITERS)
    rid = record_id_param(request)
    form = await _form(request)
    await check_csrf(request, form.get("csrf"))
    reason = str(form.get("reason", ""))
    if reason not in TOMBSTONE_REASONS:
        raise InvalidParameter(f"reason must be one of {', '.join(TOMBSTONE_REASONS)}", parameter="reason")
    await _publisher(request).delete(rid, reason, actor=Actor(p.subject or str(p.role)))
    if reason == "erased" and ctx(request).gatekeeper is not None:
        await ctx(request).gatekeeper.forget_record(rid)  # its mails and application too (DESIGN §11)
    return redirect(f"/admin/records?done=deleted&id={rid}")


def _visibility(form: Any) -> str:
    value = str(form.get("visibility", ""))
    if not is_visibility(value):
        raise InvalidParameter(f"visibility must be one of {', '.join(VISIBILITIES)}", parameter="visibility")
    return value


async def _failed(request: web.Request, rtype: str, env: dict[str, Any] | None, payload: dict[str, Any],
                  visibility: str, exc: Exception) -> web.Response:
    if isinstance(exc, SchemaInvalid):
        errors = [{str(k): str(v) for k, v in e.items()} for e in exc.errors]  # pointer, message, keyword
        errors = errors or [{"pointer": "", "message": exc.detail}]
        return await _record_form(request, rtype, env, form_values(payload), visibility, errors, status=422)
    if isinstance(exc, ConsentMissing):
        return await _record_form(request, rtype, env, form_values(payload), visibility,
                                  [{"pointer": "/consent", "message": exc.detail}], status=422)
    if isinstance(exc, ApiError):
        pointer = "/membership/status" if exc.code == "invalid_transition" else ""
        return await _record_form(request, rtype, env, form_values(payload), visibility,
                                  [{"pointer": pointer, "message": exc.detail}], status=exc.status)
    assert isinstance(exc, ProtocolError)
    return await _record_form(request, rtype, env, form_values(payload), visibility,
                              [{"pointer": "", "message": f"{exc.code}: {exc.detail}"}], status=422)


async def _record_form(request: web.Request, rtype: str, env: dict[str, Any] | None, values: dict[str, Any],
                       visibility: str, errors: list[dict[str, str]], status: int = 200,
                       notice: str | None = None, atlas: dict[str, Any] | None = None) -> web.Response:
    fields = form_fields(rtype)
    choices, help_texts = await _visibility_choices(request, env["visibility"] if env else visibility)
    by_field, general = field_errors(errors, fields)
    return await render(request, "admin_form.html", {
        "rtype": rtype, "type_title": type_title(rtype), "env": env, "values": values,
        "sections": sections(rtype, fields, values, by_field),
        "text_value": text_value, "errors": by_field, "general_errors": general, "summary": list(by_field.values()),
        "visibility": visibility, "visibilities": choices, "visibility_help": help_texts,
        "reasons": TOMBSTONE_REASONS, "reason_help": REASON_HELP, "notice": notice, "atlas": atlas,
        "title": data.record_title(rtype, env["payload"]) if env else f"New {type_title(rtype).lower()}",
    }, status=status)


# -- import -------------------------------------------------------------------------------------


@page
async def import_form(request: web.Request) -> web.Response:
    await _user(request, WRITERS)
    return await render(request, "admin_import.html", await _import_context(request, None))


async def _import_context(request: web.Request, result: dict[str, Any] | None) -> dict[str, Any]:
    choices, help_texts = await _visibility_choices(request)
    return {"result": result, "types": RECORD_TYPES, "type_labels": data.TYPE_LABELS,
            "visibilities": choices, "visibility_help": help_texts}


@page
async def import_run(request: web.Request) -> web.Response:
    """POST ``/admin/import`` — the importer of ``ncc import``, dry run or for real."""
    from node.services.import_writer import ImportAborted, import_rows, load_natural_keys
    from node.services.importer import ImportFileError, Options, read_rows

    await _user(request, WRITERS)
    if request.content_type != "multipart/form-data":
        raise InvalidParameter("upload the file with the form (multipart/form-data)")
    form = await parse_form_body(request)  # bounded by max_body_bytes (413 page above it)
    await check_csrf(request, form.get("csrf"))
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        raise InvalidParameter("choose a file to import", parameter="file")
    rtype = data.record_type_param(str(form.get("type", "")))
    vis = str(form.get("visibility", "")) or None
    if vis is not None and not is_visibility(vis):
        raise InvalidParameter(f"visibility must be one of {', '.join(VISIBILITIES)}", parameter="visibility")
    dry_run = form.get("mode") != "import"
    raw = upload.file.read()
    name = upload.filename or "upload"
    keys = await load_natural_keys()
    problems: list[str] = []
    try:
        parsed = read_rows(raw, name, Options(ctx(request).settings.country, rtype, vis),
                           organisations_by_pic=keys.organisations_by_pic)
    except ImportFileError as exc:
        result = {"name": name, "dry_run": dry_run, "error": str(exc), "imported": 0, "rejected": 0,
                  "problems": [], "notes": [], "rows": 0}
        return await render(request, "admin_import.html", await _import_context(request, result), status=422)
    aborted = None
    try:
        outcome = await import_rows(parsed.rows, _publisher(request), keys, dry_run=dry_run, report=problems.append)
        imported, rejected = outcome.imported, outcome.rejected
    except ImportAborted as exc:
        imported, rejected, aborted = exc.outcome.imported, exc.outcome.rejected, str(exc)
    result = {"name": name, "dry_run": dry_run, "error": aborted, "imported": imported, "rejected": rejected,
              "problems": problems, "notes": parsed.notes, "rows": len(parsed.rows), "format": parsed.fmt}
    return await render(request, "admin_import.html", await _import_context(request, result))


# -- quarantine ---------------------------------------------------------------------------------

QUARANTINE_TIMEOUT_S = 10


@page
async def quarantine(request: web.Request) -> web.Response:
    """``/admin/quarantine`` — what the hub refused from this node, asked with the node's service token."""
    await _user(request)
    after = int_param(request, "after", 0, 0, 2**62)
    federation = ctx(request).federation
    enrollment = await federation.enrollment()
    context: dict[str, Any] = {"enrolled": enrollment is not None, "hub_url": None, "items": [], "total": 0,
                               "error": None, "next_after": None}
    if enrollment is None:
        return await render(request, "admin_quarantine.html", context)
    hub_url = str(enrollment["hub_url"])
    context["hub_url"] = hub_url
    try:
        body = await federation.hub_get(hub_url, f"/federation/v1/quarantine?after={after}&limit=100")
    except FederationError as exc:
        where = f"HTTP {exc.status}" + (f" ({exc.code})" if exc.code else "") if exc.status else "unreachable"
        context["error"] = f"the hub at {hub_url} answered {where}"
    else:
        if isinstance(body, dict):
            context["items"] = [i for i in body.get("items", []) if isinstance(i, dict)]
            context["total"] = body.get("total", 0)
            context["next_after"] = body.get("next_after")
        else:
            context["error"] = f"the hub at {hub_url} answered something that is not a quarantine page"
    return await render(request, "admin_quarantine.html", context, status=502 if context["error"] else 200)


# -- audit of the hub ---------------------------------------------------------------------------


@page
async def audit_page(request: web.Request) -> web.Response:
    """``/admin/audit`` — the node's last audit of the hub's transparency log (DESIGN §14)."""
    from node.services.audit import last_result

    await _user(request)
    return await render(request, "admin_audit.html", {"result": await last_result()})
