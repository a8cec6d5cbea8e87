"""``ncc serve`` — run the instance's HTTP service (and, on the hub, the pull scheduler)."""

from __future__ import annotations

import argparse
import logging
import socket
from typing import Any

from aiohttp import web

from node.commands.base import CommandError, add_data_dir, settings_for
from node.keystore import KeyStoreError
from node.logs import setup_logging
from node.memory import fix_mmap_threshold


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the HTTP service")
    add_data_dir(p)
    p.add_argument("--host", help="listen address (overrides the `host` setting)")
    p.add_argument("--port", type=int, help="listen port (overrides the `port` setting)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir, host=args.host, port=args.port)
    setup_logging(settings.log_level, settings.log_format)
    fix_mmap_threshold(settings.malloc_mmap_threshold_kib)  # before the app allocates its caches
    from node.http.app import create_app

    try:
        app = create_app(settings)
    except KeyStoreError as exc:
        raise CommandError(str(exc)) from exc
    sock = listen(settings.host, settings.port)
    logging.getLogger("ncc").info(
        "serving", extra={"role": settings.role, "url": settings.base_url, "host": settings.host,
                          "port": settings.port}
    )
    web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=True, shutdown_timeout=5)
    return 0


def listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket before anything says ``serving`` (regression: a port in use was
    logged as serving, then failed).

    Raises:
        CommandError: the address cannot be resolved or bound (in use, not permitted).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(False)
    return sock
