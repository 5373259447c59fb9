"""The pinned CLI tools the tests run (helm, promtool), built by ``scripts/tools`` into
``~/.cache/vm-admission/tools`` (``VM_ADMISSION_CACHE`` moves it).

``tool(name)`` gives the binary's path. A missing tool skips the test with a one-line reason locally; under
``CI=true`` it fails instead, so CI can never pass by skipping (``.ci/run`` builds the tools first).
``VM_ADMISSION_TOOLS_DIR`` points elsewhere (``scripts/compiled`` runs the tests from a scratch copy).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.testkit.paths import REPO

VERSIONS = {
    m.group(1): m.group(2)
    for m in re.finditer(r"^([A-Z_]+)=(\S+)$", (REPO / "scripts" / "tool-versions").read_text(), flags=re.MULTILINE)
}
PINNED = {"helm": VERSIONS["HELM_VERSION"], "promtool": VERSIONS["PROMTOOL_VERSION"]}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def tools_dir() -> Path:
    cache = (
        os.environ.get("VM_ADMISSION_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vm-admission"
    )
    return Path(os.environ.get("VM_ADMISSION_TOOLS_DIR") or Path(cache) / "tools")


def tool(name: str) -> str:
    """The path of the pinned ``name``; skip (fail under CI=true) when it has not been built."""
    path = tools_dir() / f"{name}-{PINNED[name]}" / name
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    reason = f"{name} {PINNED[name]} is not built: run scripts/tools"
    if in_ci():
        pytest.fail(f"{reason} (CI=true: tools must not be skipped)")
    pytest.skip(reason)


def require(reason: str) -> None:
    """Skip with ``reason`` locally, fail under CI=true (for prerequisites other than the pinned tools)."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: must not be skipped)")
    pytest.skip(reason)
