"""The hub's pull schedule, as a running hub process does it (real processes).

A hub that starts pulls each replicating node once at once, then every ``pull_interval_s``; a
node's notification brings one more pull. Before the fix the first scheduled run was also due at
start, so every node was pulled twice whenever the hub started.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.harness import (
    Instance,
    assert_hub_matches_nodes,
    caught_up,
    cluster,
    enroll,
    organisation,
    wait_until,
)

pytestmark = pytest.mark.e2e


def pulls(hub: Instance, country: str) -> int:
    """``ncc_pulls_total`` of one node, all results together."""
    total = 0.0
    for line in hub.get("/metrics").body.decode().splitlines():
        if line.startswith("ncc_pulls_total{") and f'node="{country}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def test_a_starting_hub_pulls_each_node_once_then_on_notification(tmp_path: Path) -> None:
    with cluster(tmp_path, "sqlite") as c:
        hub = c.add("hub", "hub", env={"NCC_PULL_INTERVAL_S": "3600"})
        # A node that saw its enrollment before its first notification announces itself ("I am up").
        # When that announcement reached the restarted hub before the scheduler's first round, the hub
        # pulled DE for it and then again at start: two pulls (fixed: `Puller.trigger_first`). When it
        # fell in the hub's stop, the node's retry a second later brought a second pull too — a node's
        # notification, not the schedule: the node retries only after an hour here.
        de = c.add("de", "node", "DE", env={"NCC_NOTIFY_RETRY_S": "3600"})
        hub.start()
        de.start()
        enroll(hub, de)
        hub.stop()
        hub.start()
        wait_until(lambda: pulls(hub, "DE") >= 1, 20, "the hub's first pull of DE")
        time.sleep(3)  # a second pull at start came within a second of the first
        assert pulls(hub, "DE") == 1

        r = de.post("/api/v1/records", {"type": "organisation", "visibility": "public",
                                        "payload": organisation("DE", "Scheduled Org", "About the schedule.")},
                    de.token("editor"))
        assert r.status == 201, r.body
        wait_until(lambda: hub.get(f"/api/v1/records/{r.json()['id']}").status == 200, 20,
                   "the notified pull")
        assert pulls(hub, "DE") == 2


def test_ncc_import_on_a_serving_node_tells_the_hub_at_once(tmp_path: Path) -> None:
    """Regression (README walk-through): records imported with ``ncc import`` while the node served
    reached the hub only at the node's next notification retry (``notify_retry_s``, 30 s by default)
    or the hub's schedule: the import process did not notify. Both are an hour away here."""
    with cluster(tmp_path, "sqlite") as c:
        hub = c.add("hub", "hub", env={"NCC_PULL_INTERVAL_S": "3600"})
        de = c.add("de", "node", "DE", env={"NCC_NOTIFY_RETRY_S": "3600"})
        hub.start()
        de.start()
        enroll(hub, de)
        wait_until(lambda: pulls(hub, "DE") >= 1, 20, "the hub's first pull of DE")
        rows = [organisation("DE", f"Imported {i} GmbH", f"Imported organisation {i}.") for i in range(3)]
        path = tmp_path / "orgs.json"
        path.write_text(json.dumps(rows), encoding="utf-8")
        done = de.ncc("import", "--type", "organisation", str(path))
        assert done.stdout.splitlines()[-1] == "imported 3, rejected 0"
        wait_until(lambda: caught_up(hub, [de]), 10, "the imported records at the hub")
        assert_hub_matches_nodes(hub, [de])
