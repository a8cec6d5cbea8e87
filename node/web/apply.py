"""Portal pages of the gatekeeper (DESIGN §12): ``/apply`` (the form generated from the schema), the
confirmation page behind the mailed link (confirms by POST only), the applicant's status page, the
manage-link request, and the assessors' queue with the decision form.

Pages that carry a link token answer with ``Referrer-Policy: no-referrer`` and ``Cache-Control:
no-store`` (the token never leaves in a Referer, never sits in a cache); request logs hold the path
only, never the query string with the token.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from federation.errors import ProtocolError, SchemaInvalid
from node.errors import ApiError
from node.http.clientaddr import client_address
from node.http.views.applications import application_id
from node.http.views.common import ctx, record_id_param
from node.services import assessment
from node.services.applications import Gatekeeper, application_schema
from node.services.mail_templates import GROUND_TITLES
from node.web import data
from node.web.admin import _user
from node.web.form_errors import FieldError, field_errors
from node.web.form_sections import sections
from node.web.public import _form
from node.web.render import page, redirect, render
from node.web.schema_forms import (
    FormInputError,
    display_rows,
    form_values,
    parse_fields,
    schema_fields,
    text_value,
    typed_values,
)
from node.web.session import check_csrf, portal_principal
from schemas import ID_BASE

VISIBILITY_CHOICES = {
    "public": "Public — once registered, anyone can find the organisation's public details (never the contact "
              "person).",
    "network": "Network — once registered, only the National Coordination Centres and the ECCC see it.",
}
DECISION_HELP = {
    "assessed": "Assessed — the application is complete and eligible; registration follows.",
    "registered": "Registered — the organisation becomes a Community member (published as it consented).",
    "rejected": "Rejected — give the ground; the applicant is told.",
    "revoked": "Revoked — give the ground; a shared record is withdrawn from the federation.",
}


def _gatekeeper(request: web.Request) -> Gatekeeper:
    gk = ctx(request).gatekeeper
    assert gk is not None
    return gk


def apply_fields() -> Any:
    return schema_fields(f"{ID_BASE}/{application_schema()}", ("membership", "consent"))


def _private(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


#: The inputs of the apply page outside the organisation's form: pointer of the API's error -> (element
#: id, what the summary calls it, the plain message shown beside it).
OWN_INPUTS = {
    "/applicant/name": ("applicant-name", "Your name", "Enter your name (1 to 200 characters)."),
    "/applicant/email": ("applicant-email", "Your e-mail address",
                         "Enter an e-mail address that can receive the confirmation link."),
    "/accept_terms": ("accept-terms", "Confirmation", "Tick the box to confirm the application."),
}


def _own_errors(errors: list[dict[str, str]]) -> tuple[dict[str, FieldError], list[dict[str, str]]]:
    """The errors of the page's own inputs (applicant, confirmation), each linked from the summary and
    shown beside its input; the rest are the organisation form's."""
    own: dict[str, FieldError] = {}
    rest = []
    for e in errors:
        pointer = str(e.get("pointer", ""))
        if pointer in OWN_INPUTS and pointer not in own:
            dom_id, label, message = OWN_INPUTS[pointer]
            own[pointer] = FieldError(pointer, dom_id, message, f"{label}: {message[0].lower()}{message[1:]}")
        elif pointer not in OWN_INPUTS:
            rest.append(e)
    return own, rest


async def _apply_page(request: web.Request, values: dict[str, Any], errors: list[dict[str, str]],
                      applicant: dict[str, str], visibility: str, status: int = 200,
                      accepted: bool = False) -> web.Response:
    fields = apply_fields()
    own, errors = _own_errors(errors)
    by_field, general = field_errors(errors, fields)
    return await render(request, "apply.html", {
        "sections": sections("organisation", fields, values, by_field), "values": values,
        "text_value": text_value, "errors": by_field, "general_errors": general,
        "summary": [*own.values(), *by_field.values()], "own": {e.dom_id: e for e in own.values()},
        "applicant": applicant, "visibility": visibility, "accepted": accepted,
        "visibility_choices": VISIBILITY_CHOICES, "title": "Apply to join the Cybersecurity Competence Community",
    }, status=status)


@page
async def apply_form(request: web.Request) -> web.Response:
    """``GET /apply`` — the application form."""
    return await _apply_page(request, {"/country": ctx(request).settings.country}, [], {"name": "", "email": ""},
                             "network")


@page
async def apply_submit(request: web.Request) -> web.Response:
    """``POST /apply`` — store the application (as the API does) and say to check the mailbox."""
    form = await _form(request, ctx(request).settings.max_form_bytes)
    await check_csrf(request, form.get("csrf"))
    applicant = {"name": str(form.get("applicant_name", "")), "email": str(form.get("applicant_email", ""))}
    visibility = str(form.get("visibility", "network"))
    accepted = form.get("accept_terms") == "yes"
    try:
        payload = parse_fields(apply_fields(), form)
    except FormInputError as exc:
        return await _apply_page(request, typed_values(form, apply_fields()), exc.errors, applicant, visibility,
                                 status=422, accepted=accepted)
    body = {"type": "organisation", "payload": payload, "visibility": visibility,
            "applicant": {"name": applicant["name"].strip(), "email": applicant["email"].strip()},
            "accept_terms": accepted}
    settings = ctx(request).settings
    try:
        await _gatekeeper(request).apply(body, client_address(request, settings.trusted_proxies))
    except SchemaInvalid as exc:
        errors = [{str(k): str(v) for k, v in e.items()} for e in exc.errors]
        return await _apply_page(request, form_values(payload), errors, applicant, visibility, status=422,
                                 accepted=accepted)
    except ApiError as exc:
        if exc.status == 429:
            raise
        return await _apply_page(request, form_values(payload), [{"pointer": "", "message": exc.detail}],
                                 applicant, visibility, status=exc.status, accepted=accepted)
    return await render(request, "apply_sent.html", {"title": "Check your mailbox", "email": body["applicant"]["email"]},
                        status=202)


@page
async def confirm_page(request: web.Request) -> web.StreamResponse:
    """``GET /apply/{id}?token=`` — a page with one button; nothing is confirmed by a GET (mail
    scanners follow links)."""
    app_id = application_id(request)
    token = request.query.get("token", "")
    return _private(await render(request, "apply_confirm.html", {
        "title": "Confirm your application", "app_id": app_id, "token": token}))


@page
async def confirm_submit(request: web.Request) -> web.StreamResponse:
    """``POST /apply/{id}`` — confirm with the token from the page's form."""
    app_id = application_id(request)
    form = await _form(request, 16 * 1024)
    result = await _gatekeeper(request).confirm(app_id, form.get("token"))
    return _private(await render(request, "apply_done.html", {"title": "Application confirmed", **result}))


@page
async def status_page(request: web.Request) -> web.StreamResponse:
    """``GET /apply/{id}/status?token=`` — the applicant's file (manage link)."""
    app_id = application_id(request)
    info = await _gatekeeper(request).status(app_id, request.query.get("token", ""))
    titles = GROUND_TITLES["en"]
    return _private(await render(request, "apply_status.html", {
        "title": "Your application", "info": info, "ground_titles": titles}))


@page
async def link_form(request: web.Request) -> web.Response:
    """``GET /apply/link`` — ask for a new manage link."""
    return await render(request, "apply_link.html", {"title": "Follow your application", "sent": False})


@page
async def link_submit(request: web.Request) -> web.Response:
    form = await _form(request, 16 * 1024)
    await check_csrf(request, form.get("csrf"))
    settings = ctx(request).settings
    await _gatekeeper(request).resend_manage_link({"email": str(form.get("email", "")).strip()},
                                                  client_address(request, settings.trusted_proxies))
    return await render(request, "apply_link.html", {"title": "Follow your application", "sent": True}, status=202)


# -- assessors ----------------------------------------------------------------------------------


@page
async def queue_page(request: web.Request) -> web.Response:
    """``GET /admin/assessments`` — applications waiting for a decision."""
    await _user(request, assessment.DECIDERS)
    return await render(request, "assess_queue.html", {"title": "Applications to assess",
                                                       "items": await assessment.queue()})


async def _assess_page(request: web.Request, rid: str, errors: list[str], status: int = 200,
                       notice: str | None = None) -> web.Response:
    env = await data.own_record(request, await portal_principal(request), rid)
    versions = await assessment.history(rid) or []
    current = ((env.get("payload") or {}).get("membership") or {}).get("status")
    allowed = sorted(assessment.DECISION_TRANSITIONS.get(current, frozenset()),
                     key=list(assessment.DECISIONS).index)
    return await render(request, "assess_record.html", {
        "title": data.record_title(env["type"], env["payload"]), "env": env, "status_now": current,
        "rows": display_rows(env["type"], env["payload"]), "versions": versions, "allowed": allowed,
        "decision_help": DECISION_HELP, "grounds": assessment.GROUNDS, "ground_titles": GROUND_TITLES["en"],
        "errors": errors, "notice": notice,
    }, status=status)


@page
async def assess_page(request: web.Request) -> web.Response:
    """``GET /admin/assessments/{id}`` — the record, its history and the decision form."""
    await _user(request, assessment.DECIDERS)
    rid = record_id_param(request)
    done = request.query.get("done")
    return await _assess_page(request, rid, [], notice=f"Decision saved: {done}." if done else None)


@page
async def assess_submit(request: web.Request) -> web.Response:
    """``POST /admin/assessments/{id}`` — decide (same rules as the API)."""
    p = await _user(request, assessment.DECIDERS)
    rid = record_id_param(request)
    form = await _form(request, 16 * 1024)
    await check_csrf(request, form.get("csrf"))
    body: dict[str, Any] = {"status": str(form.get("status", ""))}
    if form.get("ground"):
        body["ground"] = str(form.get("ground"))
    if str(form.get("note", "")).strip():
        body["note"] = str(form.get("note")).replace("\r\n", "\n").strip()
    context = ctx(request)
    assert context.publisher is not None
    try:
        decision = assessment.parse_decision(body)
        await assessment.decide(context.publisher, context.gatekeeper, rid, decision, p, context.clock,
                                  context.atlas)
    except (SchemaInvalid, ProtocolError) as exc:
        return await _assess_page(request, rid, [exc.detail], status=422)
    except ApiError as exc:
        if exc.status in (404, 410):
            raise
        return await _assess_page(request, rid, [exc.detail], status=exc.status)
    return redirect(f"/admin/assessments/{rid}?done={body['status']}")


