"""docker-compose.yml, Dockerfile and docker/ checked against each other and the code (Docker itself
does not run here)."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from node.config import SECRET_ENV, SETTINGS_BY_KEY, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
INIT_SQL = ROOT / "docker" / "postgres" / "init-databases.sql"
SCRIPTS = sorted((ROOT / "docker").glob("*.sh"))
NCC_VAR = re.compile(r"\bNCC_[A-Z0-9_]+\b")
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict)
    return doc


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def resolve(value: str) -> str:
    """Compose's ``${VAR:-default}`` interpolation, with the defaults."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: resolve(str(v)) for k, v in env.items()}


def ncc_servers(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if "NCC_ROLE" in env_of(s)}


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_every_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    assert {"postgres", "hub", "node-de", "node-fr", "node-ee", "enroll"} <= set(services)
    for name, service in services.items():
        check = service.get("healthcheck")
        assert isinstance(check, dict) and not check.get("disable"), f"{name}: no healthcheck"
        assert check.get("test") and check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_every_ncc_variable_is_a_real_setting() -> None:
    texts = {p.name: p.read_text() for p in (COMPOSE, DOCKERFILE, *SCRIPTS)}
    for name, text in texts.items():
        for var in set(NCC_VAR.findall(text)):
            assert var[4:].lower() in SETTINGS_BY_KEY or var in SECRET_ENV.values(), \
                f"{name}: {var} is not a setting (or a secret's variable) in node.config"


def test_each_instance_environment_validates_as_settings(tmp_path: Path,
                                                         services: dict[str, dict[str, Any]]) -> None:
    servers = ncc_servers(services)
    assert sorted(servers) == ["hub", "node-de", "node-ee", "node-fr"]
    for name, service in servers.items():
        env = env_of(service)
        data = tmp_path / name
        data.mkdir()
        (data / "config.toml").write_text("")  # everything from the environment, as on first start
        settings = load_settings(data, env=env)
        assert settings.role == ("hub" if name == "hub" else "node")
        assert settings.db.startswith("postgres://") and settings.host == "0.0.0.0"
        # the password comes from the environment, not the URL (that `ncc init` writes to config.toml)
        assert "@" in settings.db and ":" not in settings.db.split("://", 1)[1].split("@", 1)[0], name
        assert settings.db_password and settings.db_password in settings.db_url
        assert settings.base_url == f"http://{name}:{settings.port}", "NCC_URL must be the service's own name"
        if name != "hub":
            assert settings.country == name.split("-")[1].upper()


def test_images_are_built_from_this_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    built = {name: s for name, s in services.items() if "build" in s}
    assert set(built) == set(ncc_servers(services)) | {"enroll"}
    images = set()
    for name, service in built.items():
        build = service["build"]
        context = ROOT / (build["context"] if isinstance(build, dict) else build)
        dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
        assert dockerfile.resolve() == DOCKERFILE, name
        images.add(service.get("image"))
    assert len(images) == 1, "one image for every ncc service"
    assert services["postgres"]["image"].startswith("postgres:")


def test_dockerfile_base_user_install_healthcheck_and_entrypoint() -> None:
    instructions = dockerfile_instructions()
    words = [w for w, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert any(w == "RUN" and "pip install ." in r for w, r in instructions)
    users = [r for w, r in instructions if w == "USER"]
    assert users and users[-1] not in ("root", "0"), "the program must not run as root"
    assert "HEALTHCHECK" in words and "/healthz" in dict(instructions)["HEALTHCHECK"]
    entrypoint = [r for w, r in instructions if w == "ENTRYPOINT"][-1]
    assert entrypoint == '["ncc"]'
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ncc"] == "node.cli:main"


def test_compose_entrypoints_are_installed_by_the_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    copies = {}
    for word, rest in dockerfile_instructions():
        if word == "COPY":
            parts = rest.split()
            copies[parts[-1]] = parts[:-1]
    for name, service in services.items():
        if "entrypoint" not in service:
            continue
        command = service["entrypoint"][0]
        target = f"/usr/local/bin/{command}"
        assert target in copies, f"{name}: entrypoint {command} is not installed by the Dockerfile"
        for source in copies[target]:
            assert (ROOT / source).is_file(), source


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    for word, rest in dockerfile_instructions():
        if word != "COPY":
            continue
        for source in rest.split()[:-1]:
            assert (ROOT / source).exists(), source
            assert not any(fnmatch.fnmatch(source, p) or source.startswith(p.rstrip("/") + "/")
                           for p in patterns), f"{source} is excluded by .dockerignore"


def test_volumes_are_declared_and_used(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for mount in service.get("volumes") or []:
            source = mount.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: bind mount {source} missing"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"
    for name in ncc_servers(services):
        targets = {m.split(":")[1]: m.split(":")[0] for m in services[name]["volumes"]}
        assert "/data" in targets and "/data/keys" in targets, f"{name}: data and keys need named volumes"
        assert targets["/data"] != targets["/data/keys"]


def test_host_ports_do_not_clash(services: dict[str, dict[str, Any]]) -> None:
    host_ports: list[str] = []
    for service in services.values():
        for mapping in service.get("ports") or []:
            parts = str(mapping).split(":")
            assert len(parts) >= 2, f"publish {mapping} with an explicit host port"
            host_ports.append(parts[-2])
    assert len(host_ports) == len(set(host_ports)), host_ports
    assert host_ports, "the hub must be reachable from the host"


def test_init_script_creates_every_database(services: dict[str, dict[str, Any]]) -> None:
    created = set(re.findall(r"CREATE DATABASE\s+\"?(\w+)\"?", INIT_SQL.read_text(), re.IGNORECASE))
    referenced = []
    for service in ncc_servers(services).values():
        url = env_of(service)["NCC_DB"]
        host_and_db = url.split("@", 1)[1]
        assert host_and_db.startswith("postgres:"), "the compose PostgreSQL service"
        referenced.append(host_and_db.rsplit("/", 1)[1].split("?")[0])
    assert len(referenced) == len(set(referenced)), "one database per instance"
    assert set(referenced) <= created, f"not created by the init script: {set(referenced) - created}"
    mounts = [m for m in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in m]
    assert mounts and mounts[0].split(":")[0].lstrip("./") == str(INIT_SQL.relative_to(ROOT))


def test_servers_wait_for_postgres_and_enroll_waits_for_everyone(services: dict[str, dict[str, Any]]) -> None:
    for name in ncc_servers(services):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy", name
    enroll = services["enroll"]
    assert set(enroll["depends_on"]) == set(ncc_servers(services))
    assert all(d["condition"] == "service_healthy" for d in enroll["depends_on"].values())
    nodes = dict(pair.split(":", 1) for pair in env_of(enroll)["NODES"].split())
    countries = {env_of(s)["NCC_COUNTRY"] for n, s in ncc_servers(services).items() if n != "hub"}
    assert set(nodes) == countries
    mounted = {m.split(":")[1] for m in enroll["volumes"]}
    assert set(nodes.values()) | {env_of(enroll)["HUB_DATA_DIR"]} <= mounted
    assert env_of(enroll)["HUB_URL"] == env_of(services["hub"])["NCC_URL"]


def test_scripts_are_valid_posix_shell() -> None:
    assert {p.name for p in SCRIPTS} == {"entrypoint.sh", "enroll.sh"}
    for script in SCRIPTS:
        assert script.read_text().startswith("#!/bin/sh\n")
        subprocess.run(["sh", "-n", str(script)], check=True)


def test_deploy_doc_names_every_service_port_and_variable(services: dict[str, dict[str, Any]]) -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text()
    for name, service in services.items():
        assert f"`{name}`" in doc, f"docs/deploy.md does not describe service {name}"
        for mapping in service.get("ports") or []:
            assert str(mapping).split(":")[-2] in doc
        for var in env_of(service):
            assert var in doc, f"docs/deploy.md does not document {var}"
