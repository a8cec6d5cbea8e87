"""Two hub processes on one PostgreSQL database: a node's pull is held by one process at a time.

DESIGN §5: several hub processes may share one PostgreSQL; the database lease on the node's pull
state makes them take turns. Both processes here pull the same node on their schedules, on the
node's notifications and on an admin's ``POST /api/v1/sync`` sent to both at once, while a few
thousand records stream in. Two pulls of one node at the same time would show up as a failed pull
(the second one's cursor compare-and-set fails, or it loses the lease); none may, and the hub must
end with exactly the node's published set.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from federation.envelope import Envelope
from tests.conftest import pg_problem
from tests.e2e.harness import bulk_create_process, cluster, enroll, free_port, http

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

RECORDS = 3000


def test_two_hub_processes_take_turns_on_a_node(tmp_path: Path) -> None:
    if pg_problem():
        pytest.skip(str(pg_problem()))
    with cluster(tmp_path, "postgres") as c:
        hub = c.add("hub", "hub", env={"NCC_PULL_INTERVAL_S": "1", "NCC_PULL_BATCH": "200"})
        de = c.add("de", "node", "DE")
        hub.start()
        second_port = free_port()
        second = hub.spawn(second_port)
        hub.extra.append(second)
        second_url = f"http://127.0.0.1:{second_port}"
        hub.wait_healthy(second_url, second)
        de.start()
        enroll(hub, de)
        de.stop()
        assert bulk_create_process(de.data_dir, RECORDS, "DE").wait(timeout=120) == 0
        admin = hub.token("admin")

        owners: set[str] = set()
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                for (owner,) in hub.query("SELECT lease_owner FROM hub_pull_state WHERE country = 'DE'"):
                    if owner:
                        owners.add(owner)
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        answers: dict[str, object] = {}

        def sync(url: str) -> None:
            answers[url] = http("POST", f"{url}/api/v1/sync", admin, timeout=120)

        # The schedulers pulled (and failed: connection refused) while the node was stopped for the
        # bulk load; only what the hub processes log from the node's start on is about taking turns.
        logs_before = {p: p.stat().st_size for p in tmp_path.glob("hub-*.err")}
        try:
            de.start()  # notifies the first hub process; both schedulers pull every second
            callers = [threading.Thread(target=sync, args=(u,)) for u in (hub.url, second_url)]
            for t in callers:
                t.start()
            for t in callers:
                t.join(timeout=150)
        finally:
            sampling.set()
            sampler.join()

        for url, answer in answers.items():
            assert answer.status == 200, (url, answer.body)  # type: ignore[attr-defined]
            (result,) = answer.json()["results"]  # type: ignore[attr-defined]
            assert result["ok"] and result["error"] is None and result["skipped"] is None, result
        assert owners, "the lease was seen held while the node was pulled"

        logs = "".join(p.read_bytes()[logs_before.get(p, 0):].decode() for p in tmp_path.glob("hub-*.err"))
        assert "pull failed" not in logs and "CursorMoved" not in logs and "lost the pull lease" not in logs

        want = {}
        for rid, text in de.query("SELECT record_id, envelope FROM feed"):
            env = Envelope.from_dict(json.loads(text))
            want[rid] = (env.version, env.digest())
        have = {rid: (v, d) for rid, v, d in hub.query("SELECT id, version, digest FROM hub_records")}
        assert len(want) == RECORDS and have == want
        (cursor, head), = hub.query("SELECT cursor, head FROM hub_pull_state WHERE country = 'DE'")
        assert cursor == head == RECORDS
