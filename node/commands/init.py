"""``ncc init`` — create an instance: data dir (0700), config.toml, Ed25519 key and secrets (0600),
database schema. A password in ``--db`` is kept in ``keys/db-password``, not in config.toml."""

from __future__ import annotations

import argparse
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from federation.timefmt import format_timestamp
from node.commands.base import CommandError, add_data_dir, run_with_db
from node.config import (
    CONFIG_FILE,
    DB_PASSWORD_FILE,
    ConfigError,
    Settings,
    build_settings,
    render_config,
    split_db_password,
)
from node.files import private_dir, write_private
from node.keystore import KeyStoreError, create_key, load_key, load_secret


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="create a node or hub instance in a data directory")
    p.add_argument("--role", required=True, choices=("node", "hub"),
                   help="node: an NCC's registry; hub: the Centre that pulls every node")
    add_data_dir(p)
    p.add_argument("--country",
                   help="ISO 3166-1 alpha-2 country of the NCC (node role; any case, written in capitals)")
    p.add_argument("--url", help="public base URL (default http://127.0.0.1:<port>)")
    p.add_argument("--port", type=int, help="listen port (default 8080)")
    p.add_argument("--host", help="listen address (default 127.0.0.1)")
    p.add_argument("--db", help="database URL (default: SQLite in the data dir; postgres://… for PostgreSQL)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir)
    if (data_dir / CONFIG_FILE).exists():
        raise CommandError(f"{data_dir / CONFIG_FILE} already exists; this data dir is initialised")
    values: dict[str, Any] = {"role": args.role}
    if args.country:
        values["country"] = args.country.strip().upper()  # checked with the other values
    for key in ("url", "port", "host", "db"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    # A password in --db goes to keys/db-password (0600), never into config.toml.
    values["db"], password = split_db_password(str(values.get("db", "")))
    if not values["db"]:
        del values["db"]
    try:
        settings = build_settings(data_dir, values, db_password=password)
    except ConfigError as exc:
        raise CommandError(str(exc)) from exc
    if settings.role == "hub" and settings.country:
        raise CommandError("country: the hub has no country")
    created = [p for p in (data_dir, settings.key_path.parent) if not p.exists()]
    created += [p for p in (settings.session_secret_path, data_dir / DB_PASSWORD_FILE) if not p.exists()]
    sqlite_file = _sqlite_file(settings.db_url)
    if sqlite_file is not None and not sqlite_file.exists():
        created.append(sqlite_file)
    try:
        return _initialise(data_dir, settings, values, password)
    except BaseException:
        # A failed init leaves nothing it made behind (regression: keys/ stayed), so it can be retried.
        settings.key_path.unlink(missing_ok=True)
        for path in reversed(created):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                for extra in ("", "-wal", "-shm", "-journal"):
                    Path(f"{path}{extra}").unlink(missing_ok=True)
        raise


def _sqlite_file(db_url: str) -> Path | None:
    """The file of a ``sqlite://`` database URL (None for PostgreSQL)."""
    if not db_url.startswith("sqlite://"):
        return None
    return Path(db_url.removeprefix("sqlite://").split("?", 1)[0])


def _initialise(data_dir: Path, settings: Settings, values: dict[str, Any], password: str) -> int:
    private_dir(data_dir)
    private_dir(data_dir / "keys")
    try:
        create_key(settings.key_path)
        key = load_key(settings.key_path, settings.role, settings.country)
        load_secret(settings.session_secret_path)
    except KeyStoreError as exc:
        raise CommandError(str(exc)) from exc
    if password:
        write_private(data_dir / DB_PASSWORD_FILE, password + "\n")

    async def prepare() -> None:
        from node.storage import instance

        held = await instance.holder()
        if held is not None:
            raise CommandError(f"the database {_safe_url(settings.db_url)} already holds "
                               f"{instance.describe(held)}; give this instance its own database (--db)")
        await instance.claim(settings.role, settings.country, key.kid,
                             format_timestamp(datetime.now(UTC).replace(microsecond=0)))
        if settings.role == "hub":
            from node.services.hub import bootstrap_hub

            await bootstrap_hub(settings, key)

    run_with_db(settings, prepare)
    write_private(data_dir / CONFIG_FILE, render_config(values))
    print(f"initialised {settings.role} in {data_dir} (kid {key.kid}, url {settings.base_url})")
    return 0


def _safe_url(db_url: str) -> str:
    """The database URL without its password, for messages."""
    scheme, sep, rest = db_url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        userinfo, _, host = rest.partition("@")
        rest = f"{userinfo.split(':', 1)[0]}@{host}"
    return f"{scheme}{sep}{rest}"
