"""Crash test: the hub is SIGKILLed repeatedly, at random instants, while it ingests from two nodes.

DESIGN §5: records and cursor are written in one transaction, so a crash at any instant loses and
duplicates nothing. After the kills the hub is restarted, ``ncc sync`` runs to completion, and the
hub's index is compared with each node's published set (its ``feed`` table: the latest shareable
version of every record) record by record: same ids, same versions, same digests — 0 lost,
0 duplicated, 0 stale. Between the kills the nodes keep writing (updates and withdrawals of records
the hub may or may not have seen yet), so the hub must also end on their latest versions.

Quick (CI) mode: 3 kills over 2 × 5,000 records. Full mode (``NCC_FAULTS_FULL=1``, part of the
fault suite, see tests/e2e/test_faults.py): 20 kills over 2 × 50,000 records.
``NCC_E2E_SEED`` repeats a run's random instants.
"""

from __future__ import annotations

import json
import os
import random
import time
from functools import partial
from pathlib import Path

import pytest

from tests.e2e.harness import (
    Instance,
    assert_hub_matches_nodes,
    bulk_create_process,
    cluster,
    enroll,
    published,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FULL = os.environ.get("NCC_FAULTS_FULL") == "1"
PER_NODE = 50_000 if FULL else 5_000  # 20 pages of 500 a node: room for the kills
KILLS = 20 if FULL else 3
#: Longest random wait between reaching a kill's point of the feed and the kill.
MAX_KILL_DELAY_S = 0.6
SEED = int(os.environ.get("NCC_E2E_SEED", "0")) or random.randrange(1 << 30)


def ingested(hub: Instance) -> int:
    return int(hub.query("SELECT COALESCE(SUM(cursor), 0) FROM hub_pull_state")[0][0])


def write_between_kills(node: Instance, rng: random.Random) -> None:
    """A few updates and withdrawals of random bulk records (the hub may not have them yet)."""
    editor = node.token("editor")
    rows = node.query("SELECT id, version, envelope FROM records WHERE deleted = ? ORDER BY id", (False,))
    for rid, version, text in rng.sample(rows, 6):
        if rng.random() < 0.5:
            payload = json.loads(text)["payload"]
            payload["description"] += " (updated)"
            r = node.put(f"/api/v1/records/{rid}", {"payload": payload, "version": version}, editor)
        else:
            r = node.delete(f"/api/v1/records/{rid}?reason=withdrawn", editor)
        assert r.status == 200, r.body


def test_hub_killed_during_ingest_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    print(f"crash test seed {SEED} (NCC_E2E_SEED={SEED} repeats it), {KILLS} kills over {2 * PER_NODE} records")
    with cluster(tmp_path, "sqlite") as c:
        # pages of 500: more commit points for a kill to fall between, and between them
        hub = c.add("hub", "hub", env={"NCC_PULL_INTERVAL_S": "1", "NCC_PULL_BATCH": "500"})
        nodes = [c.add("de", "node", "DE"), c.add("fr", "node", "FR")]
        hub.start()
        for node in nodes:
            node.start()
            enroll(hub, node)
            node.stop()
        fill = [bulk_create_process(node.data_dir, PER_NODE, node.country) for node in nodes]
        assert [p.wait(timeout=max(180, 180 * PER_NODE // 10_000)) for p in fill] == [0, 0]
        heads = sum(int(n.query("SELECT MAX(seq) FROM feed")[0][0]) for n in nodes)
        for node in nodes:
            node.start()  # its notifier tells the hub at once; the scheduler pulls every second anyway

        kills = 0
        while kills < KILLS:
            # the kills are spread over the whole ingest: kill k at a random point of its 1/(KILLS+1)
            # slice of the feed, then at a random instant of the pipeline (a page being fetched,
            # checked in the worker, written, or its transaction committing)
            target = heads * (kills + rng.random()) / (KILLS + 1)
            wait_until(partial(lambda t: ingested(hub) >= t, target), 120,
                       f"the hub to ingest up to {target:.0f}", interval=0.05)
            time.sleep(rng.uniform(0.0, MAX_KILL_DELAY_S))
            if ingested(hub) >= heads:
                break  # finished before this kill could land
            hub.kill()
            kills += 1
            print(f"kill {kills}: hub had ingested up to {ingested(hub)} of {heads} feed positions")
            for node in nodes:
                write_between_kills(node, rng)
            heads = sum(int(n.query("SELECT MAX(seq) FROM feed")[0][0]) for n in nodes)
            hub.start()
        assert kills >= KILLS, f"only {kills} kills landed during ingest (seed {SEED})"

        done = hub.ncc("sync", timeout=max(180, 180 * PER_NODE // 10_000))
        assert done.returncode == 0, done.stderr
        assert hub.query("SELECT COUNT(*) FROM hub_quarantine")[0][0] == 0

        assert_hub_matches_nodes(hub, nodes)
        assert [len(published(node)) for node in nodes] == [PER_NODE, PER_NODE]
