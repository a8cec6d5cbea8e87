"""Validation errors said in plain words, one per form field.

The schema stays the only validator (``federation.schemas``); it reports each failure with the JSON
pointer of the value and the JSON Schema ``keyword`` that failed. Here each failure is attached to the
nearest field of the form and said for people, with the field's label ("Enter the legal name",
"Choose at least one of the knowledge domains") — never the validator's own text ("[] has less than 1
item"). A field with several failures shows the one to fix first (a missing value before its form).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from node.web.schema_forms import Field, fields_by_pointer

REQUIRED_MESSAGE = re.compile(r'\A"([^"]+)" is a required property\Z')
_LAST_NUMBER = re.compile(r"(\d+)\D*\Z")  # the limit ends the message; the value may hold digits too
_NEAREST = re.compile(r"nearest: (.+)\Z", re.DOTALL)
#: Which failure of a field is shown: the first of these keywords (unknown ones after them).
PRIORITY = (
    "required",
    "type",
    "minItems",
    "minLength",
    "enum",
    "pattern",
    "format",
    "maxLength",
    "maxItems",
    "minimum",
    "maximum",
)
LIST_KINDS = ("multiselect", "checkboxes", "lines")
FORMAT_WORDS = {
    "email": "as an e-mail address, like name@example.org",
    "url": "as a web address starting with https://",
    "date": "as a date, like 2025-01-31",
}


@dataclass(frozen=True)
class FieldError:
    """The one error shown for a field: beside it (``message``) and in the summary (``summary``, which
    names the enclosing fields of a nested one: "Identifiers: PIC is not …")."""

    pointer: str
    dom_id: str
    message: str
    summary: str


def lower_label(title: str) -> str:
    """A label inside a sentence: "Legal name" → "legal name"; acronyms stay ("PIC", "ORCID iD")."""
    letters = [c for c in title.split(" ", 1)[0] if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return title
    return title[:1].lower() + title[1:]


def plain_message(f: Field, keyword: str, message: str) -> str:
    """What a failure of ``keyword`` (a JSON Schema keyword; ``message`` the validator's text, for the
    numbers in it) on field ``f`` means, in words, with the field's label."""
    title = f.title
    name = lower_label(title)
    many = f.kind in LIST_KINDS
    number = _LAST_NUMBER.search(message)
    n = int(number.group(1)) if number else 0
    if keyword in ("required", "minLength") or (keyword == "minItems" and not many):
        if f.kind in ("multiselect", "checkboxes"):
            return f"Choose at least one of the {name}"
        if f.kind == "lines":
            return f"Enter at least one of the {name}, one per line"
        if f.kind == "select":
            return f"Choose the {name}"
        if f.kind == "boolean":
            return f"Answer yes or no to “{title}”"
        if f.kind == "object":
            return f"Fill in the {name}"
        return f"Enter the {name}"
    if keyword == "minItems":
        verb = "Enter" if f.kind == "lines" else "Choose"
        return f"{verb} at least {n or 1} of the {name}" + (", one per line" if f.kind == "lines" else "")
    if keyword == "maxItems":
        return f"Choose at most {n} of the {name}"
    if keyword == "maxLength":
        return f"{title} must be {n or f.max_length} characters or fewer"
    if keyword in ("format", "pattern") and f.input_type in FORMAT_WORDS:
        return f"Enter the {name} {FORMAT_WORDS[f.input_type]}"
    if keyword in ("pattern", "format"):  # a custom format (PIC, ROR) says what its hint says
        return f"{title} is not in the expected form (see the hint)"
    if keyword == "enum":
        nearest = _NEAREST.search(message)
        hint = f" (did you mean {nearest.group(1)}?)" if nearest else ""
        return f"Choose one of the listed values for the {name}{hint}"
    if keyword == "type":
        if f.kind == "integer" or f.input_type == "integer":
            return f"Enter the {name} as a whole number"
        return f"The {name} is not the kind of value expected here"
    if keyword == "minimum":
        return f"{title} must be at least {n}"
    if keyword == "maximum":
        return f"{title} must be at most {n}"
    if keyword == "additionalProperties":
        return f"The {name} holds a part this form does not know"
    return f"{title}: {message}"


def _rank(keyword: str) -> int:
    return PRIORITY.index(keyword) if keyword in PRIORITY else len(PRIORITY)


def path_title(known: Mapping[str, Field], pointer: str) -> str:
    """``Contact person › E-mail`` for ``/contact/email``."""
    parts = pointer.strip("/").split("/")
    titles = [known[p].title for i in range(len(parts)) if (p := "/" + "/".join(parts[: i + 1])) in known]
    return " › ".join(titles)


def field_errors(
    errors: Sequence[Mapping[str, Any]], fields: tuple[Field, ...]
) -> tuple[dict[str, FieldError], list[str]]:
    """Attach ``{pointer, message, keyword?}`` errors to the nearest field, one per field (the one to fix
    first); return them by field pointer (in the order of the form) and the messages no field takes.

    ``"x" is a required property`` at ``/membership`` belongs to ``/membership/x``; ``/domains/3``
    to ``/domains``; an envelope pointer (``/payload/…``) to the payload's field.
    """
    known = fields_by_pointer(fields)
    chosen: dict[str, tuple[int, str, str]] = {}  # pointer -> (rank, keyword, message)
    rest: list[str] = []
    for e in errors:
        pointer = str(e.get("pointer", "")).removeprefix("/payload")
        message = str(e.get("message", ""))
        keyword = str(e.get("keyword") or "")
        required = REQUIRED_MESSAGE.match(message)
        if required:  # the registry's pointer names the missing property already; others' may not
            keyword = "required"
            name = required.group(1).replace("~", "~0").replace("/", "~1")
            if pointer.rsplit("/", 1)[-1] != name:
                pointer = f"{pointer}/{name}"
        target = pointer
        while target and target not in known:
            target = target.rsplit("/", 1)[0]
        if not target:
            if message not in rest:
                rest.append(message)
            continue
        rank = _rank(keyword)
        if target not in chosen or rank < chosen[target][0]:
            chosen[target] = (rank, keyword, message)
    out: dict[str, FieldError] = {}
    for pointer, f in known.items():  # form order
        if pointer in chosen:
            _, keyword, message = chosen[pointer]
            text = plain_message(f, keyword, message)
            parent = path_title(known, pointer.rsplit("/", 1)[0]) if pointer.count("/") > 1 else ""
            out[pointer] = FieldError(pointer, f.dom_id, text, f"{parent}: {text}" if parent else text)
    return out, rest
