"""``/openapi.json`` (OpenAPI 3.1) describes every route the app of each role really registers."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from node.cli import main
from node.config import load_settings
from node.http.app import create_app
from node.http.openapi import build_openapi
from tests.conftest import premigrated

IGNORED_METHODS = {"HEAD", "OPTIONS"}  # answered by aiohttp itself, not API operations


def init(data_dir: Path, role: str) -> None:
    if role == "hub":
        pytest.importorskip("node.services.hub")
    args = ["init", "--role", role, "--data-dir", premigrated(data_dir)]
    if role == "node":
        args += ["--country", "DE"]
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main(args) == 0, err.getvalue()


def registered(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route in the app's router."""
    found = set()
    for route in app.router.routes():
        resource = route.resource
        assert resource is not None
        if isinstance(resource, web.StaticResource):
            continue  # static files (portal assets) are not API operations
        method = route.method.upper()
        if method in IGNORED_METHODS:
            continue
        found.add((method, resource.canonical))
    return found


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}


@pytest.fixture(params=["node", "hub"])
def instance(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    data_dir = tmp_path / request.param
    init(data_dir, request.param)
    return data_dir


def test_every_registered_route_is_in_the_document(instance: Path) -> None:
    settings = load_settings(instance, env={})
    app = create_app(settings)
    routes = registered(app)
    doc = build_openapi(settings)
    assert routes, "no routes registered"
    assert "*" not in {m for m, _ in routes}, "a catch-all method cannot be documented"
    missing = routes - documented(doc)
    assert not missing, f"routes missing from /openapi.json: {sorted(missing)}"
    extra = documented(doc) - routes
    assert not extra, f"documented but not served: {sorted(extra)}"


def test_the_check_fails_when_a_route_is_missing(instance: Path) -> None:
    """The test above has teeth: a route registered behind the table's back is caught."""
    settings = load_settings(instance, env={})
    app = create_app(settings)

    async def hidden(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_get("/api/v1/undocumented", hidden)
    assert ("GET", "/api/v1/undocumented") in registered(app) - documented(build_openapi(settings))


def test_document_is_openapi_3_1_and_self_consistent(instance: Path) -> None:
    settings = load_settings(instance, env={})
    doc = build_openapi(settings)
    assert re.fullmatch(r"3\.1\.\d+", doc["openapi"])
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["servers"] == [{"url": settings.base_url}]
    operation_ids = []
    for path, ops in doc["paths"].items():
        assert path.startswith("/")
        for method, op in ops.items():
            assert method in {"get", "post", "put", "delete", "patch"}
            operation_ids.append(op["operationId"])
            assert op["responses"], (method, path)
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"\{(\w+)\}", path)), (method, path)
            for status, response in op["responses"].items():
                assert status == "default" or 100 <= int(status) < 600
                for media in response.get("content", {}).values():
                    ref = media.get("schema", {}).get("$ref")
                    if ref:
                        assert ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"], ref
            body_ref = (
                op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            )
            if "$ref" in body_ref:
                assert body_ref["$ref"].removeprefix("#/components/schemas/") in doc["components"]["schemas"]
    assert len(operation_ids) == len(set(operation_ids)), "operationId must be unique"


def test_node_document_has_the_contract_routes(tmp_path: Path) -> None:
    init(tmp_path / "n", "node")
    doc = build_openapi(load_settings(tmp_path / "n", env={}))
    ops = documented(doc)
    for op in [
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("POST", "/api/v1/records"),
        ("GET", "/api/v1/records"),
        ("GET", "/api/v1/records/{id}"),
        ("PUT", "/api/v1/records/{id}"),
        ("DELETE", "/api/v1/records/{id}"),
    ]:
        assert op in ops, op
    assert doc["paths"]["/api/v1/records"]["post"]["requestBody"]["content"]["application/json"]


async def test_served_document_equals_the_built_one(instance: Path, aiohttp_client: Any) -> None:
    settings = load_settings(instance, env={})
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    doc = await resp.json()
    assert doc == build_openapi(settings)
    assert registered(client.app) <= documented(doc)


def test_every_route_needing_the_database_documents_503(instance: Path) -> None:
    """Regression (fault suite): during a database outage requests answer 503 ``unavailable``, which
    the document did not list — a client or a fuzzer checking status codes would call it a violation."""
    doc = build_openapi(load_settings(instance, env={}))
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert ("503" in op["responses"]) == (path not in ("/healthz", "/openapi.json")), (method, path)
