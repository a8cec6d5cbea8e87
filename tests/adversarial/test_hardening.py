"""Hardening against clients and local mistakes (issue 20): keys, tokens, files, sessions, logs, invitations.

Each ``test_regression_*`` failed before its fix (named in its docstring).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sqlite3
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from federation.directory import KeyEntry, build_directory, sign_directory
from federation.keys import b64url_encode, generate_private_key, kid_for, public_key_raw
from federation.timefmt import format_timestamp
from federation.tokens import issue_service_token, issue_user_token, make_rotation_statement
from node.commands.base import CommandError
from node.commands.enroll import MAX_TOKEN_BYTES, read_token
from node.config import ConfigError, load_settings
from node.context import Keyring
from node.keystore import KeyStoreError, retire_and_replace
from node.logs import JsonFormatter, TextFormatter
from tests.adversarial.conftest import Clock, FakeNode, Hub, MakeFakeNode
from tests.conftest import premigrated
from tests.integration.support import MINIMAL_ORG, Instance, expect_problem, run_cli

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
BOTH = pytest.mark.parametrize(
    "db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask of a shell (files 0644, directories 0755 unless the program says otherwise)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def node_app(aiohttp_client: Any, node: Instance, clock: Clock, **env: str) -> Any:
    from node.http.app import create_app

    return await aiohttp_client(create_app(node.settings(**env), clock=clock))


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


# -- keys and user tokens ---------------------------------------------------------------------------


@SQLITE
async def test_regression_token_re_signed_with_a_retired_key_is_refused(
        aiohttp_client: Any, node: Instance, clock: Clock) -> None:
    """Regression: ``Keyring.public_keys`` trusted every retired key and the user-token check ignored the
    stored ``expires_at``: a JWT re-signed with a retired key (same jti, ``exp`` ten years ahead) stayed
    valid for ten years. Fixed in ``node/http/auth.py:check_stored_token`` (stored expiry, kid, iat, the
    key's retirement time) and ``node/keystore.py`` (retired keys carry ``retired_at``)."""
    client = await node_app(aiohttp_client, node, clock)
    settings = node.settings()
    admin = node.tokens["admin"]
    original = claims_of(admin)
    old = node.key
    assert (await client.get("/api/v1/records", headers=node.auth("admin"))).status == 200
    retire_and_replace(settings.key_path, generate_private_key(), now=clock())  # ncc keys rotate
    # what the retired key signed while current still verifies (up to its stored expiry)
    assert (await client.get("/api/v1/records", headers=node.auth("admin"))).status == 200

    def forged(**changes: Any) -> dict[str, str]:
        claims = {**original, "exp": original["iat"] + 10 * 365 * 86400, **changes}
        token = jwt.encode(claims, old.private_key, algorithm="EdDSA", headers={"kid": old.kid})
        return {"Authorization": f"Bearer {token}"}

    # signed after the key was retired (a newer iat): refused at once
    later = int(clock().timestamp()) + 60
    clock.advance(seconds=120)
    await expect_problem(await client.get("/api/v1/records", headers=forged(iat=later)), 401, "unauthenticated")
    # a token the new key issued, re-signed by the retired one: refused (not the key that issued it)
    from node.services.usertokens import issue_and_record

    new = Keyring(settings).current
    fresh = claims_of((await issue_and_record(new, "node:DE", "reader", "", clock(), 3600)).token)
    await expect_problem(await client.get("/api/v1/records", headers=forged(**{**fresh, "exp": fresh["exp"] + 10**8})),
                         401, "unauthenticated")
    # same jti, exp ten years ahead: valid only until the stored expiry (30 days), whatever exp says
    assert (await client.get("/api/v1/records", headers=forged())).status == 200
    clock.advance(days=31)
    resp = await client.get("/api/v1/records", headers=forged())
    assert (await expect_problem(resp, 401, "unauthenticated"))["detail"] == "token expired"


@SQLITE
async def test_regression_stored_expiry_wins_over_the_jwt_exp(aiohttp_client: Any, node: Instance,
                                                              clock: Clock) -> None:
    """Regression: a token re-signed by the *current* key (a stolen key file) with its ``exp`` pushed out
    outlived its stored expiry. Fixed in ``node/http/auth.py:check_stored_token``."""
    client = await node_app(aiohttp_client, node, clock)
    key = node.key
    claims = claims_of(node.tokens["reader"])
    token = issue_user_token(key.private_key, key.kid, "node:DE", "reader", claims["sub"], clock(), 10**8,
                             claims["jti"])
    clock.advance(days=31)
    resp = await client.get("/api/v1/records", headers={"Authorization": f"Bearer {token}"})
    await expect_problem(resp, 401, "unauthenticated")


@SQLITE
async def test_regression_compromised_key_verifies_nothing(aiohttp_client: Any, node: Instance,
                                                           clock: Clock) -> None:
    """Regression: after ``ncc enroll --new-key`` (key-compromise recovery) the stolen key sat in
    ``keys/retired/`` and kept verifying tokens. Fixed in ``node/keystore.py`` (``keys/compromised/``,
    never loaded) and ``node/services/nodefed.py:enroll_key``."""
    client = await node_app(aiohttp_client, node, clock)
    settings = node.settings()
    old_kid = node.key.kid
    moved = retire_and_replace(settings.key_path, generate_private_key(), compromised=True, now=clock())
    assert moved.parent.name == "compromised" and mode(moved) == 0o600
    await expect_problem(await client.get("/api/v1/records", headers=node.auth("admin")), 401, "unauthenticated")
    keyring = Keyring(settings)
    assert keyring.retired == [] and old_kid not in keyring.public_keys()
    assert old_kid in keyring.held_kids()  # it was this node's key: the audit must not call it foreign


@SQLITE
def test_regression_retired_key_file_gets_the_mode_check(node: Instance) -> None:
    """Regression: retired keys were loaded without the mode check ``instance.pem`` gets. Fixed in
    ``node/keystore.py:load_retired``."""
    settings = node.settings()
    retired = retire_and_replace(settings.key_path, generate_private_key())
    os.chmod(retired, 0o644)
    with pytest.raises(KeyStoreError, match=re.escape(f"chmod 600 {retired}")):
        Keyring(settings)
    os.chmod(retired, 0o600)
    assert len(Keyring(settings).retired) == 1


@SQLITE
@pytest.mark.parametrize("ttl", ["400000w", "99999999w", "91d", "99999999999999999999w"])
def test_regression_token_ttl_over_the_maximum_is_a_usage_error(node: Instance, ttl: str) -> None:
    """Regression: ``--ttl 400000w`` made a token valid until 9693; ``--ttl 99999999w`` ended in an
    OverflowError traceback. Fixed in ``node/commands/token.py`` (setting ``token_max_ttl_s``)."""
    code, out, err = run_cli("token", "create", "--data-dir", str(node.data_dir), "--role", "reader", "--ttl", ttl)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "--ttl" in err and ("token_max_ttl_s" in err or "invalid duration" in err)
    code, out, _ = run_cli("token", "create", "--data-dir", str(node.data_dir), "--role", "reader", "--ttl", "90d")
    assert code == 0 and claims_of(out.strip().splitlines()[-1])["exp"] - claims_of(
        out.strip().splitlines()[-1])["iat"] == 90 * 86400


# -- private files ----------------------------------------------------------------------------------


def test_regression_files_are_private_after_init_under_umask_022(tmp_path: Path, umask_022: None) -> None:
    """Regression: under umask 022 ``ncc init`` made the data dir 0755 and config.toml, ncc.db and its WAL
    0644, and ``ncc export --output`` a 0644 file. Fixed in ``node/cli.py`` (umask 077), ``node/files.py``,
    ``node/storage/db.py`` (the database file is created 0600; SQLite gives its WAL the same mode)."""
    data = tmp_path / "de"
    code, _, err = run_cli("init", "--role", "node", "--country", "DE", "--data-dir", str(data))
    assert code == 0, err
    code, _, err = run_cli("token", "create", "--data-dir", str(data), "--role", "admin")
    assert code == 0, err
    # another program of this user, with its umask 022, writing the database: the WAL takes the db's mode
    db = sqlite3.connect(data / "ncc.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("INSERT INTO node_state (key, value) VALUES ('x', 'y')")
    db.commit()
    assert (data / "ncc.db-wal").exists()
    out = tmp_path / "export.ndjson"
    code, _, err = run_cli("export", "--data-dir", str(data), "--output", str(out))
    assert code == 0, err
    db.close()
    assert mode(data) == 0o700 and mode(data / "keys") == 0o700
    private = [data / "config.toml", data / "ncc.db", data / "keys" / "instance.pem", data / "keys" / "session-secret",
               out]
    private += [p for p in (data / "ncc.db-wal", data / "ncc.db-shm") if p.exists()]
    assert {str(p): oct(mode(p)) for p in private} == {str(p): oct(0o600) for p in private}
    # an existing export target keeps no wider mode either
    out.chmod(0o644)
    assert run_cli("export", "--data-dir", str(data), "--output", str(out))[0] == 0
    assert mode(out) == 0o600
    # and a database file made readable by others stops every command, naming it
    (data / "ncc.db").chmod(0o644)
    code, _, err = run_cli("token", "create", "--data-dir", str(data), "--role", "admin")
    assert code == 1 and f"chmod 600 {data / 'ncc.db'}" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["config.toml", "keys/session-secret", "keys/instance.pem", "."])
@SQLITE
def test_regression_a_widely_readable_file_stops_the_instance_with_the_fix(node: Instance, name: str) -> None:
    """Regression: only instance.pem was checked. Fixed in ``node/files.py:check_instance_files`` (run by
    every command on a data dir, ``ncc serve`` included)."""
    path = (node.data_dir / name).resolve() if name != "." else node.data_dir
    path.chmod(0o755 if path.is_dir() else 0o644)
    code, _, err = run_cli("token", "create", "--data-dir", str(node.data_dir), "--role", "reader")
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and str(path) in err
    assert f"chmod {'700' if path.is_dir() else '600'} {path}" in err
    code, _, err = run_cli("serve", "--data-dir", str(node.data_dir), "--port", "1")
    assert code == 1 and str(path) in err


def test_regression_db_password_never_lands_in_config_toml(tmp_path: Path, umask_022: None, pg_url: str) -> None:
    """Regression: ``ncc init --db postgres://user:pass@…`` wrote the password into config.toml (the
    compose entrypoint passed one). Fixed in ``node/commands/init.py`` (``keys/db-password``, 0600) and
    ``node/config.py`` (NCC_DB_PASSWORD / db_password_file; a password in config.toml is refused)."""
    url = pg_url
    user_at = url.split("://", 1)[1]
    with_password = f"postgres://{user_at.split('@')[0].split(':')[0]}:s3cr%40t@{user_at.split('@', 1)[1]}"
    data = tmp_path / "hub"
    code, _, err = run_cli("init", "--role", "hub", "--data-dir", str(data), "--db", with_password)
    assert code == 0, err
    config = (data / "config.toml").read_text()
    assert "s3cr" not in config and "postgres://" in config
    secret = data / "keys" / "db-password"
    assert secret.read_text() == "s3cr@t\n" and mode(secret) == 0o600
    settings = load_settings(data, env={})
    assert settings.db_password == "s3cr@t" and "s3cr%40t@" in settings.db_url
    assert "s3cr" not in repr(settings)
    assert load_settings(data, env={"NCC_DB_PASSWORD": "other"}).db_password == "other"
    # the hub works (trust authentication here ignores the password)
    assert run_cli("hub", "invites", "--data-dir", str(data))[0] == 0
    (data / "config.toml").write_text(config.replace("postgres://postgres@", "postgres://postgres:pw@"))
    os.chmod(data / "config.toml", 0o600)
    with pytest.raises(ConfigError, match="^db: .*holds a database password"):
        load_settings(data, env={})


def test_db_password_file_setting_and_its_mode(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('role = "hub"\ndb = "postgres://ncc@db:5432/ncc"\n'
                                          'db_password_file = "/nonexistent/pw"\n')
    with pytest.raises(ConfigError, match="^db_password_file: .* not found"):
        load_settings(tmp_path, env={})
    pw = tmp_path / "pw"
    pw.write_text("p w:/@\n")
    pw.chmod(0o644)
    (tmp_path / "config.toml").write_text(f'role = "hub"\ndb = "postgres://ncc@db:5432/ncc"\ndb_password_file = "{pw}"\n')
    with pytest.raises(ConfigError, match="chmod 600"):
        load_settings(tmp_path, env={})
    pw.chmod(0o600)
    settings = load_settings(tmp_path, env={})
    assert settings.db_url.startswith("asyncpg://ncc:p%20w%3A%2F%40@db:5432/ncc")
    (tmp_path / "config.toml").write_text('role = "hub"\ndb_password = "x"\n')
    with pytest.raises(ConfigError, match="^db_password: secrets are never read from config.toml"):
        load_settings(tmp_path, env={})
    (tmp_path / "config.toml").write_text('role = "node"\ncountry = "DE"\natlas_api_key = "x"\n')
    with pytest.raises(ConfigError, match="^atlas_api_key: secrets are never read .* NCC_ATLAS_API_KEY"):
        load_settings(tmp_path, env={})
    (tmp_path / "config.toml").write_text('role = "node"\ncountry = "DE"\n')
    settings = load_settings(tmp_path, env={"NCC_ATLAS_API_KEY": " k3y \n"})
    assert settings.atlas_api_key == "k3y" and "k3y" not in repr(settings)


# -- replay tables ----------------------------------------------------------------------------------


@BOTH
async def test_regression_replay_table_stays_bounded_after_1000_anonymous_live_searches(
        aiohttp_client: Any, node: Instance, clock: Clock) -> None:
    """Regression: every anonymous ``live=true`` search at the hub makes each node store one service-token
    jti, and only the hub purged its table (3,000 searches left 3,204 rows per node, never removed). Here
    the node gets what the hub sends for 1,000 anonymous live searches — one fresh hub service token each.
    Fixed in ``node/http/auth.py`` (``ServiceCallLimits``: ``live_search_rate`` before the jti is stored)
    and ``node/services/wiring.py`` (``purge_seen_jtis`` every minute on both roles)."""
    from node.services.trust import DIRECTORY_STATE_KEY
    from node.storage.models import NodeState, SeenJti
    from node.storage.replay import purge_seen_jtis

    client = await node_app(aiohttp_client, node, clock)
    hub_key = generate_private_key()
    hub_kid = kid_for("hub", public_key_raw(hub_key))
    entry = KeyEntry.from_dict({"kid": hub_kid, "public_key": b64url_encode(public_key_raw(hub_key)),
                                "not_before": format_timestamp(clock() - timedelta(days=1)), "not_after": None,
                                "revoked_at": None})
    directory = sign_directory(build_directory(1, clock(), clock() + timedelta(days=7), "https://hub.example.eu",
                                               [entry], []), hub_key, hub_kid)
    await NodeState.create(key=DIRECTORY_STATE_KEY, value=json.dumps(directory))
    settings = node.settings()
    statuses: dict[int, int] = {}
    started = clock()
    import time

    t0 = time.monotonic()
    for _ in range(1000):
        token = issue_service_token(hub_key, hub_kid, "hub", "node:DE", clock(), ttl_s=60)
        resp = await client.post("/federation/v1/search", json={"q": "lattice", "limit": 10},
                                 headers={"Authorization": f"Bearer {token}"})
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        if resp.status == 429:
            assert (await resp.json())["code"] == "rate_limited" and int(resp.headers["Retry-After"]) >= 1
    elapsed = time.monotonic() - t0
    bound = 2 * settings.live_search_rate + settings.live_search_rate * elapsed + 1
    rows = await SeenJti.all().count()
    assert set(statuses) <= {200, 429}, statuses
    assert rows == statuses.get(200, 0) <= bound, (rows, statuses, elapsed)
    # and the table is emptied once those tokens have expired (the job runs every minute)
    clock.now = started + timedelta(seconds=60 + 61)
    await purge_seen_jtis(clock())
    assert await SeenJti.all().count() == 0


def test_rate_limiter_refills_and_bounds_its_keys() -> None:
    from node.services.ratelimit import RateLimiter

    now = [0.0]
    limiter = RateLimiter(rate=2, burst=4, max_keys=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(5)][:4] == [0.0] * 4 and limiter.take("a") > 0
    now[0] += 0.5
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    for key in "bcdef":
        limiter.take(key)
    assert len(limiter._buckets) == 3


# -- portal sessions --------------------------------------------------------------------------------


def _csrf(text: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', text)
    assert m
    return m.group(1)


async def _sign_in(client: Any, token: str) -> str:
    page = await (await client.get("/login")).text()
    resp = await client.post("/login", data={"csrf": _csrf(page), "token": token, "next": "/admin/records"},
                             allow_redirects=False)
    assert resp.status == 303, await resp.text()
    cookie = next(c for c in resp.headers.getall("Set-Cookie") if "ncc_session=" in c)
    value = cookie.split("ncc_session=", 1)[1].split(";", 1)[0]
    assert token not in cookie, "the bearer token never travels in the cookie"
    return value


@SQLITE
async def test_regression_session_cookie_replayed_after_logout_signs_no_one_in(
        aiohttp_client: Any, node: Instance, clock: Clock) -> None:
    """Regression: logout only cleared the browser's cookie; the 30-day bearer token inside stayed valid
    when replayed. Fixed in ``node/web/session.py`` (server-side sessions: logout deletes the row)."""
    client = await node_app(aiohttp_client, node, clock)
    session = await _sign_in(client, node.tokens["editor"])
    page = await (await client.get("/admin/records")).text()
    resp = await client.post("/logout", data={"csrf": _csrf(page)}, allow_redirects=False)
    assert resp.status == 303
    client.session.cookie_jar.clear()
    resp = await client.get("/admin/records", headers={"Cookie": f"ncc_session={session}"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login")
    # and the API token itself was not revoked by the logout (the CLI keeps using it)
    assert (await client.get("/api/v1/records", headers=node.auth("editor"))).status == 200


@SQLITE
async def test_regression_planted_csrf_pair_is_refused(aiohttp_client: Any, node: Instance, clock: Clock) -> None:
    """Regression: the CSRF token was any equal cookie/field pair, so a same-site subdomain or a
    plain-HTTP attacker that plants both passed. Fixed in ``node/web/session.py``: the token is an HMAC of
    the session id with ``keys/session-secret``."""
    client = await node_app(aiohttp_client, node, clock)
    session = await _sign_in(client, node.tokens["editor"])
    planted = "A" * 43
    client.session.cookie_jar.clear()
    headers = {"Cookie": f"ncc_session={session}; ncc_csrf={planted}"}
    resp = await client.post("/admin/records/new", data={"csrf": planted, "type": "organisation",
                                                         "/legal_name": MINIMAL_ORG["legal_name"]},
                             headers=headers, allow_redirects=False)
    assert resp.status == 403 and "csrf_failed" in await resp.text()
    # the same pair on the login form (no session): refused too
    resp = await client.post("/login", data={"csrf": planted, "token": node.tokens["admin"]},
                             headers={"Cookie": f"ncc_csrf={planted}"}, allow_redirects=False)
    assert resp.status == 403
    # the form the server rendered for this session passes
    page = await (await client.get("/admin/records", headers={"Cookie": f"ncc_session={session}"})).text()
    resp = await client.post("/logout", data={"csrf": _csrf(page)}, headers={"Cookie": f"ncc_session={session}"},
                             allow_redirects=False)
    assert resp.status == 303


@SQLITE
async def test_sessions_expire_before_their_token_and_end_with_it(aiohttp_client: Any, node: Instance,
                                                                  clock: Clock) -> None:
    from node.storage.models import ApiToken, PortalSession
    from node.web.session import purge_sessions

    client = await node_app(aiohttp_client, node, clock, session_ttl_s="3600")
    await _sign_in(client, node.tokens["editor"])
    assert (await client.get("/admin/records", allow_redirects=False)).status == 200
    clock.advance(seconds=3601)  # the token (30 days) is still valid; the session is not
    resp = await client.get("/admin/records", allow_redirects=False)
    assert resp.status == 303
    assert await purge_sessions(clock()) == 0 and await PortalSession.all().count() == 0  # ended at first use
    await _sign_in(client, node.tokens["editor"])
    await ApiToken.filter(jti=node.jtis["editor"]).update(revoked_at=format_timestamp(clock()))
    assert (await client.get("/admin/records", allow_redirects=False)).status == 303


@SQLITE
async def test_https_portal_uses_host_prefixed_secure_cookies(aiohttp_client: Any, node: Instance,
                                                              clock: Clock) -> None:
    client = await node_app(aiohttp_client, node, clock, url="https://ncc.example.eu")
    resp = await client.get("/login")
    cookie = next(c for c in resp.headers.getall("Set-Cookie") if "ncc_csrf" in c)
    assert cookie.startswith("__Host-ncc_csrf=") and "Secure" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie
    seed = cookie.split("=", 1)[1].split(";", 1)[0]
    csrf = _csrf(await resp.text())
    # the unprefixed cookie (what a plain-HTTP attacker or a subdomain can set) is not read
    resp = await client.post("/login", data={"csrf": csrf, "token": node.tokens["admin"]},
                             headers={"Cookie": f"ncc_csrf={seed}"}, allow_redirects=False)
    assert resp.status == 403
    resp = await client.post("/login", data={"csrf": csrf, "token": node.tokens["admin"]},
                             headers={"Cookie": f"__Host-ncc_csrf={seed}"}, allow_redirects=False)
    assert resp.status == 303
    session = next(c for c in resp.headers.getall("Set-Cookie") if "ncc_session" in c)
    assert session.startswith("__Host-ncc_session=") and "Secure" in session and "HttpOnly" in session


# -- logs -------------------------------------------------------------------------------------------


def test_regression_control_characters_are_escaped_in_every_log_format() -> None:
    """Regression: with ``log_format = text`` CR, ESC and TAB from a request path reached the log raw (a
    forged line in a terminal). Fixed in ``node/logs.py`` (every C0, DEL and C1 character escaped)."""
    nasty = "/x\r\n2026-01-01 00:00:00,000 INFO ncc.http: forged\x1b[2J\t\x00\x7f\x9b"
    record = logging.LogRecord("ncc.http", logging.INFO, __file__, 1, "request %s", (nasty,), None)
    record.path = nasty
    record.status = 404
    text = TextFormatter().format(record)
    assert not CONTROL.search(text) and "\n" not in text
    assert "\\r\\n2026" in text and ("\\x1b[2J" in text or "\\u001b[2J" in text)
    line = JsonFormatter().format(record)
    assert not CONTROL.search(line)
    data = json.loads(line)
    assert data["path"] == nasty and data["msg"] == f"request {nasty}"
    try:
        raise ValueError("boom\x1b[31m\r")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    text = TextFormatter().format(record)
    assert "boom\\x1b[31m\\r" in text and not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", text)
    assert not CONTROL.search(text.splitlines()[0])  # the line itself; the traceback stays below it


@SQLITE
async def test_request_log_at_info_has_no_query_or_token(aiohttp_client: Any, node: Instance, clock: Clock,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    client = await node_app(aiohttp_client, node, clock)
    with caplog.at_level(logging.INFO, logger="ncc.http"):
        await client.get("/api/v1/search?q=Erika+Mustermann", headers=node.auth("reader"))
    lines = [TextFormatter().format(r) for r in caplog.records]
    assert lines and not any("Mustermann" in line or node.tokens["reader"] in line for line in lines)
    subject = claims_of(node.tokens["reader"])["sub"]
    assert not any(subject in line for line in lines)


# -- invitations and enrollment ---------------------------------------------------------------------


def _enroll_fake(data: Path, token: str, key: Any, country: str = "DE") -> Any:
    """Enroll a node key at the hub through the enrollment service (no HTTP needed)."""
    from federation.tokens import enrollment_proof, peek_enrollment_token
    from node.commands.base import run_with_db
    from node.context import utc_now
    from node.keystore import load_key
    from node.services.hub import HubService

    settings = load_settings(data, env={})
    hub_key = load_key(settings.key_path, "hub", "")
    body = {"token": token, "country": country, "url": "https://de.example.eu",
            "public_key": b64url_encode(public_key_raw(key)), "kid": kid_for(country, public_key_raw(key)),
            "proof": enrollment_proof(key, str(peek_enrollment_token(token)["jti"]))}
    return run_with_db(settings, lambda: HubService(settings, lambda: hub_key, utc_now).enroll(body))


def test_invitations_list_cancel_and_replace(tmp_path: Path) -> None:
    """``ncc hub invites`` lists and cancels; ``ncc hub invite`` refuses an enrolled country (exit 1, one
    line) unless ``--replace``, which warns; a cancelled invitation is refused at enrollment."""
    data = tmp_path / "hub"
    assert run_cli("init", "--role", "hub", "--data-dir", premigrated(data))[0] == 0
    with (data / "config.toml").open("a") as config:  # the fake nodes below enroll with loopback URLs
        config.write("allow_private_node_urls = true\n")
    code, out, _ = run_cli("hub", "invite", "--data-dir", str(data), "DE")
    assert code == 0
    token = out.strip().splitlines()[-1]
    jti = claims_of(token)["jti"]
    assert "--token-file" in out and jti in out
    code, out, _ = run_cli("hub", "invites", "--data-dir", str(data))
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [(r["jti"], r["country"], r["state"]) for r in rows] == [(jti, "DE", "pending")]
    code, out, _ = run_cli("hub", "invites", "--data-dir", str(data), "--cancel", jti)
    assert code == 0 and json.loads(out)["jti"] == jti
    assert run_cli("hub", "invites", "--data-dir", str(data))[1] == ""
    code, out, _ = run_cli("hub", "invites", "--data-dir", str(data), "--all")
    assert json.loads(out)["state"] == "cancelled"
    code, _, err = run_cli("hub", "invites", "--data-dir", str(data), "--cancel", jti)
    assert code == 1 and "already cancelled" in err and len(err.strip().splitlines()) == 1
    from node.errors import Unauthenticated

    with pytest.raises(Unauthenticated, match="cancelled"):
        _enroll_fake(data, token, generate_private_key())
    # an invitation made before DE enrolled cannot take DE over once it has
    early = run_cli("hub", "invite", "--data-dir", str(data), "DE")[1].strip().splitlines()[-1]
    used = run_cli("hub", "invite", "--data-dir", str(data), "DE")[1].strip().splitlines()[-1]
    _enroll_fake(data, used, generate_private_key())
    from node.services.hub import EnrollmentInvalid

    with pytest.raises(EnrollmentInvalid, match="only an invitation made with"):
        _enroll_fake(data, early, generate_private_key())
    code, out, err = run_cli("hub", "invite", "--data-dir", str(data), "DE")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and "--replace" in err
    code, out, err = run_cli("hub", "invite", "--data-dir", str(data), "DE", "--replace")
    assert code == 0 and "warning" in err and "ends every key" in err
    _enroll_fake(data, out.strip().splitlines()[-1], generate_private_key())


@SQLITE
async def test_regression_re_enrollment_ends_every_previous_key(hub: Hub, fake_node: MakeFakeNode) -> None:
    """Regression: re-enrollment ended only the node's current key; a key rotated out shortly before kept
    its grace period (7 days) — after a compromise, the stolen key could still sign. Fixed in
    ``node/services/hub.py:HubService.enroll``."""
    from node.storage.hub_models import NodeKey

    de = await fake_node("DE")
    old = de.key
    new = generate_private_key()
    statement = make_rotation_statement(old, de.kid, public_key_raw(new), "DE", hub.clock())
    resp = await hub.client.post("/federation/v1/keys/rotate", json=statement, headers=de.auth())
    assert resp.status == 200, await resp.text()
    grace_end = (await NodeKey.get(kid=kid_for("DE", public_key_raw(old)))).not_after
    assert grace_end > format_timestamp(hub.clock())
    hub.clock.advance(minutes=5)
    fresh = FakeNode("DE", generate_private_key(), hub.clock, url=de.url)
    await hub.enroll(fresh)
    stamp = format_timestamp(hub.clock())
    for kid in (kid_for("DE", public_key_raw(old)), kid_for("DE", public_key_raw(new))):
        assert (await NodeKey.get(kid=kid)).not_after == stamp, kid
    assert (await NodeKey.get(kid=fresh.kid)).not_after is None


@SQLITE
async def test_invite_for_an_enrolled_country_needs_replace(hub: Hub, fake_node: MakeFakeNode) -> None:
    from node.services.hub import CountryEnrolled

    await fake_node("DE")
    with pytest.raises(CountryEnrolled, match="--replace"):
        await hub.invite("DE", replace=False)
    assert await hub.invite("DE", replace=True)


def test_enrollment_token_from_a_file_or_standard_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The invitation need not travel on the command line (visible in ``ps``)."""
    path = tmp_path / "token"
    path.write_text("\n  eyJ.abc.def  \n")
    assert read_token(None, str(path)) == "eyJ.abc.def"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"eyJ.abc.def\n")))
    assert read_token("-", None) == "eyJ.abc.def"
    assert read_token(" eyJ.x.y ", None) == "eyJ.x.y"
    path.write_text("one\ntwo\n")
    with pytest.raises(CommandError, match="alone on one line"):
        read_token(None, str(path))
    path.write_bytes(b"x" * (MAX_TOKEN_BYTES + 1))
    with pytest.raises(CommandError, match="larger than"):
        read_token(None, str(path))
    data = tmp_path / "de"
    assert run_cli("init", "--role", "node", "--country", "DE", "--data-dir", str(data))[0] == 0
    code, _, err = run_cli("enroll", "--data-dir", str(data), "--hub", "http://127.0.0.1:9",
                           "--token-file", str(tmp_path / "missing"))
    assert code == 1 and "cannot read" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("enroll", "--data-dir", str(data), "--hub", "http://127.0.0.1:9")
    assert code == 2  # one of --token / --token-file is required
