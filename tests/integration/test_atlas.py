"""The ECCC Atlas connector (DESIGN §13) against a strict JSON:API stand-in (``atlas_server.py``).

Each path of ``ncc atlas push`` is asserted on what the Atlas received: new, updated, unchanged,
conflict, failure, an existing entry matched, revocations reported (never deleted), GETs retried and
writes not, and a second push with no change sending nothing but GETs.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.commands.base import run_with_db
from node.config import load_settings
from node.context import Keyring, build_registry, utc_now
from node.services.publish import Publisher
from node.services.search import SearchService
from tests.conftest import premigrated
from tests.integration.atlas_server import AtlasServer, serve
from tests.integration.support import CONTACT, MINIMAL_ORG, run_cli

REGISTERED = {"status": "registered", "assessed_at": "2026-11-30T10:00:00Z", "assessed_by": "officer-7"}


def organisation(name: str, **extra: Any) -> dict[str, Any]:
    return {**MINIMAL_ORG, "legal_name": name, "membership": REGISTERED, "sectors": ["sec.energy"],
            "website": f"https://{name.split()[0].lower()}.example.de", **extra}


@pytest.fixture
def atlas() -> Iterator[AtlasServer]:
    yield from serve(AtlasServer())


@pytest.fixture
def data_dir(tmp_path: Path, atlas: AtlasServer) -> Path:
    d = tmp_path / "de"
    code, _, err = run_cli("init", "--role", "node", "--country", "DE", "--data-dir", premigrated(d))
    assert code == 0, err
    with (d / "config.toml").open("a") as f:
        f.write(f'atlas_url = "{atlas.url}"\n')
    key = d / "keys" / "atlas-api-key"
    key.write_text(atlas.api_key + "\n")
    key.chmod(0o600)
    return d


def load(data_dir: Path, rows: list[dict[str, Any]]) -> None:
    file = data_dir.parent / f"rows-{len(list(data_dir.parent.glob('rows-*')))}.ndjson"
    file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = run_cli("import", "--data-dir", str(data_dir), str(file))
    assert code == 0, (out, err)


def ids(data_dir: Path) -> dict[str, str]:
    """legal name -> record id."""
    code, out, err = run_cli("export", "--data-dir", str(data_dir), "--type", "organisation")
    assert code == 0, err
    return {e["payload"]["legal_name"]: e["id"] for e in map(json.loads, out.splitlines()) if not e["deleted"]}


def update(data_dir: Path, rid: str, **changes: Any) -> None:
    """A local edit of the organisation (the editor's PUT, through the publisher)."""
    settings = load_settings(data_dir)
    keyring = Keyring(settings)
    publisher = Publisher(country="DE", key=keyring.key, registry=build_registry(), clock=utc_now,
                          index=SearchService())

    async def work() -> None:
        from node.storage.models import Record

        row = await Record.get(id=rid)
        payload = {**json.loads(row.envelope)["payload"], **changes}
        await publisher.update(rid, {k: v for k, v in payload.items() if v is not None}, row.version)

    run_with_db(settings, work)


def push(data_dir: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli("atlas", "push", "--data-dir", str(data_dir), *extra)


def test_push_creates_then_sends_nothing_but_gets(data_dir: Path, atlas: AtlasServer) -> None:
    load(data_dir, [
        {"type": "organisation", "visibility": "public", "payload": organisation("Alpha Security GmbH")},
        {"type": "organisation", "visibility": "network", "payload": organisation("Beta Crypto AG")},
        # not registered, and registered-but-national: neither goes to the Atlas
        {"type": "organisation", "visibility": "public",
         "payload": organisation("Gamma Applied", membership={"status": "applied"})},
        {"type": "organisation", "visibility": "national", "payload": organisation("Delta Intern")},
    ])
    code, out, err = push(data_dir)
    assert code == 0, (out, err)
    assert out.strip().splitlines()[-1] == "pushed 2 new, 0 updated, 0 unchanged, 0 conflicts, 0 failed"
    assert sorted(c["attributes"]["title"] for c in atlas.clusters.values()) == ["Alpha Security GmbH",
                                                                                 "Beta Crypto AG"]
    entry = next(c for c in atlas.clusters.values() if c["attributes"]["title"] == "Alpha Security GmbH")
    assert entry["attributes"]["moderation_state"] == "ready_for_publication"
    assert entry["attributes"]["field_url"] == {"uri": "https://alpha.example.de"}
    rels = entry["relationships"]
    assert rels["field_country"]["data"]["id"] == atlas.country_id("DE")
    assert [i["id"] for i in rels["field_sectors"]["data"]] == [atlas.term_id("sectors", "Energy")]
    assert len(rels["field_cluster_thematic_area"]["data"]) == 2  # cry and cry.10, by their Atlas UUIDs
    # the second run: no POST, no PATCH (taxonomies are cached, unchanged records cost no request)
    before = len(atlas.requests)
    code, out, _ = push(data_dir)
    assert code == 0 and out.strip().endswith("pushed 0 new, 0 updated, 2 unchanged, 0 conflicts, 0 failed")
    assert atlas.writes() == [] or all(r not in atlas.requests[before:] for r in atlas.writes())
    assert all(method == "GET" for method, _ in atlas.requests[before:])


def test_a_local_change_is_patched_with_what_differs(data_dir: Path, atlas: AtlasServer) -> None:
    load(data_dir, [{"type": "organisation", "visibility": "public", "payload": organisation("Alpha Security GmbH")}])
    assert push(data_dir)[0] == 0
    rid = ids(data_dir)["Alpha Security GmbH"]
    update(data_dir, rid, description="Quantum-safe VPNs for grid operators.", sectors=["sec.energy", "sec.health"])
    code, out, err = push(data_dir)
    assert code == 0, (out, err)
    assert out.strip().endswith("pushed 0 new, 1 updated, 0 unchanged, 0 conflicts, 0 failed")
    (entry,) = atlas.clusters.values()
    assert entry["attributes"]["field_field_of_activity_descr"] == "Quantum-safe VPNs for grid operators."
    assert {i["id"] for i in entry["relationships"]["field_sectors"]["data"]} == {
        atlas.term_id("sectors", "Energy"), atlas.term_id("sectors", "Health")}
    assert [m for m, _ in atlas.writes()] == ["POST", "PATCH"]
    state = sync_state(data_dir, rid)
    assert state["state"] == "synced" and state["atlas_uuid"] == entry["id"] and state["pushed_version"] == 2


def test_a_remote_change_is_a_conflict_and_is_not_overwritten(data_dir: Path, atlas: AtlasServer) -> None:
    load(data_dir, [{"type": "organisation", "visibility": "public", "payload": organisation("Alpha Security GmbH")}])
    assert push(data_dir)[0] == 0
    (entry,) = atlas.clusters.values()
    atlas.change_remotely(entry["id"], field_field_of_activity_descr="Edited at the Centre.")
    rid = ids(data_dir)["Alpha Security GmbH"]
    update(data_dir, rid, description="Our new text.")
    code, out, _ = push(data_dir)
    assert code == 1
    assert f"conflict {rid} {entry['id']}: changed at the Atlas" in out
    assert out.strip().endswith("pushed 0 new, 0 updated, 0 unchanged, 1 conflicts, 0 failed")
    assert entry["attributes"]["field_field_of_activity_descr"] == "Edited at the Centre."
    assert [m for m, _ in atlas.writes()] == ["POST"]
    assert sync_state(data_dir, rid)["state"] == "conflict"
    # the operator reconciles, then overwrites on purpose
    code, out, _ = push(data_dir, "--overwrite", rid)
    assert code == 0 and out.strip().endswith("pushed 0 new, 1 updated, 0 unchanged, 0 conflicts, 0 failed")
    assert entry["attributes"]["field_field_of_activity_descr"] == "Our new text."


def test_an_unresolvable_term_fails_that_organisation_only(data_dir: Path, atlas: AtlasServer) -> None:
    atlas.terms["sectors"] = [t for t in atlas.terms["sectors"] if t["attributes"]["name"] != "Health"]
    load(data_dir, [
        {"type": "organisation", "visibility": "public", "payload": organisation("Alpha Security GmbH")},
        {"type": "organisation", "visibility": "public",
         "payload": organisation("Beta Health AG", sectors=["sec.health"])},
    ])
    code, out, _ = push(data_dir)
    rid = ids(data_dir)["Beta Health AG"]
    assert code == 1
    assert f"failed {rid}: the Atlas has no sectors term 'Health' (sec.health)" in out
    assert out.strip().endswith("pushed 1 new, 0 updated, 0 unchanged, 0 conflicts, 1 failed")
    assert sync_state(data_dir, rid)["state"] == "failed"
    # the Atlas adds the term: the next push refreshes its cached terms and sends the organisation
    atlas.terms["sectors"].append({"id": "health-uuid", "attributes": {"name": "Health"}})
    code, out, _ = push(data_dir)
    assert code == 0 and out.strip().endswith("pushed 1 new, 0 updated, 1 unchanged, 0 conflicts, 0 failed")


def test_an_existing_entry_is_matched_not_duplicated(data_dir: Path, atlas: AtlasServer) -> None:
    seeded = atlas.seed("Alpha Security GmbH", "DE")
    atlas.seed("Alpha Security GmbH", "AT")  # same title, other country: not this organisation
    load(data_dir, [{"type": "organisation", "visibility": "public", "payload": organisation("Alpha Security GmbH")}])
    code, out, _ = push(data_dir)
    assert code == 0 and out.strip().endswith("pushed 0 new, 1 updated, 0 unchanged, 0 conflicts, 0 failed")
    assert [m for m, _ in atlas.writes()] == ["PATCH"] and len(atlas.clusters) == 2
    attributes = atlas.clusters[seeded]["attributes"]
    assert attributes["field_url"] == {"uri": "https://alpha.example.de"}
    assert attributes["moderation_state"] == "published"  # the Centre's decision is never pulled back


def test_gets_are_retried_and_writes_are_not(data_dir: Path, atlas: AtlasServer) -> None:
    load(data_dir, [{"type": "organisation", "visibility": "public", "payload": organisation("Alpha Security GmbH")}])
    atlas.fail_next = [429, 503, 502]  # the first taxonomy GET is refused three times, then served
    code, out, err = push(data_dir)
    assert code == 0, (out, err)
    assert atlas.requests[:4] == [("GET", "/jsonapi/taxonomy_term/cluster_thematic_area")] * 4
    rid = ids(data_dir)["Alpha Security GmbH"]
    update(data_dir, rid, description="Changed.")
    before = len(atlas.requests)
    atlas.refuse["PATCH"] = 503
    code, out, _ = push(data_dir)
    assert code == 1 and f"failed {rid}: PATCH /jsonapi/node/cluster/" in out and "HTTP 503" in out
    assert [m for m, _ in atlas.requests[before:] if m != "GET"] == ["PATCH"]  # never retried
    assert sync_state(data_dir, rid)["state"] == "failed"
    del atlas.refuse["PATCH"]
    code, out, _ = push(data_dir)  # a failed organisation is tried again at the next push
    assert code == 0 and out.strip().endswith("pushed 0 new, 1 updated, 0 unchanged, 0 conflicts, 0 failed")


def test_revoked_and_erased_organisations_are_reported_not_deleted(data_dir: Path, atlas: AtlasServer) -> None:
    load(data_dir, [
        {"type": "organisation", "visibility": "public", "payload": organisation("Alpha Security GmbH")},
        {"type": "organisation", "visibility": "public", "payload": organisation("Beta Crypto AG")},
    ])
    assert push(data_dir)[0] == 0
    names = ids(data_dir)
    update(data_dir, names["Alpha Security GmbH"],
           membership={"status": "revoked", "assessed_at": "2026-12-01T10:00:00Z", "ground": "criteria-no-longer-met"})
    code, out, err = run_cli("atlas", "push", "--data-dir", str(data_dir))
    assert code == 0, (out, err)
    assert f"report {names['Alpha Security GmbH']}" in out and "revoked here: tell the Atlas operator" in out
    assert len(atlas.clusters) == 2 and not [r for r in atlas.requests if r[0] == "DELETE"]
    assert sync_state(data_dir, names["Alpha Security GmbH"])["state"] == "reported"
    code, out, _ = push(data_dir)  # reported once, not at every push
    assert code == 0 and "report" not in out


def test_contact_person_only_with_consent_and_export_is_offline(data_dir: Path, atlas: AtlasServer) -> None:
    load(data_dir, [
        {"type": "organisation", "visibility": "public", "payload": organisation(
            "Alpha Security GmbH", contact=CONTACT, consent={"share_with_eccc_and_nccs": True},
            identifiers={"registration_number": "HRB 12345"},
            address={"street": "Hauptstr. 1", "postcode": "10115", "city": "Berlin", "country": "DE"})},
        {"type": "organisation", "visibility": "public", "payload": organisation("Beta Crypto AG", contact=CONTACT)},
    ])
    out_file = data_dir.parent / "atlas.json"
    code, _, err = run_cli("atlas", "export", "--data-dir", str(data_dir), "--out", str(out_file))
    assert code == 0 and "exported 2 registered organisations" in err
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    document = json.loads(out_file.read_text())
    by_title = {d["attributes"]["title"]: d for d in document["data"]}
    alpha, beta = by_title["Alpha Security GmbH"]["attributes"], by_title["Beta Crypto AG"]["attributes"]
    assert alpha["field_first_name"] == "Erika" and alpha["field_e_mail"] == CONTACT["email"]
    assert alpha["field_registration_number"] == "HRB 12345" and alpha["field_data_sharing_consent"] is True
    assert alpha["field_address"] == {"country_code": "DE", "locality": "Berlin", "address_line1": "Hauptstr. 1",
                                      "postal_code": "10115"}
    assert not {"field_first_name", "field_family_name", "field_e_mail"} & set(beta)
    assert "field_data_sharing_consent" not in beta  # not given: left out, never invented
    assert set(by_title["Beta Crypto AG"]["relationships"]) == {"field_cluster_thematic_area"}
    assert atlas.requests == []  # offline


def test_api_key_file_must_be_private(data_dir: Path, atlas: AtlasServer) -> None:
    key = data_dir / "keys" / "atlas-api-key"
    key.chmod(0o644)
    code, _out, err = push(data_dir)
    assert code == 1 and err.count("\n") == 1 and "must not be readable by group or others (chmod 600)" in err
    assert atlas.requests == []
    key.chmod(0o600)
    code, _, err = run_cli("atlas", "push", "--data-dir", str(data_dir), "--api-key-file", str(data_dir / "nope"))
    assert code == 1 and "not found" in err


def test_a_wrong_key_fails_the_push_cleanly(data_dir: Path, atlas: AtlasServer) -> None:
    atlas.api_key = "another"
    code, _, err = push(data_dir)
    assert code == 1 and err.count("\n") == 1 and "HTTP 403" in err


def sync_state(data_dir: Path, rid: str) -> dict[str, Any]:
    from node.services.atlas import sync_state as state

    result = run_with_db(load_settings(data_dir), lambda: state(rid))
    assert result is not None
    return result


async def test_sync_state_is_served_to_editors_only(client: Any, node: Any) -> None:
    app = client
    created = await app.post("/api/v1/records", json={
        "type": "organisation", "visibility": "public", "payload": MINIMAL_ORG},
        headers={"Authorization": f"Bearer {node.tokens['editor']}"})
    rid = (await created.json())["id"]
    resp = await app.get(f"/api/v1/records/{rid}/atlas", headers={"Authorization": f"Bearer {node.tokens['editor']}"})
    assert resp.status == 200
    body = await resp.json()
    assert body["state"] == "not_registered" and body["atlas_uuid"] is None
    resp = await app.get(f"/api/v1/records/{rid}/atlas", headers={"Authorization": f"Bearer {node.tokens['reader']}"})
    assert resp.status == 403
    assert (await app.get(f"/api/v1/records/{rid}/atlas")).status == 401
    other = rid.replace("organisation", "expert")
    resp = await app.get(f"/api/v1/records/{other}/atlas", headers={"Authorization": f"Bearer {node.tokens['admin']}"})
    assert resp.status == 404 and (await resp.json())["code"] == "not_found"


def test_a_registered_organisation_not_yet_pushed_is_pending(data_dir: Path) -> None:
    load(data_dir, [{"type": "organisation", "visibility": "public", "payload": organisation("Alpha Security GmbH")}])
    state = sync_state(data_dir, ids(data_dir)["Alpha Security GmbH"])
    assert state["state"] == "pending" and state["atlas_uuid"] is None


@pytest.fixture
def registered_node(node: Any, atlas: AtlasServer) -> Any:
    """The DE node with its Atlas key and one registered organisation (``ncc import`` keeps the status)."""
    key = node.data_dir / "keys" / "atlas-api-key"
    key.write_text(atlas.api_key)
    key.chmod(0o600)
    load(node.data_dir, [{"type": "organisation", "visibility": "public",
                          "payload": organisation("Alpha Security GmbH")}])
    return node


async def test_a_serving_node_pushes_by_itself_and_when_asked(
    app_client: Any, registered_node: Any, atlas: AtlasServer
) -> None:
    import asyncio

    from node.http.keys import CONTEXT

    app = await app_client(registered_node, atlas_url=atlas.url, atlas_push_interval_s="3600")
    for _ in range(200):  # the first turn runs at start
        if atlas.clusters:
            break
        await asyncio.sleep(0.05)
    (entry,) = atlas.clusters.values()
    assert entry["attributes"]["title"] == "Alpha Security GmbH"
    headers = registered_node.auth("admin")
    created = await app.post("/api/v1/records", headers=headers, json={
        "type": "organisation", "visibility": "public", "payload": organisation("Beta Crypto AG")})
    rid = (await created.json())["id"]
    # a registration decision queues the organisation and wakes the pusher (no hour-long wait)
    await app.server.app[CONTEXT].atlas.request(rid)
    for _ in range(200):
        if len(atlas.clusters) == 2:
            break
        await asyncio.sleep(0.05)
    assert sorted(c["attributes"]["title"] for c in atlas.clusters.values()) == [
        "Alpha Security GmbH", "Beta Crypto AG"]
    resp = await app.get(f"/api/v1/records/{rid}/atlas", headers=headers)
    assert (await resp.json())["state"] == "synced"


async def test_the_admin_page_shows_the_atlas_state(client: Any, node: Any) -> None:
    from tests.integration.test_portal import sign_in

    created = await client.post("/api/v1/records", headers=node.auth("editor"), json={
        "type": "organisation", "visibility": "public", "payload": MINIMAL_ORG})
    rid = (await created.json())["id"]
    await sign_in(client, node.tokens["editor"])
    text = await (await client.get(f"/admin/records/{rid}/edit")).text()
    assert 'id="atlas-h">ECCC Atlas</h2>' in text and "not registered" in text
