"""The consortium builder page (DESIGN §16) in headless Chromium against the real hub and two nodes."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import Federation, shot

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


def test_build_a_consortium_from_the_form(federation: Federation, page: Any) -> None:
    page.goto(federation.hub.url + "/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Consortium builder").click()
    page.wait_for_url(re.compile(r"/consortia$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Build a consortium")
    page.get_by_label("Sub-domains").select_option("cry.10")
    page.get_by_label("Sectors").select_option("sec.energy")
    page.get_by_label("Countries at least").fill("2")
    page.get_by_label("Members at most").fill("3")
    page.get_by_role("button", name="Propose consortia").click()
    page.wait_for_url(re.compile(r"subdomain=cry\.10"))
    first = page.locator("article.proposal").first
    expect(first).to_contain_text("Kryptografie Werk GmbH")
    expect(first).to_contain_text("Sécurité Quantique SAS")
    expect(first).to_contain_text("Covers every topic")
    expect(first.locator("table.members tbody tr")).to_have_count(2)
    expect(first).to_contain_text("Post-quantum cryptography")
    # the form keeps what was chosen
    expect(page.get_by_label("Countries at least")).to_have_value("2")
    shot(page, "hub-consortia")

    # leave one partner out: the proposal says what is still missing, no error
    first.locator("tr", has_text="Sécurité Quantique SAS").get_by_role("link", name="Propose without").click()
    page.wait_for_url(re.compile(r"exclude=urn"))
    expect(page.locator("article.proposal").first).not_to_contain_text("Sécurité Quantique SAS")
    expect(page.locator("article.proposal").first).to_contain_text("Fewer countries than asked")
    expect(page.get_by_text("1 organisation left out")).to_be_visible()

    # a topic nobody covers is named, not an error
    page.goto(federation.hub.url + "/consortia?subdomain=cry.07&sector=sec.energy&min_countries=2")
    expect(page.locator("#nobody-covers")).to_contain_text("Homomorphic encryption")
    shot(page, "hub-consortia-missing")


def test_bad_numbers_are_shown_with_the_form(federation: Federation, page: Any) -> None:
    response = page.goto(federation.hub.url + "/consortia?subdomain=cry.10&min_countries=6&size=5")
    assert response is not None and response.status == 400
    expect(page.get_by_role("alert")).to_contain_text("min_countries (6) is larger than size (5)")
    expect(page.get_by_label("Sub-domains")).to_have_values(["cry.10"])
