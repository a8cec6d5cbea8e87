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

import codecs
import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

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
    rows: Iterable[Row]
    notes: list[str] = field(default_factory=list)


# -- reading -------------------------------------------------------------------------------------

#: Bytes decoded per read of a streamed file.
CHUNK = 1 << 20
#: The head of a file its format is sniffed from (a one-object JSON file must fit: records ≤ 1 MiB).
HEAD = 4 << 20
#: Longest JSON array element waited for before a parse failure counts as malformed, not truncated.
MAX_ITEM = 8 << 20


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


class TextStream:
    """The UTF-8 text of a binary stream, decoded a chunk at a time into a sliding buffer.

    ``buf[pos:]`` is what has not been consumed; :meth:`more` appends the next chunk and drops the
    consumed part, counting its newlines so :meth:`line` stays a line number of the whole file.
    Memory is a chunk or two (or one element of a JSON array, if larger), whatever the file size.

    Raises (from :meth:`more`):
        ImportFileError: bytes that are not UTF-8 (with their offset in the file).
    """

    def __init__(self, stream: BinaryIO, name: str, chunk: int | None = None) -> None:
        self.stream, self.name, self.chunk = stream, name, chunk or CHUNK
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.bytes_read = 0
        self._base_line = 1  # line number of buf[0]
        self._counted = 0  # buf[:_counted] newlines are in _count_line
        self._count_line = 1

    def more(self, size: int | None = None) -> bool:
        """Append at least one more chunk (False at the end of the file)."""
        if self.eof:
            return False
        data = self.stream.read(size or self.chunk)
        try:
            text = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"{self.name}: not UTF-8 text (byte {self.bytes_read + exc.start})") from None
        self.bytes_read += len(data)
        if not data:
            self.eof = True
        if self.pos:
            self._base_line += self.buf.count("\n", 0, self.pos)
            self._count_line, self._counted = self._base_line, 0
            self.buf = self.buf[self.pos :]
            self.pos = 0
        self.buf += text
        return bool(data) or bool(text)

    def grow(self) -> bool:
        """:meth:`more`, reading at least as much as is pending: an element or line that runs over
        many chunks is rescanned a logarithmic number of times, not once per chunk."""
        return self.more(max(self.chunk, len(self.buf) - self.pos))

    def need(self, count: int) -> bool:
        """Read until ``count`` characters follow ``pos`` (False if the file ends first)."""
        while len(self.buf) - self.pos < count:
            if not self.more():
                return False
        return True

    def skip_space(self) -> str:
        """Move past whitespace; return the next character ('' at the end of the file)."""
        while True:
            buf, pos = self.buf, self.pos
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            self.pos = pos
            if pos < len(buf):
                return buf[pos]
            if not self.more():
                return ""

    def line(self, pos: int | None = None) -> int:
        """The line number (in the whole file) of ``buf[pos]`` (default: ``pos``)."""
        pos = self.pos if pos is None else pos
        if pos < self._counted:
            self._count_line, self._counted = self._base_line, 0
        self._count_line += self.buf.count("\n", self._counted, pos)
        self._counted = pos
        return self._count_line

    def rest(self) -> str:
        """Everything not consumed yet, to the end of the file."""
        while self.more():
            pass
        text = self.buf[self.pos :]
        self.pos = len(self.buf)
        return text

    def lines(self, universal: bool = True) -> Iterator[str]:
        """The remaining text as lines ending in ``\\r\\n``, ``\\r`` or ``\\n`` (as ``newline=""`` reads
        them, for CSV), or ending in ``\\n`` only (``universal=False``, for NDJSON)."""
        pattern = _LINE if universal else _NEWLINE_LINE
        while True:
            buf = self.buf
            # Held back until more is read: a last line without its end, and a final \r (of \r\n?).
            end = len(buf) if self.eof or not universal else len(buf) - 1
            for match in pattern.finditer(buf, self.pos, max(end, self.pos)):
                if not self.eof and match.end() >= end and not match.group().endswith("\n"):
                    break
                self.pos = match.end()
                yield match.group()
            if not self.grow() and self.pos >= len(self.buf):
                return


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_NEWLINE_LINE = re.compile(r"[^\n]*\n|[^\n]+")


def sniff(text: str, name: str) -> str:
    """The format of a file by its content (or its first :data:`HEAD` characters): ``json``,
    ``ndjson``, ``csv`` or a CORDIS format.

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
    """Read an import file held in memory (every row at once; :func:`open_rows` streams).

    Raises:
        ImportFileError: the file as a whole cannot be imported.
    """
    parsed = open_rows(
        io.BytesIO(data),
        name,
        options,
        organisations_by_pic=organisations_by_pic,
        cordis_organisations=cordis_organisations,
    )
    parsed.rows = list(parsed.rows)
    if not parsed.rows and not parsed.notes:
        raise ImportFileError(f"{name}: no records")
    return parsed


def open_rows(
    stream: BinaryIO,
    name: str,
    options: Options,
    *,
    organisations_by_pic: Mapping[str, str] | None = None,
    cordis_organisations: bytes | None = None,
) -> Parsed:
    """Read an import file from a seekable binary stream; ``rows`` is an iterator that reads the
    file as it goes (JSON arrays, NDJSON and CSV are never held whole; CORDIS files are, they are
    grouped by organisation).

    The whole file is scanned once first (UTF-8, JSON syntax, CSV framing), so that a file-level
    problem is reported before any row is imported; the rows are then read in a second pass.
    ``organisations_by_pic`` (this node's organisation records by PIC) and ``cordis_organisations``
    (the bytes of a CORDIS organization.csv) link CORDIS projects to organisations.

    Raises:
        ImportFileError: the file as a whole cannot be imported. Iterating ``rows`` raises it
            only for a file that changed between the two passes.
    """
    head_text = TextStream(stream, name)
    head_text.more(HEAD)
    if head_text.bytes_read < HEAD:
        head_text.more()  # sees the end of a file shorter than HEAD
    head = head_text.buf
    if not head.strip() and head_text.eof:
        raise ImportFileError(f"{name}: empty file")
    if not head.strip():
        # A file that starts with more than HEAD whitespace: find where its content starts.
        if not head_text.skip_space():
            raise ImportFileError(f"{name}: empty file")
        head = head_text.buf[head_text.pos :]
    while "\n" not in head.lstrip() and len(head) < MAX_ITEM and head_text.grow():
        head = head_text.buf[head_text.pos :]  # the first line whole: a CSV header, an NDJSON record
    fmt = (sniff(head, name) if head_text.eof else _sniff_head(head, name)) if options.fmt == "auto" else options.fmt
    if cordis_organisations is not None and fmt != cordis.PROJECTS:
        raise ImportFileError(f"{name}: --cordis-organizations goes with a CORDIS project.csv, this is {fmt}")

    def text() -> TextStream:
        stream.seek(0)
        return TextStream(stream, name)

    if fmt in ("json", "ndjson"):
        items = _json_items if fmt == "json" else _ndjson_items
        nonblank = sum(1 for _ in items(text(), name, parse=False))  # the first pass: syntax, UTF-8
        if not nonblank:
            raise ImportFileError(f"{name}: no records")
        return Parsed(fmt, (_row_from_json(line, item, options) for line, item in items(text(), name)))
    if fmt == "csv":
        if options.rtype is None:
            raise ImportFileError(f"{name}: a CSV file needs --type (one record type per file)")
        if not any(True for _ in _csv_rows(text(), name, options, build=False)):
            raise ImportFileError(f"{name}: no records")
        return Parsed(fmt, _csv_rows(text(), name, options))
    whole = text().rest()
    if not whole.strip():
        raise ImportFileError(f"{name}: empty file")
    if fmt == cordis.ORGANISATIONS:
        parsed = _cordis_organisations(whole, name, options)
    else:
        links = None
        if cordis_organisations is not None:
            org_text = decode(cordis_organisations, "CORDIS organisations file")
            _, org_rows = _cordis_read(org_text, "CORDIS organisations file", cordis.ORGANISATIONS)
            links = cordis.Links.build(cordis.participations(org_rows), organisations_by_pic or {})
        parsed = _cordis_projects(whole, name, options, links)
    if not parsed.rows and not parsed.notes:
        raise ImportFileError(f"{name}: no records")
    return parsed


def _sniff_head(head: str, name: str) -> str:
    """:func:`sniff` of a file larger than its head: an object first is NDJSON unless its first
    line is not a complete JSON value (then it is one pretty-printed document)."""
    start = head.lstrip()[:1]
    if start == "{":
        first, newline, _ = head.lstrip().partition("\n")
        if not newline:  # one line longer than the head: not a pretty-printed document
            return "ndjson"
        try:
            json.loads(first)
        except (ValueError, RecursionError):
            return "json"
        return "ndjson"
    return sniff(head, name)


# JSON / NDJSON ---------------------------------------------------------------------------------


def _json_items(text: TextStream, name: str, parse: bool = True) -> Iterator[tuple[int, Any]]:
    """The elements of a JSON array with the line each starts on; each parsed strictly.

    Read incrementally: each element is found with the stdlib's C scanner (``raw_decode``) in the
    decoded buffer, reading more of the file while an element runs past its end, then parsed again
    strictly from its own text (``strict_loads``: duplicate keys, NaN, 2^60 integers), which a
    streaming event parser such as ijson cannot do — it never hands out an element's text.
    A syntax error ends the file (no way to resynchronise); an element that parses but breaks a
    strict rule rejects only that element. ``parse=False`` checks the syntax and yields None.
    """
    decoder = json.JSONDecoder()
    first = text.skip_space()
    if first == "{":  # one object: a one-item file
        line = text.line()
        whole = text.rest()
        yield line, (_strict(whole) if parse else None)
        return
    if first != "[":
        raise ImportFileError(f"{name}: malformed JSON at line {text.line()}")
    text.pos += 1
    if text.skip_space() == "]":
        text.pos += 1
    else:
        while True:
            start = text.pos
            line = text.line(start)
            while True:
                try:
                    _, end = decoder.raw_decode(text.buf, start)
                except (json.JSONDecodeError, RecursionError) as exc:
                    if len(text.buf) - start < MAX_ITEM and text.grow():
                        start = text.pos  # more() moved the buffer
                        continue
                    if isinstance(exc, json.JSONDecodeError):
                        raise ImportFileError(f"{name}: malformed JSON at line {text.line(exc.pos)}") from None
                    raise ImportFileError(f"{name}: malformed JSON") from None
                break
            # A number may go on past the buffer ("12" of "123"): decide with more text.
            if end == len(text.buf) and not text.eof and text.grow():
                continue
            yield line, (_strict(text.buf[start:end]) if parse else None)
            text.pos = end
            separator = text.skip_space()
            if separator == ",":
                text.pos += 1
                text.skip_space()
            elif separator == "]":
                text.pos += 1
                break
            else:
                raise ImportFileError(f"{name}: malformed JSON at line {text.line()}")
    if text.skip_space():
        raise ImportFileError(f"{name}: text after the JSON array")


def _strict(text: str) -> Any:
    """The strictly parsed value, or the ProtocolError saying why it is not acceptable."""
    try:
        raw: str | bytes = text.encode()  # bytes may take strict_loads' fast path
    except UnicodeEncodeError:  # a lone surrogate: the text parser names the problem
        raw = text
    try:
        return strict_loads(raw)
    except ProtocolError as exc:
        return exc


def _ndjson_items(text: TextStream, name: str, parse: bool = True) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(text.lines(universal=False), start=1):
        if line.strip():
            yield number, (_strict(line) if parse else None)


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


def _csv_records(lines: Iterable[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """``(line where the record starts, cells)`` for every non-blank CSV record.

    Raises:
        csv.Error: malformed framing, naming the line where the broken record starts and the cause.
            Strict: a quote that is never closed is an error (lenient parsing swallowed every later
            row into one cell and blamed the row for a missing column).
    """
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    line = 1
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                yield line, cells
            line = reader.line_num + 1
    except csv.Error as exc:
        cause = str(exc)
        if "unexpected end of data" in cause:
            cause = "a quoted cell starts here and its closing quote never comes"
        raise csv.Error(f"line {line}: {cause}") from None


def _csv_rows(text: TextStream, name: str, options: Options, build: bool = True) -> Iterator[Row]:
    """The rows of a CSV file, read as they are needed. ``build=False`` checks the framing and the
    header only (the first pass) and yields a placeholder per record."""
    if options.rtype is None:
        raise ImportFileError(f"{name}: a CSV file needs --type (one record type per file)")
    text.skip_space()
    # The delimiter is sniffed from the header line (the first non-blank line).
    while "\n" not in text.buf[text.pos :] and text.grow():
        pass
    first = text.buf[text.pos :].lstrip("\r\n").split("\n", 1)[0]
    records = _csv_records(text.lines(), _delimiter(first) or ",")
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
    try:
        for line, cells in records:
            if not build:
                yield Row(line)
                continue
            yield _csv_row(line, cells, columns, vis_index, options)
    except csv.Error as exc:
        raise ImportFileError(f"{name}: malformed CSV: {exc}") from None


def _csv_row(
    line: int, cells: list[str], columns: list[tabular.Column], vis_index: int | None, options: Options
) -> Row:
    visibility = cells[vis_index].strip() if vis_index is not None and vis_index < len(cells) else ""
    if vis_index is not None:
        cells = cells[:vis_index] + cells[vis_index + 1 :]
    if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
        return Row(line, rejection=Rejection.at("", f"{len(cells)} cells, header has {len(columns)}"))
    try:
        payload = tabular.row_to_payload(columns, cells)
    except tabular.CellError as exc:
        return Row(line, rejection=Rejection.at(exc.pointer, exc.message))
    return _row(line, options.rtype or "", visibility or None, payload, options)


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
