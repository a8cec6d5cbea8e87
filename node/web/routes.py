"""The portal's routes, as entries of the one route table (so ``/openapi.json`` lists them too)."""

from __future__ import annotations

from node.http.routes import Handler, Route
from node.web import admin, public

HTML = "text/html"


def portal_routes() -> list[Route]:
    """Every portal page of both roles (``node.http.routes.all_routes`` appends them)."""
    rid = (("id", "path", "record id urn:ncc:<origin>:<type>:<uuid>"),)
    search_params = (("q", "query", "free text"), ("type", "query", "repeatable"),
                     ("country", "query", "repeatable"), ("domain", "query", "repeatable"),
                     ("subdomain", "query", "repeatable"), ("sector", "query", "repeatable"),
                     ("technology", "query", "repeatable"), ("use_case", "query", "repeatable"),
                     ("role", "query", "repeatable"), ("org_type", "query", "repeatable"),
                     ("limit", "query", "1–100"), ("cursor", "query", "next page"))

    def page(method: str, path: str, handler: Handler, name: str, summary: str, *, roles: tuple[str, ...] = ("node", "hub"),
             auth: str = "optional", params: tuple[tuple[str, str, str], ...] = (),
             responses: dict[int, str] | None = None) -> Route:
        return Route(method, path, handler, name, summary, roles=roles, auth=auth, tag="portal",
                     params=params, content_type=HTML, responses=responses or {200: "HTML page"})

    return [
        page("GET", "/", public.search_page, "portal-search",
             "Search page (hub: Europe-wide with node freshness; node: its own records)", params=search_params,
             responses={200: "HTML page", 400: "invalid parameter (HTML page)"}),
        page("GET", "/records/{id}", public.record_page, "portal-record",
             "A record as the reader may see it (anonymous: public, restricted fields removed)", params=rid,
             responses={200: "HTML page", 404: "not found (HTML page)", 410: "withdrawn (HTML page)"}),
        page("GET", "/status", public.status_page, "portal-status",
             "Federation status: every node's sync state, records per country", roles=("hub",)),
        page("GET", "/login", public.login_form, "portal-login-form", "Sign in with a user token",
             params=(("next", "query", "local page to return to"),)),
        page("POST", "/login", public.login, "portal-login",
             "Sign in: the token is kept in an HttpOnly, SameSite=Strict cookie",
             responses={303: "signed in", 401: "token not valid here (HTML page)", 403: "csrf_failed"}),
        page("POST", "/logout", public.logout, "portal-logout", "Sign out", responses={303: "signed out"}),
        Route("GET", "/static/{name}", public.static_file, "portal-static", "The portal's stylesheet",
              tag="portal", content_type="text/css", params=(("name", "path", "file name"),),
              responses={200: "file", 404: "not_found"}),
        # -- node administration
        page("GET", "/admin/records", admin.records_list, "portal-admin-records", "Records of this node",
             roles=("node",), auth="user", params=(("type", "query", "record type"),
                                                   ("before", "query", "next page")),
             responses={200: "HTML page", 303: "sign in first"}),
        page("GET", "/admin/records/new", admin.record_new, "portal-admin-new",
             "Form for a new record, generated from its JSON Schema", roles=("node",), auth="user",
             params=(("type", "query", "record type"),), responses={200: "HTML page", 303: "sign in first"}),
        page("POST", "/admin/records/new", admin.record_create, "portal-admin-create",
             "Create a record from the form (same checks as POST /api/v1/records)", roles=("node",),
             auth="user", responses={303: "created", 422: "form with errors next to the fields"}),
        page("GET", "/admin/records/{id}/edit", admin.record_edit, "portal-admin-edit",
             "Form filled with the current version", roles=("node",), auth="user", params=rid),
        page("POST", "/admin/records/{id}/edit", admin.record_update, "portal-admin-update",
             "Save a new version (optimistic: the version being replaced)", roles=("node",), auth="user",
             params=rid, responses={303: "saved", 409: "version conflict (form)", 422: "form with errors"}),
        page("POST", "/admin/records/{id}/delete", admin.record_delete, "portal-admin-delete",
             "Withdraw a record with a reason (signed tombstone)", roles=("node",), auth="user", params=rid,
             responses={303: "withdrawn", 410: "already deleted (HTML page)"}),
        page("GET", "/admin/import", admin.import_form, "portal-admin-upload-form", "Import a file",
             roles=("node",), auth="user"),
        page("POST", "/admin/import", admin.import_run, "portal-admin-upload",
             "Import a JSON/NDJSON/CSV/CORDIS file (dry run or for real), as ncc import does",
             roles=("node",), auth="user", responses={200: "report (HTML page)", 413: "file too large"}),
        page("GET", "/admin/quarantine", admin.quarantine, "portal-admin-quarantine",
             "Records of this node the hub refused (asked with the node's service token)", roles=("node",),
             auth="user", params=(("after", "query", "next page"),),
             responses={200: "HTML page", 502: "hub unreachable (HTML page)"}),
    ]
