"""Nodes audit the hub's transparency log (DESIGN §14), with real processes: a hub and two nodes.

An honest hub passes; then the hub's database is tampered with the way a dishonest hub would —
an entry dropped, one altered, one invented, a key added for the country, history rewritten — and each
is reported with its kind, by ``ncc audit`` (exit 1, one line per discrepancy) and at
``GET /api/v1/audit``. Two nodes shown different logs (a split view) notice it with ``--peer``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Cluster, Instance, cluster, organisation, start_federation

pytestmark = pytest.mark.e2e


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[tuple[Cluster, Instance, Instance, Instance, list[str]]]:
    with cluster(tmp_path, "sqlite") as c:
        hub, nodes = start_federation(c, ("DE", "FR"))
        de, fr = nodes["DE"], nodes["FR"]
        ids = []
        for i in range(4):
            resp = de.post("/api/v1/records", {"type": "organisation", "visibility": "public" if i else "network",
                                               "payload": organisation("DE", f"Audit Lab {i}", "Audited.")},
                           token=de.token("editor"))
            assert resp.status == 201, resp.body
            ids.append(resp.json()["id"])
        assert fr.post("/api/v1/records", {"type": "organisation", "visibility": "public",
                                           "payload": organisation("FR", "Laboratoire", "Audité.")},
                       token=fr.token("editor")).status == 201
        hub.ncc("sync")
        yield c, hub, de, fr, ids


def audit(node: Instance, *extra: str) -> tuple[int, list[str]]:
    done = node.ncc("audit", *extra, check=False)
    return done.returncode, done.stdout.strip().splitlines()


def test_nodes_catch_every_kind_of_dishonest_hub(federation: tuple) -> None:
    """One federation for every scenario (each starts real processes): honest first, then each
    tampering in turn, history rewritten last."""
    from federation.keys import b64url_encode, generate_private_key, kid_for, public_key_raw

    _, hub, de, fr, ids = federation
    code, lines = audit(de)
    assert code == 0, lines
    assert lines[-1].startswith("audit ok: 4 entries of this node") and "4 inclusion proofs checked" in lines[-1]
    result = de.get("/api/v1/audit", token=de.token("reader")).json()
    assert result["ok"] is True and result["lines"] == []
    assert de.get("/federation/v1/log/seen-head").json()["size"] == result["head"]["size"]
    assert audit(fr)[0] == 0
    assert audit(de, "--peer", fr.url)[0] == 0  # both saw the same log

    # 1. the hub drops one version, alters another, invents a third in DE's name, serves a fourth altered
    hub.query("DELETE FROM hub_log WHERE record_id = ?", (ids[0],))
    hub.query("UPDATE hub_log SET entry = REPLACE(entry, '\"digest\":\"', '\"digest\":\"00') WHERE record_id = ?",
              (ids[1],))
    forged = ids[2][:-12] + "000000000000"
    hub.query("UPDATE hub_log SET record_id = ?, entry = REPLACE(entry, ?, ?) WHERE record_id = ?",
              (forged, ids[2], forged, ids[2]))
    hub.query("UPDATE hub_records SET envelope = REPLACE(envelope, 'Audit Lab 3', 'Audit Lab X') WHERE id = ?",
              (ids[3],))
    code, lines = audit(de)
    assert code == 1
    assert f"altered {ids[3]} v1: served with another digest" in lines, lines
    kinds = {line.split(": ")[0] for line in lines[:-1]}
    assert f"dropped {ids[0]} v1" in kinds
    assert f"altered {ids[1]} v1" in kinds
    assert f"unknown {forged} v1" in kinds and f"dropped {ids[2]} v1" in kinds
    assert lines[-1].startswith("audit found 5 discrepancies")
    result = de.get("/api/v1/audit", token=de.token("reader")).json()
    assert result["ok"] is False and len(result["lines"]) == 5
    assert audit(fr)[0] == 0  # FR's entries were not touched

    # 2. the hub lists a key for FR that FR never held, in a directory it signs
    raw = public_key_raw(generate_private_key())
    kid = kid_for("FR", raw)
    not_before = hub.query("SELECT not_before FROM hub_node_keys WHERE country = 'FR'")[0][0]
    hub.query("INSERT INTO hub_node_keys (kid, country, public_key, not_before) VALUES (?, 'FR', ?, ?)",
              (kid, b64url_encode(raw), not_before))
    assert hub.post("/api/v1/nodes/DE", {"status": "active"}, token=hub.token("admin")).status == 200
    code, lines = audit(fr)
    assert code == 1 and f"foreign-key {kid}: listed by the hub for this country" in lines[0], lines

    # 3. the hub rewrites its history (the largest stored subtree: the root of the same size) and forgets
    #    the head it signed; FR still holds the head it saw before: DE, shown the rewritten log, finds
    #    it inconsistent with its own last head and with FR's (a split view)
    hub.query("UPDATE hub_log_nodes SET hash = ? WHERE key = (SELECT MAX(key) FROM hub_log_nodes)", ("00" * 32,))
    hub.query("UPDATE hub_log_state SET head = NULL")
    code, lines = audit(de, "--peer", fr.url)
    assert code == 1
    assert any(line.startswith("inconsistent log") and "since the last audit" in line for line in lines), lines
    assert any("with the head" in line and fr.url in line for line in lines), lines


def test_audit_needs_an_enrolled_node(tmp_path: Path) -> None:
    with cluster(tmp_path, "sqlite") as c:
        lone = c.add("lone", "node", "EE")
        done = lone.ncc("audit", check=False)
        assert done.returncode == 1 and "not enrolled" in done.stderr and done.stderr.count("\n") == 1
