"""The portal's routes, as entries of the one route table (so ``/openapi.json`` lists them too)."""

from __future__ import annotations

from node.http.routes import (
    APPLICATION_ID,
    RECORD_ID_PARAM,
    RECORD_TYPE,
    SEARCH_PARAMS,
    Handler,
    Param,
    Route,
    integer,
    path,
    query,
)
from node.web import admin, apply, public

HTML = "text/html"
FORM = "application/x-www-form-urlencoded"


def portal_routes() -> list[Route]:
    """Every portal page of both roles (``node.http.routes.all_routes`` appends them)."""
    rid = RECORD_ID_PARAM

    def page(method: str, path: str, handler: Handler, name: str, summary: str, *, roles: tuple[str, ...] = ("node", "hub"),
             auth: str = "optional", params: tuple[Param, ...] = (), body: str | None = None, body_media: str = FORM,
             responses: dict[int, str] | None = None) -> Route:
        return Route(method, path, handler, name, summary, roles=roles, auth=auth, tag="portal",
                     params=params, body=body, body_media=body_media, content_type=HTML,
                     responses=responses or {200: "HTML page"})

    return [
        page("GET", "/", public.search_page, "portal-search",
             "Search page (hub: Europe-wide with node freshness; node: its own records)", params=SEARCH_PARAMS,
             responses={200: "HTML page"}),
        page("GET", "/records/{id}", public.record_page, "portal-record",
             "A record as the reader may see it (anonymous: public records, the schema's public fields only)", params=rid,
             responses={200: "HTML page", 410: "withdrawn (HTML page)"}),
        page("GET", "/status", public.status_page, "portal-status",
             "Federation status: every node's sync state, records per country", roles=("hub",)),
        page("GET", "/login", public.login_form, "portal-login-form", "Sign in with a user token",
             params=(query("next", "local page to return to"),)),
        page("POST", "/login", public.login, "portal-login",
             "Sign in: the token is kept in an HttpOnly, SameSite=Strict cookie", body="LoginForm",
             responses={303: "signed in", 401: "token not valid here (HTML page)"}),
        page("POST", "/logout", public.logout, "portal-logout", "Sign out", body="CsrfForm",
             responses={303: "signed out"}),
        Route("GET", "/static/{name}", public.static_file, "portal-static", "The portal's stylesheet",
              tag="portal", content_type="text/css", params=(path("name", "file name"),),
              responses={200: "file", 404: "not_found"}),
        # -- the gatekeeper (DESIGN §12)
        page("GET", "/apply", apply.apply_form, "portal-apply-form",
             "Apply to join the Community: the form generated from the organisation schema", roles=("node",)),
        page("POST", "/apply", apply.apply_submit, "portal-apply",
             "Send an application (same checks as POST /api/v1/applications); a confirmation link is mailed",
             roles=("node",), body="ApplyForm",
             responses={202: "check your mailbox (HTML page)", 422: "form with errors", 429: "rate_limited"}),
        page("GET", "/apply/link", apply.link_form, "portal-apply-link-form",
             "Ask for a new link to follow an application", roles=("node",)),
        page("POST", "/apply/link", apply.link_submit, "portal-apply-link",
             "Mail a new manage link (same answer whether or not the address applied)", roles=("node",),
             body="ManageLinkForm", responses={202: "HTML page", 429: "rate_limited"}),
        page("GET", "/apply/{id}", apply.confirm_page, "portal-apply-confirm-form",
             "The mailed confirmation link: a page with a button (nothing is confirmed by GET)", roles=("node",),
             params=(APPLICATION_ID, query("token", "the link's token"))),
        page("POST", "/apply/{id}", apply.confirm_submit, "portal-apply-confirm",
             "Confirm the application (POST only)", roles=("node",), params=(APPLICATION_ID,), body="ConfirmForm",
             responses={200: "HTML page", 401: "forged or expired link", 409: "token_used"}),
        page("GET", "/apply/{id}/status", apply.status_page, "portal-apply-status",
             "The applicant's file (manage link)", roles=("node",),
             params=(APPLICATION_ID, query("token", "the manage link's token")),
             responses={200: "HTML page", 401: "forged or expired link"}),
        page("GET", "/admin/assessments", apply.queue_page, "portal-assessments",
             "Assessors and admins: applications waiting for a decision", roles=("node",), auth="user"),
        page("GET", "/admin/assessments/{id}", apply.assess_page, "portal-assessment",
             "A record to assess: its content, history and the decision form", roles=("node",), auth="user",
             params=(*rid, query("done", "the decision just saved")), responses={200: "HTML page"}),
        page("POST", "/admin/assessments/{id}", apply.assess_submit, "portal-assessment-decide",
             "Save a decision (same rules as POST /api/v1/records/{id}/decisions)", roles=("node",), auth="user",
             params=rid, body="DecisionForm",
             responses={303: "saved", 422: "page with the error (missing ground, invalid transition)"}),
        # -- node administration
        page("GET", "/admin/records", admin.records_list, "portal-admin-records", "Records of this node",
             roles=("node",), auth="user", params=(query("type", "record type", RECORD_TYPE),
                                                   query("before", "next page", integer(1, 2**63 - 1))),
             responses={200: "HTML page"}),
        page("GET", "/admin/records/new", admin.record_new, "portal-admin-new",
             "Form for a new record, generated from its JSON Schema", roles=("node",), auth="user",
             params=(query("type", "record type", RECORD_TYPE),), responses={200: "HTML page"}),
        page("POST", "/admin/records/new", admin.record_create, "portal-admin-create",
             "Create a record from the form (same checks as POST /api/v1/records)", roles=("node",),
             auth="user", body="RecordForm", responses={303: "created", 422: "form with errors next to the fields"}),
        page("GET", "/admin/records/{id}/edit", admin.record_edit, "portal-admin-edit",
             "Form filled with the current version", roles=("node",), auth="user", params=rid,
             responses={200: "HTML page", 410: "deleted (HTML page)"}),
        page("POST", "/admin/records/{id}/edit", admin.record_update, "portal-admin-update",
             "Save a new version (optimistic: the version being replaced)", roles=("node",), auth="user",
             params=rid, body="RecordForm",
             responses={303: "saved", 409: "version conflict (form)", 410: "deleted (HTML page)",
                        422: "form with errors"}),
        page("POST", "/admin/records/{id}/delete", admin.record_delete, "portal-admin-delete",
             "Withdraw a record with a reason (signed tombstone)", roles=("node",), auth="user", params=rid,
             body="DeleteForm", responses={303: "withdrawn", 410: "already deleted (HTML page)"}),
        page("GET", "/admin/import", admin.import_form, "portal-admin-upload-form", "Import a file",
             roles=("node",), auth="user"),
        page("POST", "/admin/import", admin.import_run, "portal-admin-upload",
             "Import a JSON/NDJSON/CSV/CORDIS file (dry run or for real), as ncc import does",
             roles=("node",), auth="user", body="ImportForm", body_media="multipart/form-data",
             responses={200: "report (HTML page)", 413: "file too large", 422: "file not readable (report)"}),
        page("GET", "/admin/quarantine", admin.quarantine, "portal-admin-quarantine",
             "Records of this node the hub refused (asked with the node's service token)", roles=("node",),
             auth="user", params=(query("after", "next page", integer(0, 2**62)),),
             responses={200: "HTML page", 502: "hub unreachable (HTML page)"}),
        page("GET", "/admin/audit", admin.audit_page, "portal-admin-audit",
             "The node's last audit of the hub's transparency log", roles=("node",), auth="user"),
    ]
