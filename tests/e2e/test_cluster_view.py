"""The cluster view and preflight (docs/cluster-view.md) on the real control plane: Nodes and the KubeVirt CR are
created and patched through the API (status via the status subresource); the webhook watches them with its
own credentials and answers the API server's admission calls.

Nodes are cluster-wide, so each test gives its nodes a pool label of its own and its VMIs select that pool.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.testkit.controlplane import ControlPlane, register
from tests.testkit.server import ServerProcess

pytestmark = pytest.mark.e2e

POOL = "e2e.vm-admission.io/pool"
GPU = "devices.kubevirt.io/10de_1eb8"
KV_NS = "kubevirt"


def eventually(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Cluster:
    """Creates and patches Nodes and the KubeVirt CR through the API server."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self.api = cp.api_client()
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def node(
        self,
        name: str,
        pool: str,
        *,
        cpumanager: str | None = "true",
        cpu: str = "16",
        memory: str = "64Gi",
        extra: dict[str, str] | None = None,
        taints: list[dict[str, str]] | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        node_labels = {
            POOL: pool,
            "kubevirt.io/schedulable": "true",
            "kubernetes.io/hostname": name,
            "kubernetes.io/arch": "amd64",  # the kubelet sets it; KubeVirt selects it from the (defaulted) architecture
            **(labels or {}),
        }
        if cpumanager is not None:
            node_labels["kubevirt.io/cpumanager"] = node_labels["cpumanager"] = cpumanager
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": node_labels}}
        if taints:
            body["spec"] = {"taints": taints}
        self.core.create_node(body)
        resources = {"cpu": cpu, "memory": memory, "pods": "110", **(extra or {})}
        self.core.patch_node_status(name, {"status": {"capacity": resources, "allocatable": resources}})

    def delete_nodes(self, pool: str) -> None:
        self.core.delete_collection_node(label_selector=f"{POOL}={pool}")

    def kubevirt(self, gates: list[str], permitted: list[str] | None = None, arch: str = "amd64") -> None:
        """Create or replace the KubeVirt CR (with status.phase, as virt-operator would set it)."""
        config: dict[str, Any] = {"developerConfiguration": {"featureGates": gates}}
        if permitted is not None:
            config["permittedHostDevices"] = {
                "pciHostDevices": [
                    {"pciVendorSelector": "10DE:1EB8", "resourceName": r, "externalResourceProvider": True}
                    for r in permitted
                ]
            }
        body = {
            "apiVersion": "kubevirt.io/v1",
            "kind": "KubeVirt",
            "metadata": {"name": "kubevirt", "namespace": KV_NS},
            "spec": {"configuration": config},
        }
        args = ("kubevirt.io", "v1", KV_NS, "kubevirts")
        try:
            current = self.custom.get_namespaced_custom_object(*args, "kubevirt")
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.custom.replace_namespaced_custom_object(*args, "kubevirt", body)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.custom.create_namespaced_custom_object(*args, body)
        status = {"status": {"phase": "Deployed", "defaultArchitecture": arch}}
        self.custom.patch_namespaced_custom_object_status(*args, "kubevirt", status)


@pytest.fixture(scope="module")
def cluster(control_plane: ControlPlane) -> Cluster:
    control_plane.kubectl("create", "namespace", KV_NS, check=False)
    c = Cluster(control_plane)
    c.kubevirt(["CPUManager", "HostDevices"], permitted=[GPU])
    return c


class ViewServer:
    """The webhook with the cluster view on, registered with the API server; ``enforce()`` / ``warn()``
    rewrite its config (picked up by the reload poll)."""

    def __init__(
        self,
        cp: ControlPlane,
        base: Path,
        sync_timeout: float = 30,
        kubeconfig: Path | None = None,
        crd_retry: float = 30,
    ):
        self.cp, self.config = cp, base / "config.yaml"
        self.sync_timeout, self.crd_retry = sync_timeout, crd_retry
        self.write("warn")
        self.server = ServerProcess(
            base / "certs",
            ["--shutdown-delay", "0", "--reload-interval", "0.2", "--config", str(self.config),
             "--kubeconfig", str(kubeconfig or cp.kubeconfig)],
        )  # fmt: skip

    def write(self, enforcement: str) -> None:
        doc = {
            "cluster": {
                "watch": True,
                "enforcement": enforcement,
                "syncTimeout": self.sync_timeout,
                "crdRetry": self.crd_retry,
            }
        }
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(doc))
        tmp.replace(self.config)

    def set(self, enforcement: str) -> None:
        before = self.server.metric("vm_admission_config_reloads_total", result="success")
        self.write(enforcement)
        eventually(
            lambda: self.server.metric("vm_admission_config_reloads_total", result="success") > before,
            what="config reload",
        )


@pytest.fixture(scope="module")
def view(
    tmp_path_factory: pytest.TempPathFactory, control_plane: ControlPlane, cluster: Cluster, e2e_server: ServerProcess
) -> Iterator[ViewServer]:
    vs = ViewServer(control_plane, tmp_path_factory.mktemp("view"))
    try:
        vs.server.wait_ready()
        assert vs.server.metric("vm_admission_cluster_synced") == 1
        register(control_plane, vs.server)
        yield vs
    finally:
        vs.server.stop()
        register(control_plane, e2e_server)


def vmi(pool: str, *, cores: int = 4, memory: str = "4Gi", dedicated: bool = True, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeSelector": {POOL: pool},
        "domain": {
            "cpu": {"cores": cores, "dedicatedCpuPlacement": dedicated},
            "resources": {"requests": {"memory": memory}, "limits": {"memory": memory}},
            "devices": {},
        },
    }
    obj = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"name": f"vmi-{pool}"},
        "spec": spec,
    }
    for path, value in extra.items():
        target = obj
        *parents, leaf = path.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = value
    return obj


def dry_run(cp: ControlPlane, ns: str, obj: dict[str, Any]) -> tuple[int, list[str], str]:
    """kubectl apply --dry-run=server: (exit code, warning lines, error text), as a user sees them."""
    result = cp.kubectl("apply", "--dry-run=server", "-n", ns, "-f", "-", input=json.dumps(obj), check=False)
    warnings = [line.removeprefix("Warning: ") for line in result.stderr.splitlines() if line.startswith("Warning: ")]
    errors = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("Warning: "))
    return result.returncode, warnings, errors


def causes(cp: ControlPlane, ns: str, obj: dict[str, Any]) -> list[dict[str, str]]:
    """The 422 causes the client receives for a create (fails the test when it is admitted)."""
    api = client.CustomObjectsApi(cp.api_client())
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachineinstances", obj, dry_run="All")
    assert err.value.status == 422, err.value.body
    found: list[dict[str, str]] = json.loads(err.value.body)["details"]["causes"]
    return found


def preflight(warnings: list[str], rule: str) -> list[str]:
    return [w for w in warnings if w.startswith(f"preflight (preflight.{rule})")]


# ------------------------------------------------------------------------- the node findings (warn or enforce)


CASES = {
    # rule: (nodes of the pool, the VMI, the field, words the message must hold)
    "no-cpu-manager-node": (
        [dict(cpumanager="false")],
        dict(),
        "spec.domain.cpu.dedicatedCpuPlacement",
        ["kubevirt.io/cpumanager=true", "1 carry the label set to false"],
    ),
    "not-enough-cpus": (
        [dict(cpu="8"), dict(cpu="12")],
        dict(cores=16),
        "spec.domain.cpu.dedicatedCpuPlacement",
        ["the largest has 12 allocatable CPUs", "needs 16 pinned CPUs"],
    ),
    "not-enough-devices": (
        [dict()],
        {"metadata.annotations": {"vm-admission.io/passthrough": "10de:1eb8=2"}},
        "metadata.annotations.vm-admission.io/passthrough",
        [f"advertises {GPU}", "needs 2"],
    ),
    "not-enough-memory": (
        [dict(memory="8Gi")],
        dict(memory="16Gi"),
        "spec.domain.resources.requests.memory",
        ["has 8Gi allocatable memory", "needs 16Gi"],
    ),
}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_preflight_warns_by_default_and_denies_when_enforced(
    rule: str, view: ViewServer, cluster: Cluster, control_plane: ControlPlane, namespace: str
) -> None:
    nodes, spec_kw, field, words = CASES[rule]
    pool = f"pool-{rule.lower()}"
    for i, kw in enumerate(nodes):
        cluster.node(f"{pool}-{i}", pool, **kw)
    obj = vmi(pool, **spec_kw)
    try:
        # warn (the default): admitted, with a warning naming the field and the numbers
        def warned() -> bool:
            code, warnings, errors = dry_run(control_plane, namespace, obj)
            assert code == 0, errors
            return bool(preflight(warnings, rule))

        eventually(warned, what=f"{rule} warning")
        _, warnings, _ = dry_run(control_plane, namespace, obj)
        [warning] = preflight(warnings, rule)
        assert field in warning and all(w in warning for w in words), warning
        # enforce: a 422 cause on the same field
        view.set("enforce")
        try:
            got = [c for c in causes(control_plane, namespace, obj) if c["field"] == field]
            assert got and all(w in got[0]["message"] for w in words), got
        finally:
            view.set("warn")
    finally:
        cluster.delete_nodes(pool)


def test_a_vmi_that_fits_is_admitted_silently(
    view: ViewServer, cluster: Cluster, control_plane: ControlPlane, namespace: str
) -> None:
    pool = "pool-fits"
    cluster.node(f"{pool}-0", pool, extra={GPU: "2", "hugepages-1Gi": "8Gi"})
    obj = vmi(pool, **{"metadata.annotations": {"vm-admission.io/passthrough": "10de:1eb8"}})
    try:
        view.set("enforce")
        eventually(lambda: dry_run(control_plane, namespace, obj)[:2] == (0, []), what="silent admission")
    finally:
        view.set("warn")
        cluster.delete_nodes(pool)


def test_a_node_added_later_makes_the_same_vmi_fit_within_a_second(
    view: ViewServer, cluster: Cluster, control_plane: ControlPlane, namespace: str
) -> None:
    pool = "pool-later"
    obj = vmi(pool, cores=32)
    cluster.node(f"{pool}-small", pool, cpu="8")
    try:
        eventually(
            lambda: bool(preflight(dry_run(control_plane, namespace, obj)[1], "not-enough-cpus")),
            what="not-enough-cpus warning",
        )
        cluster.node(f"{pool}-big", pool, cpu="64")
        seen = eventually(lambda: not dry_run(control_plane, namespace, obj)[1], timeout=5, what="fit")
        assert seen < 1.5  # kubectl itself takes part of this
    finally:
        cluster.delete_nodes(pool)


# ------------------------------------------------------------------------------- the KubeVirt CR (always causes)


def test_device_missing_from_permitted_host_devices_is_denied_k5(
    view: ViewServer, cluster: Cluster, control_plane: ControlPlane, namespace: str
) -> None:
    pool = "pool-k5"
    cluster.node(f"{pool}-0", pool, extra={"nvidia.com/A100": "1", GPU: "1"})
    obj = vmi(pool, **{"spec.domain.devices": {"hostDevices": [{"name": "a100", "deviceName": "nvidia.com/A100"}]}})
    try:
        got = causes(control_plane, namespace, obj)
        [k5] = [c for c in got if c["field"] == "spec.domain.devices.hostDevices[0].deviceName"]
        assert k5["reason"] == "FieldValueNotSupported"
        assert "nvidia.com/A100" in k5["message"] and "permittedHostDevices" in k5["message"]
    finally:
        cluster.delete_nodes(pool)


def test_removing_the_host_devices_gate_makes_k6_fire(
    view: ViewServer, cluster: Cluster, control_plane: ControlPlane, namespace: str
) -> None:
    pool = "pool-k6"
    cluster.node(f"{pool}-0", pool, extra={GPU: "1"})
    obj = vmi(pool, **{"metadata.annotations": {"vm-admission.io/passthrough": "10de:1eb8"}})
    try:
        assert dry_run(control_plane, namespace, obj)[0] == 0
        cluster.kubevirt(["CPUManager"], permitted=[GPU])

        def denied() -> bool:
            code, _, errors = dry_run(control_plane, namespace, obj)
            return code != 0 and "HostDevices feature gate" in errors

        eventually(denied, what="host-devices-gate-off denial")
        [k6] = [c for c in causes(control_plane, namespace, obj) if c["field"] == "spec.domain.devices.hostDevices"]
        assert "featureGates" in k6["message"]
    finally:
        cluster.kubevirt(["CPUManager", "HostDevices"], permitted=[GPU])
        cluster.delete_nodes(pool)


def test_cpu_manager_gate_off_is_named_in_k1(
    view: ViewServer, cluster: Cluster, control_plane: ControlPlane, namespace: str
) -> None:
    pool = "pool-gate"
    cluster.node(f"{pool}-0", pool, cpumanager="false")
    cluster.kubevirt(["HostDevices"], permitted=[GPU])
    try:

        def gate_named() -> bool:
            warnings = preflight(dry_run(control_plane, namespace, vmi(pool))[1], "no-cpu-manager-node")
            return bool(warnings) and "CPUManager feature gate" in warnings[0]

        eventually(gate_named, what="no-cpu-manager-node naming the CPUManager gate")
    finally:
        cluster.kubevirt(["CPUManager", "HostDevices"], permitted=[GPU])
        cluster.delete_nodes(pool)


# -------------------------------------------------------------------------------------------- faults


def test_the_view_survives_an_api_server_restart_and_sees_what_changed(
    view: ViewServer, cluster: Cluster, control_plane: ControlPlane, namespace: str
) -> None:
    pool = "pool-restart"
    cluster.node(f"{pool}-small", pool, cpu="4")
    obj = vmi(pool, cores=8)
    errors = view.server.metric("vm_admission_cluster_watch_restarts_total", kind="Node", reason="error")
    try:
        eventually(
            lambda: bool(preflight(dry_run(control_plane, namespace, obj)[1], "not-enough-cpus")),
            what="not-enough-cpus warning",
        )
        control_plane.stop_apiserver()
        # While the API server is down a review never waits on it: our answers stay fast.
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "down-1",
                "kind": {"group": "kubevirt.io", "version": "v1", "kind": "VirtualMachineInstance"},
                "operation": "CREATE",
                "object": obj,
            },
        }
        started = time.monotonic()
        answer = view.server.post("/validate", review).json()["response"]
        assert time.monotonic() - started < 0.5
        assert any("preflight.not-enough-cpus" in w for w in answer.get("warnings", []))  # the last view still serves
        time.sleep(1.5)
        control_plane.start_apiserver()
        cluster.node(f"{pool}-big", pool, cpu="32")  # changed while our watch was broken
        eventually(lambda: not dry_run(control_plane, namespace, obj)[1], timeout=30, what="recovered view")
        assert view.server.metric("vm_admission_cluster_watch_restarts_total", kind="Node", reason="error") > errors
        assert view.server.metric("vm_admission_cluster_synced") == 1
    finally:
        cluster.delete_nodes(pool)


def test_no_api_server_at_start_ready_after_sync_timeout_with_preflight_off(
    tmp_path: Path, control_plane: ControlPlane
) -> None:
    dead = copy.deepcopy(yaml.safe_load(control_plane.kubeconfig.read_text()))
    dead["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"  # nothing listens there
    kubeconfig = tmp_path / "dead-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(dead))
    vs = ViewServer(control_plane, tmp_path, sync_timeout=2, kubeconfig=kubeconfig)
    try:
        started = time.monotonic()
        vs.server.wait_ready(timeout=20)
        assert time.monotonic() - started >= 1.5  # it waited for the sync, boundedly
        assert vs.server.metric("vm_admission_cluster_synced") == 0
        assert "cluster view not synced; serving without preflight" in vs.server.log
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u",
                "kind": {"group": "kubevirt.io", "version": "v1", "kind": "VirtualMachineInstance"},
                "operation": "CREATE",
                "object": vmi("nowhere", cores=64),
            },
        }
        answer = vs.server.post("/validate", review).json()["response"]
        assert answer["allowed"] is True and not any("preflight" in w for w in answer.get("warnings", []))
    finally:
        vs.server.stop()


# ---------------------------------------------------------------------- the reflector, in process


class Recorder:
    """An Observer that keeps what the view reported."""

    def __init__(self) -> None:
        self.restarts: list[tuple[str, str]] = []
        self.synced: list[bool] = []

    def cluster_synced(self, synced: bool) -> None:
        self.synced.append(synced)

    def cluster_objects(self, kind: str, count: int) -> None:
        pass

    def cluster_watch_restart(self, kind: str, reason: str) -> None:
        self.restarts.append((kind, reason))

    def cluster_event(self, kind: str) -> None:
        pass


def test_paged_list_then_watch_and_a_410_relists(cluster: Cluster, control_plane: ControlPlane) -> None:
    from webhook.cluster.view import ClusterView

    pool = "pool-pages"
    for i in range(5):
        cluster.node(f"{pool}-{i}", pool, cpu="8")
    recorder = Recorder()
    view = ClusterView(control_plane.api_client(), observer=recorder, page_size=2, watch_timeout=1)
    view.start()
    try:
        assert view.wait_synced(10)
        mine = lambda: [c for c in view.snapshot.node_classes if c.labels.get(POOL) == pool]  # noqa: E731
        [cls] = mine()  # five identical nodes, listed over three pages, folded into one class
        assert cls.count == 5 and cls.hostnames == {f"{pool}-{i}" for i in range(5)}
        cluster.core.patch_node_status(f"{pool}-0", {"status": {"allocatable": {"cpu": "4"}}})
        eventually(lambda: sorted(c.count for c in mine()) == [1, 4], what="the patched node in a class of its own")
        eventually(lambda: (NODE_KIND, "timeout") in recorder.restarts, what="a routine watch timeout")
        cluster.core.delete_node(f"{pool}-1")
        eventually(lambda: sum(c.count for c in mine()) == 4, what="a delete")
        assert view.snapshot.synced and recorder.synced == [True]
        assert not [r for r in recorder.restarts if r[1] != "timeout"]
    finally:
        view.stop()
        cluster.delete_nodes(pool)


def test_a_watch_that_expires_410_relists(tmp_path: Path) -> None:
    """Without the watch cache the API server passes etcd's compaction through: resuming a watch from a
    compacted resourceVersion is 410 Gone, and the view relists (and sees what changed)."""
    import urllib.request

    from tests.testkit.controlplane import find_assets
    from webhook.cluster.view import ClusterView

    with ControlPlane(find_assets(), tmp_path / "cp", extra_apiserver_args=("--watch-cache=false",)) as cp:
        c = Cluster(cp)
        c.node("old-0", "expiry")
        recorder = Recorder()
        view = ClusterView(cp.api_client(), observer=recorder, watch_timeout=1)
        view.start()
        try:
            assert view.wait_synced(10)
            stale = view._reflectors[0].resource_version
            c.node("new-0", "expiry")
            etcd = f"http://127.0.0.1:{cp.etcd_port}/v3"
            head = json.load(urllib.request.urlopen(urllib.request.Request(f"{etcd}/kv/range", data=b'{"key":"AA=="}')))
            compact = json.dumps({"revision": head["header"]["revision"], "physical": True}).encode()
            urllib.request.urlopen(urllib.request.Request(f"{etcd}/kv/compaction", data=compact)).read()

            def expired() -> bool:  # the next resume (every second) starts from the compacted version
                view._reflectors[0].resource_version = stale
                return (NODE_KIND, "expired") in recorder.restarts

            eventually(expired, what="410 Gone")
            eventually(lambda: view.snapshot.node_count == 2, what="the relist")
            assert view.snapshot.synced
        finally:
            view.stop()


NODE_KIND = "Node"
