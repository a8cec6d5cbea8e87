"""HTML forms generated from the record JSON Schemas, and form data turned back into payloads.

A record type's schema becomes a tree of :class:`Field` objects: every property with its
``title``/``description``, ``$ref`` resolved (vocabulary references become selects with labels).
Each field is named by the JSON pointer of its value in the payload (``/contact/email``), so the
pointers of a ``schema_invalid`` error land next to the field they concern. Parsing is the inverse
walk: empty inputs are left out, objects with no value are left out, arrays of strings come one per
line, booleans are tri-state (unset / yes / no). The schema itself stays the only validator: the
parser only refuses what it cannot represent (an integer field holding ``abc``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from schemas import RECORD_TYPES, load_schema_documents, record_schema_id

LONG_TEXT = 300  # strings allowed to be longer than this get a textarea
@dataclass(frozen=True)
class Option:
    value: str
    label: str
    group: str = ""


@dataclass(frozen=True)
class Field:
    """One form control (or fieldset, for ``kind == "object"``).

    ``kind``: text | textarea | integer | boolean | select | multiselect | checkboxes | lines | object.
    ``pointer`` is the JSON pointer of the value in the payload; it doubles as the input's name.
    """

    pointer: str
    name: str
    kind: str
    title: str
    description: str = ""
    required: bool = False
    restricted: bool = False
    options: tuple[Option, ...] = ()
    input_type: str = "text"
    max_length: int | None = None
    pattern: str | None = None
    children: tuple[Field, ...] = ()

    @property
    def dom_id(self) -> str:
        return "f" + re.sub(r"[^A-Za-z0-9_-]", "-", self.pointer)

    @property
    def grouped(self) -> bool:
        return any(o.group for o in self.options)

    def groups(self) -> list[tuple[str, list[Option]]]:
        out: dict[str, list[Option]] = {}
        for o in self.options:
            out.setdefault(o.group, []).append(o)
        return list(out.items())


class FormInputError(ValueError):
    """Input that cannot become a payload value; ``errors`` are ``{pointer, message, keyword}`` items."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['pointer']}: {e['message']}" for e in errors))
        self.errors = errors


# -- schema resolution --------------------------------------------------------------------------


@functools.cache
def _documents() -> dict[str, dict[str, Any]]:
    return {d["$id"]: d for d in load_schema_documents()}


def _resolve(node: Mapping[str, Any], base: str) -> tuple[dict[str, Any], str]:
    """Follow ``$ref`` chains; titles/descriptions beside a ``$ref`` win over the target's."""
    merged: dict[str, Any] = {}
    seen = 0
    current: Mapping[str, Any] = node
    while True:
        for k, v in current.items():
            if k != "$ref":
                merged.setdefault(k, v)
        ref = current.get("$ref")
        if not isinstance(ref, str) or seen > 16:
            return merged, base
        seen += 1
        doc_id, _, fragment = ref.partition("#")
        doc_id = doc_id or base
        target: Any = _documents()[doc_id]
        for part in [p for p in fragment.split("/") if p]:
            target = target[part]
        current, base = target, doc_id


def _vocabulary_options(schema: Mapping[str, Any]) -> tuple[Option, ...]:
    terms = schema.get("x-ncc-terms") or []
    parents = {t["id"]: t["label"] for t in _documents().get(
        "https://schemas.ncc-federation.eu/vocab/knowledge_domains/1", {}).get("x-ncc-terms", [])}
    return tuple(
        Option(t["id"], t["label"], parents.get(t.get("parent", ""), "") if t.get("parent") else "")
        for t in terms
    )


def _enum_options(schema: Mapping[str, Any]) -> tuple[Option, ...]:
    titles = schema.get("x-ncc-enum-titles") or {}
    return tuple(Option(str(v), str(titles.get(v, v))) for v in schema["enum"])


def _field(pointer: str, raw: Mapping[str, Any], base: str, required: bool, restricted: bool) -> Field:
    schema, base = _resolve(raw, base)
    f = Field(pointer=pointer, name=pointer, kind="text", title=str(schema.get("title") or pointer.rsplit("/", 1)[-1]),
              description=str(schema.get("description", "")), required=required,
              restricted=restricted or bool(schema.get("x-ncc-restricted")))
    if "x-ncc-terms" in schema:
        return replace(f, kind="select", options=_vocabulary_options(schema))
    if "enum" in schema:
        return replace(f, kind="select", options=_enum_options(schema))
    kind = schema.get("type")
    if kind == "object":
        needed = set(schema.get("required") or [])
        children = tuple(_field(f"{pointer}/{name}", sub, base, name in needed, f.restricted)
                         for name, sub in (schema.get("properties") or {}).items())
        return replace(f, kind="object", children=children)
    if kind == "array":
        items, _ = _resolve(schema.get("items") or {}, base)
        if "x-ncc-terms" in items:
            return replace(f, kind="multiselect", options=_vocabulary_options(items))
        if "enum" in items:
            return replace(f, kind="checkboxes", options=_enum_options(items))
        return replace(f, kind="lines", input_type="integer" if items.get("type") == "integer" else "text")
    if kind in ("boolean", "integer"):
        return replace(f, kind=str(kind))
    max_length = schema.get("maxLength") if isinstance(schema.get("maxLength"), int) else None
    if max_length is not None and max_length > LONG_TEXT and "format" not in schema:
        return replace(f, kind="textarea", max_length=max_length)
    input_type = {"email": "email", "uri": "url", "date": "date"}.get(str(schema.get("format")), "text")
    return replace(f, input_type=input_type, max_length=max_length, pattern=schema.get("pattern"))


@functools.cache
def form_fields(rtype: str) -> tuple[Field, ...]:
    """The top-level fields of a record type's form, in schema order.

    Raises:
        ValueError: unknown record type.
    """
    if rtype not in RECORD_TYPES:
        raise ValueError(f"unknown record type {rtype!r}")
    return schema_fields(record_schema_id(rtype))


@functools.cache
def schema_fields(sid: str, exclude: tuple[str, ...] = ()) -> tuple[Field, ...]:
    """The top-level fields of the payload schema ``sid`` (its ``$id``), without ``exclude`` (the
    application form leaves out what the NCC sets)."""
    root = _documents()[sid]
    needed = set(root.get("required") or [])
    return tuple(_field(f"/{name}", sub, sid, name in needed, False) for name, sub in root["properties"].items()
                 if name not in exclude)


def fields_by_pointer(fields: tuple[Field, ...]) -> dict[str, Field]:
    """Every field of a form (nested ones too) by its pointer."""
    out: dict[str, Field] = {}
    for f in fields:
        out[f.pointer] = f
        out.update(fields_by_pointer(f.children))
    return out


def type_title(rtype: str) -> str:
    return str(_documents()[record_schema_id(rtype)].get("title", rtype))


def type_description(rtype: str) -> str:
    return str(_documents()[record_schema_id(rtype)].get("description", ""))


# -- form data -> payload -----------------------------------------------------------------------


def parse_form(rtype: str, form: Any) -> dict[str, Any]:
    """Build a payload from submitted form data (a multidict: ``getall`` for multi-valued fields).

    Raises:
        FormInputError: a value that cannot be represented (an integer field holding text).
    """
    return parse_fields(form_fields(rtype), form)


def parse_fields(fields: tuple[Field, ...], form: Any) -> dict[str, Any]:
    """:func:`parse_form` over any tuple of fields (the application form's).

    Raises:
        FormInputError: a value that cannot be represented.
    """
    errors: list[dict[str, str]] = []
    payload: dict[str, Any] = {}
    for f in fields:
        value = _value(f, form, errors)
        if value is not None:
            payload[f.pointer.rsplit("/", 1)[-1]] = value
    if errors:
        raise FormInputError(errors)
    return payload


def _value(f: Field, form: Any, errors: list[dict[str, str]]) -> Any:
    if f.kind == "object":
        out = {}
        for child in f.children:
            value = _value(child, form, errors)
            if value is not None:
                out[child.pointer.rsplit("/", 1)[-1]] = value
        return out or None
    if f.kind in ("multiselect", "checkboxes"):
        values = [str(v) for v in form.getall(f.name, []) if str(v).strip()]
        return list(dict.fromkeys(values)) or _empty_list(f)
    raw = form.get(f.name)
    if not isinstance(raw, str):
        return None
    if f.kind == "lines":
        lines = [line.strip() for line in raw.replace("\r\n", "\n").split("\n") if line.strip()]
        items: list[Any] = list(dict.fromkeys(lines))
        if f.input_type == "integer":
            converted = []
            for i, item in enumerate(items):
                try:
                    converted.append(int(item))
                except ValueError:
                    errors.append({"pointer": f"{f.pointer}/{i}", "message": f"{item!r} is not a whole number",
                                   "keyword": "type"})
            items = converted
        return items or _empty_list(f)
    if f.kind == "boolean":
        return {"true": True, "false": False}.get(raw)
    text = raw.strip() if f.kind != "textarea" else raw.strip().replace("\r\n", "\n")
    if not text:
        return None
    if f.kind == "integer":
        try:
            return int(text)
        except ValueError:
            errors.append({"pointer": f.pointer, "message": f"{text!r} is not a whole number", "keyword": "type"})
            return None
    return text


def _empty_list(f: Field) -> list[Any] | None:
    """Required tag lists may be empty (DESIGN §9): the form always shows them, so nothing chosen is ``[]``."""
    return [] if f.required else None


# -- payload -> form values ---------------------------------------------------------------------


def typed_values(form: Any, fields: tuple[Field, ...]) -> dict[str, Any]:
    """What the user typed into ``fields``, to show again after an error (nothing typed is lost)."""
    values: dict[str, Any] = {}

    def walk(fields: Any) -> None:
        for f in fields:
            if f.kind == "object":
                walk(f.children)
            elif f.kind in ("multiselect", "checkboxes"):
                values[f.pointer] = [str(v) for v in form.getall(f.name, [])]
            elif f.kind == "boolean":
                values[f.pointer] = {"true": True, "false": False}.get(str(form.get(f.name, "")))
            else:
                raw = form.get(f.name)
                values[f.pointer] = raw if isinstance(raw, str) and raw else None
    walk(fields)
    return values


def form_values(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Map every pointer of the form to the value to show (lists for multi-valued fields)."""
    out: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}/{k}", v)
        else:
            out[prefix] = node

    walk("", dict(payload))
    return out


def text_value(value: Any, kind: str) -> str:
    """The text an input shows for a stored value."""
    if value is None:
        return ""
    if kind == "lines" and isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if kind == "boolean":
        return "true" if value is True else "false" if value is False else ""
    return str(value)


@functools.cache
def vocabulary_labels() -> dict[str, str]:
    """Every vocabulary id (and country code) with its label."""
    out: dict[str, str] = {}
    for doc in _documents().values():
        for term in doc.get("x-ncc-terms") or []:
            out.setdefault(str(term["id"]), str(term["label"]))
    return out


@dataclass
class DisplayRow:
    title: str
    pointer: str
    values: list[tuple[str, str]] = field(default_factory=list)  # (text, id or "")
    children: list[DisplayRow] = field(default_factory=list)


def display_rows(rtype: str, payload: Mapping[str, Any]) -> list[DisplayRow]:
    """The payload as titled rows for a record page (vocabulary ids with their labels)."""
    labels = vocabulary_labels()

    def rows(fs: tuple[Field, ...], node: Mapping[str, Any]) -> list[DisplayRow]:
        out = []
        for f in fs:
            key = f.pointer.rsplit("/", 1)[-1]
            if key not in node:
                continue
            value = node[key]
            row = DisplayRow(f.title, f.pointer)
            if f.kind == "object" and isinstance(value, dict):
                row.children = rows(f.children, value)
            else:
                items = value if isinstance(value, list) else [value]
                for item in items:
                    if isinstance(item, bool):
                        row.values.append(("yes" if item else "no", ""))
                    elif f.kind in ("select", "multiselect") and str(item) in labels:
                        row.values.append((labels[str(item)], str(item)))
                    elif f.kind in ("select", "checkboxes"):
                        opt = next((o for o in f.options if o.value == str(item)), None)
                        row.values.append((opt.label if opt else str(item), ""))
                    else:
                        row.values.append((str(item), ""))
            out.append(row)
        return out

    return rows(form_fields(rtype), payload)
