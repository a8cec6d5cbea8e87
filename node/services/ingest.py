"""Hub ingest of one feed page: parse → verify → validate → decide → store + index → advance the cursor.

Two halves:

* **checking** (pure CPU, no I/O): :func:`check_page` splits a page's NDJSON body into lines, checks the
  framing (sequences, trailer), parses every record line strictly, verifies and validates it and
  prepares what the store needs (the envelope's stored text, its digest, its search document). It
  returns compact, picklable :class:`Checked` / :class:`Rejected` items, so it can run in a worker
  *process* (:class:`CheckPool`): verification is CPU-bound and threads would share one core through
  the GIL. Small pages are checked in a thread of the hub process instead (a process round trip
  costs more than it saves).
* **applying**: :func:`apply_checked` writes everything that changes the hub's state for the page —
  held records, search index, quarantine, the node's cursor — in one transaction, and the cursor only
  moves if it still has the value the page was read from, so a crash (or a second hub process) at any
  instant loses and duplicates nothing: the page is simply pulled again.

The puller (node.services.sync) overlaps the two: page k+1 is fetched and checked in the worker
while page k is being written. A page is applied only after all of it was checked; a failure while
checking (a broken frame, a worker that died or raised) fails the pull before anything of that page
is written.

``check_items``/``apply_page`` are the record-level API (a page already parsed into
:class:`FeedItem`s, verified into ``VerifiedRecord | ProtocolError``); they use the same code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import multiprocessing
import operator
import os
from collections import Counter as Tally
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from tortoise.transactions import in_transaction

from federation import strictjson
from federation.directory import Directory
from federation.envelope import Envelope
from federation.errors import CanonicalizationError, GroupInvalid, MalformedJSON, ProtocolError
from federation.groups import check_group_member, group_of
from federation.ingest import Decision, Held, decide, equivocation_error, regressed_error
from federation.schemas import SchemaRegistry
from federation.timefmt import format_timestamp
from federation.verify import PERSONAL_DATA_TYPES, VerifiedRecord, consent_covers, verify
from node.processes import die_with_parent, usable_cores
from node.search import SearchDoc, document_from_envelope
from node.services.erasure import record_erasure
from node.services.search import SearchService
from node.services.translog import record_append
from node.storage import sql, translog

log = logging.getLogger("ncc.ingest")

# Hub-side policy code (not a verification code): a node must never send a national record.
NATIONAL_IN_FEED = "visibility_national"

#: Longest feed line accepted (records may be up to 1 MiB).
MAX_LINE = 4 * 1024 * 1024


class PullError(Exception):
    """A pull failed for a reason outside the records (protocol framing, a verification worker that
    failed, the lease lost). ``code`` is one of ``node.services.fedclient.ERROR_CODES``: it is what
    the node's ``last_error`` says; the message (for tests and the hub's own logs) quotes nothing the
    node sent."""

    def __init__(self, message: str, code: str = "bad_frame") -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:  # keeps the code across the worker process boundary
        return (PullError, (str(self.args[0]), self.code))

    def summary(self) -> str:
        """What the node's ``last_error`` says: the code alone."""
        return self.code


class CursorMoved(Exception):
    """Another process advanced this node's cursor meanwhile; the page was not applied."""


@dataclass
class FeedItem:
    """One record line of a feed page: its sequence, the parsed envelope (or why it did not parse)."""

    seq: int | None
    envelope: Any
    raw: str
    error: ProtocolError | None = None


@dataclass
class PageOutcome:
    """What ingest did with a page."""

    accepted: int = 0
    deleted: int = 0
    stale: int = 0
    duplicate: int = 0
    quarantined: int = 0
    codes: Tally[str] = field(default_factory=Tally)
    #: Versions of group records (DESIGN §15), whatever became of them: counted here only, never in
    #: the counters above, which reach the public ``/metrics``.
    grouped: int = 0

    def add(self, other: PageOutcome) -> None:
        for name in ("accepted", "deleted", "stale", "duplicate", "quarantined", "grouped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.codes.update(other.codes)


@dataclass(slots=True)
class Checked:
    """A record that verified: what the store and the index need, nothing that must be recomputed.

    ``text`` is the envelope as the hub stores it (canonical field order); ``evidence`` what a
    quarantine row keeps if the record is refused later (the line's record as received; without the
    payload for a national record); ``doc`` its search document (None for a tombstone or a national
    record, which are never indexed).
    """

    seq: int | None
    id: str
    origin: str
    type: str
    version: int
    visibility: str
    deleted: bool
    digest: str
    issued_at: str
    text: str
    evidence: str
    doc: SearchDoc | None


@dataclass(slots=True)
class Rejected:
    """A record line that failed: its code and detail, and what the quarantine keeps of it."""

    seq: int | None
    code: str
    detail: str
    record_id: str | None
    version: int | None
    evidence: str
    #: for a record refused only for its key's window: the digest of its content, so that a version the
    #: hub already holds, received again (a new feed epoch), is a duplicate and not a refusal
    digest: str | None = None


#: Refusals about when a key signed: a version the hub holds with this content was received in time.
KEY_WINDOW_CODES = frozenset({"key_expired", "key_revoked", "key_not_yet_valid"})


@dataclass(slots=True)
class CheckedPage:
    """A checked page: its items in feed order and its trailer (``next``, ``more``, ``head``)."""

    items: list[Checked | Rejected]
    trailer: dict[str, Any]


# -- parsing -----------------------------------------------------------------------------------------


def split_lines(body: bytes) -> list[bytes]:
    """The lines of an NDJSON body (the last one may lack its newline).

    Raises:
        PullError: a line longer than ``MAX_LINE``.
    """
    lines = body.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    for line in lines:
        if len(line) > MAX_LINE:
            raise PullError("feed line too long", "line_too_long")
    return lines


def parse_page(lines: Sequence[bytes], cursor: int, limit: int) -> tuple[list[FeedItem], dict[str, Any]]:
    """Parse one NDJSON feed page: record lines, then the ``{"next", "more"}`` trailer.

    A record line that is not valid JSON is kept as an item with ``malformed_json`` (quarantined);
    a broken frame (no trailer, sequences going backwards, too many lines) fails the whole page.

    Raises:
        PullError: the page is not a well-formed feed page.
    """
    items: list[FeedItem] = []
    trailer: dict[str, Any] | None = None
    last_seq = cursor
    if len(lines) > limit + 1:  # records and the trailer; blank lines count (they are not free)
        raise PullError("more lines than the page limit", "too_many_lines")
    for line in lines:
        # Evidence for the quarantine: PostgreSQL text cannot hold NUL, so it is kept escaped.
        text = line.decode("utf-8", "replace").strip().replace("\x00", "\\u0000")
        if not text:
            continue
        if trailer is not None:
            raise PullError("data after the feed trailer")
        try:
            obj = strictjson.loads(line)
        except ProtocolError as exc:
            if len(items) >= limit:
                raise PullError("more lines than the page limit") from exc
            error = exc if isinstance(exc, CanonicalizationError) else MalformedJSON(
                f"feed line is not JSON: {exc.detail}")
            items.append(FeedItem(None, None, text, error))
            continue
        if isinstance(obj, dict) and "next" in obj and "record" not in obj:
            nxt, more = obj.get("next"), obj.get("more")
            head = obj.get("head", nxt)
            if type(nxt) is not int or type(more) is not bool or nxt < last_seq or type(head) is not int:
                raise PullError("bad feed trailer")
            trailer = obj
            continue
        if not isinstance(obj, dict) or type(obj.get("seq")) is not int or "record" not in obj:
            raise PullError("feed line is neither a record nor the trailer")
        seq = obj["seq"]
        if seq <= last_seq:
            raise PullError(f"feed sequence went backwards ({seq} after {last_seq})")
        last_seq = seq
        if len(items) >= limit:
            raise PullError("more records than the page limit")
        items.append(FeedItem(seq, obj["record"], orjson.dumps(obj["record"]).decode()))
    if trailer is None:
        raise PullError("feed page ended without its trailer (truncated stream)")
    if items and trailer["next"] < last_seq:
        raise PullError("feed trailer points before its last record")
    return items, trailer


# -- checking ----------------------------------------------------------------------------------------


def check_items(
    country: str, items: Sequence[FeedItem], directory: Directory, now: datetime, registry: SchemaRegistry
) -> list[VerifiedRecord | ProtocolError]:
    """Verify every item of a page (pure; may run in a worker)."""
    out: list[VerifiedRecord | ProtocolError] = []
    for item in items:
        if item.error is not None:
            out.append(item.error)
            continue
        try:
            # received now: the key must still be valid now, not only at the claimed issued_at
            out.append(verify(item.envelope, directory, now, registry, feed_origin=country, received_at=now))
        except ProtocolError as exc:
            out.append(exc)
    return out


def evidence_without_payload(envelope: dict[str, Any], raw: str, digest: str | None = None) -> str:
    """Quarantine evidence that keeps the header, the digest and the signature, never the payload.

    For a ``national`` record (it must never leave its node) and for personal data shared without
    consent (DESIGN §11): everything but ``payload``, plus ``digest`` (SHA-256 of the signing input,
    when the record verified) and ``line_sha256`` (of the line as received), so the node can still
    tell which version was refused.
    """
    header = {k: v for k, v in envelope.items() if k != "payload"}
    header["payload_omitted"] = True
    if digest is not None:
        header["digest"] = digest
    header["line_sha256"] = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
    return orjson.dumps(header).decode()


def _personal_without_consent(envelope: dict[str, Any]) -> bool:
    """Whether a refused envelope claims to be national, or an expert not covered by consent."""
    visibility = envelope.get("visibility")
    if visibility == "national":
        return True
    payload = envelope.get("payload")
    if envelope.get("type") not in PERSONAL_DATA_TYPES or not isinstance(payload, dict):
        return False
    if envelope.get("deleted") is True:
        return False  # a tombstone's payload is only its reason
    return not (isinstance(visibility, str) and consent_covers(payload, visibility))


def prepare(item: FeedItem, result: VerifiedRecord | ProtocolError, vocabularies: Any) -> Checked | Rejected:
    """Turn one verified (or refused) item into what :func:`apply_checked` stores."""
    if isinstance(result, ProtocolError):
        env = item.envelope if isinstance(item.envelope, dict) else {}
        rid = env.get("id") if isinstance(env.get("id"), str) else None
        version = env.get("version") if type(env.get("version")) is int else None
        evidence = evidence_without_payload(env, item.raw) if env and _personal_without_consent(env) else item.raw
        digest = None
        if result.code in KEY_WINDOW_CODES:
            try:
                digest = Envelope.from_dict(env).digest()
            except (ProtocolError, KeyError, TypeError, ValueError):
                digest = None
        return Rejected(item.seq, result.code, result.detail, rid, version, evidence, digest)
    e = result.envelope
    national = e.visibility == "national"
    evidence = (evidence_without_payload(item.envelope, item.raw, result.digest)
                if national and isinstance(item.envelope, dict) else item.raw)
    if national:
        return Checked(item.seq, e.id, e.origin, e.type, e.version, e.visibility, e.deleted, result.digest,
                       format_timestamp(e.issued_at), "", evidence, None)
    wire = e.to_dict()
    text = orjson.dumps(wire).decode()
    if evidence == text:
        evidence = text  # one object: the page's pickle then carries the envelope once
    doc = None if e.deleted else document_from_envelope(wire, vocabularies)
    if doc is not None:
        doc.folded, doc.folded_restricted  # noqa: B018 - fold here (the worker), so the writer only writes
    return Checked(item.seq, e.id, e.origin, e.type, e.version, e.visibility, e.deleted, result.digest,
                   format_timestamp(e.issued_at), text, evidence, doc)


def check_page(
    country: str,
    body: bytes,
    cursor: int,
    limit: int,
    directory: Directory,
    now: datetime,
    registry: SchemaRegistry,
    vocabularies: Any,
) -> CheckedPage:
    """Parse, frame-check, verify and prepare one feed page body (pure CPU; runs in a worker).

    Raises:
        PullError: the page is not a well-formed feed page.
    """
    items, trailer = parse_page(split_lines(body), cursor, limit)
    results = check_items(country, items, directory, now, registry)
    return CheckedPage([prepare(i, r, vocabularies) for i, r in zip(items, results, strict=True)], trailer)


# -- the hand-over from the worker -------------------------------------------------------------------

#: A checked page as plain tuples of str/int/bool (what crosses the process boundary): pickling
#: tuples costs about half of pickling the dataclasses (which goes through Python-level
#: ``__getstate__``/``__reduce_ex__`` per object), the envelope text is sent once when the evidence is
#: the same text, and the search document's fields it shares with the record are not sent again (the
#: same string objects: pickle's memo sends each once).
PackedPage = tuple[list[tuple[Any, ...]], dict[str, Any]]


_CHECKED = tuple(f.name for f in dataclasses.fields(Checked))
_REJECTED = tuple(f.name for f in dataclasses.fields(Rejected))
_DOC, _EVIDENCE = _CHECKED.index("doc"), _CHECKED.index("evidence")
_SEARCH_DOC_FIELDS = frozenset(f.name for f in dataclasses.fields(SearchDoc))
# C-level getters: a Python-level getattr per field cost ~15 µs per record in the worker.
_checked_values = operator.attrgetter(*_CHECKED)
_rejected_values = operator.attrgetter(*_REJECTED)


def pack_page(page: CheckedPage) -> PackedPage:
    """The compact form of ``page`` (see :data:`PackedPage`); :func:`unpack_page` inverts it.

    Rows are a kind flag and the fields in declaration order (fields added to :class:`Checked`,
    :class:`Rejected` or :class:`SearchDoc` travel without a change here); a :class:`Checked`'s
    ``evidence`` is None when it equals ``text`` and its ``doc`` is the document's attribute dict (its
    fields and what its cached properties hold: the folding is done by the worker).
    """
    rows: list[tuple[Any, ...]] = []
    for c in page.items:
        if isinstance(c, Rejected):
            rows.append((False, *_rejected_values(c)))
            continue
        values = [True, *_checked_values(c)]
        d = c.doc
        if d is not None:
            values[_DOC + 1] = d.__dict__
        if c.evidence == c.text:
            values[_EVIDENCE + 1] = None
        rows.append(tuple(values))
    return rows, page.trailer


def unpack_page(packed: PackedPage | CheckedPage) -> CheckedPage:
    """The :class:`CheckedPage` of :func:`pack_page`'s output (a page already unpacked is returned)."""
    if isinstance(packed, CheckedPage):
        return packed
    rows, trailer = packed
    items: list[Checked | Rejected] = []
    for row in rows:
        if not row[0]:
            items.append(Rejected(*row[1:]))
            continue
        c = Checked(*row[1:])
        if c.evidence is None:
            c.evidence = c.text
        attributes = c.doc
        if attributes is not None:
            # What SearchDoc(...) makes, without its frozen __init__'s per-field object.__setattr__
            # (half the cost of the hand-over); the attributes include the cached properties' values.
            if not attributes.keys() >= _SEARCH_DOC_FIELDS:  # type: ignore[attr-defined]
                raise ValueError("packed search document lacks fields")
            doc = object.__new__(SearchDoc)
            doc.__dict__.update(attributes)  # type: ignore[call-overload]
            c.doc = doc
        items.append(c)
    return CheckedPage(items, trailer)


# -- the worker process ------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _worker_init(parent: int | None = None) -> None:
    """Once per worker process: it dies with the hub process that started it (``parent``: spawned from
    the event loop's thread, which lives as long as that process), the schema registry and the
    vocabularies."""
    die_with_parent(parent=parent)

    from node.context import build_registry
    from schemas import load_vocabularies

    _WORKER["registry"] = build_registry()
    _WORKER["vocabularies"] = load_vocabularies()
    _WORKER["directories"] = {}


def _worker_check(
    country: str, body: bytes, cursor: int, limit: int, directory_doc: bytes, now: datetime
) -> PackedPage:
    directories: dict[bytes, Directory] = _WORKER["directories"]
    key = hashlib.sha256(directory_doc).digest()
    directory = directories.get(key)
    if directory is None:
        directories.clear()  # keep one: a pull uses one directory
        directory = directories[key] = Directory.from_dict(orjson.loads(directory_doc))
    return pack_page(
        check_page(country, body, cursor, limit, directory, now, _WORKER["registry"], _WORKER["vocabularies"])
    )


class CheckPool:
    """One verification worker process (this machine has two cores: one writes while one verifies).

    Started on first use (``spawn``: the hub process has threads, so it is not forked), shared by
    every pull of the process. A worker that dies breaks the pool: the page's check fails with
    :class:`PullError` (nothing of that page is written) and the next use starts a fresh pool; so
    does a check cancelled while the worker has it (its pull ended).
    """

    #: What the worker runs (tests replace it to make the worker die or raise).
    target = staticmethod(_worker_check)

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                initargs=(os.getpid(),),
            )
        return self._pool

    async def check(
        self, country: str, body: bytes, cursor: int, limit: int, directory_doc: bytes, now: datetime
    ) -> CheckedPage:
        """Check a page in the worker.

        Raises:
            PullError: a broken frame, or the worker failed (died, raised).
        """
        loop = asyncio.get_running_loop()
        pool = self._executor()
        try:
            packed = await loop.run_in_executor(pool, self.target, country, body, cursor, limit, directory_doc, now)
            return unpack_page(packed)
        except PullError:
            raise
        except BrokenProcessPool as exc:
            self.discard(pool)
            raise PullError("verification worker died", "worker_failed") from exc
        except asyncio.CancelledError:
            # The pull ended (a page before this one failed, a timeout, the hub stops) while the worker
            # has this page: nobody wants that work, and it may be what kills the worker (a page that
            # crashed it once crashes it again, after the pull that saw it die replaced the pool). The
            # pool finishes it on its own; the next pull gets a fresh one.
            self.discard(pool)
            raise
        except Exception as exc:  # any failure in the worker fails the pull cleanly
            log.exception("verification worker failed")
            raise PullError(f"verification worker failed: {exc.__class__.__name__}", "worker_failed") from exc

    def discard(self, pool: ProcessPoolExecutor | None = None) -> None:
        if self._pool is not None and (pool is None or pool is self._pool):
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def default_workers() -> int:
    """Verification worker processes: one per core beyond the first (the writer's), at least one."""
    return max(1, usable_cores() - 1)


# -- applying ----------------------------------------------------------------------------------------


async def apply_page(
    country: str,
    items: Sequence[FeedItem],
    results: Sequence[VerifiedRecord | ProtocolError],
    from_cursor: int,
    next_cursor: int,
    head: int,
    now: datetime,
    search: SearchService,
) -> PageOutcome:
    """Store a verified page and advance the cursor from ``from_cursor`` to ``next_cursor`` atomically.

    Raises:
        CursorMoved: the cursor was no longer ``from_cursor`` (nothing was written).
    """
    checked = [prepare(i, r, search.vocabularies) for i, r in zip(items, results, strict=True)]
    return await apply_checked(country, checked, from_cursor, next_cursor, head, now, search)


_UPSERT = (
    "INSERT INTO hub_records (id, origin, type, version, visibility, deleted, digest, issued_at,"
    " envelope, node_seq, received_at, quarantined) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, FALSE)"
    " ON CONFLICT (id) DO UPDATE SET origin = excluded.origin, type = excluded.type,"
    " version = excluded.version, visibility = excluded.visibility, deleted = excluded.deleted,"
    " digest = excluded.digest, issued_at = excluded.issued_at, envelope = excluded.envelope,"
    " node_seq = excluded.node_seq, received_at = excluded.received_at, quarantined = FALSE"
)
_QUARANTINE = (
    "INSERT INTO hub_quarantine (country, record_id, version, node_seq, code, detail, envelope,"
    " received_at, evidence_bytes, evidence_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

#: Evidence kept per quarantined line (DESIGN §10); the whole line's size and SHA-256 are kept too.
EVIDENCE_MAX_BYTES = 64 * 1024


def bounded_evidence(text: str) -> tuple[str, int, str]:
    """(what the quarantine keeps of a line — at most ``EVIDENCE_MAX_BYTES`` —, its size, its SHA-256)."""
    raw = text.encode("utf-8", "replace")
    digest = hashlib.sha256(raw).hexdigest()
    if len(raw) <= EVIDENCE_MAX_BYTES:
        return text, len(raw), digest
    return raw[:EVIDENCE_MAX_BYTES].decode("utf-8", "ignore"), len(raw), digest


def _quarantine_row(country: str, record_id: str | None, version: int | None, seq: int | None, code: str,
                    detail: str, evidence: str, stamp: str) -> list[Any]:
    kept, size, digest = bounded_evidence(evidence)
    return [country, record_id and record_id[:200], version, seq, code, detail[:2000], kept, stamp, size, digest]


async def enforce_quarantine_quota(conn: Any, country: str, max_rows: int, max_bytes: int) -> None:
    """Evict ``country``'s oldest quarantine rows beyond ``max_rows`` rows or ``max_bytes`` of kept
    evidence (DESIGN §10: a node cannot grow the hub's database without bound)."""
    rows = await sql.fetch(
        conn, "SELECT id FROM hub_quarantine WHERE country = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
        [country, max_rows])
    cutoff = int(rows[0]["id"]) if rows else None
    rows = await sql.fetch(
        conn,
        "SELECT id FROM (SELECT id, SUM(LENGTH(envelope) + LENGTH(detail)) OVER (ORDER BY id DESC) AS acc"
        " FROM hub_quarantine WHERE country = ?) AS t WHERE acc > ? ORDER BY id DESC LIMIT 1",
        [country, max_bytes])
    if rows:
        cutoff = max(cutoff or 0, int(rows[0]["id"]))
    if cutoff is not None:
        await sql.execute(conn, "DELETE FROM hub_quarantine WHERE country = ? AND id <= ?", [country, cutoff])


class _Incoming:
    """The slice of VerifiedRecord that :func:`federation.ingest.decide` reads."""

    __slots__ = ("digest", "envelope")

    def __init__(self, c: Checked) -> None:
        self.envelope, self.digest = c, c.digest


async def apply_checked(
    country: str,
    items: Sequence[Checked | Rejected],
    from_cursor: int,
    next_cursor: int,
    head: int,
    now: datetime,
    search: SearchService,
    quota: tuple[int, int] | None = None,
) -> PageOutcome:
    """Store a checked page and advance the cursor from ``from_cursor`` to ``next_cursor`` atomically.

    ``quota``: (rows, bytes) of quarantine kept for the node; older rows are evicted in the same
    transaction.

    Raises:
        CursorMoved: the cursor was no longer ``from_cursor`` (nothing was written).
    """
    outcome = PageOutcome()
    stamp = format_timestamp(now)
    ids = list(dict.fromkeys([*(c.id for c in items if isinstance(c, Checked)),
                              *(c.record_id for c in items if isinstance(c, Rejected) and c.digest and c.record_id)]))
    # The page's last verified record becomes the node's anchor (checked before the next pull:
    # node.services.divergence), in the same transaction as the cursor.
    anchor = next((c for c in reversed(items) if isinstance(c, Checked) and c.seq is not None), None)
    async with in_transaction() as conn:
        if anchor is None:
            moved = await sql.execute(
                conn,
                "UPDATE hub_pull_state SET cursor = ?, head = ? WHERE country = ? AND cursor = ?",
                [next_cursor, max(head, next_cursor), country, from_cursor],
            )
        else:
            moved = await sql.execute(
                conn,
                "UPDATE hub_pull_state SET cursor = ?, head = ?, anchor_seq = ?, anchor_id = ?, anchor_version = ?,"
                " anchor_digest = ? WHERE country = ? AND cursor = ?",
                [next_cursor, max(head, next_cursor), anchor.seq, anchor.id, anchor.version, anchor.digest,
                 country, from_cursor],
            )
        if moved != 1:
            raise CursorMoved(country)
        held: dict[str, Held] = {}
        if ids:
            marks = ",".join("?" for _ in ids)
            for row in await sql.fetch(
                conn, f"SELECT id, version, digest, issued_at FROM hub_records WHERE id IN ({marks})", list(ids)
            ):
                held[row["id"]] = Held(int(row["version"]), str(row["digest"]), str(row["issued_at"]))
        upserts: list[list[Any]] = []
        index_ops: dict[str, SearchDoc | None] = {}  # id -> document to index, or None to remove (last wins)
        quarantine: list[list[Any]] = []
        flag_quarantined: list[str] = []
        erased: list[tuple[str, int]] = []  # the purge job scrubs their remnants (node/services/erasure.py)
        members: dict[str, list[str]] | None = None  # the sharing groups, read once a group record comes
        hidden = PageOutcome()  # what became of group records: kept out of the public counters
        for c in items:
            if isinstance(c, Rejected):
                same = held.get(c.record_id or "")
                if c.digest is not None and same is not None and (same.version, same.digest) == (c.version, c.digest):
                    outcome.duplicate += 1  # held already, received while the key was valid
                    continue
                quarantine.append(_quarantine_row(country, c.record_id, c.version, c.seq, c.code, c.detail,
                                                  c.evidence, stamp))
                outcome.quarantined += 1
                outcome.codes[c.code] += 1
                continue
            group = group_of(c.visibility)
            if group is not None:
                if members is None:
                    members = {str(r["name"]): str(r["countries"]).split(",")
                               for r in await sql.fetch(conn, "SELECT name, countries FROM hub_groups")}
                try:
                    check_group_member(c.visibility, c.origin, c.deleted, members)
                except GroupInvalid as refused:  # DESIGN §15: only a member's group records
                    quarantine.append(_quarantine_row(country, c.id, c.version, c.seq, refused.code,
                                                      refused.detail, c.evidence, stamp))
                    outcome.grouped += 1
                    continue
            tally = hidden if group is not None else outcome
            if c.visibility == "national":
                quarantine.append(_quarantine_row(country, c.id, c.version, c.seq, NATIONAL_IN_FEED,
                                                  "national records must never leave their node", c.evidence,
                                                  stamp))
                tally.quarantined += 1
                tally.codes[NATIONAL_IN_FEED] += 1
                continue
            decision = decide(_Incoming(c), held.get(c.id))  # type: ignore[arg-type]
            if decision is Decision.STALE:
                tally.stale += 1
                continue
            if decision is Decision.DUPLICATE:
                tally.duplicate += 1
                continue
            if decision is Decision.EQUIVOCATION:
                err = equivocation_error(_Incoming(c), held[c.id])  # type: ignore[arg-type]
                quarantine.append(_quarantine_row(country, c.id, c.version, c.seq, err.code, err.detail,
                                                  c.evidence, stamp))
                flag_quarantined.append(c.id)
                index_ops.pop(c.id, None)
                index_ops[c.id] = None
                tally.quarantined += 1
                tally.codes[err.code] += 1
                continue
            if decision is Decision.REGRESSED:
                # the held version stays; the backdated one is kept as evidence only
                regressed = regressed_error(_Incoming(c), held[c.id])  # type: ignore[arg-type]
                quarantine.append(_quarantine_row(country, c.id, c.version, c.seq, regressed.code,
                                                  regressed.detail, c.evidence, stamp))
                tally.quarantined += 1
                tally.codes[regressed.code] += 1
                continue
            upserts.append([c.id, c.origin, c.type, c.version, c.visibility, c.deleted, c.digest, c.issued_at,
                            c.text, c.seq or 0, stamp])
            if c.deleted and orjson.loads(c.text)["payload"]["reason"] == "erased":
                erased.append((c.id, c.version))
            held[c.id] = Held(c.version, c.digest, c.issued_at)
            index_ops.pop(c.id, None)
            index_ops[c.id] = c.doc
            if c.deleted:
                tally.deleted += 1
            else:
                tally.accepted += 1
        outcome.grouped += hidden.accepted + hidden.deleted + hidden.stale + hidden.duplicate + hidden.quarantined
        if upserts:
            await conn.execute_many(sql.placeholders(conn, _UPSERT), upserts)
            # every accepted version on the transparency log, in the same transaction (DESIGN §14)
            await translog.append(conn, [record_append(u[0], u[3], u[1], u[5], u[6], u[4]) for u in upserts])
        if flag_quarantined:
            marks = ",".join("?" for _ in flag_quarantined)
            await sql.execute(conn, f"UPDATE hub_records SET quarantined = TRUE WHERE id IN ({marks})",
                              flag_quarantined)
        if quarantine:
            await conn.execute_many(sql.placeholders(conn, _QUARANTINE), quarantine)
            if quota is not None:
                await enforce_quarantine_quota(conn, country, *quota)
        docs = [d for d in index_ops.values() if d is not None]
        gone = [rid for rid, d in index_ops.items() if d is None]
        if docs:
            await search.backend(conn).upsert(conn, docs)
        if gone:
            await search.remove(conn, gone)
        for rid, version in erased:
            await record_erasure(conn, rid, version, now)
    return outcome


async def withdraw_received_after(conn: Any, country: str, kid: str, since: str, now: datetime,
                                  search: SearchService) -> list[str]:
    """DESIGN §10, a revocation dated in the past: every record version the hub holds that ``kid``
    signed and the hub received at or after ``since`` is withdrawn from the index and quarantined as
    ``key_revoked`` (its envelope kept as evidence, the record flagged quarantined); their ids.
    Runs in the caller's transaction."""
    rows = await sql.fetch(
        conn,
        "SELECT id, version, node_seq, received_at, envelope FROM hub_records WHERE origin = ?"
        " AND received_at >= ? AND quarantined = FALSE AND envelope LIKE ? ESCAPE '\\'",
        [country, since, sql.signed_by_pattern(kid)],
    )
    stamp = format_timestamp(now)
    ids: list[str] = []
    quarantine: list[list[Any]] = []
    for row in rows:
        envelope = str(row["envelope"])
        try:
            signed_by = orjson.loads(envelope).get("sig", {}).get("kid")
        except (orjson.JSONDecodeError, AttributeError):
            signed_by = None
        if signed_by != kid:  # the LIKE only narrows; the parsed envelope decides
            continue
        ids.append(str(row["id"]))
        quarantine.append(_quarantine_row(
            country, str(row["id"]), int(row["version"]), int(row["node_seq"]), "key_revoked",
            f"received at {row['received_at']}, after {kid} was revoked (at {since})", envelope, stamp))
    if ids:
        marks = ",".join("?" for _ in ids)
        await sql.execute(conn, f"UPDATE hub_records SET quarantined = TRUE WHERE id IN ({marks})", ids)
        await conn.execute_many(sql.placeholders(conn, _QUARANTINE), quarantine)
        await search.remove(conn, ids)
    return ids
