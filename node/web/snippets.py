"""Search result snippets cut from the record's own text, as the reader may see it.

The search index keeps a derivative of each record (names, programme codes, vocabulary labels run
together) that is fine to match on but reads as noise ("HORIZON HORIZON-CL3-… 101077777 Germany").
The portal shows the reader the record itself instead: the field that matched the query — its
label in front when it is not the description — or, without a match in a text field, the start of
the description. The payload given here is the one ``node.access`` presents to this reader (the
public fields only, for anonymous readers), so a snippet never shows a field the reader may not
see. Matches are marked as parts (``(text, matched)``); the template escapes every part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from node.search.text import SNIPPET_CHARS, Clause, match_spans, parse_query, snippet
from node.web.schema_forms import Field, form_fields

#: Free text that describes the record: a snippet without a match starts here, with no label.
DESCRIPTION_FIELDS = ("description", "objective")
#: Shown as the result's heading already.
TITLE_FIELDS = frozenset({"legal_name", "name", "title", "acronym"})
TEXT_KINDS = ("text", "textarea", "lines")


@dataclass(frozen=True)
class Snippet:
    label: str  # the field the text comes from ("Keywords"); "" for the description
    parts: tuple[tuple[str, bool], ...]  # (text, matched)

    @property
    def text(self) -> str:
        return "".join(t for t, _ in self.parts)


def _texts(
    fields: tuple[Field, ...], payload: Mapping[str, Any], prefix: str = ""
) -> list[tuple[str, str, str]]:
    """(name, label, text) of every text field present in ``payload``, in form order."""
    out: list[tuple[str, str, str]] = []
    for f in fields:
        name = f.pointer.rsplit("/", 1)[-1]
        value = payload.get(name)
        label = f"{prefix} › {f.title}" if prefix else f.title
        if f.kind == "object" and isinstance(value, Mapping):
            out += _texts(f.children, value, label)
        elif f.kind in TEXT_KINDS and not (not prefix and name in TITLE_FIELDS):
            items = value if isinstance(value, list) else [value]
            text = ", ".join(str(v) for v in items if isinstance(v, str | int) and not isinstance(v, bool))
            if text.strip():
                out.append((name if not prefix else "", label, text))
    return out


def _parts(text: str, clauses: tuple[Clause, ...]) -> tuple[tuple[str, bool], ...]:
    parts: list[tuple[str, bool]] = []
    at = 0
    for start, end in match_spans(text, clauses):
        if start > at:
            parts.append((text[at:start], False))
        parts.append((text[start:end], True))
        at = end
    if at < len(text):
        parts.append((text[at:], False))
    return tuple(parts)


def record_snippet(
    rtype: str, payload: Mapping[str, Any], q: str, max_chars: int = SNIPPET_CHARS
) -> Snippet | None:
    """The snippet of a record for query ``q``: the first text field with a match (descriptions
    first), cut around it, the matches marked; else the description's start; else None.

    ``payload`` must be what the reader may see of the record (``node.access``).
    """
    try:
        fields = form_fields(rtype)
    except ValueError:
        return None
    texts = _texts(fields, payload)
    texts.sort(key=lambda t: t[0] not in DESCRIPTION_FIELDS)  # stable: descriptions first, then form order
    clauses = parse_query(q)
    if clauses:
        for name, label, text in texts:
            if match_spans(text, clauses):
                cut = snippet(text, clauses, max_chars)
                return Snippet("" if name in DESCRIPTION_FIELDS else label, _parts(cut, clauses))
    for name, _, text in texts:
        if name in DESCRIPTION_FIELDS:
            return Snippet("", ((snippet(text, (), max_chars), False),))
    return None
