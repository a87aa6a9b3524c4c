"""Fixtures for the template tests: the SAM template, and its offline translation to plain CloudFormation.

The translation runs in-process with samtranslator (no AWS credentials, no SAM CLI, no network), once per session.
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


def load_script(script: str) -> ModuleType:
    """Import scripts/<script>.py (scripts/ is not a package), registered so that dataclasses resolve."""
    name = f"ticket_router_scripts_{script}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{script}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def translate_module() -> ModuleType:
    return load_script("translate_template")


@pytest.fixture(scope="session")
def artifact_sizes_module() -> ModuleType:
    return load_script("artifact_sizes")


@pytest.fixture(scope="session")
def sam_template(translate_module: ModuleType) -> dict[str, Any]:
    template: dict[str, Any] = translate_module.load_sam_template(TEMPLATE)
    return template


@pytest.fixture(scope="session")
def translated(translate_module: ModuleType, sam_template: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = translate_module.translate(sam_template)
    return result


@pytest.fixture(scope="session")
def resources(translated: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = translated["Resources"]
    return found


@pytest.fixture(scope="session")
def samconfig() -> dict[str, Any]:
    return tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
