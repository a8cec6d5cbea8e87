"""The hub survives a hostile node (issue 11, DESIGN §10), with real processes throughout.

* the **hub** is a real ``ncc serve`` (tests/e2e/harness.py) with ``allow_private_node_urls = true`` (its
  malicious node listens on loopback), and a second hub with the default ``false`` for the address cases;
* the **malicious node** is its own process (``tests/adversarial/hostile_node.py``), enrolled through the
  real enroll endpoint with a real key, that it signs its records with;
* an **internal target** (a loopback HTTP server standing for a cloud metadata service or an admin port)
  records every request it gets.

Every case asserts the exact outcome: the pull (or live answer) fails with its code, nothing of the
node's or the internal target's answer is served (``GET /api/v1/nodes``, the sync answer, search), no
request reached the internal target, search answers stay 2xx, and — measured by a monitor thread all
along — the hub's process tree (VmRSS summed over the hub and its workers) stays under 300 MB and
``/healthz`` answers within 1 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from federation.keys import b64url_encode, generate_private_key, kid_for, public_key_raw
from federation.timefmt import format_timestamp, parse_timestamp
from federation.tokens import enrollment_proof, peek_enrollment_token
from node.context import utc_now
from tests.adversarial.hostile_node import SECRET
from tests.e2e.harness import Instance, Response, base_env, cluster, free_port, http, wait_until
from tests.integration.support import MINIMAL_ORG

pytestmark = [pytest.mark.e2e]

RSS_LIMIT_MB = 300
HEALTHZ_LIMIT_S = 1.0
INTERNAL_SECRET = "METADATA-SECRET-7a1d"
HUB_ENV = {
    "NCC_PULL_TIMEOUT_S": "3",
    "NCC_PULL_INTERVAL_S": "86400",  # only the test pulls
    "NCC_QUARANTINE_MAX_ROWS": "25",
    "NCC_LIVE_RATE_PER_MIN": "1000",
}


# -- the internal target -----------------------------------------------------------------------------


class Internal(ThreadingHTTPServer):
    hits: list[str]


class _InternalHandler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        body = json.dumps({"secret": INTERNAL_SECRET}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


# -- the hub's health, measured all along ------------------------------------------------------------


def tree_rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` and all its descendants, summed (MB)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


@dataclass
class Monitor:
    """Samples the hub tree's RSS and ``/healthz`` latency every 50 ms while a case runs."""

    hub: Instance
    max_rss_mb: float = 0.0
    max_healthz_s: float = 0.0
    failures: list[str] = field(default_factory=list)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        assert self.hub.proc is not None
        while not self._stop.is_set():
            self.max_rss_mb = max(self.max_rss_mb, tree_rss_mb(self.hub.proc.pid))
            t0 = time.monotonic()
            try:
                status = http("GET", f"{self.hub.url}/healthz", timeout=5).status
            except OSError as exc:
                status = 0
                self.failures.append(repr(exc))
            self.max_healthz_s = max(self.max_healthz_s, time.monotonic() - t0)
            if status != 200:
                self.failures.append(f"healthz {status}")
            self.samples += 1
            self._stop.wait(0.05)

    @contextlib.contextmanager
    def watching(self) -> Iterator[Monitor]:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(10)
        print(f"hub tree max RSS {self.max_rss_mb:.0f} MB, /healthz max {self.max_healthz_s * 1000:.0f} ms"
              f" over {self.samples} samples")
        assert not self.failures, self.failures
        assert self.max_rss_mb < RSS_LIMIT_MB, f"hub tree RSS {self.max_rss_mb:.0f} MB"
        assert self.max_healthz_s < HEALTHZ_LIMIT_S, f"/healthz took {self.max_healthz_s:.2f} s"


# -- the rig -----------------------------------------------------------------------------------------


@dataclass
class Rig:
    hub: Instance  # allow_private_node_urls = true
    strict_hub: Instance  # allow_private_node_urls = false (default)
    node_url: str
    node_proc: subprocess.Popen[bytes]
    internal: Internal
    key_pem: Path
    kid: str

    @property
    def internal_url(self) -> str:
        return f"http://127.0.0.1:{self.internal.server_address[1]}/latest/meta-data/iam"

    def control(self, **state: Any) -> dict[str, Any]:
        r = http("POST", f"{self.node_url}/_control", body=state, timeout=60)
        assert r.status == 200, r.body
        return dict(r.json())

    def sign(self, **changes: Any) -> dict[str, Any]:
        fields = {"ncc": 1, "id": f"urn:ncc:DE:organisation:{uuid.uuid4()}", "type": "organisation",
                  "schema": "organisation/1", "origin": "DE", "version": 1,
                  "issued_at": format_timestamp(utc_now()), "visibility": "public", "deleted": False,
                  "payload": {**MINIMAL_ORG, "country": "DE", "legal_name": f"Hostile Lab {uuid.uuid4().hex[:6]}"}}
        fields.update(changes)
        r = http("POST", f"{self.node_url}/_sign", body=fields)
        assert r.status == 200, r.body
        return dict(r.json())

    def node_hits(self) -> dict[str, int]:
        return dict(http("GET", f"{self.node_url}/_hits").json())

    def sync(self, hub: Instance | None = None) -> dict[str, Any]:
        hub = hub or self.hub
        r = hub.post("/api/v1/sync", {"country": "DE"}, hub.token("admin"))
        assert r.status == 200, r.body
        assert INTERNAL_SECRET not in r.body.decode() and SECRET not in r.body.decode()
        result: dict[str, Any] = r.json()["results"][0]
        return result

    def pull(self) -> None:
        """Pull DE until the hub has taken everything the node serves. (The hub also retries a failed
        pull in the background, so a retry may take a page first: outcomes are read from the database,
        not from one pull's counts.)"""
        result = self.sync()
        assert result["ok"], result

    def held_version(self, rid: str) -> int | None:
        rows = self.hub.query("SELECT version FROM hub_records WHERE id = ? AND quarantined = FALSE", (rid,))
        return int(rows[0][0]) if rows else None

    def quarantine_codes(self, rid: str) -> list[str]:
        return [r[0] for r in self.hub.query("SELECT code FROM hub_quarantine WHERE record_id = ? ORDER BY id",
                                             (rid,))]

    def nodes_row(self, hub: Instance | None = None) -> dict[str, Any]:
        r = (hub or self.hub).get("/api/v1/nodes")
        assert r.status == 200
        text = r.body.decode()
        assert INTERNAL_SECRET not in text and SECRET not in text and "<html>" not in text
        return next(n for n in r.json() if n["country"] == "DE")

    def search(self, **params: str) -> Response:
        query = "&".join(f"{k}={v}" for k, v in {"live": "true", "timeout_ms": "3000", **params}.items())
        r = self.hub.get(f"/api/v1/search?{query}", self.hub.token("analyst"))
        assert r.status == 200, (r.status, r.body[:300])
        assert INTERNAL_SECRET not in r.body.decode() and SECRET not in r.body.decode()
        return r


def enroll_direct(hub: Instance, key: Any, url: str) -> Response:
    """Enroll DE at ``hub`` with ``key`` and ``url`` through the real endpoint (a fresh invitation)."""
    token = hub.ncc("hub", "invite", "DE", "--replace").stdout.strip().splitlines()[-1]
    return post_enroll(hub, token, key, url)


def post_enroll(hub: Instance, token: str, key: Any, url: str) -> Response:
    jti = str(peek_enrollment_token(token)["jti"])
    body = {"token": token, "country": "DE", "url": url, "public_key": b64url_encode(public_key_raw(key)),
            "kid": kid_for("DE", public_key_raw(key)), "proof": enrollment_proof(key, jti),
            "not_before": format_timestamp(utc_now() - timedelta(days=400))}
    return hub.post("/federation/v1/enroll", body)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("hostile")
    internal = Internal(("127.0.0.1", 0), _InternalHandler)
    internal.hits = []
    threading.Thread(target=internal.serve_forever, daemon=True).start()
    key = generate_private_key()
    key_pem = root / "hostile.pem"
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    port = free_port()
    node_proc = subprocess.Popen(
        [sys.executable, "-m", "tests.adversarial.hostile_node", str(port), str(key_pem), "DE"],
        env=base_env({"PYTHONPATH": str(Path(__file__).resolve().parents[2])}), start_new_session=True,
        stdout=(root / "hostile.out").open("wb"), stderr=subprocess.STDOUT,
    )
    node_url = f"http://127.0.0.1:{port}"
    try:
        with cluster(root, "sqlite") as c:
            hub = c.add("hub", "hub", env=HUB_ENV)
            strict = c.add("strict", "hub", env={**HUB_ENV, "NCC_ALLOW_PRIVATE_NODE_URLS": "false"})
            hub.start()
            strict.start()
            wait_until(lambda: _up(node_url), 20, "the hostile node to listen")
            r = enroll_direct(hub, key, node_url)
            assert r.status == 200, r.body
            yield Rig(hub, strict, node_url, node_proc, internal, key_pem, kid_for("DE", public_key_raw(key)))
    finally:
        node_proc.terminate()
        try:
            node_proc.wait(10)
        except subprocess.TimeoutExpired:
            node_proc.kill()
            node_proc.wait()
        internal.shutdown()
        internal.server_close()


def _up(url: str) -> bool:
    try:
        return http("GET", f"{url}/healthz", timeout=1).status == 200
    except OSError:
        return False


@pytest.fixture
def monitor(rig: Rig) -> Iterator[Monitor]:
    with Monitor(rig.hub).watching() as m:
        yield m
    assert rig.internal.hits == [], rig.internal.hits  # no case may ever reach the internal target
    rig.control(feed="records", live="raw", body="{}")


# -- no pivoting -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_feed_redirect_is_a_failed_pull_never_followed(rig: Rig, monitor: Monitor, status: int) -> None:
    rig.control(feed="redirect", status=status, location=rig.internal_url)
    result = rig.sync()
    assert not result["ok"] and result["error"] == f"redirect (HTTP {status})", result
    assert rig.nodes_row()["last_error"] == f"redirect (HTTP {status})"
    assert rig.internal.hits == []


def test_live_query_redirect_is_never_followed(rig: Rig, monitor: Monitor) -> None:
    rig.control(live="redirect", status=307, location=rig.internal_url)
    body = rig.search(q="cyber").json()
    assert body["partial"] is True and body["missing"] == ["DE"]
    assert rig.internal.hits == []


def test_node_error_body_never_reaches_last_error(rig: Rig, monitor: Monitor) -> None:
    """Regression: ``last_error`` carried the first 500 bytes of whatever the node answered."""
    rig.control(feed="error")
    result = rig.sync()
    assert result["error"] == "http_status (HTTP 500)"
    assert rig.nodes_row()["last_error"] == "http_status (HTTP 500)"


NON_GLOBAL_URLS = [
    "http://127.0.0.1:{port}", "http://localhost:{port}", "http://[::1]:{port}", "http://169.254.169.254",
    "http://10.1.2.3:{port}", "http://192.168.0.1", "http://0.0.0.0:{port}", "http://[::ffff:127.0.0.1]:{port}",
    "http://100.64.0.1", "http://[fd00::1]",
]


def test_enrollment_refuses_non_global_urls(rig: Rig) -> None:
    """Regression: enrollment accepted loopback and link-local URLs. Each is refused before the
    invitation is spent (the same invitation is refused for every one, then enrolls a global URL)."""
    port = rig.node_url.rsplit(":", 1)[1]
    key = generate_private_key()
    token = rig.strict_hub.ncc("hub", "invite", "DE").stdout.strip().splitlines()[-1]
    for url in NON_GLOBAL_URLS:
        r = post_enroll(rig.strict_hub, token, key, url.format(port=port))
        assert r.status == 422 and r.code == "enrollment_invalid", (url, r.body)
        assert r.json()["reason"] == "url_not_public" and "allow_private_node_urls" in r.json()["detail"]
        assert rig.strict_hub.query("SELECT COUNT(*) FROM hub_node_keys WHERE kid = ?",
                                    (kid_for("DE", public_key_raw(key)),))[0][0] == 0
    assert post_enroll(rig.strict_hub, token, key, "http://1.1.1.1:9").status == 200


def test_connect_time_check_refuses_loopback_after_resolution(rig: Rig, monitor: Monitor) -> None:
    """A name that resolved to a global address at enrollment and now resolves to loopback (DNS rebinding,
    here ``localhost``): the connector's resolver refuses it at connect time — no request leaves. The
    URLs point at the internal target, which no one else calls: it must record no request."""
    hub = rig.strict_hub
    internal_port = rig.internal.server_address[1]
    private = serialization.load_pem_private_key(rig.key_pem.read_bytes(), password=None)
    r = enroll_direct(hub, private, "http://1.1.1.1:9")
    assert r.status == 200, r.body
    for url in (f"http://localhost:{internal_port}", f"http://127.0.0.1:{internal_port}",
                f"http://[::ffff:127.0.0.1]:{internal_port}", "http://169.254.169.254"):
        hub.query("UPDATE hub_nodes SET url = ? WHERE country = 'DE'", (url,))
        result = rig.sync(hub)
        assert not result["ok"] and result["error"] == "address_not_public", (url, result)
        assert rig.nodes_row(hub)["last_error"] == "address_not_public"
        live = hub.get("/api/v1/search?live=true&timeout_ms=2000", hub.token("analyst"))
        assert live.status == 200 and live.json()["missing"] == ["DE"]
        assert rig.internal.hits == [], (url, rig.internal.hits)


# -- every byte bounded ------------------------------------------------------------------------------


def test_gzip_bomb_feed_stops_at_the_page_limit(rig: Rig, monitor: Monitor) -> None:
    """Regression: a few hundred KB of gzip took the hub tree past 4.5 GB and blocked /healthz."""
    sent = rig.control(feed="gzip_bomb", mib=512)["compressed_bytes"]
    assert sent < 1024 * 1024  # under 1 MB on the wire, 512 MiB decompressed
    result = rig.sync()
    assert not result["ok"] and result["error"] == "too_large (HTTP 200)", result
    assert rig.nodes_row()["last_error"] == "too_large (HTTP 200)"


@pytest.mark.parametrize("mode,code", [
    ("deflate_bomb", "too_large (HTTP 200)"),
    ("blank_bomb", "too_many_lines (HTTP 200)"),  # blank lines count as lines
    ("plain_flood", "too_large (HTTP 200)"),
    ("lying_length", "too_large (HTTP 200)"),
    ("trickle", "timeout"),
])
def test_feed_limits(rig: Rig, monitor: Monitor, mode: str, code: str) -> None:
    rig.control(feed=mode, mib=64)
    t0 = time.monotonic()
    result = rig.sync()
    assert not result["ok"] and result["error"] == code, result
    assert time.monotonic() - t0 < 10
    if mode == "plain_flood":  # the hub hung up soon after the page limit (16 MiB), not at 64 MiB
        assert rig.node_hits().get("flood_mib_sent", 0) < 40


def test_live_answer_bomb_is_cut_and_the_search_answers(rig: Rig, monitor: Monitor) -> None:
    rig.control(live="gzip_bomb", mib=64)
    body = rig.search(q="cyber").json()
    assert body["missing"] == ["DE"] and body["partial"] is True


@pytest.mark.parametrize("total", ["1e308", str(10**30), "-1", '"many"', "true", str(2**63)])
def test_live_answer_with_absurd_total_never_fails_the_search(rig: Rig, monitor: Monitor, total: str) -> None:
    """Regression: a node's huge ``total`` made every ``live=true`` search a 500."""
    rig.control(live="raw", body=f'{{"total": {total}, "results": [], "facets": {{}}}}')
    body = rig.search(q="cyber").json()
    assert body["missing"] == ["DE"]


def test_live_answer_total_is_clamped(rig: Rig, monitor: Monitor) -> None:
    rig.control(live="raw", body=f'{{"total": {2**53 - 1}, "results": [], "facets": {{}}}}')
    body = rig.search(q="cyber").json()
    assert body["missing"] == [] and body["total"] <= 10_000_000


# -- live answers are claims --------------------------------------------------------------------------


def test_live_hits_are_claims_not_facts(rig: Rig, monitor: Monitor) -> None:
    """Regression: a hit with another country's id ranked first, carried made-up fields, was
    ``verified: true``, and the node's facets counted for other countries."""
    held = rig.sign()
    rig.control(feed="records", append=[held])
    rig.pull()
    assert rig.held_version(held["id"]) == 1
    tampered_digest = "0" * 64
    fr_id = f"urn:ncc:FR:organisation:{uuid.uuid4()}"
    own_new = f"urn:ncc:DE:organisation:{uuid.uuid4()}"
    hits = [
        {"id": fr_id, "type": "organisation", "origin": "DE", "title": "FR record", "score": 1e300,
         "version": 1, "verified": True},
        {"id": held["id"], "type": "organisation", "origin": "DE", "title": "same id, other content",
         "score": 5, "version": 1, "digest": tampered_digest, "verified": True},
        {"id": own_new, "type": "organisation", "origin": "DE", "title": "x" * 5000, "snippet": "<script>",
         "score": float("1e300"), "version": 1, "verified": True, "html": "<img onerror=alert(1)>",
         "admin": True},
        {"id": "urn:ncc:DE:organisation:../../etc/passwd", "version": 1, "score": 9},
        "not an object",
    ]
    answer = {"total": 3, "results": hits,
              "facets": {"country": {"FR": 1000, "DE": 3, "AT": 50}, "type": {"organisation": 10**9},
                         "colour": {"red": 1}, "domain": {"not-a-term": 4, "cry": 2}}}
    rig.control(live="raw", body=json.dumps(answer))
    body = rig.search(q="", limit="50").json()
    live = {r["id"]: r for r in body["results"] if r.get("live")}
    assert set(live) == {held["id"], own_new}, live
    assert fr_id not in {r["id"] for r in body["results"]}
    assert live[held["id"]]["verified"] is False  # same id and version, other digest
    new = live[own_new]
    assert new["verified"] is False and set(new) <= {"id", "type", "origin", "title", "snippet", "score",
                                                     "version", "verified", "live"}, new
    assert len(new["title"]) <= 500 and new["score"] <= 1000
    facets = body["facets"]
    assert facets["country"].get("FR", 0) == 0 and facets["country"].get("AT", 0) == 0
    assert facets["country"]["DE"] == 3 and facets["type"]["organisation"] <= 3
    assert "not-a-term" not in facets["domain"] and "colour" not in facets

    # the same content (the digest the node really signed) is verified
    from federation.envelope import Envelope

    digest = Envelope.from_dict(held).digest()
    honest = {"total": 1, "results": [{"id": held["id"], "type": "organisation", "origin": "DE", "title": "t",
                                        "score": 1, "version": 1, "digest": digest}], "facets": {}}
    rig.control(live="raw", body=json.dumps(honest))
    body = rig.search(q="").json()
    assert [r["verified"] for r in body["results"] if r.get("live")] == [True]


# -- bounded quarantine --------------------------------------------------------------------------------


def test_quarantine_is_bounded_per_line_and_per_node(rig: Rig, monitor: Monitor) -> None:
    """Regression: every malformed line was kept whole, with no cap; reading it back loaded it all."""
    big = "{" + "x" * (300 * 1024)  # not JSON: 300 KiB of evidence each
    rig.control(feed="lines", lines=[big] * 30)
    rig.pull()
    rows = rig.hub.query("SELECT LENGTH(envelope), evidence_bytes, evidence_sha256 FROM hub_quarantine"
                         " WHERE country = 'DE' AND code = 'malformed_json'")
    assert len(rows) == 25  # NCC_QUARANTINE_MAX_ROWS: the oldest evicted
    import hashlib

    whole = hashlib.sha256(big.encode()).hexdigest()
    assert all(length <= 64 * 1024 and size == len(big) and digest == whole for length, size, digest in rows)
    # paged reads: each page bounded, the pages together are the whole quarantine
    seen, after = [], 0
    while True:
        page = rig.hub.get(f"/federation/v1/quarantine?country=DE&limit=10&after={after}",
                           rig.hub.token("admin")).json()
        assert len(page["items"]) <= 10
        seen += page["items"]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert len(seen) == page["total"] == rig.hub.query("SELECT COUNT(*) FROM hub_quarantine WHERE country='DE'")[0][0]
    assert all(i["evidence_truncated"] and i["evidence_sha256"] == whole for i in seen
               if i["code"] == "malformed_json")


# -- a retired or revoked key signs nothing new (last: it revokes the node's key) ----------------------


def test_issued_at_regression_is_quarantined(rig: Rig, monitor: Monitor) -> None:
    v1 = rig.sign()
    earlier = format_timestamp(parse_timestamp(v1["issued_at"]) - timedelta(days=1))
    v2 = rig.sign(id=v1["id"], version=2, issued_at=earlier,
                  payload={**v1["payload"], "description": "backdated"})
    rig.control(feed="records", append=[v1])
    rig.pull()
    assert rig.held_version(v1["id"]) == 1
    rig.control(feed="records", append=[v2])
    rig.pull()
    assert rig.quarantine_codes(v1["id"]) == ["issued_at_regressed"]
    held = rig.hub.get(f"/api/v1/records/{v1['id']}", rig.hub.token("analyst")).json()
    assert held["version"] == 1


def test_revoked_key_cannot_backdate_new_records(rig: Rig, monitor: Monitor) -> None:
    """Regression: records signed by a revoked key were accepted when they claimed an ``issued_at``
    before the revocation. Then ``ncc hub revoke-key --at T`` with T in the past withdraws what the hub
    received from the key after T."""
    received = rig.sign()
    rig.control(feed="records", append=[received])
    rig.pull()
    assert rig.held_version(received["id"]) == 1
    t = rig.hub.query("SELECT received_at FROM hub_records WHERE id = ?", (received["id"],))[0][0]
    time.sleep(1.1)
    after_t = rig.sign()
    rig.control(feed="records", append=[after_t])
    rig.pull()
    assert rig.held_version(after_t["id"]) == 1
    revoke_at = format_timestamp(parse_timestamp(t) + timedelta(seconds=1))
    while format_timestamp(utc_now()) <= revoke_at:  # T in the past (a revocation dated now withdraws nothing)
        time.sleep(0.05)
    done = rig.hub.ncc("hub", "revoke-key", rig.kid, "--at", revoke_at)
    assert json.loads(done.stdout)["withdrawn"] == 1
    assert rig.hub.get(f"/api/v1/records/{after_t['id']}").status == 404  # withdrawn from the public
    assert rig.hub.get(f"/api/v1/records/{received['id']}").status == 200  # received before T: kept
    search = rig.search(q="", live="false").json()
    assert after_t["id"] not in {r["id"] for r in search["results"]}
    # a new record backdated before the revocation is refused: judged by when the hub received it
    backdated = rig.sign(issued_at=format_timestamp(parse_timestamp(t) - timedelta(days=1)))
    rig.control(feed="records", append=[backdated])
    rig.pull()
    assert rig.held_version(backdated["id"]) is None
    assert rig.quarantine_codes(backdated["id"]) == ["key_revoked"]
    assert rig.quarantine_codes(after_t["id"]) == ["key_revoked"]
    assert rig.held_version(received["id"]) == 1
