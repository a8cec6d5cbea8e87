"""PostgreSQL backend: a ``tsvector`` column with a GIN index, ``ts_rank`` ranking.

The ``tsvector`` and ``tsquery`` values are built here as literals from the Python tokens (title
lexemes weight A, body lexemes D), not by a text search configuration: PostgreSQL's parser and
locale never see the text, so it matches exactly what SQLite matches. Phrases use ``<->``,
prefixes ``:*``.

The restricted part of a document (DESIGN §11) is in the same ``tsvector`` at weight C; queries
that may not see it restrict every lexeme to weights A and D (``'word':AD``), so a word found only
in a restricted field matches nothing for them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from .base import SearchDoc
from .sql import Plan, SqlSearchBackend
from .text import Clause, tokens

MAX_POSITION = 16383  # PostgreSQL's limit for a lexeme position
MAX_POSITIONS_PER_LEXEME = 255

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS search_docs (
        doc BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        origin TEXT NOT NULL,
        visibility TEXT NOT NULL,
        version BIGINT NOT NULL,
        issued_at TEXT NOT NULL,
        title TEXT NOT NULL,
        text TEXT NOT NULL,
        tsv TSVECTOR NOT NULL,
        rtext TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX IF NOT EXISTS search_docs_tsv ON search_docs USING GIN (tsv)",
    "CREATE INDEX IF NOT EXISTS search_docs_newest ON search_docs (issued_at DESC, id DESC)",
    """CREATE TABLE IF NOT EXISTS search_tags (
        dim TEXT NOT NULL,
        value TEXT NOT NULL,
        doc BIGINT NOT NULL REFERENCES search_docs (doc) ON DELETE CASCADE,
        PRIMARY KEY (dim, value, doc)
    )""",
    "CREATE INDEX IF NOT EXISTS search_tags_doc ON search_tags (doc, dim, value)",
)


def _quote(token: str) -> str:
    # Tokens are letters and digits only; escaping stays as a guard should that ever change.
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(folded_title: str, folded_body: str, folded_restricted: str = "") -> str:
    """Return the ``tsvector`` input text of a document: title lexemes at weight A, body at D,
    the restricted part at C.

    Takes the document's folded text (:attr:`SearchDoc.folded`: tokens joined by spaces). A
    one-position gap separates the parts so that no phrase spans two.
    """
    positions: dict[str, list[str]] = {}
    numbered = itertools.chain(
        ((token, "A") for token in folded_title.split()), [("", "")],
        ((token, "") for token in folded_body.split()), [("", "")],
        ((token, "C") for token in folded_restricted.split()),
    )
    for position, (token, weight) in enumerate(numbered, start=1):
        if not token:
            continue
        if weight == "C" and position > MAX_POSITION and token not in positions:
            # A lexeme without positions has no weight, and PostgreSQL lets a weight-restricted
            # query match it: a restricted word past the last position is left out, never leaked.
            continue
        held = positions.setdefault(token, [])
        if position <= MAX_POSITION and len(held) < MAX_POSITIONS_PER_LEXEME:
            held.append(f"{position}{weight}")
    return " ".join(
        _quote(token) + (":" + ",".join(held) if held else "") for token, held in positions.items()
    )


def tsquery_literal(clauses: Sequence[Clause], restricted: bool = False) -> str:
    """Return ``tsquery`` input text requiring every clause (phrases with ``<->``); without
    ``restricted``, every lexeme only matches the public weights (A title, D body)."""
    parts = []
    weights = "" if restricted else "AD"
    for clause in clauses:
        words = [_quote(token) + (":" + weights if weights else "") for token in clause.tokens]
        if clause.prefix:
            words[-1] = _quote(clause.tokens[-1]) + ":*" + weights
        parts.append("(" + " <-> ".join(words) + ")")
    return " & ".join(parts)


class PostgresSearchBackend(SqlSearchBackend):
    """``tsvector``/GIN implementation of :class:`node.search.base.SearchBackend`."""

    dialect = "postgres"
    changes_ddl = "CREATE TABLE IF NOT EXISTS search_changes (id BIGSERIAL PRIMARY KEY, doc BIGINT NOT NULL)"
    #: Columns the accelerator reads for a document's text (folded here, as for the tsvector).
    folded_columns = "title, text, rtext"

    @staticmethod
    def folded(title: str, body: str, restricted: str = "") -> tuple[str, str, str]:
        """Return (title, body, restricted) as folded tokens joined by single spaces."""
        return " ".join(tokens(title)), " ".join(tokens(body)), " ".join(tokens(restricted))

    async def create_schema(self, conn: Any) -> None:
        """Create the tables and indexes if missing (idempotent)."""
        for statement in DDL:
            await conn.execute_query(statement, [])
        await self.create_counts(conn)
        await self.create_changes(conn)

    def sql(self, text: str) -> str:
        counter = itertools.count(1)
        return "".join(f"${next(counter)}" if char == "?" else char for char in text)

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?::text[])", [list(values)]

    def match_condition(self, clauses: tuple[Clause, ...], restricted: bool = False) -> tuple[str, list[Any]]:
        return "d.tsv @@ ?::tsquery", [tsquery_literal(clauses, restricted)]

    def ranked_page(self, plan: Plan, limit: int, offset: int) -> tuple[str, list[Any]]:
        where, params = self.conditions(plan)
        text = (
            "SELECT d.id, d.type, d.origin, d.title, d.text, d.version, ts_rank(d.tsv, ?::tsquery) AS score, "
            f"d.rtext FROM search_docs d WHERE {where} ORDER BY score DESC, d.issued_at DESC, d.id LIMIT ? OFFSET ?"
        )
        return text, [tsquery_literal(plan.clauses, plan.restricted), *params, limit, offset]

    async def write_docs(self, conn: Any, docs: Sequence[SearchDoc]) -> None:
        columns: list[list[Any]] = [[] for _ in range(10)]
        for doc in docs:
            row = (
                doc.id,
                doc.type,
                doc.origin,
                doc.visibility,
                doc.version,
                doc.issued_at,
                doc.title,
                doc.text,
                tsvector_literal(*doc.folded, doc.folded_restricted),
                doc.restricted,
            )
            for column, value in zip(columns, row):
                column.append(value)
        await self.execute(
            conn,
            "INSERT INTO search_docs (id, type, origin, visibility, version, issued_at, title, text, tsv, rtext) "
            "SELECT i, ty, o, v, ve, ia, ti, tx, tsv::tsvector, rt FROM unnest(?::text[], ?::text[], ?::text[], "
            "?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[]) "
            "AS u(i, ty, o, v, ve, ia, ti, tx, tsv, rt)",
            columns,
        )
        tags: list[list[str]] = [[], [], []]
        for doc in docs:
            for dim, values in doc.tags.items():
                for value in values:
                    tags[0].append(doc.id)
                    tags[1].append(dim)
                    tags[2].append(value)
        if tags[0]:
            await self.execute(
                conn,
                "INSERT INTO search_tags (dim, value, doc) SELECT u.dim, u.value, d.doc "
                "FROM unnest(?::text[], ?::text[], ?::text[]) AS u(id, dim, value) "
                "JOIN search_docs d ON d.id = u.id ON CONFLICT DO NOTHING",
                tags,
            )

    async def scrub(self, conn: Any) -> None:
        """Rebuild the GIN index so that no entry key (a folded word) of deleted documents remains.

        GIN removes a deleted row's item pointers at VACUUM but never the entry key itself, and a
        fresh insert may still sit in the pending list: flush that, then ``REINDEX CONCURRENTLY``
        (reads and writes go on meanwhile). Must run outside a transaction; cost grows with the
        index (README "Erasure"), so the erasure job runs it only when an erasure is pending.
        """
        await self.execute(conn, "SELECT gin_clean_pending_list('search_docs_tsv'::regclass)")
        # a REINDEX CONCURRENTLY that died half-way leaves an invalid copy behind: drop it first
        await conn.execute_script("DROP INDEX CONCURRENTLY IF EXISTS search_docs_tsv_ccnew")
        await conn.execute_script("REINDEX INDEX CONCURRENTLY search_docs_tsv")

    async def delete_ids(self, conn: Any, ids: Sequence[str]) -> None:
        await self.execute(conn, "DELETE FROM search_docs WHERE id = ANY(?::text[])", [list(ids)])
