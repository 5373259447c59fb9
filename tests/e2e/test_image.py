"""The container image against the real API server (envtest): its ``serve``, registered by our own
``vm-admission webhook-config``, mutates a launcher pod; the Helm chart's audit CronJob command runs in it.

The image comes from ``scripts/image`` (``VM_ADMISSION_IMAGE``, ``tests/testkit/container.py``); without it these skip
with one line, under ``CI=true`` they fail. Both run with ``buildah run`` on the host's network, where the API
server and the webhook reach each other on 127.0.0.1.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e import test_audit
from tests.e2e.test_apiserver_admission import PASSTHROUGH, containers, create_pod, launcher_pod
from tests.e2e.test_audit import EXPECTED, Seeder, _bind, cron_job_rules, seed
from tests.packaging.test_image import start_chart_server
from tests.testkit.container import Container
from tests.testkit.controlplane import ControlPlane, register, unregister
from tests.testkit.paths import REPO
from tests.testkit.server import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.image]

# the audit tests' fixtures: our webhooks out of the way (put back after this module), the seeded objects
no_webhooks = test_audit.no_webhooks
seeder = test_audit.seeder

AUDIT_TEMPLATE = REPO / "charts" / "vm-admission" / "templates" / "audit.yaml"


def audit_command() -> list[str]:
    """The audit container's ``command`` in the chart's CronJob template."""
    match = re.search(r"^\s+command: (\[.*\])$", AUDIT_TEMPLATE.read_text(), flags=re.MULTILINE)
    assert match, "no command: [...] line in the chart's audit.yaml"
    command: list[str] = yaml.safe_load(match.group(1))
    return command


def inline_kubeconfig(source: Path, target: Path) -> Path:
    """``source`` with its certificate files inlined (``*-data``), so one mounted file is the whole kubeconfig."""
    doc = yaml.safe_load(source.read_text())
    files = [(c["cluster"], "certificate-authority") for c in doc["clusters"]]
    files += [(u["user"], key) for u in doc["users"] for key in ("client-certificate", "client-key")]
    for entry, key in files:
        if key in entry:
            entry[f"{key}-data"] = base64.b64encode(Path(entry.pop(key)).read_bytes()).decode()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(doc))
    target.chmod(0o644)
    return target


@pytest.fixture
def image_server(
    container_image: str, control_plane: ControlPlane, no_webhooks: None, tmp_path: Path
) -> Iterator[ServerProcess]:
    """The image's ``serve`` (the chart's arguments, a mounted cert dir), registered for one test in place of
    any other registration (``no_webhooks`` puts that back after this module)."""
    server, container = start_chart_server(container_image, tmp_path)
    try:
        register(control_plane, server)
        yield server
    finally:
        unregister(control_plane)
        server.stop()
        container.close()


def test_the_images_serve_makes_a_launcher_pod_guaranteed(
    container_image: str, api: Any, image_server: ServerProcess, namespace: str
) -> None:
    pod = create_pod(api, namespace, launcher_pod())
    assert pod["status"]["qosClass"] == "Guaranteed"
    for name, c in containers(pod).items():
        res = c["resources"]
        assert res["requests"]["cpu"] == res["limits"]["cpu"], name
        assert res["requests"]["memory"] == res["limits"]["memory"], name
    compute = containers(pod)["compute"]["resources"]
    assert compute["requests"][PASSTHROUGH] == compute["limits"][PASSTHROUGH] == "1"
    assert image_server.metric("vm_admission_requests_total", webhook="mutate", kind="Pod", operation="CREATE",
                               verdict="patched") >= 1  # fmt: skip


def test_the_charts_audit_cronjob_command_runs_in_the_image(
    container_image: str, control_plane: ControlPlane, seeder: Seeder, namespace: str, tmp_path: Path
) -> None:
    """The CronJob's command as the chart writes it, with the CronJob role's rights through a mounted kubeconfig
    (in the cluster its ServiceAccount token): findings exit 1 inside, which the command turns into success."""
    seed(seeder, namespace)
    kubeconfig = _bind(control_plane, tmp_path, "image-audit-cronjob", cron_job_rules())
    mounted = inline_kubeconfig(kubeconfig, tmp_path / "kube" / "config")
    container = Container(container_image)
    try:
        run = container.run(audit_command(), volumes={mounted.parent: "/kube"},
                            env={"KUBECONFIG": "/kube/config"}, timeout=180)  # fmt: skip
    finally:
        container.close()
    assert run.returncode == 0, (run.stdout, run.stderr)
    assert (
        f"VirtualMachineInstance {namespace}/fractional:" in run.stdout and "[cpu.fractional-cpu-request]" in run.stdout
    )
    report = seeder.report(namespace)
    assert report is not None and report["summary"]["fail"] == 6
    assert {(r["resources"][0]["kind"], r["resources"][0]["name"]) for r in report["results"]} == set(EXPECTED)
