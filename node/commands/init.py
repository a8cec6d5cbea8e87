"""``ncc init`` — create an instance: data dir, config.toml, Ed25519 key (0600), database schema."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from node.commands.base import CommandError, add_data_dir, run_with_db
from node.config import CONFIG_FILE, ConfigError, build_settings, render_config
from node.keystore import KeyStoreError, create_key, load_key


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="create a node or hub instance in a data directory")
    p.add_argument("--role", required=True, choices=("node", "hub"))
    add_data_dir(p)
    p.add_argument("--country", help="ISO 3166-1 alpha-2 country of the NCC (node role)")
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
        values["country"] = args.country.upper()
    for key in ("url", "port", "host", "db"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    try:
        settings = build_settings(data_dir, values)
    except ConfigError as exc:
        raise CommandError(str(exc)) from exc
    if settings.role == "hub" and settings.country:
        raise CommandError("country: the hub has no country")
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        create_key(settings.key_path)
        key = load_key(settings.key_path, settings.role, settings.country)
    except KeyStoreError as exc:
        raise CommandError(str(exc)) from exc

    async def prepare() -> None:
        if settings.role == "hub":
            from node.services.hub import bootstrap_hub

            await bootstrap_hub(settings, key)

    try:
        run_with_db(settings, prepare)
    except CommandError:
        settings.key_path.unlink(missing_ok=True)
        raise
    (data_dir / CONFIG_FILE).write_text(render_config(values))
    print(f"initialised {settings.role} in {data_dir} (kid {key.kid}, url {settings.base_url})")
    return 0
