"""``ncc export``: this node's current records as NDJSON envelopes or as CSV (of one type, or all).

NDJSON lines are the stored signed envelopes, byte for byte as published (current version of every
record, ``national`` ones included: the file is the operator's copy, as sensitive as the database),
so each line verifies offline against this node's key. CSV uses the column mapping of
:mod:`node.services.tabular` (the importer's), plus a ``visibility`` column first, so that
``ncc import --type T`` of the file re-creates the same payloads with the same visibilities.

Records are read in sequence order, in batches, so memory stays flat on a large node.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from typing import Any, TextIO

import orjson

from node.services import tabular
from schemas import RECORD_TYPES

BATCH = 500


async def stored_envelopes(
    rtype: str | None = None, include_deleted: bool = False, batch: int = BATCH
) -> AsyncIterator[str]:
    """The current envelope (JSON text, as stored and signed) of each record, in sequence order."""
    from node.storage.models import Record

    after = 0
    while True:
        query = Record.filter(seq__gt=after)
        if rtype is not None:
            query = query.filter(type=rtype)
        if not include_deleted:
            query = query.filter(deleted=False)
        rows = await query.order_by("seq").limit(batch).values_list("seq", "envelope")
        for _, text in rows:
            yield text
        if len(rows) < batch:
            return
        after = rows[-1][0]


async def write_ndjson(out: TextIO, rtype: str | None = None, include_deleted: bool = False) -> int:
    """Write one envelope a line; return how many."""
    count = 0
    async for text in stored_envelopes(rtype, include_deleted):
        out.write(text)
        out.write("\n")
        count += 1
    return count


def csv_header(rtype: str) -> list[str]:
    """The CSV header for a record type: ``visibility`` then the payload columns."""
    return ["visibility", *(c.name for c in tabular.columns_for(rtype))]


def csv_line(rtype: str, envelope: dict[str, Any]) -> list[str]:
    """The CSV cells of one (not deleted) envelope."""
    return [envelope["visibility"], *tabular.payload_to_row(tabular.columns_for(rtype), envelope["payload"])]


async def write_csv(out: TextIO, rtype: str | None) -> int:
    """Write the header and one row per current record of ``rtype``; return how many rows.

    Without a type, every record in one sheet: a ``type`` column first, then ``visibility`` and the
    union of the types' payload columns (each row fills its own type's; a column of the same name is
    the same field in every type). For spreadsheets: ``ncc import`` reads one type per CSV file.
    """
    # RFC 4180 line ends: with "\n" alone, the csv module left a cell holding a CR unquoted, and the
    # CR then split the row when read back (multi-line text fields are allowed)
    writer = csv.writer(out, lineterminator="\r\n")
    if rtype is not None:
        writer.writerow(csv_header(rtype))
    else:
        names = list(dict.fromkeys(name for t in RECORD_TYPES for name in csv_header(t)))
        writer.writerow(["type", *names])
        position = {name: i for i, name in enumerate(names)}
    count = 0
    async for text in stored_envelopes(rtype):
        envelope = orjson.loads(text)
        if rtype is not None:
            writer.writerow(csv_line(rtype, envelope))
        else:
            row = [""] * len(names)
            own = envelope["type"]
            for name, cell in zip(csv_header(own), csv_line(own, envelope), strict=True):
                row[position[name]] = cell
            writer.writerow([own, *row])
        count += 1
    return count
