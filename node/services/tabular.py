"""The CSV column mapping of record payloads, derived from the record schemas (pure: no I/O).

One CSV holds one record type. Columns, in schema property order:

- a top-level scalar field is one column named like the field (``legal_name``, ``grant_id``);
- a nested object is flattened into dotted columns (``identifiers.pic``, ``contact.email``,
  ``membership.status``, ``consent.given``, ``access.cross_border``);
- a list is one cell, items separated by ``;`` (``domains``, ``subdomains``, ``participants``,
  ``access.who``, …). Whitespace around items is ignored; ``\\`` escapes the next character
  (``\\;`` is a literal ``;``). The cell ``[]`` is an empty list, an empty cell an absent field,
  except for required lists (``domains``, ``subdomains`` of an organisation) where it is ``[]``;
- booleans are ``true``/``false`` (any case), integers are parsed where the schema says integer,
  everything else is the cell's text verbatim (an empty cell is an absent field).

:func:`row_to_payload` and :func:`payload_to_row` are inverse for every valid payload except an
empty nested object (``"identifiers": {}``), which has no cells and is dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from federation.errors import SchemaErrorItem
from schemas import load_schema_documents, record_schema_id

LIST_SEPARATOR = ";"
EMPTY_LIST = "[]"


class CellError(ValueError):
    """A cell cannot be converted; ``pointer`` names the payload field (JSON pointer)."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{pointer}: {message}")
        self.pointer = pointer
        self.message = message

    def item(self) -> SchemaErrorItem:
        return {"pointer": self.pointer, "message": self.message}


@dataclass(frozen=True)
class Column:
    """One CSV column: where its value sits in the payload and how the cell is written."""

    name: str  # dotted: "identifiers.pic"
    path: tuple[str, ...]  # ("identifiers", "pic")
    kind: str  # "string" | "integer" | "boolean" | "list"
    item_kind: str = "string"  # for lists
    required: bool = False  # a required list: an empty cell means []

    @property
    def pointer(self) -> str:
        return "/" + "/".join(self.path)


# -- columns from the schema -----------------------------------------------------------------------


@functools.cache
def _documents() -> dict[str, dict[str, Any]]:
    return {doc["$id"]: doc for doc in load_schema_documents()}


def _resolve(node: Mapping[str, Any], base: str) -> tuple[Mapping[str, Any], str]:
    """Follow ``$ref`` chains; ``base`` is the ``$id`` of the document holding ``node``.

    Returns the target subschema and the ``$id`` of its document.
    """
    for _ in range(16):
        ref = node.get("$ref")
        if not isinstance(ref, str):
            break
        doc_id, _, fragment = ref.partition("#")
        base = doc_id or base
        target: Any = _documents()[base]
        for part in filter(None, fragment.split("/")):
            target = target[part]
        node = target
    return node, base


def _kind(node: Mapping[str, Any]) -> str:
    declared = node.get("type")
    if declared in ("integer", "boolean", "object", "array"):
        return str(declared)
    return "string"  # strings, enums, vocabulary ids


def _flatten(schema: Mapping[str, Any], base: str, prefix: tuple[str, ...]) -> Iterable[Column]:
    required = set(schema.get("required", ()))
    for name, raw in schema.get("properties", {}).items():
        path = (*prefix, name)
        sub, sub_base = _resolve(raw, base)
        kind = _kind(sub)
        if kind == "object":
            yield from _flatten(sub, sub_base, path)
        elif kind == "array":
            items, _ = _resolve(sub.get("items", {}), sub_base)
            yield Column(".".join(path), path, "list", _kind(items), required=name in required)
        else:
            yield Column(".".join(path), path, kind)


@functools.cache
def columns_for(rtype: str) -> tuple[Column, ...]:
    """The CSV columns of a record type, in schema order.

    Raises:
        ValueError: unknown record type.
    """
    schema_id = record_schema_id(rtype)
    return tuple(_flatten(_documents()[schema_id], schema_id, ()))


def check_header(rtype: str, header: Iterable[str]) -> list[Column]:
    """The columns named by a CSV header, in header order.

    Raises:
        ValueError: an unknown or repeated column (a typo must not silently drop data).
    """
    known = {c.name: c for c in columns_for(rtype)}
    out: list[Column] = []
    for name in header:
        column = known.get(name.strip())
        if column is None:
            raise ValueError(f"unknown column {name!r} for type {rtype} (see docs/import.md)")
        if column in out:
            raise ValueError(f"column {name!r} appears twice")
        out.append(column)
    return out


# -- cells -> payload ------------------------------------------------------------------------------


def split_list(cell: str) -> list[str]:
    """Split a multi-valued cell on unescaped ``;``; ``\\`` escapes the next character."""
    items: list[str] = []
    current: list[str] = []
    escaped = False
    raw_chars: list[bool] = []  # whether each char of `current` came from an escape
    for ch in cell:
        if escaped:
            current.append(ch)
            raw_chars.append(True)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == LIST_SEPARATOR:
            items.append(_strip(current, raw_chars))
            current, raw_chars = [], []
        else:
            current.append(ch)
            raw_chars.append(False)
    if escaped:
        current.append("\\")
        raw_chars.append(True)
    items.append(_strip(current, raw_chars))
    return [item for item in items if item != ""]


def _strip(chars: list[str], escaped: list[bool]) -> str:
    """Strip unescaped surrounding whitespace."""
    start, end = 0, len(chars)
    while start < end and not escaped[start] and chars[start].isspace():
        start += 1
    while end > start and not escaped[end - 1] and chars[end - 1].isspace():
        end -= 1
    return "".join(chars[start:end])


def _scalar(column: Column, kind: str, text: str, pointer: str) -> Any:
    if kind == "integer":
        try:
            return int(text.strip())
        except ValueError:
            raise CellError(pointer, f"{text!r} is not an integer") from None
    if kind == "boolean":
        value = text.strip().lower()
        if value in ("true", "false"):
            return value == "true"
        raise CellError(pointer, f"{text!r} is not true or false")
    return text


def cell_value(column: Column, cell: str) -> Any:
    """The payload value of one non-empty cell.

    Raises:
        CellError: not an integer / boolean where the schema wants one.
    """
    if column.kind != "list":
        return _scalar(column, column.kind, cell, column.pointer)
    if cell.strip() == EMPTY_LIST:
        return []
    return [
        _scalar(column, column.item_kind, item, f"{column.pointer}/{i}")
        for i, item in enumerate(split_list(cell))
    ]


#: What a spreadsheet runs as a formula at the start of a cell (DESIGN §10; OWASP "CSV injection").
FORMULA_STARTS = frozenset("=+-@\t\r")


def defuse(cell: str) -> str:
    """A cell a spreadsheet shows as text: ``'`` put before one that would start a formula.

    Cells already starting with apostrophes get one more when a formula character follows them, so
    :func:`restore` gives back exactly the original text.
    """
    rest = cell.lstrip("'")
    return "'" + cell if rest and rest[0] in FORMULA_STARTS else cell


def restore(cell: str) -> str:
    """The original text of a cell :func:`defuse` wrote (``ncc import`` reads its own exports)."""
    rest = cell.lstrip("'")
    return cell[1:] if cell.startswith("'") and rest and rest[0] in FORMULA_STARTS else cell


def row_to_payload(columns: list[Column], cells: list[str]) -> dict[str, Any]:
    """Build a payload from one CSV row (cells in header order; missing trailing cells are empty).

    Raises:
        CellError: the first cell that cannot be converted.
    """
    payload: dict[str, Any] = {}
    for i, column in enumerate(columns):
        cell = restore(cells[i]) if i < len(cells) else ""
        if cell == "":
            if column.kind == "list" and column.required:
                _put(payload, column.path, [])
            continue
        _put(payload, column.path, cell_value(column, cell))
    return payload


def _put(payload: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = payload
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value


# -- payload -> cells ------------------------------------------------------------------------------


def _escape(item: str) -> str:
    """Escape ``\\`` and ``;``, and what :func:`split_list` would otherwise strip or read as ``[]``."""
    out: list[str] = []
    last = len(item) - 1
    for i, ch in enumerate(item):
        if (
            ch in ("\\", LIST_SEPARATOR)
            or (ch.isspace() and i in (0, last))
            or (i == 0 and item == EMPTY_LIST)
        ):
            out.append("\\")
        out.append(ch)
    return "".join(out)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def payload_to_row(columns: Iterable[Column], payload: Mapping[str, Any]) -> list[str]:
    """The cells of one payload (empty for absent fields), each safe to open in a spreadsheet."""
    cells: list[str] = []
    for column in columns:
        value: Any = payload
        for key in column.path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is None:
            cells.append("")
        elif column.kind == "list":
            items = [_escape(_text(v)) for v in value]
            cells.append(defuse(LIST_SEPARATOR.join(items)) if items else EMPTY_LIST)
        else:
            cells.append(defuse(_text(value)))
    return cells
