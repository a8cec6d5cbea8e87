"""Browser tests: real headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright for Python.

The federation is real processes (``tests/e2e/harness.py``): a hub and two nodes (DE, FR) on SQLite,
``ncc init``/``ncc serve`` on free loopback ports, enrolled, a few records created through the API,
then ``ncc sync``. Playwright's own browser download is never used: Chromium comes from apt
(``.ci/browser-setup.sh``). Without Chromium or Playwright every test here skips, saying which.

Screenshots go to ``test-artifacts/screenshots/`` (gitignored) for people to look at.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Cluster, Instance, cluster, enroll, organisation

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def browser_problem() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not installed (run .ci/browser-setup.sh: apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright not installed (pip install playwright; never 'playwright install')"
    return None


@dataclass
class Federation:
    cluster: Cluster
    hub: Instance
    de: Instance
    fr: Instance
    ids: dict[str, str]

    def sync(self) -> list[dict[str, Any]]:
        done = self.hub.ncc("sync")
        return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


RECORDS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "de-pqc": ("DE", "Kryptografie Werk GmbH", "Post-quantum cryptography for energy grids and smart meters.", {
        "sectors": ["sec.energy"], "keywords": ["PQC", "smart grid"],
        "contact": {"first_name": "Erika", "family_name": "Mustermann", "email": "erika@kryptowerk.example.de"}}),
    "de-forensics": ("DE", "Forensik Labor Berlin", "Digital forensics and incident response for hospitals.", {
        "domains": ["ihdf"], "subdomains": [], "sectors": ["sec.health"]}),
    "fr-pqc": ("FR", "Sécurité Quantique SAS", "Post-quantum cryptography audits for the energy sector.", {
        "sectors": ["sec.energy"]}),
}


@pytest.fixture(scope="package")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    problem = browser_problem()
    if problem:
        pytest.skip(problem)
    root = tmp_path_factory.mktemp("browser-fed")
    with cluster(root, "sqlite") as c:
        hub = c.add("hub", "hub")
        de = c.add("de", "node", "DE")
        fr = c.add("fr", "node", "FR")
        for inst in (hub, de, fr):
            inst.start()
        enroll(hub, de)
        enroll(hub, fr)
        ids = {}
        for label, (country, name, description, extra) in RECORDS.items():
            node = de if country == "DE" else fr
            payload = organisation(country, name, description, **extra)
            r = node.post("/api/v1/records", {"type": "organisation", "visibility": "public", "payload": payload},
                          node.token("editor"))
            assert r.status == 201, r.body
            ids[label] = r.json()["id"]
        fed = Federation(c, hub, de, fr, ids)
        results = fed.sync()
        assert results and all(r.get("ok", True) for r in results), results
        yield fed


@pytest.fixture(scope="package")
def browser(federation: Federation) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page; refuses any request leaving 127.0.0.1."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    outside: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "data:", "about:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", guard)
    pg = context.new_page()
    pg.set_default_timeout(15000)
    try:
        yield pg
    finally:
        context.close()
    assert not outside, f"pages tried to load from elsewhere: {outside}"


def shot(page: Any, name: str, full_page: bool = True) -> Path:
    """Save a screenshot of the page (or of a locator, when ``page`` is one) for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if hasattr(page, "goto"):
        page.screenshot(path=str(path), full_page=full_page)
    else:
        page.screenshot(path=str(path))
    return path
