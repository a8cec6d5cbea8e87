"""DESIGN §12 end to end in-process, with a real SMTP server on loopback (aiosmtpd): apply, the
confirmation mail, confirm, the assessors' mail, decisions and their mails, history, the limits."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import stat
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from node.storage.gatekeeper_models import Application, MailMessage
from node.storage.models import FeedEntry, Record
from tests.integration.gatekeeper_support import SmtpServer, application, body_text, links
from tests.integration.support import Instance, expect_problem, org

Client = TestClient[Any, Any]
ASSESSOR_MAIL = "assess@ncc.example.de"


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def node(make_instance: Any) -> Instance:
    """A DE node with admin, editor, reader and assessor (subject anna.assessor) tokens (made before the
    test's loop runs: ``ncc token create`` runs its own)."""
    inst = make_instance("DE")
    inst.add_token("assessor", "assessor", "--subject", "anna.assessor")
    return inst


@pytest.fixture
async def gk(app_client: Any, node: Instance, smtp: SmtpServer) -> Client:
    return await app_client(node, smtp_url=smtp.url, assessor_emails=ASSESSOR_MAIL, mail_retry_max_s="1", mail_language="en",
                            url="https://ncc.example.de")


async def apply_and_confirm(client: Client, smtp: SmtpServer, **changes: Any) -> tuple[str, str, str]:
    """Apply, read the confirmation mail, confirm; return (application id, record id, manage token)."""
    before = len(smtp.mailbox.messages)
    resp = await client.post("/api/v1/applications", json=application(**changes))
    assert resp.status == 202, await resp.text()
    answer = await resp.json()
    assert answer["status"] == "unconfirmed" and set(answer) == {"id", "status"}
    msgs = await smtp.mailbox.wait_for(before + 1)
    found = links(msgs[before])
    confirm = [x for x in found if not x[2]]
    manage = [x for x in found if x[2]]
    assert len(confirm) == 1 and len(manage) == 1, body_text(msgs[before])
    base, app_id, _, token = confirm[0]
    assert base == "https://ncc.example.de" and app_id == answer["id"]
    resp = await client.post(f"/api/v1/applications/{app_id}/confirm", json={"token": token})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["Referrer-Policy"] == "no-referrer"
    done = await resp.json()
    assert done["status"] == "applied" and done["id"] == app_id
    return app_id, done["record_id"], manage[0][3]


async def decide(client: Client, node: Instance, rid: str, role: str = "assessor", **body: Any) -> Any:
    return await client.post(f"/api/v1/records/{rid}/decisions", json=body, headers=node.auth(role))


async def test_apply_confirm_assess_register_with_mails(gk: Client, node: Instance, smtp: SmtpServer) -> None:
    app_id, rid, manage = await apply_and_confirm(gk, smtp)
    rec = await Record.get(id=rid)
    env = orjson.loads(rec.envelope)
    assert env["visibility"] == "national" and env["payload"]["membership"] == {"status": "applied"}
    assert env["payload"]["consent"] == {"share_with_eccc_and_nccs": True}
    assert not await FeedEntry.filter(record_id=rid).exists()  # national: never in the feed

    # the applicant is told, and the assessors
    msgs = await smtp.mailbox.wait_for(3)
    assert smtp.mailbox.to(ASSESSOR_MAIL), [m["To"] for m in msgs]
    assert f"https://ncc.example.de/admin/assessments/{rid}" in body_text(smtp.mailbox.to(ASSESSOR_MAIL)[0])

    # the link is single use
    first = links(msgs[0])[0]
    resp = await gk.post(f"/api/v1/applications/{app_id}/confirm", json={"token": first[3]})
    await expect_problem(resp, 409, "token_used")

    # the applicant's file, with the manage link's token
    resp = await gk.get(f"/api/v1/applications/{app_id}", headers={"Authorization": f"Bearer {manage}"})
    assert resp.status == 200 and (await resp.json())["status"] == "applied"

    # applied -> registered skips the assessment
    await expect_problem(await decide(gk, node, rid, status="registered"), 422, "invalid_transition")
    # an editor may not decide
    await expect_problem(await decide(gk, node, rid, role="editor", status="assessed"), 403, "forbidden")
    resp = await decide(gk, node, rid, status="assessed", note="Documents complete.")
    assert resp.status == 201, await resp.text()
    env = await resp.json()
    assert env["version"] == 2 and env["payload"]["membership"]["status"] == "assessed"
    assert env["payload"]["membership"]["assessed_by"] == "anna.assessor"
    assert env["visibility"] == "national"
    resp = await decide(gk, node, rid, status="registered")
    assert resp.status == 201, await resp.text()
    env = await resp.json()
    assert env["visibility"] == "public"  # what the applicant consented to
    assert orjson.loads((await FeedEntry.get(record_id=rid)).envelope)["version"] == 3
    msgs = await smtp.mailbox.wait_for(5)
    mine = smtp.mailbox.to("erika@cyberlab.example.de")
    assert "Documents complete." in body_text(mine[-2])
    assert "registered" in body_text(mine[-1])

    resp = await gk.get(f"/api/v1/records/{rid}/history", headers=node.auth("editor"))
    assert resp.status == 200
    versions = (await resp.json())["versions"]
    assert [(v["version"], v["actor"], v["decision"]) for v in versions] == [
        (1, "applicant", "applied"), (2, "anna.assessor", "assessed"), (3, "anna.assessor", "registered")]
    assert versions[1]["note"] == "Documents complete."
    assert "/membership/status" in versions[1]["changed"] and "visibility" in versions[2]["changed"]
    await expect_problem(await gk.get(f"/api/v1/records/{rid}/history", headers=node.auth("reader")), 403,
                         "forbidden")
    await expect_problem(await gk.get(f"/api/v1/records/{rid}/history"), 401, "unauthenticated")

    # revoked on a shared record: a tombstone with reason revoked in the feed
    await expect_problem(await decide(gk, node, rid, status="revoked"), 422, "schema_invalid")
    resp = await decide(gk, node, rid, status="revoked", ground="security-reasons", note="See letter.")
    assert resp.status == 201, await resp.text()
    feed = orjson.loads((await FeedEntry.get(record_id=rid)).envelope)
    assert feed["deleted"] is True and feed["payload"] == {"reason": "revoked"} and feed["version"] == 4
    msgs = await smtp.mailbox.wait_for(6)
    text = body_text(smtp.mailbox.to("erika@cyberlab.example.de")[-1])
    assert "Justified security reasons".lower() in text.lower() and "See letter." in text


async def test_rejected_never_shared_publishes_nothing(gk: Client, node: Instance, smtp: SmtpServer) -> None:
    _, rid, _ = await apply_and_confirm(gk, smtp)
    await expect_problem(await decide(gk, node, rid, status="rejected"), 422, "schema_invalid")
    await expect_problem(await decide(gk, node, rid, status="assessed", ground="criteria-not-met"), 422,
                         "schema_invalid")
    await expect_problem(await decide(gk, node, rid, status="rejected", ground="nope"), 422, "schema_invalid")
    await expect_problem(await decide(gk, node, rid, status="rejected", ground="criteria-not-met", note="x" * 2001),
                         422, "schema_invalid")
    resp = await decide(gk, node, rid, role="admin", status="rejected", ground="criteria-not-met")
    assert resp.status == 201
    assert (await resp.json())["visibility"] == "national"
    assert not await FeedEntry.filter(record_id=rid).exists()
    await expect_problem(await decide(gk, node, rid, status="registered"), 422, "invalid_transition")


async def test_application_payload_is_checked_like_a_record(gk: Client, smtp: SmtpServer) -> None:
    cases = [
        (application(payload=org(membership={"status": "registered"})), 422, "schema_invalid", "/payload/membership"),
        (application(payload=org(consent={"share_with_eccc_and_nccs": True})), 422, "schema_invalid", "/payload/consent"),
        (application(payload=org(subdomains=["nope"])), 422, "schema_invalid", "/payload/subdomains/0"),
        (application(payload=org(country="FR")), 422, "schema_invalid", "/payload/country"),
        (application(accept_terms=False), 422, "schema_invalid", "/accept_terms"),
        (application(visibility="national"), 422, "schema_invalid", "/visibility"),
        (application(type="expert"), 422, "schema_invalid", "/type"),
        (application(applicant={"name": "E", "email": "not-an-address"}), 422, "schema_invalid", "/applicant/email"),
        (application(extra=1), 422, "schema_invalid", "/extra"),
    ]
    for body, status, code, pointer in cases:
        problem = await expect_problem(await gk.post("/api/v1/applications", json=body), status, code)
        assert pointer in [e["pointer"] for e in problem.get("errors", [])], (pointer, problem)
    await expect_problem(await gk.post("/api/v1/applications", data=b"{"), 400, "malformed_json")
    # the section 9 minimal payload is accepted
    resp = await gk.post("/api/v1/applications", json=application(payload=org()))
    assert resp.status == 202
    assert await Application.all().count() == 1


async def test_crlf_in_the_applicant_name_never_reaches_a_header(gk: Client, smtp: SmtpServer) -> None:
    evil = {"name": "Erika\r\nBcc: victim@example.org", "email": "erika@cyberlab.example.de"}
    problem = await expect_problem(await gk.post("/api/v1/applications", json=application(applicant=evil)), 400,
                                   "invalid_parameter")
    assert "line break" in problem["detail"]
    evil = {"name": "Erika", "email": "erika@cyberlab.example.de\r\nBcc: victim@example.org"}
    await expect_problem(await gk.post("/api/v1/applications", json=application(applicant=evil)), 400,
                         "invalid_parameter")
    assert await MailMessage.all().count() == 0
    # a name with unusual but allowed characters travels encoded, on one header line
    resp = await gk.post("/api/v1/applications",
                         json=application(applicant={"name": "Jürgen \"Bcc:\" <x@y>", "email": "j@cyberlab.example.de"}))
    assert resp.status == 202
    (_msg,) = await smtp.mailbox.wait_for(1)
    raw = smtp.mailbox.raw[0]
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc" not in headers and not [h for h in headers.split(b"\r\n") if h.lower().startswith(b"bcc")]
    assert smtp.mailbox.envelopes[0][1] == ["j@cyberlab.example.de"]


async def test_forged_and_expired_links_are_refused(app_client: Any, node: Instance, smtp: SmtpServer) -> None:
    client = await app_client(node, smtp_url=smtp.url, application_ttl_s="1")
    resp = await client.post("/api/v1/applications", json=application())
    app_id = (await resp.json())["id"]
    (msg,) = await smtp.mailbox.wait_for(1)
    token = next(x for x in links(msg) if not x[2])[3]
    head, payload, sig = token.split(".")
    forged = f"{head}.{payload}.{sig[:-4]}AAAA"
    await expect_problem(await client.post(f"/api/v1/applications/{app_id}/confirm", json={"token": forged}), 401,
                         "unauthenticated")
    other = "00000000-0000-4000-8000-000000000000"
    await expect_problem(await client.post(f"/api/v1/applications/{other}/confirm", json={"token": token}), 401,
                         "unauthenticated")
    await expect_problem(await client.post(f"/api/v1/applications/{app_id}/confirm", json={}), 401,
                         "unauthenticated")
    await asyncio.sleep(2.1)
    await expect_problem(await client.post(f"/api/v1/applications/{app_id}/confirm", json={"token": token}), 401,
                         "unauthenticated")
    # and the purge job's function removes it (and what it has not sent)
    gatekeeper = client.app[__import__("node.http.keys", fromlist=["CONTEXT"]).CONTEXT].gatekeeper
    assert await gatekeeper.purge_unconfirmed() == 1
    assert not await Application.filter(id=app_id).exists()
    assert not await MailMessage.filter(application_id=app_id).exists()


async def test_rate_limits_per_email_and_address(app_client: Any, node: Instance, smtp: SmtpServer) -> None:
    client = await app_client(node, smtp_url=smtp.url, application_rate_per_email="2",
                              application_rate_per_address="3", confirmation_mails_per_hour="100")
    for _ in range(2):
        assert (await client.post("/api/v1/applications", json=application())).status == 202
    resp = await client.post("/api/v1/applications", json=application())
    await expect_problem(resp, 429, "rate_limited")
    assert 3000 < int(resp.headers["Retry-After"]) <= 3600
    other = application(applicant={"name": "B", "email": "b@cyberlab.example.de"})
    assert (await client.post("/api/v1/applications", json=other)).status == 202
    third = application(applicant={"name": "C", "email": "c@cyberlab.example.de"})
    resp = await client.post("/api/v1/applications", json=third)
    await expect_problem(resp, 429, "rate_limited")  # the address's limit
    assert int(resp.headers["Retry-After"]) >= 1
    # X-Forwarded-For is not believed from an untrusted peer
    resp = await client.post("/api/v1/applications", json=third, headers={"X-Forwarded-For": "203.0.113.9"})
    await expect_problem(resp, 429, "rate_limited")


async def test_forwarded_address_behind_trusted_proxies(app_client: Any, node: Instance, smtp: SmtpServer) -> None:
    client = await app_client(node, smtp_url=smtp.url, application_rate_per_address="1",
                              trusted_proxies="127.0.0.1/32,::1")
    for i, addr in enumerate(("203.0.113.9", "203.0.113.10")):
        body = application(applicant={"name": "B", "email": f"b{i}@cyberlab.example.de"})
        resp = await client.post("/api/v1/applications", json=body, headers={"X-Forwarded-For": f"10.9.9.9, {addr}"})
        assert resp.status == 202, await resp.text()
    body = application(applicant={"name": "B", "email": "b9@cyberlab.example.de"})
    resp = await client.post("/api/v1/applications", json=body, headers={"X-Forwarded-For": "203.0.113.9"})
    await expect_problem(resp, 429, "rate_limited")


async def test_global_cap_on_confirmation_mails(app_client: Any, node: Instance, smtp: SmtpServer) -> None:
    client = await app_client(node, smtp_url=smtp.url, confirmation_mails_per_hour="2")
    for i in range(2):
        body = application(applicant={"name": "B", "email": f"b{i}@cyberlab.example.de"})
        assert (await client.post("/api/v1/applications", json=body)).status == 202
    resp = await client.post("/api/v1/applications", json=application())
    await expect_problem(resp, 429, "rate_limited")
    assert "Retry-After" in resp.headers


async def test_editors_may_not_set_or_change_membership(gk: Client, node: Instance, smtp: SmtpServer) -> None:
    member = {"status": "registered", "assessed_at": "2026-01-01T00:00:00Z"}
    resp = await gk.post("/api/v1/records", json={"type": "organisation", "payload": org(membership=member)},
                         headers=node.auth("editor"))
    await expect_problem(resp, 403, "forbidden")
    _, rid, _ = await apply_and_confirm(gk, smtp)
    current = await (await gk.get(f"/api/v1/records/{rid}", headers=node.auth("editor"))).json()
    changed = {**current["payload"], "membership": {"status": "registered", "assessed_at": "2026-01-01T00:00:00Z"}}
    resp = await gk.put(f"/api/v1/records/{rid}", json={"payload": changed, "version": 1}, headers=node.auth("editor"))
    await expect_problem(resp, 403, "forbidden")
    # leaving it out keeps it; sending it unchanged is fine
    without = {k: v for k, v in current["payload"].items() if k != "membership"}
    without["description"] = "Changed by the editor."
    resp = await gk.put(f"/api/v1/records/{rid}", json={"payload": without, "version": 1}, headers=node.auth("editor"))
    assert resp.status == 200, await resp.text()
    env = await resp.json()
    assert env["payload"]["membership"] == {"status": "applied"}
    resp = await gk.put(f"/api/v1/records/{rid}", json={"payload": env["payload"], "version": 2},
                        headers=node.auth("editor"))
    assert resp.status == 200
    history = (await (await gk.get(f"/api/v1/records/{rid}/history", headers=node.auth("assessor"))).json())["versions"]
    assert history[1]["actor"].startswith("editor") and history[1]["changed"] == ["/description"]
    assert history[2]["changed"] == []


async def test_mail_survives_an_smtp_outage(gk: Client, node: Instance, smtp: SmtpServer) -> None:
    """The mail server is down at decision time: the mail waits in the outbox and arrives later."""
    _, rid, _ = await apply_and_confirm(gk, smtp)
    await smtp.mailbox.wait_for(3)
    await smtp.stop()
    resp = await decide(gk, node, rid, status="assessed", note="Waiting for the server.")
    assert resp.status == 201
    for _ in range(50):
        row = await MailMessage.filter(kind="assessed").first()
        if row is not None and row.attempts >= 1:
            break
        await asyncio.sleep(0.1)
    assert row is not None and row.state == "pending" and row.attempts >= 1 and row.last_error
    await smtp.start()
    msgs = await smtp.mailbox.wait_for(4, timeout=20)
    assert "Waiting for the server." in body_text(msgs[-1])
    for _ in range(50):  # the server has it; the outbox marks it sent just after
        row = await MailMessage.get(id=row.id)
        if row.state == "sent":
            break
        await asyncio.sleep(0.1)
    assert row.state == "sent" and row.body == ""
    assert await MailMessage.filter(state="pending").count() == 0


async def test_outbox_files_without_smtp(app_client: Any, node: Instance) -> None:
    client = await app_client(node, url="https://ncc.example.de")
    resp = await client.post("/api/v1/applications", json=application(
        applicant={"name": "Jürgen Müller", "email": "j@cyberlab.example.de"}))
    assert resp.status == 202
    outbox = node.data_dir / "outbox"
    for _ in range(100):
        files = sorted(outbox.glob("*.eml")) if outbox.exists() else []
        if files:
            break
        await asyncio.sleep(0.05)
    (path,) = files
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    raw = path.read_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["To"].addresses[0].display_name == "Jürgen Müller"
    assert msg["From"] and msg["Date"] and msg["Message-ID"] and msg["Subject"]
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    assert b"\r\n" in raw  # RFC 5322 line ends
    text = body_text(msg)
    assert "Hallo" in text or "Guten Tag" in text  # a DE node writes German
    assert next(x for x in links(msg) if not x[2])[0] == "https://ncc.example.de"


def _csrf(text: str) -> str:
    import re

    m = re.search(r'name="csrf" value="([^"]+)"', text)
    assert m, text[:500]
    return m.group(1)


async def test_portal_apply_confirm_by_post_and_decide(app_client: Any, node: Instance, smtp: SmtpServer) -> None:
    """The portal path: /apply generated from the schema, the mailed link's page (GET confirms nothing,
    no Referer, no cache), the POST that confirms, the status page, the assessor's queue and form."""
    from aiohttp import FormData

    gk = await app_client(node, smtp_url=smtp.url, mail_language="en")  # http: the test client keeps the cookies

    resp = await gk.get("/apply")
    text = await resp.text()
    assert resp.status == 200 and 'name="/legal_name"' in text and 'name="/membership/status"' not in text
    assert 'name="/consent/share_with_eccc_and_nccs"' not in text
    form = FormData()
    for k, v in {"csrf": _csrf(text), "applicant_name": "Erika Mustermann", "applicant_email": "erika@cyberlab.example.de",
                 "visibility": "public", "accept_terms": "yes", "/legal_name": "Cyber Lab GmbH", "/country": "DE",
                 "/org_type": "ctype.industry-sme", "/fields_of_activity": "foa.academia-research-innovation",
                 "/domains": "cry", "/subdomains": "cry.10",
                 "/description": "Post-quantum cryptography for energy grids."}.items():
        form.add_field(k, v)
    resp = await gk.post("/apply", data=form)
    assert resp.status == 202, await resp.text()
    (msg,) = await smtp.mailbox.wait_for(1)
    _, app_id, _, token = next(x for x in links(msg) if not x[2])
    resp = await gk.get(f"/apply/{app_id}?token={token}")
    page = await resp.text()
    assert resp.status == 200 and resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store" and 'method="post"' in page
    assert (await Application.get(id=app_id)).status == "unconfirmed"  # a GET (a mail scanner) confirms nothing
    resp = await gk.post(f"/apply/{app_id}", data={"token": token})
    page = await resp.text()
    assert resp.status == 200 and resp.headers["Referrer-Policy"] == "no-referrer" and "applied" in page
    resp = await gk.post(f"/apply/{app_id}", data={"token": token})
    assert resp.status == 409 and "token_used" in await resp.text()
    rid = (await Application.get(id=app_id)).record_id
    assert rid

    manage = next(x for x in links(msg) if x[2])[3]
    resp = await gk.get(f"/apply/{app_id}/status?token={manage}")
    assert resp.status == 200 and resp.headers["Referrer-Policy"] == "no-referrer"
    resp = await gk.get(f"/apply/{app_id}/status?token=forged")
    assert resp.status == 401

    auth = node.auth("assessor")
    resp = await gk.get("/admin/assessments", headers=auth)
    assert resp.status == 200 and f"/admin/assessments/{rid}" in await resp.text()
    resp = await gk.get(f"/admin/assessments/{rid}", headers=auth)
    text = await resp.text()
    assert resp.status == 200 and 'id="decision-form"' in text
    csrf = _csrf(text)
    resp = await gk.post(f"/admin/assessments/{rid}", data={"csrf": csrf, "status": "rejected"}, headers=auth,
                         allow_redirects=False)
    assert resp.status == 422  # no ground
    resp = await gk.post(f"/admin/assessments/{rid}", data={"csrf": csrf, "status": "assessed", "note": "ok"},
                         headers=auth, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    rec = orjson.loads((await Record.get(id=rid)).envelope)
    assert rec["payload"]["membership"]["status"] == "assessed"
    resp = await gk.get("/admin/assessments", headers=node.auth("editor"))
    assert resp.status == 403


async def test_apply_page_keeps_what_was_typed_and_links_each_error_to_its_input(app_client: Any, node: Instance) -> None:
    """Regression: the missing confirmation was an unlinked "accept_terms must be true" at the top of the
    page, the tick was lost with any other error, and the applicant's own inputs were never marked."""
    import html

    gk = await app_client(node)
    text = await (await gk.get("/apply")).text()
    typed = {"csrf": _csrf(text), "applicant_name": "Erika Mustermann", "applicant_email": "erika@cyberlab.example.de",
             "visibility": "public", "/legal_name": "Zq7 Typed Lab GmbH", "/country": "DE",
             "/org_type": "ctype.industry-sme", "/fields_of_activity": "foa.academia-research-innovation",
             "/description": "Post-quantum cryptography for energy grids.", "/domains": "cry"}
    resp = await gk.post("/apply", data=typed)
    page = html.unescape(await resp.text())
    assert resp.status == 422
    assert '<a href="#accept-terms">Confirmation: tick the box to confirm the application.</a>' in page, page
    assert 'id="accept-terms-err"' in page and 'aria-describedby="accept-terms-err"' in page
    assert "accept_terms must be true" not in page
    assert 'value="Zq7 Typed Lab GmbH"' in page and 'value="Erika Mustermann"' in page

    resp = await gk.post("/apply", data={**typed, "applicant_email": "not-an-address", "accept_terms": "yes"})
    page = html.unescape(await resp.text())
    assert resp.status == 422 and '<a href="#applicant-email">Your e-mail address:' in page, page
    assert 'aria-describedby="applicant-email-hint applicant-email-err" aria-invalid="true"' in page
    assert 'name="accept_terms" value="yes" checked' in page  # the tick stays with another error
    assert 'value="Zq7 Typed Lab GmbH"' in page
    assert await Application.all().count() == 0


def test_typed_values_keep_what_cannot_be_parsed() -> None:
    """What the admin's record form and /apply show again after an error: the text as typed."""
    from multidict import MultiDict

    from node.web.schema_forms import Field, typed_values

    fields = (Field(pointer="/n", name="/n", kind="integer", title="N", required=False),
              Field(pointer="/tags", name="/tags", kind="multiselect", title="Tags", required=False))
    form = MultiDict([("/n", "nineteen"), ("/tags", "a"), ("/tags", "b")])
    assert typed_values(form, fields) == {"/n": "nineteen", "/tags": ["a", "b"]}


async def test_erasure_leaves_no_mail_and_no_application_behind(app_client: Any, node: Instance) -> None:
    """DESIGN §11: after ``DELETE ?reason=erased`` no byte of the record stays in the outbox (rows and
    .eml files), the application or the history's notes."""
    client = await app_client(node)
    marker = "Zq7Erasable Labs GmbH"
    resp = await client.post("/api/v1/applications", json=application(payload=org(legal_name=marker)))
    app_id = (await resp.json())["id"]
    outbox = node.data_dir / "outbox"
    for _ in range(100):
        files = sorted(outbox.glob("*.eml")) if outbox.exists() else []
        if files:
            break
        await asyncio.sleep(0.05)
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    token = next(x for x in links(msg) if not x[2])[3]
    rid = (await (await client.post(f"/api/v1/applications/{app_id}/confirm", json={"token": token})).json())["record_id"]
    resp = await client.post(f"/api/v1/records/{rid}/decisions", json={"status": "rejected", "ground": "criteria-not-met",
                                                                      "note": f"About {marker}"},
                             headers=node.auth("admin"))
    assert resp.status == 201
    for _ in range(100):
        if await MailMessage.filter(state="pending").count() == 0 and len(list(outbox.glob("*.eml"))) >= 3:
            break
        await asyncio.sleep(0.05)
    assert any(marker.encode() in p.read_bytes() for p in outbox.glob("*.eml"))
    resp = await client.delete(f"/api/v1/records/{rid}?reason=erased", headers=node.auth("admin"))
    assert resp.status == 200
    assert not any(marker.encode() in p.read_bytes() for p in outbox.glob("*.eml"))
    assert await MailMessage.all().count() == 0
    app = await Application.get(id=app_id)
    assert marker not in app.body and app.email == ""
    history = (await (await client.get(f"/api/v1/records/{rid}/history", headers=node.auth("admin"))).json())["versions"]
    assert all(v["note"] is None for v in history)


async def test_manage_link_follows_and_proposes_changes(gk: Client, node: Instance, smtp: SmtpServer) -> None:
    """The manage link: the applicant's file; a rejected organisation applies again (rejected → applied);
    a registered member's change waits for an assessor, then is published; a new link by e-mail."""
    app_id, rid, manage = await apply_and_confirm(gk, smtp)
    bearer = {"Authorization": f"Bearer {manage}"}
    resp = await decide(gk, node, rid, status="rejected", ground="criteria-not-met", note="Add your activities.")
    assert resp.status == 201
    file = await (await gk.get(f"/api/v1/applications/{app_id}", headers=bearer)).json()
    assert file["status"] == "rejected" and file["decisions"][-1]["note"] == "Add your activities."

    changed = org(description="Post-quantum cryptography for energy grids; incident response since 2019.")
    resp = await gk.post(f"/api/v1/applications/{app_id}/changes", json={"payload": changed}, headers=bearer)
    assert resp.status == 202, await resp.text()
    assert (await resp.json())["status"] == "applied"
    env = orjson.loads((await Record.get(id=rid)).envelope)
    assert env["payload"]["membership"] == {"status": "applied"} and env["visibility"] == "national"
    await expect_problem(await gk.post(f"/api/v1/applications/{app_id}/changes",
                                       json={"payload": org(membership={"status": "registered"})}, headers=bearer),
                         422, "schema_invalid")
    await expect_problem(await gk.post(f"/api/v1/applications/{app_id}/changes", json={"payload": changed},
                                       headers={"Authorization": "Bearer forged"}), 401, "unauthenticated")

    assert (await decide(gk, node, rid, status="assessed")).status == 201
    assert (await decide(gk, node, rid, status="registered")).status == 201
    published = orjson.loads((await FeedEntry.get(record_id=rid)).envelope)
    resp = await gk.post(f"/api/v1/applications/{app_id}/changes",
                         json={"payload": org(website="https://new.example.de")}, headers=bearer)
    assert resp.status == 202 and (await resp.json())["proposal"] == "pending"
    assert orjson.loads((await FeedEntry.get(record_id=rid)).envelope) == published  # nothing changes yet
    queue = (await (await gk.get("/api/v1/applications", headers=node.auth("assessor"))).json())["applications"]
    assert [a["proposal"] for a in queue if a["id"] == app_id] == ["pending"]
    resp = await decide(gk, node, rid, status="registered", note="Website updated.")
    assert resp.status == 201, await resp.text()
    env = await resp.json()
    assert env["payload"]["website"] == "https://new.example.de" and env["visibility"] == "public"
    assert env["payload"]["membership"]["status"] == "registered"
    await expect_problem(await decide(gk, node, rid, status="registered"), 422, "invalid_transition")  # none pending

    resp = await gk.post("/api/v1/manage-links", json={"email": "erika@cyberlab.example.de"})
    assert resp.status == 202
    for _ in range(100):
        asked = [m for m in smtp.mailbox.messages if "link to follow" in str(m["Subject"])]
        if asked:
            break
        await asyncio.sleep(0.1)
    assert [x for x in links(asked[0]) if x[2] and x[1] == app_id]
    resp = await gk.post("/api/v1/manage-links", json={"email": "nobody@cyberlab.example.de"})
    assert resp.status == 202  # the same answer: nobody learns who applied


async def test_organisation_2_fields_wait_for_the_hub(gk: Client, smtp: SmtpServer) -> None:
    """Applications use organisation/2 (FORM-ECCC-001): the form offers its fields; while the hub's
    directory does not accept /2 (here: not enrolled), a payload using them is refused at once — never
    accepted, then failing at confirmation."""
    text = await (await gk.get("/apply")).text()
    assert 'name="/general_email"' in text and 'name="/exclusion_declaration"' in text
    problem = await expect_problem(await gk.post("/api/v1/applications", json=application(
        payload=org(general_email="info@cyberlab.example.de"))), 422, "schema_invalid")
    assert await Application.all().count() == 0, problem
