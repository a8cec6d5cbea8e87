"""``ncc import``, the reading half (pure): an import file's bytes to rows.

:func:`read_rows` takes bytes and returns :class:`Row` objects with the line each starts on: a row
either carries ``(type, visibility, payload)`` or the :class:`Rejection` found while reading it
(bad JSON on that line, a cell that is not an integer, an unmappable CORDIS value). Problems with
the whole file (not UTF-8, unknown format, CSV without a type, no records) raise
:class:`ImportFileError`. :mod:`node.services.import_writer` checks and publishes the rows.

Formats (``docs/import.md``): JSON array or NDJSON of ``{"type", "visibility", "payload"}``
objects, of bare payloads (with ``--type``), or of signed envelopes (what ``ncc export`` writes);
CSV of one record type (:mod:`node.services.tabular`); CORDIS ``organization.csv`` and
``project.csv`` (:mod:`node.services.cordis`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from federation.errors import ProtocolError, SchemaErrorItem, SchemaInvalid
from federation.strictjson import loads as strict_loads
from node.errors import ApiError
from node.services import cordis, tabular

FORMATS = ("auto", "json", "ndjson", "csv", cordis.PROJECTS, cordis.ORGANISATIONS)
CORDIS_SCOPES = ("participating", "coordinated", "all")
VISIBILITY_COLUMN = "visibility"
WRAPPER_KEYS = frozenset({"type", "visibility", "payload"})
ENVELOPE_KEYS = frozenset({"ncc", "id", "type", "visibility", "deleted", "payload", "sig"})
MESSAGE_MAX = 300


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (reported as one line, exit 1)."""


def default_visibility(rtype: str) -> str:
    """Experts are personal data: ``national`` unless asked otherwise (DESIGN §3)."""
    return "national" if rtype == "expert" else "public"


@dataclass(frozen=True)
class Rejection:
    """Why one row was not imported: a stable code, a detail, and JSON pointers where known."""

    code: str
    detail: str
    errors: tuple[SchemaErrorItem, ...] = ()

    @classmethod
    def of(cls, exc: ProtocolError | ApiError) -> Rejection:
        errors = tuple(exc.errors) if isinstance(exc, SchemaInvalid) else ()
        return cls(exc.code, exc.detail, errors)

    @classmethod
    def at(cls, pointer: str, message: str, code: str = "schema_invalid") -> Rejection:
        return cls(code, f"{pointer}: {message}", ({"pointer": pointer, "message": message},))

    def report(self, label: str) -> list[str]:
        """``line 7: schema_invalid /subdomains/0: …`` — one line per error pointer."""
        if not self.errors:
            return [f"{label}: {self.code}: {_short(self.detail)}"]
        return [f"{label}: {self.code} {e['pointer'] or '/'}: {_short(e['message'])}" for e in self.errors]


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 1] + "…"


@dataclass
class Row:
    """One record to import (``rejection`` set when it failed while being read)."""

    line: int
    rtype: str = ""
    visibility: str = ""
    payload: Any = None
    rejection: Rejection | None = None

    @property
    def label(self) -> str:
        return f"line {self.line}"


@dataclass(frozen=True)
class Options:
    """What the command line says about the file."""

    country: str
    rtype: str | None = None
    visibility: str | None = None
    fmt: str = "auto"
    cordis_scope: str = "participating"


@dataclass
class Parsed:
    """The rows of a file, what format it was read as, and notes for the operator."""

    fmt: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)


# -- reading -------------------------------------------------------------------------------------


def decode(data: bytes, name: str) -> str:
    """UTF-8 text without a byte-order mark.

    Raises:
        ImportFileError: empty or not UTF-8.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise ImportFileError(f"{name}: empty file")
    return text


def sniff(text: str, name: str) -> str:
    """The format of a file by its content: ``json``, ``ndjson``, ``csv`` or a CORDIS format.

    Raises:
        ImportFileError: none of them.
    """
    start = text.lstrip()[:1]
    if start == "[":
        return "json"
    if start == "{":
        return "json" if _one_document(text) else "ndjson"
    first = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = _delimiter(first)
    if delimiter:
        return cordis.detect(next(csv.reader([first], delimiter=delimiter))) or "csv"
    if name.lower().endswith(".csv"):
        return "csv"
    raise ImportFileError(f"{name}: unknown format (expected JSON, NDJSON or CSV; see --format)")


def _one_document(text: str) -> bool:
    """Whether the text is a single JSON value (a pretty-printed object), not NDJSON."""
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return "\n" in text.strip()


def _delimiter(header: str) -> str | None:
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else None


def read_rows(
    data: bytes,
    name: str,
    options: Options,
    *,
    organisations_by_pic: Mapping[str, str] | None = None,
    cordis_organisations: bytes | None = None,
) -> Parsed:
    """Read an import file.

    ``organisations_by_pic`` (this node's organisation records by PIC) and ``cordis_organisations``
    (the bytes of a CORDIS organization.csv) link CORDIS projects to organisations.

    Raises:
        ImportFileError: the file as a whole cannot be imported.
    """
    text = decode(data, name)
    fmt = sniff(text, name) if options.fmt == "auto" else options.fmt
    if cordis_organisations is not None and fmt != cordis.PROJECTS:
        raise ImportFileError(f"{name}: --cordis-organizations goes with a CORDIS project.csv, this is {fmt}")
    if fmt in ("json", "ndjson"):
        items = _json_items(text, name) if fmt == "json" else _ndjson_items(text, name)
        parsed = Parsed(fmt, [_row_from_json(line, item, options) for line, item in items])
    elif fmt == "csv":
        parsed = Parsed(fmt, _csv_rows(text, name, options))
    elif fmt == cordis.ORGANISATIONS:
        parsed = _cordis_organisations(text, name, options)
    else:
        links = None
        if cordis_organisations is not None:
            org_text = decode(cordis_organisations, "CORDIS organisations file")
            _, org_rows = _cordis_read(org_text, "CORDIS organisations file", cordis.ORGANISATIONS)
            links = cordis.Links.build(cordis.participations(org_rows), organisations_by_pic or {})
        parsed = _cordis_projects(text, name, options, links)
    if not parsed.rows and not parsed.notes:
        raise ImportFileError(f"{name}: no records")
    return parsed


# JSON / NDJSON ---------------------------------------------------------------------------------


def _json_items(text: str, name: str) -> Iterator[tuple[int, Any]]:
    """The elements of a JSON array with the line each starts on; each parsed strictly.

    A syntax error ends the file (no way to resynchronise); an element that parses but breaks a
    strict rule (duplicate keys, NaN, a 2^60 integer) rejects only that element.
    """
    decoder = json.JSONDecoder()
    pos, line, counted = _skip(text, 0), 1, 0
    if text[pos : pos + 1] == "{":  # one object: a one-item file
        yield 1, _strict(text)
        return
    pos = _skip(text, pos + 1)
    if text[pos : pos + 1] == "]":
        pos += 1
    else:
        while True:
            line += text.count("\n", counted, pos)
            counted = pos
            try:
                _, end = decoder.raw_decode(text, pos)
            except (json.JSONDecodeError, RecursionError) as exc:
                where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
                raise ImportFileError(f"{name}: malformed JSON{where}") from None
            yield line, _strict(text[pos:end])
            pos = _skip(text, end)
            if text[pos : pos + 1] == ",":
                pos = _skip(text, pos + 1)
            elif text[pos : pos + 1] == "]":
                pos += 1
                break
            else:
                raise ImportFileError(
                    f"{name}: malformed JSON at line {line + text.count(chr(10), counted, pos)}"
                )
    if text[pos:].strip():
        raise ImportFileError(f"{name}: text after the JSON array")


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _strict(text: str) -> Any:
    """The strictly parsed value, or the ProtocolError saying why it is not acceptable."""
    try:
        return strict_loads(text)
    except ProtocolError as exc:
        return exc


def _ndjson_items(text: str, name: str) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield number, _strict(line)


def _row_from_json(line: int, item: Any, options: Options) -> Row:
    if isinstance(item, ProtocolError):
        return Row(line, rejection=Rejection.of(item))
    if not isinstance(item, dict):
        return Row(line, rejection=Rejection.at("", "an import item must be a JSON object"))
    if ENVELOPE_KEYS <= item.keys():  # a signed envelope (ncc export): re-publish its payload here
        if item.get("deleted") is True:
            return Row(
                line, rejection=Rejection("gone", f"{item.get('id')} is a tombstone; nothing to import")
            )
        return _row(line, item.get("type"), item.get("visibility"), item.get("payload"), options)
    if "payload" in item and item.keys() <= WRAPPER_KEYS:
        return _row(line, item.get("type", options.rtype), item.get("visibility"), item["payload"], options)
    if options.rtype is None:
        return Row(
            line,
            rejection=Rejection.at(
                "/type", "not a {type, visibility, payload} object; give --type for bare payloads"
            ),
        )
    return _row(line, options.rtype, None, item, options)


def _row(line: int, rtype: Any, visibility: Any, payload: Any, options: Options) -> Row:
    if not isinstance(rtype, str) or not rtype:
        return Row(line, rejection=Rejection.at("/type", "missing record type"))
    if visibility is None:
        visibility = options.visibility or default_visibility(rtype)
    if not isinstance(visibility, str):
        return Row(line, rejection=Rejection.at("/visibility", "must be public, network or national"))
    return Row(line, rtype, visibility, payload)


# CSV -------------------------------------------------------------------------------------------


def _csv_records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """``(line where the record starts, cells)`` for every non-blank CSV record."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    line = 1
    for cells in reader:
        if any(c.strip() for c in cells):
            yield line, cells
        line = reader.line_num + 1


def _csv_rows(text: str, name: str, options: Options) -> list[Row]:
    if options.rtype is None:
        raise ImportFileError(f"{name}: a CSV file needs --type (one record type per file)")
    first = text.lstrip("\r\n").split("\n", 1)[0]
    records = _csv_records(text, _delimiter(first) or ",")
    try:
        _, header = next(records)
    except (StopIteration, csv.Error) as exc:
        raise ImportFileError(f"{name}: no CSV header ({exc})") from None
    names = [h.strip() for h in header]
    vis_index = names.index(VISIBILITY_COLUMN) if VISIBILITY_COLUMN in names else None
    try:
        columns = tabular.check_header(options.rtype, [n for n in names if n != VISIBILITY_COLUMN])
    except ValueError as exc:
        raise ImportFileError(f"{name}: {exc}") from None
    rows: list[Row] = []
    try:
        for line, cells in records:
            visibility = cells[vis_index].strip() if vis_index is not None and vis_index < len(cells) else ""
            if vis_index is not None:
                cells = cells[:vis_index] + cells[vis_index + 1 :]
            if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
                rows.append(
                    Row(line, rejection=Rejection.at("", f"{len(cells)} cells, header has {len(columns)}"))
                )
                continue
            try:
                payload = tabular.row_to_payload(columns, cells)
            except tabular.CellError as exc:
                rows.append(Row(line, rejection=Rejection.at(exc.pointer, exc.message)))
                continue
            rows.append(_row(line, options.rtype, visibility or None, payload, options))
    except csv.Error as exc:
        raise ImportFileError(f"{name}: malformed CSV: {exc}") from None
    return rows


# CORDIS ----------------------------------------------------------------------------------------


def _cordis_read(text: str, name: str, fmt: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        header, rows = cordis.read_rows(text)
    except csv.Error as exc:
        raise ImportFileError(f"{name}: malformed CSV: {exc}") from None
    if cordis.detect(header) != fmt:
        raise ImportFileError(f"{name}: not a CORDIS {fmt.split('-', 1)[1]} file (see docs/import.md)")
    return header, rows


def _cordis_organisations(text: str, name: str, options: Options) -> Parsed:
    _, raw = _cordis_read(text, name, cordis.ORGANISATIONS)
    orgs = cordis.organisations_of(raw, options.country)
    rows: list[Row] = []
    for org in orgs:
        try:
            payload = cordis.organisation_payload(org, options.country)
        except tabular.CellError as exc:
            rows.append(Row(org.line, rejection=Rejection.at(exc.pointer, exc.message)))
            continue
        rows.append(_row(org.line, "organisation", None, payload, options))
    note = (
        f"CORDIS organisations: {len(orgs)} of {options.country} "
        f"(from {len(raw)} participation rows; other countries skipped)"
    )
    return Parsed(cordis.ORGANISATIONS, rows, [note])


def _cordis_projects(text: str, name: str, options: Options, links: cordis.Links | None) -> Parsed:
    _, raw = _cordis_read(text, name, cordis.PROJECTS)
    scope = options.cordis_scope if links is not None else "all"
    rows: list[Row] = []
    for line, record in raw:
        if not cordis.in_scope(record.get("id", ""), links, options.country, scope):
            continue
        try:
            payload = cordis.project_payload(record, links)
        except tabular.CellError as exc:
            rows.append(Row(line, rejection=Rejection.at(exc.pointer, exc.message)))
            continue
        rows.append(_row(line, "project", None, payload, options))
    how = f"scope {scope} for {options.country}" if links is not None else "all rows, no organisation links"
    return Parsed(cordis.PROJECTS, rows, [f"CORDIS projects: {len(rows)} of {len(raw)} ({how})"])
