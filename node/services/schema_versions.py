"""Which schema version a node writes: schemas evolve without a flag day (DESIGN §11).

A record type may have several payload schemas (``organisation/1``, ``organisation/2``); the hub
validates each record against the version its envelope names and keeps every version it knows. A
node must not run ahead of its hub: it signs a record with the newest version that it has *and*
that the hub's directory lists as accepted (``schemas``, see ``federation/directory.py``). Until
then it keeps writing the old version, and a payload that uses fields only the newer version has
is refused (422 ``schema_invalid``) with a detail that says why — never published for the hub to
quarantine.

The held directory is read from the database at most every :data:`REFRESH_S` seconds, so a
directory the node fetched in another process (``ncc enroll``) is seen soon after.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from federation.directory import Directory
from federation.errors import DirectoryInvalid, SchemaInvalid
from federation.schemas import SchemaRegistry
from schemas import RECORD_TYPES, record_schema_id

REFRESH_S = 5.0
#: ``node_state`` key of the hub directory the node holds (as in node/services/nodefed.py).
DIRECTORY_KEY = "hub_directory"

Accepts = Callable[[str], bool]


def accepts_version_1(schema: str) -> bool:
    """What every hub accepts: version 1 of each type (a node that is not enrolled, or an old hub)."""
    return schema.endswith("/1")


async def held_directory_accepts() -> Accepts:
    """What the hub directory this node holds accepts (version 1 only without one)."""
    from node.storage.models import NodeState

    row = await NodeState.filter(key=DIRECTORY_KEY).first()
    if row is None:
        return accepts_version_1
    try:
        directory = Directory.from_dict(orjson.loads(row.value))
    except (DirectoryInvalid, orjson.JSONDecodeError):
        return accepts_version_1
    return directory.accepts


class SchemaVersions:
    """Chooses the schema a write uses and validates the payload against it."""

    def __init__(self, registry: SchemaRegistry, load: Callable[[], Awaitable[Accepts]] = held_directory_accepts,
                 refresh_s: float = REFRESH_S, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self._load = load
        self._refresh_s = refresh_s
        self._monotonic = monotonic
        self._accepts: Accepts = accepts_version_1
        self._loaded_at: float | None = None

    async def refresh(self, force: bool = False) -> None:
        """Re-read what the hub accepts if the last read is older than ``refresh_s`` (or ``force``)."""
        now = self._monotonic()
        if force or self._loaded_at is None or now - self._loaded_at >= self._refresh_s:
            self._accepts = await self._load()
            self._loaded_at = now

    def accepted(self) -> frozenset[str]:
        """The schemas (``<type>/<n>``) this node has that the hub accepts, as last read."""
        return frozenset(f"{t}/{n}" for t in RECORD_TYPES for n in self.versions(t) if self._accepts(f"{t}/{n}"))

    @classmethod
    def fixed(cls, registry: SchemaRegistry, accepted: frozenset[str]) -> SchemaVersions:
        """Versions chosen from a set read elsewhere (:meth:`accepted`), never read again: for a worker
        process that signs for a node (``ncc import``)."""

        async def load() -> Accepts:
            return accepted.__contains__

        versions = cls(registry, load=load, refresh_s=float("inf"))
        versions._accepts, versions._loaded_at = accepted.__contains__, 0.0
        return versions

    def versions(self, rtype: str) -> list[int]:
        """The versions of ``rtype``'s schema this node has, ascending."""
        found, n = [], 1
        while self.registry.has(record_schema_id(rtype, n)):
            found.append(n)
            n += 1
        return found

    def current(self, rtype: str) -> str:
        """``<type>/<n>``: the newest version this node has that the hub accepts (1 at least)."""
        accepted = [n for n in self.versions(rtype) if self._accepts(f"{rtype}/{n}")]
        return f"{rtype}/{max(accepted, default=1)}"

    def validate(self, rtype: str, payload: Any) -> str:
        """Validate ``payload`` against :meth:`current` and return that schema name.

        Raises:
            SchemaInvalid: the payload fails it; when a newer version this node has would take it
                (fields only the newer version defines), the detail and each error say so.
        """
        schema = self.current(rtype)
        try:
            self.registry.validate(record_schema_id(rtype, int(schema.rpartition("/")[2])), payload)
        except SchemaInvalid as exc:
            raise self._explain(rtype, schema, payload, exc) from None
        return schema

    def _explain(self, rtype: str, schema: str, payload: Any, exc: SchemaInvalid) -> SchemaInvalid:
        newest = max(self.versions(rtype), default=1)
        newer = f"{rtype}/{newest}"
        if newer == schema or not isinstance(payload, dict):
            return exc
        if not self.registry.is_valid(record_schema_id(rtype, newest), payload):
            return exc
        known = self.registry.document(record_schema_id(rtype, int(schema.rpartition("/")[2]))).get("properties", {})
        fields = sorted(k for k in payload if k not in known)
        message = f"needs {newer}, which the hub does not accept yet"
        return SchemaInvalid(
            f"{', '.join(fields) or 'this payload'} {'needs' if len(fields) < 2 else 'need'} {newer}: this node "
            f"publishes {schema} until the hub's directory lists {newer} as accepted",
            [{"pointer": f"/{f}", "message": message} for f in fields] or [{"pointer": "", "message": message}],
        )
