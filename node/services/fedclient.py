"""The one federation HTTP client: every byte the hub reads from a node comes through here.

A node is an untrusted peer (DESIGN §10). Whatever it answers, a call made through :class:`FedClient`

* never follows a redirect: a 3xx is a failed call (``redirect``), so a node cannot make the hub call
  an internal address for it;
* connects only to global addresses (``ipaddress.is_global``), checked on every connection *after* DNS
  resolution by the connector's resolver (a name that resolves to 127.0.0.1 or 169.254.169.254 at
  connect time is refused, whatever it resolved to at enrollment) and before connecting to an IP
  literal — unless the hub setting ``allow_private_node_urls`` is true (demo, tests, one-host compose);
* reads the body as raw bytes (``auto_decompress=False``) and decompresses it here, incrementally,
  with ``max_length``: the byte limit holds for the compressed *and* the decompressed stream before
  either fills memory (a gzip bomb stops at the limit, not at its full size);
* counts lines as they stream (blank lines count) and refuses a line over its limit;
* ends the whole call (connect, answer, body) at its deadline, so a node trickling bytes holds nothing;
* takes the bytes it holds from one :class:`ByteBudget` shared by every concurrent pull.

A failure is a :class:`FedError` carrying a code from :data:`ERROR_CODES` and the HTTP status, if any.
Its :meth:`FedError.summary` (``<code> (HTTP <status>)``) is all the hub ever shows or logs of a failed
call: a node's body never appears in ``last_error``, an answer or a log line.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

#: The published list of failure codes (README "Security"). ``last_error`` at ``GET /api/v1/nodes``
#: is one of these, followed by `` (HTTP <status>)`` when the node answered with a status.
ERROR_CODES: dict[str, str] = {
    "url_invalid": "the node's URL is not an http(s) URL",
    "address_not_public": "the node's host resolved to an address that is not global "
                          "(loopback, private, link-local, …) and allow_private_node_urls is false",
    "connect_failed": "could not connect to the node (refused, unreachable, name not found)",
    "disconnected": "the node closed the connection before answering",
    "timeout": "no whole answer within the call's deadline",
    "redirect": "the node answered a redirect (3xx); redirects are never followed",
    "http_status": "the node answered a status other than the one expected",
    "bad_http": "the node's answer is not valid HTTP",
    "bad_encoding": "unknown Content-Encoding or a corrupt compressed body",
    "body_cut": "the connection broke in the middle of the body",
    "too_large": "the body (compressed or decompressed) is over its byte limit",
    "line_too_long": "a line of the body is over its byte limit",
    "too_many_lines": "the body has more lines than allowed (blank lines count)",
    "not_ndjson": "a feed answer that is not NDJSON (an HTML error page, …)",
    "bad_frame": "a feed page whose framing is broken (no trailer, sequences going backwards, …)",
    "bad_answer": "a live-query answer that is not what the protocol says",
    "worker_failed": "the hub's verification worker failed on the page",
    "cursor_moved": "another hub process advanced the node's cursor meanwhile",
    "lease_lost": "another hub process took over the node's pull",
    "database_unavailable": "the hub's database was unavailable",
}

#: Default limits of the federation client (settings override the byte limits).
FEED_PAGE_MAX_BYTES = 8 * 1024 * 1024
LIVE_ANSWER_MAX_BYTES = 1024 * 1024
CHUNK = 65536
INFLATE_PIECE = 256 * 1024


class FedError(Exception):
    """A federation call failed; ``code`` is one of :data:`ERROR_CODES`."""

    def __init__(self, code: str, status: int | None = None, detail: str = "") -> None:
        assert code in ERROR_CODES, code
        super().__init__(detail or ERROR_CODES[code])
        self.code, self.status, self.detail = code, status, detail or ERROR_CODES[code]

    def summary(self) -> str:
        """``<code> (HTTP <status>)``, or the code alone when no status was received."""
        return f"{self.code} (HTTP {self.status})" if self.status is not None else self.code


class AddressNotPublic(OSError):
    """Raised by the resolver: the host resolved to a non-global address (wrapped by aiohttp)."""


def address_is_public(host: str) -> bool:
    """Whether an IP address is global (IPv4-mapped IPv6 addresses are judged as the IPv4 one)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(ip.is_global) and not ip.is_multicast


class PublicOnlyResolver(AbstractResolver):
    """Resolves with aiohttp's default resolver, then refuses every answer with a non-global address.

    This runs for every new connection (aiohttp's DNS cache is disabled on the connector), so a name
    that changes what it resolves to after enrollment (DNS rebinding) is caught at connect time.
    """

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        if not answers or any(not address_is_public(a["host"]) for a in answers):
            raise AddressNotPublic(f"{host} resolves to an address that is not global")
        return answers

    async def close(self) -> None:
        await self._inner.close()


async def resolves_public(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal) resolves, and only to global addresses."""
    if _is_ip(host):
        return address_is_public(host)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(address_is_public(str(info[4][0])) for info in infos)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


class ByteBudget:
    """Bytes held by federation calls in flight, across all of them (one per hub process).

    A call takes bytes as they arrive and gives them back when its body is released. A call that
    would pass the budget waits for others to release (within its own deadline); a call holding
    nothing is always let through, so one call alone can never wait forever.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._released = asyncio.Event()

    async def take(self, n: int, held: int) -> None:
        while self.used + n > self.capacity and held > 0:
            released = self._released
            await released.wait()
        self.used += n

    def give(self, n: int) -> None:
        """Give ``n`` bytes back (synchronous: safe in a cancelled call's cleanup)."""
        if n <= 0:
            return
        self.used = max(0, self.used - n)
        released, self._released = self._released, asyncio.Event()
        released.set()


@dataclass(frozen=True)
class Limits:
    """What one call may receive: bytes (compressed and decompressed), lines, time."""

    max_bytes: int
    timeout_s: float
    max_lines: int | None = None
    max_line_bytes: int | None = None


@dataclass
class FedResponse:
    """A node's answer, read whole within its limits. ``release()`` gives its bytes back to the budget."""

    status: int
    content_type: str
    body: bytes
    _budget: ByteBudget | None = None
    _held: int = 0

    def release(self) -> None:
        held, self._held = self._held, 0
        if self._budget is not None:
            self._budget.give(held)


class _Reader:
    """Decompresses (if needed) and checks a body chunk by chunk against its limits."""

    def __init__(self, encoding: str, limits: Limits) -> None:
        self.limits = limits
        if encoding in ("", "identity"):
            self.inflate = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            self.inflate = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header, auto-detected
        else:
            raise FedError("bad_encoding")
        self.raw = 0
        self.out = bytearray()
        self.lines = 0
        self.line_start = 0

    def feed(self, chunk: bytes) -> int:
        """Take one raw chunk; the number of bytes now held more (raw + decoded)."""
        before = len(self.out)
        self.raw += len(chunk)
        if self.raw > self.limits.max_bytes:
            raise FedError("too_large")
        if self.inflate is None:
            self._decoded(chunk)
            return len(chunk)
        data = chunk
        try:
            while data:
                # in pieces: lines are counted as they come, and no piece outgrows the limit by much
                room = self.limits.max_bytes - len(self.out)
                piece = self.inflate.decompress(data, min(room + 1, INFLATE_PIECE))
                self._decoded(piece)
                data = self.inflate.unconsumed_tail
                if self.inflate.eof and (data or self.inflate.unused_data):
                    raise FedError("bad_encoding")  # bytes after the compressed stream's end
        except zlib.error as exc:
            raise FedError("bad_encoding") from exc
        return len(self.out) - before + len(chunk)

    def _decoded(self, piece: bytes) -> None:
        if len(self.out) + len(piece) > self.limits.max_bytes:
            raise FedError("too_large")
        start = len(self.out)
        self.out.extend(piece)
        limits = self.limits
        if limits.max_lines is None and limits.max_line_bytes is None:
            return
        newline = self.out.find(b"\n", start)
        while newline >= 0:
            self.lines += 1
            if limits.max_line_bytes is not None and newline - self.line_start > limits.max_line_bytes:
                raise FedError("line_too_long")
            self.line_start = newline + 1
            newline = self.out.find(b"\n", self.line_start)
        if limits.max_line_bytes is not None and len(self.out) - self.line_start > limits.max_line_bytes:
            raise FedError("line_too_long")
        if limits.max_lines is not None and self.lines > limits.max_lines:
            raise FedError("too_many_lines")

    def finish(self) -> bytes:
        if self.inflate is not None and not self.inflate.eof:
            raise FedError("bad_encoding")  # a compressed stream cut short
        last_line = 1 if len(self.out) > self.line_start else 0  # a last line without its newline
        if self.limits.max_lines is not None and self.lines + last_line > self.limits.max_lines:
            raise FedError("too_many_lines")
        return bytes(self.out)


class FedClient:
    """HTTP calls to a federation peer, bounded as the module doc says. One per service; ``close()`` it."""

    def __init__(self, allow_private: bool, budget: ByteBudget | None = None, connect_timeout_s: float = 10) -> None:
        self.allow_private = allow_private
        self.budget = budget
        self.connect_timeout_s = connect_timeout_s
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=None if self.allow_private else PublicOnlyResolver(),
                use_dns_cache=False,  # resolve (and check) on every new connection
            )
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None, connect=self.connect_timeout_s),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def check_url(self, url: str) -> URL:
        """The parsed URL, refusing what no call may go to (before any connection).

        Raises:
            FedError: ``url_invalid`` or ``address_not_public`` (an IP literal that is not global).
        """
        try:
            parsed = URL(url)
        except (ValueError, TypeError) as exc:
            raise FedError("url_invalid") from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise FedError("url_invalid")
        if not self.allow_private and _is_ip(parsed.host) and not address_is_public(parsed.host):
            raise FedError("address_not_public")
        return parsed

    async def request(
        self,
        method: str,
        url: str,
        limits: Limits,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        expect_status: int | None = 200,
    ) -> FedResponse:
        """Make one call and read its whole answer within ``limits``.

        With ``expect_status`` set, any other status fails the call without reading the body.
        The caller must ``response.release()`` once it no longer holds the body's bytes.

        Raises:
            FedError: with the code of what failed (see :data:`ERROR_CODES`).
        """
        target = self.check_url(url)
        if params:
            target = target.update_query(params)
        send = {"Accept-Encoding": "gzip, deflate", **(headers or {})}
        reader: _Reader | None = None
        held = 0
        status: int | None = None
        try:
            async with asyncio.timeout(limits.timeout_s):
                async with self.session().request(
                    method, target, headers=send, data=data, allow_redirects=False,
                ) as resp:
                    status = resp.status
                    if 300 <= status < 400:
                        raise FedError("redirect", status)
                    if expect_status is not None and status != expect_status:
                        raise FedError("http_status", status)
                    declared = resp.content_length
                    if declared is not None and declared > limits.max_bytes:
                        raise FedError("too_large", status)
                    try:
                        reader = _Reader(resp.headers.get("Content-Encoding", "").strip().lower(), limits)
                        async for chunk in resp.content.iter_chunked(CHUNK):
                            grew = reader.feed(chunk)
                            if self.budget is not None:
                                await self.budget.take(grew, held)
                            held += grew
                        body = reader.finish()
                    except FedError as exc:
                        exc.status = status
                        raise
                    content_type = resp.content_type
        except TimeoutError as exc:
            self._give(held)
            raise FedError("timeout") from exc
        except aiohttp.ClientError as exc:
            self._give(held)
            error = _transport_error(exc)
            error.status = status  # the node's status, when the failure came after it (a body cut short)
            raise error from exc
        except BaseException:  # FedError, cancellation: the bytes are dropped with the call
            self._give(held)
            raise
        return FedResponse(status, content_type, body, self.budget, held)

    def _give(self, held: int) -> None:
        if self.budget is not None and held:
            self.budget.give(held)


def _transport_error(exc: BaseException) -> FedError:
    """The code of an aiohttp failure (never its message: it may quote the node's bytes)."""
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, AddressNotPublic):
        return FedError("address_not_public")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return FedError("disconnected")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return FedError("body_cut")
    if isinstance(exc, aiohttp.ClientResponseError):
        return FedError("bad_http")  # raised by the client's parser: no status the node sent
    if isinstance(exc, aiohttp.InvalidURL):
        return FedError("url_invalid")
    return FedError("connect_failed")


def error_summary(exc: BaseException) -> str:
    """What a failed federation call is recorded as (never anything the node sent)."""
    if isinstance(exc, FedError):
        return exc.summary()
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code in ERROR_CODES:
        return code
    return "connect_failed"


def limits_for_page(page_max_bytes: int, batch: int, line_max: int, timeout_s: float) -> Limits:
    """The limits of one feed page: twice the page size, ``batch`` records plus the trailer."""
    return Limits(max_bytes=2 * page_max_bytes, timeout_s=timeout_s, max_lines=batch + 1, max_line_bytes=line_max)


__all__ = ["ERROR_CODES", "AddressNotPublic", "ByteBudget", "FedClient", "FedError", "FedResponse", "Limits",
           "address_is_public", "error_summary", "limits_for_page", "resolves_public"]


async def url_is_public(url: str) -> bool:
    """Whether ``url``'s host resolves, and only to global addresses (checked at enrollment; every
    connection checks again after its own resolution)."""
    try:
        host = URL(url).host
    except (ValueError, TypeError):
        return False
    return bool(host) and await resolves_public(host)
