"""Schema registry: compiled JSON Schema (2020-12) validators over locally held documents.

All documents are handed in (see ``schemas.load_schema_documents()``); ``$ref`` resolves through a
``jsonschema_rs.Registry`` of those documents only, and any attempt to retrieve another URI fails —
validation never touches the network. Errors come back as JSON pointers into the instance.

Disclosure is default deny (DESIGN §11): a property is shown to anonymous readers only when its
subschema carries ``"x-ncc-public": true`` (everything under it goes with it); every other field is
network-only. :meth:`SchemaRegistry.public_pointers` lists the public properties of a schema and
:func:`redact`/:func:`disclose` keep only them — for any record schema and any version, by the
annotation alone. ``"x-ncc-restricted": true`` still marks personal data (contact persons, e-mail):
forms flag it, and :meth:`SchemaRegistry.restricted_pointers` lists it; it is never public.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

import jsonschema_rs
import orjson

from federation.errors import SchemaErrorItem, SchemaInvalid

#: Base of every schema ``$id``; an envelope's ``schema`` field ``"<type>/<n>"`` maps to ``<base>/<type>/<n>``.
SCHEMA_ID_BASE = "https://schemas.ncc-federation.eu"
#: Annotation marking personal data (contact persons, e-mail): never public, flagged in forms.
RESTRICTED = "x-ncc-restricted"
#: Annotation marking a property anonymous readers may see (with everything under it).
PUBLIC = "x-ncc-public"
#: Array-index wildcard in the pointers of :meth:`SchemaRegistry.public_pointers`.
ANY_INDEX = "*"


def schema_id_for(schema: str) -> str:
    """Map an envelope's ``schema`` field (``"organisation/1"``) to the payload schema ``$id``."""
    return f"{SCHEMA_ID_BASE}/{schema}"


def json_pointer(path: Iterable[str | int]) -> str:
    """RFC 6901 JSON pointer for a sequence of keys/indices (``~`` → ``~0``, ``/`` → ``~1``)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _error_path(err: Any) -> list[str | int]:
    """Where an error is: for a missing required property, the property itself (``/legal_name``, not
    the object holding it), so that a form can show the error next to its field."""
    path = list(err.instance_path)
    if isinstance(err.kind, jsonschema_rs.ValidationErrorKind.Required):
        path.append(str(err.kind.property))
    return path


def _refuse_retrieval(uri: str) -> Any:
    raise ValueError(f"remote schema retrieval is disabled: {uri}")


class SchemaRegistry:
    """Compiled validators for every document that has an ``$id`` and is an object schema.

    Args:
        documents: every JSON Schema document (records, common definitions, vocabularies, ...).
        formats: custom ``format`` checkers (``federation.formats.CUSTOM_FORMATS``); formats are
            always asserted.

    Raises:
        SchemaInvalid: a document has no ``$id``, two share one, or a document does not compile
            (e.g. a ``$ref`` to a document that was not given).
    """

    def __init__(
        self, documents: list[dict[str, Any]], formats: dict[str, Callable[[str], bool]] | None = None
    ) -> None:
        self._documents: dict[str, dict[str, Any]] = {}
        for doc in documents:
            sid = doc.get("$id") if isinstance(doc, dict) else None
            if not isinstance(sid, str):
                raise SchemaInvalid("schema document without $id")
            sid = sid.rstrip("#")
            if sid in self._documents:
                raise SchemaInvalid(f"duplicate schema $id {sid}")
            self._documents[sid] = doc
        try:
            self._registry = jsonschema_rs.Registry(
                list(self._documents.items()), retriever=_refuse_retrieval
            )
            self._validators = {
                sid: jsonschema_rs.validator_for(
                    doc,
                    formats=formats,
                    validate_formats=True,
                    registry=self._registry,
                    retriever=_refuse_retrieval,
                )
                for sid, doc in self._documents.items()
            }
        except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as e:
            raise SchemaInvalid(f"schema does not compile: {e}") from e
        self._annotations = Annotations(self._documents)

    def has(self, schema_id: str) -> bool:
        """True when a document with this ``$id`` is registered."""
        return schema_id in self._validators

    def schema_ids(self) -> list[str]:
        """Every registered ``$id``, sorted."""
        return sorted(self._validators)

    def document(self, schema_id: str) -> dict[str, Any]:
        """The registered document (read-only).

        Raises:
            SchemaInvalid: no such schema.
        """
        try:
            return self._documents[schema_id]
        except KeyError:
            raise SchemaInvalid(f"unknown schema {schema_id}") from None

    def is_valid(self, schema_id: str, instance: Any) -> bool:
        """True when :meth:`validate` would pass: the schema and the protocol's rules on top of it (no
        U+0000); False too for an unknown schema."""
        validator = self._validators.get(schema_id)
        return validator is not None and validator.is_valid(instance) and nul_pointer(instance) is None

    def validate(self, schema_id: str, instance: Any) -> None:
        """Validate ``instance`` against the schema with this ``$id``.

        Raises:
            SchemaInvalid: unknown schema, or the instance fails; ``errors`` then lists every
                failure as ``{"pointer", "message"}``, ``pointer`` being an RFC 6901 JSON pointer
                into the instance (``""`` for the root). A protocol rule on top of the schemas:
                no string (or key) may contain U+0000 — PostgreSQL text cannot hold it, and a
                record one hub could not store would block its node's feed.
        """
        validator = self._validators.get(schema_id)
        if validator is None:
            raise SchemaInvalid(
                f"unknown schema {schema_id}", [{"pointer": "", "message": f"no schema {schema_id}"}]
            )
        if validator.is_valid(instance):  # fast path: building errors is the slow part
            nul = nul_pointer(instance)
            if nul is not None:
                raise SchemaInvalid(f"{nul or '/'}: NUL characters are not allowed in strings",
                                    [{"pointer": nul, "message": "NUL characters are not allowed in strings"}])
            return
        errors: list[SchemaErrorItem] = [
            {"pointer": json_pointer(_error_path(err)), "message": _message(err), "keyword": str(err.kind.name)}
            for err in validator.iter_errors(instance)
        ]
        errors.sort(key=lambda e: (e["pointer"], e["message"]))
        first = errors[0] if errors else {"pointer": "", "message": "invalid"}
        raise SchemaInvalid(f"{first['pointer'] or '/'}: {first['message']}", errors)

    def restricted_pointers(self, schema_id: str) -> list[str]:
        """See :meth:`Annotations.restricted_pointers`."""
        return self._annotations.restricted_pointers(schema_id)

    def public_pointers(self, schema_id: str) -> list[str]:
        """See :meth:`Annotations.public_pointers`."""
        return self._annotations.public_pointers(schema_id)

    def public_trie(self, schema_id: str) -> PublicTrie:
        """See :meth:`Annotations.public_trie`."""
        return self._annotations.public_trie(schema_id)


class Annotations:
    """The disclosure annotations of schema documents, read without compiling them.

    Pure and cheap (a walk per schema, cached), so that a search-document builder in a worker
    process can split payloads without a compiled :class:`SchemaRegistry`.

    Args:
        documents: schema documents by ``$id`` (without a trailing ``#``).
    """

    def __init__(self, documents: dict[str, dict[str, Any]]) -> None:
        self._documents = documents
        self._restricted: dict[str, list[str]] = {}
        self._public: dict[str, list[str]] = {}
        self._tries: dict[str, PublicTrie] = {}

    @classmethod
    def of(cls, documents: Iterable[dict[str, Any]]) -> Annotations:
        """From a list of documents (those without an ``$id`` are skipped)."""
        return cls({d["$id"].rstrip("#"): d for d in documents if isinstance(d, dict) and isinstance(d.get("$id"), str)})

    def has(self, schema_id: str) -> bool:
        """True when a document with this ``$id`` is known."""
        return schema_id in self._documents

    def document(self, schema_id: str) -> dict[str, Any]:
        """Raises SchemaInvalid for an unknown schema."""
        try:
            return self._documents[schema_id]
        except KeyError:
            raise SchemaInvalid(f"unknown schema {schema_id}") from None

    def restricted_pointers(self, schema_id: str) -> list[str]:
        """JSON pointers of restricted properties in instances of this schema, sorted.

        ``$ref`` is followed (within the registered documents); ``*`` stands for any array index;
        ``allOf``/``anyOf``/``oneOf``/``if``/``then``/``else`` branches are included.

        Raises:
            SchemaInvalid: no such schema.
        """
        if schema_id not in self._restricted:
            found: set[str] = set()
            self._walk(self.document(schema_id), schema_id, (), found, set(), RESTRICTED)
            self._restricted[schema_id] = sorted(found)
        return list(self._restricted[schema_id])

    def public_pointers(self, schema_id: str) -> list[str]:
        """JSON pointers of the properties marked ``x-ncc-public`` in instances of this schema, sorted.

        Walks like :meth:`restricted_pointers`; a pointer covers everything under it. A property
        that is restricted, lies under a restricted one or holds one is not public (restricted wins:
        personal data).

        Raises:
            SchemaInvalid: no such schema.
        """
        if schema_id not in self._public:
            found: set[str] = set()
            self._walk(self.document(schema_id), schema_id, (), found, set(), PUBLIC)
            restricted = self.restricted_pointers(schema_id)
            self._public[schema_id] = sorted(
                ptr for ptr in found if not any(_covers(r, ptr) or _covers(ptr, r) for r in restricted)
            )
        return list(self._public[schema_id])

    def public_trie(self, schema_id: str) -> PublicTrie:
        """:meth:`public_pointers` compiled for :func:`disclose` (cached; read-only).

        Raises:
            SchemaInvalid: no such schema.
        """
        trie = self._tries.get(schema_id)
        if trie is None:
            trie = self._tries[schema_id] = public_trie(self.public_pointers(schema_id))
        return trie

    # -- internals --------------------------------------------------------------------------------

    def _resolve(self, ref: str, base: str) -> tuple[dict[str, Any], str] | None:
        uri, _, fragment = ref.partition("#")
        doc_id = uri or base
        node: Any = self._documents.get(doc_id)
        for part in fragment.split("/")[1:] if fragment else ():
            if not isinstance(node, dict):
                return None
            node = node.get(part.replace("~1", "/").replace("~0", "~"))
        return (node, doc_id) if isinstance(node, dict) else None

    def _walk(
        self,
        schema: Any,
        base: str,
        path: tuple[str, ...],
        found: set[str],
        seen: set[tuple[int, tuple[str, ...]]],
        mark: str,
    ) -> None:
        if not isinstance(schema, dict) or len(path) > 32:
            return
        key = (id(schema), path)
        if key in seen:
            return
        seen.add(key)
        if schema.get(mark) is True and path:
            found.add(json_pointer(path))
            return  # everything under a marked property goes with it
        base = schema["$id"].rstrip("#") if isinstance(schema.get("$id"), str) else base
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = self._resolve(ref, base)
            if target is not None:
                self._walk(target[0], target[1], path, found, seen, mark)
        for name, sub in (schema.get("properties") or {}).items():
            self._walk(sub, base, (*path, name), found, seen, mark)
        for sub in [schema.get("items"), *(schema.get("prefixItems") or [])]:
            self._walk(sub, base, (*path, ANY_INDEX), found, seen, mark)
        for keyword in ("allOf", "anyOf", "oneOf"):
            for sub in schema.get(keyword) or []:
                self._walk(sub, base, path, found, seen, mark)
        for keyword in ("if", "then", "else"):
            self._walk(schema.get(keyword), base, path, found, seen, mark)


def _covers(outer: str, inner: str) -> bool:
    """True when pointer pattern ``outer`` is ``inner`` or one of its ancestors."""
    return inner == outer or inner.startswith(outer + "/")


def _parts(pointer: str) -> tuple[str, ...]:
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:])


#: A compiled set of public pointer patterns: key (or ``*``) -> ``True`` (public, with everything
#: under it) or the trie of the public parts below it.
PublicTrie = dict[str, Any]


def public_trie(public: Iterable[str]) -> PublicTrie:
    """Compile pointer patterns (``/membership/status``, ``/staff/*/name``) for :func:`disclose`."""
    trie: PublicTrie = {}
    for pointer in public:
        parts = _parts(pointer)
        if not parts:
            continue
        node = trie
        for part in parts[:-1]:
            child = node.get(part)
            if child is True:
                break  # an ancestor is public already
            node = node.setdefault(part, {})
        else:
            node[parts[-1]] = True
    return trie


def disclose(
    payload: dict[str, Any], public: Iterable[str] | PublicTrie
) -> tuple[dict[str, Any], list[str], list[Any]]:
    """Keep only the public parts of a payload (default deny).

    ``public`` are pointer patterns as :meth:`SchemaRegistry.public_pointers` returns them (``*`` for
    any array index), or their :func:`public_trie`. Anything no pattern reaches — an unknown field, a
    field of a newer schema version, an object member the schema did not mark — is removed.

    Returns the shown payload (new containers wherever something was removed, unchanged subtrees
    shared with the input, which is not modified: treat both as read-only), the concrete JSON pointers
    removed (sorted, array indices expanded) and the removed values themselves (for the restricted
    part of a search document). An object or array that had content but keeps none is removed too
    (its removed members are listed).
    """
    trie = public if isinstance(public, dict) else public_trie(public)
    removed: list[str] = []
    hidden: list[Any] = []
    shown = _keep_object(payload, trie, (), removed, hidden)
    removed.sort()
    return shown, removed, hidden


def _keep(value: Any, trie: PublicTrie, path: tuple[str, ...], removed: list[str], hidden: list[Any]) -> Any:
    """``value`` reduced to what ``trie`` (relative to it) reaches; ``_GONE`` if nothing."""
    if isinstance(value, dict):
        kept: Any = _keep_object(value, trie, path, removed, hidden)
    elif isinstance(value, list):
        below = trie.get(ANY_INDEX)
        kept = []
        for i, item in enumerate(value):
            if below is True:
                kept.append(item)
            elif below:
                shown = _keep(item, below, (*path, str(i)), removed, hidden)
                if shown is not _GONE:
                    kept.append(shown)
            else:
                removed.append(json_pointer((*path, str(i))))
                hidden.append(item)
    else:  # a scalar where the schema expects structure: nothing of it is marked public
        removed.append(json_pointer(path))
        hidden.append(value)
        return _GONE
    return kept if kept or not value else _GONE


def _keep_object(value: dict[str, Any], trie: PublicTrie, path: tuple[str, ...],
                 removed: list[str], hidden: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        below = trie.get(key)
        if below is True:
            out[key] = item
        elif below:
            shown = _keep(item, below, (*path, key), removed, hidden)
            if shown is not _GONE:
                out[key] = shown
        else:
            removed.append(json_pointer((*path, key)))
            hidden.append(item)
    return out


_GONE = object()


def redact(payload: dict[str, Any], registry: SchemaRegistry | Annotations, schema_id: str) -> tuple[dict[str, Any], list[str]]:
    """What an anonymous reader may see of a payload: its ``x-ncc-public`` fields only (default deny).

    Returns a new payload (the input is not modified) and the concrete JSON pointers removed,
    sorted (array wildcards expanded to the indices present). A schema this registry does not know
    discloses nothing (every field removed) rather than failing open.
    """
    shown, removed, _ = disclose(payload, registry.public_trie(schema_id) if registry.has(schema_id) else {})
    return shown, removed


def redacted_envelope(envelope: dict[str, Any], registry: SchemaRegistry | Annotations) -> tuple[dict[str, Any], list[str]]:
    """What an anonymous reader sees of an envelope: no ``sig``, only the payload's public fields.

    Returns the shown envelope and the removed fields as JSON pointers into the envelope
    (``/payload/contact``).
    """
    payload, removed = redact(envelope["payload"], registry, schema_id_for(str(envelope["schema"])))
    shown = {k: v for k, v in envelope.items() if k != "sig"}
    shown["payload"] = payload
    return shown, [f"/payload{ptr}" for ptr in removed]


def within(error: SchemaInvalid, prefix: str) -> SchemaInvalid:
    """The same failure with every pointer made relative to an enclosing document.

    Payload pointers become envelope (or request body) pointers with ``prefix="/payload"``, so a
    pointer always leads into the document the caller sent.
    """
    errors: list[SchemaErrorItem] = [{**e, "pointer": prefix + e["pointer"]} for e in error.errors]
    first = errors[0] if errors else {"pointer": prefix, "message": error.detail}
    return SchemaInvalid(f"{first['pointer']}: {first['message']}", errors)


def nul_pointer(value: Any) -> str | None:
    """The JSON pointer of the first string or key containing U+0000, or None.

    JSON text can only carry U+0000 escaped, so one look at the serialized value rules it out
    (the usual case) before any walk.
    """
    try:
        if b"\\u0000" not in orjson.dumps(value):
            return None
    except (TypeError, orjson.JSONEncodeError):  # not JSON-serializable as such: walk it
        pass
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return json_pointer(path)
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    return json_pointer((*path, key))
                stack.append((child, (*path, key)))
        elif isinstance(item, list):
            stack.extend((child, (*path, i)) for i, child in enumerate(item))
    return None


def _message(err: Any) -> str:
    """The validator's message, made useful where it is not.

    A vocabulary id off by a character used to get '"cry.100" is not one of "aac.01", "aac.02" or 148
    other candidates'; it now names the nearest allowed ids. A too-short list says what it needs.
    """
    kind = err.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Enum) and isinstance(err.instance, str):
        options = [o for o in kind.options if isinstance(o, str)]
        nearest = nearest_values(err.instance, options)
        if nearest:
            return f'"{err.instance}" is not a known value; nearest: {", ".join(nearest)}'
        if len(options) > 5:
            return f'"{err.instance}" is not a known value ({len(options)} allowed, e.g. {", ".join(options[:3])})'
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.MinItems) and isinstance(err.instance, list):
        return f"needs at least {kind.limit} item{'s' if kind.limit != 1 else ''}"
    return str(err.message)


def nearest_values(value: str, options: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` allowed values closest to ``value`` (edit similarity; same prefix first)."""
    options = list(options)
    close = difflib.get_close_matches(value, options, n=n, cutoff=0.6)
    if len(close) < n and "." in value:
        prefix = value.split(".", 1)[0] + "."
        close += [o for o in sorted(options, key=lambda o: difflib.SequenceMatcher(None, value, o).ratio(),
                                    reverse=True)
                  if o.startswith(prefix) and o not in close][: n - len(close)]
    return close
