"""``vm-admission audit`` (docs/rules.md) on the real control plane: good and bad VMs, VMIs and launcher pods are
stored directly (no webhook is registered: these tests do not request ``e2e_server``, and put aside a
registration an earlier module left), the audit lists them
through the API server as ``vm-admission audit`` run as a process, and ``--report`` writes PolicyReports that
the vendored wg-policy CRD validates. RBAC: the CronJob's own ClusterRole is enough, and one permission less
fails with one clear line.

Nodes are cluster-wide: each test's nodes carry a pool label of its own, and the VMI that must fail the
preflight selects a pool without a CPU-manager node.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.testkit.controlplane import ControlPlane, free_port, unregister
from tests.testkit.paths import REPO

pytestmark = pytest.mark.e2e

CRD = REPO / "tests" / "data" / "policyreport-crd.yaml"
AUDIT_RBAC = REPO / "manifests" / "components" / "audit" / "audit.yaml"
POOL = "e2e.vm-admission.io/pool"
REPORTS = ("wgpolicyk8s.io", "v1alpha2")


def run_audit(cp: ControlPlane, *args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webhook.cli", "audit", "--kubeconfig", str(kubeconfig or cp.kubeconfig), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def audit_json(cp: ControlPlane, *args: str) -> tuple[int, dict[str, Any]]:
    run = run_audit(cp, "-o", "json", *args)
    assert run.returncode in (0, 1), run.stderr
    return run.returncode, json.loads(run.stdout)


def load(path: str, name: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "examples" / path).read_text())
    doc["metadata"].pop("namespace", None)
    if name:
        doc["metadata"]["name"] = name
    return doc


def launcher(name: str, sidecar_limits: bool) -> dict[str, Any]:
    """A dedicated-CPU launcher-like pod; its sidecar is Guaranteed only with ``sidecar_limits``."""
    sidecar: dict[str, Any] = {"requests": {"cpu": "100m", "memory": "64Mi"}}
    if sidecar_limits:
        sidecar["limits"] = dict(sidecar["requests"])
    whole = {"cpu": "2", "memory": "2Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"kubevirt.io": "virt-launcher"}},
        "spec": {
            "nodeSelector": {"kubevirt.io/cpumanager": "true"},
            "containers": [
                {"name": "compute", "image": "virt-launcher", "resources": {"requests": whole, "limits": whole}},
                {"name": "proxy", "image": "envoy", "resources": sidecar},
            ],
        },
    }


def plain_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
    }


class Seeder:
    def __init__(self, cp: ControlPlane) -> None:
        self.api = cp.api_client()
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def create(self, ns: str, obj: dict[str, Any]) -> None:
        if obj["kind"] == "Pod":
            self.core.create_namespaced_pod(ns, obj)
            return
        plural = {"VirtualMachine": "virtualmachines", "VirtualMachineInstance": "virtualmachineinstances"}
        self.custom.create_namespaced_custom_object("kubevirt.io", "v1", ns, plural[obj["kind"]], obj)

    def node(self, name: str, pool: str, cpumanager: bool) -> None:
        labels = {
            POOL: pool,
            "kubevirt.io/schedulable": "true",
            "kubernetes.io/hostname": name,
            "kubernetes.io/arch": "amd64",
        }
        if cpumanager:
            labels["kubevirt.io/cpumanager"] = "true"
        self.core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}})
        res = {"cpu": "32", "memory": "128Gi", "pods": "110"}
        self.core.patch_node_status(name, {"status": {"capacity": res, "allocatable": res}})

    def report(self, ns: str) -> dict[str, Any] | None:
        try:
            got: dict[str, Any] = self.custom.get_namespaced_custom_object(
                *REPORTS, ns, "policyreports", "vm-admission"
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return got


WEBHOOKS = "mutatingwebhookconfiguration,validatingwebhookconfiguration"


@pytest.fixture(scope="module")
def no_webhooks(control_plane: ControlPlane) -> Iterator[None]:
    """Our webhooks out of the way (an earlier module's session ``e2e_server`` may have registered them), so the
    bad objects get stored; put back afterwards as they were."""
    got = json.loads(control_plane.kubectl("get", WEBHOOKS, "-o", "json").stdout)
    saved = [i for i in got["items"] if i["metadata"]["name"] == "vm-admission"]
    unregister(control_plane)
    yield
    for item in saved:
        for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
            item["metadata"].pop(key, None)
    if saved:
        control_plane.kubectl(
            "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": saved})
        )


@pytest.fixture(scope="module")
def seeder(control_plane: ControlPlane, no_webhooks: None) -> Iterator[Seeder]:
    control_plane.kubectl("apply", "--server-side", "-f", str(CRD))
    control_plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/policyreports.wgpolicyk8s.io")
    s = Seeder(control_plane)
    s.node("audit-e2e-pinning", "audit-e2e", cpumanager=True)
    s.node("audit-e2e-plain", "audit-e2e-nocpu", cpumanager=False)
    yield s
    s.core.delete_collection_node(label_selector=f"{POOL} in (audit-e2e,audit-e2e-nocpu)")


EXPECTED = {
    ("VirtualMachineInstance", "fractional"): {
        ("cpu.fractional-cpu-request", "fail", "spec.domain.resources.requests.cpu"),
        ("cpu.fractional-cpu-limit", "fail", "spec.domain.resources.limits.cpu"),
    },
    ("VirtualMachineInstance", "no-cpumanager-node"): {
        ("preflight.no-cpu-manager-node", "warn", "spec.domain.cpu.dedicatedCpuPlacement"),
    },
    ("VirtualMachine", "slirp"): {
        ("interfaces.binding-count", "fail", "spec.template.spec.domain.devices.interfaces[0]"),
        ("interfaces.discontinued-binding", "fail", "spec.template.spec.domain.devices.interfaces[0].slirp"),
    },
    ("Pod", "launcher-unpinned"): {
        ("qos.not-guaranteed", "fail", "spec.containers[1].resources.limits.cpu"),
        ("qos.not-guaranteed", "fail", "spec.containers[1].resources.limits.memory"),
    },
}


def seed(s: Seeder, ns: str) -> None:
    """Good and bad objects of every kind in ``ns``."""
    s.create(ns, load("cpu/vmi-dedicated.yaml", "good"))
    s.create(ns, load("cpu/vmi-dedicated-fractional-cpu.yaml", "fractional"))
    stranded = load("cpu/vmi-dedicated.yaml", "no-cpumanager-node")
    stranded["spec"]["nodeSelector"] = {POOL: "audit-e2e-nocpu"}
    s.create(ns, stranded)
    s.create(ns, load("cpu/vm-dedicated.yaml", "good"))
    s.create(ns, load("network/vm-slirp-only.yaml", "slirp"))
    s.create(ns, launcher("launcher-pinned", sidecar_limits=True))
    s.create(ns, launcher("launcher-unpinned", sidecar_limits=False))
    s.create(ns, plain_pod("web"))


def found(doc: dict[str, Any], ns: str) -> dict[tuple[str, str], set[tuple[str, str, str]]]:
    return {
        (o["kind"], o["name"]): {(f["rule"], f["result"], f["field"]) for f in o["findings"]}
        for o in doc["objects"]
        if o["namespace"] == ns
    }


def test_audit_finds_exactly_the_bad_objects_with_rule_ids_and_fields(
    control_plane: ControlPlane, seeder: Seeder, namespace: str
) -> None:
    seed(seeder, namespace)
    code, doc = audit_json(control_plane, "-n", namespace, "--limit", "2")
    assert code == 1
    assert found(doc, namespace) == EXPECTED
    summary = doc["summary"]
    assert summary["scanned"] == {"VirtualMachine": 2, "VirtualMachineInstance": 3, "Pod": 3}
    assert summary["results"] == {"fail": 6, "warn": 1, "error": 0}
    assert summary["byNamespace"][namespace]["qos.not-guaranteed"] == {"fail": 2, "warn": 0, "error": 0}
    # --limit 2: paged lists (4 pages of VMs/VMIs/pods at least, plus the cluster view's lists)
    assert summary["apiRequests"] >= 2 + 2 + 2
    (pod,) = [o for o in doc["objects"] if o["kind"] == "Pod"]
    assert all("not pinned" in f["message"] and "'proxy'" in f["message"] for f in pod["findings"])
    assert pod["uid"] and pod["apiVersion"] == "v1"

    text = run_audit(control_plane, "-n", namespace)
    assert text.returncode == 1, text.stderr
    assert f"VirtualMachineInstance {namespace}/fractional:" in text.stdout
    assert "✗ spec.domain.resources.requests.cpu: " in text.stdout and "[cpu.fractional-cpu-request]" in text.stdout
    assert (
        "! spec.domain.cpu.dedicatedCpuPlacement: " in text.stdout and "[preflight.no-cpu-manager-node]" in text.stdout
    )
    assert f"{namespace}/good" not in text.stdout and "/web" not in text.stdout
    assert "8 objects scanned" in text.stdout and "NAMESPACE" in text.stdout
    assert text.stderr == ""  # no progress line when stderr is not a terminal

    as_yaml = run_audit(control_plane, "-n", namespace, "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout)["summary"]["results"]["fail"] == 6


def test_clean_namespace_exits_zero(control_plane: ControlPlane, seeder: Seeder, namespace: str) -> None:
    seeder.create(namespace, load("cpu/vmi-dedicated.yaml", "good"))
    seeder.create(namespace, plain_pod("web"))
    code, doc = audit_json(control_plane, "-n", namespace)
    assert code == 0 and doc["objects"] == []


def test_report_writes_policy_reports_and_a_rerun_replaces_them(
    control_plane: ControlPlane, seeder: Seeder, namespace: str
) -> None:
    seed(seeder, namespace)
    clean = f"{namespace}-clean"
    control_plane.kubectl("create", "namespace", clean)
    seeder.create(clean, plain_pod("web"))
    code, doc = audit_json(control_plane, "-A", "--report")
    assert code == 1 and namespace in doc["reports"] and clean in doc["reports"]

    report = seeder.report(namespace)
    assert report is not None
    assert report["summary"] == {"pass": 0, "fail": 6, "warn": 1, "error": 0, "skip": 0}
    by_object: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
    for r in report["results"]:
        assert r["policy"] == "vm-admission" and r["source"] == "vm-admission"
        assert r["scored"] is (r["result"] != "warn")
        assert r["timestamp"]["seconds"] > 0
        (ref,) = r["resources"]
        assert ref["namespace"] == namespace and ref["uid"] and ref["apiVersion"]
        by_object.setdefault((ref["kind"], ref["name"]), set()).add((r["rule"], r["result"], r["properties"]["field"]))
    assert by_object == EXPECTED
    empty = seeder.report(clean)
    assert empty is not None and empty["results"] == [] and empty["summary"]["fail"] == 0

    # fix one object: its results go on the next run, the others stay
    seeder.core.delete_namespaced_pod("launcher-unpinned", namespace, grace_period_seconds=0)
    seeder.create(namespace, launcher("launcher-unpinned", sidecar_limits=True))
    code, _ = audit_json(control_plane, "-n", namespace, "--report")
    assert code == 1
    report = seeder.report(namespace)
    assert report is not None
    names = {r["resources"][0]["name"] for r in report["results"]}
    assert names == {"fractional", "no-cpumanager-node", "slirp"}
    assert report["summary"]["fail"] == 4
    managers = {m["manager"] for m in report["metadata"]["managedFields"]}
    assert managers == {"vm-admission"}


def test_report_skips_a_namespace_being_deleted_with_a_note_and_does_not_count_it(
    control_plane: ControlPlane, seeder: Seeder, namespace: str
) -> None:
    # envtest runs no namespace controller: a deleted namespace keeps its objects and stays Terminating, and the
    # API server refuses new content there (403, cause NamespaceTerminating), as it does while a real one drains.
    doomed = f"{namespace}-doomed"
    control_plane.kubectl("create", "namespace", doomed)
    seeder.create(doomed, launcher("launcher-unpinned", sidecar_limits=False))
    seeder.create(namespace, launcher("launcher-unpinned", sidecar_limits=False))
    control_plane.kubectl("delete", "namespace", doomed, "--wait=false")
    code, doc = audit_json(control_plane, "-A", "--report")
    assert code == 1
    assert namespace in doc["reports"] and doomed not in doc["reports"]
    assert f"namespace {doomed} is being deleted: no PolicyReport written there" in doc["notes"]
    assert seeder.report(doomed) is None and seeder.report(namespace) is not None
    assert any(o["namespace"] == doomed for o in doc["objects"])  # still audited, only not reported


def test_unreachable_api_server_and_bad_kubeconfig_are_one_clear_line(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    closed = tmp_path / "closed.kubeconfig"
    doc = yaml.safe_load(control_plane.kubeconfig.read_text())
    doc["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    closed.write_text(yaml.safe_dump(doc))
    for kubeconfig, words in ((closed, "the API server is unreachable"), (tmp_path / "missing", "cannot load")):
        run = run_audit(control_plane, kubeconfig=kubeconfig)
        assert run.returncode == 2, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and "Traceback" not in run.stderr, run.stderr


def _bind(cp: ControlPlane, tmp_path: Path, user: str, rules: list[dict[str, Any]]) -> Path:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": user},
            "rules": rules}  # fmt: skip
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": user},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": user},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([role, binding]))
    crt, key = cp.client_cert(user)
    return cp.write_kubeconfig(
        tmp_path / f"{user}.kubeconfig", {"client-certificate": str(crt), "client-key": str(key)}
    )


def cron_job_rules() -> list[dict[str, Any]]:
    (role,) = [d for d in yaml.safe_load_all(AUDIT_RBAC.read_text()) if d and d["kind"] == "ClusterRole"]
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def test_the_cron_jobs_role_is_enough(
    control_plane: ControlPlane, seeder: Seeder, namespace: str, tmp_path: Path
) -> None:
    seed(seeder, namespace)
    kubeconfig = _bind(control_plane, tmp_path, "audit-e2e-cronjob", cron_job_rules())
    run = run_audit(control_plane, "-A", "--report", "-o", "json", kubeconfig=kubeconfig)
    assert run.returncode == 1, run.stderr
    assert found(json.loads(run.stdout), namespace) == EXPECTED
    report = seeder.report(namespace)
    assert report is not None and report["summary"]["fail"] == 6


@pytest.mark.parametrize(
    ("resource", "verb", "words"),
    [
        ("pods", "list", ["cannot list pods in all namespaces", "403"]),
        ("virtualmachineinstances", "list", ["cannot list virtualmachineinstances.kubevirt.io", "403"]),
        ("nodes", "list", ["nodes", "403"]),
        ("policyreports", "list", ["cannot list policyreports.wgpolicyk8s.io in all namespaces", "403"]),
        ("policyreports", "patch", ["cannot apply (patch) policyreports.wgpolicyk8s.io", "403"]),
        ("policyreports", "create", ["cannot apply (patch) policyreports.wgpolicyk8s.io", "403"]),
    ],
)
def test_one_permission_less_fails_with_one_clear_line(
    control_plane: ControlPlane,
    seeder: Seeder,
    namespace: str,
    tmp_path: Path,
    resource: str,
    verb: str,
    words: list[str],
) -> None:
    seed(seeder, namespace)
    rules = copy.deepcopy(cron_job_rules())
    for rule in rules:
        if resource in rule["resources"] and verb in rule["verbs"]:
            if len(rule["resources"]) > 1:
                rule["resources"].remove(resource)
                rest = [v for v in rule["verbs"] if v != verb]
                if rest:
                    rules.append({**rule, "resources": [resource], "verbs": rest})
            else:
                rule["verbs"].remove(verb)
            break
    else:
        raise AssertionError(f"the CronJob's role does not grant {verb} {resource}")
    user = f"audit-e2e-no-{verb}-{resource}"
    kubeconfig = _bind(control_plane, tmp_path, user, rules)
    run = run_audit(control_plane, "-A", "--report", kubeconfig=kubeconfig)
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert lines[0].startswith("vm-admission audit: ")
    for word in words:
        assert word in lines[0], lines[0]
