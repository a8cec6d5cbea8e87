"""A node audits the hub (DESIGN §14): is everything it published in the hub's log, unaltered, and is
the log append-only — also as another node saw it?

One run (:meth:`Auditor.run`, ``ncc audit`` and the node's schedule):

1. the hub's signed tree head, checked against the hub keys of the directory the node holds, and
   consistent with the head the node stored at its last audit (else ``inconsistent``);
2. the log's entries of this origin (service token), each new one proved included under that head
   (up to ``audit_max_proofs`` a run; the rest at the next runs), compared with every version this
   node signed and its feed up to the hub's cursor (``dropped``, ``altered``, ``unknown``), and with
   what the hub quarantined (``refused``);
3. the directory's keys for this country against the node's own keys (``foreign-key``);
4. with ``peer``, the head another node saw (``GET /federation/v1/log/seen-head``) consistent with
   this one (a split view shown to two nodes is ``inconsistent``).

The comparison is pure (:mod:`federation.audit`); this module fetches and stores.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from federation import merkle
from federation.audit import Discrepancy, Published, compare, foreign_keys, served
from federation.directory import Directory
from federation.envelope import Envelope
from federation.keys import b64url_decode
from federation.timefmt import format_timestamp
from federation.translog import LogError, TreeHead, decode_path, verify_head
from node.config import Settings
from node.services.nodefed import DIRECTORY_KEY, FederationError, NodeFederation, get_state, set_state
from node.storage.models import FeedEntry, RecordVersion

log = logging.getLogger("ncc.audit")

HEAD_KEY = "audit:head"
RESULT_KEY = "audit:last"
WATERMARK_KEY = "audit:proved"
MAX_LINES = 1000
ENTRY_PAGES = 10_000


class AuditError(Exception):
    """The audit could not run (not enrolled, the hub unreachable, no directory)."""


@dataclass
class AuditReport:
    head: dict[str, Any] | None = None
    entries: int = 0
    proved: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def summary(self) -> str:
        size = self.head["size"] if self.head else 0
        if self.ok:
            return (f"audit ok: {self.entries} entries of this node in a log of {size}, "
                    f"{self.proved} inclusion proofs checked")
        return f"audit found {len(self.discrepancies)} discrepancies (log of {size})"

    def to_dict(self, at: datetime) -> dict[str, Any]:
        return {"at": format_timestamp(at), "ok": self.ok, "summary": self.summary(),
                "lines": [d.line() for d in self.discrepancies[:MAX_LINES]],
                "discrepancies": len(self.discrepancies), "head": self.head}


class Auditor:
    def __init__(self, settings: Settings, federation: NodeFederation, own_kids: Callable[[], set[str]],
                 clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.federation = federation
        self.own_kids = own_kids
        self.clock = clock

    async def _hub(self) -> tuple[str, Directory]:
        """The hub's URL and its current directory (fetched now, verified against the one held: a key
        the hub added for this country since shows up at once)."""
        enrollment = await self.federation.enrollment()
        if enrollment is None or await get_state(DIRECTORY_KEY) is None:
            raise AuditError("this node is not enrolled: nothing to audit")
        try:
            await self.federation.refresh_directory()
        except FederationError as exc:
            raise AuditError(f"the hub's directory: {exc}") from exc
        return str(enrollment["hub_url"]), Directory.from_dict(await get_state(DIRECTORY_KEY))

    async def _get(self, hub: str, path: str, auth: bool = True) -> Any:
        try:
            return await self.federation.hub_get(hub, path, auth=auth)
        except FederationError as exc:
            raise AuditError(str(exc)) from exc

    async def run(self, peer: str | None = None) -> AuditReport:
        """One audit; the result is stored for ``GET /api/v1/audit`` and the status page.

        Raises:
            AuditError: it could not run at all.
        """
        hub, directory = await self._hub()
        keys = {k.kid: k.key for k in directory.hub.keys}
        report = AuditReport()
        head_doc = await self._get(hub, "/federation/v1/log/head", auth=False)
        try:
            head = verify_head(head_doc, keys)
        except LogError as exc:
            report.discrepancies.append(Discrepancy("inconsistent", "log", None, f"tree head refused: {exc}"))
            return await self._finish(report)
        report.head = head_doc
        await self._check_consistency(hub, head, await get_state(HEAD_KEY), keys, report, "since the last audit")
        if peer:
            seen = await self._peer_head(peer)
            if seen is None:
                report.discrepancies.append(Discrepancy("inconsistent", "peer", None,
                                                        f"{peer} has no head to compare"))
            else:
                await self._check_consistency(hub, head, seen, keys, report, f"with the head {peer} saw")
        logged = await self._entries(hub, head, report)
        published = await self._published(await self._cursor(hub))
        refused = await self._refused(hub)
        report.discrepancies.extend(compare(published, logged, refused))
        report.discrepancies.extend(served(published, await self._served(hub)))
        own_entry = directory.node(self.settings.country)
        if own_entry is not None:
            report.discrepancies.extend(foreign_keys([k.kid for k in own_entry.keys], self.own_kids()))
        if not any(d.kind == "inconsistent" and d.subject == "log" for d in report.discrepancies):
            await set_state(HEAD_KEY, head_doc)
        return await self._finish(report)

    async def _finish(self, report: AuditReport) -> AuditReport:
        # one line per dropped or altered version: the log and the served copy may tell the same thing
        unique: dict[tuple[str, str, int | None, str], Discrepancy] = {}
        for d in sorted(report.discrepancies):
            same = "" if d.kind in ("dropped", "altered") else d.detail
            unique.setdefault((d.kind, d.subject, d.version, same), d)
        report.discrepancies = sorted(unique.values())
        await set_state(RESULT_KEY, report.to_dict(self.clock()))
        return report

    async def _check_consistency(self, hub: str, head: TreeHead, before: Any, keys: dict[str, Any],
                                 report: AuditReport, when: str) -> None:
        if not isinstance(before, dict):
            return
        try:
            old = verify_head(before, keys)
        except LogError:
            return  # a head signed by a hub key since retired: nothing to compare against
        first, second = sorted((old, head), key=lambda h: h.size)
        if first.size == second.size:
            if first.root != second.root:
                report.discrepancies.append(Discrepancy("inconsistent", "log", second.size,
                                                        f"two different roots for the same size {when}"))
            return
        if first.size == 0:
            return
        answer = await self._get(hub, f"/federation/v1/log/consistency?from={first.size}&to={second.size}",
                                 auth=False)
        try:
            path = decode_path(answer.get("path") if isinstance(answer, dict) else None)
        except LogError as exc:
            report.discrepancies.append(Discrepancy("inconsistent", "log", second.size, f"{when}: {exc}"))
            return
        if not merkle.verify_consistency(first.size, second.size, path, first.root, second.root):
            report.discrepancies.append(Discrepancy(
                "inconsistent", "log", second.size,
                f"the log of {second.size} does not extend the log of {first.size} {when}"))

    async def _peer_head(self, peer: str) -> dict[str, Any] | None:
        try:
            doc = await self.federation.hub_get(peer, "/federation/v1/log/seen-head", auth=False)
        except FederationError as exc:
            if exc.status == 404:
                return None
            raise AuditError(f"peer {peer}: {exc}") from exc
        return doc if isinstance(doc, dict) else None

    async def _entries(self, hub: str, head: TreeHead, report: AuditReport) -> list[dict[str, Any]]:
        """This origin's entries up to the head, the new ones proved included."""
        proved_until = await get_state(WATERMARK_KEY)
        proved_until = proved_until if isinstance(proved_until, int) else -1
        out: list[dict[str, Any]] = []
        after = -1
        budget = self.settings.audit_max_proofs
        for _ in range(ENTRY_PAGES):
            page = await self._get(hub, f"/federation/v1/log/entries?origin={self.settings.country}&after={after}")
            items = page.get("entries") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise AuditError("the hub's log entries are not readable")
            for item in items:
                index, entry = item.get("index"), item.get("entry")
                if type(index) is not int or not isinstance(entry, dict) or index >= head.size:
                    continue
                out.append(entry)
                if index > proved_until and budget > 0:
                    budget -= 1
                    if not await self._included(hub, index, entry, head, report):
                        continue
                    report.proved += 1
                    proved_until = index
            following = page.get("next")
            if type(following) is not int:
                break
            after = following
        await set_state(WATERMARK_KEY, proved_until)
        report.entries = len(out)
        return out

    async def _included(self, hub: str, index: int, entry: dict[str, Any], head: TreeHead,
                        report: AuditReport) -> bool:
        from federation.translog import record_entry

        rid, version = str(entry.get("id")), int(entry.get("version") or 0)
        answer = await self._get(hub, f"/federation/v1/log/inclusion?id={rid}&version={version}&size={head.size}")
        try:
            path = decode_path(answer.get("path") if isinstance(answer, dict) else None)
            leaf = merkle.leaf_hash(record_entry(rid, version, str(entry.get("origin")), bool(entry.get("deleted")),
                                                 str(entry.get("digest"))))
        except (LogError, ValueError) as exc:
            report.discrepancies.append(Discrepancy("inconsistent", rid, version, f"inclusion proof unreadable: {exc}"))
            return False
        if answer.get("index") != index or not merkle.verify_inclusion(leaf, index, head.size, path, head.root):
            report.discrepancies.append(Discrepancy("inconsistent", rid, version,
                                                    "the entry's inclusion proof does not verify"))
            return False
        return True

    async def _served(self, hub: str) -> dict[str, tuple[int, str]]:
        """What the hub serves of this node's records (``GET /federation/v1/records``): id → (version,
        digest of what it serves). A record served in a form that is not an envelope gets digest "?"."""
        held: dict[str, tuple[int, str]] = {}
        after = ""
        for _ in range(ENTRY_PAGES):
            page = await self._get(hub, f"/federation/v1/records?limit=1000&after={after}")
            records = page.get("records") if isinstance(page, dict) else None
            if not isinstance(records, list):
                raise AuditError("the hub's copies of this node's records are not readable")
            for item in records:
                rid = item.get("id") if isinstance(item, dict) else None
                version = item.get("version") if isinstance(item, dict) else None
                if not isinstance(rid, str) or type(version) is not int:
                    continue
                try:
                    held[rid] = (version, Envelope.from_dict(item).digest())
                except Exception:  # noqa: BLE001 - whatever the hub sent, it is not what was signed
                    held[rid] = (version, "?")
            following = page.get("next_after")
            if not isinstance(following, str) or not records:
                break
            after = following
        return held

    async def _cursor(self, hub: str) -> int:
        nodes = await self._get(hub, "/api/v1/nodes", auth=False)
        row = next((n for n in nodes if isinstance(n, dict) and n.get("country") == self.settings.country),
                   None) if isinstance(nodes, list) else None
        cursor = row.get("cursor") if row else None
        return cursor if type(cursor) is int else 0

    async def _refused(self, hub: str) -> list[tuple[str, int, str]]:
        out: list[tuple[str, int, str]] = []
        after = 0
        for _ in range(100):
            page = await self._get(hub, f"/federation/v1/quarantine?limit=1000&after={after}")
            items = page.get("items") if isinstance(page, dict) else None
            if not isinstance(items, list):
                break
            out.extend((str(i["record_id"]), int(i["version"]), str(i.get("code")))
                       for i in items if isinstance(i, dict) and isinstance(i.get("record_id"), str)
                       and type(i.get("version")) is int)
            following = page.get("next_after", page.get("next"))
            if type(following) is not int or not items:
                break
            after = following
        return out

    async def _published(self, cursor: int) -> list[Published]:
        """Every version this node signed, and what its feed publishes up to the hub's cursor."""
        out: list[Published] = []
        feed: dict[tuple[str, int], tuple[str, bool]] = {}
        for seq, text in await FeedEntry.all().values_list("seq", "envelope"):
            env = Envelope.from_dict(orjson.loads(text))
            feed[(env.id, env.version)] = (env.digest(), int(seq) <= cursor)
        for rid, version, digest in await RecordVersion.all().values_list("record_id", "version", "digest"):
            key = (rid, int(version))
            if key not in feed:
                out.append(Published(rid, int(version), str(digest), False))
        out.extend(Published(rid, version, digest, shared) for (rid, version), (digest, shared) in feed.items())
        return out


async def last_result() -> dict[str, Any] | None:
    value = await get_state(RESULT_KEY)
    return value if isinstance(value, dict) else None


async def seen_head() -> dict[str, Any] | None:
    """The hub head this node verified at its last audit (for other nodes' ``--peer`` checks)."""
    value = await get_state(HEAD_KEY)
    return value if isinstance(value, dict) else None


def decode_root(head: dict[str, Any]) -> bytes:
    return b64url_decode(str(head["root"]))
