"""Hostile applicants (DESIGN §10, §12): header injection, forged and swapped link tokens, spoofed
forwarding headers, hostile bodies — each answered with its exact code, nothing stored or sent."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest

from node.storage.gatekeeper_models import Application, MailMessage
from node.storage.models import Record
from tests.integration.gatekeeper_support import application
from tests.integration.support import Instance, expect_problem, org


async def nothing_stored() -> None:
    assert await Application.all().count() == 0 and await MailMessage.all().count() == 0


@pytest.mark.parametrize("name", ["Erika\r\nBcc: x@evil.example", "Erika\nBcc: x@evil.example", "Erika\r",
                                  "Erika\u2028Bcc: x@evil.example", "Erika\x00", "Erika\u0085"])
async def test_line_breaks_in_the_applicant_name_are_refused(client: Any, name: str) -> None:
    resp = await client.post("/api/v1/applications", json=application(applicant={"name": name,
                                                                                   "email": "e@x.example.de"}))
    await expect_problem(resp, 400, "invalid_parameter")
    await nothing_stored()


@pytest.mark.parametrize("email", ["e@x.example.de\r\nBcc: x@evil.example", "e@x.example.de\n", "a,b@x.example.de",
                                   "<e@x.example.de>", "e@x.example.de>, x@evil.example", "e" * 250 + "@x.de"])
async def test_hostile_applicant_addresses_are_refused(client: Any, email: str) -> None:
    resp = await client.post("/api/v1/applications", json=application(applicant={"name": "E", "email": email}))
    assert resp.status in (400, 422)
    assert (await resp.json())["code"] in ("invalid_parameter", "schema_invalid")
    await nothing_stored()


@pytest.mark.parametrize("body", [
    application(payload=org(legal_name="NUL\x00here")),
    application(payload=org(membership={"status": "registered", "assessed_at": "2026-01-01T00:00:00Z"})),
    application(payload=org(consent={"share_with_eccc_and_nccs": False})),
    application(payload=[]),
    application(applicant="erika"),
    application(accept_terms="true"),
    [application()],
])
async def test_hostile_application_bodies(client: Any, body: Any) -> None:
    await expect_problem(await client.post("/api/v1/applications", json=body), 422, "schema_invalid")
    await nothing_stored()


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def _applied(client: Any, node: Instance) -> tuple[str, str, str]:
    """Apply; read the tokens from the queued confirmation mail's body."""
    import re

    resp = await client.post("/api/v1/applications", json=application())
    app_id = (await resp.json())["id"]
    body = (await MailMessage.filter(application_id=app_id).first()).body  # type: ignore[union-attr]
    confirm = re.search(rf"/apply/{app_id}\?token=(\S+)", body).group(1)  # type: ignore[union-attr]
    manage = re.search(rf"/apply/{app_id}/status\?token=(\S+)", body).group(1)  # type: ignore[union-attr]
    return app_id, confirm, manage


async def test_swapped_forged_and_downgraded_link_tokens(client: Any, node: Instance) -> None:
    app_id, confirm, manage = await _applied(client, node)
    head, claims, _ = confirm.split(".")
    decoded = jwt.decode(confirm, options={"verify_signature": False})
    other_app, _, _ = await _applied(client, node)
    cases = [
        manage,  # the manage link's token cannot confirm
        f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{claims}.",  # alg none
        jwt.encode(decoded, node.key.public_raw, algorithm="HS256", headers={"kid": node.key.kid}),  # key confusion
        jwt.encode({**decoded, "exp": decoded["exp"] + 10**6}, "x" * 32, algorithm="HS256"),
        f"{head}.{_b64({**decoded, 'sub': other_app})}.{confirm.split('.')[2]}",  # another application's id
        "x" * 5000,
        "",
    ]
    for token in cases:
        resp = await client.post(f"/api/v1/applications/{app_id}/confirm", json={"token": token})
        await expect_problem(resp, 401, "unauthenticated")
    # a valid token of one application confirms no other
    await expect_problem(await client.post(f"/api/v1/applications/{other_app}/confirm", json={"token": confirm}),
                         401, "unauthenticated")
    # the confirmation token does not open the applicant's file
    await expect_problem(await client.get(f"/api/v1/applications/{app_id}",
                                          headers={"Authorization": f"Bearer {confirm}"}), 401, "unauthenticated")
    assert await Record.all().count() == 0
    resp = await client.post(f"/api/v1/applications/{app_id}/confirm", json={"token": confirm})
    assert resp.status == 200
    await expect_problem(await client.post(f"/api/v1/applications/{app_id}/confirm", json={"token": confirm}),
                         409, "token_used")
    assert await Record.all().count() == 1


@pytest.mark.parametrize("path", ["../../etc/passwd", "00000000-0000-4000-8000-00000000000G", "x" * 2000, "%00"])
async def test_application_ids_that_name_nothing(client: Any, path: str) -> None:
    resp = await client.post(f"/api/v1/applications/{path}/confirm", json={"token": "t"})
    assert resp.status == 404


async def test_forwarded_header_from_an_untrusted_peer_is_ignored(app_client: Any, node: Instance) -> None:
    client = await app_client(node, application_rate_per_address="1")
    body = application(applicant={"name": "A", "email": "a@x.example.de"})
    assert (await client.post("/api/v1/applications", json=body, headers={"X-Forwarded-For": "198.51.100.1"})).status == 202
    body = application(applicant={"name": "B", "email": "b@x.example.de"})
    resp = await client.post("/api/v1/applications", json=body, headers={"X-Forwarded-For": "198.51.100.2"})
    await expect_problem(resp, 429, "rate_limited")
    assert int(resp.headers["Retry-After"]) > 0


async def test_two_clicks_at_once_confirm_once(client: Any, node: Instance) -> None:
    import asyncio

    app_id, confirm, _ = await _applied(client, node)
    answers = await asyncio.gather(*(client.post(f"/api/v1/applications/{app_id}/confirm", json={"token": confirm})
                                     for _ in range(4)))
    assert sorted(r.status for r in answers) == [200, 409, 409, 409]
    assert await Record.all().count() == 1
