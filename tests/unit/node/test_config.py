"""Settings: file < ``NCC_*`` environment < explicit overrides; every error names its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.config import (
    SETTINGS,
    SETTINGS_BY_KEY,
    ConfigError,
    Settings,
    build_settings,
    database_url,
    load_settings,
    render_config,
)


def write_config(data_dir: Path, text: str) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "config.toml").write_text(text)
    return data_dir


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    return write_config(tmp_path / "d", 'role = "node"\ncountry = "DE"\nport = 9000\n')


def test_defaults_come_from_the_settings_table(node_dir: Path) -> None:
    s = load_settings(node_dir, env={})
    assert s.role == "node" and s.country == "DE" and s.port == 9000
    for setting in SETTINGS:
        if setting.key in ("role", "country", "port"):
            continue
        value = getattr(s, setting.key)
        default = tuple(setting.default) if isinstance(setting.default, list) else setting.default
        assert value == default, setting.key
    assert s.max_body_bytes == 1_048_576
    assert s.base_url == "http://127.0.0.1:9000"
    assert s.instance_id == "node:DE"
    assert s.db_url == f"sqlite://{(node_dir / 'ncc.db').resolve()}?busy_timeout=30000"


def test_settings_dataclass_and_table_agree() -> None:
    from dataclasses import fields

    names = {f.name for f in fields(Settings)} - {"data_dir", "db_password", "atlas_api_key"}  # secrets
    assert names == set(SETTINGS_BY_KEY)
    assert len(SETTINGS_BY_KEY) == len(SETTINGS)  # no key twice


def test_environment_overrides_file_and_overrides_win(node_dir: Path) -> None:
    env = {
        "NCC_PORT": "9100",
        "NCC_LOG_LEVEL": "DEBUG",
        "NCC_ALLOWED_COUNTRIES": "DE, FR",
        "PORT": "1",
        "NCC_UNRELATED_THING": "ignored",
        "NCC_TEST_PG": "postgres://x",
    }
    s = load_settings(node_dir, env=env)
    assert s.port == 9100 and s.log_level == "DEBUG" and s.allowed_countries == ("DE", "FR")
    s = load_settings(node_dir, env=env, overrides={"port": 9200, "host": None})
    assert s.port == 9200 and s.host == "127.0.0.1"


def test_environment_is_read_by_default(node_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NCC_MAX_BODY_BYTES", "2048")
    assert load_settings(node_dir).max_body_bytes == 2048


def test_env_can_change_the_database(node_dir: Path) -> None:
    s = load_settings(node_dir, env={"NCC_DB": "postgres://u@db:5432/ncc"})
    assert s.db_url == "asyncpg://u@db:5432/ncc?minsize=1&maxsize=10"


@pytest.mark.parametrize(
    ("db", "expected"),
    [
        ("postgres://u@h:5432/d", "asyncpg://u@h:5432/d?minsize=1&maxsize=7"),
        ("postgresql://u@h/d?ssl=true", "asyncpg://u@h/d?ssl=true&minsize=1&maxsize=7"),
        ("postgres://u@h/d?maxsize=3", "asyncpg://u@h/d?maxsize=3"),
        ("sqlite:///srv/ncc.db", "sqlite:///srv/ncc.db?busy_timeout=30000"),
        ("sqlite:///srv/ncc.db?busy_timeout=5", "sqlite:///srv/ncc.db?busy_timeout=5"),
    ],
)
def test_database_url(db: str, expected: str, tmp_path: Path) -> None:
    assert database_url(db, tmp_path, 7) == expected


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("port", {"port": "http"}, "port"),
    ("port", {"port": "70000"}, "port"),
    ("port", {"port": "-1"}, "port"),
    ("max_body_bytes", {"max_body_bytes": "0"}, "max_body_bytes"),
    ("max_body_bytes", {"max_body_bytes": "1MiB"}, "max_body_bytes"),
    ("role", {"role": "relay"}, "role"),
    ("country", {"country": "de"}, "country"),
    ("country", {"country": "DEU"}, "country"),
    ("country", {"country": "US"}, "country"),
    ("url", {"url": "ftp://example.org"}, "url"),
    ("url", {"url": "not a url"}, "url"),
    ("db", {"db": "mysql://x"}, "db"),
    ("log_level", {"log_level": "LOUD"}, "log_level"),
    ("log_format", {"log_format": "xml"}, "log_format"),
    ("allowed_countries", {"allowed_countries": "DE,france"}, "allowed_countries"),
    # regression (README walk-through): XX started without complaint
    ("allowed_countries", {"allowed_countries": "DE,XX"}, "allowed_countries"),
    ("allowed_countries", {"allowed_countries": "DE,EL"}, "allowed_countries"),
    ("pull_batch", {"pull_batch": "5000"}, "pull_batch"),
    ("directory_ttl_s", {"directory_ttl_s": str(8 * 86400)}, "directory_ttl_s"),
    ("token_ttl_s", {"token_ttl_s": "0"}, "token_ttl_s"),
    ("clock_skew_s", {"clock_skew_s": "1.5"}, "clock_skew_s"),
]


@pytest.mark.parametrize(("name", "env", "key"), INVALID, ids=[f"{i}-{c[0]}" for i, c in enumerate(INVALID)])
def test_each_invalid_env_value_names_its_key(
    node_dir: Path, name: str, env: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(node_dir, env={f"NCC_{k.upper()}": v for k, v in env.items()})
    assert str(info.value).startswith(f"{key}:"), str(info.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('role = "node"\ncountry = "DE"\nport = "eighty"\n', "port"),
        ('role = "node"\ncountry = "DE"\nport = true\n', "port"),
        ('role = "node"\ncountry = "DE"\nport = 80.5\n', "port"),
        ('role = "node"\ncountry = "DE"\nhost = 1\n', "host"),
        ('role = "node"\ncountry = "DE"\nallowed_countries = [1, 2]\n', "allowed_countries"),
        ('role = "node"\ncountry = "DE"\nallowed_countries = ["AT"]\n', "country"),
        ('role = "node"\n', "country"),
        ('country = "DE"\n', "role"),
        ('role = "node"\ncountry = "DE"\nport_number = 80\n', "port_number"),
        ('role = "node"\ncountry = "DE"\n[database]\nurl = "x"\n', "database"),
        ('role = "node"\ncountry = DE\n', "config"),
    ],
)
def test_each_invalid_file_value_names_its_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(tmp_path / "d", text), env={})
    assert str(info.value).startswith(f"{key}:"), str(info.value)


def test_unknown_key_in_config_file_is_rejected(tmp_path: Path) -> None:
    d = write_config(tmp_path / "d", 'role = "node"\ncountry = "DE"\nmax_body = 5\n')
    with pytest.raises(ConfigError, match=r"^max_body: unknown setting"):
        load_settings(d, env={})


def test_unknown_override_is_rejected(node_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"^colour: "):
        load_settings(node_dir, env={}, overrides={"colour": "blue"})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config: .* not found"):
        load_settings(tmp_path / "nothing", env={})


def test_hub_role_needs_no_country(tmp_path: Path) -> None:
    s = load_settings(write_config(tmp_path / "h", 'role = "hub"\n'), env={})
    assert s.role == "hub" and s.instance_id == "hub"


def test_render_config_round_trips(tmp_path: Path) -> None:
    values = {
        "role": "node",
        "country": "FR",
        "port": 8443,
        "url": "https://ncc.example.fr",
        "db": 'postgres://u@h/d?application_name="x\\y"',
        "allowed_countries": ["FR", "DE"],
    }
    text = render_config(values)
    for key in values:
        assert f"# {SETTINGS_BY_KEY[key].doc}" in text
    s = load_settings(write_config(tmp_path / "r", text), env={})
    assert (s.role, s.country, s.port, s.url, s.db) == (
        "node",
        "FR",
        8443,
        "https://ncc.example.fr",
        values["db"],
    )
    assert s.allowed_countries == ("FR", "DE")


def test_build_settings_validates_without_a_file(tmp_path: Path) -> None:
    assert build_settings(tmp_path, {"role": "node", "country": "AT"}).country == "AT"
    with pytest.raises(ConfigError, match=r"^country: required"):
        build_settings(tmp_path, {"role": "node"})


def test_settings_defaults_have_one_home() -> None:
    """Issue 19: every default of ``SETTINGS`` was repeated in the ``Settings`` dataclass (two copies
    that could disagree). The dataclass now has a field per setting and no default of its own."""
    import dataclasses

    from node.config import SETTINGS, Settings

    own = {f.name: f for f in dataclasses.fields(Settings)}
    secrets = {"data_dir", "db_password", "atlas_api_key"}  # not settings: the data dir, secrets
    assert set(own) - secrets == {s.key for s in SETTINGS}
    with_default = [name for name, f in own.items() if name not in secrets and (
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING)]
    assert with_default == []
