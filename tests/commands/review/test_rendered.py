"""``kustomize build`` and ``helm template`` output piped to ``vm-admission review -``: the real tools'
streams (``# Source:`` comments, ``---`` separators, reordered keys), positions counted in the stream."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.testkit.tools import tool

VM_ADMISSION = Path(sys.executable).parent / "vm-admission"
KUBECTL = shutil.which("kubectl")

VMI = """\
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: half
spec:
  domain:
    cpu:
      dedicatedCpuPlacement: true
    resources:
      requests: {cpu: 1500m, memory: 1Gi}
      limits: {cpu: 1500m, memory: 1Gi}
    devices: {}
"""


def review_stdin(stream: str, *args: str) -> tuple[int, list[dict[str, Any]]]:
    run = subprocess.run(
        [str(VM_ADMISSION), "review", "-", "-o", "json", *args],
        input=stream,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode in (0, 1, 2), run.stderr
    return run.returncode, json.loads(run.stdout)


def assert_positions_point_at_their_keys(stream: str, results: list[dict[str, Any]]) -> int:
    lines = stream.splitlines()
    seen = 0
    for result in results:
        for cause in result.get("causes", []):
            key = cause["field"].rsplit(".", 1)[-1]
            line = lines[cause["line"] - 1]
            assert line[cause["column"] - 1 :].startswith(key), (cause, line)
            assert cause["file"] == "<stdin>"
            seen += 1
    return seen


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kustomize_build_piped_to_review(tmp_path: Path) -> None:
    (tmp_path / "vmi.yaml").write_text(VMI)
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n")
    (tmp_path / "kustomization.yaml").write_text(
        textwrap.dedent(
            """\
            namespace: prod
            commonLabels: {team: vms}
            resources: [cm.yaml, vmi.yaml]
            """
        )
    )
    stream = subprocess.run(
        [str(KUBECTL), "kustomize", str(tmp_path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    code, results = review_stdin(stream)
    assert code == 1
    assert [(r["kind"], r["namespace"], r["verdict"]) for r in results] == [
        ("ConfigMap", "prod", "admitted"),
        ("VirtualMachineInstance", "prod", "denied"),
    ]
    assert assert_positions_point_at_their_keys(stream, results) == 2
    assert results[1]["document"] == 2


def test_helm_template_piped_to_review(tmp_path: Path) -> None:
    helm = tool("helm")
    chart = tmp_path / "vms"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: vms\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("cpu: 1500m\n")
    (chart / "templates" / "vmi.yaml").write_text(VMI.replace("1500m", "{{ .Values.cpu }}"))
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata: {a: b}\n"
    )
    stream = subprocess.run(
        [helm, "template", "rel", str(chart)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "# Source: vms/templates/vmi.yaml" in stream
    code, results = review_stdin(stream)
    assert code == 1
    assert assert_positions_point_at_their_keys(stream, results) == 2
    code, results = review_stdin(stream.replace("1500m", "2"))
    assert code == 0
