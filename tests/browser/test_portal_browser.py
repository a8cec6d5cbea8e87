"""The portal in headless Chromium against a real hub and two nodes: what a person at an NCC or at the
Centre does first — search, filter, open a record, check the federation, sign in, create a record."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import Federation, shot
from tests.e2e.harness import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


def test_keyboard_reaches_skip_link_with_visible_focus(federation: Federation, page: Any) -> None:
    page.goto(federation.hub.url + "/")
    page.keyboard.press("Tab")
    focused = page.evaluate("() => [document.activeElement.textContent.trim(), "
                            "getComputedStyle(document.activeElement).outlineStyle, "
                            "getComputedStyle(document.activeElement).backgroundColor]")
    assert focused[0] == "Skip to content"
    assert focused[1] != "none" or focused[2] != "rgba(0, 0, 0, 0)", focused
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    # the search box is labelled and reachable
    expect(page.get_by_label("Search organisations, experts, projects and facilities")).to_be_visible()


def test_search_filter_and_open_a_record_on_the_hub(federation: Federation, page: Any) -> None:
    page.goto(federation.hub.url + "/")
    page.get_by_label("Search organisations, experts, projects and facilities").fill("post-quantum")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"\?q=post-quantum"))
    results = page.locator("ol.hits > li.hit")
    expect(results).to_have_count(2)
    expect(page.get_by_role("heading", name=re.compile(r"^2 results"))).to_be_visible()
    expect(results.first.locator(".badge.ok")).to_have_text("✓ verified")
    expect(page.locator("ol.hits")).to_contain_text("Sécurité Quantique SAS")
    expect(page.locator("ol.hits")).to_contain_text("node ok · synced")
    # facets carry vocabulary labels with their ids, and counts
    country = page.locator("section.facet", has=page.get_by_role("heading", name="Country"))
    expect(country).to_contain_text("Germany")
    shot(page, "hub-search")

    # filter by a facet: only the German record is left, the filter shows as selected
    country.get_by_role("link", name=re.compile(r"Germany")).click()
    page.wait_for_url(re.compile(r"country=DE"))
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("Kryptografie Werk GmbH")
    expect(country.locator("a.facet-value.selected")).to_contain_text("Germany")
    expect(page.get_by_label("Search organisations, experts, projects and facilities")).to_have_value("post-quantum")
    shot(page, "hub-search-filtered")

    # open the record: public, verified, contact person removed for anonymous readers
    results.first.get_by_role("link").click()
    page.wait_for_url(re.compile(r"/records/urn:ncc:DE:organisation:"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Kryptografie Werk GmbH")
    expect(page.locator("article.record")).to_contain_text("Post-quantum cryptography for energy grids")
    expect(page.locator("article.record")).to_contain_text("Energy")
    expect(page.locator(".notice")).to_contain_text("Contact person")
    assert "erika@kryptowerk.example.de" not in page.content()
    shot(page, "hub-record")


def test_status_page_shows_every_node_and_a_chart(federation: Federation, page: Any) -> None:
    page.goto(federation.hub.url + "/status")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Germany (DE)")
    expect(rows.nth(0)).to_contain_text("ok")
    expect(rows.nth(1)).to_contain_text("France (FR)")
    chart = page.get_by_role("img", name=re.compile("Records per country"))
    expect(chart).to_be_visible()
    expect(chart.locator("rect")).to_have_count(2)
    shot(page, "hub-status")


def test_bad_parameters_show_an_error_page(federation: Federation, page: Any) -> None:
    response = page.goto(federation.hub.url + "/?limit=abc")
    assert response is not None and response.status == 400
    expect(page.get_by_role("alert")).to_contain_text("limit must be an integer")


def test_node_admin_sign_in_and_create_a_record(federation: Federation, page: Any) -> None:
    de = federation.de
    page.goto(de.url + "/admin/records")
    page.wait_for_url(re.compile(r"/login\?next=/admin/records"))
    page.get_by_label("User token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid here")
    page.get_by_label("User token").fill(de.token("editor"))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/admin/records$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Records of the DE node")
    expect(page.locator("table")).to_contain_text("Kryptografie Werk GmbH")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["ncc_session"]["httpOnly"] and cookies["ncc_session"]["sameSite"] == "Strict"

    page.get_by_role("link", name="New record").click()
    page.get_by_role("link", name=re.compile("^Organisation")).click()
    page.get_by_label("Legal name").fill("Quantenschild Energie AG")
    expect(page.get_by_label("Country of establishment")).to_have_value("DE")  # the node's country
    page.get_by_label("Organisation type").select_option("ctype.industry-sme")
    page.get_by_label("Academia, research or innovation").check()
    page.locator("#f-domains--cry").check()
    page.locator("#f-subdomains--cry-10").check()
    page.get_by_label("Description of expertise").fill("Quantum-safe key management for grid operators.")
    page.get_by_label("Keywords").fill("PQC\nkey management")
    page.locator("#section-identifiers > summary").click()  # optional parts are folded
    page.get_by_label("PIC").fill("12")  # a bad value: 9 digits needed
    page.get_by_role("button", name="Create and sign").click()

    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("The record was not saved")
    expect(summary).to_contain_text("Identifiers: PIC")
    expect(page.locator("#f-identifiers-pic-err")).to_contain_text("not in the expected form")
    expect(page.locator("#f-identifiers-pic")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Legal name")).to_have_value("Quantenschild Energie AG")  # nothing typed is lost
    shot(page, "node-form-error", full_page=False)
    shot(page.locator("#f-identifiers"), "node-form-error-field")

    summary.get_by_role("link", name=re.compile("PIC")).first.click()
    page.get_by_label("PIC").fill("123456789")
    page.get_by_role("button", name="Create and sign").click()
    page.wait_for_url(re.compile(r"/admin/records\?done=created"))
    expect(page.get_by_role("status")).to_contain_text("was created and signed")
    expect(page.locator("table")).to_contain_text("Quantenschild Energie AG")
    shot(page, "node-records")

    rid = page.url.split("id=")[1]
    envelope = de.get(f"/api/v1/records/{rid}", de.token("reader")).json()
    assert envelope["payload"]["identifiers"] == {"pic": "123456789"}
    assert envelope["payload"]["keywords"] == ["PQC", "key management"]
    assert envelope["sig"]["kid"].startswith("DE:")

    # the node notifies the hub; after a pull the hub's search page finds it, verified
    federation.sync()

    def found() -> bool:
        page.goto(federation.hub.url + "/?q=quantenschild")
        return page.locator("ol.hits > li.hit").count() == 1

    wait_until(found, 20, "the new record on the hub's search page")
    expect(page.locator("ol.hits")).to_contain_text("✓ verified")


def test_node_public_search_and_quarantine_page(federation: Federation, page: Any) -> None:
    fr = federation.fr
    page.goto(fr.url + "/?q=securite")
    expect(page.locator("ol.hits > li.hit")).to_have_count(1)
    expect(page.locator("ol.hits")).to_contain_text("Sécurité Quantique SAS")
    page.goto(fr.url + "/login")
    page.get_by_label("User token").fill(fr.token("reader"))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/admin/records$"))
    page.get_by_role("link", name="Quarantine").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Records the hub refused")
    expect(page.locator("main")).to_contain_text("The hub has refused none of this node's records.")
    shot(page, "node-quarantine")
