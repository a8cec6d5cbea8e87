"""A node that was down is caught up within seconds of coming back (README, issue 19), real processes.

Before the fix a node that came back stayed ``unreachable`` at the hub until the hub's next scheduled
pull or back-off (about 4½ minutes in the walk-through): failures recorded by ``ncc sync`` were
unknown to the serving hub's in-memory back-off, and a node that started told the hub nothing when it
had not written. Here the hub's schedule and back-off are an hour away, so only the node's
announcement at start can bring it back in time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.harness import cluster, enroll, organisation, wait_until

pytestmark = pytest.mark.e2e


def node_row(hub: object, country: str) -> dict[str, object]:
    rows = hub.get("/api/v1/nodes").json()  # type: ignore[attr-defined]
    return next(r for r in rows if r["country"] == country)


def test_a_restarted_node_is_ok_at_the_hub_within_seconds(tmp_path: Path) -> None:
    hour = {"NCC_PULL_INTERVAL_S": "3600", "NCC_BACKOFF_MIN_S": "3600", "NCC_BACKOFF_MAX_S": "3600",
            "NCC_UNREACHABLE_AFTER": "3", "NCC_LOG_LEVEL": "INFO"}
    with cluster(tmp_path, "sqlite") as c:
        hub = c.add("hub", "hub", env=hour)
        de = c.add("de", "node", "DE", env={"NCC_NOTIFY_RETRY_S": "3600"})  # one notification, at start
        hub.start()
        de.start()
        enroll(hub, de)
        r = de.post("/api/v1/records", {"type": "organisation", "visibility": "public",
                                        "payload": organisation("DE", "Recovery GmbH", "Comes back.")},
                    de.token("editor"))
        assert r.status == 201, r.body
        wait_until(lambda: node_row(hub, "DE")["status"] == "ok" and node_row(hub, "DE")["lag"] == 0, 20,
                   "DE pulled")

        de.stop()
        for _ in range(3):  # unreachable_after: failures ncc sync records count at the serving hub
            failed = hub.ncc("sync", "--country", "DE", check=False)
            assert failed.returncode == 1 and "DE: connect_failed" in failed.stderr
        row = node_row(hub, "DE")
        assert (row["status"], row["reason"], row["last_error"]) == ("unreachable", "connect_failed", "connect_failed")
        state = hub.query("SELECT consecutive_failures, retry_at FROM hub_pull_state WHERE country = 'DE'")
        # (≥: the serving hub may have failed a pull of its own meanwhile, a notification's trailing one)
        assert state[0][0] >= 3 and state[0][1] > time.time() + 600  # the shared back-off: an hour away

        # what an operator sees: the table, the JSON lines for scripts, the portal
        table = hub.ncc("hub", "nodes").stdout.splitlines()
        assert table[0].split()[:3] == ["COUNTRY", "STATUS", "MODE"] and "LAST ERROR" in table[0]
        assert table[1].split()[:2] == ["DE", "unreachable"] and table[1].endswith("connect_failed")
        line = json.loads(hub.ncc("hub", "nodes", "--json").stdout.splitlines()[0])
        assert line["country"] == "DE" and line["keys"][0]["kid"].startswith("DE:")  # the directory entry
        assert (line["sync"]["status"], line["sync"]["reason"]) == ("unreachable", "connect_failed")
        page = hub.get("/status").body.decode()
        assert "unreachable" in page and "Last error: <code>connect_failed</code>" in page

        started = time.monotonic()
        de.start()
        wait_until(lambda: node_row(hub, "DE")["status"] == "ok", 10, "DE ok again after its restart")
        assert time.monotonic() - started < 10
        row = node_row(hub, "DE")
        assert (row["consecutive_failures"], row["reason"], row["last_error"]) == (0, None, None)

        # the hub's log says so: one line per pull, and the return of the node
        lines = [json.loads(x) for x in hub.stderr_tail(10_000).splitlines() if x.startswith("{")]
        pulls = [x for x in lines if x.get("msg") == "pull" and x.get("node") == "DE"]
        assert pulls and all(x["level"] == "INFO" and isinstance(x["duration_ms"], int) for x in pulls)
        assert pulls[-1]["outcome"] == "ok" and pulls[-1]["error"] is None
        assert any(x.get("msg") == "node reachable again" and x.get("node") == "DE" for x in lines)
