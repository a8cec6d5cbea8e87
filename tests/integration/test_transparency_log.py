"""The hub's transparency log (DESIGN §14): signed heads, proofs that verify, entries by visibility,
directories on the record, and a hub upgraded to this wave starting its log with what it holds."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from federation import merkle
from federation.keys import b64url_decode
from federation.translog import record_entry, verify_head
from node.services.translog import record_append
from node.storage import translog as store
from tests.integration.support import Instance
from tests.integration.test_ingest_pipeline import hub_instance, rig  # noqa: F401 - fixtures

DE = "urn:ncc:DE:organisation:0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a{:02d}"


@pytest.fixture
def hub(make_instance: Any) -> Instance:
    return make_instance("", role="hub", tokens=("admin", "analyst"))


async def log_records(count: int, visibility: str = "public", origin: str = "DE") -> list[int]:
    """What ingest appends for accepted versions (the ingest hook is tested end to end elsewhere)."""
    async with in_transaction() as conn:
        return await store.append(conn, [
            record_append(DE.format(i).replace(":DE:", f":{origin}:"), 1, origin, False,
                          hashlib.sha256(f"{origin}{i}".encode()).hexdigest(), visibility)
            for i in range(count)])


def hub_keys(hub: Instance) -> dict[str, Any]:
    key = hub.key
    return {key.kid: key.public_key}


async def test_head_is_signed_and_proofs_verify(app_client: Any, hub: Instance) -> None:
    client = await app_client(hub)
    first = await (await client.get("/federation/v1/log/head")).json()
    assert first["size"] == 1  # the first directory, signed at `ncc init`, is on the record
    head1 = verify_head(first, hub_keys(hub))
    indexes = await log_records(12)
    assert indexes == list(range(1, 13))
    doc = await (await client.get("/federation/v1/log/head")).json()
    head = verify_head(doc, hub_keys(hub))
    assert head.size == 13
    # the same head is served until the log grows (not signed again for every reader)
    assert await (await client.get("/federation/v1/log/head")).json() == doc
    # inclusion of record 5, against the current head and against an older size
    resp = await client.get("/federation/v1/log/inclusion", params={"id": DE.format(5), "version": "1"})
    body = await resp.json()
    assert resp.status == 200 and body["index"] == 6 and body["size"] == 13
    leaf = merkle.leaf_hash(record_entry(DE.format(5), 1, "DE", False, hashlib.sha256(b"DE5").hexdigest()))
    path = [b64url_decode(p) for p in body["path"]]
    assert merkle.verify_inclusion(leaf, 6, 13, path, head.root)
    assert not merkle.verify_inclusion(leaf, 5, 13, path, head.root)
    older = await (await client.get("/federation/v1/log/inclusion", params={
        "id": DE.format(5), "version": "1", "size": "7"})).json()
    assert older["size"] == 7 and len(older["path"]) == 2  # [leaves 4-5], [leaves 0-3]
    root7 = merkle.root(7, await store.nodes(merkle.nodes_for_root(7)))
    assert merkle.verify_inclusion(leaf, 6, 7, [b64url_decode(p) for p in older["path"]], root7)
    # consistency from the first head to the current one
    proof = await (await client.get("/federation/v1/log/consistency", params={"from": "1", "to": "13"})).json()
    assert merkle.verify_consistency(1, 13, [b64url_decode(p) for p in proof["path"]], head1.root, head.root)


async def test_entries_and_inclusion_follow_visibility(app_client: Any, hub: Instance) -> None:
    client = await app_client(hub)
    await log_records(3, "public")
    async with in_transaction() as conn:
        await store.append(conn, [record_append(DE.format(50), 1, "DE", False, "ab" * 32, "network")])
    anonymous = await (await client.get("/federation/v1/log/entries", params={"origin": "DE"})).json()
    assert [e["entry"]["id"] for e in anonymous["entries"]] == [DE.format(i) for i in range(3)]
    assert set(anonymous["entries"][0]["entry"]) == {"id", "version", "origin", "deleted", "digest"}
    analyst = await (await client.get("/federation/v1/log/entries", params={"origin": "DE"},
                                      headers=hub.auth("analyst"))).json()
    assert len(analyst["entries"]) == 4 and analyst["next"] is None
    paged = await (await client.get("/federation/v1/log/entries", params={
        "origin": "DE", "after": str(analyst["entries"][0]["index"]), "limit": "2"}, headers=hub.auth("analyst"))).json()
    assert [e["index"] for e in paged["entries"]] == [e["index"] for e in analyst["entries"][1:3]]
    assert paged["next"] == analyst["entries"][2]["index"]
    hidden = await client.get("/federation/v1/log/inclusion", params={"id": DE.format(50), "version": "1"})
    assert hidden.status == 404 and (await hidden.json())["code"] == "not_found"
    shown = await client.get("/federation/v1/log/inclusion", params={"id": DE.format(50), "version": "1"},
                             headers=hub.auth("analyst"))
    assert shown.status == 200


@pytest.mark.parametrize(("params", "parameter"), [
    ({"id": "nope", "version": "1"}, "id"),
    ({"id": DE.format(1)}, "version"),
    ({"id": DE.format(1), "version": "1", "size": "999"}, "size"),
])
async def test_bad_inclusion_parameters_are_400(app_client: Any, hub: Instance, params: dict[str, str],
                                                parameter: str) -> None:
    client = await app_client(hub)
    await log_records(2)
    resp = await client.get("/federation/v1/log/inclusion", params=params)
    body = await resp.json()
    assert resp.status == 400 and body["code"] == "invalid_parameter"


async def test_bad_consistency_and_entries_parameters_are_400(app_client: Any, hub: Instance) -> None:
    client = await app_client(hub)
    for params in ({"from": "2", "to": "1"}, {"from": "1", "to": "99"}, {"from": "x", "to": "1"}, {}):
        resp = await client.get("/federation/v1/log/consistency", params=params)
        assert resp.status == 400 and (await resp.json())["code"] == "invalid_parameter", params
    for params in ({"origin": "de"}, {}, {"origin": "DE", "after": "-5"}):
        resp = await client.get("/federation/v1/log/entries", params=params)
        assert resp.status == 400 and (await resp.json())["code"] == "invalid_parameter", params


async def test_every_directory_is_logged(app_client: Any, hub: Instance) -> None:
    from node.http.keys import CONTEXT

    client = await app_client(hub)
    await client.server.app[CONTEXT].hub.publish_directory()
    everything = await store.entries(None, -1, 100, None)
    directories = [e for _, e in everything if '"directory"' in e]
    assert len(directories) == 2 and '"directory":2' in directories[1]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """An empty database (this directory's ``db_url`` is a migrated clone on PostgreSQL)."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'old.db'}"
    return str(request.getfixturevalue("pg_url"))


async def test_a_hub_upgraded_to_this_wave_logs_what_it_holds(empty_db: str) -> None:
    """The migration that creates the log starts it with the held records, in ingest order per node."""
    from tortoise.connection import connections

    from node.storage import db, sql

    db_url = empty_db

    await db.migrate(db_url, target="ncc.0014_atlas_sync")
    conn = connections.get("default")
    for origin, seq, version in (("FR", 2, 1), ("DE", 7, 3), ("DE", 3, 1), ("FR", 1, 2)):
        rid = DE.format(seq).replace(":DE:", f":{origin}:")
        await sql.execute(conn, "INSERT INTO hub_records (id, origin, type, version, visibility, deleted, digest, "
                                "issued_at, envelope, node_seq, quarantined) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          [rid, origin, "organisation", version, "public", False, "cd" * 32, "2026-01-01T00:00:00Z",
                           "{}", seq, False])
    await db.close_db()
    await db.open_db(db_url)
    try:
        rows = await store.entries(None, -1, 10, None)
        assert [(i, __import__("orjson").loads(e)["id"][8:10]) for i, e in rows] == [
            (0, "DE"), (1, "DE"), (2, "FR"), (3, "FR")]
        assert __import__("orjson").loads(rows[1][1])["version"] == 3
        assert await store.size() == 4
        nodes = await store.nodes(merkle.nodes_for_root(4))
        leaves = [merkle.leaf_hash(e.encode()) for _, e in rows]
        assert merkle.root(4, nodes) == merkle.node_hash(merkle.node_hash(leaves[0], leaves[1]),
                                                         merkle.node_hash(leaves[2], leaves[3]))
    finally:
        await db.close_db()


async def test_ingest_logs_exactly_the_versions_it_accepts(rig: Any) -> None:  # noqa: F811 - the fixture
    """Every accepted version and tombstone is appended in the ingest transaction, in feed order;
    duplicates, stale versions and refused lines are not."""
    from node.services.translog import TransparencyLog
    from node.storage.hub_models import LogEntry

    feed = rig.feed
    first = [feed.record() for _ in range(3)]
    feed.serve(*first)
    feed.serve(feed.record(first[0]["id"], version=2, name="Renamed GmbH"))
    feed.serve(feed.record(first[1]["id"], version=2, deleted=True))
    feed.serve(b'{"not": "an envelope"')
    result = await rig.puller.pull("DE")
    assert result.ok, result.error
    rows = await LogEntry.filter(origin="DE").order_by("index")
    assert [(r.record_id, r.version) for r in rows] == [
        *[(r["id"], 1) for r in first], (first[0]["id"], 2), (first[1]["id"], 2)]
    assert [__import__("orjson").loads(r.entry)["deleted"] for r in rows] == [False, False, False, False, True]
    log = TransparencyLog(lambda: None, lambda: None)  # type: ignore[arg-type,return-value]
    size = await store.size()
    root = merkle.root(size, await store.nodes(merkle.nodes_for_root(size)))
    for row in rows:
        path = [b64url_decode(p) for p in await log.inclusion(row.index, size)]
        assert merkle.verify_inclusion(merkle.leaf_hash(row.entry.encode()), row.index, size, path, root)
    again = await rig.puller.pull("DE")  # nothing new: nothing logged twice
    assert again.ok and await store.size() == size
