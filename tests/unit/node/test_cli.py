"""``ncc init`` and ``ncc token``: exit codes 0 / 1 (one line on stderr) / 2 (usage), outputs, files."""

from __future__ import annotations

import contextlib
import io
import stat
import tomllib
from pathlib import Path

import jwt
import pytest

from node.cli import main
from node.config import load_settings
from node.keystore import load_key
from tests.conftest import premigrated


def ncc(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def one_line(text: str) -> bool:
    return text.endswith("\n") and text.count("\n") == 1 and len(text.strip()) > 0


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "node"


def init(data_dir: Path, *extra: str) -> tuple[int, str, str]:
    return ncc("init", "--role", "node", "--country", "DE", "--data-dir", str(data_dir), *extra)


def test_init_creates_config_key_and_database(data_dir: Path) -> None:
    code, out, err = init(data_dir, "--port", "9123")
    assert code == 0, err
    assert err == ""
    key_file = data_dir / "keys" / "instance.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    config = tomllib.loads((data_dir / "config.toml").read_text())
    assert config == {"role": "node", "country": "DE", "port": 9123}
    assert (data_dir / "ncc.db").exists()
    settings = load_settings(data_dir, env={})
    key = load_key(settings.key_path, "node", "DE")
    assert key.kid.startswith("DE:") and key.kid in out
    assert "http://127.0.0.1:9123" in out


def test_init_with_db_url_on_both_backends(data_dir: Path, db_url: str) -> None:
    code, _, err = init(data_dir, "--db", db_url, "--url", "https://ncc.example.de/")
    assert code == 0, err
    settings = load_settings(data_dir, env={})
    assert settings.db == db_url
    assert settings.base_url == "https://ncc.example.de"
    assert not (data_dir / "ncc.db").exists() or db_url.startswith("sqlite")
    code, _out, err = ncc("token", "create", "--data-dir", str(data_dir), "--role", "reader")
    assert code == 0, err


def test_init_twice_fails_with_one_line_and_changes_nothing(data_dir: Path) -> None:
    assert init(data_dir)[0] == 0
    key_before = (data_dir / "keys" / "instance.pem").read_bytes()
    config_before = (data_dir / "config.toml").read_text()
    code, out, err = init(data_dir)
    assert code == 1 and out == "" and one_line(err), err
    assert "already" in err
    code, out, err = ncc("init", "--role", "hub", "--data-dir", str(data_dir))
    assert code == 1 and one_line(err)
    assert (data_dir / "keys" / "instance.pem").read_bytes() == key_before
    assert (data_dir / "config.toml").read_text() == config_before


@pytest.mark.parametrize(
    "extra",
    [
        ("--country", "XX"),
        ("--country", "US"),
        ("--country", "DEU"),
        ("--country", "1"),
        ("--url", "ftp://x"),
        ("--port", "99999"),
        ("--db", "mysql://db/x"),
    ],
)
def test_init_with_bad_values_fails_with_one_line(tmp_path: Path, extra: tuple[str, ...]) -> None:
    data_dir = tmp_path / "d"
    args = ["init", "--role", "node", "--data-dir", str(data_dir)]
    if extra[0] != "--country":
        args += ["--country", "DE"]
    code, _out, err = ncc(*args, *extra)
    assert code == 1 and one_line(err), (code, err)
    assert not (data_dir / "config.toml").exists()
    assert not (data_dir / "keys" / "instance.pem").exists()


def test_node_needs_a_country(data_dir: Path) -> None:
    code, _, err = ncc("init", "--role", "node", "--data-dir", str(data_dir))
    assert code == 1 and one_line(err) and "country" in err


def test_lower_case_country_is_accepted_as_its_code(data_dir: Path) -> None:
    other = data_dir.parent / "fr"
    code, _, err = ncc("init", "--role", "node", "--country", "fr", "--data-dir", str(other))
    assert code == 0, err
    assert load_settings(other, env={}).country == "FR"


def test_unreachable_database_fails_cleanly_and_init_can_be_retried(data_dir: Path) -> None:
    code, _out, err = init(data_dir, "--db", "postgres://nobody@127.0.0.1:1/nothing")
    assert code == 1 and one_line(err), err
    assert "database" in err
    assert not (data_dir / "config.toml").exists()
    assert not (data_dir / "keys" / "instance.pem").exists()
    code, _, err = init(data_dir)
    assert code == 0, err


@pytest.mark.parametrize(
    "argv",
    [
        (),
        ("frobnicate",),
        ("init",),
        ("init", "--role", "relay", "--data-dir", "x"),
        ("init", "--role", "node"),
        ("init", "--role", "node", "--data-dir", "x", "--port", "eighty"),
        ("serve",),
        ("serve", "--data-dir", "x", "--port", "p"),
        ("token",),
        ("token", "create", "--data-dir", "x"),
        ("token", "revoke", "--data-dir", "x"),
        ("token", "mint", "--data-dir", "x"),
        ("init", "--role", "node", "--data-dir", "x", "--unknown"),
    ],
)
def test_usage_errors_exit_2(argv: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = ncc(*argv)
    assert code == 2, (argv, out, err)
    assert "usage:" in err
    assert not (tmp_path / "x").exists()


def test_help_exits_0() -> None:
    code, out, _ = ncc("--help")
    assert code == 0 and "init" in out and "serve" in out and "token" in out


def test_commands_on_an_uninitialised_dir_fail_with_one_line(tmp_path: Path) -> None:
    for argv in (
        ("serve", "--data-dir", str(tmp_path / "none")),
        ("token", "create", "--data-dir", str(tmp_path / "none"), "--role", "admin"),
        ("token", "revoke", "--data-dir", str(tmp_path / "none"), "abc"),
    ):
        code, _out, err = ncc(*argv)
        assert code == 1 and one_line(err), (argv, err)
        assert "ncc init" in err


def test_token_create_prints_the_token_alone_on_the_last_line(data_dir: Path) -> None:
    assert init(Path(premigrated(data_dir)))[0] == 0  # init itself is not what is tested
    code, out, err = ncc(
        "token",
        "create",
        "--data-dir",
        str(data_dir),
        "--role",
        "editor",
        "--subject",
        "erika@ncc.example.de",
        "--ttl",
        "12h",
    )
    assert code == 0, err
    last = out.rstrip("\n").splitlines()[-1]
    assert last == last.strip() and last.count(".") == 2
    settings = load_settings(data_dir, env={})
    key = load_key(settings.key_path, "node", "DE")
    claims = jwt.decode(last, key.public_key, algorithms=["EdDSA"], audience="node:DE", issuer="node:DE")
    assert claims["role"] == "editor" and claims["sub"] == "erika@ncc.example.de" and claims["typ"] == "user"
    assert claims["exp"] - claims["iat"] == 12 * 3600
    assert jwt.get_unverified_header(last)["kid"] == key.kid


def test_token_revoke(data_dir: Path) -> None:
    assert init(Path(premigrated(data_dir)))[0] == 0  # init itself is not what is tested
    _, out, _ = ncc("token", "create", "--data-dir", str(data_dir), "--role", "reader")
    jti = jwt.decode(out.splitlines()[-1], options={"verify_signature": False})["jti"]
    code, out, err = ncc("token", "revoke", "--data-dir", str(data_dir), jti)
    assert code == 0 and jti in out and err == ""
    code, out, err = ncc("token", "revoke", "--data-dir", str(data_dir), jti)
    assert code == 1 and one_line(err)
    code, out, err = ncc("token", "revoke", "--data-dir", str(data_dir), "no-such-jti")
    assert code == 1 and one_line(err) and "no-such-jti" in err


def test_token_list_shows_what_was_issued_and_revoked(data_dir: Path) -> None:
    """Issue 19: an operator could revoke a token by its jti but not find that jti again."""
    import orjson

    assert init(Path(premigrated(data_dir)))[0] == 0  # init itself is not what is tested
    code, out, _ = ncc("token", "list", "--data-dir", str(data_dir))
    assert (code, out) == (0, "no user token has been issued\n")
    _, created, _ = ncc("token", "create", "--data-dir", str(data_dir), "--role", "reader", "--subject", "ana")
    jti = created.split("jti ")[1].split(",")[0]
    _, created, _ = ncc("token", "create", "--data-dir", str(data_dir), "--role", "editor", "--ttl", "2d")
    other = created.split("jti ")[1].split(",")[0]
    assert ncc("token", "revoke", "--data-dir", str(data_dir), jti)[0] == 0
    code, out, err = ncc("token", "list", "--data-dir", str(data_dir))
    assert code == 0 and err == ""
    header, *rows = out.splitlines()
    assert header.split() == ["JTI", "ROLE", "STATE", "EXPIRES", "REVOKED", "SUBJECT"]
    by_jti = {row.split()[0]: row.split() for row in rows}
    assert by_jti[jti][1:3] == ["reader", "revoked"] and by_jti[jti][-1] == "ana"
    assert by_jti[other][1:3] == ["editor", "active"] and by_jti[other][4] == "-"
    code, out, _ = ncc("token", "list", "--data-dir", str(data_dir), "--json")
    lines = {row["jti"]: row for row in map(orjson.loads, out.splitlines())}
    assert set(lines) == {jti, other} and lines[jti]["revoked_at"] is not None and lines[jti]["state"] == "revoked"
    assert set(lines[other]) == {"jti", "role", "subject", "created_at", "expires_at", "revoked_at", "state"}


def test_token_create_bad_role_or_ttl_fails_with_one_line(data_dir: Path) -> None:
    assert init(Path(premigrated(data_dir)))[0] == 0  # init itself is not what is tested
    code, out, err = ncc("token", "create", "--data-dir", str(data_dir), "--role", "analyst")
    assert code == 1 and one_line(err) and out == "", err
    # a malformed option value is a usage error, like --format xml (regression: it was exit 1)
    for extra in (("--role", "editor", "--ttl", "1y"), ("--role", "editor", "--ttl", "-5")):
        code, out, err = ncc("token", "create", "--data-dir", str(data_dir), *extra)
        assert code == 2 and "invalid duration" in err and out == "", (extra, err)


def test_bad_revocation_time_is_a_usage_error(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    assert ncc("init", "--role", "hub", "--data-dir", str(hub))[0] == 0
    code, out, err = ncc("hub", "revoke-key", "--data-dir", str(hub), "DE:AAAAAAAAAAAAAAAA", "--at", "yesterday")
    assert code == 2 and "invalid timestamp 'yesterday'" in err and out == ""


@pytest.mark.parametrize("where", ["/proc/ncc-nope", "a-file"])
def test_init_in_a_data_dir_that_cannot_be_made_fails_with_one_line(tmp_path: Path, where: str) -> None:
    """Regression (README walk-through): a data dir under /proc, or an existing file, was a traceback."""
    target = tmp_path / where if where == "a-file" else Path(where)
    if where == "a-file":
        target.write_text("not a directory")
    code, out, err = ncc("init", "--role", "node", "--country", "DE", "--data-dir", str(target))
    assert code == 1 and one_line(err) and err.startswith("ncc init: ") and out == "", err


def test_key_readable_by_others_is_refused(data_dir: Path) -> None:
    assert init(Path(premigrated(data_dir)))[0] == 0  # init itself is not what is tested
    (data_dir / "keys" / "instance.pem").chmod(0o644)
    code, _, err = ncc("token", "create", "--data-dir", str(data_dir), "--role", "admin")
    assert code == 1 and one_line(err) and "chmod 600" in err


# -- what the command line says about itself (issue 19) -------------------------------------------


def test_version_is_printed() -> None:
    code, out, _ = ncc("--version")
    assert code == 0 and out.startswith("ncc ") and out.count("\n") == 1


def test_a_mistyped_option_is_named_before_a_missing_required_one(tmp_path: Path) -> None:
    """Regression: ``ncc serve --datadir D`` said "required: --data-dir", hiding the typo."""
    code, _, err = ncc("serve", "--datadir", str(tmp_path))
    assert code == 2
    assert "unrecognized arguments: --datadir" in err and "did you mean --data-dir?" in err
    assert "required" not in err
    # in a nested sub-command too, with that sub-command's usage
    code, _, err = ncc("hub", "invite", "--data-dir", str(tmp_path), "DE", "--replce")
    assert code == 2 and "ncc hub invite" in err and "--replce" in err
    # a real missing option is still reported as such
    code, _, err = ncc("serve")
    assert code == 2 and "required: --data-dir" in err


def test_help_and_version_print_once() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["--version"])
    assert out.getvalue().count("ncc ") == 1


# -- setup that cannot destroy data (issue 19) -----------------------------------------------------


def test_init_refuses_a_sqlite_database_another_instance_holds(tmp_path: Path) -> None:
    """Regression: a second ``ncc init`` on the same database succeeded and mixed two instances."""
    first = tmp_path / "de"
    shared = tmp_path / "shared.db"
    code, _, err = init(first, "--db", f"sqlite://{shared}")
    assert code == 0, err
    before = shared.read_bytes()
    second = tmp_path / "fr"
    code, _, err = ncc("init", "--role", "hub", "--data-dir", str(second), "--db", f"sqlite://{shared}")
    assert code == 1 and one_line(err), err
    assert "already holds the DE node instance DE:" in err and "--db" in err
    assert not second.exists(), "a failed init left its data dir behind"
    assert shared.exists() and shared.read_bytes()[:100] == before[:100]
    assert load_key(first / "keys" / "instance.pem", "node", "DE").kid.startswith("DE:")


@pytest.mark.postgres
def test_init_refuses_a_postgres_database_another_instance_holds(tmp_path: Path, pg_url: str) -> None:
    code, _, err = init(tmp_path / "de", "--db", pg_url)
    assert code == 0, err
    code, _, err = ncc("init", "--role", "hub", "--data-dir", str(tmp_path / "hub"), "--db", pg_url)
    assert code == 1 and one_line(err) and "already holds the DE node instance" in err, err
    assert not (tmp_path / "hub").exists()


def test_a_failed_init_leaves_no_keys_behind_in_an_existing_dir(tmp_path: Path) -> None:
    """Regression: a failed ``ncc init`` left ``keys/`` behind (the next init then refused)."""
    target = tmp_path / "node"
    target.mkdir()
    code, _, err = init(target, "--db", "postgres://nobody@127.0.0.1:1/nothing")
    assert code == 1 and one_line(err)
    assert sorted(p.name for p in target.iterdir()) == []
    code, _, err = init(target)
    assert code == 0, err


def test_a_country_argument_is_taken_in_any_case_and_a_bad_one_is_a_usage_error(data_dir: Path) -> None:
    code, _, err = ncc("hub", "invite", "d1", "--data-dir", str(data_dir))
    assert code == 2 and "not an ISO 3166-1 alpha-2 country code" in err, err
    code, _, err = ncc("sync", "--country", "D", "--data-dir", str(data_dir))
    assert code == 2 and "'D' is not an ISO 3166-1 alpha-2 country code" in err, err


def test_a_command_imports_its_own_code_only() -> None:
    """Every ``ncc`` call imported every command's code (the web server, the search index, …) before
    parsing its arguments: ~0.6 s of start-up for ``ncc token create``. Now the command named first is
    the only one registered; ``ncc --help`` and a mistyped command still get the whole command line."""
    import subprocess
    import sys

    probe = ("import sys, contextlib, io\n"
             "from node.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
             "    main(['token', 'list', '--help'])\n"
             "print(sorted(m for m in ('aiohttp', 'node.commands.serve', 'node.search', 'node.context',"
             " 'importlib.metadata') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
    code, out, _ = ncc("--version")
    assert code == 0 and out.startswith("ncc ")
    code, _, err = ncc("tokn")
    assert code == 2 and "invalid choice: 'tokn'" in err and "'serve'" in err
