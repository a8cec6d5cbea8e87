"""Hostile enrollment and key rotation at the hub (DESIGN §4, §9).

Every refused enrollment: the exact status and code, no node or key added, no new directory, and —
unless the refusal is about the token itself being spent — the invitation still unused.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest

from federation.keys import b64url_encode, generate_private_key, kid_for, public_key_raw
from federation.timefmt import format_timestamp
from federation.tokens import (
    enrollment_proof,
    issue_enrollment_token,
    issue_service_token,
    make_rotation_statement,
    peek_enrollment_token,
)
from tests.adversarial.conftest import FakeNode, Hub, MakeFakeNode
from tests.integration.support import expect_problem

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
BOTH = pytest.mark.parametrize(
    "db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


async def hub_state() -> dict[str, Any]:
    """What enrollment may change: nodes, keys, directory serial, used invitations."""
    from node.storage.hub_models import DirectoryDoc, FederatedNode, Invite, NodeKey

    last = await DirectoryDoc.all().order_by("-serial").first()
    return {
        "nodes": sorted((n.country, n.url) for n in await FederatedNode.all()),
        "keys": sorted((k.kid, k.not_after, k.revoked_at) for k in await NodeKey.all()),
        "serial": last.serial if last else 0,
        "used": sorted(i.jti for i in await Invite.filter(used_at__not_isnull=True)),
    }


async def unenrolled(fake_node: MakeFakeNode, country: str = "DE") -> FakeNode:
    return await fake_node(country, enroll=False)


def forged_token(country: str, hub: Hub, key: Any = None, alg: str = "EdDSA", **claims: Any) -> str:
    """An invitation-shaped JWT not made by the hub's invite (signed by ``key``, with the hub's kid)."""
    now = int(time.time())
    body = {"iss": "ncc-hub", "aud": "ncc-enroll", "sub": country, "iat": now, "exp": now + 3600,
            "jti": uuid.uuid4().hex, "typ": "enroll", "hub_kid": hub.instance.key.kid, **claims}
    if alg == "none":
        return jwt.encode(body, None, algorithm="none", headers={"kid": hub.instance.key.kid})
    return jwt.encode(body, key or generate_private_key(), algorithm="EdDSA", headers={"kid": hub.instance.key.kid})


async def post_enroll(hub: Hub, body: Any) -> Any:
    return await hub.client.post("/federation/v1/enroll", json=body)


# -- the token --------------------------------------------------------------------------------------


@BOTH
async def test_forged_invitations_are_401(hub: Hub, fake_node: MakeFakeNode) -> None:
    de = await unenrolled(fake_node)
    before = await hub_state()
    hub_key = hub.instance.key
    cases = {
        "signed by another key under the hub's kid": forged_token("DE", hub),
        "alg none": forged_token("DE", hub, alg="none"),
        "hub-signed but never issued (no invitation row)": issue_enrollment_token(
            hub_key.private_key, hub_key.kid, "DE", hub.clock(), uuid.uuid4().hex),
        "hub's service token instead of an invitation": issue_service_token(hub_key.private_key, hub_key.kid, "hub", "ncc-enroll", hub.clock()),
        "wrong audience": forged_token("DE", hub, key=hub_key.private_key, aud="hub"),
        "lifetime over 24 h": forged_token("DE", hub, key=hub_key.private_key, exp=int(time.time()) + 200_000),
        "garbage": "garbage.garbage.garbage",
    }
    for case, token in cases.items():
        try:
            body = hub.enroll_body(token, de)  # the proof signs this token's jti
        except Exception:  # noqa: BLE001 - not even invitation-shaped: swap it into a real request
            body = {**hub.enroll_body(await hub.invite("DE"), de), "token": token}
        await expect_problem(await post_enroll(hub, body), 401, "unauthenticated")
        after = await hub_state()
        assert (after["nodes"], after["keys"], after["serial"], after["used"]) == (
            before["nodes"], before["keys"], before["serial"], before["used"]), case


@SQLITE
async def test_expired_invitation_is_401(hub: Hub, fake_node: MakeFakeNode) -> None:
    de = await unenrolled(fake_node)
    token = await hub.invite("DE")
    before = await hub_state()
    hub.clock.advance(hours=24, minutes=1)
    await expect_problem(await post_enroll(hub, hub.enroll_body(token, de)), 401, "unauthenticated")
    assert await hub_state() == before


@BOTH
async def test_reused_invitation_is_409(hub: Hub, fake_node: MakeFakeNode) -> None:
    de = await unenrolled(fake_node)
    token = await hub.invite("DE")
    assert (await post_enroll(hub, hub.enroll_body(token, de))).status == 200
    before = await hub_state()
    # the same node again, and an attacker's key with the same (spent) invitation
    attacker = FakeNode("DE", generate_private_key(), hub.clock)
    for node in (de, attacker):
        await expect_problem(await post_enroll(hub, hub.enroll_body(token, node)), 409, "enrollment_token_used")
    assert await hub_state() == before
    assert attacker.kid not in {k for k, *_ in before["keys"]}


@SQLITE
async def test_concurrent_use_of_one_invitation_enrolls_once(hub: Hub, fake_node: MakeFakeNode) -> None:
    token = await hub.invite("DE")
    racers = [FakeNode("DE", generate_private_key(), hub.clock) for _ in range(4)]
    responses = await asyncio.gather(*(post_enroll(hub, hub.enroll_body(token, r)) for r in racers))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 409, 409, 409], statuses
    state = await hub_state()
    assert len(state["keys"]) == 1 and state["used"] and len(state["nodes"]) == 1


# -- the request around a valid token ------------------------------------------------------------------


@BOTH
async def test_enrollment_requests_that_do_not_match_their_token_are_422(hub: Hub, fake_node: MakeFakeNode) -> None:
    de = await unenrolled(fake_node)
    other = generate_private_key()
    cases: dict[str, Any] = {
        "invitation for FR used by DE": lambda t: hub.enroll_body(t, de) | {"country": "DE"},
        "proof over another jti": lambda t: hub.enroll_body(t, de, proof=enrollment_proof(de.key, "other")),
        "proof by another key": lambda t: hub.enroll_body(t, de, proof=enrollment_proof(
            other, str(peek_enrollment_token(t)["jti"]))),
        "proof garbage": lambda t: hub.enroll_body(t, de, proof="!!!"),
        "kid of another key": lambda t: hub.enroll_body(t, de, kid=kid_for("DE", public_key_raw(other))),
        "kid of another country": lambda t: hub.enroll_body(t, de, kid=kid_for("FR", public_key_raw(de.key))),
        "public key not 32 bytes": lambda t: hub.enroll_body(t, de, public_key=b64url_encode(b"x" * 31)),
        "public key not base64url": lambda t: hub.enroll_body(t, de, public_key="%%%"),
        "url javascript:": lambda t: hub.enroll_body(t, de, url="javascript:alert(1)"),
        "url file:": lambda t: hub.enroll_body(t, de, url="file:///etc/passwd"),
        "url with a space": lambda t: hub.enroll_body(t, de, url="http://a b/"),
        "url with a trailing newline": lambda t: hub.enroll_body(t, de, url=de.url + "\n"),
        "url with a NUL character": lambda t: hub.enroll_body(t, de, url="http://127.0.0.1\u0000.evil/"),
        "url with CRLF": lambda t: hub.enroll_body(t, de, url="http://127.0.0.1/\r\nX-Evil: 1"),
        "field not a string": lambda t: hub.enroll_body(t, de, country=["DE"]),
        "field missing": lambda t: {k: v for k, v in hub.enroll_body(t, de).items() if k != "proof"},
        "not_before not a timestamp": lambda t: hub.enroll_body(t, de, not_before="yesterday"),
        "not_before not a string": lambda t: hub.enroll_body(t, de, not_before=1_700_000_000),
        "not_before in the future": lambda t: hub.enroll_body(t, de, not_before="2999-01-01T00:00:00Z"),
    }
    for case, make in cases.items():
        token = await hub.invite("FR" if case.startswith("invitation for FR") else "DE")
        before = await hub_state()
        body = await expect_problem(await post_enroll(hub, make(token)), 422, "enrollment_invalid")
        assert body["code"] == "enrollment_invalid", case
        assert await hub_state() == before, case
    # DESIGN §9: JSON that is not an object is schema_invalid (regression: it was enrollment_invalid)
    before = await hub_state()
    await expect_problem(await post_enroll(hub, [hub.enroll_body(token, de)]), 422, "schema_invalid")
    assert await hub_state() == before
    # every invitation above is still good: the refusals spent none
    assert (await post_enroll(hub, hub.enroll_body(token, de))).status == 200


@BOTH
async def test_regression_bad_url_cannot_brick_the_directory(hub: Hub, fake_node: MakeFakeNode) -> None:
    """Regression: ``URL_RE`` ended in ``$`` (which also matches before a trailing newline) and allowed
    control characters. ``http://node/\\n`` enrolled (node row written, invitation spent), then the signed
    directory refused the URL: that enrollment answered 422 ``directory_invalid`` and every later
    directory publish (enrollments, revocations, rotations) failed; a NUL was a 500 on PostgreSQL.
    Fixed in ``node/services/hub.py`` (``URL_RE``: \\A…\\Z, no control characters)."""
    de, fr = await unenrolled(fake_node), await unenrolled(fake_node, "FR")
    for url in (de.url + "/\n", de.url + "\n", "http://127.0.0.1\u0000/", "http://x/\t", "http://x/\x7f"):
        token = await hub.invite("DE")
        before = await hub_state()
        await expect_problem(await post_enroll(hub, hub.enroll_body(token, de, url=url)), 422, "enrollment_invalid")
        assert await hub_state() == before
    assert (await post_enroll(hub, hub.enroll_body(await hub.invite("FR"), fr))).status == 200
    assert (await hub.client.get("/federation/v1/directory")).status == 200


@SQLITE
async def test_invite_for_a_country_not_allowed_is_refused(hub: Hub) -> None:
    from node.services.hub import EnrollmentInvalid

    for country in ("US", "XX", "de", "\u0000\u0000"):
        with pytest.raises(EnrollmentInvalid):
            await hub.invite(country)


@BOTH
async def test_regression_records_signed_before_enrollment_stay_valid(hub: Hub, fake_node: MakeFakeNode) -> None:
    """Regression (a CI run of ``tests/integration/test_pull_faults.py``): a node key became valid at the
    very second the hub enrolled it, so whatever the node had signed before (a registry imported before
    enrolling, a record written a second before the enrollment went through, or just a node clock a
    little behind the hub's) was quarantined ``key_not_yet_valid``. A key is now valid from
    ``clock_skew_s`` before the hub adds it, or from the ``not_before`` the enrolling node states (when it
    first signed with that key), whichever is earlier."""
    de = await unenrolled(fake_node, "DE")
    fr = await unenrolled(fake_node, "FR")
    month_ago = hub.clock() - timedelta(days=30)
    resp = await post_enroll(hub, hub.enroll_body(await hub.invite("DE"), de, not_before=format_timestamp(month_ago)))
    assert resp.status == 200, await resp.text()
    await hub.enroll(fr)  # states nothing
    skew = timedelta(seconds=hub.instance.settings().clock_skew_s)
    de_old, de_recent = de.record(issued_at=month_ago), de.record(issued_at=hub.clock() - timedelta(seconds=2))
    fr_recent, fr_old = fr.record(issued_at=hub.clock() - skew), fr.record(issued_at=month_ago)
    de.serve(de_old, de_recent)
    fr.serve(fr_recent, fr_old)
    results = await hub.sync()
    assert results["DE"]["accepted"] == 2 and results["FR"]["accepted"] == 1, results
    assert [(q["record_id"], q["code"]) for q in await hub.quarantine()] == [(fr_old["id"], "key_not_yet_valid")]
    directory = (await (await hub.client.get("/federation/v1/directory")).json())
    not_before = {n["country"]: [k["not_before"] for k in n["keys"]] for n in directory["nodes"]}
    assert not_before == {"DE": [format_timestamp(month_ago)], "FR": [format_timestamp(hub.clock() - skew)]}


# -- key rotation --------------------------------------------------------------------------------------


def rotation(node: FakeNode, old_key: Any, new_key: Any, hub: Hub, country: str | None = None) -> dict[str, Any]:
    return make_rotation_statement(old_key, kid_for(country or node.country, public_key_raw(old_key)),
                                   public_key_raw(new_key), country or node.country, hub.clock())


@BOTH
async def test_regression_rotated_out_key_cannot_name_a_successor(hub: Hub, fake_node: MakeFakeNode) -> None:
    """Regression: ``HubService.rotate`` accepted a statement signed by any non-revoked key of the node,
    also one already rotated out (valid only for its grace period). Whoever stole a key the NCC had
    rotated away from could add a key of their own, with no expiry. Fixed in
    ``node/services/hub.py:HubService.rotate``: only the current key may rotate; repeating the rotation
    that retired a key stays harmless (same answer, nothing added)."""
    de = await fake_node("DE")
    old = de.key
    new = generate_private_key()
    resp = await hub.client.post("/federation/v1/keys/rotate", json=rotation(de, old, new, hub), headers=de.auth())
    assert resp.status == 200, await resp.text()
    before = await hub_state()
    thief_key = generate_private_key()
    # the thief holds `old`, which is still valid (grace period) to sign service tokens
    resp = await hub.client.post("/federation/v1/keys/rotate", json=rotation(de, old, thief_key, hub),
                                 headers=de.auth())
    await expect_problem(resp, 422, "enrollment_invalid")
    assert await hub_state() == before
    assert kid_for("DE", public_key_raw(thief_key)) not in {k for k, *_ in before["keys"]}
    # the node retrying its own rotation (answer lost) changes nothing and succeeds
    resp = await hub.client.post("/federation/v1/keys/rotate", json=rotation(de, old, new, hub), headers=de.auth())
    assert resp.status == 200 and (await resp.json())["kid"] == kid_for("DE", public_key_raw(new))
    assert await hub_state() == before
    # and the new current key can rotate on
    de.key = new
    resp = await hub.client.post("/federation/v1/keys/rotate", json=rotation(de, new, generate_private_key(), hub),
                                 headers=de.auth())
    assert resp.status == 200


@SQLITE
async def test_rotation_for_another_country_or_with_a_bad_signature_is_422(hub: Hub, fake_node: MakeFakeNode) -> None:
    de, fr = await fake_node("DE"), await fake_node("FR")
    before = await hub_state()
    tampered = rotation(de, de.key, generate_private_key(), hub)
    tampered["new_public_key"] = b64url_encode(public_key_raw(generate_private_key()))
    cases = {
        "FR's key rotated by DE": rotation(fr, fr.key, generate_private_key(), hub),
        "signed by a stranger": rotation(de, generate_private_key(), generate_private_key(), hub, "DE"),
        "tampered after signing": tampered,
        "not an object": [1],
    }
    for case, statement in cases.items():
        resp = await hub.client.post("/federation/v1/keys/rotate", json=statement, headers=de.auth())
        await expect_problem(resp, 422, "enrollment_invalid")
        assert await hub_state() == before, case


@SQLITE
async def test_revoked_key_cannot_rotate(hub: Hub, fake_node: MakeFakeNode) -> None:
    de = await fake_node("DE")
    await hub.context.hub.revoke_key(de.kid)
    before = await hub_state()
    assert (await hub.context.hub.current())  # the directory still publishes
    from node.services.hub import EnrollmentInvalid

    with pytest.raises(EnrollmentInvalid):
        await hub.context.hub.rotate("DE", rotation(de, de.key, generate_private_key(), hub))
    assert await hub_state() == before


@BOTH
async def test_regression_revoked_key_cannot_be_enrolled_again(hub: Hub, fake_node: MakeFakeNode) -> None:
    """Regression: re-enrolling a revoked key succeeded (200, invitation spent) and left the node with
    that key only — revoked, so every later record was quarantined and no rotation was possible. The
    hub now refuses it with 422 ``enrollment_invalid`` (``reason: key_revoked``) before spending the
    invitation; the same invitation then enrolls a new key, and what the hub received from the old key
    before its revocation stays valid (DESIGN §10: judged by when the hub received it)."""
    de = await fake_node("DE")
    signed_before = de.record(issued_at=hub.clock() - timedelta(seconds=10))
    de.serve(signed_before)
    assert (await hub.sync())["DE"]["accepted"] == 1
    await hub.context.hub.revoke_key(de.kid)
    hub.clock.advance(seconds=5)
    signed_after = de.record()
    token = await hub.invite("DE")
    before = await hub_state()
    body = await expect_problem(await post_enroll(hub, hub.enroll_body(token, de)), 422, "enrollment_invalid")
    assert f"key {de.kid} was revoked at" in body["detail"] and body["reason"] == "key_revoked"
    assert await hub_state() == before

    old_kid = de.kid
    de.key = generate_private_key()
    assert (await post_enroll(hub, hub.enroll_body(token, de))).status == 200
    state = await hub_state()
    assert {k for k, *_ in state["keys"]} == {old_kid, de.kid}
    new_key_entry = next(k for k in state["keys"] if k[0] == de.kid)
    assert new_key_entry[1:] == (None, None)  # no not_after, not revoked
    de.serve(signed_after, de.record())
    results = await hub.sync()
    assert results["DE"]["accepted"] == 1, results
    assert signed_before["id"] in await hub.held()
    assert [(q["record_id"], q["code"]) for q in await hub.quarantine()] == [(signed_after["id"], "key_revoked")]


@SQLITE
async def test_regression_reenrolling_a_rotated_out_key_keeps_it_valid(hub: Hub, fake_node: MakeFakeNode) -> None:
    """Regression: a node whose rotation answer was lost keeps its old key, which the hub had already
    given a ``not_after``; re-enrolling with it ended the successor key (``not_after`` = now) and kept
    the old key's end, leaving the node with no key at all once the grace period ran out."""
    de = await fake_node("DE")
    old = de.key
    resp = await hub.client.post("/federation/v1/keys/rotate", json=rotation(de, old, generate_private_key(), hub),
                                 headers=de.auth())
    assert resp.status == 200
    await hub.enroll(de)  # still the old key
    keys = {k: (not_after, revoked) for k, not_after, revoked in (await hub_state())["keys"]}
    assert keys[de.kid] == (None, None)
    assert all(not_after is not None for kid, (not_after, _) in keys.items() if kid != de.kid)
