"""End to end, real processes: sharing groups (issue 17, DESIGN §15) with a hub and three nodes — DE and
FR in the group ``civdef``, AT outside it.

A group record is found by an analyst of the group, at the hub and in live queries, and by nothing
else: anonymous readers, analysts without groups and analysts of another group get 404 and see it in
no total or facet. Removing FR from the group hides FR's group record at once and withdraws it from
the hub within one pull (the node sees the new directory through the pull itself); adding FR back
republishes it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.harness import Instance, cluster, organisation, start_federation, wait_until

pytestmark = pytest.mark.e2e

GROUP = "civdef"


def _token(hub: Instance, *groups: str) -> str:
    args = [a for g in groups for a in ("--group", g)]
    return hub.ncc("token", "create", "--role", "analyst", *args).stdout.strip().splitlines()[-1]


def _create(node: Instance, visibility: str, text: str) -> Any:
    payload = organisation(node.country, f"{text} {node.country}", f"About {text}.")
    return node.post(
        "/api/v1/records",
        {"type": "organisation", "visibility": visibility, "payload": payload},
        node.token("editor"),
    )


def _search(hub: Instance, token: str | None, **params: str) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    r = hub.get(f"/api/v1/search?{query}", token)
    assert r.status == 200, r.body
    return dict(r.json())


def test_group_records_reach_only_the_group(tmp_path: Any) -> None:
    with cluster(tmp_path, "sqlite") as c:
        hub, nodes = start_federation(c, ("DE", "FR", "AT"))
        de, fr, at = nodes["DE"], nodes["FR"], nodes["AT"]
        hub.ncc("hub", "group", "create", GROUP, "--countries", "DE,FR")
        hub.ncc("hub", "group", "create", "other", "--countries", "AT")
        member, plain, other = _token(hub, GROUP), _token(hub), _token(hub, "other")

        # the nodes learn their groups from the directory the hub's pulls announce
        marker = f"Gzq{uuid.uuid4().hex[:10]}"
        created = wait_until(
            lambda: (r := _create(de, f"group:{GROUP}", marker)).status == 201 and r,
            30,
            "DE to see it is a member of civdef",
        )
        rid = created.json()["id"]
        fr_marker = f"Fzq{uuid.uuid4().hex[:10]}"
        fr_rid = wait_until(
            lambda: (r := _create(fr, f"group:{GROUP}", fr_marker)).status == 201 and r,
            30,
            "FR to see it is a member",
        ).json()["id"]
        refused = _create(at, f"group:{GROUP}", "nope")
        assert refused.status == 422 and refused.code == "group_invalid"
        baseline = {t: _search(hub, t, limit="100") for t in (None, plain, other)}
        wait_until(lambda: hub.get(f"/api/v1/records/{rid}", member).status == 200, 30, "the hub to hold it")
        wait_until(lambda: hub.get(f"/api/v1/records/{fr_rid}", member).status == 200, 30, "FR's too")

        # the group's analyst finds it; nobody else sees it, in results, totals or facets
        assert hub.get(f"/api/v1/records/{rid}", member).json() == created.json()
        found = _search(hub, member, q=marker)
        assert [r["id"] for r in found["results"]] == [rid] and found["total"] == 1
        for token in (None, plain, other):
            assert hub.get(f"/api/v1/records/{rid}", token).status == 404
            assert _search(hub, token, q=marker)["total"] == 0
            listing = _search(hub, token, limit="100")
            assert (
                listing["total"] == baseline[token]["total"]
                and listing["facets"] == baseline[token]["facets"]
            )
            assert rid not in str(listing) and marker.encode() not in hub.get("/metrics").body
        # live queries: the member node answers the group's reader only
        live = _search(hub, member, q=marker, live="true", timeout_ms="5000")
        assert rid in {r["id"] for r in live["results"]} and not live["missing"]
        assert _search(hub, plain, q=marker, live="true", timeout_ms="5000")["total"] == 0
        assert "groups" not in hub.get("/federation/v1/directory").json()

        # FR leaves the group: hidden at once, then withdrawn by FR within one pull
        hub.ncc("hub", "group", "remove", GROUP, "FR")
        assert hub.get(f"/api/v1/records/{fr_rid}", member).status == 404
        assert _search(hub, member, q=fr_marker)["total"] == 0
        hub.ncc("sync", "--country", "FR")
        assert hub.query("SELECT deleted FROM hub_records WHERE id = ?", (fr_rid,)) == [(1,)]
        assert (
            fr.get(f"/api/v1/records/{fr_rid}", fr.token("reader")).json()["visibility"] == f"group:{GROUP}"
        )
        refused = _create(fr, f"group:{GROUP}", "late")
        assert refused.status == 422 and refused.code == "group_invalid"
        assert hub.get(f"/api/v1/records/{rid}", member).status == 200  # DE's stays

        # FR joins again: its record is published again
        hub.ncc("hub", "group", "add", GROUP, "FR")
        hub.ncc("sync", "--country", "FR")
        back = hub.get(f"/api/v1/records/{fr_rid}", member)
        assert back.status == 200 and back.json()["version"] == 3 and not back.json()["deleted"]
