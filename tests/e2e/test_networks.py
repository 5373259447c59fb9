"""Secondary networks as devices (docs/networks.md) on the real control plane: the NAD CRD (vendored) and NADs
created through the API, the webhook's view watching them, launcher pods admitted by the API server with their
VFs, missing NADs, VF capacity, and a real pod whose networks annotation is edited with ``kubectl annotate``.

The tests run in file order: the first starts the view before the NAD CRD exists and installs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.e2e.test_apiserver_admission import create_custom, create_pod, denial
from tests.e2e.test_audit import _bind, cron_job_rules, run_audit
from tests.e2e.test_cluster_view import Cluster, ViewServer, dry_run, eventually
from tests.testkit.controlplane import ControlPlane, register
from tests.testkit.paths import REPO
from tests.testkit.server import ServerProcess

pytestmark = pytest.mark.e2e

NAD_CRD = REPO / "tests" / "data" / "network-attachment-definition-crd.yaml"
NAD_ARGS = ("k8s.cni.cncf.io", "v1")
VF = "intel.com/sriov_vf"
NETWORKS = "k8s.v1.cni.cncf.io/networks"
FIELD = "metadata.annotations.k8s.v1.cni.cncf.io/networks"
KVM = {"devices.kubevirt.io/kvm": "1k"}


@pytest.fixture(scope="module")
def cluster(control_plane: ControlPlane) -> Cluster:
    return Cluster(control_plane)


@pytest.fixture(scope="module")
def nets(
    tmp_path_factory: pytest.TempPathFactory, control_plane: ControlPlane, cluster: Cluster, e2e_server: ServerProcess
) -> Iterator[ViewServer]:
    """The webhook with the cluster view on; a missing CRD is looked for again every half second."""
    ns = ViewServer(control_plane, tmp_path_factory.mktemp("nets"), crd_retry=0.5)
    try:
        ns.server.wait_ready()
        register(control_plane, ns.server)
        yield ns
    finally:
        ns.server.stop()
        register(control_plane, e2e_server)


def install_crd(cp: ControlPlane) -> None:
    cp.kubectl("apply", "--server-side", "-f", str(NAD_CRD))
    cp.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/network-attachment-definitions.k8s.cni.cncf.io"
    )


def make_nad(api: Any, ns: str, name: str, resource: str | None = VF, cni: str = "sriov") -> None:
    meta: dict[str, Any] = {"name": name}
    if resource is not None:
        meta["annotations"] = {"k8s.v1.cni.cncf.io/resourceName": resource}
    body = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": meta,
        "spec": {"config": json.dumps({"cniVersion": "1.0.0", "name": name, "type": cni, "vlan": 10})},
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(*NAD_ARGS, ns, "network-attachment-definitions", body)


def delete_nad(api: Any, ns: str, name: str) -> None:
    client.CustomObjectsApi(api).delete_namespaced_custom_object(*NAD_ARGS, ns, "network-attachment-definitions", name)


def launcher(value: str, *, dedicated: bool = True, extra: dict[str, str] | None = None) -> dict[str, Any]:
    """A virt-launcher pod as KubeVirt 1.9 renders it: compute first, no VF request, the JSON networks form."""
    res = {"cpu": "2", "memory": "2Gi", **KVM}
    spec: dict[str, Any] = {
        "containers": [
            {"name": "compute", "image": "virt-launcher", "resources": {"requests": res, "limits": dict(res)}},
            {"name": "hook-sidecar-0", "image": "sidecar-shim"},  # no resources: our sidecar mutation fills them
        ]
    }
    if dedicated:
        spec["nodeSelector"] = {"kubevirt.io/cpumanager": "true"}
    if extra:
        spec["containers"][0]["resources"]["requests"].update(extra)
        spec["containers"][0]["resources"]["limits"].update(extra)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "virt-launcher-", "annotations": {NETWORKS: value}},
        "spec": spec,
    }


def kubevirt_form(ns: str, *names: str) -> str:
    return json.dumps([{"name": n, "namespace": ns, "interface": f"pod{i}a"} for i, n in enumerate(names)])


def vf_of(pod: dict[str, Any], index: int = 0) -> tuple[str | None, str | None]:
    res = pod["spec"]["containers"][index]["resources"]
    return res.get("requests", {}).get(VF), res.get("limits", {}).get(VF)


def pod_warnings(cp: ControlPlane, ns: str, pod: dict[str, Any]) -> tuple[int, list[str], str]:
    """``kubectl create --dry-run=server`` (apply needs a name; launcher pods have generateName): (exit code,
    warning lines, error text), as a user sees them."""
    result = cp.kubectl("create", "--dry-run=server", "-n", ns, "-f", "-", input=json.dumps(pod), check=False)
    warnings = [line.removeprefix("Warning: ") for line in result.stderr.splitlines() if line.startswith("Warning: ")]
    errors = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("Warning: "))
    return result.returncode, warnings, errors


# ---------------------------------------------------------------------------------------- the NAD view


def test_the_crd_absent_at_start_means_no_nad_rules_until_it_is_installed(
    nets: ViewServer, control_plane: ControlPlane, api: Any, namespace: str
) -> None:
    names = control_plane.kubectl("get", "crd", "-o", "name").stdout
    assert "network-attachment-definitions" not in names  # no test before this one installs it
    assert nets.server.metric("vm_admission_cluster_synced") == 1  # the rest of the view syncs without it
    pod = create_pod(api, namespace, launcher(kubevirt_form(namespace, "sriov-a")), dry_run=True)
    assert vf_of(pod) == (None, None)  # no NAD view: nothing to inject from, and no nad-missing either
    code, warnings, _ = pod_warnings(control_plane, namespace, launcher("ghost"))
    assert code == 0 and not [w for w in warnings if "networks." in w]
    install_crd(control_plane)
    make_nad(api, namespace, "sriov-a")
    eventually(
        lambda: (
            vf_of(create_pod(api, namespace, launcher(kubevirt_form(namespace, "sriov-a")), dry_run=True)) == ("1", "1")
        ),
        timeout=15,
        what="the NAD view after the CRD was installed",
    )
    objects = nets.server.metric("vm_admission_cluster_objects", kind="NetworkAttachmentDefinition")
    assert objects >= 1


def test_a_dedicated_launcher_pod_is_created_with_its_vfs_and_guaranteed(
    nets: ViewServer, control_plane: ControlPlane, api: Any, namespace: str
) -> None:
    make_nad(api, namespace, "sriov-a")
    make_nad(api, namespace, "sriov-b")
    eventually(lambda: vf_of(create_pod(api, namespace, launcher(f"{namespace}/sriov-b"), dry_run=True))[0] == "1")
    pod = create_pod(api, namespace, launcher(kubevirt_form(namespace, "sriov-a", "sriov-b", "sriov-a")))
    assert vf_of(pod) == ("3", "3")  # the same NAD twice counts twice
    assert pod["status"]["qosClass"] == "Guaranteed"  # computed by the API server after every patch
    stored = client.CoreV1Api(api).read_namespaced_pod(pod["metadata"]["name"], namespace)
    assert stored.spec.containers[0].resources.limits[VF] == "3"
    assert stored.status.qos_class == "Guaranteed"
    assert stored.spec.containers[1].resources.limits is not None  # the sidecar got its limits too


def test_text_form_other_namespace_and_an_already_requested_resource(
    nets: ViewServer, control_plane: ControlPlane, api: Any, namespace: str
) -> None:
    other = f"{namespace}-nets"
    control_plane.kubectl("create", "namespace", other)
    try:
        make_nad(api, other, "shared-vf")
        make_nad(api, namespace, "local-vf")
        value = f" {other}/shared-vf@net7, local-vf "
        eventually(lambda: vf_of(create_pod(api, namespace, launcher(value, dedicated=False), dry_run=True))[0] == "2")
        already = create_pod(api, namespace, launcher(value, dedicated=False, extra={VF: "1"}), dry_run=True)
        assert vf_of(already) == ("1", "1")  # left as it is: never doubled
    finally:
        control_plane.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_a_nad_created_after_start_is_seen_by_the_next_review_and_a_deleted_one_is_missing(
    nets: ViewServer, control_plane: ControlPlane, api: Any, namespace: str
) -> None:
    pod = launcher("late-vf", dedicated=False)

    def nad_missing() -> bool:
        code, warnings, errors = pod_warnings(control_plane, namespace, pod)
        assert code == 0, errors
        return any(w.startswith(f"networks.nad-missing: {FIELD}: item 1 ({namespace}/late-vf)") for w in warnings)

    assert nad_missing()
    make_nad(api, namespace, "late-vf")
    eventually(lambda: vf_of(create_pod(api, namespace, pod, dry_run=True))[0] == "1", what="the new NAD")
    assert not nad_missing()
    delete_nad(api, namespace, "late-vf")
    eventually(nad_missing, what="the deleted NAD")


def test_missing_nads_warn_and_deny_for_pods_and_vmis(
    nets: ViewServer, control_plane: ControlPlane, api: Any, namespace: str
) -> None:
    vmi = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"name": "sriov-vmi"},
        "spec": {
            "domain": {
                "devices": {"interfaces": [{"name": "default", "masquerade": {}}, {"name": "vf", "sriov": {}}]},
                "resources": {"requests": {"memory": "1Gi"}},
            },
            "networks": [{"name": "default", "pod": {}}, {"name": "vf", "multus": {"networkName": "ghost-vf"}}],
        },
    }
    code, warnings, _ = dry_run(control_plane, namespace, vmi)
    assert code == 0
    [warning] = [w for w in warnings if w.startswith("networks.nad-missing")]
    assert "spec.networks[1].multus.networkName" in warning and f"{namespace}/ghost-vf" in warning
    nets.set("enforce")
    try:
        with pytest.raises(ApiException) as err:
            create_custom(api, namespace, "virtualmachineinstances", vmi, dry_run="All")
        # (no node in this cluster has its pool: the preflight's placement cause comes too)
        causes = [c for c in denial(err.value)["details"]["causes"] if c["field"] != "spec.nodeSelector"]
        assert [(c["field"], c["reason"]) for c in causes] == [
            ("spec.networks[1].multus.networkName", "FieldValueNotFound")
        ]
        assert "failed to locate network attachment definition" in causes[0]["message"]
        with pytest.raises(ApiException) as err:
            create_pod(api, namespace, launcher("ghost-vf", dedicated=False), dry_run=True)
        assert err.value.status == 422
        [cause] = denial(err.value)["details"]["causes"]
        assert cause["field"] == FIELD and "ghost-vf" in cause["message"]
    finally:
        nets.set("warn")


def test_sriov_without_resource_name_warns_and_malformed_selection_is_denied(
    nets: ViewServer, control_plane: ControlPlane, api: Any, namespace: str
) -> None:
    make_nad(api, namespace, "bare-vf", resource=None)

    def warned() -> bool:
        code, warnings, errors = pod_warnings(control_plane, namespace, launcher("bare-vf", dedicated=False))
        assert code == 0, errors
        return any(w.startswith("networks.sriov-no-resource") for w in warnings)

    eventually(warned, what="sriov-no-resource")
    for bad in ("a/b/c", '[{"name": "x"', "vf@net1,other@net1"):
        with pytest.raises(ApiException) as err:
            create_pod(api, namespace, launcher(bad, dedicated=False), dry_run=True)
        [cause] = denial(err.value)["details"]["causes"]
        assert cause["field"] == FIELD and "Multus would fail" in cause["message"], cause


def test_vf_capacity_in_preflight(
    nets: ViewServer, cluster: Cluster, control_plane: ControlPlane, api: Any, namespace: str
) -> None:
    pool = "pool-vf"
    cluster.node(f"{pool}-0", pool, extra={VF: "1", **KVM})
    make_nad(api, namespace, "cap-vf")
    pod = launcher("cap-vf,cap-vf")
    pod["spec"]["nodeSelector"]["e2e.vm-admission.io/pool"] = pool
    try:

        def k3() -> list[str]:
            return [w for w in pod_warnings(control_plane, namespace, pod)[1] if "preflight.not-enough-devices" in w]

        eventually(lambda: bool(k3()), what="K3 on VFs")
        [warning] = k3()
        assert f"advertises is 1 {VF} ({pool}-0), this pod needs 2" in warning
        assert f"spec.containers[0].resources.requests.{VF}:" in warning  # the request injected before validation
    finally:
        cluster.delete_nodes(pool)


# ---------------------------------------------------------------------------------- pod network hotplug


def admission_calls(cp: ControlPlane, webhook: str) -> float:
    """How often the API server called ``webhook`` (its own histogram's count, all operations)."""
    total = 0.0
    for line in cp.metrics().splitlines():
        if (
            line.startswith("apiserver_admission_webhook_admission_duration_seconds_count{")
            and f'name="{webhook}"' in line
        ):
            total += float(line.rpartition(" ")[2])
    return total


def test_editing_a_running_pods_networks(
    nets: ViewServer, control_plane: ControlPlane, api: Any, namespace: str
) -> None:
    make_nad(api, namespace, "hot-vf")
    make_nad(api, namespace, "hot-bridge", resource=None, cni="bridge")
    pod = create_pod(api, namespace, launcher("hot-bridge", dedicated=False))
    name = pod["metadata"]["name"]
    hook = "pod-networks.validate.vm-admission.io"

    def annotate(value: str) -> tuple[int, list[str], str]:
        result = control_plane.kubectl(
            "annotate", "--overwrite", "-n", namespace, f"pod/{name}", f"{NETWORKS}={value}", check=False
        )
        warnings = [
            line.removeprefix("Warning: ") for line in result.stderr.splitlines() if line.startswith("Warning: ")
        ]
        return result.returncode, warnings, result.stderr

    calls = admission_calls(control_plane, hook)
    for i in range(3):  # ordinary updates (labels) never reach the webhook: the matchCondition stops them
        control_plane.kubectl("label", "--overwrite", "-n", namespace, f"pod/{name}", f"round={i}")
    assert admission_calls(control_plane, hook) == calls
    probe = launcher("hot-vf", dedicated=False)
    eventually(lambda: vf_of(create_pod(api, namespace, probe, dry_run=True))[0] == "1", what="the view has hot-vf")
    code, warnings, stderr = annotate("hot-bridge,hot-vf")
    assert code == 0, stderr
    [warning] = [w for w in warnings if "networks.vf-hotplug" in w]
    assert f"item 2 ({namespace}/hot-vf) is added" in warning and "recreate the pod" in warning
    after_add = admission_calls(control_plane, hook)
    assert after_add > calls
    _, warnings, _ = annotate("hot-bridge,hot-vf,hot-bridge")  # a plain network added: fine
    assert not [w for w in warnings if "networks." in w]
    code, _, stderr = annotate("hot-bridge@x,hot-vf@x")
    assert code != 0 and "interface 'x' is already" in stderr and "Multus would fail" in stderr
    code, _, stderr = annotate("Bad/Name")
    assert code != 0 and "DNS-1123" in stderr
    stored = client.CoreV1Api(api).read_namespaced_pod(name, namespace)
    assert stored.metadata.annotations[NETWORKS] == "hot-bridge,hot-vf,hot-bridge"  # the denials changed nothing
    control_plane.kubectl("label", "--overwrite", "-n", namespace, f"pod/{name}", "round=last")
    before_label = admission_calls(control_plane, hook)
    control_plane.kubectl("label", "--overwrite", "-n", namespace, f"pod/{name}", "round=final")
    assert admission_calls(control_plane, hook) == before_label


# ------------------------------------------------------------------------------ audit and review --cluster


def test_audit_and_review_cluster_see_pods_without_their_vfs(
    nets: ViewServer, control_plane: ControlPlane, api: Any, namespace: str, tmp_path: Path
) -> None:
    make_nad(api, namespace, "audit-vf")
    make_nad(api, namespace, "audit-vf-2")
    short = launcher("audit-vf,audit-vf", dedicated=False, extra={VF: "1"})  # requested already: left as it is
    eventually(lambda: vf_of(create_pod(api, namespace, launcher("audit-vf-2", dedicated=False), dry_run=True))[0]
               == "1", what="the view has the NADs")  # fmt: skip
    stored = create_pod(api, namespace, short)
    assert vf_of(stored) == ("1", "1")
    run = run_audit(control_plane, "-n", namespace, "-o", "json")
    assert run.returncode == 1, run.stderr
    [pod] = [o for o in json.loads(run.stdout)["objects"] if o["name"] == stored["metadata"]["name"]]
    [finding] = [f for f in pod["findings"] if f["rule"] == "networks.vf-missing"]
    assert finding["field"] == FIELD and "but the pod requests 1: it runs without 1 of its VFs" in finding["message"]
    # an account without NAD permission (an upgrade that has not granted it yet): the audit still runs, and the
    # findings that need a NAD are skipped
    rules = [r for r in cron_job_rules() if "network-attachment-definitions" not in r["resources"]]
    no_nads = run_audit(
        control_plane, "-n", namespace, "-o", "json", kubeconfig=_bind(control_plane, tmp_path, "audit-no-nads", rules)
    )
    assert no_nads.returncode in (0, 1) and "Traceback" not in no_nads.stderr, no_nads.stderr
    assert "networks." not in no_nads.stdout
    # review --cluster: the same NAD view, listed once
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(json.dumps({**launcher("audit-vf-2,audit-vf-2", dedicated=False),
                                    "metadata": {"name": "p", "namespace": namespace,
                                                 "annotations": {NETWORKS: "audit-vf-2,audit-vf-2"}}}))  # fmt: skip
    review = subprocess.run(
        [sys.executable, "-m", "webhook.cli", "review", "--cluster", "--kubeconfig", str(control_plane.kubeconfig),
         "-o", "json", str(manifest)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert review.returncode == 0, review.stderr
    [result] = json.loads(review.stdout)
    assert {"op": "add", "path": f"/spec/containers/0/resources/requests/{VF.replace('/', '~1')}", "value": "2"} in (
        result["patch"]
    )


# ------------------------------------------------------------------------------------------- view off


def test_with_the_view_off_pods_pass_untouched(
    e2e_server: ServerProcess, control_plane: ControlPlane, api: Any, namespace: str
) -> None:
    register(control_plane, e2e_server)  # the session's webhook: cluster view off
    make_nad(api, namespace, "off-vf")
    code, warnings, _ = pod_warnings(control_plane, namespace, launcher("off-vf,ghost", dedicated=False))
    assert code == 0 and not [w for w in warnings if "networks." in w]
    pod = create_pod(api, namespace, launcher("off-vf", dedicated=False), dry_run=True)
    assert vf_of(pod) == (None, None)
