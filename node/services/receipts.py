"""``ncc erasure status``: each record this node erased, with the hub's signed receipt verified (DESIGN §14).

A receipt ``{id, version, purged_at, log_index, sig}`` holds only when it is signed by a hub key of the
directory the node holds, names the ``erased`` tombstone the node published, and that tombstone's entry
is at ``log_index`` in the hub's log, proved included under the current signed tree head.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from federation import merkle
from federation.directory import Directory
from federation.envelope import Envelope
from federation.translog import LogError, decode_path, record_entry, verify_head, verify_receipt
from node.services.nodefed import DIRECTORY_KEY, FederationError, NodeFederation, get_state
from node.storage.models import Erasure, FeedEntry

PAGES = 1000


class ReceiptError(Exception):
    """The status cannot be told (not enrolled, the hub unreachable)."""


@dataclass(frozen=True)
class Status:
    record_id: str
    version: int
    erased_at: str
    state: str  # verified | pending | never-shared | invalid
    detail: str

    def line(self) -> str:
        return f"{self.state} {self.record_id} v{self.version} (erased {self.erased_at}): {self.detail}"


async def erasure_status(federation: NodeFederation, clock: Callable[[], datetime]) -> list[Status]:
    """Every erasure of this node with what the hub says of it, receipts checked.

    Raises:
        ReceiptError: not enrolled, or the hub could not be asked.
    """
    del clock
    erased = await Erasure.all().order_by("erased_at", "record_id")
    if not erased:
        return []
    enrollment = await federation.enrollment()
    held = await get_state(DIRECTORY_KEY)
    if enrollment is None or held is None:
        return [Status(e.record_id, e.version, e.erased_at, "pending", "this node is not enrolled with a hub")
                for e in erased]
    hub = str(enrollment["hub_url"])
    keys = {k.kid: k.key for k in Directory.from_dict(held).hub.keys}
    try:
        receipts = await _receipts(federation, hub)
        head = verify_head(await federation.hub_get(hub, "/federation/v1/log/head", auth=False), keys)
    except FederationError as exc:
        raise ReceiptError(str(exc)) from exc
    except LogError as exc:
        raise ReceiptError(f"the hub's tree head does not verify: {exc}") from exc
    shared = await _shared_tombstones()
    out: list[Status] = []
    for e in erased:
        tombstone = shared.get((e.record_id, e.version))
        if tombstone is None:
            out.append(Status(e.record_id, e.version, e.erased_at, "never-shared",
                              "the record never left this node: nothing to purge elsewhere"))
            continue
        receipt = receipts.get((e.record_id, e.version))
        if receipt is None:
            out.append(Status(e.record_id, e.version, e.erased_at, "pending",
                              "the hub has not confirmed the purge yet"))
            continue
        out.append(await _check(federation, hub, e, receipt, tombstone, keys, head))
    return out


async def _receipts(federation: NodeFederation, hub: str) -> dict[tuple[str, int], dict[str, Any]]:
    out: dict[tuple[str, int], dict[str, Any]] = {}
    after = -1
    for _ in range(PAGES):
        page = await federation.hub_get(hub, f"/federation/v1/erasures?after={after}")
        items = page.get("receipts") if isinstance(page, dict) else None
        if not isinstance(items, list):
            raise FederationError("the hub's erasure receipts are not readable")
        for r in items:
            if isinstance(r, dict) and isinstance(r.get("id"), str) and type(r.get("version")) is int:
                out[(r["id"], r["version"])] = r
        following = page.get("next")
        if type(following) is not int:
            break
        after = following
    return out


async def _shared_tombstones() -> dict[tuple[str, int], str]:
    """(id, version) → digest of the ``erased`` tombstones this node's feed published."""
    out: dict[tuple[str, int], str] = {}
    for (text,) in await FeedEntry.all().values_list("envelope"):
        env = orjson.loads(text)
        if env.get("deleted") and (env.get("payload") or {}).get("reason") == "erased":
            envelope = Envelope.from_dict(env)
            out[(envelope.id, envelope.version)] = envelope.digest()
    return out


async def _check(federation: NodeFederation, hub: str, e: Erasure, receipt: dict[str, Any], digest: str,
                 keys: dict[str, Any], head: Any) -> Status:
    def invalid(why: str) -> Status:
        return Status(e.record_id, e.version, e.erased_at, "invalid", why)

    try:
        verify_receipt(receipt, keys)
    except LogError as exc:
        return invalid(f"receipt refused: {exc}")
    index = receipt["log_index"]
    if type(index) is not int or index >= head.size:
        return invalid("the receipt names a log entry beyond the hub's signed head")
    try:
        proof = await federation.hub_get(
            hub, f"/federation/v1/log/inclusion?id={e.record_id}&version={e.version}&size={head.size}")
        path = decode_path(proof.get("path") if isinstance(proof, dict) else None)
    except (FederationError, LogError) as exc:
        return invalid(f"no inclusion proof for the tombstone: {exc}")
    leaf = merkle.leaf_hash(record_entry(e.record_id, e.version, e.record_id.split(":")[2], True, digest))
    if proof.get("index") != index or not merkle.verify_inclusion(leaf, index, head.size, path, head.root):
        return invalid("the tombstone is not at the receipt's log index under the signed head")
    return Status(e.record_id, e.version, e.erased_at, "verified",
                  f"purged at the hub {receipt['purged_at']} (receipt signed by {receipt['sig']['kid']}, "
                  f"log entry {index})")
