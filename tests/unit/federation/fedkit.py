"""Shared helpers for the federation tests: the vector generator's fixed keys, directory and records.

Imported as a sibling module (pytest's default import mode puts this directory on sys.path).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import schemas
from federation.directory import Directory, verify_directory
from federation.schemas import SchemaRegistry

VECTOR_DIR = Path(__file__).resolve().parents[2] / "vectors"


def load_generator() -> ModuleType:
    """tests/vectors/generate.py as a module (cached)."""
    name = "ncc_vector_generator"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, VECTOR_DIR / "generate.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


gen = load_generator()
NOW = gen.NOW


@functools.cache
def registry() -> SchemaRegistry:
    """The real schemas with the custom formats."""
    from federation.formats import CUSTOM_FORMATS

    return SchemaRegistry(schemas.load_schema_documents(), CUSTOM_FORMATS)


@functools.cache
def directory() -> Directory:
    """The vectors' good directory, verified at NOW."""
    return verify_directory(gen.directories()["good"], NOW)
