"""The search interface: documents, queries, results and the backend protocol.

Everything dialect-specific lives in the backends (``sqlite.py``, ``postgres.py``); callers only
see these types. A backend stores a *derivative* of verified records: the lead writes it in the
same transaction as the record, so the index and the records never drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from .text import tokens

#: Filter and facet dimensions, in the order facets are returned.
DIMENSIONS: tuple[str, ...] = (
    "type",
    "country",
    "domain",
    "subdomain",
    "sector",
    "technology",
    "use_case",
    "role",
    "org_type",
    "membership",
)

#: The ``membership`` tag of every record that is not an organisation (DESIGN §12: the filter
#: ``membership=registered`` narrows organisations only, other types are unaffected). Never shown.
MEMBERSHIP_NOT_APPLICABLE = "-"
MEMBERSHIP_STATUSES = ("applied", "assessed", "registered", "rejected", "revoked")

VISIBILITIES: frozenset[str] = frozenset({"public", "network", "national"})

MAX_LIMIT = 100


@dataclass(frozen=True)
class SearchDoc:
    """What the index holds for one verified, non-deleted record.

    ``text`` holds names (incl. ``national_name``), description/objective, keywords, capabilities and
    the vocabulary labels of the record's tags; the description comes first so that a snippet
    without a match starts with it. ``tags`` maps a dimension of :data:`DIMENSIONS` to vocabulary
    ids; ``domain`` already includes the parents of the record's sub-domains.

    A document has a public and a restricted part in its one row (DESIGN §11): ``title``, ``text``
    and ``tags`` come from the fields the record's schema marks ``x-ncc-public`` only; ``restricted``
    holds the text of every other field (identifiers, address, contact, assessment, …), which only
    queries with :attr:`SearchQuery.restricted` match, rank and snippet.
    """

    id: str
    type: str
    origin: str
    visibility: str
    version: int
    issued_at: str  # "YYYY-MM-DDTHH:MM:SSZ"
    title: str
    text: str
    tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    restricted: str = ""

    @cached_property
    def folded(self) -> tuple[str, str]:
        """(title, text) as folded tokens joined by single spaces: what both engines index.

        Computed once and kept with the document (a pickled document carries it), so the hub's
        verification worker pays for the folding, not the process that writes the index.
        """
        return " ".join(tokens(self.title)), " ".join(tokens(self.text))

    @cached_property
    def folded_restricted(self) -> str:
        """The restricted part as folded tokens joined by single spaces."""
        return " ".join(tokens(self.restricted))


@dataclass(frozen=True)
class SearchQuery:
    """One search request.

    ``q`` is free text (any string: user syntax is never passed to the engine). ``filters`` maps a
    dimension to the accepted values (OR within a dimension, AND across dimensions).
    ``visibilities`` are those the reader may see; an empty set sees nothing. ``cursor`` is the
    opaque ``next_cursor`` of a previous page of the *same* query. ``exclude_origins`` leaves out
    the records of these origin countries (the hub, when those nodes answer for themselves live).
    ``relax`` (default) leaves out the words that occur in no visible record when the query would
    otherwise match nothing; without it they are only reported (``SearchResult.absent``), and
    ``drop_terms`` (words as typed, as reported) are left out instead: the hub decides for the
    whole federation which words no record has. ``restricted`` lets the restricted part of the
    documents match, rank and be snippeted (readers who may see every field: ``node.access``);
    without it — anonymous readers — only public fields count, for matches, snippets and facets.
    """

    q: str = ""
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    visibilities: frozenset[str] = frozenset({"public"})
    limit: int = 20
    cursor: str | None = None
    exclude_origins: frozenset[str] = frozenset()
    relax: bool = True
    drop_terms: frozenset[str] = frozenset()
    restricted: bool = False


@dataclass(frozen=True)
class Hit:
    """One result row; ``snippet`` is plain text of at most 200 characters."""

    id: str
    type: str
    origin: str
    title: str
    snippet: str
    score: float
    version: int


@dataclass(frozen=True)
class SearchResult:
    """A page of results, the total number of matches and disjunctive facet counts.

    ``facets`` has one entry per dimension; a dimension's counts apply the query and every filter
    except that dimension's own. ``next_cursor`` is None on the last page. ``ignored`` are the
    words of ``q`` left out: function words, and words that occur in no record the reader may see
    (which would otherwise make the whole query match nothing). ``absent``: with ``relax`` off, the
    words that occur in no visible record, when nothing matched.
    """

    total: int
    hits: list[Hit]
    facets: dict[str, dict[str, int]]
    next_cursor: str | None
    ignored: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()


class SearchBackend(Protocol):
    """Storage-level search over one database dialect.

    ``conn`` is a tortoise ``BaseDBAsyncClient`` (a plain connection or the one an
    ``in_transaction()`` block yields). Writes run in a savepoint of the caller's transaction, so
    they commit or roll back with it.
    """

    dialect: str

    async def upsert(self, conn: Any, docs: Sequence[SearchDoc]) -> None:
        """Insert the documents, replacing any held under the same id."""

    async def insert_new(self, conn: Any, docs: Sequence[SearchDoc]) -> None:
        """Insert documents of records not held yet (new ids); a held or repeated id raises."""

    async def delete(self, conn: Any, ids: Sequence[str]) -> None:
        """Remove the documents with these ids; unknown ids are ignored."""

    async def search(self, conn: Any, query: SearchQuery) -> SearchResult:
        """Run a query. Raises ``node.errors.InvalidParameter`` for a bad limit, cursor or filter."""

    async def count(self, conn: Any) -> int:
        """Return the number of indexed documents."""

    async def scrub(self, conn: Any) -> None:
        """Rewrite index storage so that no trace of deleted documents' text remains (erasure)."""
