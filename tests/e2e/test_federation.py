"""End to end, real processes: a hub and three nodes (DE, FR replicate; AT query-only), on SQLite and
once on PostgreSQL.

The tests of this module share one federation per backend and run in order, each building on the
state the previous ones left (as an operator's day would): enrollment, writes, sync, what the hub
shows, tombstones, tampering, key rotation and revocation, a node going down. Every record carries a
unique marker string so the hub's whole database can be searched for what must never reach it.

xdist may hand the module's tail to another worker (``--dist worksteal`` steals from the end of a
queue), whose federation is new: before a test, every earlier test of the module that has not run on
*this* federation runs first (``_earlier_steps``), so each test finds the state it builds on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import pg_problem
from tests.e2e.harness import Cluster, Instance, Response, base_env, cluster, enroll, organisation, wait_until

pytestmark = pytest.mark.e2e

PULL_DEADLINE_S = 20.0


def marker(label: str) -> str:
    """A unique, case-sensitive string to find (or not find) in a database later."""
    return f"{label}Zq{uuid.uuid4().hex[:10]}"


@dataclass
class Federation:
    cluster: Cluster
    hub: Instance
    de: Instance
    fr: Instance
    at: Instance
    tmp: Path
    ids: dict[str, str] = field(default_factory=dict)  # label -> record id
    strings: dict[str, str] = field(default_factory=dict)  # label -> unique marker
    envelopes: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> latest envelope
    done: set[str] = field(default_factory=set)  # the module's tests that ran on this federation

    @property
    def analyst(self) -> str:
        return self.hub.token("analyst")

    def create(self, node: Instance, label: str, visibility: str = "public", **extra: Any) -> dict[str, Any]:
        """Create an organisation whose description carries a fresh marker; remember id and marker."""
        self.strings[label] = marker(label)
        payload = organisation(node.country, f"{label} {node.country} Org", f"About {self.strings[label]}.",
                               **extra)
        r = node.post("/api/v1/records", {"type": "organisation", "visibility": visibility, "payload": payload},
                      node.token("editor"))
        assert r.status == 201, r.body
        env = r.json()
        self.ids[label] = env["id"]
        self.envelopes[label] = env
        return dict(env)

    def hub_record(self, label: str, token: str | None = None) -> Response:
        return self.hub.get(f"/api/v1/records/{self.ids[label]}", token)

    def sync(self, *args: str, check: bool = True) -> tuple[int, list[dict[str, Any]], str]:
        """``ncc sync`` on the hub: (exit code, per-node JSON results, stderr)."""
        done = self.hub.ncc("sync", *args, check=check)
        results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        return done.returncode, results, done.stderr


def service_token(node: Instance) -> str:
    """A node → hub service token made from the node's own key file, as the node itself would."""
    from federation.tokens import issue_service_token
    from node.keystore import load_key

    key = load_key(node.data_dir / "keys" / "instance.pem", "node", node.country)
    now = datetime.now(UTC).replace(microsecond=0)
    return issue_service_token(key.private_key, key.kid, node.country, "hub", now, ttl_s=60)


def node_row(nodes: list[dict[str, Any]], country: str) -> dict[str, Any]:
    return next(n for n in nodes if n["country"] == country)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    if request.param == "postgres" and pg_problem():
        pytest.skip(str(pg_problem()))
    root = tmp_path_factory.mktemp(f"fed-{request.param}")
    with cluster(root, request.param) as c, ThreadPoolExecutor(4) as pool:
        hub, de, fr, at = pool.map(lambda a: c.add(*a), [("hub", "hub"), ("de", "node", "DE"),
                                                         ("fr", "node", "FR"), ("at", "node", "AT")])
        list(pool.map(Instance.start, (hub, de, fr, at)))
        yield Federation(c, hub, de, fr, at, root)


@pytest.fixture(autouse=True)
def _earlier_steps(request: pytest.FixtureRequest, fed: Federation) -> None:
    """Run, on ``fed``, the module's tests defined before this one that have not run on it."""
    steps = [(name, fn) for name, fn in globals().items() if name.startswith("test_") and callable(fn)]
    for name, fn in steps:
        if name == request.node.originalname:
            break
        if name not in fed.done:
            fed.done.add(name)
            fn(fed)
    fed.done.add(request.node.originalname)


# -- enrollment --------------------------------------------------------------------------------------


def test_enrollment_and_invite_reuse(fed: Federation) -> None:
    used = enroll(fed.hub, fed.de)
    enroll(fed.hub, fed.fr)
    enroll(fed.hub, fed.at)

    again = fed.de.ncc("enroll", "--hub", fed.hub.url, "--token", used, check=False)
    assert again.returncode == 1
    assert "enrollment_token_used" in again.stderr

    raw = fed.hub.post("/federation/v1/enroll", {"token": used, "country": "DE", "url": fed.de.url,
                                                 "public_key": "x", "kid": "x", "proof": "x"})
    assert raw.status in (409, 422)  # the body is checked before the token's single use
    directory = fed.hub.get("/federation/v1/directory").json()
    assert sorted(n["country"] for n in directory["nodes"]) == ["AT", "DE", "FR"]

    fed.hub.ncc("hub", "mode", "AT", "query-only")
    nodes = fed.hub.get("/api/v1/nodes").json()
    assert {n["country"]: n["mode"] for n in nodes} == {"AT": "query-only", "DE": "replicate", "FR": "replicate"}
    for n in nodes:
        assert set(n) >= {"country", "url", "status", "mode", "last_success", "consecutive_failures", "lag"}


def test_running_node_notifies_after_a_write(fed: Federation) -> None:
    """The nodes were enrolled by another process while serving; their next write reaches the hub
    through notify → pull, with no restart and no `ncc sync`."""
    fed.create(fed.de, "de_first")
    fed.create(fed.fr, "fr_first")
    for label in ("de_first", "fr_first"):
        wait_until(partial(lambda lb: fed.hub_record(lb, fed.analyst).status == 200, label), PULL_DEADLINE_S,
                   f"{label} at the hub")
        assert fed.hub_record(label, fed.analyst).json() == fed.envelopes[label]


# -- what the hub shows ------------------------------------------------------------------------------


def test_sync_returns_when_pulled_and_visibility_at_hub(fed: Federation) -> None:
    contact = {"first_name": "Erika", "family_name": "Mustermann", "email": "erika@example.de",
               "position": "CISO", "phone": "+49 30 1234567"}
    fed.create(fed.de, "public", contact=contact)
    fed.create(fed.de, "network", visibility="network")
    fed.create(fed.de, "national", visibility="national")
    fed.create(fed.at, "at_public", identifiers={"vat": "ATU99887766"})
    fed.create(fed.at, "at_network", visibility="network")

    code, results, _ = fed.sync()
    assert code == 0
    assert sorted(r["country"] for r in results) == ["DE", "FR"]  # query-only AT is never pulled
    assert all(r["ok"] and not r["skipped"] for r in results), results

    # No polling: `ncc sync` returned after the pull finished.
    anon = fed.hub_record("public")
    assert anon.status == 200, anon.body
    shown = anon.json()
    assert "sig" not in shown and "contact" not in shown["payload"]
    assert "/payload/contact" in shown["redacted"]
    assert shown["payload"]["description"] == fed.envelopes["public"]["payload"]["description"]

    signed = fed.hub_record("public", fed.analyst)
    assert signed.status == 200 and signed.json() == fed.envelopes["public"]
    assert signed.json()["payload"]["contact"] == contact

    assert fed.hub_record("network").status == 404
    assert fed.hub_record("network").code == "not_found"
    assert fed.hub_record("network", fed.analyst).json() == fed.envelopes["network"]

    for label in ("national", "at_public", "at_network"):
        for token in (None, fed.analyst):
            assert fed.hub_record(label, token).status == 404, label

    def search(token: str | None) -> dict[str, dict[str, Any]]:
        r = fed.hub.get("/api/v1/search?limit=100", token)
        assert r.status == 200, r.body
        return {hit["id"]: hit for hit in r.json()["results"]}

    public, analyst = search(None), search(fed.analyst)
    assert fed.ids["public"] in public and fed.ids["network"] not in public
    assert public[fed.ids["public"]]["verified"] is True
    assert {fed.ids["public"], fed.ids["network"]} <= set(analyst)
    assert fed.ids["national"] not in analyst
    # the query-only node is asked live on every search: its answers are marked, never stored
    assert analyst[fed.ids["at_public"]]["live"] is True and analyst[fed.ids["at_public"]]["verified"] is False
    assert fed.ids["at_network"] in analyst and fed.ids["at_network"] not in public

    # DESIGN §11: a word only in a network-only field (a contact's name at the hub, a VAT number at the
    # query-only node, asked live) finds nothing anonymously, and the record for an analyst
    def found(q: str, token: str | None) -> set[str]:
        r = fed.hub.get(f"/api/v1/search?q={q}&limit=100", token)
        assert r.status == 200, r.body
        return {hit["id"] for hit in r.json()["results"]}

    assert found("Mustermann", None) == set() and fed.ids["public"] in found("Mustermann", fed.analyst)
    assert found("ATU99887766", None) == set() and fed.ids["at_public"] in found("ATU99887766", fed.analyst)
    assert b"ATU99887766" not in fed.hub.get("/api/v1/search?q=about&limit=100").body


def test_updates_and_tombstones_reach_the_hub(fed: Federation) -> None:
    editor = fed.de.token("editor")
    upd = fed.envelopes["de_first"]
    new_payload = {**upd["payload"], "description": "Updated description, version two."}
    r = fed.de.put(f"/api/v1/records/{upd['id']}", {"payload": new_payload, "version": 1}, editor)
    assert r.status == 200 and r.json()["version"] == 2
    fed.envelopes["de_first"] = r.json()

    fed.create(fed.de, "withdrawn")
    fed.create(fed.de, "erased")
    fed.create(fed.de, "nationalised")
    code, _, _ = fed.sync("--country", "DE")
    assert code == 0
    for label in ("withdrawn", "erased", "nationalised"):
        assert fed.hub_record(label).status == 200

    assert fed.de.delete(f"/api/v1/records/{fed.ids['withdrawn']}?reason=withdrawn", editor).status == 200
    assert fed.de.delete(f"/api/v1/records/{fed.ids['erased']}?reason=erased", editor).status == 200
    assert fed.de.delete(f"/api/v1/records/{fed.ids['network']}?reason=withdrawn", editor).status == 200
    nat = fed.envelopes["nationalised"]
    fed.strings["nationalised_payload"] = marker("nationalisedPayload")
    r = fed.de.put(f"/api/v1/records/{nat['id']}", {
        "payload": {**nat["payload"], "description": fed.strings["nationalised_payload"]},
        "version": 1, "visibility": "national"}, editor)
    assert r.status == 200 and r.json()["version"] == 2  # the hub gets v2 as a withdrawn tombstone

    # (the node's notifications may have had the hub pull these already; `ncc sync` finishes the job)
    code, results, _ = fed.sync("--country", "DE")
    assert code == 0 and results[0]["quarantined"] == 0, results

    assert fed.hub_record("de_first").json()["version"] == 2
    assert fed.hub_record("de_first", fed.analyst).json() == fed.envelopes["de_first"]
    for label, token in (("withdrawn", None), ("erased", None), ("nationalised", None),
                         ("network", fed.analyst), ("withdrawn", fed.analyst)):
        r = fed.hub_record(label, token)
        assert r.status == 410 and r.code == "gone", (label, r.status, r.body)
        assert fed.de.get(f"/api/v1/records/{fed.ids[label]}", editor).status in (410, 200)
    for label in ("withdrawn", "erased", "network"):
        assert fed.de.get(f"/api/v1/records/{fed.ids[label]}", editor).status == 410


def test_national_and_query_only_records_never_reach_the_hub(fed: Federation) -> None:
    text = fed.hub.db_text()
    assert fed.strings["public"] in text  # the search works: what is shared is there
    for label in ("national", "nationalised_payload", "at_public", "at_network", "erased"):
        assert fed.strings[label] not in text, f"{label} found in the hub's database"
    # Erasure also purged the node's own older versions.
    assert fed.strings["erased"] not in fed.de.db_text()
    assert fed.strings["national"] in fed.de.db_text()
    state = {c: cur for c, cur in fed.hub.query("SELECT country, cursor FROM hub_pull_state")}
    assert state["AT"] == 0


# -- verification, tampering ------------------------------------------------------------------------


def verify_at_hub(fed: Federation, label: str, envelope: dict[str, Any]) -> Any:
    """``ncc verify`` of ``envelope`` against the hub's directory as fetched now."""
    env_file = fed.tmp / f"{label}.json"
    dir_file = fed.tmp / f"directory-{label}.json"
    env_file.write_text(json.dumps(envelope))
    dir_file.write_bytes(fed.hub.get("/federation/v1/directory").body)
    return subprocess.run([sys.executable, "-m", "node.cli", "verify", str(env_file), "--directory",
                           str(dir_file)], check=False, capture_output=True, text=True, env=base_env(), timeout=60)


def test_ncc_verify_of_an_envelope_fetched_from_the_hub(fed: Federation) -> None:
    envelope = fed.hub_record("public", fed.analyst).json()
    done = verify_at_hub(fed, "public", envelope)
    assert done.returncode == 0, done.stdout + done.stderr
    forged = json.loads(json.dumps(envelope))
    forged["payload"]["legal_name"] = "Someone Else Ltd"
    done = verify_at_hub(fed, "forged", forged)
    assert done.returncode == 1 and "signature_invalid" in done.stdout


def test_tampered_record_is_quarantined_and_visible_to_its_node(fed: Federation) -> None:
    rid = fed.ids["de_first"]
    (text,) = fed.de.query("SELECT envelope FROM feed WHERE record_id = ?", (rid,))[0]
    tampered = json.loads(text)
    tampered["payload"]["description"] = "Tampered in the node's database."
    (seq,) = fed.de.query("UPDATE counters SET value = value + 1 WHERE name = 'seq' RETURNING value")[0]
    fed.de.query("UPDATE feed SET seq = ?, envelope = ? WHERE record_id = ?", (seq, json.dumps(tampered), rid))

    # (a scheduled pull may get there first; either way the pull succeeds and quarantines it)
    code, results, _ = fed.sync("--country", "DE")
    assert code == 0 and results[0]["ok"], "a bad record never fails the pull"
    # the hub keeps serving the last good version
    assert fed.hub_record("de_first", fed.analyst).json() == fed.envelopes["de_first"]

    own = fed.hub.get("/federation/v1/quarantine", service_token(fed.de))
    assert own.status == 200, own.body
    items = own.json()["items"]
    assert [(i["record_id"], i["code"]) for i in items] == [(rid, "signature_invalid")]
    assert items[0]["envelope"]["payload"]["description"] == "Tampered in the node's database."
    fr_view = fed.hub.get("/federation/v1/quarantine", service_token(fed.fr))
    assert fr_view.status == 200 and fr_view.json()["items"] == []

    user = fed.hub.get("/federation/v1/quarantine", fed.analyst)
    assert user.status == 403 and user.code == "forbidden"
    assert fed.hub.get("/federation/v1/quarantine").status == 401
    admin = fed.hub.get("/federation/v1/quarantine?country=DE", fed.hub.token("admin"))
    assert admin.status == 200 and admin.json()["total"] == 1


# -- keys ----------------------------------------------------------------------------------------------


def test_rotation_keeps_old_records_valid(fed: Federation) -> None:
    old_kid = fed.envelopes["public"]["sig"]["kid"]
    out = fed.de.ncc("keys", "rotate").stdout
    assert old_kid in out
    new = fed.create(fed.de, "after_rotation")
    assert new["sig"]["kid"] != old_kid

    assert fed.sync("--country", "DE")[0] == 0
    assert fed.hub_record("after_rotation", fed.analyst).json() == new
    quarantined = fed.hub.get("/federation/v1/quarantine?country=DE", fed.hub.token("admin")).json()
    assert quarantined["total"] == 1  # only the record tampered with earlier
    old = fed.hub_record("public", fed.analyst).json()
    assert old["sig"]["kid"] == old_kid

    directory = fed.hub.get("/federation/v1/directory").json()
    de_keys = {k["kid"]: k for k in node_row(directory["nodes"], "DE")["keys"]}
    assert de_keys[old_kid]["not_after"] is not None and new["sig"]["kid"] in de_keys
    for label, env in (("old-key", old), ("new-key", new)):
        done = verify_at_hub(fed, label, env)
        assert done.returncode == 0, done.stdout + done.stderr
    # the rotated node still notifies with its new key
    fed.create(fed.de, "after_rotation_notify")
    wait_until(lambda: fed.hub_record("after_rotation_notify").status == 200, PULL_DEADLINE_S,
               "a record written after rotation at the hub")


def test_revoked_key_quarantines_later_records(fed: Federation) -> None:
    kid = fed.envelopes["fr_first"]["sig"]["kid"]
    fed.hub.ncc("hub", "revoke-key", kid)
    # `revoked_at` has whole seconds; a record issued in a later second is unambiguously after it
    time.sleep(1.1)
    fed.create(fed.fr, "fr_after_revocation")
    assert fed.sync("--country", "FR")[0] == 0
    assert fed.hub_record("fr_after_revocation", fed.analyst).status == 404
    assert fed.hub_record("fr_first", fed.analyst).json() == fed.envelopes["fr_first"]
    q = fed.hub.get("/federation/v1/quarantine?country=FR", fed.hub.token("admin")).json()
    assert [(i["record_id"], i["code"]) for i in q["items"]] == [(fed.ids["fr_after_revocation"], "key_revoked")]
    # the revoked key can no longer authenticate the node either
    assert fed.hub.get("/federation/v1/quarantine", service_token(fed.fr)).status == 401


# -- a node goes down --------------------------------------------------------------------------------


def test_hub_keeps_serving_when_a_node_is_down(fed: Federation) -> None:
    fed.fr.stop()

    def unreachable() -> dict[str, Any] | None:
        row = node_row(fed.hub.get("/api/v1/nodes").json(), "FR")
        return row if row["status"] == "unreachable" else None

    row = wait_until(unreachable, 40, "FR unreachable after scheduled pulls failed", interval=0.5)
    assert row["consecutive_failures"] >= 2 and row["last_success"] is not None
    assert node_row(fed.hub.get("/api/v1/nodes").json(), "DE")["status"] == "ok"

    assert fed.hub_record("fr_first", fed.analyst).json() == fed.envelopes["fr_first"]
    found = fed.hub.get("/api/v1/search?limit=100").json()
    assert fed.ids["fr_first"] in {h["id"] for h in found["results"]}
    assert found["nodes"]["FR"] == "unreachable"

    code, results, err = fed.sync(check=False)
    # one line on stderr (DESIGN §7); regression: the puller's "pull failed" log record came first
    assert code == 1 and err.startswith("ncc sync: failed: FR: ") and err.count("\n") == 1, err
    assert {r["country"]: r["ok"] for r in results} == {"DE": True, "FR": False}
    assert fed.sync("--country", "DE")[0] == 0

    fed.fr.start()
    code, results, _ = fed.sync()
    assert code == 0
    row = node_row(fed.hub.get("/api/v1/nodes").json(), "FR")
    assert row["status"] == "ok" and row["consecutive_failures"] == 0 and row["lag"] == 0
