"""The acceptance path with real processes: ``ncc init`` → ``ncc serve`` → /healthz → create a record."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from federation.envelope import Envelope
from node import processes
from tests.integration.support import MINIMAL_ORG, create_token, run_cli

pytestmark = pytest.mark.e2e


def free_port() -> int:
    """A loopback port nobody listens on now (bound to 0 and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ncc_command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "node.cli", *argv]


@pytest.fixture
def served(tmp_path: Path, db_url: str) -> Iterator[tuple[str, Path]]:
    """A node initialised by ``ncc init`` and served by ``ncc serve`` in its own process."""
    data_dir = tmp_path / "node"
    port = free_port()
    code, _, err = run_cli(
        "init",
        "--role",
        "node",
        "--country",
        "DE",
        "--data-dir",
        str(data_dir),
        "--db",
        db_url,
        "--port",
        str(port),
    )
    assert code == 0, err
    log = (tmp_path / "serve.log").open("w")
    env = processes.clean_env(keep=("NCC_TEST_PG",))
    proc = processes.spawn(ncc_command("serve", "--data-dir", str(data_dir)), stdout=log, stderr=subprocess.STDOUT,
                           env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, tmp_path / "serve.log")
        yield base, data_dir
    finally:
        stop(proc)
        log.close()


def wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    async def probe() -> bool:
        try:
            async with (
                aiohttp.ClientSession() as s,
                s.get(f"{base}/healthz", timeout=aiohttp.ClientTimeout(1)) as r,
            ):
                return r.status == 200
        except (TimeoutError, aiohttp.ClientError):
            return False

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"ncc serve exited with {proc.returncode}:\n{log.read_text()}")
        if asyncio.run(probe()):
            return
        time.sleep(0.1)
    pytest.fail(f"ncc serve did not answer /healthz within 30 s:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL the process group if it does not stop."""
    processes.stop([proc], timeout=15)


async def test_serve_answers_and_creates_a_signed_record(served: tuple[str, Path]) -> None:
    base, data_dir = served
    # tokens are created while the node serves (the CLI and the server share the database)
    editor = await asyncio.to_thread(lambda: create_token(data_dir, "editor")[0])
    reader = await asyncio.to_thread(lambda: create_token(data_dir, "reader")[0])
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/healthz") as r:
            assert r.status == 200 and await r.json() == {"status": "ok"}
        async with s.get(f"{base}/readyz") as r:
            assert r.status == 200
        body = {"type": "organisation", "visibility": "public", "payload": MINIMAL_ORG}
        async with s.post(
            f"{base}/api/v1/records", json=body, headers={"Authorization": f"Bearer {editor}"}
        ) as r:
            assert r.status == 201, await r.text()
            env = await r.json()
        assert env["ncc"] == 1 and env["version"] == 1 and env["id"].startswith("urn:ncc:DE:organisation:")
        assert env["sig"]["alg"] == "Ed25519" and env["sig"]["kid"].startswith("DE:")
        Envelope.from_dict(env)
        async with s.post(
            f"{base}/api/v1/records", json=body, headers={"Authorization": f"Bearer {reader}"}
        ) as r:
            assert r.status == 403 and (await r.json())["code"] == "forbidden"
        async with s.post(f"{base}/api/v1/records", json=body) as r:
            assert r.status == 401 and (await r.json())["code"] == "unauthenticated"
        async with s.get(f"{base}/api/v1/records/{env['id']}") as r:
            assert r.status == 200 and "sig" not in await r.json()
        async with s.get(f"{base}/metrics") as r:
            assert r.status == 200 and "ncc_http_request_duration_seconds" in await r.text()


def test_serve_on_a_busy_port_fails_with_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert (
            run_cli(
                "init", "--role", "node", "--country", "DE", "--data-dir", str(data_dir), "--port", str(port)
            )[0]
            == 0
        )
        proc = subprocess.run(
            ncc_command("serve", "--data-dir", str(data_dir)),
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ncc serve:") and str(port) in last


def test_serve_on_a_port_in_use_fails_without_claiming_to_serve(tmp_path: Path) -> None:
    """Regression: ``ncc serve`` logged ``serving`` and only then failed on a port in use."""
    data_dir = tmp_path / "node"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code, _, err = run_cli("init", "--role", "node", "--country", "DE", "--data-dir", str(data_dir),
                               "--port", str(port))
        assert code == 0, err
        env = {k: v for k, v in os.environ.items() if not k.startswith("NCC_")}
        proc = subprocess.run(ncc_command("serve", "--data-dir", str(data_dir)), check=False, capture_output=True,
                              text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.endswith("\n") and proc.stderr.count("\n") == 1, proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "serving" not in proc.stdout + proc.stderr
