"""The build in use: pure Python in an editable install (this suite); scripts/compiled runs it against mypyc."""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

import pytest

from tests.testkit.paths import REPO
from webhook import build

EXPECT_COMPILED = os.environ.get("VM_ADMISSION_EXPECT_COMPILED") == "1"


def _setup_module() -> object:
    spec = importlib.util.spec_from_file_location("vm_admission_setup", REPO / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not __main__: defines the helpers without running setup()
    return module


def test_the_running_build_is_the_one_this_run_expects() -> None:
    assert build.flavor() == ("mypyc" if EXPECT_COMPILED else "python")


def test_version_names_the_installed_version_and_the_running_build(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    from webhook.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"vm-admission {version('vm-admission')} (build: {build.flavor()})\n"


def test_every_hot_path_module_is_compiled_exactly_when_expected() -> None:
    files = _setup_module().hot_path_files()  # type: ignore[attr-defined]
    assert "webhook/engine.py" in files and "webhook/rules/qos.py" in files
    assert not any(f.endswith("__init__.py") for f in files)
    for file in files:
        module = importlib.import_module(file.removesuffix(".py").replace("/", "."))
        assert module.__file__ is not None
        assert module.__file__.endswith(".py") is not EXPECT_COMPILED, module.__file__


def test_editable_installs_stay_pure_python_and_other_installs_compile_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup: Any = _setup_module()
    monkeypatch.setattr(setup, "_can_compile", lambda: None)
    assert setup.wants_compile(None, ["setup.py", "editable_wheel", "--dist-info-dir", "x"]) is False
    assert setup.wants_compile(None, ["setup.py", "bdist_wheel"]) is True
    assert setup.wants_compile("auto", ["setup.py", "bdist_wheel"]) is True
    assert setup.wants_compile("0", ["setup.py", "bdist_wheel"]) is False
    assert setup.wants_compile("1", ["setup.py", "editable_wheel"]) is True
    monkeypatch.setattr(setup, "_can_compile", lambda: "no C compiler (cc/gcc)")
    assert setup.wants_compile(None, ["setup.py", "bdist_wheel"]) is False  # pure Python, and it says why
    with pytest.raises(SystemExit):
        setup.wants_compile("yes", [])


def test_with_the_switch_off_the_build_compiles_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VM_ADMISSION_COMPILE", "0")
    assert _setup_module().ext_modules() == []  # type: ignore[attr-defined]
