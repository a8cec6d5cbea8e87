"""The federation client's limits (node/services/fedclient.py), against in-process servers."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from typing import Any

import pytest
from aiohttp import web

from node.services.fedclient import (
    ByteBudget,
    FedClient,
    FedError,
    Limits,
    address_is_public,
    resolves_public,
    url_is_public,
)

MIB = 1024 * 1024
LIMITS = Limits(max_bytes=MIB, timeout_s=5, max_lines=11, max_line_bytes=64 * 1024)


async def serve(aiohttp_server: Any, handler: Any) -> str:
    if not asyncio.iscoroutinefunction(handler):
        answer = handler

        async def handler(request: web.Request) -> web.StreamResponse:
            return answer(request)  # type: ignore[no-any-return]

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = await aiohttp_server(app)
    return str(server.make_url("/page"))


async def call(url: str, limits: Limits = LIMITS, client: FedClient | None = None, **kw: Any) -> bytes:
    client = client or FedClient(allow_private=True)
    try:
        resp = await client.request("GET", url, limits, **kw)
        resp.release()
        return resp.body
    finally:
        await client.close()


async def failure(url: str, limits: Limits = LIMITS, client: FedClient | None = None, **kw: Any) -> FedError:
    with pytest.raises(FedError) as info:
        await call(url, limits, client, **kw)
    return info.value


def bomb(kind: str, mib: int, line: bytes) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31 if kind == "gzip" else 15)
    return b"".join(comp.compress(line * (MIB // len(line))) for _ in range(mib)) + comp.flush()


async def test_a_page_within_the_limits_is_read_whole(aiohttp_server: Any) -> None:
    body = b"".join(b'{"n":%d}\n' % i for i in range(10))
    url = await serve(aiohttp_server, lambda r: web.Response(body=body))
    assert await call(url) == body


async def test_gzip_and_deflate_bodies_are_decompressed(aiohttp_server: Any) -> None:
    body = b'{"a":1}\n' * 10
    gz = await serve(aiohttp_server, lambda r: web.Response(body=gzip.compress(body),
                                                            headers={"Content-Encoding": "gzip"}))
    assert await call(gz) == body
    zl = await serve(aiohttp_server, lambda r: web.Response(body=zlib.compress(body),
                                                            headers={"Content-Encoding": "deflate"}))
    assert await call(zl) == body


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_never_followed(aiohttp_server: Any, status: int) -> None:
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=status, headers={"Location": "/elsewhere"})

    error = await failure(await serve(aiohttp_server, handler))
    assert (error.code, error.status, error.summary()) == ("redirect", status, f"redirect (HTTP {status})")
    assert hits == ["/page"]


async def test_other_status_fails_without_reading_the_body(aiohttp_server: Any) -> None:
    url = await serve(aiohttp_server, lambda r: web.Response(status=500, text="secret stack trace"))
    error = await failure(url)
    assert error.summary() == "http_status (HTTP 500)" and "secret" not in str(error)


@pytest.mark.parametrize("kind", ["gzip", "deflate"])
async def test_compression_bomb_stops_at_the_decompressed_limit(aiohttp_server: Any, kind: str) -> None:
    data = bomb(kind, 64, b"A" * 1023 + b"\n")
    assert len(data) < 200 * 1024
    url = await serve(aiohttp_server, lambda r: web.Response(body=data, headers={"Content-Encoding": kind}))
    limits = Limits(max_bytes=MIB, timeout_s=5)
    assert (await failure(url, limits)).summary() == "too_large (HTTP 200)"


async def test_blank_lines_count_as_lines(aiohttp_server: Any) -> None:
    data = gzip.compress(b"\n" * 100_000)
    url = await serve(aiohttp_server, lambda r: web.Response(body=data, headers={"Content-Encoding": "gzip"}))
    assert (await failure(url)).code == "too_many_lines"
    plain = await serve(aiohttp_server, lambda r: web.Response(body=b"\n" * 12))
    assert (await failure(plain)).code == "too_many_lines"
    exact = await serve(aiohttp_server, lambda r: web.Response(body=b"\n" * 11))
    assert await call(exact) == b"\n" * 11


async def test_a_line_over_its_limit_fails_as_soon_as_seen(aiohttp_server: Any) -> None:
    url = await serve(aiohttp_server, lambda r: web.Response(body=b"x" * (64 * 1024 + 1)))
    assert (await failure(url)).code == "line_too_long"


async def test_plain_body_over_the_limit(aiohttp_server: Any) -> None:
    async def flood(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for _ in range(8):
            await resp.write(b"A" * 1000 + b"\n")
            await resp.write(b"B" * (MIB // 2))
        return resp

    limits = Limits(max_bytes=MIB, timeout_s=5)
    assert (await failure(await serve(aiohttp_server, flood), limits)).code == "too_large"


async def test_declared_content_length_over_the_limit_fails_before_reading(aiohttp_server: Any) -> None:
    async def liar(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(10**12)})
        await resp.prepare(request)
        await resp.write(b"{}\n")
        await asyncio.sleep(3)
        return resp

    assert (await failure(await serve(aiohttp_server, liar))).code == "too_large"


async def test_unknown_encoding_and_cut_compressed_stream(aiohttp_server: Any) -> None:
    br = await serve(aiohttp_server, lambda r: web.Response(body=b"xx", headers={"Content-Encoding": "br"}))
    assert (await failure(br)).code == "bad_encoding"
    cut = gzip.compress(b"{}\n" * 1000)[:-20]
    half = await serve(aiohttp_server, lambda r: web.Response(body=cut, headers={"Content-Encoding": "gzip"}))
    assert (await failure(half)).code == "bad_encoding"


async def test_trickling_node_fails_at_the_deadline(aiohttp_server: Any) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for _ in range(100):
            await resp.write(b" ")
            await asyncio.sleep(0.05)
        return resp

    limits = Limits(max_bytes=MIB, timeout_s=0.5)
    error = await failure(await serve(aiohttp_server, trickle), limits)
    assert error.summary() == "timeout"


async def test_private_addresses_are_refused_after_resolution(aiohttp_server: Any) -> None:
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="{}")

    url = await serve(aiohttp_server, handler)
    port = url.split(":")[2].split("/")[0]
    strict = FedClient(allow_private=False)
    # an IP literal: refused before connecting; a name: refused by the resolver at connect time
    assert (await failure(url, client=strict)).code == "address_not_public"
    strict = FedClient(allow_private=False)
    assert (await failure(f"http://localhost:{port}/page", client=strict)).code == "address_not_public"
    assert hits == []
    assert await call(url) == b"{}" and hits == ["/page"]  # allowed with allow_private


@pytest.mark.parametrize("ip,public", [
    ("127.0.0.1", False), ("10.0.0.1", False), ("172.16.5.4", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("::1", False),
    ("fe80::1", False), ("fd00::1", False), ("::ffff:127.0.0.1", False), ("224.0.0.1", False),
    ("192.0.2.1", False), ("8.8.8.8", True), ("1.1.1.1", True), ("2606:4700:4700::1111", True),
    ("::ffff:8.8.8.8", True),
])
def test_address_classification(ip: str, public: bool) -> None:
    assert address_is_public(ip) is public


async def test_url_checks_at_enrollment() -> None:
    assert await url_is_public("http://1.1.1.1:8080/") is True
    assert await url_is_public("http://localhost:8080") is False
    assert await url_is_public("http://127.0.0.1") is False
    assert await url_is_public("http://[::1]:80") is False
    assert await resolves_public("no-such-host.invalid") is False


async def test_one_budget_across_calls(aiohttp_server: Any) -> None:
    """A call over the in-flight budget waits for another to release its bytes (a call holding
    nothing always proceeds, so one call alone never waits forever)."""
    body = b"x" * 1000 + b"\n"
    url = await serve(aiohttp_server, lambda r: web.Response(body=body * 300))
    budget = ByteBudget(400_000)
    client = FedClient(allow_private=True, budget=budget)
    limits = Limits(max_bytes=MIB, timeout_s=5)
    try:
        first = await client.request("GET", url, limits)
        assert budget.used == len(first.body) == 300_300
        second = asyncio.ensure_future(client.request("GET", url, limits))
        await asyncio.sleep(0.3)
        assert not second.done()  # waits: 300 KB held, 400 KB budget
        first.release()
        answer = await asyncio.wait_for(second, 5)
        assert budget.used == 300_300
        answer.release()
        assert budget.used == 0
    finally:
        await client.close()


async def test_failed_call_gives_its_bytes_back(aiohttp_server: Any) -> None:
    url = await serve(aiohttp_server, lambda r: web.Response(body=b"A" * (2 * MIB)))
    budget = ByteBudget(10 * MIB)
    client = FedClient(allow_private=True, budget=budget)
    try:
        with pytest.raises(FedError):
            await client.request("GET", url, Limits(max_bytes=MIB, timeout_s=5))
        assert budget.used == 0
    finally:
        await client.close()


async def test_body_cut_short_keeps_the_status(aiohttp_server: Any) -> None:
    async def short(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": "1000"})
        await resp.prepare(request)
        await resp.write(b"{}\n")
        request.transport.close()  # type: ignore[union-attr]
        return resp

    assert (await failure(await serve(aiohttp_server, short))).summary() == "body_cut (HTTP 200)"
