"""The Helm chart rendered by the pinned helm (``tests.testkit.tools``): ``render_chart`` and its values profiles."""

from __future__ import annotations

import copy
import functools
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.testkit.paths import REPO
from tests.testkit.tools import tool

CHART = REPO / "charts" / "vm-admission"
RELEASE, RELEASE_NAMESPACE = "vm-admission", "vm-admission"


def helm(*args: str, timeout: float = 120) -> str:
    """Run the pinned helm (tests/testkit/tools.py: skips locally, fails under CI=true when it is not built)."""
    run = subprocess.run([tool("helm"), *args], capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"helm {' '.join(args)}:\n{run.stderr}"
    return run.stdout


def chart_profile(values_profile: str) -> Path:
    """``charts/vm-admission/ci/<profile>-values.yaml`` (the profiles helm lint and the tests render)."""
    path = CHART / "ci" / f"{values_profile}-values.yaml"
    assert path.is_file(), f"no values profile {values_profile!r}: {sorted(p.name for p in path.parent.iterdir())}"
    return path


@functools.cache
def _render(args: tuple[str, ...]) -> str:
    return helm("template", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE, *args)


def render_chart(values_profile: str | None = "default", *args: str) -> list[dict[str, Any]]:
    """The objects ``helm template vm-admission charts/vm-admission -n vm-admission -f ci/<profile>-values.yaml``
    renders (``None``: the chart's own defaults; ``args`` are more helm flags, e.g. ``--set``), hooks included.
    Reusable for ``helm template | kubectl apply --dry-run=server`` against a control plane."""
    flags = ("--values", str(chart_profile(values_profile))) if values_profile else ()
    text = _render((*flags, *args))
    return [copy.deepcopy(d) for d in yaml.safe_load_all(text) if d is not None]
