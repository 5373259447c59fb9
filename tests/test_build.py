"""The build in use: pure Python by default; scripts/compiled runs this suite against the mypyc build."""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

import pytest

from webhook import build

ROOT = Path(__file__).resolve().parent.parent
EXPECT_COMPILED = os.environ.get("VM_ADMISSION_EXPECT_COMPILED") == "1"


def _setup_module() -> object:
    spec = importlib.util.spec_from_file_location("vm_admission_setup", ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not __main__: defines the helpers without running setup()
    return module


def test_the_running_build_is_the_one_this_run_expects() -> None:
    assert build.flavor() == ("mypyc" if EXPECT_COMPILED else "python")


def test_every_hot_path_module_is_compiled_exactly_when_expected() -> None:
    files = _setup_module().hot_path_files()  # type: ignore[attr-defined]
    assert "webhook/engine.py" in files and "webhook/rules/qos.py" in files
    assert not any(f.endswith("__init__.py") for f in files)
    for file in files:
        module = importlib.import_module(file.removesuffix(".py").replace("/", "."))
        assert module.__file__ is not None
        assert module.__file__.endswith(".py") is not EXPECT_COMPILED, module.__file__


def test_without_the_switch_the_build_compiles_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VM_ADMISSION_COMPILE", raising=False)
    assert _setup_module().ext_modules() == []  # type: ignore[attr-defined]
