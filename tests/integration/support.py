"""Helpers of the integration tests: running ``ncc`` in-process, instances, envelope and problem checks."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import ClientResponse

from federation.envelope import Envelope
from federation.keys import kid_for, public_key_raw
from node.cli import main
from node.config import Settings, load_settings
from node.keystore import InstanceKey, load_key

#: DESIGN §9: the organisation every node must accept.
MINIMAL_ORG: dict[str, Any] = {
    "legal_name": "Cyber Lab GmbH",
    "country": "DE",
    "org_type": "ctype.industry-sme",
    "fields_of_activity": ["foa.academia-research-innovation"],
    "domains": ["cry"],
    "subdomains": ["cry.10"],
    "description": "Post-quantum cryptography for energy grids.",
}

CONTACT: dict[str, str] = {
    "first_name": "Erika",
    "family_name": "Mustermann",
    "email": "erika@cyberlab.example.de",
    "position": "CISO",
    "phone": "+49 30 1234567",
}

NODE_ROLES = ("admin", "editor", "reader")


def org(**changes: Any) -> dict[str, Any]:
    """The minimal organisation with some fields changed (``None`` removes a field)."""
    payload = {**MINIMAL_ORG, **changes}
    return {k: v for k, v in payload.items() if v is not None}


def run_cli(*argv: str) -> tuple[int, str, str]:
    """Run ``ncc`` in-process; return (exit code, stdout, stderr), usage errors (SystemExit) included.

    Must not be called while an event loop runs in this thread (the commands run their own).
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def create_token(data_dir: Path, role: str, *extra: str) -> tuple[str, str]:
    """``ncc token create``; return (the token printed on the last stdout line, its jti)."""
    code, out, err = run_cli("token", "create", "--data-dir", str(data_dir), "--role", role, *extra)
    assert code == 0, err
    token = out.strip().splitlines()[-1]
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    return token, jti


@dataclass
class Instance:
    """An initialised instance: its data dir, database URL and a token per role."""

    data_dir: Path
    db: str
    tokens: dict[str, str] = field(default_factory=dict)
    jtis: dict[str, str] = field(default_factory=dict)

    def settings(self, **env: str) -> Settings:
        """Settings as ``ncc serve`` loads them, with ``NCC_<KEY>`` overrides given explicitly."""
        return load_settings(self.data_dir, env={f"NCC_{k.upper()}": v for k, v in env.items()})

    @property
    def key(self) -> InstanceKey:
        s = self.settings()
        return load_key(s.key_path, s.role, s.country)

    def auth(self, role: str) -> dict[str, str]:
        """The Authorization header of the token named ``role``."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def add_tokens(self, roles: tuple[str, ...]) -> None:
        """A token per role, as ``ncc token create`` issues them, in one database session."""
        from tests.conftest import issue_user_tokens

        for role, issued in zip(roles, issue_user_tokens(self.settings(), roles), strict=True):
            self.tokens[role], self.jtis[role] = issued.token, issued.jti

    def add_token(self, role: str, name: str | None = None, *extra: str) -> str:
        """``ncc token create --role role``, remembered under ``name`` (default: the role)."""
        token, jti = create_token(self.data_dir, role, *extra)
        self.tokens[name or role] = token
        self.jtis[name or role] = jti
        return token


def verify_envelope(data: dict[str, Any], key: InstanceKey, country: str = "DE") -> Envelope:
    """Check that ``data`` is an envelope signed by ``key`` with the kid of ``country``; return it.

    Raises:
        AssertionError / cryptography.exceptions.InvalidSignature: it is not.
    """
    env = Envelope.from_dict(data)
    assert env.sig.alg == "Ed25519"
    assert env.sig.kid == key.kid == kid_for(country, public_key_raw(key.private_key))
    key.public_key.verify(env.sig.raw, env.signing_input())
    return env


async def expect_problem(resp: ClientResponse, status: int, code: str) -> dict[str, Any]:
    """Assert an RFC 9457 problem with this status and code; return its body."""
    text = await resp.text()
    assert resp.status == status, text
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.headers
    body: dict[str, Any] = await resp.json(content_type=None)
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"].endswith("/" + code)
    assert isinstance(body["title"], str) and isinstance(body["detail"], str)
    return body


async def stored() -> dict[str, int]:
    """What the node's database holds (run inside the app's tortoise context, i.e. in a test)."""
    from node.storage.models import Counter, FeedEntry, Record, RecordVersion

    seq = await Counter.filter(name="seq").first()
    return {
        "records": await Record.all().count(),
        "versions": await RecordVersion.all().count(),
        "feed": await FeedEntry.all().count(),
        "seq": seq.value if seq else 0,
    }


def leaked_threads(before: set[threading.Thread], grace_s: float = 2.0) -> list[threading.Thread]:
    """Non-daemon threads started since ``before`` and still alive after a grace period.

    Such a thread (typically aiosqlite's, when a tortoise context was not closed) keeps pytest from
    exiting after the last test; finding it at the test that leaked it saves a bisection.
    """
    deadline = time.monotonic() + grace_s
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and not t.daemon and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            return leaked
        time.sleep(0.02)


async def _pg_admin(sql: str) -> None:
    import asyncpg

    from tests.conftest import PG_ADMIN_URL

    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def database_outage(db_url: str) -> AsyncIterator[None]:
    """What a PostgreSQL restart does to the clients of the database at ``db_url``: inside, it refuses
    new connections and every open one is terminated; on exit it accepts them again (the pools
    reconnect on their own)."""
    name = db_url.rsplit("/", 1)[1].split("?", 1)[0]
    await _pg_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        await _pg_admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        yield
    finally:
        await _pg_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
