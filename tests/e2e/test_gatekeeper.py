"""DESIGN §12 end to end with real processes and a real SMTP server on loopback (aiosmtpd, in a thread):
apply → confirmation mail → confirm (by POST on the mailed link's page) → assessors' mail → decisions →
the applicant's mails with the ground → the registered organisation reaches the hub and is found there
with ``membership=registered``; a rejected one never leaves the node; the mail server down at decision
time delays the mail and loses nothing."""

from __future__ import annotations

import email
import email.policy
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.e2e.harness import Instance, cluster, enroll, organisation, wait_until
from tests.integration.gatekeeper_support import body_text, free_port, links

pytestmark = pytest.mark.e2e

ASSESSORS = "assessors@ncc.example.de"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.lock:
            self.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]

    def wait(self, address: str, count: int, timeout: float = 30) -> list[EmailMessage]:
        return wait_until(lambda: (found := self.to(address)) and len(found) >= count and found, timeout,
                          f"{count} mail(s) to {address}")


class Smtp:
    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture(scope="module")
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory, smtp: Smtp) -> Iterator[tuple[Instance, Instance]]:
    with cluster(tmp_path_factory.mktemp("gatekeeper"), "sqlite") as c:
        hub = c.add("hub", "hub")
        hub.start()
        node = c.add("de", "node", "DE", env={"NCC_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
                                               "NCC_ASSESSOR_EMAILS": ASSESSORS, "NCC_MAIL_RETRY_MAX_S": "1",
                                               "NCC_MAIL_LANGUAGE": "en"})
        node.start()
        enroll(hub, node)
        yield hub, node


def post_form(url: str, fields: dict[str, str]) -> tuple[int, dict[str, str], str]:
    req = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def apply(node: Instance, smtp: Smtp, name: str) -> tuple[str, str]:
    """Apply as ``<name>@…``, follow the mailed link (GET shows a page, POST confirms); return
    (application id, record id)."""
    address = f"{name.lower().replace(' ', '.')}@applicant.example.de"
    body = {"type": "organisation", "visibility": "public", "accept_terms": True,
            "applicant": {"name": name, "email": address},
            "payload": organisation("DE", f"{name} GmbH", "Post-quantum cryptography for energy grids.")}
    r = node.post("/api/v1/applications", body)
    assert r.status == 202, r.body
    (msg,) = smtp.inbox.wait(address, 1)
    base, app_id, _, token = next(x for x in links(msg) if not x[2])
    assert base == node.url and app_id == r.json()["id"]
    with urllib.request.urlopen(f"{base}/apply/{app_id}?token={token}", timeout=30) as page:
        assert page.status == 200 and page.headers["Referrer-Policy"] == "no-referrer"
        assert page.headers["Cache-Control"] == "no-store"
    assert node.query("SELECT status FROM applications WHERE id = ?", (app_id,))[0][0] == "unconfirmed"
    status, _headers, html = post_form(f"{base}/apply/{app_id}", {"token": token})
    assert status == 200, html
    status, _, html = post_form(f"{base}/apply/{app_id}", {"token": token})
    assert status == 409 and "token_used" in html  # replayed
    rid = node.query("SELECT record_id FROM applications WHERE id = ?", (app_id,))[0][0]
    assert rid
    smtp.inbox.wait(address, 2)  # "we have your application"
    return app_id, rid


def decide(node: Instance, rid: str, **body: Any) -> Any:
    r = node.post(f"/api/v1/records/{rid}/decisions", body, token=node.token("assessor"))
    assert r.status == 201, r.body
    return r.json()


def test_registered_reaches_the_hub_rejected_never_leaves(fed: tuple[Instance, Instance], smtp: Smtp) -> None:
    hub, node = fed
    _, rid = apply(node, smtp, "Greta Grid")
    assert any(rid in body_text(m) for m in smtp.inbox.wait(ASSESSORS, 1))
    r = node.post(f"/api/v1/records/{rid}/decisions", {"status": "registered"}, token=node.token("assessor"))
    assert r.status == 422 and r.code == "invalid_transition"
    decide(node, rid, status="assessed")
    env = decide(node, rid, status="registered", note="Welcome aboard.")
    assert env["visibility"] == "public" and env["payload"]["membership"]["assessed_by"] == "e2e-assessor"
    mails = smtp.inbox.wait("greta.grid@applicant.example.de", 4)
    assert "Welcome aboard." in body_text(mails[-1])

    _, rejected = apply(node, smtp, "Rolf Reject")
    decide(node, rejected, status="rejected", ground="criteria-not-met", note="No activity in cybersecurity.")
    mails = smtp.inbox.wait("rolf.reject@applicant.example.de", 3)
    text = body_text(mails[-1])
    assert "membership criteria are not met" in text and "No activity in cybersecurity." in text

    hub.ncc("sync")
    r = hub.get("/api/v1/search?" + urllib.parse.urlencode({"membership": "registered", "q": "Greta"}))
    assert r.status == 200 and [h["id"] for h in r.json()["results"]] == [rid]
    assert hub.get(f"/api/v1/records/{rid}").json()["payload"]["membership"]["status"] == "registered"
    assert hub.query("SELECT COUNT(*) FROM hub_records WHERE id = ?", (rejected,))[0][0] == 0
    assert "Rolf Reject GmbH" not in hub.db_text()


def test_mail_server_down_at_decision_time_loses_nothing(fed: tuple[Instance, Instance], smtp: Smtp) -> None:
    _, node = fed
    _, rid = apply(node, smtp, "Otto Outage")
    smtp.stop()
    try:
        decide(node, rid, status="assessed", note=f"Checked {uuid.uuid4().hex[:6]}.")
        wait_until(lambda: node.query("SELECT attempts FROM mail_outbox WHERE kind = 'assessed' AND "
                                      "state = 'pending'") and
                   node.query("SELECT attempts FROM mail_outbox WHERE kind = 'assessed'")[0][0] >= 1,
                   30, "a failed attempt")
    finally:
        smtp.start()
    mails = smtp.inbox.wait("otto.outage@applicant.example.de", 3, timeout=60)
    assert "Checked" in body_text(mails[-1])
    wait_until(lambda: not node.query("SELECT id FROM mail_outbox WHERE state = 'pending'"), 30, "outbox empty")
    time.sleep(0)


def test_outbox_files_when_no_smtp(tmp_path: Path) -> None:
    """Without smtp_url, `ncc serve` writes each mail as an .eml file (0600) in <data-dir>/outbox/."""
    with cluster(tmp_path, "sqlite") as c:
        node = c.add("de", "node", "DE")
        node.start()
        body = {"type": "organisation", "accept_terms": True, "applicant": {"name": "Eva", "email": "eva@x.example.de"},
                "payload": organisation("DE", "Eva Labs GmbH", "Incident response.")}
        assert node.post("/api/v1/applications", body).status == 202
        outbox = node.data_dir / "outbox"
        files = wait_until(lambda: outbox.exists() and sorted(outbox.glob("*.eml")), 30, "an .eml file")
        assert (files[0].stat().st_mode & 0o777) == 0o600
        msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
        assert msg["To"].addresses[0].addr_spec == "eva@x.example.de"
        assert [x for x in links(msg) if not x[2]]  # type: ignore[arg-type]
