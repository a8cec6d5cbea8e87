"""The hub's transparency log (DESIGN §14): what it appends, the signed tree head, proofs and entries.

The Merkle arithmetic is :mod:`federation.merkle`, the entry and head formats :mod:`federation.translog`;
this module does the I/O. Records are appended by ingest inside its own transaction
(:func:`record_append`), directories by the directory publisher; a hub upgraded to this wave logs
everything it already holds in the migration that creates the log (``node/migrations/0015``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import orjson

from federation import merkle
from federation.timefmt import parse_timestamp
from federation.translog import directory_entry, encode_path, record_entry, sign_head, sign_receipt
from node.keystore import InstanceKey
from node.storage import translog as store

log = logging.getLogger("ncc.log")

ENTRIES_PAGE = 1000


def record_append(record_id: str, version: int, origin: str, deleted: bool, digest: str,
                  visibility: str) -> store.Append:
    """The log entry of one record version the hub accepted."""
    return store.Append(record_entry(record_id, version, origin, deleted, digest), origin, record_id, version,
                        visibility)


def directory_append(serial: int, signing_input: bytes) -> store.Append:
    return store.Append(directory_entry(serial, signing_input), None, None, None, "public")


class TransparencyLog:
    """Read side of the log, and its signed tree head."""

    def __init__(self, key: Callable[[], InstanceKey], clock: Callable[[], datetime]) -> None:
        self.key = key
        self.clock = clock

    async def head(self) -> dict[str, Any]:
        """The signed head of the log as it stands (signed again only when it grew)."""
        stored = await store.stored_head()
        size = await store.size()
        if stored is not None and stored.get("size") == size:
            return stored
        root = merkle.root(size, await store.nodes(merkle.nodes_for_root(size)))
        key = self.key()
        head = sign_head(size, root, self.clock(), key.private_key, key.kid)
        await store.store_head(head)
        return head

    async def inclusion(self, index: int, size: int) -> list[str]:
        """The audit path of entry ``index`` in the tree of ``size`` entries.

        Raises:
            merkle.ProofError: ``index`` is not in that tree.
        """
        if not 0 <= index < size:
            raise merkle.ProofError(f"entry {index} is not in a log of {size}")
        nodes = await store.nodes(merkle.nodes_for_inclusion(index, size))
        return encode_path(merkle.inclusion_path(index, size, nodes))

    async def consistency(self, first: int, second: int) -> list[str]:
        """The proof that the log of ``first`` entries is a prefix of the log of ``second``.

        Raises:
            merkle.ProofError: not ``0 < first <= second``.
        """
        if not 0 < first <= second:
            raise merkle.ProofError(f"no consistency proof from {first} to {second}")
        nodes = await store.nodes(merkle.nodes_for_consistency(first, second))
        return encode_path(merkle.consistency_path(first, second, nodes))

    async def entries(self, origin: str | None, after: int, limit: int,
                      visibilities: Iterable[str] | None) -> dict[str, Any]:
        rows = await store.entries(origin, after, limit, visibilities)
        return {"entries": [{"index": i, "entry": orjson.loads(e)} for i, e in rows],
                "next": rows[-1][0] if len(rows) == limit else None}



    async def receipts(self, origin: str, after: int, limit: int) -> dict[str, Any]:
        """Signed erasure receipts of ``origin``'s purged records (DESIGN §14), by log index. A receipt
        is signed when asked (Ed25519 is deterministic: the same receipt each time with the same key)."""
        key = self.key()
        rows = await store.purged_erasures(origin, after, limit)
        receipts = [sign_receipt(rid, version, parse_timestamp(purged_at), index, key.private_key, key.kid)
                    for index, rid, version, purged_at in rows]
        return {"receipts": receipts, "next": rows[-1][0] if len(rows) == limit else None}
