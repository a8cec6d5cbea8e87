"""The web portal in-process: pages, labels, sign-in, CSRF, forms through the Publisher, bad input → HTML 4xx."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import orjson
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from tests.integration.conftest import ClientFactory, MakeInstance
from tests.integration.support import CONTACT, MINIMAL_ORG, Instance, org

Client = TestClient[Any, Any]

EXTERNAL = re.compile(r"""(?:src|href|action|srcset|poster|data)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//""", re.IGNORECASE)
CSS_URL = re.compile(r"url\(\s*['\"]?\s*(?:[a-z]+:)?//", re.IGNORECASE)


class _Controls(HTMLParser):
    """Collects form controls and the ids labels point at."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.labelled: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label" and a.get("for"):
            self.labelled.add(str(a["for"]))
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append(a)


def assert_labelled(text: str) -> None:
    """Every visible form control has a <label for=…> (or, the search box, its label too)."""
    parser = _Controls()
    parser.feed(text)
    for control in parser.controls:
        assert control.get("id") in parser.labelled, f"control without a label: {control}"


async def html(resp: Any, status: int = 200) -> str:
    text: str = await resp.text()
    assert resp.status == status, text[:2000]
    assert resp.headers["Content-Type"].startswith("text/html"), resp.headers
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert not EXTERNAL.search(text), EXTERNAL.search(text)
    assert '<html lang="en">' in text and '<main id="main"' in text
    assert_labelled(text)
    return text


def field_error(text: str, dom_id: str) -> str | None:
    """The error shown beside a field (there is at most one), without its screen-reader prefix."""
    found = re.findall(rf'<p class="field-error" id="{re.escape(dom_id)}-err">(.*?)</p>', text, re.DOTALL)
    assert len(found) <= 1, found
    return found[0].replace('<span class="visually-hidden">Error: </span>', "").strip() if found else None


def csrf_of(text: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', text)
    assert m, "no CSRF field in the form"
    return m.group(1)


async def sign_in(client: Client, token: str) -> None:
    page = await html(await client.get("/login"))
    resp = await client.post("/login", data={"csrf": csrf_of(page), "token": token, "next": "/admin/records"},
                             allow_redirects=False)
    assert resp.status == 303, await resp.text()
    cookie = resp.headers.getall("Set-Cookie")
    session = next(c for c in cookie if c.startswith("ncc_session="))
    assert "HttpOnly" in session and "SameSite=Strict" in session


async def form_page(client: Client, path: str) -> tuple[str, str]:
    text = await html(await client.get(path))
    return text, csrf_of(text)


ORG_FORM = {
    "/legal_name": "Cyber Lab GmbH",
    "/country": "DE",
    "/org_type": "ctype.industry-sme",
    "/description": "Post-quantum cryptography for energy grids.",
    "/keywords": "PQC\nsmart grid\n",
    "/sme": "true",
    "visibility": "public",
}


def org_form(csrf: str, **extra: str) -> FormData:
    form = FormData()
    for k, v in {**ORG_FORM, "csrf": csrf, "type": "organisation", **extra}.items():
        form.add_field(k, v)
    form.add_field("/fields_of_activity", "foa.academia-research-innovation")
    form.add_field("/domains", "cry")
    form.add_field("/subdomains", "cry.10")
    form.add_field("/sectors", "sec.energy")
    return form


@pytest.fixture
def hub(make_instance: MakeInstance) -> Instance:
    return make_instance(role="hub", tokens=("admin", "analyst"))


@pytest.fixture
async def hub_client(app_client: ClientFactory, hub: Instance) -> Client:
    return await app_client(hub)


async def test_node_public_pages(client: Client, node: Instance) -> None:
    resp = await client.post("/api/v1/records", json={"type": "organisation", "payload": org(contact=CONTACT)},
                             headers=node.auth("editor"))
    rid = (await resp.json())["id"]
    text = await html(await client.get("/"))
    assert '<label for="q">' in text and 'id="q"' in text and 'role="search"' in text
    assert "Cyber Lab GmbH" in text and f'href="/records/{rid}"' in text
    assert "Cryptology (Cryptography and Cryptanalysis)" in text  # facet value with its vocabulary label
    assert "<code>cry</code>" in text
    text = await html(await client.get("/?q=kryptog&country=DE"))
    assert "0 results" in text
    record = await html(await client.get(f"/records/{rid}"))
    assert "Cyber Lab GmbH" in record and "Post-quantum cryptography" in record
    assert CONTACT["email"] not in record and "only shown to signed-in users: Contact person" in record
    await sign_in(client, node.tokens["reader"])
    record = await html(await client.get(f"/records/{rid}"))
    assert CONTACT["email"] in record


async def test_stylesheet_is_local_and_plain(client: Client) -> None:
    resp = await client.get("/static/portal.css")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/css")
    css = await resp.text()
    assert ":focus-visible" in css and not CSS_URL.search(css) and "@import" not in css
    again = await client.get("/static/portal.css", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304
    assert (await client.get("/static/../app.py")).status == 404
    assert (await client.get("/static/nothing.css")).status == 404


@pytest.mark.parametrize("path", ["/?limit=abc", "/?limit=0", "/?cursor=garbage", "/?q=" + "x" * 501])
async def test_bad_search_parameters_are_a_400_page(client: Client, path: str) -> None:
    text = await html(await client.get(path), 400)
    assert 'role="alert"' in text and "invalid_parameter" in text


async def test_unknown_and_malformed_records_are_404_pages(client: Client) -> None:
    await html(await client.get("/records/not-a-record-id"), 404)
    await html(await client.get("/records/urn:ncc:DE:organisation:00000000-0000-0000-0000-000000000000"), 404)


async def test_admin_needs_sign_in(client: Client) -> None:
    for path in ("/admin/records", "/admin/records/new", "/admin/import", "/admin/quarantine"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/login?next=" + path), path


async def test_sign_in_rejects_bad_tokens_and_forged_forms(client: Client, node: Instance) -> None:
    _, csrf = await form_page(client, "/login")
    text = await html(await client.post("/login", data={"csrf": csrf, "token": "not.a.jwt"}), 401)
    assert "not valid here" in text and 'aria-invalid="true"' in text
    # a forged form: no CSRF field, or one that does not match the cookie
    text = await html(await client.post("/login", data={"token": node.tokens["admin"]}), 403)
    assert "csrf_failed" in text
    await html(await client.post("/login", data={"token": node.tokens["admin"], "csrf": "x" * 43}), 403)
    resp = await client.get("/admin/records", allow_redirects=False)
    assert resp.status == 303  # still anonymous


async def test_revoked_token_ends_the_session(client: Client, node: Instance) -> None:
    from node.storage.models import ApiToken

    await sign_in(client, node.tokens["editor"])
    await html(await client.get("/admin/records"))
    await ApiToken.filter(jti=node.jtis["editor"]).update(revoked_at="2026-01-01T00:00:00Z")
    resp = await client.get("/admin/records", allow_redirects=False)
    assert resp.status == 303
    assert any(c.startswith("ncc_session=;") or 'ncc_session="";' in c for c in resp.headers.getall("Set-Cookie"))


async def test_create_edit_delete_through_forms(client: Client, node: Instance) -> None:
    await sign_in(client, node.tokens["editor"])
    text = await html(await client.get("/admin/records/new"))
    assert 'href="/admin/records/new?type=organisation"' in text
    text, csrf = await form_page(client, "/admin/records/new?type=organisation")
    # every schema property has a label; nested objects are fieldsets; vocabularies show labels
    assert '<label for="f-legal_name">Legal name' in text
    assert '<legend>Contact person' in text and 'id="f-contact-email"' in text and 'type="email"' in text
    assert '<legend>Community membership' in text and 'name="/membership/status"' in text
    assert 'id="f-subdomains--cry-10"' in text
    assert "Industry – SME (incl. start-ups, micro-enterprises)" in text

    resp = await client.post("/admin/records/new", data=org_form(csrf), allow_redirects=False)
    assert resp.status == 303, await resp.text()
    rid = resp.headers["Location"].split("id=")[1]
    api = await (await client.get(f"/api/v1/records/{rid}", headers=node.auth("reader"))).json()
    assert api["version"] == 1 and api["visibility"] == "public"
    expected = {**MINIMAL_ORG, "keywords": ["PQC", "smart grid"], "sme": True, "sectors": ["sec.energy"]}
    assert api["payload"] == expected

    # edit: the form shows the stored values; saving makes version 2
    text, csrf = await form_page(client, f"/admin/records/{rid}/edit")
    assert 'value="Cyber Lab GmbH"' in text and 'name="version" value="1"' in text
    assert re.search(r'value="cry\.10" checked', text)
    resp = await client.post(f"/admin/records/{rid}/edit",
                             data=org_form(csrf, version="1", **{"/legal_name": "Cyber Lab AG"}),
                             allow_redirects=False)
    assert resp.status == 303, await resp.text()
    api = await (await client.get(f"/api/v1/records/{rid}", headers=node.auth("reader"))).json()
    assert api["version"] == 2 and api["payload"]["legal_name"] == "Cyber Lab AG"
    # a stale form (version 1 again) is a conflict shown on the form, nothing written
    text = await html(await client.post(f"/admin/records/{rid}/edit", data=org_form(csrf, version="1")), 409)
    assert "is at version 2, not 1" in text

    # withdraw with a reason
    text, csrf = await form_page(client, f"/admin/records/{rid}/edit")
    resp = await client.post(f"/admin/records/{rid}/delete", data={"csrf": csrf, "reason": "withdrawn"},
                             allow_redirects=False)
    assert resp.status == 303
    assert (await client.get(f"/api/v1/records/{rid}")).status == 410
    await html(await client.get(f"/records/{rid}"), 410)
    text = await html(await client.get(resp.headers["Location"]))
    assert "was withdrawn" in text


async def test_validation_errors_are_shown_next_to_fields(client: Client, node: Instance) -> None:
    await sign_in(client, node.tokens["admin"])  # membership is in the form: editors may not set it (§12)
    _, csrf = await form_page(client, "/admin/records/new?type=organisation")
    bad = org_form(csrf, **{"/identifiers/pic": "12", "/legal_name": "", "/membership/status": "revoked"})
    text = await html(await client.post("/admin/records/new", data=bad), 422)
    assert 'class="error-summary" id="error-summary" role="alert"' in text and "autofocus" in text
    # one plain message per field, with its label: the PIC fails its pattern and its format, said once
    assert field_error(text, "f-identifiers-pic") == "PIC is not in the expected form (see the hint)"
    assert field_error(text, "f-legal_name") == "Enter the legal name"
    assert field_error(text, "f-membership-ground") == "Choose the ground"
    assert '<a href="#f-identifiers-pic">Identifiers: PIC is not in the expected form (see the hint)</a>' in text
    assert 'aria-invalid="true"' in text
    assert 'aria-describedby="f-identifiers-pic-hint f-identifiers-pic-err"' in text
    assert "is a required property" not in text and "does not match" not in text
    # the sections with an error are open; the others stay folded
    assert re.search(r'<details class="form-section" id="section-identifiers" open>', text)
    assert re.search(r'<details class="form-section" id="section-contact">', text)
    # what was typed is kept
    assert 'value="12"' in text and "smart grid" in text
    # an integer field holding text never reaches the publisher
    _, csrf = await form_page(client, "/admin/records/new?type=project")
    text = await html(await client.post("/admin/records/new", data={
        "csrf": csrf, "type": "project", "visibility": "public", "/grant_id": "abc", "/title": "T"}), 422)
    assert field_error(text, "f-grant_id") == "Enter the grant agreement id as a whole number"
    # an organisation of another country is refused with the pointer of the field
    _, csrf = await form_page(client, "/admin/records/new?type=organisation")
    text = await html(await client.post("/admin/records/new", data=org_form(csrf, **{"/country": "FR"})), 422)
    assert field_error(text, "f-country") == "Country of establishment: must be DE"
    count = await (await client.get("/api/v1/records", headers=node.auth("reader"))).json()
    assert count["records"] == []


async def test_forms_refuse_bad_input_with_pages(client: Client, node: Instance) -> None:
    await sign_in(client, node.tokens["editor"])
    _, csrf = await form_page(client, "/admin/records/new?type=organisation")
    await html(await client.post("/admin/records/new", data=org_form("y" * 43)), 403)
    await html(await client.post("/admin/records/new", data=org_form(csrf, type="spaceship")), 400)
    await html(await client.post("/admin/records/new", data=org_form(csrf, visibility="everyone")), 400)
    await html(await client.get("/admin/records?type=spaceship"), 400)
    await html(await client.get("/admin/records?before=abc"), 400)
    await html(await client.get("/admin/records/new?type=spaceship"), 400)
    await html(await client.get("/admin/records/urn:ncc:DE:organisation:00000000-0000-0000-0000-000000000000/edit"), 404)
    await html(await client.post("/admin/records/new", data=b"{}", headers={"Content-Type": "application/json"}), 400)
    rid = "urn:ncc:DE:organisation:00000000-0000-0000-0000-000000000000"
    await html(await client.post(f"/admin/records/{rid}/delete", data={"csrf": csrf, "reason": "bored"}), 400)
    await html(await client.post(f"/admin/records/{rid}/delete", data={"csrf": csrf, "reason": "erased"}), 404)


async def test_reader_cannot_write(client: Client, node: Instance) -> None:
    await sign_in(client, node.tokens["reader"])
    text = await html(await client.get("/admin/records"))
    assert "New record" not in text
    await html(await client.get("/admin/records/new?type=organisation"), 403)


async def test_import_dry_run_then_real(client: Client, node: Instance) -> None:
    await sign_in(client, node.tokens["editor"])
    _, csrf = await form_page(client, "/admin/import")
    lines = [{"type": "organisation", "payload": org(legal_name=f"Org {i}")} for i in range(3)]
    lines.append({"type": "organisation", "payload": org(subdomains=["cry.999"])})
    ndjson = b"\n".join(orjson.dumps(x) for x in lines)

    def upload(mode: str) -> FormData:
        form = FormData()
        form.add_field("csrf", csrf)
        form.add_field("mode", mode)
        form.add_field("file", ndjson, filename="orgs.ndjson", content_type="application/x-ndjson")
        return form

    text = await html(await client.post("/admin/import", data=upload("dry-run")))
    assert "3 of 4 rows valid, nothing written" in text and "line 4: schema_invalid /subdomains/0" in text
    assert (await (await client.get("/api/v1/records", headers=node.auth("reader"))).json())["records"] == []
    text = await html(await client.post("/admin/import", data=upload("import")))
    assert "imported 3, rejected 1" in text
    assert len((await (await client.get("/api/v1/records", headers=node.auth("reader"))).json())["records"]) == 3
    # an unreadable file is a message, not a crash
    form = FormData()
    form.add_field("csrf", csrf)
    form.add_field("file", b"\xff\xfe", filename="x.json")
    text = await html(await client.post("/admin/import", data=form), 422)
    assert "not UTF-8" in text


async def test_quarantine_says_not_enrolled(client: Client, node: Instance) -> None:
    await sign_in(client, node.tokens["reader"])
    text = await html(await client.get("/admin/quarantine"))
    assert "not enrolled" in text
    await html(await client.get("/admin/quarantine?after=x"), 400)


async def test_logout_ends_the_session(client: Client, node: Instance) -> None:
    await sign_in(client, node.tokens["editor"])
    text = await html(await client.get("/admin/records"))
    resp = await client.post("/logout", data={"csrf": csrf_of(text)}, allow_redirects=False)
    assert resp.status == 303
    assert (await client.get("/admin/records", allow_redirects=False)).status == 303


async def test_hub_pages(hub_client: Client) -> None:
    text = await html(await hub_client.get("/"))
    assert "Find cybersecurity expertise across Europe" in text and "0 results" in text
    text = await html(await hub_client.get("/status"))
    assert "No node has enrolled yet" in text
    await html(await hub_client.get("/?limit=1000"), 400)
    await html(await hub_client.get("/?timeout_ms=x"), 400)
    await html(await hub_client.get("/records/urn:ncc:DE:organisation:00000000-0000-0000-0000-000000000000"), 404)
    assert (await hub_client.get("/admin/records")).status == 404  # node pages only on nodes


async def _check_openapi(c: Client) -> None:
    doc = await (await c.get("/openapi.json")).json()
    for resource in c.app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter")
        assert path in doc["paths"], path
    assert set(doc["paths"]["/"]["get"]["responses"]["200"]["content"]) == {"text/html"}


async def test_openapi_lists_every_node_route(client: Client) -> None:
    await _check_openapi(client)


async def test_openapi_lists_every_hub_route(hub_client: Client) -> None:
    await _check_openapi(hub_client)


async def test_record_type_tabs_are_proper_plurals(client: Client, node: Instance) -> None:
    """Regression: the admin tab read "Facilitys" (label + "s")."""
    await sign_in(client, node.tokens["reader"])
    text = await html(await client.get("/admin/records"))
    for plural in ("Organisations", "Experts", "Projects", "Facilities"):
        assert f">{plural}</a>" in text
    assert "Facilitys" not in text


# -- issue 19: what a new operator saw -------------------------------------------------------------

PROJECT = {"grant_id": 101077777, "acronym": "GRIDSHIELD", "title": "Shielding energy grids",
           "programme": "HORIZON", "call": "HORIZON-CL3-2021-CS-01", "topic": "HORIZON-CL3-2021-CS-01-01",
           "domains": ["cry"]}


async def test_token_field_is_one_line(client: Client) -> None:
    """Regression: the token was a textarea, where Enter adds a line instead of signing in."""
    text = await html(await client.get("/login"))
    assert "<textarea" not in text
    assert re.search(r'<input id="token" name="token" type="password"', text)
    assert 'aria-describedby="token-hint"' in text


async def test_new_record_form_starts_with_the_node_country_in_sections(client: Client, node: Instance) -> None:
    await sign_in(client, node.tokens["editor"])
    text = await html(await client.get("/admin/records/new?type=organisation"))
    select = re.search(r'(?s)<select id="f-country".*?</select>', text)
    assert select and '<option value="DE" selected>' in select.group(0)
    assert re.search(r'<section class="form-section" id="section-about" aria-labelledby="section-about-h">', text)
    assert '<h2 id="section-expertise-h">Expertise</h2>' in text
    for folded in ("identifiers", "contact", "membership", "consent", "tags"):
        assert f'<details class="form-section" id="section-{folded}">' in text, folded
    assert '<nav class="form-toc" aria-label="Parts of this form">' in text
    assert "error-summary" not in text and "autofocus" not in text  # nothing failed yet


async def test_search_snippets_are_the_records_own_text(client: Client, node: Instance) -> None:
    headers = node.auth("editor")
    for body in ({"type": "project", "visibility": "public", "payload": PROJECT},
                 {"type": "organisation", "visibility": "public",
                  "payload": org(description="We build <post-quantum> cryptography & HSMs.", contact=CONTACT)},
                 {"type": "organisation", "visibility": "national",
                  "payload": org(legal_name="Landeslabor", description="National post-quantum lab.")}):
        resp = await client.post("/api/v1/records", json=body, headers=headers)
        assert resp.status == 201, await resp.text()
    # the API's snippet is still cut from the index: the portal never shows it
    api = await (await client.get("/api/v1/search?q=gridshield")).json()
    assert api["results"][0]["snippet"].startswith("HORIZON")
    text = await html(await client.get("/?q=gridshield"))
    assert "HORIZON HORIZON-CL3" not in text and '<p class="snippet">' not in text
    text = await html(await client.get("/?q=cl3"))
    assert re.search(r'<span class="snippet-field">Call:</span>\s*HORIZON-<mark>CL3</mark>-2021-CS-01', text)
    # matches highlighted, the record's text escaped
    text = await html(await client.get("/?q=quantum"))
    assert "&lt;post-<mark>quantum</mark>&gt; cryptography &amp; HSMs." in text
    assert "<post-quantum>" not in text
    assert 'class="tag vis vis-public"' in text and "Landeslabor" not in text  # anonymous: public only
    # anonymous readers find nothing by the contact person, and never see it in a snippet
    assert "0 results" in await html(await client.get("/?q=mustermann"))
    await sign_in(client, node.tokens["reader"])
    text = await html(await client.get("/?q=mustermann"))
    assert re.search(r'<span class="snippet-field">Contact person › Family name:</span>\s*<mark>Mustermann</mark>', text)
    # national records carry their badge in the node's own search, the record page and the list
    text = await html(await client.get("/?q=landeslabor"))
    assert re.search(r'<span class="tag vis vis-national"[^>]*><span class="visually-hidden">Visibility: </span>national</span>',
                     text)
    assert "National <mark>post</mark>-<mark>quantum</mark> lab." not in text  # q was the name: no mark
    assert "National post-quantum lab." in text
    rid = re.search(r'href="/records/(urn:ncc:DE:organisation:[^"]+)">Landeslabor', text)
    assert rid
    assert "vis-national" in await html(await client.get(f"/records/{rid.group(1)}"))
    assert "vis-national" in await html(await client.get("/admin/records"))
