"""Deriving a :class:`SearchDoc` from a verified record envelope.

Tags are found two ways: by the payload fields the schemas name (``domains``, ``subdomains``,
``sectors``, ``technologies``, ``use_cases``, ``org_type``, role fields), and by recognising
vocabulary ids in any other top-level field, so that a record type whose schema names a field
differently is still tagged. Vocabulary ids are unique across vocabularies (``cry``, ``cry.10``,
``sec.…``, ``tech.…``, ``ecsf.…``), which makes recognition unambiguous.

Disclosure (DESIGN §11): the title, text and tags are derived from the payload's public fields only
(those its schema marks ``x-ncc-public``, ``federation.schemas.disclose``); the text of every other
field goes to the document's restricted part, which anonymous queries never match, rank, snippet or
count. The split follows the schema the envelope names, whatever its version: a field no schema
marks public is restricted.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from federation.groups import audience
from federation.schemas import Annotations, disclose, schema_id_for

from .base import MEMBERSHIP_NOT_APPLICABLE, SearchDoc

#: Vocabulary name -> the dimension its ids tag (fields_of_activity only feeds text).
VOCABULARY_DIMENSIONS: dict[str, str] = {
    "knowledge_domains": "domain",
    "subdomains": "subdomain",
    "sectors": "sector",
    "technologies": "technology",
    "use_cases": "use_case",
    "ecsf_role_profiles": "role",
    "organisation_types": "org_type",
}

_FIELD_DIMENSIONS: dict[str, str] = {
    "domains": "domain",
    "subdomains": "subdomain",
    "sectors": "sector",
    "technologies": "technology",
    "use_cases": "use_case",
    "org_type": "org_type",
    "organisation_type": "org_type",
    "roles": "role",
    "role_profiles": "role",
    "ecsf_roles": "role",
    "ecsf_role_profiles": "role",
    "ecsf_profiles": "role",
}

_TITLE_FIELDS = ("legal_name", "name", "title", "acronym", "national_name", "short_name")
_DESCRIPTION_FIELDS = ("description", "objective", "summary", "abstract")
_NAME_FIELDS = ("national_name", "legal_name", "name", "short_name", "acronym", "title")
_LIST_TEXT_FIELDS = ("keywords", "capabilities", "services", "expertise")
_OTHER_TEXT_FIELDS = ("programme", "call", "topic", "grant_id", "department")
#: Free-text fields never scanned for vocabulary ids.
_TEXT_FIELDS = frozenset(_TITLE_FIELDS + _DESCRIPTION_FIELDS + _LIST_TEXT_FIELDS + _OTHER_TEXT_FIELDS)


@dataclass(frozen=True)
class VocabularyIndex:
    """Look-ups built once from ``schemas.load_vocabularies()``-shaped data."""

    labels: Mapping[str, str]
    dimension: Mapping[str, str]
    parent: Mapping[str, str]

    @classmethod
    def build(cls, vocabularies: Mapping[str, list[dict[str, Any]]]) -> VocabularyIndex:
        labels: dict[str, str] = {}
        dimension: dict[str, str] = {}
        parent: dict[str, str] = {}
        for name, terms in vocabularies.items():
            for term in terms:
                term_id = term.get("id")
                if not isinstance(term_id, str):
                    continue
                if isinstance(term.get("label"), str):
                    labels[term_id] = term["label"]
                if name in VOCABULARY_DIMENSIONS:
                    dimension[term_id] = VOCABULARY_DIMENSIONS[name]
                if name == "subdomains" and isinstance(term.get("parent"), str):
                    parent[term_id] = term["parent"]
        return cls(labels, dimension, parent)


_last_index: tuple[Mapping[str, Any], VocabularyIndex] | None = None


def _index_for(vocabularies: Mapping[str, list[dict[str, Any]]]) -> VocabularyIndex:
    global _last_index
    if _last_index is None or _last_index[0] is not vocabularies:
        _last_index = (vocabularies, VocabularyIndex.build(vocabularies))
    return _last_index[1]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str) and item.strip()]
    return []


def _name(value: Any) -> str:
    """A name field is a string or a person-name object; return it as display text."""
    if isinstance(value, str):
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, Mapping):
        keys = ("given_name", "first_name", "given", "family_name", "last_name", "family")
        parts = [value.get(key) for key in keys]
        seen: list[str] = []
        for part in parts:
            if isinstance(part, str) and part.strip() and part.strip() not in seen:
                seen.append(part.strip())
        if seen:
            return " ".join(seen)
        return " ".join(v.strip() for v in value.values() if isinstance(v, str) and v.strip())
    return ""


def _title(record_type: str, payload: Mapping[str, Any]) -> str:
    acronym, title = _name(payload.get("acronym")), _name(payload.get("title"))
    if record_type == "project" and acronym and title:
        return f"{acronym} – {title}"
    for key in _TITLE_FIELDS:
        text = _name(payload.get(key))
        if text:
            return text
    return ""


def _country(payload: Mapping[str, Any], origin: str) -> str:
    for holder in (payload, payload.get("location"), payload.get("address")):
        if isinstance(holder, Mapping):
            country = holder.get("country")
            if isinstance(country, str) and country.strip():
                return country.strip()
    return origin


def _tags(
    record_type: str, country: str, payload: Mapping[str, Any], vocab: VocabularyIndex
) -> tuple[dict[str, list[str]], list[str]]:
    """The document's tags, and every string of the payload's non-text fields in payload order (the
    ids whose vocabulary labels the text carries: one pass over the payload serves both)."""
    tags: dict[str, list[str]] = {"type": [record_type], "country": [country]}
    candidates: list[str] = []
    dimension_of = vocab.dimension

    def add(dimension: str, value: str) -> None:
        values = tags.get(dimension)
        if values is None:
            tags[dimension] = [value]
        elif value not in values:
            values.append(value)

    for key, value in payload.items():
        if key in _TEXT_FIELDS:
            continue
        if isinstance(value, str):
            if not value.strip():
                continue
            items: list[str] = [value]
        elif isinstance(value, list):
            items = [item for item in value if isinstance(item, str) and item.strip()]
            if not items:
                continue
        else:
            continue
        candidates += items
        field_dimension = _FIELD_DIMENSIONS.get(key)
        if field_dimension is not None:
            for item in items:
                add(field_dimension, item)
        else:
            for item in items:
                found = dimension_of.get(item)
                if found is not None:
                    add(found, item)
    for sub in tags.get("subdomain", ()):
        parent = vocab.parent.get(sub) or (sub.split(".", 1)[0] if "." in sub else "")
        if parent:
            add("domain", parent)
    membership = payload.get("membership") if record_type == "organisation" else None
    if record_type != "organisation":
        add("membership", MEMBERSHIP_NOT_APPLICABLE)
    elif isinstance(membership, Mapping) and isinstance(membership.get("status"), str):
        add("membership", membership["status"])
    return tags, candidates


def _vocabulary_ids(payload: Mapping[str, Any]) -> Iterable[str]:
    for key, value in payload.items():
        if key not in _TEXT_FIELDS:
            yield from _strings(value)


@functools.cache
def packaged_annotations() -> Annotations:
    """The disclosure annotations of the packaged schemas (read once per process)."""
    from schemas import load_schema_documents

    return Annotations.of(load_schema_documents())


def split_payload(
    envelope: Mapping[str, Any], annotations: Annotations | None = None
) -> tuple[dict[str, Any], list[Any]]:
    """The payload's public part and the values of every other field (default deny: a schema the
    annotations do not know has no public field)."""
    payload = envelope.get("payload") or {}
    if not isinstance(payload, Mapping):
        raise TypeError("envelope payload is not an object")
    notes = annotations or packaged_annotations()
    schema_id = schema_id_for(str(envelope.get("schema") or f"{envelope.get('type')}/1"))
    shown, _, hidden = disclose(dict(payload), notes.public_trie(schema_id) if notes.has(schema_id) else {})
    return shown, hidden


def _leaves(value: Any, out: list[str]) -> None:
    """Every string and number under ``value``, in document order (booleans say nothing to search)."""
    kind = type(value)
    if kind is dict:
        items: Iterable[Any] = value.values()
    elif kind is list:
        items = value
    else:
        _leaf(value, out)
        return
    # Parsed JSON holds exact dicts, lists, str, int, float, bool and None: those are handled inline
    # (no call per scalar); anything else goes through _leaf's isinstance checks.
    for item in items:
        kind = type(item)
        if kind is str:
            item = item.strip()
            if item:
                out.append(item)
        elif kind is dict or kind is list:
            _leaves(item, out)
        elif kind is int or kind is float:
            out.append(str(item))
        elif kind is not bool and item is not None:
            _leaf(item, out)


def _leaf(value: Any, out: list[str]) -> None:
    """:func:`_leaves` for any value (the general case)."""
    if isinstance(value, str):
        if value.strip():
            out.append(value.strip())
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        out.append(str(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            _leaves(item, out)
    elif isinstance(value, list):
        for item in value:
            _leaves(item, out)


def document_from_envelope(
    envelope: Mapping[str, Any],
    vocabularies: Mapping[str, list[dict[str, Any]]],
    annotations: Annotations | None = None,
) -> SearchDoc | None:
    """Return the search document of a verified record envelope, or None for a tombstone.

    ``vocabularies`` is ``schemas.load_vocabularies()`` (or the same shape); ``annotations`` the
    schemas' disclosure marks (default: the packaged schemas). Raises ``KeyError`` or ``TypeError``
    only for an envelope that lacks its required fields, which a verified envelope never does.
    """
    if envelope.get("deleted"):
        return None
    payload, hidden = split_payload(envelope, annotations)
    restricted: list[str] = []
    _leaves(hidden, restricted)
    vocab = _index_for(vocabularies)
    record_type, origin = str(envelope["type"]), str(envelope["origin"])
    title = _title(record_type, payload)
    country = _country(payload, origin)
    tags, candidates = _tags(record_type, country, payload, vocab)

    parts: list[str] = []
    for key in _DESCRIPTION_FIELDS:
        parts.extend(_strings(payload.get(key)))
    for key in _NAME_FIELDS:
        name = _name(payload.get(key))
        if name and name not in title and name not in parts:
            parts.append(name)
    for key in _LIST_TEXT_FIELDS + _OTHER_TEXT_FIELDS:
        value = payload.get(key)
        if isinstance(value, int) and not isinstance(value, bool):  # grant_id
            value = str(value)
        parts.extend(_strings(value))
    location = payload.get("location")
    if isinstance(location, Mapping):
        parts.extend(_strings(location.get("city")))
    labels: list[str] = []
    if country in vocab.labels:
        labels.append(vocab.labels[country])
    label_ids = [
        value
        for dimension, values in tags.items()
        if dimension not in ("type", "country")
        for value in values
    ]
    label_ids += candidates  # what _vocabulary_ids(payload) yields, gathered by _tags
    vocabulary_labels = vocab.labels
    for term_id in dict.fromkeys(label_ids):
        label = vocabulary_labels.get(term_id)
        if label:
            labels.append(label)
    parts.extend(dict.fromkeys(labels))

    return SearchDoc(
        id=str(envelope["id"]),
        type=record_type,
        origin=origin,
        # the audience key: a group record's carries its origin (federation/groups.py, node/access.py)
        visibility=audience(str(envelope["visibility"]), origin),
        version=int(envelope["version"]),
        issued_at=str(envelope["issued_at"]),
        title=title,
        text="\n".join(parts),
        tags={dimension: tuple(values) for dimension, values in tags.items()},
        restricted="\n".join(dict.fromkeys(restricted)),
    )
