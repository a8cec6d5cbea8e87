"""The gatekeeper in headless Chromium (DESIGN §12): an organisation fills /apply, follows the mailed
link (the node writes its mails to <data-dir>/outbox/ without smtp_url) and confirms by pressing the
button; an assessor signs in, finds it in the queue and decides; the registered organisation reaches
the hub, where the membership filter finds it."""

from __future__ import annotations

import email
import email.policy
import re
from typing import Any

import pytest

from tests.browser.conftest import Federation, shot
from tests.e2e.harness import wait_until
from tests.integration.gatekeeper_support import links

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


def test_apply_confirm_and_register_in_the_browser(federation: Federation, page: Any) -> None:
    de = federation.de
    page.goto(de.url + "/")
    page.get_by_role("link", name="Apply").click()
    page.wait_for_url(re.compile(r"/apply$"))
    page.get_by_label("Your name").fill("Erika Mustermann")
    page.get_by_label("Your e-mail address").fill("erika@schildwerk.example.de")
    page.get_by_label("Legal name").fill("Schildwerk Sicherheit GmbH")
    page.get_by_label("Organisation type").select_option("ctype.industry-sme")
    page.get_by_label("Academia, research or innovation").check()
    page.locator("#f-domains--cry").check()
    # not cry.10 ("Post-quantum cryptography"): the hub's "post-quantum" search of test_portal_browser counts its hits
    page.locator("#f-subdomains--cry-01").check()
    page.get_by_label("Description of expertise").fill("Hardware security modules for grid operators.")
    page.locator("#visibility-public").check()
    page.get_by_role("button", name="Send application").click()
    summary = page.locator(".error-summary")
    # the declaration was not ticked: said in plain words, linked to the box, and nothing typed is lost
    expect(summary).to_contain_text("Confirmation: tick the box to confirm the application.")
    summary.get_by_role("link", name="Confirmation: tick the box to confirm the application.").click()
    expect(page.locator("#accept-terms")).to_be_focused()
    expect(page.locator("#accept-terms-err")).to_be_visible()
    expect(page.get_by_label("Legal name")).to_have_value("Schildwerk Sicherheit GmbH")
    page.locator("#accept-terms").check()
    page.get_by_role("button", name="Send application").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your mailbox")
    shot(page, "apply-sent")

    outbox = de.data_dir / "outbox"

    def confirmation() -> Any:
        for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if "schildwerk" in str(msg["To"]):
                return msg
        return None

    msg = wait_until(confirmation, 20, "the confirmation mail in the outbox")
    base, app_id, _, token = next(x for x in links(msg) if not x[2])
    page.goto(f"{base}/apply/{app_id}?token={token}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your application")
    page.get_by_role("button", name="Confirm my application").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Application confirmed")
    expect(page.locator("#application-status")).to_have_text("applied")
    shot(page, "apply-confirmed")

    page.goto(de.url + "/login?next=/admin/assessments")
    page.get_by_label("User token").fill(de.token("assessor"))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/admin/assessments$"))
    page.get_by_role("link", name="Schildwerk Sicherheit GmbH").click()
    expect(page.locator("#membership-status")).to_have_text("applied")
    shot(page, "assess-record")
    page.get_by_label(re.compile("^Assessed")).check()
    page.get_by_label("Note for the applicant").fill("Documents complete.")
    page.get_by_role("button", name="Save decision").click()
    expect(page.locator("#membership-status")).to_have_text("assessed")
    page.get_by_label(re.compile("^Rejected")).check()
    page.get_by_role("button", name="Save decision").click()  # no ground: refused, said on the page
    expect(page.locator(".error-summary")).to_contain_text("needs a ground")
    page.get_by_label(re.compile("^Registered")).check()
    page.get_by_role("button", name="Save decision").click()
    expect(page.locator("#membership-status")).to_have_text("registered")
    expect(page.locator("table")).to_contain_text("Documents complete.")

    federation.sync()
    page.goto(federation.hub.url + "/?membership=registered&q=Schildwerk")
    expect(page.locator("ol.hits > li.hit")).to_have_count(1)
    expect(page.locator("ol.hits")).to_contain_text("Schildwerk Sicherheit GmbH")
    shot(page, "hub-membership-registered")
