"""``ncc import``, the writing half: check and publish the rows :mod:`node.services.importer` read.

Every row is checked exactly as the API checks a write (``Publisher.check_payload``, the membership
transition) and, unless it is a dry run, signed and stored as ``Publisher.create`` would, a batch
of rows per transaction (``Publisher.prepare_create`` / ``store_created``; from
:data:`WORKER_MIN_ROWS` rows on, ``prepare_create`` runs in a worker process, :class:`SignPool`, while
this one stores the batch before); a failing row writes nothing and never stops the others (a batch the database refuses is stored again row by row). Records already on this
node with the same natural key (organisation PIC, project grant id) are rejected as ``duplicate``,
so running the same import twice does not double the registry.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from federation.envelope import record_id
from federation.errors import ProtocolError
from node.errors import ApiError
from node.services.importer import Rejection, Row
from node.services.publish import Created, Publisher

log = logging.getLogger("ncc.import")


@dataclass
class NaturalKeys:
    """Records already on this node by natural key: organisations by PIC, projects by grant id.

    Importing a second record with the same key is rejected as ``duplicate`` (a re-run of the
    same file must not double the registry); keys of rows imported in this run are added.
    """

    organisations_by_pic: dict[str, str] = field(default_factory=dict)
    projects_by_grant: dict[int, str] = field(default_factory=dict)

    def duplicate(self, row: Row) -> Rejection | None:
        payload = row.payload if isinstance(row.payload, dict) else {}
        if row.rtype == "organisation":
            pic = (
                (payload.get("identifiers") or {}).get("pic")
                if isinstance(payload.get("identifiers"), dict)
                else None
            )
            if isinstance(pic, str) and pic in self.organisations_by_pic:
                return Rejection.at(
                    "/identifiers/pic",
                    f"organisation with PIC {pic} is already on this node: {self.organisations_by_pic[pic]}",
                    code="duplicate",
                )
        if row.rtype == "project":
            grant = payload.get("grant_id")
            if isinstance(grant, int) and grant in self.projects_by_grant:
                return Rejection.at(
                    "/grant_id",
                    f"project {grant} is already on this node: {self.projects_by_grant[grant]}",
                    code="duplicate",
                )
        return None

    def discard(self, rtype: str, rid: str, payload: Mapping[str, Any]) -> None:
        """Undo :meth:`add` of a row that was not stored after all."""
        if rtype == "organisation":
            identifiers = payload.get("identifiers")
            pic = identifiers.get("pic") if isinstance(identifiers, dict) else None
            if isinstance(pic, str) and self.organisations_by_pic.get(pic) == rid:
                del self.organisations_by_pic[pic]
        elif (
            rtype == "project"
            and isinstance(payload.get("grant_id"), int)
            and self.projects_by_grant.get(payload["grant_id"]) == rid
        ):
            del self.projects_by_grant[payload["grant_id"]]

    def add(self, rtype: str, rid: str, payload: Mapping[str, Any]) -> None:
        if rtype == "organisation":
            identifiers = payload.get("identifiers")
            pic = identifiers.get("pic") if isinstance(identifiers, dict) else None
            if isinstance(pic, str):
                self.organisations_by_pic.setdefault(pic, rid)
        elif rtype == "project" and isinstance(payload.get("grant_id"), int):
            self.projects_by_grant.setdefault(payload["grant_id"], rid)


@dataclass
class Outcome:
    imported: int = 0
    rejected: int = 0


MAX_CONSECUTIVE_DB_ERRORS = 3
#: Rows stored per transaction. Larger batches save little (the per-row work dominates past a few
#: hundred) and hold the database's write lock longer against the serving node's own writes.
BATCH_ROWS = 500


class ImportAborted(Exception):
    """The database failed on several rows in a row: it is down or broken, not the rows.

    The rows before ``row`` are imported (or rejected and reported); none is half written.
    """

    def __init__(self, outcome: Outcome, row: Row, cause: BaseException) -> None:
        super().__init__(f"{row.label}: {cause.__class__.__name__}: {cause}")
        self.outcome = outcome
        self.row = row


Progress = Callable[[int, int], None]
Report = Callable[[str], None]


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- the signing worker ------------------------------------------------------------------------------

#: Imports of at least this many rows check, sign and index-build their rows in a worker process
#: while this one stores the batch before (two cores); smaller ones do not pay for its start.
WORKER_MIN_ROWS = 2_000
#: Batches handed to the worker and not yet stored (it always has the next one to sign).
WORKER_AHEAD = 2

_SIGNER: Publisher | None = None
#: A row of a batch the worker is not asked to sign (rejected before it).
_NOT_SENT: tuple[str, str, str, Any] = ("", "", "", None)


def _signer_init(parent: int, country: str, private_raw: bytes, kid: str, accepted: frozenset[str],
                 groups: frozenset[str], documents: bool) -> None:
    """In the worker: a publisher of ``country`` that signs with the node's key and builds search
    documents as the node's index does; schemas and groups as the importing process read them."""
    from node.processes import die_with_parent

    # It holds the node's key: it never outlives the import, however that ends (spawned from the
    # event loop's thread, which lives as long as the import).
    die_with_parent(parent=parent)

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from node.clock import utc_now
    from node.context import build_registry
    from node.keystore import InstanceKey
    from node.services.schema_versions import SchemaVersions

    global _SIGNER
    registry = build_registry()
    key = InstanceKey(Ed25519PrivateKey.from_private_bytes(private_raw), kid)
    index = None
    if documents:
        from node.services.search import SearchService

        index = SearchService(accelerated=False)  # only its `document`: the worker has no database
    _SIGNER = Publisher(country=country, key=lambda: key, registry=registry, clock=utc_now, index=index,
                        schemas=SchemaVersions.fixed(registry, accepted))
    _SIGNER.groups = groups


def _signer_sign(rows: list[tuple[str, str, str, Any]]) -> list[Created | Rejection]:
    """In the worker: :meth:`Publisher.prepare_create` of each (id, type, visibility, payload) sent."""
    assert _SIGNER is not None
    done: list[Created | Rejection] = []
    for rid, rtype, visibility, payload in rows:
        if not rid:
            continue  # _NOT_SENT
        try:
            created = _SIGNER.prepare_create(rtype, visibility, payload, rid)
        except (ProtocolError, ApiError) as exc:
            done.append(Rejection.of(exc))
            continue
        if created.doc is not None:
            created.doc.folded, created.doc.folded_restricted  # noqa: B018 - fold here: the writer only writes
        done.append(created)
    return done


class SignPool:
    """One worker process that checks and signs rows for :func:`import_rows` (``spawn``: the importing
    process has the database driver's thread). The key reaches it through the pipe that starts it.
    A worker that fails leaves its batches to be signed in this process: a row's outcome never
    depends on it."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        publisher = self.publisher
        assert publisher.schemas is not None
        key = publisher.key()
        self._pool = ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"), initializer=_signer_init,
            initargs=(os.getpid(), publisher.country, key.private_key.private_bytes_raw(), key.kid,
                      publisher.schemas.accepted(), publisher.groups,
                      getattr(publisher.index, "document", None) is not None))

    def sign(self, rows: list[tuple[str, str, str, Any]]) -> asyncio.Future[list[Created | Rejection]]:
        """The rows signed in the worker, as a future (that fails if the worker cannot do it)."""
        assert self._pool is not None
        try:
            return asyncio.wrap_future(self._pool.submit(_signer_sign, rows))
        except Exception as exc:  # noqa: BLE001 - a broken pool refuses at once: the future carries it
            failed: asyncio.Future[list[Created | Rejection]] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            return failed

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


# -- importing -----------------------------------------------------------------------------------------


async def import_rows(
    rows: Iterable[Row],
    publisher: Publisher,
    keys: NaturalKeys,
    *,
    dry_run: bool,
    report: Report,
    progress: Progress | None = None,
) -> Outcome:
    """Check and (unless ``dry_run``) create every row, :data:`BATCH_ROWS` rows per transaction.

    ``rows`` may be an iterator (a streamed file): it is read a batch at a time. ``report`` gets one
    line per problem (``line 7: schema_invalid /subdomains/0: …``), in line order. ``progress``
    gets (rows done, total rows — 0 when ``rows`` has no length). In a dry run ``imported``
    counts the rows that would be imported.

    Every row is checked (and signed) on its own, so a bad row is reported and never stops the
    others. The good rows of a batch are then stored in one transaction. If the database refuses
    it (a driver error; the transaction rolled back, nothing of the batch is written), the batch's
    rows are stored again one transaction each: a row the database refuses is rejected as
    ``database_error`` and the others are imported. A database failing
    :data:`MAX_CONSECUTIVE_DB_ERRORS` rows in a row is down, not picky: the import stops.

    From :data:`WORKER_MIN_ROWS` rows on, the rows are checked, signed and
    their search documents built in a worker process (:class:`SignPool`) while this process stores
    the batch before; each row's outcome is decided here in file order exactly as without it.

    Raises:
        ImportAborted: the database keeps failing (earlier rows stay imported; none is half written).
    """
    if publisher.schemas is not None:
        await publisher.refresh()  # a dry run checks against the schema a real run would write
    run = _Run(publisher, keys, report, progress, len(rows) if isinstance(rows, Sized) else 0)
    batches = _batches(rows, BATCH_ROWS)
    head = list(itertools.islice(batches, -(-WORKER_MIN_ROWS // BATCH_ROWS)))
    if dry_run or sum(map(len, head)) < WORKER_MIN_ROWS:
        # In this process, one batch at a time: checked and signed, then stored. (Storing batch k
        # while batch k+1 was checked in this process cost more than it saved: the driver's thread
        # needs the GIL for every row it binds; A/B of 5,000-row imports, 2026-12-07: 2.71 -> 2.52 s
        # of CPU, wall 2.87 -> 2.68 s.)
        for rows_batch in itertools.chain(head, batches):
            await run.finish(run.prepare(rows_batch, dry_run))
        return run.outcome
    pool = SignPool(publisher)
    pool.start()
    ahead: deque[tuple[list[Row], list[tuple[str, str, str, Any]], asyncio.Future[list[Created | Rejection]]]] = deque()
    try:
        for rows_batch in itertools.chain(head, batches):
            sent = run.to_sign(rows_batch)
            ahead.append((rows_batch, sent, pool.sign(sent)))
            if len(ahead) > WORKER_AHEAD:
                await run.finish(await run.signed_by(*ahead.popleft()))
        while ahead:
            await run.finish(await run.signed_by(*ahead.popleft()))
    finally:
        for _, _, future in ahead:
            future.cancel()
        await asyncio.to_thread(pool.close)
    return run.outcome


@dataclass
class _Batch:
    rows: list[Row]
    rejections: dict[int, Rejection]
    signed: list[tuple[int, Created]]


@dataclass
class _Run:
    publisher: Publisher
    keys: NaturalKeys
    report: Report
    progress: Progress | None
    total: int
    outcome: Outcome = field(default_factory=Outcome)
    done: int = 0
    db_errors: int = 0
    worker_failed: bool = False

    def _early(self, row: Row) -> Rejection | None:
        """What rejects a row before it is checked: a problem found reading it, or its natural key on
        this node already (or earlier in the file)."""
        return row.rejection or self.keys.duplicate(row)

    def _sign(self, batch: _Batch, i: int, row: Row, signed: Created | Rejection | None = None) -> None:
        """Decide row ``i`` of ``batch`` in file order: rejected early, or checked and signed (here
        when ``signed`` is None, else as the worker did it); a row's key is claimed at once, so a
        later row of the file with the same key is a duplicate."""
        rejection = self._early(row)
        if rejection is None:
            if signed is None:
                try:
                    signed = self.publisher.prepare_create(row.rtype, row.visibility, row.payload)
                except (ProtocolError, ApiError) as exc:
                    signed = Rejection.of(exc)
            if isinstance(signed, Rejection):
                rejection = signed
            else:
                self.keys.add(row.rtype, signed.id, row.payload)
                batch.signed.append((i, signed))
        if rejection is not None:
            batch.rejections[i] = rejection

    def prepare(self, rows: list[Row], dry_run: bool) -> _Batch:
        """Check every row (and sign it, unless ``dry_run``) in this process."""
        batch = _Batch(rows, {}, [])
        for i, row in enumerate(rows):
            if not dry_run:
                self._sign(batch, i, row)
                continue
            rejection = self._early(row)
            if rejection is None:
                try:
                    self.publisher.check_payload(row.rtype, row.visibility, row.payload)
                    self.publisher.check_transition(None, row.payload)
                    self.keys.add(row.rtype, f"(dry run, {row.label})", row.payload)
                except (ProtocolError, ApiError) as exc:
                    rejection = Rejection.of(exc)
            if rejection is not None:
                batch.rejections[i] = rejection
        return batch

    def to_sign(self, rows: list[Row]) -> list[tuple[str, str, str, Any]]:
        """What the worker signs of ``rows``: (new id, type, visibility, payload) of each row not
        rejected early as far as this process knows now, in row order (:meth:`signed_by` decides
        again, in order, when the batch comes back)."""
        country = self.publisher.country
        return [(record_id(country, row.rtype, str(uuid.uuid4())), row.rtype, row.visibility, row.payload)
                if self._early(row) is None else _NOT_SENT for row in rows]

    async def signed_by(self, rows: list[Row], sent: list[tuple[str, str, str, Any]],
                        future: asyncio.Future[list[Created | Rejection]]) -> _Batch:
        """The batch as :meth:`prepare` makes it, from what the worker signed of it. A row rejected
        early when it was sent and not now (its key was freed by a row the database refused) is
        signed here; a worker that failed leaves the whole batch to this process."""
        try:
            signed = iter(await future)
        except Exception:
            if not self.worker_failed:
                log.warning("import: the signing worker failed; rows are signed in this process", exc_info=True)
            self.worker_failed = True
            return self.prepare(rows, dry_run=False)
        batch = _Batch(rows, {}, [])
        for i, (row, item) in enumerate(zip(rows, sent, strict=True)):
            self._sign(batch, i, row, None if item is _NOT_SENT else next(signed))
        return batch

    async def finish(self, batch: _Batch) -> None:
        """Store the batch's signed rows in one transaction; if the database refused it, store them one
        transaction each. Then count and report the batch.

        Raises:
            ImportAborted: :data:`MAX_CONSECUTIVE_DB_ERRORS` rows in a row refused.
        """
        rows, rejections = batch.rows, batch.rejections
        aborted: ImportAborted | None = None
        cause: BaseException | None = None
        if batch.signed:
            try:
                await self.publisher.store_created([signed for _, signed in batch.signed])
                self.db_errors = 0
            except Exception:  # noqa: BLE001 - the driver's errors: the batch rolled back; find the row(s) refused
                for i, signed in batch.signed:
                    try:
                        await self.publisher.store_created([signed])
                    except Exception as exc:  # noqa: BLE001 - the driver's errors (reported per row)
                        self.keys.discard(rows[i].rtype, signed.id, rows[i].payload)
                        self.db_errors += 1
                        if self.db_errors >= MAX_CONSECUTIVE_DB_ERRORS:
                            aborted, cause = ImportAborted(self.outcome, rows[i], exc), exc
                            rows = rows[:i]  # what is reported and counted below
                            break
                        rejections[i] = Rejection("database_error", f"{exc.__class__.__name__}: {exc}")
                    else:
                        self.db_errors = 0
        for i, row in enumerate(rows):
            rejection = rejections.get(i)
            if rejection is None:
                self.outcome.imported += 1
            else:
                self.outcome.rejected += 1
                for text in rejection.report(row.label):
                    self.report(text)
        self.done += len(rows)
        if aborted is not None:
            raise aborted from cause
        if self.progress is not None:
            self.progress(self.done, self.total)


async def load_natural_keys() -> NaturalKeys:
    """The natural keys of this node's current (not deleted) organisations and projects."""
    from node.storage.models import Record

    keys = NaturalKeys()
    rows = (
        await Record.filter(type__in=("organisation", "project"), deleted=False)
        .order_by("seq")
        .values_list("id", "type", "envelope")
    )
    for rid, rtype, envelope in rows:
        keys.add(rtype, rid, orjson.loads(envelope)["payload"])
    return keys
