"""Regression is never silent (DESIGN §11, issue 12), with real ``ncc`` processes.

* **Restore from a backup** (SQLite): a node's data dir is copied, the node writes more (the hub takes
  it), the copy is put back and the node writes again past the hub's old cursor. The hub reports the
  node ``diverged`` (``GET /api/v1/nodes`` with head and cursor, search ``nodes``, ``/status``),
  ``ncc sync`` exits 1 with one line, and nothing of the node is ingested. ``ncc recover`` on the
  serving node takes back what the restore lost, signs again above the hub's version what the
  restored node wrote differently (no equivocation), and the hub ends exactly equal to the node.
* **Replacement by a new instance** (PostgreSQL): a fresh ``ncc init`` for the same country enrolls with
  a fresh invitation; its records are pulled from 0 in a new feed epoch; ``ncc recover`` refuses the old
  instance's records until the operator names the old key (``--trust-key``), then (node stopped) takes
  them back: exact equality once the node is up again.
* **Status tells the truth**: a query-only node that is down is probed and shown ``unreachable`` (hub
  ``/api/v1/nodes`` and search ``nodes``), ``ok`` again once it answers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import pg_problem
from tests.e2e.harness import (
    Instance,
    assert_hub_matches_nodes,
    caught_up,
    cluster,
    enroll,
    feed_head,
    held,
    hub_cursor,
    organisation,
    wait_until,
)

pytestmark = pytest.mark.e2e

CATCH_UP_S = 30.0


def create(node: Instance, label: str, visibility: str = "public") -> dict[str, Any]:
    payload = organisation(node.country, f"{label} {node.country} Org", f"Record {label}.")
    r = node.post("/api/v1/records", {"type": "organisation", "visibility": visibility, "payload": payload},
                  node.token("editor"))
    assert r.status == 201, r.body
    return dict(r.json())


def update(node: Instance, env: dict[str, Any], text: str, visibility: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"payload": {**env["payload"], "description": text}, "version": env["version"]}
    if visibility:
        body["visibility"] = visibility
    r = node.put(f"/api/v1/records/{env['id']}", body, node.token("editor"))
    assert r.status == 200, r.body
    return dict(r.json())


def delete(node: Instance, env: dict[str, Any], reason: str = "withdrawn") -> None:
    r = node.delete(f"/api/v1/records/{env['id']}?reason={reason}", node.token("editor"))
    assert r.status == 200, r.body


def node_row(hub: Instance, country: str) -> dict[str, Any]:
    return dict(next(n for n in hub.get("/api/v1/nodes").json() if n["country"] == country))


def current(node: Instance, rid: str) -> tuple[int, bool, str]:
    version, deleted, envelope = node.query("SELECT version, deleted, envelope FROM records WHERE id = ?", (rid,))[0]
    return int(version), bool(deleted), str(json.loads(envelope)["payload"].get("description", ""))


def test_restore_from_backup_is_detected_and_recovered_exactly(tmp_path: Path) -> None:
    with cluster(tmp_path, "sqlite") as c:
        hub = c.add("hub", "hub")
        node = c.add("de", "node", "DE")
        hub.start()
        node.start()
        enroll(hub, node)
        node.token("editor")  # made before the backup: the restored node knows it
        a = create(node, "a")
        b = create(node, "b")
        d = create(node, "d")
        e = create(node, "e")
        create(node, "net", "network")
        create(node, "nat", "national")
        wait_until(lambda: caught_up(hub, [node]), CATCH_UP_S, "the first records to reach the hub")

        # the backup: a copy of the stopped node's data dir (database, WAL, keys, config)
        node.stop()
        backup = tmp_path / "de-backup"
        shutil.copytree(node.data_dir, backup)
        node.start()

        # written after the backup, taken by the hub, then lost by the restore
        a2 = update(node, a, "a changed before the restore")
        delete(node, b)
        update(node, d, "d turned national", visibility="national")
        erased = create(node, "erased-later")
        delete(node, erased, "erased")
        lost = [create(node, f"lost-{i}") for i in range(4)]
        wait_until(lambda: caught_up(hub, [node]), CATCH_UP_S, "the later records to reach the hub")
        old_cursor = hub_cursor(hub, "DE")
        at_hub = held(hub, "DE")
        assert node_row(hub, "DE")["status"] == "ok"

        # the restore, then writes past the hub's old cursor (what "head below cursor" alone misses)
        node.stop()
        shutil.rmtree(node.data_dir)
        shutil.copytree(backup, node.data_dir)
        node.start()
        a_restored = update(node, a, "a changed after the restore")  # version 2 again, other content
        assert a_restored["version"] == a2["version"]
        update(node, e, "e changed after the restore")
        fresh = [create(node, f"fresh-{i}") for i in range(12)]
        assert feed_head(node) > old_cursor, "the restored node must have written past the old cursor"

        # detected before anything is ingested
        done = hub.ncc("sync", "--country", "DE", check=False)
        assert done.returncode == 1
        err = done.stderr.strip()
        assert len(err.splitlines()) == 1 and "diverged" in err.lower() and "ncc recover" in err, err
        row = node_row(hub, "DE")
        assert row["status"] == "diverged", row
        assert row["cursor"] == old_cursor and row["head"] == feed_head(node), row
        assert row["diverged"] and "no longer holds" in row["diverged"]["reason"]
        assert held(hub, "DE") == at_hub, "the hub ingested records of a diverged node"
        assert hub.query("SELECT COUNT(*) FROM hub_quarantine")[0][0] == 0
        assert hub.get("/api/v1/search?q=fresh").json()["nodes"]["DE"] == "diverged"
        status_page = hub.get("/status").body.decode()
        assert "diverged" in status_page and "ncc recover" in status_page

        # recovery on the serving node
        out = node.ncc("recover").stdout
        assert "took back" in out, out
        wait_until(lambda: caught_up(hub, [node]) and node_row(hub, "DE")["status"] == "ok", CATCH_UP_S,
                   "the hub to pull the recovered node from 0")
        assert_hub_matches_nodes(hub, [node])
        assert hub.query("SELECT COUNT(*) FROM hub_quarantine")[0][0] == 0, "recovery made an equivocation"
        assert node_row(hub, "DE")["epoch"] == 1

        # what the node holds now: everything the hub had, the restored node's own writes on top
        for env in lost:
            assert current(node, env["id"])[:2] == (1, False)
        version, deleted, text = current(node, a["id"])
        assert (version, deleted, text) == (3, False, "a changed after the restore")  # above the hub's 2
        assert current(node, b["id"])[1] is True
        assert current(node, erased["id"])[1] is True
        assert not node.query("SELECT 1 FROM record_versions WHERE record_id = ? AND envelope LIKE ?",
                              (erased["id"], "%erased-later%")), "recovery brought an erased payload back"
        assert current(node, e["id"])[2] == "e changed after the restore"
        assert all(current(node, env["id"])[0] == 1 for env in fresh)


def test_replacement_by_a_new_instance_recovers_the_old_records(tmp_path: Path) -> None:
    if pg_problem():
        pytest.skip(str(pg_problem()))
    with cluster(tmp_path, "postgres") as c:
        hub = c.add("hub", "hub")
        old = c.add("de-old", "node", "DE")
        hub.start()
        old.start()
        enroll(hub, old)
        kept = [create(old, f"old-{i}") for i in range(5)]
        create(old, "old-net", "network")
        delete(old, kept[0])
        wait_until(lambda: caught_up(hub, [old]), CATCH_UP_S, "the old instance's records to reach the hub")
        old_kid = json.loads(old.query("SELECT envelope FROM feed LIMIT 1")[0][0])["sig"]["kid"]
        old.stop()  # the machine is gone

        new = c.add("de-new", "node", "DE")
        new.start()
        mine = [create(new, f"new-{i}") for i in range(3)]
        enroll(hub, new, replace=True)  # a fresh invitation: a new instance, a new feed epoch
        wait_until(lambda: {e["id"] for e in mine} <= held(hub, "DE").keys(), CATCH_UP_S,
                   "the new instance's records to be pulled from 0")
        row = node_row(hub, "DE")
        assert row["status"] == "ok" and row["epoch"] == 1, row
        assert len(held(hub, "DE")) == 6 + 3  # the old instance's records stay at the hub meanwhile

        # the old instance's key is not this node's: refused until the operator names it
        done = new.ncc("recover", check=False)
        assert done.returncode == 1 and "--trust-key" in done.stderr and old_kid in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert not new.query("SELECT 1 FROM records WHERE envelope LIKE ?", (f"%{old_kid}%",))

        new.stop()  # ncc recover works on a stopped node too; the hub pulls it once it is back
        out = new.ncc("recover", "--trust-key", old_kid).stdout
        assert "took back 6" in out, out
        new.start()
        wait_until(lambda: caught_up(hub, [new]), CATCH_UP_S, "the hub to pull the recovered node")
        assert_hub_matches_nodes(hub, [new])
        assert hub.query("SELECT COUNT(*) FROM hub_quarantine")[0][0] == 0
        assert node_row(hub, "DE")["status"] == "ok"
        # the node serves the old records again as their owner
        assert new.get(f"/api/v1/records/{kept[1]['id']}").status == 200
        assert new.get(f"/api/v1/records/{kept[0]['id']}").status == 410


def test_a_query_only_node_that_is_down_is_not_shown_ok(tmp_path: Path) -> None:
    """Status tells the truth: the hub probes a query-only node every pull_interval_s (2 s here)."""
    with cluster(tmp_path, "sqlite") as c:
        hub = c.add("hub", "hub")
        node = c.add("ee", "node", "EE")
        hub.start()
        node.start()
        enroll(hub, node)
        hub.ncc("hub", "mode", "EE", "query-only")
        wait_until(lambda: node_row(hub, "EE")["status"] == "ok" and node_row(hub, "EE")["last_success"],
                   CATCH_UP_S, "the query-only node to be probed")
        seen = node_row(hub, "EE")["last_success"]
        node.stop()
        wait_until(lambda: node_row(hub, "EE")["status"] == "unreachable", CATCH_UP_S,
                   "the stopped query-only node to be reported unreachable")
        row = node_row(hub, "EE")
        assert row["last_success"] == seen and "probe failed" in (row["last_error"] or ""), row
        assert hub.get("/api/v1/search?q=x").json()["nodes"]["EE"] == "unreachable"
        node.start()
        wait_until(lambda: node_row(hub, "EE")["status"] == "ok", CATCH_UP_S, "the node to be ok again")
