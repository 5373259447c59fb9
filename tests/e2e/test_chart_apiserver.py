"""`helm template | kubectl apply --dry-run=server` against the real API server, for every values profile."""

from __future__ import annotations

import pytest
import yaml

from tests.packaging.test_chart import PROFILES
from tests.testkit.chart import render_chart
from tests.testkit.controlplane import ControlPlane

pytestmark = pytest.mark.e2e

# Kinds of other projects' CRDs, which this control plane does not have (cert-manager, Prometheus Operator).
FOREIGN_GROUPS = ("cert-manager.io/", "monitoring.coreos.com/")


@pytest.mark.parametrize("profile", PROFILES)
def test_rendered_chart_is_accepted_by_the_api_server(profile: str, control_plane: ControlPlane) -> None:
    control_plane.kubectl("create", "namespace", "vm-admission", check=False)
    docs = [d for d in render_chart(profile) if not str(d.get("apiVersion", "")).startswith(FOREIGN_GROUPS)]
    assert docs
    result = control_plane.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", input=yaml.safe_dump_all(docs), check=False
    )
    assert result.returncode == 0, result.stderr
    applied = [line for line in result.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(applied) == len(docs), result.stdout
