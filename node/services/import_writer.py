"""``ncc import``, the writing half: check and publish the rows :mod:`node.services.importer` read.

Every row is checked exactly as the API checks a write (``Publisher.check_payload``, the membership
transition) and, unless it is a dry run, created through ``Publisher.create``: each row is its own
transaction, so a failing row writes nothing and never stops the others. Records already on this
node with the same natural key (organisation PIC, project grant id) are rejected as ``duplicate``,
so running the same import twice does not double the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from federation.errors import ProtocolError
from node.errors import ApiError
from node.services.importer import Rejection, Row
from node.services.publish import Publisher


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


async def import_rows(
    rows: list[Row],
    publisher: Publisher,
    keys: NaturalKeys,
    *,
    dry_run: bool,
    report: Report,
    progress: Progress | None = None,
) -> Outcome:
    """Check and (unless ``dry_run``) create every row, each in its own transaction.

    ``report`` gets one line per problem (``line 7: schema_invalid /subdomains/0: …``).
    In a dry run ``imported`` counts the rows that would be imported.

    A row the database refuses (a driver error inside its transaction, rolled back) is rejected
    as ``database_error`` and the import goes on: one odd row must not stop the file. A database
    failing :data:`MAX_CONSECUTIVE_DB_ERRORS` rows in a row is down, not picky: the import stops.

    Raises:
        ImportAborted: the database keeps failing (earlier rows stay imported; none is half written).
    """
    outcome = Outcome()
    db_errors = 0
    if publisher.schemas is not None:
        await publisher.schemas.refresh()  # a dry run checks against the schema a real run would write
    for done, row in enumerate(rows, start=1):
        rejection = row.rejection or keys.duplicate(row)
        if rejection is None:
            try:
                if dry_run:
                    publisher.check_payload(row.rtype, row.visibility, row.payload)
                    publisher.check_transition(None, row.payload)
                    rid = f"(dry run, {row.label})"
                else:
                    rid = (await publisher.create(row.rtype, row.visibility, row.payload)).id
            except (ProtocolError, ApiError) as exc:
                rejection = Rejection.of(exc)
            except Exception as exc:  # the driver's errors: the transaction rolled back
                db_errors += 1
                if db_errors >= MAX_CONSECUTIVE_DB_ERRORS:
                    raise ImportAborted(outcome, row, exc) from exc
                rejection = Rejection("database_error", f"{exc.__class__.__name__}: {exc}")
            else:
                db_errors = 0
                keys.add(row.rtype, rid, row.payload)
        if rejection is None:
            outcome.imported += 1
        else:
            outcome.rejected += 1
            for text in rejection.report(row.label):
                report(text)
        if progress is not None:
            progress(done, len(rows))
    return outcome


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
