"""Migrations upgrade an existing database in place: a database made by 0001 keeps its rows."""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path
from typing import Any

from tortoise.connection import connections

from node.cli import main
from node.config import database_url, render_config
from node.files import write_private
from node.keystore import create_key
from node.storage import db, sql

HUB_TABLES = {
    "hub_nodes",
    "hub_node_keys",
    "hub_directories",
    "hub_invites",
    "hub_records",
    "hub_quarantine",
    "hub_pull_state",
}
INITIAL_TABLES = {"api_tokens", "counters", "feed", "node_state", "records", "record_versions", "seen_jtis"}
RID = "urn:ncc:DE:organisation:0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a11"
ENVELOPE = '{"ncc":1,"id":"' + RID + '","version":1}'


async def tables() -> set[str]:
    conn = connections.get("default")
    if conn.capabilities.dialect == "sqlite":
        rows = await sql.fetch(conn, "SELECT name FROM sqlite_master WHERE type = 'table'")
        return {r["name"] for r in rows}
    rows = await sql.fetch(conn, "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'")
    return {r["name"] for r in rows}


async def build_old_database(url: str) -> set[str]:
    """Migrate to 0001 only and fill it the way a node of that release would have."""
    await db.migrate(url, target="ncc.0001_initial")
    try:
        conn = connections.get("default")
        present = await tables()
        rows: list[tuple[str, list[Any]]] = [
            ("INSERT INTO counters (name, value) VALUES (?, ?)", ["seq", 7]),
            (
                "INSERT INTO api_tokens (jti, role, subject, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
                ["j1", "editor", "erika", "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z", None],
            ),
            (
                (
                    "INSERT INTO records (id, type, origin, version, visibility, deleted, seq, issued_at, envelope) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                [RID, "organisation", "DE", 1, "public", False, 7, "2026-01-01T00:00:00Z", ENVELOPE],
            ),
            (
                (
                    "INSERT INTO record_versions (record_id, version, seq, visibility, deleted, issued_at, digest, envelope) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                [RID, 1, 7, "public", False, "2026-01-01T00:00:00Z", "ab" * 32, ENVELOPE],
            ),
            ("INSERT INTO feed (record_id, seq, envelope) VALUES (?, ?, ?)", [RID, 7, ENVELOPE]),
            ("INSERT INTO node_state (key, value) VALUES (?, ?)", ["enrolled", "no"]),
        ]
        for statement, values in rows:
            await sql.execute(conn, statement, values)
        return present
    finally:
        await db.close_db()


async def migrate_latest(url: str) -> None:
    # in one coroutine: tortoise's context lives in this task, and asyncio.run gives each run its own
    # copy of the context, so closing in another run would leave the connections (and pytest) hanging
    await db.migrate(url)
    await db.close_db()


async def read_upgraded(url: str) -> dict[str, Any]:
    from node.storage.hub_models import HubRecord
    from node.storage.models import ApiToken, Counter, FeedEntry, NodeState, Record, RecordVersion

    await db.open_db(url)
    try:
        return {
            "tables": await tables(),
            "seq": (await Counter.get(name="seq")).value,
            "token": (await ApiToken.get(jti="j1")).role,
            "record": (await Record.get(id=RID)).envelope,
            "versions": await RecordVersion.filter(record_id=RID).count(),
            "feed": (await FeedEntry.get(record_id=RID)).seq,
            "state": (await NodeState.get(key="enrolled")).value,
            "hub_records": await HubRecord.all().count(),
            "next_seq": await sql.next_sequence(connections.get("default")),
        }
    finally:
        await db.close_db()


def test_database_created_by_0001_is_upgraded_in_place(db_url: str, tmp_path: Path) -> None:
    url = database_url(db_url, tmp_path)
    before = asyncio.run(build_old_database(url))
    assert INITIAL_TABLES <= before
    assert not HUB_TABLES & before  # 0002 has not run

    asyncio.run(migrate_latest(url))
    after = asyncio.run(read_upgraded(url))
    assert INITIAL_TABLES | HUB_TABLES <= after["tables"]
    assert after["seq"] == 7 and after["next_seq"] == 8
    assert after["token"] == "editor" and after["record"] == ENVELOPE and after["versions"] == 1
    assert after["feed"] == 7 and after["state"] == "no" and after["hub_records"] == 0


def test_running_node_commands_upgrade_an_old_database(db_url: str, tmp_path: Path) -> None:
    """The real path: an instance whose database is at 0001 runs a command; the database catches up."""
    url = database_url(db_url, tmp_path)
    asyncio.run(build_old_database(url))
    data_dir = tmp_path / "node"
    data_dir.mkdir(mode=0o700)  # an instance's files are private (ncc refuses to run otherwise)
    write_private(data_dir / "config.toml", render_config({"role": "node", "country": "DE", "db": db_url}))
    create_key(data_dir / "keys" / "instance.pem")
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["token", "revoke", "--data-dir", str(data_dir), "j1"])
    assert code == 0, err.getvalue()
    after = asyncio.run(read_upgraded(url))
    assert HUB_TABLES <= after["tables"]
    assert after["record"] == ENVELOPE


def test_migrating_twice_is_a_no_op(db_url: str, tmp_path: Path) -> None:
    url = database_url(db_url, tmp_path)

    async def twice() -> set[str]:
        await db.migrate(url)
        await db.close_db()
        await db.migrate(url)
        try:
            return await tables()
        finally:
            await db.close_db()

    assert INITIAL_TABLES | HUB_TABLES <= asyncio.run(twice())


def test_an_up_to_date_database_opens_without_the_migrator_and_a_behind_one_is_migrated(
    db_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """``open_db`` skips tortoise's migrator only when the database records exactly this program's
    migrations: one behind (0018 not applied) is migrated, one up to date is not."""
    url = database_url(db_url, tmp_path)
    latest = max(db.migration_names())
    previous = max(db.migration_names() - {latest})
    calls: list[str] = []
    real = db.migrate

    async def counted(db_url: str, target: str | None = None) -> None:
        calls.append(target or "latest")
        await real(db_url, target)

    async def scenario() -> list[str]:
        await real(url, target=f"ncc.{previous}")
        await db.close_db()
        monkeypatch.setattr(db, "migrate", counted)
        await db.open_db(url)  # behind by one: the migrator runs
        try:
            applied = {r["name"] for r in await sql.fetch(connections.get("default"),
                                                           "SELECT name FROM tortoise_migrations")}
        finally:
            await db.close_db()
        assert applied == db.migration_names()
        await db.open_db(url)  # up to date: it does not
        await db.close_db()
        return calls

    assert asyncio.run(scenario()) == ["latest"]


def test_0006_drops_the_fts_row_triggers_of_an_older_sqlite_database(tmp_path: Path) -> None:
    """Databases made before 0006 kept FTS5 in step with row triggers (as 0003 then created them);
    the search backend now writes FTS5 itself, so a trigger left behind would index every document
    twice. Migrating drops them."""
    url = database_url("", tmp_path)

    async def old_then_latest() -> tuple[set[str], set[str]]:
        await db.migrate(url, target="ncc.0005_bigint_versions")
        conn = connections.get("default")
        await sql.execute(
            conn,
            "CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN "
            "INSERT INTO search_fts (rowid, ftitle, fbody) VALUES (new.doc, new.ftitle, new.fbody); END",
        )
        await sql.execute(
            conn,
            "CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN INSERT INTO search_fts "
            "(search_fts, rowid, ftitle, fbody) VALUES ('delete', old.doc, old.ftitle, old.fbody); END",
        )
        triggers = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        before = {r["name"] for r in await sql.fetch(conn, triggers)}
        await db.close_db()
        await db.migrate(url)
        try:
            return before, {r["name"] for r in await sql.fetch(connections.get("default"), triggers)}
        finally:
            await db.close_db()

    before, after = asyncio.run(old_then_latest())
    assert before == {"search_docs_ai", "search_docs_ad"}
    assert after == set()


def test_0010_reindexes_held_documents_with_default_deny(tmp_path: Path) -> None:
    """Data held before disclosure (DESIGN §11): a document indexed with a restricted value in its
    text (as older releases could) is rebuilt from its record, so anonymous search no longer finds
    it by that value, while node users do (the restricted part)."""
    import orjson

    from node.search import SearchQuery, backend_for

    url = database_url("", tmp_path)
    rid = "urn:ncc:DE:organisation:0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a11"
    payload = {"legal_name": "Cyber Lab GmbH", "country": "DE", "org_type": "ctype.industry-sme",
               "fields_of_activity": ["foa.academia-research-innovation"], "domains": ["cry"],
               "subdomains": ["cry.10"], "description": "Post-quantum cryptography.",
               "identifiers": {"vat": "DE811907980"}}
    envelope = orjson.dumps({"ncc": 1, "id": rid, "type": "organisation", "schema": "organisation/1",
                             "origin": "DE", "version": 1, "issued_at": "2026-01-01T00:00:00Z",
                             "visibility": "public", "deleted": False, "payload": payload}).decode()

    async def old_then_latest() -> tuple[int, int, int]:
        await db.migrate(url, target="ncc.0008_divergence")
        conn = connections.get("default")
        await sql.execute(conn, "INSERT INTO records (id, type, origin, version, visibility, deleted, seq, issued_at, "
                                "envelope) VALUES (?, 'organisation', 'DE', 1, 'public', ?, 1, ?, ?)",
                          [rid, False, "2026-01-01T00:00:00Z", envelope])
        text = "Post-quantum cryptography. DE811907980"
        await sql.execute(conn, "INSERT INTO search_docs (doc, id, type, origin, visibility, version, issued_at, "
                                "title, text, ftitle, fbody) VALUES (1, ?, 'organisation', 'DE', 'public', 1, ?, "
                                "'Cyber Lab GmbH', ?, 'cyber lab gmbh', ?)",
                          [rid, "2026-01-01T00:00:00Z", text, "post quantum cryptography de811907980"])
        await sql.execute(conn, "INSERT INTO search_fts (rowid, ftitle, fbody) VALUES (1, 'cyber lab gmbh', "
                                "'post quantum cryptography de811907980')")
        await db.close_db()
        await db.migrate(url)
        try:
            conn = connections.get("default")
            backend = backend_for("sqlite", accelerated=False)
            anonymous = await backend.search(conn, SearchQuery(q="DE811907980"))
            user = await backend.search(conn, SearchQuery(q="DE811907980", visibilities=frozenset({"public"}),
                                                          restricted=True))
            listed = await backend.search(conn, SearchQuery(q="cryptography"))
            return anonymous.total, user.total, listed.total
        finally:
            await db.close_db()

    assert asyncio.run(old_then_latest()) == (0, 1, 1)
