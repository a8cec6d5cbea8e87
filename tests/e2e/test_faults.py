"""Fault suite (issue 7): real ``ncc`` processes under faults, each ending with an exact comparison of
the hub with its nodes (:func:`tests.e2e.harness.assert_hub_matches_nodes`).

* **Unreachable, slow, broken nodes.** The hub reaches the node only through a
  :class:`~tests.e2e.faultproxy.FaultProxy` (the node enrolled with the proxy's URL). On command the
  proxy resets the connection, answers later than the pull timeout, trickles, or answers with
  garbage, a non-JSON 200, a page cut mid-line or without its trailer, a body shorter than
  announced, a reset mid-body. The fault is set for every feed request after the hub's cursor
  except the first, so one page commits and the next one fails while the first is being written.
  Each time: the pull fails with the reason in the node's ``last_error``, the node becomes
  ``unreachable``, the hub holds exactly the node's feed up to its cursor (no half page, cursor at a
  page boundary, nothing quarantined), and once the proxy is transparent the hub catches up by itself.
* **Hub down while nodes write.** The nodes reach the hub through a proxy too. With the hub process
  stopped, and then with the hub running but unreachable for the nodes, the nodes create, update,
  withdraw and nationalise records; their notifications fail and are retried. The hub's scheduled
  pull interval is an hour, so in the second phase only the retried notifications can bring the
  records over.
* **PostgreSQL restarted under the hub** mid-ingest: the hub process survives (readiness 503 during
  the outage, 200 after), resumes and ends exact.
* The hub SIGKILLed mid-ingest is tests/e2e/test_crash.py (full mode: ``NCC_FAULTS_FULL=1``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PG_ADMIN_URL, pg_problem
from tests.e2e.faultproxy import FaultProxy
from tests.e2e.harness import (
    Cluster,
    Instance,
    assert_hub_holds_feed_prefix,
    assert_hub_matches_nodes,
    bulk_create,
    caught_up,
    cluster,
    enroll,
    feed_head,
    free_port,
    http,
    hub_cursor,
    organisation,
    wait_until,
)

pytestmark = pytest.mark.e2e

#: The hub's pull timeout (a whole page request) in the proxied federation; the slow faults stay
#: silent for 4× as long.
PULL_TIMEOUT_S = 3
#: Records per feed page in the proxied federation: a fault batch spans three pages.
PAGE = 25
CATCH_UP_S = 30.0


# -- writing on a node -----------------------------------------------------------------------------


def create(node: Instance, label: str, visibility: str = "public") -> dict[str, Any]:
    payload = organisation(node.country, f"{label} {node.country} Org", f"Record {label}.")
    r = node.post("/api/v1/records", {"type": "organisation", "visibility": visibility, "payload": payload},
                  node.token("editor"))
    assert r.status == 201, r.body
    return dict(r.json())


def update(node: Instance, env: dict[str, Any], visibility: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"payload": {**env["payload"], "description": env["payload"]["description"] + " +"},
                            "version": env["version"]}
    if visibility:
        body["visibility"] = visibility
    r = node.put(f"/api/v1/records/{env['id']}", body, node.token("editor"))
    assert r.status == 200, r.body
    return dict(r.json())


def withdraw(node: Instance, env: dict[str, Any]) -> None:
    r = node.delete(f"/api/v1/records/{env['id']}?reason=withdrawn", node.token("editor"))
    assert r.status == 200, r.body


def write_mix(node: Instance, label: str, creates: int) -> None:
    """``creates`` public records, then one of each other kind of change: an update of a public
    record, a network record, a national one, a public record made national (tombstone + national
    version) and a withdrawal."""
    made = [create(node, f"{label}-{i}") for i in range(creates)]
    update(node, made[0])
    create(node, f"{label}-network", "network")
    create(node, f"{label}-national", "national")
    update(node, made[1], visibility="national")
    withdraw(node, made[2])


# -- the proxied federation: one hub, one node reached through a FaultProxy ------------------------------


@dataclass
class Proxied:
    cluster: Cluster
    hub: Instance
    node: Instance
    proxy: FaultProxy
    rounds: int = 0

    def nodes_row(self) -> dict[str, Any]:
        rows = self.hub.get("/api/v1/nodes").json()
        return dict(next(r for r in rows if r["country"] == self.node.country))

    def sync(self) -> dict[str, Any]:
        """``POST /api/v1/sync`` as the hub admin: the node's pull result, once the pull finished."""
        r = self.hub.post("/api/v1/sync", token=self.hub.token("admin"))
        assert r.status == 200, r.body
        return dict(next(x for x in r.json()["results"] if x["country"] == self.node.country))


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    root = tmp_path_factory.mktemp("faults")
    proxy_port = free_port()
    with cluster(root, "sqlite") as c:
        hub = c.add("hub", "hub", env={"NCC_PULL_TIMEOUT_S": str(PULL_TIMEOUT_S), "NCC_PULL_BATCH": str(PAGE)})
        # the node's public URL is the proxy's: enrollment registers it, the hub knows no other way in
        node = c.add("de", "node", "DE", env={"NCC_URL": f"http://127.0.0.1:{proxy_port}"})
        with FaultProxy(node.port, proxy_port) as proxy:
            hub.start()
            node.start()
            enroll(hub, node)
            fed = Proxied(c, hub, node, proxy)
            write_mix(node, "base", PAGE)
            wait_until(lambda: caught_up(hub, [node]), CATCH_UP_S, "the hub to pull the node's first records")
            yield fed


#: The pull's error code (``last_error`` at GET /api/v1/nodes: a code of node/services/fedclient.py
#: ERROR_CODES, never the node's bytes), per fault; alternatives separated by ``|``.
EXPECTED_ERROR = {
    "refuse": "disconnected|connect_failed",
    "stall": "timeout",
    "stall_mid_body": "timeout",
    "trickle": "timeout",
    "garbage": "bad_http",
    "not_json": "not_ndjson (HTTP 200)",
    "cut_mid_line": "bad_frame",
    "no_trailer": "bad_frame",
    "short_body": "body_cut (HTTP 200)",
    "reset": "body_cut (HTTP 200)|connect_failed|disconnected",
}


def fail_then_recover(fed: Proxied, mode: str, delay_s: float = 30.0) -> None:
    """Write while the node is unreachable, let one page through and fault the next, check what the
    hub kept, make the proxy transparent, and wait for the hub to catch up on its own."""
    hub, node, proxy = fed.hub, fed.node, fed.proxy
    fed.rounds += 1
    proxy.transparent()  # (in case an earlier case failed half way)
    wait_until(lambda: caught_up(hub, [node]), CATCH_UP_S, "the hub to be caught up before the fault")
    start = hub_cursor(hub, node.country)
    proxy.set("refuse")  # while the batch is written, so that it is all there for the next pull
    write_mix(node, f"{mode}-{fed.rounds}", 2 * PAGE + 5)
    assert hub_cursor(hub, node.country) == start

    faulted = proxy.faulted()
    proxy.set(mode, after_gt=start, delay_s=delay_s)
    t0 = time.monotonic()
    first = fed.sync()  # page 1 (after == start) passes, page 2 gets the fault
    elapsed = time.monotonic() - t0
    second = fed.sync()  # starts at page 2: fails at once
    assert not first["ok"] and not second["ok"], (first, second)
    assert proxy.faulted() >= faulted + 2  # both failed on the fault, not on something else
    assert second["pages"] == 0
    if mode.startswith(("stall", "trickle")):
        assert elapsed < PULL_TIMEOUT_S * 3 + 5, f"a {mode} node held the pull for {elapsed:.1f}s"

    row = fed.nodes_row()
    print(f"{mode}: first pull {elapsed:.1f}s, {first['pages']} page(s); last_error: {row['last_error']}")
    assert row["status"] == "unreachable" and row["consecutive_failures"] >= 2, row
    words = EXPECTED_ERROR[mode].split("|")
    assert any(w in (row["last_error"] or "") for w in words), (mode, row["last_error"])
    # exactly the first page was committed, nothing of the faulted one
    seqs = sorted(int(s) for (s,) in node.query("SELECT seq FROM feed WHERE seq > ?", (start,)))
    assert assert_hub_holds_feed_prefix(hub, node) == seqs[PAGE - 1]
    assert hub.query("SELECT COUNT(*) FROM hub_quarantine")[0][0] == 0

    proxy.transparent()
    wait_until(lambda: caught_up(hub, [node]) and fed.nodes_row()["status"] == "ok", CATCH_UP_S,
               f"the hub to catch up after {mode}", interval=0.5)
    assert fed.nodes_row()["consecutive_failures"] == 0
    assert_hub_matches_nodes(hub, [node])
    assert hub.query("SELECT COUNT(*) FROM hub_quarantine")[0][0] == 0


@pytest.mark.serial  # asserts a wall-clock bound
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["stall", "stall_mid_body", "trickle"])
def test_slow_node_fails_the_pull_at_the_timeout_and_catches_up(proxied: Proxied, mode: str) -> None:
    """Slower than the pull timeout: silent before the answer, silent mid-body, or trickling bytes
    (never silent for a whole read timeout, but far longer than the pull timeout in total)."""
    fail_then_recover(proxied, mode, delay_s=0.5 if mode == "trickle" else PULL_TIMEOUT_S * 4)


@pytest.mark.parametrize("mode", ["refuse", "garbage", "not_json", "cut_mid_line", "no_trailer", "short_body",
                                  "reset"])
def test_broken_answer_fails_the_pull_stores_nothing_partial_and_recovers(proxied: Proxied, mode: str) -> None:
    fail_then_recover(proxied, mode)


# -- the hub down while the nodes write ---------------------------------------------------------------


def notify_failures(node: Instance) -> float:
    text = node.get("/metrics").body.decode()
    for line in text.splitlines():
        if line.startswith("ncc_notify_failures_total "):
            return float(line.split()[1])
    return 0.0


def notified(node: Instance) -> int:
    rows = node.query("SELECT value FROM node_state WHERE key = 'notified_seq'")
    return int(json.loads(rows[0][0])) if rows else 0


@pytest.mark.slow
def test_hub_down_while_nodes_write_every_notification_is_retried(tmp_path: Path) -> None:
    with cluster(tmp_path, "sqlite") as c, contextlib.ExitStack() as stack:
        # scheduled pulls once an hour: apart from the one at start, only notifications trigger pulls
        hub = c.add("hub", "hub", env={"NCC_PULL_INTERVAL_S": "3600"})
        nodes = [c.add("de", "node", "DE"), c.add("fr", "node", "FR")]
        proxy = stack.enter_context(FaultProxy(hub.port))  # the nodes' way to the hub
        hub.start()
        for node in nodes:
            node.start()
            enroll(hub, node, hub_url=proxy.url)
            write_mix(node, "before", 5)
        wait_until(lambda: caught_up(hub, nodes), CATCH_UP_S, "the notified hub to pull the first records")
        assert_hub_matches_nodes(hub, nodes)

        # 1. the hub process is down
        hub.stop()
        for node in nodes:
            write_mix(node, "hub-stopped", 10)
        wait_for_retries(nodes)
        hub.start()  # pulls every node once at start, and takes the retried notifications
        started = time.monotonic()
        wait_until(lambda: caught_up(hub, nodes), CATCH_UP_S, "the restarted hub to catch up")
        for node in nodes:
            wait_until(partial(lambda n: notified(n) == feed_head(n), node), 20,
                       f"{node.country}'s pending notification to be taken")
        assert_hub_matches_nodes(hub, nodes)

        # 2. the hub runs but the nodes cannot reach it: nothing pulls until their retries get through
        time.sleep(max(0.0, started + 3 - time.monotonic()))  # (the scheduler's pull at start, +0.5 s, is over)
        proxy.set("refuse")
        cursors = {n.country: hub_cursor(hub, n.country) for n in nodes}
        for node in nodes:
            write_mix(node, "hub-unreachable", 10)
        wait_for_retries(nodes)
        assert {n.country: hub_cursor(hub, n.country) for n in nodes} == cursors  # no pull meanwhile
        proxy.transparent()
        wait_until(lambda: caught_up(hub, nodes), CATCH_UP_S, "the retried notifications to bring the records")
        for node in nodes:
            assert notified(node) == feed_head(node)
        assert_hub_matches_nodes(hub, nodes)


def wait_for_retries(nodes: list[Instance]) -> None:
    """Each node's notification fails again after its last write: a retry, not a write, sent it."""
    time.sleep(0.5)  # a notification woken by the last write goes 0.2 s after it (and fails at once)
    failures = {n.country: notify_failures(n) for n in nodes}
    for node in nodes:
        assert notified(node) < feed_head(node)
        wait_until(partial(lambda n: notify_failures(n) > failures[n.country], node), 20,
                   f"{node.country} to retry its notification")


# -- PostgreSQL restarted under the hub -----------------------------------------------------------------

PG_CLUSTER = ("15", "main")


def pg_ready() -> bool:
    from tests.conftest import _pg_reachable  # (pg_problem() caches its first answer)

    return _pg_reachable() is None


def pg_ctlcluster_usable() -> bool:
    """Whether ``pg_ctlcluster`` controls the server the tests use (same port, online, and we may)."""
    if shutil.which("pg_ctlcluster") is None or shutil.which("pg_lsclusters") is None:
        return False
    port = str(urllib.parse.urlsplit(PG_ADMIN_URL).port or 5432)
    host = urllib.parse.urlsplit(PG_ADMIN_URL).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        return False
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False).stdout
    return any(line.split()[:4] == [*PG_CLUSTER, port, "online"] for line in out.splitlines())


@contextlib.contextmanager
def postgres_down(dbs: list[str]) -> Iterator[str]:
    """PostgreSQL unavailable for the body of the ``with``; ready again (waited for) afterwards.

    With ``pg_ctlcluster`` (this machine kind, CI): the server is stopped and started. Without it:
    the databases ``dbs`` refuse connections and their backends are terminated — the client side of
    a restart. Yields which of the two it did.
    """
    if pg_ctlcluster_usable():
        from tests.conftest import pg_exclusive

        # no other xdist worker has a live test database while the server is down (they wait)
        with pg_exclusive():
            subprocess.run(["pg_ctlcluster", *PG_CLUSTER, "stop", "-m", "fast"], check=True, timeout=60)
            try:
                yield "pg_ctlcluster stop/start"
            finally:
                subprocess.run(["pg_ctlcluster", *PG_CLUSTER, "start"], check=True, timeout=60)
                wait_until(pg_ready, 60, "PostgreSQL to accept connections again", interval=0.5)
        return
    from tests.conftest import _admin_exec

    names = [db.rsplit("/", 1)[1].split("?", 1)[0] for db in dbs]
    try:
        for name in names:
            _admin_exec(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            _admin_exec(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        yield "ALLOW_CONNECTIONS false + pg_terminate_backend"
    finally:
        for name in names:
            _admin_exec(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def logged_errors(inst: Instance) -> list[str]:
    """The ERROR lines of an instance's log (JSON lines): message and the exception's last line."""
    found = []
    for line in inst.stderr_tail(lines=1_000_000).splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("level") == "ERROR":
                exc = (entry.get("exc") or "").strip().splitlines()
                found.append(f"{entry.get('ts')} {entry.get('msg')} {exc[-1] if exc else ''}")
    return found


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_restarted_under_the_hub_mid_ingest(tmp_path: Path) -> None:
    if pg_problem():
        pytest.skip(str(pg_problem()))
    with cluster(tmp_path, "postgres") as c:
        hub = c.add("hub", "hub", env={"NCC_PULL_BATCH": "200", "NCC_PULL_INTERVAL_S": "1"})
        node = c.add("de", "node", "DE")
        hub.start()
        node.start()
        enroll(hub, node)
        node.stop()
        bulk_create(node.data_dir, 6000, "DE")
        node.start()
        head = feed_head(node)
        pid = hub.proc.pid if hub.proc else 0
        wait_until(lambda: hub_cursor(hub, "DE") > 0, 60, "ingest to start", interval=0.05)
        at_outage = hub_cursor(hub, "DE")
        assert at_outage < head, "ingest finished before the outage could land"

        # tokens are made in the database: before the outage
        hub.token("admin")
        node.token("editor")
        with postgres_down([hub.db, node.db]) as how:
            r = wait_until(lambda: (resp := hub.get("/readyz")).status == 503 and resp, 30,
                           f"the hub's /readyz to say 503 ({how})", interval=0.2)
            assert r.json()["checks"]["database"].startswith("error")
            assert hub.get("/healthz").status == 200
            time.sleep(2)  # the scheduler and the notifier keep trying meanwhile
            # every request that needs the database: 503 unavailable (retry), not a 500
            for inst, method, path, token in [
                (hub, "GET", "/api/v1/nodes", None), (hub, "GET", "/api/v1/search?q=bulk", None),
                (hub, "POST", "/api/v1/sync", hub.token("admin")), (node, "GET", "/api/v1/records", None),
            ]:
                r = http(method, inst.url + path, token)
                assert (r.status, r.code) == (503, "unavailable"), (inst.name, path, r.status, r.body[:300])
                assert r.headers.get("Retry-After"), (inst.name, path)
            r = node.post("/api/v1/records", {"type": "organisation", "visibility": "public",
                                              "payload": organisation("DE", "Outage Org", "Written in the outage")},
                          node.token("editor"))
            assert (r.status, r.code) == (503, "unavailable"), r.body[:300]
            assert hub.proc is not None and hub.proc.poll() is None
        print(f"PostgreSQL outage by {how} at cursor {at_outage} of {head}")

        wait_until(lambda: hub.get("/readyz").status == 200, 30, "the hub's /readyz to say 200 again")
        create(node, "after-outage")
        wait_until(lambda: caught_up(hub, [node]), 120, "the hub to finish ingesting after the outage",
                   interval=0.5)
        assert hub.proc is not None and hub.proc.poll() is None and hub.proc.pid == pid, "the hub was restarted"
        assert node.proc is not None and node.proc.poll() is None, "the node exited"
        assert hub.query("SELECT COUNT(*) FROM hub_quarantine")[0][0] == 0
        assert_hub_matches_nodes(hub, [node])
        for inst in (hub, node):  # no request or job ended in an unhandled error (a traceback logged)
            assert not logged_errors(inst), f"{inst.name} logged errors: {logged_errors(inst)}"
