"""A fault-injecting HTTP proxy on a free loopback port, for the fault suite (tests/e2e/test_faults.py).

It sits in front of a real ``ncc serve`` (a node, so that the hub pulls through it; or the hub, so
that the nodes notify through it): enroll the node with the proxy's URL and the hub knows no other
way to reach it. Transparent by default; on command it answers a request with one of the faults of
:data:`FAULTS` instead. Threads only (no event loop), so a test drives it from plain code.

Each request gets its own upstream connection and ``Connection: close`` both ways, so a fault set
between two requests applies to the very next one (no pooled keep-alive connection slips past it).
The upstream response is read whole, then forwarded as it is or broken as the fault says.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Self

from tests.e2e.harness import free_port

#: What the proxy can do to one request (``pass`` forwards it untouched).
FAULTS = {
    "pass": "forward the node's answer untouched",
    "refuse": "reset the connection before reading the request (the instance looks down)",
    "stall": "send nothing for `delay_s`, then the real answer (slower than the pull timeout)",
    "stall_mid_body": "send the headers and half the body, then nothing for `delay_s`, then the rest",
    "trickle": "send the real answer 64 bytes at a time, `delay_s` between chunks (never silent long "
               "enough for a read timeout, much longer than the pull timeout in total)",
    "garbage": "random bytes instead of an HTTP response",
    "not_json": "200 application/x-ndjson whose body is an HTML error page",
    "cut_mid_line": "the real page, HTTP-framed correctly, cut in the middle of a record line",
    "no_trailer": "the real page, HTTP-framed correctly, without its trailer line",
    "short_body": "headers announcing the whole body, half of it, then the connection closed",
    "reset": "headers and half the body, then a TCP reset",
}


@dataclass
class Fault:
    """A fault and which requests it applies to."""

    mode: str = "pass"
    #: Only feed requests whose ``after`` is greater than this (None: every request).
    after_gt: int | None = None
    delay_s: float = 30.0

    def applies(self, target: str) -> bool:
        if self.mode == "pass":
            return False
        if self.after_gt is None:
            return True
        url = urllib.parse.urlsplit(target)
        if url.path != "/federation/v1/changes":
            return False
        after = urllib.parse.parse_qs(url.query).get("after", ["0"])[0]
        return after.isdigit() and int(after) > self.after_gt


@dataclass
class Seen:
    target: str
    mode: str


@dataclass
class FaultProxy:
    """``http://127.0.0.1:<port>`` forwarding to ``127.0.0.1:<upstream_port>``; see :data:`FAULTS`."""

    upstream_port: int
    port: int = field(default_factory=free_port)
    fault: Fault = field(default_factory=Fault)
    seen: list[Seen] = field(default_factory=list)
    _closed: threading.Event = field(default_factory=threading.Event)
    _listener: socket.socket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        s.settimeout(0.2)
        self._listener = s
        threading.Thread(target=self._accept_loop, name=f"faultproxy-{self.port}", daemon=True).start()
        return self

    def close(self) -> None:
        self._closed.set()  # also ends every stall at once
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set(self, mode: str, *, after_gt: int | None = None, delay_s: float = 30.0) -> None:
        """Apply ``mode`` to the next matching requests (``pass``: transparent again)."""
        if mode not in FAULTS:
            raise ValueError(f"unknown fault {mode!r}")
        with self._lock:
            self.fault = Fault(mode, after_gt, delay_s)

    def transparent(self) -> None:
        self.set("pass")

    def faulted(self) -> int:
        """How many requests got a fault so far."""
        with self._lock:
            return sum(1 for s in self.seen if s.mode != "pass")

    # -- connections -------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with contextlib.closing(client):
            try:
                client.settimeout(60)
                with self._lock:
                    fault = self.fault
                if fault.mode == "refuse" and fault.after_gt is None:
                    self._record("*", "refuse")
                    _reset(client)
                    return
                request = _read_request(client)
                if request is None:
                    return
                target = request.split(b" ", 2)[1].decode("latin-1")
                mode = fault.mode if fault.applies(target) else "pass"
                self._record(target, mode)
                if mode == "refuse":
                    _reset(client)
                    return
                if mode == "garbage":
                    client.sendall(os.urandom(2048))
                    return
                if mode == "not_json":
                    body = b"<html><body><h1>502 Bad Gateway</h1>upstream is having a bad day</body></html>\n"
                    client.sendall(_head(b"HTTP/1.1 200 OK", [(b"Content-Type", b"application/x-ndjson")], body)
                                   + body)
                    return
                if mode == "stall" and self._closed.wait(fault.delay_s):
                    return
                response = self._upstream(_close_request(request))
                if response is None:
                    _reset(client)  # upstream down: the client sees what a down instance gives
                    return
                self._answer(client, response, mode, fault.delay_s)
            except OSError:
                return  # the client gave up (timeout) or the upstream went away: nothing to do

    def _record(self, target: str, mode: str) -> None:
        with self._lock:
            self.seen.append(Seen(target, mode))

    def _upstream(self, request: bytes) -> tuple[bytes, list[tuple[bytes, bytes]], bytes] | None:
        try:
            up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=60)
        except OSError:
            return None
        with contextlib.closing(up):
            up.sendall(request)
            raw = bytearray()
            while chunk := up.recv(65536):
                raw.extend(chunk)
        return _parse_response(bytes(raw))

    def _answer(self, client: socket.socket, response: tuple[bytes, list[tuple[bytes, bytes]], bytes],
                mode: str, delay_s: float) -> None:
        status, headers, body = response
        if mode == "cut_mid_line":
            # in the middle of the last record line (of the trailer, for a page without records)
            lines = body.rstrip(b"\n").split(b"\n")
            victim = len(lines) - 2 if len(lines) >= 2 else 0
            start = sum(len(line) + 1 for line in lines[:victim])
            body = body[: start + max(1, len(lines[victim]) // 2)]
        elif mode == "no_trailer":
            body = body[: body.rstrip(b"\n").rfind(b"\n") + 1]
        head = _head(status, headers, body)
        half = len(body) // 2
        if mode == "stall_mid_body":
            client.sendall(head + body[:half])
            if self._closed.wait(delay_s):
                return
            client.sendall(body[half:])
        elif mode == "trickle":
            data = head + body
            for i in range(0, len(data), 64):
                client.sendall(data[i:i + 64])
                if self._closed.wait(delay_s):
                    return
        elif mode == "short_body":
            client.sendall(head + body[:half])
        elif mode == "reset":
            client.sendall(head + body[:half])
            time.sleep(0.05)  # let the bytes leave before the reset
            _reset(client)
        else:
            client.sendall(head + body)


# -- HTTP/1.1 bits -------------------------------------------------------------------------------------


def _read_request(sock: socket.socket) -> bytes | None:
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data.extend(chunk)
    end = data.index(b"\r\n\r\n") + 4
    m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", bytes(data[:end]))
    want = end + (int(m.group(1)) if m else 0)
    while len(data) < want:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data.extend(chunk)
    return bytes(data[:want])


def _close_request(request: bytes) -> bytes:
    head, _, body = request.partition(b"\r\n\r\n")
    lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith((b"connection:", b"keep-alive:"))]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


def _parse_response(raw: bytes) -> tuple[bytes, list[tuple[bytes, bytes]], bytes] | None:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return None
    status, *lines = head.split(b"\r\n")
    headers = [(k.strip(), v.strip()) for k, _, v in (ln.partition(b":") for ln in lines)]
    if any(k.lower() == b"transfer-encoding" and b"chunked" in v.lower() for k, v in headers):
        body = _dechunk(body)
    return status, headers, body


def _dechunk(data: bytes) -> bytes:
    out, pos = bytearray(), 0
    while True:
        eol = data.index(b"\r\n", pos)
        size = int(data[pos:eol].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out.extend(data[eol + 2: eol + 2 + size])
        pos = eol + 2 + size + 2


def _head(status: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    """Status and headers for ``body`` (its length, no chunking, connection closed after it)."""
    skip = {b"content-length", b"transfer-encoding", b"connection", b"keep-alive"}
    lines = [status, *(k + b": " + v for k, v in headers if k.lower() not in skip),
             b"Content-Length: %d" % len(body), b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST instead of a FIN (SO_LINGER on, timeout 0)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
