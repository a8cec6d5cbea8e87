"""Where hub ingest spends its time: ``python -m benchmarks.ingest_parts DIR [--pages N]``.

``DIR`` is a directory kept by ``python -m benchmarks.ingest --records N --keep DIR`` on SQLite
(its ``node`` holds the feed, its ``hub`` the signed directory). Sequentially, in this one process:

1. the node's feed rows are framed as feed pages of 1,000 records (the wire format);
2. ``check_page`` (parse, verify, validate, build stored text and search document — the worker's
   half) is timed over every page;
3. the checked pages are packed and pickled, unpickled and unpacked (``pack_page``/``unpack_page``:
   the hand-over from worker to writer, as ``ncc sync`` does it);
4. ``apply_checked`` (records, search index, quarantine, cursor in one transaction — the writer's
   half) is timed on a fresh copy of the hub's database;
5. bare Ed25519 verification of the same records is timed.

Prints one JSON object with each step per record in µs and in units of one bare verification (V).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from federation.directory import Directory
from federation.keys import b64url_decode
from federation.verify import verify
from node.context import build_registry
from node.services.ingest import apply_checked, check_page, pack_page, unpack_page
from node.services.search import SearchService
from node.storage import db as storage
from schemas import load_vocabularies

PAGE = 1000
RESET = (
    "DELETE FROM hub_records", "DELETE FROM search_tags", "DELETE FROM search_docs",
    "INSERT INTO search_fts (search_fts) VALUES ('delete-all')", "DELETE FROM search_counts",
    "DELETE FROM search_changes", "DELETE FROM hub_quarantine", "DELETE FROM hub_log", "DELETE FROM hub_log_nodes",
    "DELETE FROM hub_log_state",
    "UPDATE hub_pull_state SET cursor = 0, head = 0, lease_owner = NULL, lease_until = 0",
)


def pages_of(node_db: Path, limit: int | None) -> tuple[list[tuple[int, bytes]], int, str]:
    with sqlite3.connect(node_db) as conn:
        rows = conn.execute("SELECT seq, envelope FROM feed ORDER BY seq").fetchall()
    if limit:
        rows = rows[: limit * PAGE]
    pages = []
    for start in range(0, len(rows), PAGE):
        chunk = rows[start : start + PAGE]
        body = b"".join(b'{"seq":%d,"record":%s}\n' % (seq, env.encode()) for seq, env in chunk)
        body += orjson.dumps({"next": chunk[-1][0], "more": True, "head": rows[-1][0]}) + b"\n"
        pages.append((rows[start - 1][0] if start else 0, body))
    return pages, len(rows), orjson.loads(rows[0][1])["origin"]


async def apply_all(url: str, pages: list[tuple[int, bytes]], checked: list[Any], country: str, now: datetime) -> float:
    await storage.open_db(url)
    try:
        search = SearchService(accelerated=False)
        started = time.perf_counter()
        for (cursor, _), page in zip(pages, checked, strict=True):
            await apply_checked(country, page.items, cursor, page.trailer["next"], page.trailer["head"], now, search)
        return time.perf_counter() - started
    finally:
        await storage.close_db()


def run(root: Path, limit: int | None) -> dict[str, Any]:
    pages, records, country = pages_of(root / "node" / "ncc.db", limit)
    with sqlite3.connect(root / "hub" / "ncc.db") as conn:
        document = conn.execute("SELECT document FROM hub_directories ORDER BY serial DESC LIMIT 1").fetchone()[0]
    directory = Directory.from_dict(orjson.loads(document))
    registry, vocabularies, now = build_registry(), load_vocabularies(), datetime.now(UTC)

    started = time.perf_counter()
    checked = [check_page(country, body, cursor, PAGE, directory, now, registry, vocabularies) for cursor, body in pages]
    check_s = time.perf_counter() - started
    started = time.perf_counter()
    blobs = [pickle.dumps(pack_page(page), pickle.HIGHEST_PROTOCOL) for page in checked]
    dump_s = time.perf_counter() - started
    started = time.perf_counter()
    checked = [unpack_page(pickle.loads(blob)) for blob in blobs]
    load_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="ncc-bench-parts-") as tmp:
        copy = Path(tmp) / "hub.db"
        shutil.copy(root / "hub" / "ncc.db", copy)
        with sqlite3.connect(copy) as conn:
            for statement in RESET:
                conn.execute(statement)
        apply_s = asyncio.run(apply_all(f"sqlite://{copy}?synchronous=NORMAL", pages, checked, country, now))

    sample = []
    for _, body in pages[:2]:
        for line in body.splitlines()[:-1]:
            record = verify(orjson.loads(line)["record"], directory, now, registry, feed_origin=country)
            sample.append((record.key.key, b64url_decode(record.envelope.sig.value), record.envelope.signing_input()))
    started = time.perf_counter()
    for key, signature, data in sample:
        key.verify(signature, data)
    verify_us = (time.perf_counter() - started) / len(sample) * 1e6

    def step(seconds: float) -> dict[str, float]:
        us = seconds / records * 1e6
        return {"us": round(us, 1), "V": round(us / verify_us, 2)}

    return {
        "benchmark": "ingest_parts",
        "records": records,
        "pages": len(pages),
        "verify_us": round(verify_us, 1),
        "check": step(check_s),
        "pickle": step(dump_s),
        "unpickle": step(load_s),
        "apply": step(apply_s),
        "load_average": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest_parts", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="a directory kept by python -m benchmarks.ingest --keep DIR (SQLite)")
    parser.add_argument("--pages", type=int, help="use only the first N pages")
    args = parser.parse_args(argv)
    if not (args.dir / "node" / "ncc.db").exists() or not (args.dir / "hub" / "ncc.db").exists():
        parser.error(f"{args.dir} holds no node/ncc.db and hub/ncc.db (run benchmarks.ingest --keep on SQLite)")
    print(json.dumps(run(args.dir, args.pages), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
