"""A malicious node, as its own process: ``python -m tests.adversarial.hostile_node PORT KEY_PEM COUNTRY``.

It holds a real enrolled key (the PEM the test enrolled) and answers the hub's federation calls the way
the test tells it to (``POST /_control``):

* ``GET /federation/v1/changes`` — ``feed``: ``records`` (a correct page of the records appended so far
  with ``append``: envelopes the test had this process sign with ``POST /_sign``), ``redirect`` (``status``, ``location``), ``error`` (status 500 and a body with a secret),
  ``gzip_bomb`` / ``deflate_bomb`` (``mib`` of 1 MiB lines, one compressed stream), ``blank_bomb``
  (``mib`` of blank lines, gzip), ``plain_flood`` (``mib`` of 1 MiB lines, chunked, uncompressed),
  ``lying_length`` (``Content-Length`` of a terabyte), ``trickle`` (a byte every 0.2 s), ``lines``
  (the raw lines given, then a correct trailer);
* ``POST /federation/v1/search`` — ``live``: ``raw`` (the ``body`` text given, as JSON), ``redirect``,
  ``gzip_bomb``;
* ``GET /_hits`` — how many requests each path received; ``POST /_sign`` signs envelope fields.

Compressed bombs are built once per size and kept (a few hundred KB each).
"""

from __future__ import annotations

import asyncio
import sys
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from federation.envelope import sign_record
from federation.keys import kid_for, public_key_raw

SECRET = "INTERNAL-SECRET-3c9f"  # what the node's own error bodies carry (never to appear at the hub)
MIB = 1024 * 1024


class Hostile:
    def __init__(self, key: Any, country: str) -> None:
        self.key, self.country = key, country
        self.kid = kid_for(country, public_key_raw(key))
        self.state: dict[str, Any] = {"feed": "records", "live": "raw", "body": "{}"}
        self.log: list[tuple[int, Any]] = []  # the feed: (seq, envelope), appended by the test
        self.hits: Counter[str] = Counter()
        self._bombs: dict[tuple[str, int], bytes] = {}

    def bomb(self, kind: str, mib: int) -> bytes:
        """One compressed stream of ``mib`` MiB: 1 MiB lines of ``A`` (or only newlines for ``blank``)."""
        if (kind, mib) not in self._bombs:
            wbits = {"gzip": 31, "deflate": 15, "blank": 31}[kind]
            comp = zlib.compressobj(9, zlib.DEFLATED, wbits)
            chunk = b"\n" * MIB if kind == "blank" else b"A" * (MIB - 1) + b"\n"
            out = [comp.compress(chunk) for _ in range(mib)]
            out.append(comp.flush())
            self._bombs[(kind, mib)] = b"".join(out)
        return self._bombs[(kind, mib)]

    async def control(self, request: web.Request) -> web.Response:
        state = await request.json()
        for record in state.pop("append", []):
            self.log.append((len(self.log) + 1, record))
        for _ in state.get("lines", []):  # raw lines take sequence numbers like records
            self.log.append((len(self.log) + 1, None))
        self.state.update(state)
        kinds = {"gzip_bomb": "gzip", "deflate_bomb": "deflate", "blank_bomb": "blank"}
        size = 0
        if self.state["feed"] in kinds:  # built now, so that the hub's call is answered at once
            size = len(self.bomb(kinds[self.state["feed"]], int(self.state.get("mib", 512))))
        if self.state["live"] == "gzip_bomb":
            size = len(self.bomb("gzip", int(self.state.get("mib", 64))))
        return web.json_response({"ok": True, "compressed_bytes": size})

    async def sign(self, request: web.Request) -> web.Response:
        fields = await request.json()
        return web.json_response(sign_record(fields, self.key, self.kid).to_dict())

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def hits_view(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.hits))

    async def changes(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        mode, s = self.state["feed"], self.state
        if mode == "redirect":
            return web.Response(status=s.get("status", 302), headers={"Location": s["location"]},
                                text=f"moved {SECRET}")
        if mode == "error":
            return web.Response(status=500, text=f"<html>{SECRET}: stack trace, internal hosts</html>")
        if mode in ("gzip_bomb", "deflate_bomb", "blank_bomb"):
            kind = {"gzip_bomb": "gzip", "deflate_bomb": "deflate", "blank_bomb": "blank"}[mode]
            encoding = "deflate" if kind == "deflate" else "gzip"
            return web.Response(body=self.bomb(kind, int(s.get("mib", 512))), content_type="application/x-ndjson",
                                headers={"Content-Encoding": encoding})
        if mode == "plain_flood":
            resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            await resp.prepare(request)
            line = b"A" * (MIB - 1) + b"\n"
            try:
                for _ in range(int(s.get("mib", 256))):
                    await resp.write(line)
                    self.hits["flood_mib_sent"] += 1
            except (ConnectionResetError, RuntimeError):
                pass  # the hub hung up: what it should do
            return resp
        if mode == "lying_length":
            resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson",
                                               "Content-Length": str(10**12)})
            await resp.prepare(request)
            try:
                await resp.write(b"{}\n" * 10)
                await asyncio.sleep(5)
            except (ConnectionResetError, RuntimeError):
                pass
            return resp
        if mode == "trickle":
            resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            await resp.prepare(request)
            try:
                for _ in range(600):
                    await resp.write(b" ")
                    await asyncio.sleep(0.2)
            except (ConnectionResetError, RuntimeError):
                pass
            return resp
        after = int(request.query.get("after", "0"))
        if mode == "lines":
            lines = [line.encode() for line in s.get("lines", [])]
            body = b"".join(line + b"\n" for line in lines)
            last = len(self.log)
            return web.Response(body=body + orjson.dumps({"next": last, "more": False, "head": last}) + b"\n",
                                content_type="application/x-ndjson")
        page = [(seq, r) for seq, r in self.log if seq > after and r is not None]
        body = b"".join(b'{"seq":%d,"record":%s}\n' % (seq, orjson.dumps(r)) for seq, r in page)
        nxt = page[-1][0] if page else after
        body += orjson.dumps({"next": nxt, "more": False, "head": len(self.log)}) + b"\n"
        return web.Response(body=body, content_type="application/x-ndjson")

    async def search(self, request: web.Request) -> web.Response:
        self.hits[request.path] += 1
        mode, s = self.state["live"], self.state
        if mode == "redirect":
            return web.Response(status=s.get("status", 302), headers={"Location": s["location"]})
        if mode == "gzip_bomb":
            return web.Response(body=self.bomb("gzip", int(s.get("mib", 64))), content_type="application/json",
                                headers={"Content-Encoding": "gzip"})
        return web.Response(body=s["body"].encode(), content_type="application/json")


def main(argv: list[str]) -> None:
    port, key_path, country = int(argv[0]), Path(argv[1]), argv[2]
    key = load_pem_private_key(key_path.read_bytes(), password=None)
    node = Hostile(key, country)
    app = web.Application(client_max_size=64 * MIB)
    app.router.add_get("/federation/v1/changes", node.changes)
    app.router.add_post("/federation/v1/search", node.search)
    app.router.add_post("/_control", node.control)
    app.router.add_post("/_sign", node.sign)
    app.router.add_get("/_hits", node.hits_view)
    app.router.add_get("/healthz", node.healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main(sys.argv[1:])
