"""Erasure leaves no trace (DESIGN §11), end to end with real processes, proven on the bytes.

A node (DE) writes an expert and an organisation carrying distinctive words, plus a control
organisation; the hub pulls them; the two records are erased (``DELETE ?reason=erased``); the hub
pulls the tombstones; the purge job runs (every ``erasure_purge_s`` while serving, and at the clean
stop). Then every file under the test's root — both data directories (database, ``-wal``, ``-shm``,
keys, config) and the processes' logs next to them — is scanned for the erased words: as written,
lower-cased, folded as the full-text index stores them, and by their last characters (FTS5 stores a
term after the prefix it shares with the previous term, so a whole-word scan alone could miss a
remnant). The control record's word must be found, or the scan proves nothing.

On PostgreSQL the data lives in the server, not in a data directory: the proof there queries the
tables, the search index's entries and the GIN index pages (``pageinspect``) after the purge.
"""

from __future__ import annotations

import contextlib
import random
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from node.search.text import tokens
from tests.conftest import pg_problem
from tests.e2e.harness import Cluster, Instance, _pg, cluster, organisation, start_federation, wait_until

pytestmark = pytest.mark.e2e

PURGE_ENV = {"NCC_ERASURE_PURGE_S": "1"}
TAIL = 8  # characters of a word's end that any stored form of it must contain


def word(prefix: str) -> str:
    """A distinctive word: a readable (accented, capitalised) prefix and 12 random letters."""
    return prefix + "".join(random.choices(string.ascii_lowercase, k=12))


def needles(words: list[str]) -> dict[str, list[bytes]]:
    """Per word, every byte form a remnant of it could take (matched against lower-cased file bytes)."""
    out = {}
    for w in words:
        folded = "".join(tokens(w))
        forms = {w.lower(), folded, folded[-TAIL:]}
        out[w] = [f.encode() for f in forms]
    return out


def scan(root: Path, words: list[str]) -> dict[str, list[str]]:
    """Word -> files under ``root`` (recursively, every file) whose bytes hold one of its forms."""
    forms = needles(words)
    found: dict[str, list[str]] = {w: [] for w in words}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        with contextlib.suppress(FileNotFoundError):  # a -wal/-shm may vanish while we look
            data = path.read_bytes().lower()
            for w, variants in forms.items():
                if any(v in data for v in variants):
                    found[w].append(str(path.relative_to(root)))
    return {w: files for w, files in found.items() if files}


def create(node: Instance, token: str, rtype: str, payload: dict[str, Any], visibility: str = "public") -> str:
    created = node.post("/api/v1/records", {"type": rtype, "visibility": visibility, "payload": payload}, token)
    assert created.status == 201, created.body
    return str(created.json()["id"])


def erase(node: Instance, token: str, rid: str) -> None:
    gone = node.delete(f"/api/v1/records/{rid}?reason=erased", token)
    assert gone.status == 200, gone.body


def purged(inst: Instance, ids: list[str]) -> bool:
    marks = ",".join("?" for _ in ids)
    rows = inst.query(f"SELECT count(*) FROM erasures WHERE purged_at IS NOT NULL AND record_id IN ({marks})",
                      tuple(ids))
    return int(rows[0][0]) == len(ids)


def run_erasure(c: Cluster, env: dict[str, str] | None = None, *, wait: bool = True
                ) -> tuple[Instance, Instance, list[str], str, str]:
    """Hub and DE node (1 s purge interval unless ``env`` says otherwise): create, pull, erase, pull,
    and (``wait``) wait for both purges.

    Returns the hub, the node, the erased words, the control word and the control record's id.
    """
    erased_words = [word("Ökoquarz"), word("Zwölfkant"), word("Grünfeld"), word("Seraphine")]
    control = word("Kontroll")
    hub, nodes = start_federation(c, ("DE",), hub_env={**PURGE_ENV, **(env or {})})
    de = nodes["DE"]
    de.stop()
    de.env.update({**PURGE_ENV, **(env or {})})
    de.start()
    editor = de.token("editor")
    expert = create(de, editor, "expert", {
        "name": f"{erased_words[0]} {erased_words[1]}", "country": "DE",
        "description": f"Penetration testing of {erased_words[2]} substations.",
        "keywords": [erased_words[3]],
        "consent": {"given": True, "at": "2026-11-01T00:00:00Z", "scope": "public"},
    })
    org = create(de, editor, "organisation", organisation(
        "DE", f"{erased_words[2]} Sicherheit GmbH", f"Kryptografie für {erased_words[3]} und {erased_words[1]}."))
    kept = create(de, editor, "organisation", organisation("DE", f"{control} Labor GmbH", f"About {control}."))
    # a second version of the organisation: the older version's payload must go too
    current = de.get(f"/api/v1/records/{org}", editor).json()
    updated = de.put(f"/api/v1/records/{org}", {"payload": {**current["payload"], "website": "https://example.org"},
                                                "version": current["version"]}, editor)
    assert updated.status == 200, updated.body
    hub.ncc("sync")
    analyst = hub.token("analyst")
    hits = hub.get(f"/api/v1/search?q={quote(erased_words[2])}", analyst).json()
    assert {h["id"] for h in hits["results"]} == {expert, org}  # the hub held and indexed them
    ids = [expert, org]
    for rid in ids:
        erase(de, editor, rid)
    hub.ncc("sync")
    assert hub.get(f"/api/v1/records/{org}", analyst).status == 410
    if wait:
        wait_until(lambda: purged(de, ids) and purged(hub, ids), 30, "the purge job ran on node and hub")
    return hub, de, erased_words, control, kept


def test_erased_words_are_in_no_file_of_either_data_dir(tmp_path: Path) -> None:
    with cluster(tmp_path, "sqlite") as c:
        hub, de, erased_words, control, _ = run_erasure(c)
        # while serving: the periodic purge has run (WAL truncated, index rewritten, free pages zeroed)
        assert scan(tmp_path, erased_words) == {}
        assert set(scan(tmp_path, [control])) == {control}
        # the hub's signed receipts (DESIGN §14), checked by the node against the directory and the log;
        # a national record erased never left the node and needs none
        editor = de.token("editor")
        erase(de, editor, create(de, editor, "organisation", organisation("DE", "Intern GmbH", "National."),
                                 visibility="national"))
        status = de.ncc("erasure", "status").stdout.strip().splitlines()
        assert sum(line.startswith("verified ") and "purged at the hub" in line for line in status) == 2, status
        assert sum(line.startswith("never-shared ") for line in status) == 1, status
        assert status[-1] == ("3 erased: 2 purged with a verified receipt, 0 pending, 1 never shared, 0 invalid")
        # only the origin's service token reads its receipts
        assert hub.get("/federation/v1/erasures").status == 401
        assert hub.get("/federation/v1/erasures", hub.token("analyst")).status == 403
        # a clean stop runs the purge again and leaves the files as they are
        hub.stop()
        de.stop()
        assert scan(tmp_path, erased_words) == {}
        found = scan(tmp_path, [control])[control]
        assert any(f.startswith("hub/") for f in found) and any(f.startswith("de/") for f in found), found


def test_a_clean_stop_purges(tmp_path: Path) -> None:
    """With the periodic purge an hour away, the clean stop of ``ncc serve`` alone leaves no trace."""
    with cluster(tmp_path, "sqlite") as c:
        hub, de, erased_words, control, _ = run_erasure(c, {"NCC_ERASURE_PURGE_S": "3600"}, wait=False)
        assert scan(tmp_path, erased_words)  # the job has not run: the files still hold the words
        hub.stop()
        de.stop()
        assert scan(tmp_path, erased_words) == {}
        assert set(scan(tmp_path, [control])) == {control}


@pytest.mark.postgres
@pytest.mark.parametrize("vacuum_full", [False, True], ids=["vacuum", "vacuum-full"])
def test_erased_record_leaves_no_row_or_index_entry_on_postgres(tmp_path: Path, vacuum_full: bool) -> None:
    """PostgreSQL: no row version (live or dead, TOAST included) and no index page holds the erased words;
    with ``erasure_vacuum_full`` not even the free space of any page does."""
    if (problem := pg_problem()) is not None:
        pytest.skip(problem)
    env = {"NCC_ERASURE_VACUUM_FULL": "true"} if vacuum_full else {}
    with cluster(tmp_path, "postgres") as c:
        hub, de, erased_words, control, kept = run_erasure(c, env)
        for inst in (hub, de):
            for w in erased_words:
                folded = "".join(tokens(w))
                assert folded[-TAIL:] not in inst.db_text().lower(), (inst.name, w)  # no live row
                assert inst.query("SELECT count(*) FROM search_docs WHERE tsv @@ to_tsquery('simple', ?)",
                                  (folded,))[0][0] == 0
            pages = raw_pages(inst)
            assert pages.pending_tuples == 0  # the GIN pending list is empty
            # no tuple (live or dead) of any table or TOAST table, no page of any index (GIN included)
            assert pages.holding(erased_words, pages.tuples) == {}, inst.name
            assert pages.holding(erased_words, pages.indexes) == {}, inst.name
            assert pages.holding([control], pages.tuples), inst.name  # the scan sees data
            if vacuum_full:  # not even the pages' free space
                assert pages.holding(erased_words, pages.tables) == {}, inst.name
        assert hub.query("SELECT count(*) FROM search_docs WHERE id = ?", (kept,))[0][0] == 1


@dataclass
class Pages:
    tables: dict[str, bytes]  # table or TOAST table -> its raw pages, lower-cased
    tuples: dict[str, bytes]  # table or TOAST table -> the data of every tuple on its pages, live or dead
    indexes: dict[str, bytes]  # index -> its raw pages
    pending_tuples: int

    @staticmethod
    def holding(words: list[str], where: dict[str, bytes]) -> dict[str, list[str]]:
        """Word -> relations of ``where`` whose bytes hold one of its forms."""
        forms = needles(words)
        found = {w: [rel for rel, data in where.items() if any(v in data for v in forms[w])] for w in words}
        return {w: rels for w, rels in found.items() if rels}


def raw_pages(inst: Instance) -> Pages:
    """Read the database's pages with ``pageinspect``: tables, TOAST tables, every index."""
    async def work(conn: Any) -> Pages:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        public = ("SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                  " WHERE n.nspname = 'public' AND c.relkind = 'r'")
        rels = await conn.fetch(
            "SELECT c.oid::regclass::text AS rel, c.relkind AS kind FROM pg_class c"
            f" WHERE c.relpersistence = 'p' AND (c.oid IN ({public})"
            f" OR c.oid IN (SELECT reltoastrelid FROM pg_class WHERE oid IN ({public}))"
            f" OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN ({public})"
            f"  OR indrelid IN (SELECT reltoastrelid FROM pg_class WHERE oid IN ({public}))))"
        )
        tables, tuples, indexes = {}, {}, {}
        for row in rels:
            rel = row["rel"]
            blocks = await conn.fetchval(f"SELECT pg_relation_size('{rel}') / current_setting('block_size')::int")
            raw = b"".join([bytes(await conn.fetchval(f"SELECT get_raw_page('{rel}', {b})")) for b in range(blocks)])
            if row["kind"] == "i":
                indexes[rel] = raw.lower()
                continue
            tables[rel] = raw.lower()
            data = []
            for b in range(blocks):
                for item in await conn.fetch(
                        f"SELECT t_data FROM heap_page_items(get_raw_page('{rel}', {b})) WHERE t_data IS NOT NULL"):
                    data.append(bytes(item["t_data"]))
            tuples[rel] = b"\x00".join(data).lower()
        meta = await conn.fetchrow("SELECT n_pending_tuples FROM gin_metapage_info(get_raw_page('search_docs_tsv', 0))")
        return Pages(tables, tuples, indexes, int(meta["n_pending_tuples"]))

    return _pg(inst.db, work)  # type: ignore[no-any-return]
