"""Checking a feed page (node.services.ingest): framing, verification, what the store gets — in a thread
and in the worker process alike."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import orjson
import pytest

from federation.directory import KeyEntry, NodeEntry, build_directory, sign_directory, verify_directory
from federation.envelope import sign_record
from federation.keys import kid_for, private_key_from_seed, public_key_raw
from federation.timefmt import format_timestamp
from node.context import build_registry, utc_now
from node.services import ingest
from node.services.ingest import Checked, CheckPool, PullError, Rejected, check_page, parse_page, split_lines
from schemas import load_vocabularies

NODE_KEY = private_key_from_seed(b"\x01" * 32)
HUB_KEY = private_key_from_seed(b"\x02" * 32)
NOW = utc_now()
ORG = {"legal_name": "Cyber Lab GmbH", "country": "DE", "org_type": "ctype.industry-sme",
       "fields_of_activity": ["foa.academia-research-innovation"], "domains": ["cry"], "subdomains": ["cry.10"],
       "description": "Post-quantum cryptography for energy grids."}


def _directory_doc() -> dict[str, Any]:
    since = NOW - timedelta(days=1)
    hub_kid = kid_for("hub", public_key_raw(HUB_KEY))
    unsigned = build_directory(
        1, NOW - timedelta(minutes=1), NOW + timedelta(days=6), "https://hub.example.eu",
        [KeyEntry(hub_kid, public_key_raw(HUB_KEY), since)],
        [NodeEntry("DE", "https://de.example.eu", "active", "replicate",
                   (KeyEntry(kid_for("DE", public_key_raw(NODE_KEY)), public_key_raw(NODE_KEY), since),))],
    )
    return sign_directory(unsigned, HUB_KEY, hub_kid)


DOC = _directory_doc()
DIRECTORY = verify_directory(DOC, NOW)


def record(visibility: str = "public", **payload: Any) -> dict[str, Any]:
    return sign_record({
        "ncc": 1, "id": f"urn:ncc:DE:organisation:{uuid.uuid4()}", "type": "organisation",
        "schema": "organisation/1", "origin": "DE", "version": 1, "issued_at": format_timestamp(NOW),
        "visibility": visibility, "deleted": False, "payload": {**ORG, **payload},
    }, NODE_KEY, kid_for("DE", public_key_raw(NODE_KEY))).to_dict()


def page(*records: dict[str, Any] | bytes, more: bool = False) -> bytes:
    lines = []
    for seq, rec in enumerate(records, 1):
        text = rec if isinstance(rec, bytes) else orjson.dumps(rec)
        lines.append(b'{"seq":%d,"record":%s}\n' % (seq, text))
    return b"".join(lines) + orjson.dumps({"next": len(records), "more": more, "head": len(records)}) + b"\n"


def check(body: bytes, limit: int = 1000) -> ingest.CheckedPage:
    return check_page("DE", body, 0, limit, DIRECTORY, NOW, build_registry(), load_vocabularies())


def test_a_page_is_checked_into_what_the_store_needs() -> None:
    good = record()
    tampered = record()
    tampered["payload"]["legal_name"] = "Tampered"
    national = record(visibility="national", description="Secret national detail.")
    result = check(page(good, tampered, b'{"broken', national))
    assert result.trailer == {"next": 4, "more": False, "head": 4}
    ok, bad, malformed, nat = result.items
    assert isinstance(ok, Checked) and ok.seq == 1 and ok.id == good["id"] and ok.doc is not None
    assert orjson.loads(ok.text) == good and ok.doc.id == good["id"]
    assert isinstance(bad, Rejected) and bad.code == "signature_invalid" and bad.record_id == tampered["id"]
    assert isinstance(malformed, Rejected) and malformed.code == "malformed_json" and malformed.seq is None
    assert isinstance(nat, Checked) and nat.visibility == "national" and nat.doc is None
    assert "Secret" not in nat.evidence and "payload" not in orjson.loads(nat.evidence)


@pytest.mark.parametrize("body, message", [
    (b'{"seq":1,"record":{}}\n', "without its trailer"),
    (b'{"seq":2,"record":{}}\n{"seq":1,"record":{}}\n{"next":2,"more":false}\n', "backwards"),
    (b'{"next":0,"more":false}\n{"seq":1,"record":{}}\n', "after the feed trailer"),
    (b'{"seq":1,"record":{}}\n{"next":0,"more":false}\n', "bad feed trailer"),
    (b'[1]\n{"next":0,"more":false}\n', "neither a record nor the trailer"),
    (b'{"next":"1","more":false}\n', "bad feed trailer"),
])
def test_a_broken_frame_fails_the_whole_page(body: bytes, message: str) -> None:
    with pytest.raises(PullError, match=message):
        check(body)


def test_page_limit_and_line_length() -> None:
    with pytest.raises(PullError, match="page limit"):
        check(page(record(), record()), limit=1)
    with pytest.raises(PullError, match="too long"):
        split_lines(b"x" * (ingest.MAX_LINE + 1))
    assert split_lines(b"a\n\nb") == [b"a", b"", b"b"] and split_lines(b"a\n") == [b"a"]


def test_parse_page_keeps_blank_lines_out() -> None:
    items, trailer = parse_page([b"", b'{"seq":3,"record":{"x":1}}', b"  ", b'{"next":3,"more":true}'], 2, 10)
    assert [i.seq for i in items] == [3] and items[0].raw == '{"x":1}' and trailer["more"] is True


async def test_the_worker_process_returns_what_a_thread_does() -> None:
    body = page(record(), b"not json", record(visibility="network"))
    pool = CheckPool(1)
    try:
        in_worker = await pool.check("DE", body, 0, 1000, orjson.dumps(DOC), NOW)
        with pytest.raises(PullError, match="trailer"):
            await pool.check("DE", body[:-30], 0, 1000, orjson.dumps(DOC), NOW)
    finally:
        await asyncio.to_thread(pool.close)
    assert in_worker == check(body)


def test_the_hand_over_form_restores_the_page_and_the_worker_folding() -> None:
    """pack_page/unpack_page (what crosses the process boundary) give back an equal page whose search
    documents carry the folding the worker did (so the writer does not fold again)."""
    import pickle

    body = page(record(), b"not json", record(visibility="network"))
    checked = check(body)
    for item in checked.items:
        if isinstance(item, Checked) and item.doc is not None:
            item.doc.folded  # noqa: B018 - as prepare() does in the worker
    back = ingest.unpack_page(pickle.loads(pickle.dumps(ingest.pack_page(checked))))
    assert back == checked
    docs = [(a.doc, b.doc) for a, b in zip(back.items, checked.items, strict=True) if isinstance(a, Checked)]
    assert docs and all(a is not None and b is not None and a.__dict__ == b.__dict__ for a, b in docs)
    assert all("folded" in a.__dict__ for a, _ in docs if a is not None)
    assert ingest.unpack_page(checked) is checked
