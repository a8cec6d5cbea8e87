"""Named regression tests for what schemathesis found (``test_openapi_fuzz.py``), one per bug.

They run against the same real processes as the fuzzer (the session's ``federation``), each a
plain request with the exact status and problem ``code`` the fix guarantees. Bugs in the OpenAPI
document itself (a response the document did not allow) are pinned on the generated document.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from node.config import build_settings
from node.http.openapi import build_openapi
from tests.e2e.harness import Instance, Response, organisation
from tests.fuzz.conftest import Federation, service_token
from tests.fuzz.test_openapi_fuzz import CSRF

pytestmark = [pytest.mark.fuzz, pytest.mark.e2e]


def send(inst: Instance, method: str, path: str, body: bytes | None = None, *, token: str | None = None,
         content_type: str = "application/json", cookies: str = "") -> Response:
    """One request with a raw body (urllib: no event loop, redirects not followed for POSTs)."""
    req = urllib.request.Request(inst.url + path, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", content_type)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if cookies:
        req.add_header("Cookie", cookies)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return Response(resp.status, dict(resp.headers), resp.read())
    except urllib.error.HTTPError as err:
        return Response(err.code, dict(err.headers), err.read())


def problem(resp: Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status == status, (resp.status, resp.body[:500])
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.headers
    body: dict[str, Any] = resp.json()
    assert body["code"] == code and body["status"] == status, body
    return body


def html_error(resp: Response, status: int, code: str) -> None:
    """A portal error: an HTML page with the status, naming the problem code."""
    assert resp.status == status, (resp.status, resp.body[:500])
    assert resp.headers["Content-Type"].startswith("text/html"), resp.headers
    assert f"<code>{code}</code>" in resp.body.decode(), resp.body[:2000]


def node_service(fed: Federation) -> str:
    """A fresh token of the DE node for the hub's federation routes."""
    return service_token(fed.node, "hub")


def hub_service(fed: Federation) -> str:
    """A fresh token of the hub for the node's federation routes."""
    return service_token(fed.hub, f"node:{fed.node.country}")


def document(role: str) -> dict[str, Any]:
    return build_openapi(build_settings(Path("unused"), {"role": role, "country": "DE" if role == "node" else ""}))


# -- server errors (5xx) --------------------------------------------------------------------------

# Schemathesis: ST102 "Server error on undeclared request Content-Type" (POST /login, /logout,
# /admin/records/new, /admin/import with ``Content-Type: multipart/form-data`` and no boundary);
# the other bodies are the same bug reached by hand: every way ``request.post()`` can fail.
MALFORMED_FORMS = {
    "multipart_without_boundary": ("multipart/form-data", b""),
    "multipart_boundary_not_found": ("multipart/form-data; boundary=x", b"garbage"),
    "multipart_broken_part_header": ("multipart/form-data; boundary=x", b"--x\r\nBadHeader\r\n\r\nv\r\n--x--\r\n"),
    "urlencoded_invalid_utf8": ("application/x-www-form-urlencoded", b"csrf=\xff\xfe"),
    "urlencoded_unknown_charset": ("application/x-www-form-urlencoded; charset=bogus", b"csrf=x"),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED_FORMS))
@pytest.mark.parametrize("path", ["/login", "/logout"])
def test_portal_malformed_form_body_is_400_not_500(federation: Federation, path: str, kind: str) -> None:
    content_type, body = MALFORMED_FORMS[kind]
    for inst in (federation.node, federation.hub):
        resp = send(inst, "POST", path, body, content_type=content_type, cookies=f"ncc_csrf={CSRF}")
        html_error(resp, 400, "invalid_parameter")


@pytest.mark.parametrize("path", ["/admin/records/new", "/admin/import",
                                  "/admin/records/urn:ncc:DE:organisation:00000000-0000-0000-0000-000000000000/edit"])
def test_admin_form_multipart_without_boundary_is_400_not_500(federation: Federation, path: str) -> None:
    resp = send(federation.node, "POST", path, b"", content_type="multipart/form-data",
                token=federation.node.token("admin"), cookies=f"ncc_csrf={CSRF}")
    html_error(resp, 400, "invalid_parameter")


# -- schema-violating requests the server accepted ------------------------------------------------


def test_live_search_non_object_body_is_422_not_200(federation: Federation) -> None:
    """ST201: ``POST /federation/v1/search`` with ``[null, null]`` answered 200 (as if ``{}``)."""
    resp = send(federation.node, "POST", "/federation/v1/search", b"[null, null]", token=hub_service(federation))
    assert problem(resp, 422, "schema_invalid")["errors"] == [{"pointer": "", "message": "not an object"}]


@pytest.mark.parametrize("member, value", [
    ("org_type", [{}]),  # ST201: a filter that is not a list of strings was searched as "{}"
    ("visibilities", ["AAA"]),  # ST201: an unknown visibility was dropped silently
    ("visibilities", 5),  # frozenset(5): TypeError, a 500
    ("visibilities", [[]]),  # unhashable: TypeError, a 500
    ("cursor", 5),
    ("limit", "20"),
])
def test_live_search_member_of_wrong_type_is_422(federation: Federation, member: str, value: Any) -> None:
    resp = send(federation.node, "POST", "/federation/v1/search", json.dumps({member: value}).encode(),
                token=hub_service(federation))
    assert problem(resp, 422, "schema_invalid")["errors"][0]["pointer"] == f"/{member}"


def test_live_search_as_the_hub_sends_it_still_answers(federation: Federation) -> None:
    node = federation.node
    created = node.post("/api/v1/records", {"type": "organisation", "visibility": "network", "payload": organisation(
        "DE", "Livequery Regression GmbH", "Zyxwvutsrq cryptography.")}, token=node.token("admin"))
    assert created.status == 201, created.body
    body = {"q": "zyxwvutsrq", "limit": 5, "visibilities": ["network", "public"], "domain": ["cry"], "cursor": None}
    resp = send(node, "POST", "/federation/v1/search", json.dumps(body).encode(), token=hub_service(federation))
    assert resp.status == 200, resp.body
    assert [hit["id"] for hit in resp.json()["results"]] == [created.json()["id"]]


@pytest.mark.parametrize("body", [b"[1]", b'"DE"', b"null"])
def test_notify_non_object_body_is_422_not_202(federation: Federation, body: bytes) -> None:
    """ST201: a JSON body that is not an object was taken for "no body" (202)."""
    problem(send(federation.hub, "POST", "/federation/v1/notify", body, token=node_service(federation)),
            422, "schema_invalid")


def test_notify_null_country_is_422_not_202(federation: Federation) -> None:
    """ST201: ``{"country": null}`` was taken for "no country" (202)."""
    resp = send(federation.hub, "POST", "/federation/v1/notify", b'{"country": null}', token=node_service(federation))
    assert problem(resp, 422, "schema_invalid")["errors"] == [{"pointer": "/country", "message": "not a string"}]


def test_notify_without_body_or_with_own_country_is_still_accepted(federation: Federation) -> None:
    # (a node's notifications are throttled: one closer than notify_min_interval_s to the last is 429)
    assert send(federation.hub, "POST", "/federation/v1/notify", token=node_service(federation)).status in (202, 429)
    resp = send(federation.hub, "POST", "/federation/v1/notify", b'{"country": "DE"}', token=node_service(federation))
    assert resp.status in (202, 429), resp.body
    problem(send(federation.hub, "POST", "/federation/v1/notify", b'{"country": "FR"}',
                 token=node_service(federation)), 403, "forbidden")


def test_quarantine_malformed_country_is_400_for_node_callers_too(federation: Federation) -> None:
    """ST201: a node's ``?country=%C2%84`` was ignored (200); only the hub admin's was checked."""
    resp = send(federation.hub, "GET", "/federation/v1/quarantine?country=%C2%84", token=node_service(federation))
    assert problem(resp, 400, "invalid_parameter")["parameter"] == "country"
    resp = send(federation.hub, "GET", "/federation/v1/quarantine?country=%C2%84", token=federation.hub.token("admin"))
    problem(resp, 400, "invalid_parameter")


# -- responses the OpenAPI document did not allow -------------------------------------------------


def operation(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    op: dict[str, Any] = doc["paths"][path][method]
    return op


def test_openapi_portal_errors_are_html_not_problem_json() -> None:
    """ST105: ``GET /records/0`` answered a 404 HTML page where the document said problem+json."""
    for role in ("node", "hub"):
        op = operation(document(role), "get", "/records/{id}")
        for status in ("400", "401", "404", "410"):
            assert set(op["responses"].get(status, {"content": {"text/html": {}}})["content"]) == {"text/html"}
    static = operation(document("node"), "get", "/static/{name}")  # not a page: its 404 is a problem
    assert set(static["responses"]["404"]["content"]) == {"application/problem+json"}


def test_openapi_query_parameters_have_the_types_the_views_check() -> None:
    """ST202: every query parameter was ``{"type": "string"}``, so ``limit=abc`` (400) looked valid."""
    node, hub = document("node"), document("hub")

    def param(doc: dict[str, Any], method: str, path: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = next(p["schema"] for p in operation(doc, method, path)["parameters"]
                                     if p["name"] == name)
        return found

    assert param(node, "get", "/api/v1/records", "limit") == {"type": "integer", "minimum": 1, "maximum": 1000}
    assert param(node, "get", "/api/v1/search", "limit") == {"type": "integer", "minimum": 1, "maximum": 100}
    assert param(node, "get", "/federation/v1/changes", "after") == {"type": "integer", "minimum": 0,
                                                                      "maximum": 2**62}
    assert param(hub, "get", "/api/v1/search", "timeout_ms") == {"type": "integer", "minimum": 1, "maximum": 60000}
    assert param(node, "delete", "/api/v1/records/{id}", "reason") == {"enum": ["withdrawn", "erased", "revoked"]}
    assert param(node, "get", "/api/v1/search", "domain")["type"] == "array"  # repeatable filters
    assert "timeout_ms" not in {p["name"] for p in operation(node, "get", "/api/v1/search")["parameters"]}


def test_openapi_portal_pages_take_the_session_cookie_and_redirect_to_login() -> None:
    """ST201/ST203: an admin page without a token answered 303 to /login, the document said 401 only."""
    doc = document("node")
    op = operation(doc, "get", "/admin/records")
    assert {"session": []} in op["security"] and {"bearer": []} in op["security"]
    assert "303" in op["responses"]
    assert doc["components"]["securitySchemes"]["session"] == {
        "type": "apiKey", "in": "cookie", "name": "ncc_session",
        "description": "portal session: a random id set by POST /login and ended server-side by POST /logout "
                       "(__Host-ncc_session over HTTPS)"}


def test_openapi_portal_forms_are_documented() -> None:
    """ST202: ``POST /login`` without a form answered 400; the document declared no body at all."""
    doc = document("node")
    login = operation(doc, "post", "/login")
    assert login["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"] == {
        "$ref": "#/components/schemas/LoginForm"}
    assert {"400", "403"} <= set(login["responses"])
    upload = operation(doc, "post", "/admin/import")
    assert "multipart/form-data" in upload["requestBody"]["content"]


def test_openapi_notify_body_is_optional() -> None:
    """ST201: ``POST /federation/v1/notify`` without a body was accepted (202) although "required"."""
    assert operation(document("hub"), "post", "/federation/v1/notify")["requestBody"]["required"] is False


def test_openapi_live_search_body_lists_its_members() -> None:
    """The body was ``{"type": "object"}``: the fuzzer never sent a filter of the wrong type."""
    schema = document("node")["components"]["schemas"]["LiveSearch"]
    assert schema["properties"]["visibilities"] == {"type": "array", "items": {"enum": ["public", "network"]}}
    assert schema["properties"]["limit"]["maximum"] == 100  # the search_max_limit setting


def test_openapi_empty_query_values_are_allowed() -> None:
    """ST201: ``?limit=`` and ``?country=`` (not given, as an HTML form sends them) answered 200,
    against ``{"type": "integer"}`` and ``^[A-Z]{2}$``."""
    for role in ("node", "hub"):
        for ops in document(role)["paths"].values():
            for op in ops.values():
                for p in op.get("parameters", []):
                    constrained = p["schema"] not in ({"type": "string"}, {"type": "array", "items": {"type": "string"}})
                    expected = True if p["in"] == "query" and constrained else None
                    assert p.get("allowEmptyValue") is expected, (op["operationId"], p)


def test_empty_query_values_are_not_given(federation: Federation) -> None:
    token = federation.node.token("admin")
    for path in ("/api/v1/records?limit=&type=&cursor=", "/api/v1/search?limit=&q=&cursor=&domain="):
        assert send(federation.node, "GET", path, token=token).status == 200, path
    resp = send(federation.hub, "GET", "/federation/v1/quarantine?country=&after=&limit=", token=node_service(federation))
    assert resp.status == 200, resp.body


def test_scalar_query_parameter_given_twice_is_400_not_first_wins(federation: Federation) -> None:
    """ST201: ``?q=a&q=b`` (q sent as a list) answered 200 with the first value silently chosen."""
    token = federation.node.token("admin")
    for path, name in (("/api/v1/search?q=a&q=b", "q"), ("/api/v1/records?limit=1&limit=500", "limit")):
        assert problem(send(federation.node, "GET", path, token=token), 400, "invalid_parameter")["parameter"] == name
    html_error(send(federation.hub, "GET", "/?limit=5&limit=6"), 400, "invalid_parameter")
    assert send(federation.node, "GET", "/api/v1/search?domain=cry&domain=nds", token=token).status == 200


def test_portal_edit_page_of_a_deleted_record_is_a_documented_410(federation: Federation) -> None:
    """ST103: ``GET /admin/records/{id}/edit`` of a withdrawn record answered 410, undocumented."""
    node, token = federation.node, federation.node.token("admin")
    created = node.post("/api/v1/records", {"type": "organisation", "payload": organisation(
        "DE", "Withdrawn Regression GmbH", "Soon gone.")}, token=token)
    rid = created.json()["id"]
    assert node.delete(f"/api/v1/records/{rid}", token=token).status == 200
    html_error(send(node, "GET", f"/admin/records/{rid}/edit", token=token), 410, "gone")
    assert "410" in operation(document("node"), "get", "/admin/records/{id}/edit")["responses"]
