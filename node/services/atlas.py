"""The ECCC Atlas connector: hand this node's registered organisations to the Centre's register.

The Atlas is a Drupal site speaking JSON:API (``application/vnd.api+json``, header ``api-key``).
One push (:meth:`AtlasPusher.push`) at a time, guarded by a lease in the database:

1. the Atlas's taxonomy terms (country, cluster_type, sectors, …) are read, paging followed, and cached
   (``atlas_terms_ttl_s``); a term we cannot resolve refreshes the cache once, then fails that
   organisation only;
2. each registered organisation becomes a ``node--cluster`` resource (:mod:`federation.atlas`); one
   whose resource is what we last sent is ``unchanged`` and costs no request;
3. a new one is POSTed, unless the Atlas already has an entry with the same title and country (then
   it is adopted and PATCHed); a changed one is PATCHed with what differs, after checking that the
   Atlas's ``changed`` is still the one stored at our last push — if not, it is a ``conflict``:
   reported, not overwritten (``--overwrite ID`` after reconciling);
4. an organisation revoked or erased here after it was pushed is reported for the Atlas operator
   (GDPR Art. 19), never deleted remotely.

GETs are retried on 408/429/502/503/504 and connection errors (``Retry-After`` honoured, capped);
POST and PATCH never are: a write whose answer was lost must not be repeated blindly (the next push
finds the entry by title and country instead). Every answer is read with a byte cap before parsing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

import schemas
from federation import atlas as mapping
from federation.canonical import canonicalize
from federation.timefmt import format_timestamp
from node.config import Settings
from node.storage import atlas as store

log = logging.getLogger("ncc.atlas")

RETRIED = frozenset({408, 429, 502, 503, 504})
#: Largest Atlas answer read (a taxonomy page, an entry); anything larger is refused before parsing.
MAX_ANSWER_BYTES = 8 * 1024 * 1024
MAX_PAGES = 1000
MAX_RETRY_AFTER_S = 30.0
LEASE_S = 3600


class AtlasError(Exception):
    """The Atlas could not be used (unreachable, refused the key, answered what we cannot read)."""


class AtlasConfigError(AtlasError):
    """The connector is not configured usably (no URL, an API-key file missing or readable by others)."""


class Busy(AtlasError):
    """Another push holds the lease."""


def read_api_key(path: Path) -> str:
    """The Atlas API key from its file, which only this user may read (like the instance key).

    Raises:
        AtlasConfigError: missing, unreadable, empty, or readable by group/others.
    """
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise AtlasConfigError(f"Atlas API key file {path} not found (write the key there, mode 0600, "
                               "or give --api-key-file)") from None
    except OSError as exc:
        raise AtlasConfigError(f"Atlas API key file {path} unreadable: {exc.strerror}") from exc
    if stat.S_IMODE(mode) & 0o077:
        raise AtlasConfigError(f"Atlas API key file {path} must not be readable by group or others (chmod 600)")
    if not text or any(c in text for c in "\r\n"):
        raise AtlasConfigError(f"Atlas API key file {path} must hold the key on one line")
    return text


def vocabularies() -> mapping.Vocabularies:
    return mapping.Vocabularies(schemas.load_vocabularies())


def digest(resource: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonicalize(dict(resource))).hexdigest()


async def export_document() -> dict[str, Any]:
    """``ncc atlas export``: the registered organisations as one JSON:API document (offline)."""
    vocab = vocabularies()
    data: list[dict[str, Any]] = []
    async for org in store.organisations():
        if org.registered:
            resource = mapping.export_resource(org.payload, vocab)
            resource["meta"] = {"ncc_record": org.id, "ncc_version": org.version}
            data.append(resource)
    return {"data": data}


@dataclass
class PushReport:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicts: int = 0
    failed: int = 0
    #: one line per conflict, failure and report for the operator, in record order
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.conflicts == 0 and self.failed == 0

    def summary(self) -> str:
        return (f"pushed {self.new} new, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.conflicts} conflicts, {self.failed} failed")


class AtlasClient:
    """JSON:API over aiohttp against one Atlas base URL, every answer bounded."""

    def __init__(self, base_url: str, api_key: str, timeout_s: float, *, retries: int = 4,
                 backoff_s: float = 0.5) -> None:
        self.base = base_url.rstrip("/")
        self._origin = urlsplit(self.base)[:2]
        self.api_key = api_key
        self.retries, self.backoff_s = retries, backoff_s
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))

    async def close(self) -> None:
        await self.session.close()

    def _headers(self, body: bool = False) -> dict[str, str]:
        headers = {"Accept": mapping.MEDIA_TYPE, "api-key": self.api_key}
        if body:
            headers["Content-Type"] = mapping.MEDIA_TYPE
        return headers

    async def _read(self, response: aiohttp.ClientResponse) -> Any:
        if response.content_length is not None and response.content_length > MAX_ANSWER_BYTES:
            raise AtlasError(f"the Atlas answered {response.content_length} bytes (more than {MAX_ANSWER_BYTES})")
        body = await response.content.read(MAX_ANSWER_BYTES + 1)
        if len(body) > MAX_ANSWER_BYTES:
            raise AtlasError(f"the Atlas answered more than {MAX_ANSWER_BYTES} bytes")
        if not body:
            return None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise AtlasError(f"the Atlas answered HTTP {response.status} with a body that is not JSON") from None

    @staticmethod
    def _problem(status: int, document: Any) -> str:
        """A short reason from a JSON:API error document (its first error's title/detail), bounded."""
        errors = document.get("errors") if isinstance(document, dict) else None
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        text = str(first.get("detail") or first.get("title") or "")
        text = "".join(c if c.isprintable() else " " for c in text)[:200]
        return f"HTTP {status}" + (f": {text}" if text else "")

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def _same_origin(self, url: str) -> bool:
        return urlsplit(url)[:2] == self._origin

    async def get(self, url: str, params: Mapping[str, str] | None = None) -> Any:
        """GET a JSON:API document; retried on 408/429/502/503/504 and connection errors.

        Returns None for 404. Raises AtlasError otherwise.
        """
        for attempt in range(self.retries + 1):
            delay = self.backoff_s * 2 ** attempt
            try:
                async with self.session.get(url, params=params, headers=self._headers(),
                                            allow_redirects=False) as r:
                    if r.status in RETRIED and attempt < self.retries:
                        delay = _parse_retry_after(r.headers.get("Retry-After"), delay)
                        log.info("atlas GET retried", extra={"status": r.status, "delay_s": delay})
                    elif r.status == 404:
                        return None
                    else:
                        document = await self._read(r)
                        if r.status != 200:
                            raise AtlasError(f"GET {urlsplit(url).path}: {self._problem(r.status, document)}")
                        return document
            except (aiohttp.ClientError, TimeoutError) as exc:
                if attempt >= self.retries:
                    raise AtlasError(f"GET {urlsplit(url).path}: {exc.__class__.__name__}: {exc}") from exc
            await asyncio.sleep(delay)
        raise AtlasError(f"GET {urlsplit(url).path}: still unavailable after {self.retries + 1} tries")

    async def get_all(self, url: str, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Every resource of a collection, following ``links.next`` (same origin only)."""
        out: list[dict[str, Any]] = []
        next_url: str | None = url
        for _ in range(MAX_PAGES):
            if next_url is None:
                return out
            document = await self.get(next_url, params)
            params = None  # the next link carries them
            if document is None:
                raise AtlasError(f"GET {urlsplit(next_url).path}: HTTP 404")
            data = document.get("data") if isinstance(document, dict) else None
            if not isinstance(data, list):
                raise AtlasError(f"GET {urlsplit(next_url).path}: not a JSON:API collection")
            out.extend(d for d in data if isinstance(d, dict))
            link = (document.get("links") or {}).get("next")
            href = link.get("href") if isinstance(link, dict) else link if isinstance(link, str) else None
            if href is not None and not self._same_origin(href):
                raise AtlasError(f"the Atlas's next page points elsewhere ({urlsplit(href).netloc})")
            next_url = href
        raise AtlasError(f"GET {urlsplit(url).path}: more than {MAX_PAGES} pages")

    async def write(self, method: str, url: str, resource: Mapping[str, Any]) -> dict[str, Any]:
        """POST or PATCH one resource; never retried. Returns the resource the Atlas answered."""
        body = orjson.dumps({"data": resource})
        try:
            async with self.session.request(method, url, data=body, headers=self._headers(body=True),
                                            allow_redirects=False) as r:
                document = await self._read(r)
                if r.status not in (200, 201):
                    raise AtlasError(f"{method} {urlsplit(url).path}: {self._problem(r.status, document)}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AtlasError(f"{method} {urlsplit(url).path}: {exc.__class__.__name__}: {exc}") from exc
        data = document.get("data") if isinstance(document, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise AtlasError(f"{method} {urlsplit(url).path}: the answer holds no resource")
        return data


def _parse_retry_after(header: str | None, default: float) -> float:
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(header))) if header is not None else default
    except ValueError:
        return default


def _changed(resource: Mapping[str, Any]) -> str | None:
    value = (resource.get("attributes") or {}).get("changed")
    return None if value is None else str(value)


class AtlasPusher:
    """One connector per node; :meth:`push` sends what changed."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime], *, url: str | None = None,
                 api_key_file: Path | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.base_url = (url or settings.atlas_url).rstrip("/")
        self.api_key_file = api_key_file or settings.atlas_api_key_path
        # NCC_ATLAS_API_KEY (read by node.config) stands in for the file unless a file is given explicitly
        self.api_key_from_env = settings.atlas_api_key if api_key_file is None else ""
        self.vocab = vocabularies()
        self.wake = asyncio.Event()

    def check(self) -> str:
        """The API key, once the configuration is known to be usable.

        Raises:
            AtlasConfigError: no URL, or an unusable key file.
        """
        if not self.base_url:
            raise AtlasConfigError("no Atlas URL: set atlas_url (or give --url)")
        if self.api_key_from_env:
            return self.api_key_from_env
        return read_api_key(self.api_key_file)

    def client(self) -> AtlasClient:
        return AtlasClient(self.base_url, self.check(), self.settings.atlas_timeout_s)

    async def push(self, overwrite: frozenset[str] = frozenset(), client: AtlasClient | None = None) -> PushReport:
        """Send every registered organisation that changed; report revocations.

        Raises:
            Busy: another push is running. AtlasConfigError, AtlasError: nothing could be pushed.
        """
        own = client is None
        client = client or self.client()
        token = await store.acquire_lease(self.clock(), LEASE_S)
        if token is None:
            if own:
                await client.close()
            raise Busy(f"another Atlas push is running (its lease ends {await store.lease_holder()})")
        try:
            return await self._push(client, overwrite)
        finally:
            await store.release_lease(token)
            if own:
                await client.close()

    async def _terms(self, client: AtlasClient, fresh: bool = False) -> mapping.TermIndex:
        now = self.clock()
        cached = None if fresh else await store.cached_terms(self.base_url, now, self.settings.atlas_terms_ttl_s)
        if cached is None:
            cached = {}
            for vocabulary in mapping.ATLAS_VOCABULARIES:
                resources = await client.get_all(client.url(f"/jsonapi/taxonomy_term/{vocabulary}"))
                cached[vocabulary] = [{"id": r.get("id"), "attributes": {
                    k: (r.get("attributes") or {}).get(k) for k in ("name", "field_iso_code")}} for r in resources]
            await store.cache_terms(self.base_url, now, cached)
        return mapping.TermIndex(cached)

    async def _push(self, client: AtlasClient, overwrite: frozenset[str]) -> PushReport:
        report = PushReport()
        terms = await self._terms(client)
        refreshed = False
        known = await store.states()
        async for org in store.organisations():
            row = known.get(org.id)
            if not org.registered:
                if row is not None and row.atlas_uuid and row.state != "reported":
                    why = org.reason if org.deleted else org.status
                    reason = (f"{why} here: tell the Atlas operator (entry {row.atlas_uuid} is not deleted "
                              "remotely)")
                    await store.save(org.id, state="reported", reason=reason)
                    report.lines.append(f"report {org.id} {row.atlas_uuid}: {reason}")
                continue
            try:
                resource = mapping.push_resource(org.payload, self.vocab, terms)
            except mapping.AtlasMappingError as exc:
                if refreshed:
                    await self._fail(report, org.id, str(exc))
                    continue
                terms, refreshed = await self._terms(client, fresh=True), True  # the Atlas may have added it
                try:
                    resource = mapping.push_resource(org.payload, self.vocab, terms)
                except mapping.AtlasMappingError as again:
                    await self._fail(report, org.id, str(again))
                    continue
            try:
                await self._one(client, org, row, resource, org.id in overwrite, report)
            except AtlasError as exc:
                await self._fail(report, org.id, str(exc))
        return report

    async def _fail(self, report: PushReport, rid: str, reason: str) -> None:
        report.failed += 1
        report.lines.append(f"failed {rid}: {reason}")
        await store.save(rid, state="failed", reason=reason)

    async def _one(self, client: AtlasClient, org: store.Organisation, row: Any, resource: dict[str, Any],
                   overwrite: bool, report: PushReport) -> None:
        local_digest = digest(resource)
        uuid = row.atlas_uuid if row is not None else None
        if uuid and row.state == "synced" and row.pushed_digest == local_digest and not overwrite:
            report.unchanged += 1
            return
        collection = client.url("/jsonapi/node/cluster")
        if uuid is None:
            uuid, remote = await self._match(client, org, resource)
            if uuid is None:
                created = await client.write("POST", collection, resource)
                await self._synced(org, created["id"], _changed(created), local_digest)
                report.new += 1
                return
        else:
            document = await client.get(f"{collection}/{uuid}")
            if document is None:
                raise AtlasError(f"the Atlas entry {uuid} is gone; it was not re-created (ask the Atlas operator)")
            data = document.get("data") if isinstance(document, dict) else None
            if not isinstance(data, dict):
                raise AtlasError(f"GET /jsonapi/node/cluster/{uuid}: not a JSON:API resource")
            remote = data
            if not overwrite and row.remote_changed is not None and _changed(remote) != row.remote_changed:
                reason = (f"changed at the Atlas at {_changed(remote)} since our last push "
                          f"({row.last_push}); not overwritten (reconcile, then push with --overwrite {org.id})")
                report.conflicts += 1
                report.lines.append(f"conflict {org.id} {uuid}: {reason}")
                await store.save(org.id, state="conflict", reason=reason)
                return
        patch = mapping.changes(resource, remote)
        if not patch:
            await self._synced(org, uuid, _changed(remote), local_digest)
            report.unchanged += 1
            return
        updated = await client.write("PATCH", f"{collection}/{uuid}", {"type": mapping.RESOURCE_TYPE, "id": uuid,
                                                                       **patch})
        await self._synced(org, uuid, _changed(updated), local_digest)
        report.updated += 1

    async def _match(self, client: AtlasClient, org: store.Organisation,
                     resource: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
        """An existing Atlas entry for this organisation: same title and country (so a lost answer,
        or an entry made by hand, does not become a duplicate). Raises AtlasError when several match."""
        title = resource["attributes"]["title"]
        country_ids = mapping.relationship_ids(resource["relationships"].get("field_country"))
        country_codes = set(self.vocab.country_aliases.get(org.payload.get("country", ""), ()))
        found = []
        for entry in await client.get_all(client.url("/jsonapi/node/cluster"), {"filter[title]": title}):
            attributes = entry.get("attributes") or {}
            if attributes.get("title") != title:
                continue
            remote_country = mapping.relationship_ids((entry.get("relationships") or {}).get("field_country"))
            address = attributes.get("field_address") or {}
            code = address.get("country_code") if isinstance(address, dict) else None
            if (remote_country and remote_country == country_ids) or (not remote_country and code in country_codes):
                found.append(entry)
        if len(found) > 1:
            raise AtlasError(f"{len(found)} Atlas entries have this title and country "
                             f"({', '.join(str(e.get('id')) for e in found)}): link one by hand")
        if found:
            return str(found[0]["id"]), found[0]
        return None, {}

    async def _synced(self, org: store.Organisation, uuid: str, remote_changed: str | None, local: str) -> None:
        await store.save(org.id, atlas_uuid=uuid, state="synced", reason=None, remote_changed=remote_changed,
                         pushed_digest=local, pushed_version=org.version, last_push=format_timestamp(self.clock()))

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Push every ``atlas_push_interval_s`` and soon after :meth:`request` (a registration decision);
        failures are logged and retried at the next turn, never raised."""
        while not stop.is_set():
            try:
                report = await self.push()
                log.info("atlas push", extra={"summary": report.summary()})
                for line in report.lines:
                    log.warning("atlas", extra={"detail": line})
            except Busy:
                pass
            except AtlasError as exc:
                log.warning("atlas push failed", extra={"error": str(exc)})
            # the database is down, …: the loop survives, the next turn retries
            except Exception as exc:  # noqa: BLE001
                log.warning("atlas push postponed", extra={"error": f"{exc.__class__.__name__}: {exc}"})
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=self.settings.atlas_push_interval_s)
            except TimeoutError:
                pass

    async def request(self, rid: str) -> None:
        """Queue a push of ``rid`` (called after a registration decision)."""
        await store.mark_pending(rid)
        self.wake.set()


async def sync_state(rid: str) -> dict[str, Any] | None:
    """``GET /api/v1/records/{id}/atlas``: where this organisation stands in the Atlas, or None when it
    is not an organisation of this node."""
    org = await store.organisation(rid)
    if org is None:
        return None
    row = await store.state(rid)
    if row is None:
        return {"record_id": rid, "atlas_uuid": None, "state": "pending" if org.registered else "not_registered",
                "reason": None if org.registered else "only registered organisations go to the Atlas",
                "last_push": None, "remote_changed": None, "pushed_version": None}
    return {"record_id": rid, "atlas_uuid": row.atlas_uuid, "state": row.state, "reason": row.reason,
            "last_push": row.last_push, "remote_changed": row.remote_changed, "pushed_version": row.pushed_version}
