"""``ncc import`` end to end through node.cli.main on a SQLite node: output, exit codes, atomicity."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tortoise.exceptions import OperationalError

from node.cli import main
from node.commands.base import run_with_db, settings_for
from node.commands.imports import ProgressBar
from node.services.search import SearchService
from node.storage.models import FeedEntry, Record, RecordVersion
from tests.conftest import premigrated

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "import"
MINIMAL = {
    "legal_name": "Cyber Lab GmbH",
    "country": "DE",
    "org_type": "ctype.industry-sme",
    "fields_of_activity": ["foa.academia-research-innovation"],
    "domains": ["cry"],
    "subdomains": ["cry.10"],
    "description": "Post-quantum cryptography for energy grids.",
}


@pytest.fixture
def node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    data_dir = premigrated(tmp_path / "de")
    assert main(["init", "--role", "node", "--country", "DE", "--data-dir", data_dir]) == 0
    capsys.readouterr()
    return data_dir


def ncc(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def exported(capsys: pytest.CaptureFixture[str], node: str) -> list[dict[str, Any]]:
    code, lines, _ = ncc(capsys, "export", "--data-dir", node)
    assert code == 0
    return [json.loads(line) for line in lines]


def test_json_import_reports_rejected_rows_and_imports_the_rest(
    node: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = ncc(capsys, "import", "--data-dir", node, str(FIXTURES / "organisations.json"))
    assert code == 1 and err == "ncc import: 1 of 3 rows rejected (reasons above, one a row)\n"
    assert out[-1] == "imported 2, rejected 1"
    assert out[0].startswith("line 37: schema_invalid /subdomains/0: ")
    records = exported(capsys, node)
    assert [r["payload"]["legal_name"] for r in records] == [
        "Fraunhofer-Institut für Sichere Informationstechnologie SIT",
        "Cyber Lab GmbH",
    ]
    assert {r["visibility"] for r in records} == {"public"}


def test_all_valid_exits_zero(node: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "one.ndjson"
    path.write_text(json.dumps(MINIMAL) + "\n", encoding="utf-8")
    code, out, _ = ncc(capsys, "import", "--data-dir", node, "--type", "organisation", str(path))
    assert (code, out) == (0, ["imported 1, rejected 0"])


def test_dry_run_checks_everything_and_writes_nothing(node: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = ncc(
        capsys, "import", "--data-dir", node, "--dry-run", str(FIXTURES / "organisations.json")
    )
    assert code == 1
    assert out[0].startswith("line 37: schema_invalid /subdomains/0: ")
    assert out[-2:] == ["dry run: 2 of 3 rows valid, nothing written", "imported 0, rejected 1"]
    assert exported(capsys, node) == []


def test_dry_run_checks_consent_like_a_real_import(node: str, capsys: pytest.CaptureFixture[str]) -> None:
    experts = str(FIXTURES / "experts.ndjson")
    for extra in (["--dry-run"], []):
        code, out, _ = ncc(
            capsys,
            "import",
            "--data-dir",
            node,
            "--type",
            "expert",
            "--visibility",
            "public",
            *extra,
            experts,
        )
        assert code == 1
        assert out[0].startswith("line 2: consent_missing: ")
        assert out[1].startswith("line 4: schema_invalid /roles/0: ")
    assert out[-1] == "imported 1, rejected 2"


def test_experts_default_to_national(node: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = ncc(
        capsys, "import", "--data-dir", node, "--type", "expert", str(FIXTURES / "experts.ndjson")
    )
    assert code == 1 and out[-1] == "imported 2, rejected 1"
    assert {r["visibility"] for r in exported(capsys, node)} == {"national"}


def test_members_of_an_existing_registry_import_with_any_status(
    node: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Regression (contract review): a revoked member was refused as ``invalid_transition`` ("from None
    to revoked"), so an NCC could not bring in its registry's revoked members. A new record may carry
    any status; the workflow binds the changes after it (tests/integration/test_records_api.py)."""
    revoked = {
        **MINIMAL,
        "membership": {
            "status": "revoked",
            "assessed_at": "2026-01-01T00:00:00Z",
            "ground": "security-reasons",
        },
    }
    path = tmp_path / "revoked.json"
    path.write_text(json.dumps([revoked]), encoding="utf-8")
    for extra in (["--dry-run"], []):
        code, out, _ = ncc(capsys, "import", "--data-dir", node, "--type", "organisation", *extra, str(path))
        assert code == 0, out
    assert [r["payload"]["membership"]["status"] for r in exported(capsys, node)] == ["revoked"]


def test_csv_import_and_duplicates_on_rerun(node: str, capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = str(FIXTURES / "organisations.csv")
    code, out, _ = ncc(capsys, "import", "--data-dir", node, "--type", "organisation", csv_file)
    assert code == 1
    assert out == ["line 4: schema_invalid /sme: 'yes' is not true or false", "imported 3, rejected 1"]
    code, out, _ = ncc(capsys, "import", "--data-dir", node, "--type", "organisation", csv_file)
    assert out[0].startswith("line 2: duplicate /identifiers/pic: organisation with PIC 999990011 is already")
    assert out[1].startswith("line 3: duplicate /identifiers/pic: ")
    assert out[-1] == "imported 1, rejected 3"  # the organisation without a PIC has no natural key


def test_duplicates_within_one_file(node: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    org = {**MINIMAL, "identifiers": {"pic": "999999990"}}
    path = tmp_path / "twice.ndjson"
    path.write_text(json.dumps(org) + "\n" + json.dumps(org) + "\n", encoding="utf-8")
    code, out, _ = ncc(capsys, "import", "--data-dir", node, "--type", "organisation", "--dry-run", str(path))
    assert code == 1 and out[0].startswith("line 2: duplicate ")


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (None, [], "cannot read"),
        (b"", [], "empty file"),
        (b"\xff\xd8\xff\xe0JFIF", [], "not UTF-8"),
        (b"just some words\n", [], "unknown format"),
        (b"legal_name,country\nA,DE\n", [], "needs --type"),
        (b"legal_name,colour\nA,DE\n", ["--type", "organisation"], "unknown column 'colour'"),
        # regression (issue 19): an unclosed quote swallowed the later rows and was reported as a
        # missing country; it names the line and the cause, and nothing is written
        (b'legal_name,country\n"Unclosed,DE\nB,DE\nC,DE\n', ["--type", "organisation"],
         "line 2: a quoted cell starts here and its closing quote never comes"),
    ],
)
def test_bad_input_is_one_line_on_stderr(
    node: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    content: bytes | None,
    extra: list[str],
    message: str,
) -> None:
    path = tmp_path / "input.txt"
    if content is not None:
        path.write_bytes(content)
    code, out, err = ncc(capsys, "import", "--data-dir", node, *extra, str(path))
    assert code == 1 and out == []
    assert err.count("\n") == 1 and err.startswith("ncc import: ") and message in err


@pytest.mark.parametrize(
    "argv",
    [
        ["import"],
        ["import", "--data-dir", "d"],
        ["import", "--data-dir", "d", "f", "--type", "person"],
        ["import", "--data-dir", "d", "f", "--visibility", "secret"],
        ["import", "--data-dir", "d", "f", "--format", "xls"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def flaky_feed(monkeypatch: pytest.MonkeyPatch, failing: Callable[[int], bool]) -> None:
    """Make the database fail — inside the import's transaction, after the record, version and feed
    rows are written (indexing is its last step) — whenever it stores row n (``Org n-1``) with
    ``failing(n)``, whether in a batch or alone."""
    original = SearchService.insert_new

    async def insert_new(self: SearchService, conn: Any, docs: Any) -> None:
        docs = list(docs)
        rows = [int(doc.title.split()[-1]) + 1 for doc in docs]
        if any(failing(n) for n in rows):
            raise OperationalError("disk I/O error")
        await original(self, conn, docs)

    monkeypatch.setattr(SearchService, "insert_new", insert_new)


def orgs_file(tmp_path: Path, count: int) -> str:
    path = tmp_path / "orgs.ndjson"
    path.write_text(
        "".join(json.dumps({**MINIMAL, "legal_name": f"Org {i}"}) + "\n" for i in range(count)), "utf-8"
    )
    return str(path)


def stored(node: str) -> tuple[int, int, int]:
    async def counts() -> tuple[int, int, int]:
        return await Record.all().count(), await RecordVersion.all().count(), await FeedEntry.all().count()

    return run_with_db(settings_for(node), counts)


def test_row_the_database_refuses_writes_nothing_and_the_rest_goes_on(
    node: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database failing in the middle of a row's transaction leaves no trace of that row."""
    flaky_feed(monkeypatch, lambda n: n == 2)
    code, out, err = ncc(
        capsys, "import", "--data-dir", node, "--type", "organisation", orgs_file(tmp_path, 3)
    )
    monkeypatch.undo()
    assert code == 1 and err == "ncc import: 1 of 3 rows rejected (reasons above, one a row)\n"
    assert out == ["line 2: database_error: OperationalError: disk I/O error", "imported 2, rejected 1"]
    assert stored(node) == (2, 2, 2)


def test_import_stops_when_the_database_keeps_failing(
    node: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky_feed(monkeypatch, lambda n: n >= 2)
    code, out, err = ncc(
        capsys, "import", "--data-dir", node, "--type", "organisation", orgs_file(tmp_path, 6)
    )
    monkeypatch.undo()
    assert code == 1
    assert out[-1] == "imported 1, rejected 2" and out[0].startswith("line 2: database_error: ")
    assert err.startswith("ncc import: database keeps failing, stopped at line 4: OperationalError: disk I/O")
    assert err.count("\n") == 1
    assert stored(node) == (1, 1, 1)


def test_progress_bar_draws_on_a_terminal_only() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    bar = ProgressBar(tty, 500)
    for done in range(1, 501):
        bar.update(done, 500)
    bar.clear()
    text = tty.getvalue()
    assert text.startswith("\rimporting [") and "500/500" in text and text.endswith("\r")
    quiet = io.StringIO()
    bar = ProgressBar(quiet, 500)
    bar.update(500, 500)
    assert quiet.getvalue() == ""
    assert not ProgressBar(Tty(), 10).enabled  # short imports need no bar


def test_a_row_refused_inside_a_batch_keeps_the_batch_good_rows(
    node: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are stored BATCH_ROWS per transaction; the database refusing one row of a batch rolls the
    batch back, then its rows are stored one by one: only that row is lost, lines stay in order."""
    from node.services import import_writer

    monkeypatch.setattr(import_writer, "BATCH_ROWS", 5)
    calls: list[int] = []
    original = import_writer.Publisher.store_created

    async def counted(self: Any, envelopes: Any) -> None:
        calls.append(len(envelopes))
        await original(self, envelopes)

    monkeypatch.setattr(import_writer.Publisher, "store_created", counted)
    flaky_feed(monkeypatch, lambda n: n == 7)
    path = tmp_path / "orgs.ndjson"
    lines = [json.dumps({**MINIMAL, "legal_name": f"Org {i}"}) for i in range(12)]
    lines[2] = json.dumps({**MINIMAL, "legal_name": "Org 2", "domains": ["nope"]})  # a bad row, line 3
    path.write_text("\n".join(lines) + "\n", "utf-8")
    code, out, _ = ncc(capsys, "import", "--data-dir", node, "--type", "organisation", str(path))
    monkeypatch.undo()
    assert code == 1
    assert out[0].startswith("line 3: schema_invalid /domains/0")
    assert out[1:] == ["line 7: database_error: OperationalError: disk I/O error", "imported 10, rejected 2"]
    assert calls == [4, 5, 1, 1, 1, 1, 1, 2]  # batch 2 (lines 6-10) refused, then row by row
    assert stored(node) == (10, 10, 10)
    names = sorted(p["payload"]["legal_name"] for p in exported(capsys, node))
    assert names == sorted(f"Org {i}" for i in range(12) if i not in (2, 6))


def test_standard_input_is_imported_like_a_file(
    node: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ncc import -`` spools stdin (the file is read twice: checked, then imported)."""
    data = "".join(json.dumps({**MINIMAL, "legal_name": f"Org {i}"}) + "\n" for i in range(3)).encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, _ = ncc(capsys, "import", "--data-dir", node, "--type", "organisation", "-")
    assert (code, out) == (0, ["imported 3, rejected 0"])
    broken = b'[{"type": "organisation", "payload": {}},\n{"x"'
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(broken)))
    code, out, err = ncc(capsys, "import", "--data-dir", node, "-")
    assert code == 1 and err == "ncc import: stdin: malformed JSON at line 2\n" and out == []
    assert stored(node) == (3, 3, 3)  # the broken file wrote nothing


def _tricky_rows(count: int) -> str:
    """``count`` organisation lines with a bad row whose PIC a later good row uses, a PIC repeated in
    the same and in a later batch, a line that is not JSON and an unknown vocabulary id."""
    rows = [json.dumps({**MINIMAL, "legal_name": f"Org {i}", "identifiers": {"pic": f"9{i:08d}"}}) for i in range(count)]
    rows[2] = json.dumps({**MINIMAL, "legal_name": "Org 2", "domains": ["nope"], "identifiers": {"pic": "900000099"}})
    rows[4] = json.dumps({**MINIMAL, "legal_name": "Org 4", "identifiers": {"pic": "900000099"}})  # free: line 3 failed
    rows[6] = json.dumps({**MINIMAL, "legal_name": "Org 6", "identifiers": {"pic": "900000005"}})  # line 6's PIC
    rows[14] = json.dumps({**MINIMAL, "legal_name": "Org 14", "identifiers": {"pic": "900000005"}})
    rows[9] = '{"legal_name": "Org 9", '
    rows[11] = json.dumps({**MINIMAL, "legal_name": "Org 11", "org_type": "ctype.nope"})
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("refused", [(), (8, 17)], ids=["clean", "database-refuses-rows"])
def test_the_signing_worker_decides_every_row_as_the_importing_process_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, refused: tuple[int, ...]
) -> None:
    """From WORKER_MIN_ROWS rows on, ``ncc import`` checks and signs in a worker process while it stores
    the batch before: the same lines are reported (in order), the same rows imported, each signed by
    the node's key over what is stored, and indexed."""
    import hashlib

    from federation.envelope import Envelope
    from federation.keys import b64url_decode
    from node.keystore import load_key
    from node.services import import_writer

    path = tmp_path / "orgs.ndjson"
    path.write_text(_tricky_rows(40), "utf-8")
    monkeypatch.setattr(import_writer, "BATCH_ROWS", 4)
    if refused:
        flaky_feed(monkeypatch, lambda n: n in refused)
    started: list[int] = []
    original_start = import_writer.SignPool.start

    def start(self: Any) -> None:
        started.append(1)
        original_start(self)

    monkeypatch.setattr(import_writer.SignPool, "start", start)
    outcomes = []
    for name, minimum in (("worker", 10), ("here", 10**9)):
        monkeypatch.setattr(import_writer, "WORKER_MIN_ROWS", minimum)
        data_dir = premigrated(tmp_path / name)
        assert main(["init", "--role", "node", "--country", "DE", "--data-dir", data_dir]) == 0
        capsys.readouterr()
        code, out, _ = ncc(capsys, "import", "--data-dir", data_dir, "--type", "organisation", str(path))
        envelopes = exported(capsys, data_dir)
        settings = settings_for(data_dir)
        key = load_key(settings.key_path, "node", "DE")

        async def rows() -> tuple[dict[str, str], int]:
            digests = dict(await RecordVersion.all().values_list("record_id", "digest"))
            conn = Record._meta.db
            _, docs = await conn.execute_query("SELECT id FROM search_docs")
            return digests, len(docs)

        digests, docs = run_with_db(settings, rows)
        for wire in envelopes:
            env = Envelope.from_dict(wire)
            key.public_key.verify(b64url_decode(env.sig.value), env.signing_input())
            assert digests[env.id] == hashlib.sha256(env.signing_input()).hexdigest()
        assert docs == len(envelopes) and stored(data_dir) == (len(envelopes),) * 3
        out = [re.sub(r"urn:ncc:DE:organisation:[0-9a-f-]+", "ID", line) for line in out]  # ids are new per run
        outcomes.append((code, out, sorted(e["payload"]["legal_name"] for e in envelopes)))
    assert started == [1]  # the worker ran for the first import only
    assert outcomes[0] == outcomes[1]
    code, out, names = outcomes[0]
    assert code == 1 and out[-1] == f"imported {len(names)}, rejected {40 - len(names)}"
    assert [int(line.split(":")[0][5:]) for line in out[:-1]] == sorted([3, 7, 10, 12, 15, *refused])
    assert "Org 4" in names and "Org 6" not in names and "Org 14" not in names


def test_a_failing_signing_worker_leaves_its_batches_to_the_importing_process(
    node: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The worker dying (here: every batch from the third on fails in it) costs time, not rows: the
    batches it did not sign are signed by the importing process, once warned."""
    import asyncio
    from concurrent.futures.process import BrokenProcessPool

    from node.services import import_writer

    monkeypatch.setattr(import_writer, "BATCH_ROWS", 4)
    monkeypatch.setattr(import_writer, "WORKER_MIN_ROWS", 8)
    calls: list[int] = []
    original = import_writer.SignPool.sign

    def sign(self: Any, rows: Any) -> Any:
        calls.append(len(rows))
        if len(calls) < 3:
            return original(self, rows)
        failed = asyncio.get_running_loop().create_future()
        failed.set_exception(BrokenProcessPool("a child process terminated abruptly"))
        return failed

    monkeypatch.setattr(import_writer.SignPool, "sign", sign)
    code, out, _ = ncc(capsys, "import", "--data-dir", node, "--type", "organisation", orgs_file(tmp_path, 19))
    assert (code, out) == (0, ["imported 19, rejected 0"])
    assert len(calls) == 5 and [r.message for r in caplog.records if "signing worker" in r.message] == [
        "import: the signing worker failed; rows are signed in this process"]
    assert sorted(e["payload"]["legal_name"] for e in exported(capsys, node)) == sorted(f"Org {i}" for i in range(19))
    assert stored(node) == (19, 19, 19)
