"""Issue 19 in headless Chromium, as a new NCC operator meets the portal: sign in with Enter, the
new-organisation form (country filled in, in sections, plain errors with a focused summary), and
search results that show the record's own text with its visibility.

Screenshots: ``test-artifacts/screenshots/operator-*.png`` (paths printed; run with ``-s`` to see them).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import Federation, shot
from tests.e2e.harness import organisation

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

#: The form of issue 19 was 6,200 px tall at 1280×900; folded, the optional parts stay out of the way.
MAX_FORM_HEIGHT = 3600


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


def sign_in_with_enter(page: Any, base: str, token: str) -> None:
    page.goto(base + "/login")
    field = page.get_by_label("User token")
    assert field.evaluate("el => el.tagName") == "INPUT"
    field.fill(token)
    field.press("Enter")  # a one-line field: Enter submits the form
    page.wait_for_url(re.compile(r"/admin/records$"))


def test_new_organisation_form_in_sections_with_plain_errors(federation: Federation, page: Any) -> None:
    de = federation.de
    sign_in_with_enter(page, de.url, de.token("editor"))
    page.goto(de.url + "/admin/records/new?type=organisation")
    expect(page.get_by_label("Country of establishment")).to_have_value("DE")
    height = page.evaluate("() => document.documentElement.scrollHeight")
    print("\nnew-organisation form height:", height, "px;", shot(page, "operator-org-form"))
    assert height < MAX_FORM_HEIGHT, height
    expect(page.get_by_role("heading", level=2, name="The organisation")).to_be_visible()
    expect(page.get_by_label("PIC")).to_be_hidden()  # folded in "Identifiers"
    # no error summary yet, and nothing has the focus but the page
    expect(page.locator("#error-summary")).to_have_count(0)

    # send it with the required lists empty and a bad PIC: plain messages, one per field
    page.get_by_label("Legal name").fill("Gitterschutz AG")
    page.locator("#section-identifiers > summary").click()
    page.get_by_label("PIC").fill("12")
    page.get_by_role("button", name="Create and sign").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    assert page.evaluate("() => document.activeElement.id") == "error-summary"  # the focus moved to it
    expect(summary).to_contain_text("Identifiers: PIC is not in the expected form (see the hint)")
    expect(summary).to_contain_text("Choose at least 1 of the fields of activity")
    expect(summary).to_contain_text("Enter the description of expertise")
    expect(summary).to_contain_text("Choose the organisation type")
    assert not re.search(r"has less than|is a required property|does not match|\[\]", summary.inner_text())
    for field_id in ("f-identifiers-pic", "f-fields_of_activity", "f-description", "f-org_type"):
        expect(page.locator(f"#{field_id}-err")).to_have_count(1)
        described = page.locator(f"#{field_id}").get_attribute("aria-describedby") or ""
        assert f"{field_id}-err" in described.split(), (field_id, described)
    expect(page.locator("#section-identifiers")).to_have_attribute("open", "")  # opened: it holds an error
    expect(page.locator("#section-contact")).not_to_have_attribute("open", "")
    expect(page.get_by_label("Legal name")).to_have_value("Gitterschutz AG")  # nothing typed is lost
    expect(page.get_by_label("Country of establishment")).to_have_value("DE")
    print("form with errors:", shot(page, "operator-org-form-errors", full_page=False))
    print("summary:", shot(summary, "operator-org-error-summary"))

    # a link of the summary takes the keyboard to its field
    summary.get_by_role("link", name=re.compile("^Identifiers: PIC")).click()
    page.wait_for_url(re.compile(r"#f-identifiers-pic$"))
    page.get_by_label("PIC").fill("123456789")
    page.get_by_label("Organisation type").select_option("ctype.industry-sme")
    page.get_by_label("Academia, research or innovation").check()
    page.locator("#f-domains--cry").check()
    page.get_by_label("Description of expertise").fill("Grid protection relays that resist tampering.")
    page.get_by_role("button", name="Create and sign").click()
    page.wait_for_url(re.compile(r"/admin/records\?done=created"))
    expect(page.locator("table")).to_contain_text("Gitterschutz AG")


def test_search_shows_the_records_text_and_visibility(federation: Federation, page: Any) -> None:
    de = federation.de
    payload = organisation("DE", "Landeslabor Kryptografie", "National <lab> for smart-meter key ceremonies.")
    r = de.post(
        "/api/v1/records",
        {"type": "organisation", "visibility": "national", "payload": payload},
        de.token("editor"),
    )
    assert r.status == 201, r.body
    r = de.post(
        "/api/v1/records",
        {
            "type": "project",
            "visibility": "public",
            "payload": {
                "grant_id": 101077777,
                "acronym": "GRIDSHIELD",
                "title": "Shielding grids",
                "programme": "HORIZON",
                "call": "HORIZON-CL3-2021-CS-01",
                "domains": ["cry"],
            },
        },
        de.token("editor"),
    )
    assert r.status == 201, r.body

    # anonymous: the project's snippet is not the index's programme codes; the matching field is named
    page.goto(de.url + "/?q=gridshield")
    hits = page.locator("ol.hits > li.hit")
    expect(hits).to_have_count(1)
    expect(hits.first.locator(".snippet")).to_have_count(0)
    assert "HORIZON HORIZON-CL3" not in page.content()
    page.goto(de.url + "/?q=cl3")
    expect(hits.first.locator(".snippet")).to_have_text(re.compile(r"^Call:\s*HORIZON-CL3-2021-CS-01$"))
    expect(hits.first.locator(".snippet mark")).to_have_text("CL3")
    expect(hits.first.locator(".tag.vis")).to_have_text(re.compile("public"))
    expect(page.locator("ol.hits")).not_to_contain_text("Landeslabor")  # national: not for anonymous readers

    # signed in, the node's own search shows the national record with its badge and escaped text
    sign_in_with_enter(page, de.url, de.token("reader"))
    page.goto(de.url + "/?q=smart")
    national = hits.filter(has_text="Landeslabor Kryptografie")
    expect(national).to_have_count(1)
    expect(national.locator(".tag.vis")).to_have_text(re.compile("national"))
    expect(national.locator(".snippet")).to_contain_text("National <lab> for smart-meter key ceremonies.")
    expect(national.locator(".snippet mark")).to_have_text("smart")
    print("\nnode search:", shot(page, "operator-node-search"))

    # the contact person is searchable by whoever may see it, and the snippet names the field
    page.goto(de.url + "/?q=mustermann")
    expect(hits.first.locator(".snippet")).to_contain_text("Contact person › Family name:")
    page.context.clear_cookies()
    page.goto(de.url + "/?q=mustermann")
    expect(page.get_by_role("heading", name=re.compile(r"^0 results"))).to_be_visible()

    # the hub's search: the record's description, the query highlighted
    page.goto(federation.hub.url + "/?q=hospitals")
    expect(hits.first.locator(".snippet")).to_have_text(
        "Digital forensics and incident response for hospitals."
    )
    expect(hits.first.locator(".snippet mark")).to_have_text("hospitals")
    print("hub search:", shot(page, "operator-hub-search"))
