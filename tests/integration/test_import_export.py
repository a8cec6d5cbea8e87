"""Import and export across instances, on SQLite and PostgreSQL, and while the node is serving.

- export -> import into a fresh node re-creates the same payloads and visibilities, in NDJSON and CSV;
- the CORDIS flow: organization.csv, then project.csv linked to the organisations just imported;
- ``ncc import`` in its own process next to a real ``ncc serve`` taking writes on the same SQLite
  file: no "database is locked", every row and every API write lands.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from node import processes
from node.cli import main
from tests.conftest import drop_pg_database, make_pg_database, pid_alive, premigrated

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "import"
EXAMPLES = REPO / "schemas" / "examples"

MakeNode = Callable[[str], str]


@pytest.fixture
def make_node(tmp_path: Path, db_url: str) -> Iterator[MakeNode]:
    """``make_node("DE")`` -> data dir of a fresh node; each on its own database of the db_url kind."""
    created: list[str] = []
    count = 0

    def make(country: str) -> str:
        nonlocal count
        count += 1
        data_dir = tmp_path / f"node{count}"
        # Every node starts from the migrated template (these tests are about import and export, not
        # about how `ncc init` migrates: a fresh chain cost ~1.3 s of CPU on SQLite, more on PostgreSQL).
        if count == 1:
            db = db_url
        elif db_url.startswith("postgres"):
            name, db = make_pg_database(migrated=True)
            created.append(name)
        else:
            db = f"sqlite://{Path(premigrated(data_dir)) / 'ncc.db'}"
        assert (
            main(["init", "--role", "node", "--country", country, "--data-dir", str(data_dir), "--db", db])
            == 0
        )
        return str(data_dir)

    yield make
    for name in created:
        drop_pg_database(name)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def current(
    capsys: pytest.CaptureFixture[str], node: str, rtype: str | None = None
) -> list[tuple[str, str, Any]]:
    """(type, visibility, payload) of every current record, in sequence order."""
    argv = ["export", "--data-dir", node] + (["--type", rtype] if rtype else [])
    code, lines, _ = cli(capsys, *argv)
    assert code == 0
    return [(e["type"], e["visibility"], e["payload"]) for e in map(json.loads, lines)]


def example(name: str) -> dict[str, Any]:
    return dict(json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8")))


def rich_records() -> list[dict[str, Any]]:
    """Every record type and visibility, with the values CSV has to escape."""
    org = example("organisation")
    org.update(country="DE", identifiers={"pic": "999990101", "vat": "DE129515865"})
    org["address"] = {**org["address"], "country": "DE"}
    awkward = {
        **example("organisation.minimal"),
        "legal_name": 'Ärger & "Söhne" GmbH',
        "sectors": [],
        "keywords": ["a;b", " leading space", "back\\slash", "[]", "Zeile\numbruch"],
        "description": "Zeile eins\nZeile zwei, mit Komma; und Semikolon.",
        "consent": {"share_with_eccc_and_nccs": False},
    }
    project = {**example("project"), "grant_id": 101070599}
    return [
        {"type": "organisation", "visibility": "public", "payload": org},
        {"type": "organisation", "visibility": "network", "payload": awkward},
        {"type": "expert", "visibility": "public", "payload": example("expert")},
        {
            "type": "expert",
            "payload": {"name": "Łukasz Ørsted", "country": "DE", "consent": {"given": False}},
        },
        {"type": "project", "visibility": "public", "payload": project},
        {"type": "facility", "visibility": "network", "payload": example("facility")},
    ]


@pytest.fixture
def source(make_node: MakeNode, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    node = make_node("DE")
    path = tmp_path / "rich.ndjson"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rich_records()), encoding="utf-8"
    )
    assert cli(capsys, "import", "--data-dir", node, str(path))[1][-1] == "imported 6, rejected 0"
    for extra, name in (
        (["--type", "organisation"], "organisations.csv"),
        ([], "organisations.json"),
        (["--type", "project"], "projects.csv"),
        (["--type", "expert"], "experts.ndjson"),
    ):
        code, lines, _ = cli(capsys, "import", "--data-dir", node, *extra, str(FIXTURES / name))
        assert code == 1 and lines[-1].endswith("rejected 1")
    return node


def test_ndjson_export_import_round_trips(
    source: str, make_node: MakeNode, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dump = tmp_path / "dump.ndjson"
    assert cli(capsys, "export", "--data-dir", source, "--output", str(dump))[0] == 0
    before = current(capsys, source)
    assert len(before) == 6 + 3 + 2 + 1 + 2
    target = make_node("DE")
    code, lines, _ = cli(capsys, "import", "--data-dir", target, str(dump))
    assert (code, lines) == (0, [f"imported {len(before)}, rejected 0"])
    assert current(capsys, target) == before


@pytest.mark.parametrize("rtype", ["organisation", "expert", "project", "facility"])
def test_csv_export_import_round_trips(
    rtype: str, source: str, make_node: MakeNode, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dump = tmp_path / f"{rtype}.csv"
    assert (
        cli(
            capsys, "export", "--data-dir", source, "--format", "csv", "--type", rtype, "--output", str(dump)
        )[0]
        == 0
    )
    before = current(capsys, source, rtype)
    target = make_node("DE")
    code, lines, _ = cli(capsys, "import", "--data-dir", target, "--type", rtype, str(dump))
    assert (code, lines) == (0, [f"imported {len(before)}, rejected 0"])
    assert current(capsys, target, rtype) == before


def test_cordis_organisations_then_linked_projects(
    make_node: MakeNode, capsys: pytest.CaptureFixture[str]
) -> None:
    node = make_node("GR")
    orgs, projects = FIXTURES / "cordis" / "organization.csv", FIXTURES / "cordis" / "project.csv"
    code, lines, _ = cli(capsys, "import", "--data-dir", node, str(orgs))
    assert code == 1
    assert lines[0].startswith("line 11: schema_invalid /org_type: ")
    assert lines[-1] == "imported 3, rejected 1"
    code, lines, _ = cli(
        capsys, "import", "--data-dir", node, str(projects), "--cordis-organizations", str(orgs)
    )
    assert code == 1
    assert lines[0] == "line 64: schema_invalid /start_date: '31/12/2024' is not a date YYYY-MM-DD"
    assert lines[-1] == "imported 3, rejected 1"
    code, out, _ = cli(capsys, "export", "--data-dir", node)
    records = [json.loads(line) for line in out]
    by_pic = {r["payload"]["identifiers"]["pic"]: r["id"] for r in records if r["type"] == "organisation"}
    assert set(by_pic) == {"999912301", "999912302", "999912307"}
    assert {r["payload"]["country"] for r in records if r["type"] == "organisation"} == {"GR"}
    projects_by_grant = {r["payload"]["grant_id"]: r["payload"] for r in records if r["type"] == "project"}
    assert set(projects_by_grant) == {101070001, 101127002, 101070004}
    athena = projects_by_grant[101070001]
    assert athena["coordinator"] == by_pic["999912301"] and athena["participants"] == [by_pic["999912302"]]
    assert projects_by_grant[101127002]["participants"] == [by_pic["999912301"]]
    # running the same import again adds nothing
    code, lines, _ = cli(
        capsys, "import", "--data-dir", node, str(projects), "--cordis-organizations", str(orgs)
    )
    assert lines[-1] == "imported 0, rejected 4" and lines[0].startswith("line 2: duplicate /grant_id: ")


# -- next to a serving node ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ncc_process(*argv: str, **kwargs: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return processes.spawn([sys.executable, "-m", "node.cli", *argv], cwd=REPO, env=env, text=True,
                           new_session=False, **kwargs)


@pytest.fixture
def serving(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[tuple[str, str, str]]:
    """A SQLite node served by a real ``ncc serve`` process: (data dir, base URL, editor token)."""
    data_dir, port = premigrated(tmp_path / "live"), free_port()
    assert (
        main(["init", "--role", "node", "--country", "DE", "--data-dir", data_dir, "--port", str(port)]) == 0
    )
    assert main(["token", "create", "--data-dir", data_dir, "--role", "editor"]) == 0
    token = capsys.readouterr().out.splitlines()[-1]
    log = (tmp_path / "serve.log").open("w")  # a file, not a pipe: nobody drains a pipe and it fills
    server = ncc_process("serve", "--data-dir", data_dir, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{base}/healthz", timeout=1) as response,
            ):
                if response.status == 200:
                    break
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "ncc serve did not come up"
            time.sleep(0.1)
        yield data_dir, base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - only if shutdown hangs
            server.kill()
            server.wait()
        log.close()


def post_record(base: str, token: str, payload: dict[str, Any]) -> int:
    body = json.dumps({"type": "organisation", "payload": payload}).encode()
    request = urllib.request.Request(
        f"{base}/api/v1/records",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.e2e
def test_import_while_serving_on_sqlite(
    serving: tuple[str, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, base, token = serving
    minimal = example("organisation.minimal")
    rows = 300
    path = tmp_path / "many.ndjson"
    path.write_text(
        "".join(json.dumps({**minimal, "legal_name": f"Import {i}"}) + "\n" for i in range(rows)), "utf-8"
    )
    statuses: list[int] = []

    def writer(worker: int) -> None:
        for i in range(20):
            statuses.append(post_record(base, token, {**minimal, "legal_name": f"API {worker}-{i}"}))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    importer = ncc_process(
        "import",
        "--data-dir",
        data_dir,
        "--type",
        "organisation",
        str(path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    for t in threads:
        t.start()
    out, err = importer.communicate(timeout=300)
    for t in threads:
        t.join(timeout=120)
    assert importer.returncode == 0, err
    assert out.splitlines()[-1] == f"imported {rows}, rejected 0"
    assert "locked" not in err
    assert statuses == [201] * 60
    names = [p["legal_name"] for _, _, p in current(capsys, data_dir)]
    assert len(names) == rows + 60 and len(set(names)) == rows + 60


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_a_killed_import_takes_its_signing_worker_with_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The signing worker of a large import holds the node's private key: when ``ncc import`` is
    killed outright (SIGKILL: none of its code runs), the worker goes with it at once."""
    import signal

    data_dir = premigrated(tmp_path / "de")
    assert main(["init", "--role", "node", "--country", "DE", "--data-dir", data_dir]) == 0
    capsys.readouterr()
    minimal = example("organisation.minimal")
    path = tmp_path / "many.ndjson"
    path.write_text("".join(json.dumps({**minimal, "legal_name": f"Killed {i}"}) + "\n" for i in range(20_000)),
                    "utf-8")
    importer = ncc_process("import", "--data-dir", data_dir, "--type", "organisation", str(path),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        worker = None
        deadline = time.monotonic() + 60
        while worker is None:
            assert importer.poll() is None, "the import ended before its worker was seen"
            assert time.monotonic() < deadline, "no signing worker appeared"
            for child in _children(importer.pid):
                with contextlib.suppress(OSError):
                    cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                    if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                        worker = child
            time.sleep(0.05)
        os.kill(importer.pid, signal.SIGKILL)
        importer.wait(10)
        deadline = time.monotonic() + 5
        while pid_alive(worker):
            assert time.monotonic() < deadline, (
                f"the signing worker {worker} outlived its import: "
                f"{Path(f'/proc/{worker}/cmdline').read_bytes()!r} {Path(f'/proc/{worker}/stat').read_text()}")
            time.sleep(0.05)
    finally:
        if importer.poll() is None:
            importer.kill()
            importer.wait(10)
