"""Sharing groups at the hub (issue 17, DESIGN §15): a group record is found by its group's readers and
by nothing else.

A fake DE node (a member of ``civdef``) serves a group record carrying a unique marker through the real
pull. Then every route of the hub's OpenAPI document is called as each outsider — anonymous, an analyst
without groups, an analyst of another group, a non-member node's service token — and no answer may
carry the record's id, uuid or marker, nor answer 5xx; the counts outsiders see (search totals and
facets, ``/metrics`` ingest counters, ``/api/v1/nodes`` quarantine counts) are the same as before the
record arrived. A country leaving the group hides its group records at once (before any pull).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from federation.groups import audience
from node.services.usertokens import issue_and_record
from tests.adversarial.conftest import FakeNode, Hub, MakeFakeNode, org_payload

GROUP = "civdef"


async def _token(hub: Hub, role: str, *groups: str) -> dict[str, str]:
    """A hub user token issued in-process (as ``ncc token create --role R --group G`` does)."""
    c = hub.context
    issued = await issue_and_record(
        c.keyring.key(), c.settings.instance_id, role, f"test-{role}", hub.clock(), 3600, tuple(groups)
    )
    return {"Authorization": f"Bearer {issued.token}"}


async def _groups(hub: Hub) -> None:
    admin = hub.admin()
    for name, countries in ((GROUP, ["DE", "FR"]), ("other", ["AT"])):
        r = await hub.client.post(
            "/api/v1/groups", json={"name": name, "countries": countries}, headers=admin
        )
        assert r.status == 201, await r.text()


async def _outsider_counts(hub: Hub, headers: dict[str, str]) -> dict[str, Any]:
    listing = await (await hub.client.get("/api/v1/search", params={"limit": "100"}, headers=headers)).json()
    metrics = await (await hub.client.get("/metrics")).text()
    ingest = sorted(line for line in metrics.splitlines() if line.startswith("ncc_ingest_records_total"))
    nodes = await (await hub.client.get("/api/v1/nodes")).json()
    return {
        "total": listing["total"],
        "facets": listing["facets"],
        "ingest": ingest,
        "quarantined": {n["country"]: n["quarantined"] for n in nodes},
    }


def _fill(path: str, rid: str, de: FakeNode) -> str:
    values = {"id": rid, "country": "DE", "kid": de.kid, "name": GROUP}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


#: Answers that change between two calls anyway (timings, signed timestamps): checked for traces only.
VOLATILE = frozenset(
    {
        "/metrics",
        "/federation/v1/resume",
        "/federation/v1/rotate",
        "/federation/v1/notify",
        "/federation/v1/log/head",
        "/api/v1/nodes",
        "/healthz",
        "/readyz",
    }
)
QUERY = {
    "q": None,
    "id": None,
    "version": "1",
    "origin": "DE",
    "country": "DE",
    "limit": "100",
    "after": "0",
    "from": "1",
    "to": "1",
    "live": "false",
}


async def test_group_record_reaches_only_its_group(hub: Hub, fake_node: MakeFakeNode) -> None:
    await _groups(hub)
    de = await fake_node("DE")
    public = de.record(payload=org_payload("DE", description="Open lab for quantum cryptography."))
    de.serve(public)
    assert (await hub.sync())["DE"]["ok"]

    anonymous: dict[str, str] = {}
    plain = await _token(hub, "analyst")
    other = await _token(hub, "analyst", "other")
    member = await _token(hub, "analyst", GROUP)
    at = await fake_node("AT")
    outsiders = {"anonymous": anonymous, "analyst": plain, "other-group": other}
    before = {name: await _outsider_counts(hub, h) for name, h in outsiders.items()}

    marker = f"Kzq{uuid.uuid4().hex[:12]}"
    secret = de.record(
        visibility=f"group:{GROUP}",
        payload=org_payload(
            "DE",
            legal_name=f"Dual-use facility {marker}",
            description=f"Defence testing range {marker}.",
            sectors=["sec.energy"],
        ),
    )
    rid = secret["id"]
    de.serve(secret)
    assert (await hub.sync())["DE"]["ok"]

    # the group's reader finds it: record page (exactly as signed), search, its log entry
    whole = await hub.client.get(f"/api/v1/records/{rid}", headers=member)
    assert whole.status == 200 and await whole.json() == secret
    found = await (await hub.client.get("/api/v1/search", params={"q": marker}, headers=member)).json()
    assert [r["id"] for r in found["results"]] == [rid] and found["total"] == 1
    assert found["facets"]["country"] == {"DE": 1}
    assert (
        await hub.client.get(
            "/federation/v1/log/inclusion", params={"id": rid, "version": "1"}, headers=member
        )
    ).status == 200
    admin = await hub.client.get(f"/api/v1/records/{rid}", headers=hub.admin())
    assert admin.status == 200  # the hub admin sees every group

    # nobody else: 404 as if it did not exist, and every route answers exactly as it does for an id and a
    # word that exist nowhere (echoes of what the caller sent aside), with no trace of the record
    paths = (await (await hub.client.get("/openapi.json")).json())["paths"]
    readers: dict[str, Any] = {name: (lambda h=h: h) for name, h in outsiders.items()}
    readers["node-AT"] = lambda: {"Authorization": f"Bearer {at.service_token()}"}  # single-use jti
    unknown = de.fields()["id"]
    decoy = f"Kzq{uuid.uuid4().hex[:12]}"
    for name, auth in readers.items():
        assert (await hub.client.get(f"/api/v1/records/{rid}", headers=auth())).status == 404, name
        for path, operations in paths.items():
            for method in operations:
                if method not in ("get", "post", "put", "delete"):
                    continue
                answers = []
                for record_id, word in ((rid, marker), (unknown, decoy)):
                    params = (
                        {k: (v or (word if k == "q" else record_id)) for k, v in QUERY.items()}
                        if method == "get"
                        else {}
                    )
                    resp = await hub.client.request(
                        method.upper(),
                        _fill(path, record_id, de),
                        params=params,
                        headers=auth(),
                        json={} if method != "get" else None,
                    )
                    body = (await resp.read()).decode("utf-8", "replace")
                    where = f"{name} {method.upper()} {path} -> {resp.status}"
                    assert resp.status < 500, where
                    for echo in (record_id, record_id.rsplit(":", 1)[1], word):
                        body = body.replace(echo, "<sent>")
                    answers.append((resp.status, re.sub(r"[0-9a-f]{32}", "<request>", body)))  # request ids
                assert marker not in answers[0][1] and rid not in answers[0][1], where
                if path not in VOLATILE:
                    assert answers[0] == answers[1], (
                        where,
                        [
                            l
                            for l in __import__("difflib").unified_diff(
                                answers[0][1].splitlines(), answers[1][1].splitlines(), lineterm=""
                            )
                        ][2:14],
                    )
        if name in before:
            assert await _outsider_counts(hub, auth()) == before[name], name
    directory = await (await hub.client.get("/federation/v1/directory")).json()
    assert "groups" not in directory  # the anonymous directory omits them
    assert {
        g["name"]
        for g in (await (await hub.client.get("/federation/v1/directory", headers=plain)).json())["groups"]
    } == {GROUP, "other"}

    # the search index holds the record under its audience key, filtered in the one query
    assert audience(f"group:{GROUP}", "DE") == f"group:{GROUP}:DE"

    # a country leaving the group: hidden at once, before any pull
    r = await hub.client.delete(f"/api/v1/groups/{GROUP}/members/DE", headers=hub.admin())
    assert r.status == 200 and (await r.json())["countries"] == ["FR"]
    assert (await hub.client.get(f"/api/v1/records/{rid}", headers=member)).status == 404
    found = await (await hub.client.get("/api/v1/search", params={"q": marker}, headers=member)).json()
    assert found["total"] == 0 and found["facets"]["country"] == {}
    # and a group record it still sends is refused (group_invalid), never shown
    later = de.record(visibility=f"group:{GROUP}", payload=org_payload("DE", description=f"Later {marker}."))
    de.serve(later)
    assert (await hub.sync())["DE"]["ok"]
    assert [q["code"] for q in await hub.quarantine("DE")] == ["group_invalid"]
    assert (await hub.client.get(f"/api/v1/records/{later['id']}", headers=hub.admin())).status == 404
    # re-joining shows what the hub holds again
    assert (await hub.client.put(f"/api/v1/groups/{GROUP}/members/DE", headers=hub.admin())).status == 200
    assert (await hub.client.get(f"/api/v1/records/{rid}", headers=member)).status == 200


async def test_group_names_and_members_are_checked(hub: Hub) -> None:
    admin = hub.admin()
    bad = await hub.client.post(
        "/api/v1/groups", json={"name": "Civ Def", "countries": ["DE"]}, headers=admin
    )
    assert bad.status == 422 and (await bad.json())["code"] == "group_invalid"
    bad = await hub.client.post("/api/v1/groups", json={"name": "ok", "countries": ["ZZ"]}, headers=admin)
    assert bad.status == 422 and (await bad.json())["code"] == "group_invalid"
    ok = await hub.client.post("/api/v1/groups", json={"name": "ok", "countries": ["DE"]}, headers=admin)
    assert ok.status == 201
    assert (
        await hub.client.post("/api/v1/groups", json={"name": "ok", "countries": []}, headers=admin)
    ).status == 409
    analyst = hub.instance.auth("analyst")
    assert (
        await hub.client.post("/api/v1/groups", json={"name": "x", "countries": []}, headers=analyst)
    ).status == 403
    assert await (await hub.client.get("/api/v1/groups", headers=analyst)).json() == []
    assert await (await hub.client.get("/api/v1/groups", headers=admin)).json() == [
        {"name": "ok", "countries": ["DE"]}
    ]
    assert (await hub.client.put("/api/v1/groups/nope/members/DE", headers=admin)).status == 404
