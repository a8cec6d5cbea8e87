"""SQLite backend: an FTS5 external-content table over pre-normalised text, bm25 ranking.

The FTS5 table reads its content from ``search_docs.ftitle``/``fbody`` (the folded tokens, joined by
spaces). ``write_docs``/``delete_ids`` keep it in step with one ``INSERT … SELECT`` per batch (not
per-row triggers: FTS5 flushes its pending terms after every trigger statement), so a document's
row, tags and full-text entry are written in the same transaction. Title matches weigh 10× body
matches.

The restricted part of a document (DESIGN §11) is a third FTS5 column, ``frest``: public queries
name their columns (``{ftitle fbody} : …``), so a word found only in a restricted field matches
nothing for them; queries that may see restricted fields match all three.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import SearchDoc
from .sql import Plan, SqlSearchBackend
from .text import Clause

TITLE_WEIGHT = 10.0
BODY_WEIGHT = 1.0
RESTRICTED_WEIGHT = 1.0

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS search_docs (
        doc INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        origin TEXT NOT NULL,
        visibility TEXT NOT NULL,
        version INTEGER NOT NULL,
        issued_at TEXT NOT NULL,
        title TEXT NOT NULL,
        text TEXT NOT NULL,
        ftitle TEXT NOT NULL,
        fbody TEXT NOT NULL,
        rtext TEXT NOT NULL DEFAULT '',
        frest TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX IF NOT EXISTS search_docs_newest ON search_docs (issued_at DESC, id DESC)",
    """CREATE TABLE IF NOT EXISTS search_tags (
        dim TEXT NOT NULL,
        value TEXT NOT NULL,
        doc INTEGER NOT NULL,
        PRIMARY KEY (dim, value, doc)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS search_tags_doc ON search_tags (doc, dim, value)",
    """CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(
        ftitle, fbody, frest, content='search_docs', content_rowid='doc',
        tokenize='unicode61 remove_diacritics 0', prefix='2 3'
    )""",
    # Until 2026-11 the FTS5 table was kept in step by row triggers. FTS5 flushes its pending terms at
    # the end of every statement a trigger runs, so a 1,000-document page made 1,000 tiny segments to
    # merge (3× the cost of the same rows in one statement); the writes below replace them.
    "DROP TRIGGER IF EXISTS search_docs_ai",
    "DROP TRIGGER IF EXISTS search_docs_ad",
)


def fts5_query(clauses: Sequence[Clause], restricted: bool = False) -> str:
    """Build an FTS5 MATCH expression from parsed clauses; without ``restricted``, every clause is
    limited to the public columns.

    Tokens are letters and digits only, so quoting them as FTS5 strings is always safe: no user
    syntax reaches the engine.
    """
    parts = []
    scope = "" if restricted else "{ftitle fbody} : "
    for clause in clauses:
        parts.append(scope + '"' + " ".join(clause.tokens) + '"' + ("*" if clause.prefix else ""))
    return " AND ".join(parts)


class SqliteSearchBackend(SqlSearchBackend):
    """FTS5 implementation of :class:`node.search.base.SearchBackend`."""

    dialect = "sqlite"
    # Without it the planner may scan every tag of the counted dimensions instead of the matches.
    facet_join = "CROSS JOIN"
    changes_ddl = "CREATE TABLE IF NOT EXISTS search_changes (id INTEGER PRIMARY KEY AUTOINCREMENT, doc INTEGER NOT NULL)"
    #: Columns the accelerator reads for a document's folded text: already tokens joined by spaces.
    folded_columns = "ftitle, fbody, frest"

    @staticmethod
    def folded(title: str, body: str, restricted: str = "") -> tuple[str, str, str]:
        """Return (title, body, restricted) as folded tokens joined by single spaces, from ``folded_columns``."""
        return title, body, restricted

    async def create_schema(self, conn: Any) -> None:
        """Create the tables, index, FTS5 table and triggers if missing (idempotent)."""
        # One statement at a time: sqlite3's executescript() would commit the caller's transaction.
        for statement in DDL:
            await conn.execute_query(statement, [])
        await self.create_counts(conn)
        await self.create_changes(conn)

    def match_condition(self, clauses: tuple[Clause, ...], restricted: bool = False) -> tuple[str, list[Any]]:
        return "d.doc IN (SELECT rowid FROM search_fts WHERE search_fts MATCH ?)", [fts5_query(clauses, restricted)]

    def first_matches(
        self, clauses: tuple[Clause, ...], restricted: bool, limit: int
    ) -> tuple[str, list[Any]]:
        # From the full-text table itself: through ``match_condition`` SQLite materialises every
        # match as an IN list before the LIMIT (~5-15 ms for a common phrase at 100k documents).
        return "SELECT rowid AS doc FROM search_fts WHERE search_fts MATCH ? LIMIT ?", [
            fts5_query(clauses, restricted),
            limit,
        ]

    async def clause_exists(
        self, conn: Any, clause: Clause, visibilities: Sequence[str], restricted: bool = False
    ) -> bool:
        # Driven from the full-text matches (CROSS JOIN fixes the order) so that the first visible
        # one ends it, instead of materialising every match of a common word as an IN list.
        visibility, params = self.in_list("d.visibility", visibilities)
        rows = await self.execute(
            conn,
            "SELECT 1 FROM search_fts CROSS JOIN search_docs d ON d.doc = search_fts.rowid "
            f"WHERE search_fts MATCH ? AND {visibility} LIMIT 1",
            [fts5_query((clause,), restricted), *params],
        )
        return bool(rows)

    def ranked_page(self, plan: Plan, limit: int, offset: int) -> tuple[str, list[Any]]:
        where, params = self.conditions(plan, text_match=False)
        text = (
            "SELECT d.id, d.type, d.origin, d.title, d.text, d.version, -m.r AS score, d.rtext FROM "
            f"(SELECT rowid AS doc, bm25(search_fts, {TITLE_WEIGHT}, {BODY_WEIGHT}, "
            f"{RESTRICTED_WEIGHT if plan.restricted else 0.0}) AS r "
            "FROM search_fts WHERE search_fts MATCH ?) m JOIN search_docs d ON d.doc = m.doc "
            f"WHERE {where} ORDER BY m.r, d.issued_at DESC, d.id LIMIT ? OFFSET ?"
        )
        return text, [fts5_query(plan.clauses, plan.restricted), *params, limit, offset]

    #: The highest document number ever used (AUTOINCREMENT never reuses one).
    _LAST_DOC = "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'search_docs'), 0)"

    async def write_docs(self, conn: Any, docs: Sequence[SearchDoc]) -> None:
        # The caller's transaction holds SQLite's write lock (or fails to get it, if another writer
        # committed since it began), so numbering after the highest number ever used is safe; it
        # spares a lookup by id for every full-text row and every tag.
        _, rows = await conn.execute_query(self._LAST_DOC)
        numbered = list(enumerate(docs, start=int(rows[0][0]) + 1))
        await conn.execute_many(
            "INSERT INTO search_docs (doc, id, type, origin, visibility, version, issued_at, title, text, "
            "ftitle, fbody, rtext, frest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [n, doc.id, doc.type, doc.origin, doc.visibility, doc.version, doc.issued_at, doc.title, doc.text,
                 *doc.folded, doc.restricted, doc.folded_restricted]
                for n, doc in numbered
            ],
        )
        # Ascending rowids: FTS5 flushes its pending terms whenever a rowid is lower than the last one.
        await conn.execute_many(
            "INSERT INTO search_fts (rowid, ftitle, fbody, frest) VALUES (?, ?, ?, ?)",
            [[n, *doc.folded, doc.folded_restricted] for n, doc in numbered],
        )
        # In primary-key order, for locality in the (dim, value, doc) tree.
        tags = sorted((dim, value, n) for n, doc in numbered for dim, values in doc.tags.items() for value in values)
        if tags:
            await conn.execute_many("INSERT OR IGNORE INTO search_tags (dim, value, doc) VALUES (?, ?, ?)", tags)

    async def write_new_docs(self, conn: Any, docs: Sequence[SearchDoc]) -> None:
        # write_docs numbers the documents after the highest number ever used (the caller's
        # transaction holds the write lock), so the new ones are exactly those above it: the change
        # log takes them by a range of the primary key instead of looking each id up.
        _, rows = await conn.execute_query(self._LAST_DOC)
        await self.write_docs(conn, docs)
        await conn.execute_query(
            "INSERT INTO search_changes (doc) SELECT doc FROM search_docs WHERE doc > ? ORDER BY doc",
            [int(rows[0][0])],
        )

    async def scrub(self, conn: Any) -> None:
        """Rewrite the full-text index so that no segment keeps the terms of deleted documents.

        FTS5's ``delete`` only adds a tombstone entry in a new segment; the old segments still hold
        the deleted document's terms (folded, readable in the file) until a merge rewrites them,
        and SQLite 3.40 has no FTS5 ``secure-delete`` option. ``optimize`` merges every segment
        into one (the freed pages are zeroed by ``secure_delete``). Its cost grows with the index
        (README "Erasure" gives measured figures), so the erasure job runs it only when an
        erasure is pending, at most once every ``erasure_purge_s``.
        """
        await conn.execute_query("INSERT INTO search_fts (search_fts) VALUES ('optimize')", [])

    async def delete_ids(self, conn: Any, ids: Sequence[str]) -> None:
        ids_sql, params = self.in_list("id", ids)
        await conn.execute_query(
            f"DELETE FROM search_tags WHERE doc IN (SELECT doc FROM search_docs WHERE {ids_sql})", params
        )
        await conn.execute_query(
            "INSERT INTO search_fts (search_fts, rowid, ftitle, fbody, frest) "
            f"SELECT 'delete', doc, ftitle, fbody, frest FROM search_docs WHERE {ids_sql} ORDER BY doc",
            params,
        )
        await conn.execute_query(f"DELETE FROM search_docs WHERE {ids_sql}", params)
