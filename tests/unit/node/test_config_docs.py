"""``config/node.example.toml`` and ``config/hub.example.toml`` document every setting of their role."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from node.config import ENV_PREFIX, ROLES, SETTINGS, load_settings

REPO = Path(__file__).resolve().parents[3]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_example_config", REPO / "scripts" / "gen_example_config.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def example(role: str) -> str:
    return (REPO / "config" / f"{role}.example.toml").read_text()


def uncommented(text: str) -> str:
    """The example with every ``# key = value`` line switched on."""
    return re.sub(r"^# ([a-z_]+ = )", r"\1", text, flags=re.MULTILINE)


@pytest.mark.parametrize("role", ROLES)
def test_committed_examples_equal_the_generator_output(role: str) -> None:
    assert example(role) == generator().render(role), "run python scripts/gen_example_config.py"


@pytest.mark.parametrize("role", ROLES)
def test_every_setting_of_the_role_is_documented_with_its_doc(role: str) -> None:
    text = example(role)
    for setting in SETTINGS:
        line = re.compile(rf"^(# )?{setting.key} = ", re.MULTILINE)
        if role in setting.roles:
            assert line.search(text), f"{setting.key} missing from config/{role}.example.toml"
            assert setting.doc.split()[0] in text and f"{ENV_PREFIX}{setting.key.upper()}" in text
            doc_words = " ".join(setting.doc.split())
            flat = " ".join(re.sub(r"^# ?", "", text, flags=re.MULTILINE).split())
            assert doc_words in flat, setting.key
        else:
            assert not line.search(text), f"{setting.key} is not a {role} setting"


@pytest.mark.parametrize("role", ROLES)
def test_header_explains_environment_overrides(role: str) -> None:
    head = example(role).split("\n\n")[0]
    assert f"{ENV_PREFIX}<KEY>" in head and "config.toml" in head


@pytest.mark.parametrize("role", ROLES)
def test_example_is_a_valid_config_and_shows_the_real_defaults(role: str, tmp_path: Path) -> None:
    """Copied as config.toml (every optional key switched on) it loads, and equals the defaults."""
    text = uncommented(example(role))
    values = tomllib.loads(text)
    expected = {s.key for s in SETTINGS if role in s.roles}
    assert set(values) == expected
    (tmp_path / "config.toml").write_text(text)
    settings = load_settings(tmp_path, env={})
    for setting in SETTINGS:
        if setting.key in ("role", "country"):
            continue
        default = tuple(setting.default) if isinstance(setting.default, list) else setting.default
        assert getattr(settings, setting.key) == default, setting.key
    # as committed (optional keys commented out) it loads too
    (tmp_path / "config.toml").write_text(example(role))
    assert load_settings(tmp_path, env={}).role == role


def test_generator_check_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = generator()
    assert gen.main(["--check"]) == 0
    monkeypatch.setattr(gen, "CONFIG_DIR", tmp_path)
    assert gen.main(["--check"]) == 1  # missing files are out of date
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
