"""Secondary networks as devices (webhook/rules/attachments.py, docs/networks.md): VF injection on pod CREATE,
the networks.* findings, preflight K3's VFs and pod network hotplug, from plain NAD dicts through the cluster
view's own stores (tests.testkit.cluster.cluster_snapshot)."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import pytest

from tests.testkit import objects
from tests.testkit.cluster import cluster_snapshot, nad, node
from tests.testkit.review import make_review
from webhook import admission
from webhook.audit import KINDS, audit_object
from webhook.config import Config, parse_config
from webhook.engine import Verdict, chain, handle, pod_concerned
from webhook.k8s.patch import PatchBuilder
from webhook.k8s.qos import qos_class
from webhook.k8s.snapshot import ClusterSnapshot
from webhook.rules import attachments
from webhook.rules.base import Context

VF = "intel.com/sriov_vf"
MLX = "openshift.io/mlx_vf"
ANNOTATION = "k8s.v1.cni.cncf.io/networks"
FIELD = "metadata.annotations.k8s.v1.cni.cncf.io/networks"
KVM = {"devices.kubevirt.io/kvm": "1k"}
NODES = [node("n1", allocatable={**KVM, VF: "4", MLX: "1"}, labels={"kubevirt.io/cpumanager": "true"})]
NADS = [
    nad("sriov-a"),
    nad("sriov-b", resource=MLX, conflist=True),
    nad("sriov-other", "net", resource=VF),
    nad("sriov-bare", resource=None),
    nad("bridge-net", resource=None, cni="bridge"),
]
ENFORCE = parse_config({"cluster": {"enforcement": "enforce"}})
POD_KIND = next(k for k in KINDS if k.kind == "Pod")


def snapshot(nads: list[dict[str, Any]] | None = NADS, nodes: list[dict[str, Any]] = NODES) -> ClusterSnapshot:
    snap: ClusterSnapshot = cluster_snapshot(nodes, nads=nads)
    return snap


def networks(*items: dict[str, str]) -> str:
    """KubeVirt's JSON form of the launcher pod's networks annotation."""
    return json.dumps([{"interface": f"pod{i}", **item} for i, item in enumerate(items)])


def launcher(value: str | None, *, dedicated: bool = True, namespace: str = "default", **extra: Any) -> dict[str, Any]:
    """A virt-launcher pod: compute first (KubeVirt's order), then a sidecar; Guaranteed as it is."""
    compute: dict[str, Any] = {
        "name": "compute",
        "image": "virt-launcher",
        "resources": {
            "requests": {"cpu": "2", "memory": "2Gi", "devices.kubevirt.io/kvm": "1"},
            "limits": {"cpu": "2", "memory": "2Gi", "devices.kubevirt.io/kvm": "1"},
        },
    }
    meta: dict[str, Any] = {"name": "virt-launcher-vm-abcde", "namespace": namespace, "annotations": {}}
    if value is not None:
        meta["annotations"][ANNOTATION] = value
    sidecar_res = {"cpu": "100m", "memory": "128Mi"}
    sidecar = {"name": "istio-proxy", "image": "proxy", "resources": {"requests": sidecar_res, "limits": sidecar_res}}
    spec: dict[str, Any] = {"containers": [compute, sidecar], **extra}
    if dedicated:
        spec["nodeSelector"] = {"kubevirt.io/cpumanager": "true"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def review(
    obj: dict[str, Any],
    webhook: str = "mutate",
    config: Config | None = None,
    cluster: ClusterSnapshot | None = None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
) -> Verdict:
    request = make_review(obj, operation=operation, old=old)["request"]
    return handle(request, webhook, config or Config(), cluster)  # type: ignore[arg-type]


def mutated(obj: dict[str, Any], config: Config | None = None, cluster: ClusterSnapshot | None = None) -> Any:
    verdict = review(obj, "mutate", config, snapshot() if cluster is None else cluster)
    assert verdict.allowed, verdict.message
    return jsonpatch.JsonPatch(verdict.patch).apply(copy.deepcopy(obj)), verdict


def compute_resources(pod: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = pod["spec"]["containers"][0]["resources"]
    return res


# --- injection -----------------------------------------------------------------------------------------------


def test_a_dedicated_launcher_pod_gets_its_vf_and_stays_guaranteed() -> None:
    pod = launcher(networks({"name": "sriov-a", "namespace": "default"}))
    after, verdict = mutated(pod)
    res = compute_resources(after)
    assert res["requests"][VF] == "1" and res["limits"][VF] == "1"
    assert qos_class(after) == "Guaranteed"
    assert [op["path"] for op in verdict.patch if VF.split("/")[0] in op["path"]] == [
        "/spec/containers/0/resources/requests/intel.com~1sriov_vf",
        "/spec/containers/0/resources/limits/intel.com~1sriov_vf",
    ]
    assert verdict.audit["network-resources"] == (
        f"containers[0] (compute) requests and limits {VF}: 1 (default/sriov-a)"
    )
    again = review(after, "mutate", None, snapshot())
    assert again.patch == [] and again.allowed  # reinvocation changes nothing
    assert review(after, "validate", None, snapshot()).warnings == []


def test_the_patch_is_minimal_on_a_pod_without_resources() -> None:
    pod = launcher("sriov-a", dedicated=False)
    del pod["spec"]["containers"][0]["resources"]
    _, verdict = mutated(pod)
    assert verdict.patch == [
        {"op": "add", "path": "/spec/containers/0/resources", "value": {"requests": {VF: "1"}}},
        {"op": "add", "path": "/spec/containers/0/resources/limits", "value": {VF: "1"}},
    ]


def test_a_nad_named_twice_counts_twice_and_each_resource_is_counted_apart() -> None:
    pod = launcher("sriov-a, sriov-a, net/sriov-other, sriov-b, bridge-net, sriov-bare")
    after, verdict = mutated(pod)
    res = compute_resources(after)
    assert res["requests"][VF] == res["limits"][VF] == "3"
    assert res["requests"][MLX] == res["limits"][MLX] == "1"
    assert "default/sriov-a, default/sriov-a, net/sriov-other" in verdict.audit["network-resources"]


def test_a_resource_any_container_already_requests_is_left_alone() -> None:
    pod = launcher("sriov-a,sriov-b", dedicated=False)
    compute_resources(pod)["limits"][VF] = "1"  # KubeVirt <= 1.8 was first
    pod["spec"]["initContainers"] = [{"name": "init", "resources": {"requests": {MLX: "2"}}}]
    after, verdict = mutated(pod)
    assert verdict.patch == [] and after == pod


def test_no_injection_without_the_nad_view_or_with_inject_off() -> None:
    pod = launcher("sriov-a")
    for config, cluster in (
        (Config(), None),
        (Config(), snapshot(nads=None)),  # the NAD CRD is not installed
        (Config(), cluster_snapshot(NODES, nads=NADS, synced=False)),
        (parse_config({"networks": {"inject": False}}), snapshot()),
    ):
        verdict = review(pod, "mutate", config, cluster)
        assert verdict.allowed and verdict.patch == []


def test_the_resource_name_annotation_is_configurable() -> None:
    custom = "example.com/vf-resource"
    cluster = cluster_snapshot(NODES, nads=[nad("sriov-a", annotation=custom)], resource_annotation=custom)
    after, _ = mutated(launcher("sriov-a"), parse_config({"networks": {"resourceNameAnnotation": custom}}), cluster)
    assert compute_resources(after)["requests"][VF] == "1"
    other = cluster_snapshot(NODES, nads=[nad("sriov-a", annotation=custom)])
    assert review(launcher("sriov-a"), "mutate", None, other).patch == []


def test_the_namespace_defaults_to_the_pods() -> None:
    cluster = snapshot(nads=[nad("sriov-a", "vms")])
    assert review(launcher("sriov-a", namespace="vms"), "mutate", None, cluster).patch
    assert review(launcher("sriov-a", namespace="other"), "mutate", None, cluster).patch == []
    assert review(launcher("vms/sriov-a", namespace="other"), "mutate", None, cluster).patch


def test_a_malformed_selection_is_not_injected_and_validation_denies_it() -> None:
    pod = launcher("sriov-a@x,sriov-b@x")
    assert review(pod, "mutate", None, snapshot()).patch == []
    verdict = review(pod, "validate")  # no cluster view needed
    assert not verdict.allowed and verdict.code == 422
    [cause] = verdict.causes
    assert (cause.field, cause.rule) == (FIELD, "networks.bad-selection")
    assert cause.message.startswith("item 2 (default/sriov-b): interface 'x' is already item 1 (default/sriov-a)'s")
    assert "ContainerCreating" in cause.message


def test_a_pod_without_containers_or_with_unreadable_ones_is_not_injected() -> None:
    for containers in ([], "x", [None]):
        pod = launcher("sriov-a")
        pod["spec"]["containers"] = containers
        assert review(pod, "mutate", None, snapshot()).patch == []


def test_networks_annotation_must_be_a_string() -> None:
    pod = launcher(None)
    pod["metadata"]["annotations"][ANNOTATION] = ["sriov-a"]
    verdict = review(pod, "validate")
    assert verdict.code == 400 and verdict.message == f"{FIELD}: must be a string, got list"


def test_pods_without_the_annotation_stay_on_the_fast_path() -> None:
    plain = {"apiVersion": "v1", "kind": "Pod", "metadata": {"annotations": {"a": "b"}}, "spec": {"containers": []}}
    assert not pod_concerned(plain, Config())
    plain["metadata"]["annotations"][ANNOTATION] = "sriov-a"
    assert pod_concerned(plain, Config())


# --- findings on pods --------------------------------------------------------------------------------------------


def test_a_missing_nad_warns_by_default_and_denies_under_enforce() -> None:
    pod = launcher("sriov-a,ghost,ghost")
    warned = review(pod, "validate", None, snapshot())
    assert warned.allowed
    [warning] = warned.warnings
    assert warning.startswith(f"networks.nad-missing: {FIELD}: item 2 (default/ghost): no NetworkAttachmentDefinition")
    assert "ContainerCreating" in warning
    assert [(c.rule, c.type) for c in warned.advisories] == [("networks.nad-missing", "FieldValueNotFound")]
    denied = review(pod, "validate", ENFORCE, snapshot())
    assert not denied.allowed and [c.rule for c in denied.causes] == ["networks.nad-missing"]


def test_without_the_nad_view_nothing_needs_a_nad() -> None:
    pod = launcher("ghost")
    for cluster in (None, snapshot(nads=None)):
        verdict = review(pod, "validate", ENFORCE, cluster)
        assert verdict.allowed and verdict.warnings == []


def test_an_sriov_nad_without_a_resource_name_is_always_a_warning() -> None:
    pod = launcher("sriov-bare,bridge-net")
    for config in (Config(), ENFORCE):
        verdict = review(pod, "validate", config, snapshot())
        assert verdict.allowed
        [warning] = verdict.warnings
        assert warning.startswith(f"networks.sriov-no-resource: {FIELD}: item 1 (default/sriov-bare): the SR-IOV")
        assert "k8s.v1.cni.cncf.io/resourceName annotation" in warning
        assert [c.rule for c in verdict.advisories] == ["networks.sriov-no-resource"]


def test_vf_missing_is_reported_by_audit_and_review_but_not_at_admission() -> None:
    pod = launcher("sriov-a,sriov-a")
    compute_resources(pod)["requests"][VF] = "1"
    assert review(pod, "validate", None, snapshot()).warnings == []
    audited = audit_object(copy.deepcopy(pod), next(k for k in KINDS if k.kind == "Pod"), Config(), snapshot())
    [finding] = audited.findings
    assert (finding.rule, finding.result, finding.field) == ("networks.vf-missing", "warn", FIELD)
    assert "2 attachments need one intel.com/sriov_vf (an SR-IOV VF) each" in finding.message
    assert "requests 1: it runs without 1 of its VFs" in finding.message
    result = chain(pod, parse_config({"networks": {"inject": False}}), cluster=snapshot())
    assert any(w.startswith("networks.vf-missing") for w in result.validation.warnings)
    still_short = chain(pod, Config(), cluster=snapshot())  # requested already: left alone, and still short
    assert [w.split(":")[0] for w in still_short.validation.warnings] == ["networks.vf-missing"]
    fixed = chain(launcher("sriov-a,sriov-a"), Config(), cluster=snapshot())
    assert fixed.allowed and fixed.validation.warnings == []
    assert compute_resources(fixed.admitted)["limits"][VF] == "2"


# --- preflight K3 ----------------------------------------------------------------------------------------------


def test_k3_counts_one_vf_per_attachment_naming_resource_and_numbers() -> None:
    cluster = snapshot(nodes=[node("n1", allocatable={**KVM, VF: "1"}), node("n2", allocatable={**KVM, VF: "1"})])
    verdict = review(launcher("sriov-a,sriov-a", dedicated=False), "validate", None, cluster)
    [cause] = verdict.advisories
    assert (cause.rule, cause.field) == ("preflight.not-enough-devices", FIELD)
    assert cause.message.startswith(f"the most any of the 2 nodes that could run it advertises is 1 {VF} (n1, n2)")
    assert cause.message.endswith("this pod needs 2")
    none = review(launcher("sriov-b", dedicated=False), "validate", ENFORCE, cluster)
    assert [c.message for c in none.causes] == [
        f"none of the 2 nodes that could run it advertises {MLX}, this pod needs 1 (is its device plugin running?)"
    ]


def test_k3_after_injection_counts_the_request_once() -> None:
    pod, _ = mutated(launcher("sriov-a,sriov-a"))
    cluster = snapshot(nodes=[node("n1", allocatable={**KVM, VF: "2"}, labels={"kubevirt.io/cpumanager": "true"})])
    assert review(pod, "validate", ENFORCE, cluster).allowed


# --- VMIs and VMs ------------------------------------------------------------------------------------------------


def vmi_spec(*nets: tuple[str, str, str]) -> dict[str, Any]:
    """(name, binding, networkName) per secondary network, beside the pod network."""
    ifaces = [{"name": "default", "masquerade": {}}] + [{"name": n, b: {}} for n, b, _ in nets]
    networks_ = [{"name": "default", "pod": {}}] + [{"name": n, "multus": {"networkName": r}} for n, _, r in nets]
    return {
        "domain": {"devices": {"interfaces": ifaces}, "resources": {"requests": {"memory": "1Gi"}}},
        "networks": networks_,
    }


def vmi(*nets: tuple[str, str, str], namespace: str = "default") -> dict[str, Any]:
    return objects.vmi(vmi_spec(*nets), namespace=namespace)


def vm(*nets: tuple[str, str, str], **spec: Any) -> dict[str, Any]:
    return objects.vm(vmi_spec(*nets), name="v", **spec)


def test_a_vmi_on_a_missing_nad_is_told_where_and_what_fails() -> None:
    verdict = review(vmi(("a", "sriov", "ghost"), ("b", "bridge", "net/sriov-other")), "validate", ENFORCE, snapshot())
    [cause] = verdict.causes
    assert (cause.field, cause.rule) == ("spec.networks[1].multus.networkName", "networks.nad-missing")
    assert "failed to locate network attachment definition default/ghost" in cause.message
    warned = review(vmi(("a", "sriov", "ghost")), "validate", None, snapshot())
    assert warned.allowed and warned.warnings[0].startswith("networks.nad-missing: spec.networks[1].multus.networkName")


def test_an_sriov_interface_on_a_nad_without_resource_warns() -> None:
    verdict = review(vmi(("a", "sriov", "bridge-net"), ("b", "bridge", "sriov-bare")), "validate", ENFORCE, snapshot())
    assert verdict.allowed
    [warning] = verdict.warnings
    assert warning.startswith('networks.sriov-no-resource: spec.networks[1].multus.networkName: interface "a" is')


def test_a_vm_is_checked_only_when_it_is_to_run() -> None:
    stopped = review(vm(("a", "sriov", "ghost"), runStrategy="Halted"), "validate", ENFORCE, snapshot())
    assert stopped.allowed
    for spec in ({"running": True}, {"runStrategy": "Always"}, {"runStrategy": "Once"}):
        verdict = review(vm(("a", "sriov", "ghost"), **spec), "validate", ENFORCE, snapshot())
        assert [c.field for c in verdict.causes] == ["spec.template.spec.networks[1].multus.networkName"]


def test_k3_counts_one_vf_per_sriov_interface_of_a_vmi() -> None:
    cluster = snapshot(nodes=[node("n1", allocatable={**KVM, VF: "1"})])
    verdict = review(vmi(("a", "sriov", "sriov-a"), ("b", "sriov", "net/sriov-other")), "validate", ENFORCE, cluster)
    [cause] = verdict.causes
    assert (cause.rule, cause.field) == ("preflight.not-enough-devices", "spec.networks[1].multus.networkName")
    assert cause.message.endswith(f"advertises is 1 {VF} (n1), this VMI needs 2")
    bridge_only = review(vmi(("a", "bridge", "sriov-a"), ("b", "bridge", "sriov-a")), "validate", ENFORCE, cluster)
    assert bridge_only.allowed  # only sriov interfaces take a VF


# --- pod network hotplug ---------------------------------------------------------------------------------------


def update(old_value: str | None, new_value: str | None, config: Config | None = None, **kw: Any) -> Verdict:
    old, new = launcher(old_value, **kw), launcher(new_value, **kw)
    new["metadata"]["labels"] = {"changed": "yes"}
    return review(new, "validate", config, snapshot(), operation="UPDATE", old=old)


def test_adding_a_vf_network_to_a_running_pod_warns_what_to_do() -> None:
    verdict = update("bridge-net", "bridge-net,sriov-a")
    assert verdict.allowed
    [warning] = verdict.warnings
    assert warning.startswith(f"networks.vf-hotplug: {FIELD}: item 2 (default/sriov-a) is added, but default/sriov-a")
    assert "recreate the pod" in warning and "live-migrate" in warning
    assert update("sriov-a", "sriov-a,sriov-a").warnings[0].startswith("networks.vf-hotplug")  # a second unit


def test_adding_plain_networks_or_removing_any_is_fine() -> None:
    for old, new in (("sriov-a", "sriov-a,bridge-net"), ("sriov-a,sriov-b", "sriov-b"), ("sriov-a", None)):
        verdict = update(old, new)
        assert verdict.allowed and verdict.warnings == [], (old, new)


def test_a_hotplugged_missing_nad_follows_cluster_enforcement() -> None:
    assert update("sriov-a", "sriov-a,ghost").warnings[0].startswith("networks.nad-missing")
    assert not update("sriov-a", "sriov-a,ghost", ENFORCE).allowed


def test_a_malformed_or_colliding_hotplug_is_denied() -> None:
    for new in ("sriov-a,Bad", "sriov-a@n1,bridge-net@n1"):
        verdict = update("sriov-a", new)
        assert not verdict.allowed and [c.rule for c in verdict.causes] == ["networks.bad-selection"]


def test_other_pod_updates_and_mutation_of_updates_are_untouched() -> None:
    pod = launcher("sriov-a@Bad")  # even a value Multus refuses is left alone when it does not change
    changed = copy.deepcopy(pod)
    changed["metadata"]["labels"] = {"x": "y"}
    for webhook in ("mutate", "validate"):
        verdict = review(changed, webhook, ENFORCE, snapshot(), operation="UPDATE", old=pod)
        assert verdict.allowed and verdict.warnings == [] and verdict.patch == []
    new = launcher("sriov-a,sriov-b")
    assert review(new, "mutate", None, snapshot(), operation="UPDATE", old=pod).patch == []


@pytest.mark.parametrize("dedicated", [True, False])
def test_an_update_with_networks_runs_no_create_rule(dedicated: bool) -> None:
    old = launcher("bridge-net", dedicated=dedicated)
    new = launcher("bridge-net,sriov-a", dedicated=dedicated)
    new["spec"]["containers"][1]["resources"] = {"requests": {"cpu": "1"}}  # not Guaranteed: CREATE would deny
    new["metadata"]["annotations"]["vm-admission.io/passthrough"] = "zz"
    verdict = review(new, "validate", ENFORCE, snapshot(), operation="UPDATE", old=old)
    assert verdict.allowed and [w.split(":")[0] for w in verdict.warnings] == ["networks.vf-hotplug"]


# --- exact texts, the request's namespace, and shapes the API server would not send ---------------------------


def no_namespace(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without metadata.namespace: the rules then take the request's (make_review's: "default")."""
    obj = copy.deepcopy(obj)
    del obj["metadata"]["namespace"]
    return obj


def test_every_pod_message_in_full() -> None:
    pod = no_namespace(launcher("ghost,sriov-bare", dedicated=False))
    verdict = review(pod, "validate", ENFORCE, snapshot())
    assert [c.message for c in verdict.causes] == [
        "item 1 (default/ghost): no NetworkAttachmentDefinition default/ghost exists: Multus cannot attach it, "
        "and the pod would stay in ContainerCreating; create it first, or fix the name"
    ]
    assert verdict.warnings == [
        f"networks.sriov-no-resource: {FIELD}: item 2 (default/sriov-bare): the SR-IOV network default/sriov-bare "
        "has no k8s.v1.cni.cncf.io/resourceName annotation, so no VF is requested for it and the SR-IOV CNI finds "
        "no device to attach: annotate the NAD with its device plugin's resource name"
    ]
    [selection] = review(no_namespace(launcher("a@eth0", dedicated=False)), "validate").causes
    assert selection.message == (
        "item 1 (default/a): interface 'eth0' is already the pod's own interface: Multus would fail the pod when it "
        "creates its sandbox, and it would stay in ContainerCreating"
    )


def test_vf_missing_and_audit_texts_in_full() -> None:
    pod = no_namespace(launcher("sriov-a,sriov-a,sriov-b", dedicated=False))
    compute_resources(pod)["limits"][VF] = "1"
    compute_resources(pod)["limits"][MLX] = 1  # an int, as a JSON number
    pod["spec"]["initContainers"] = [{"name": "i", "resources": {"limits": {VF: "x"}}}, "junk", {"resources": "x"}]
    result = chain(pod, parse_config({"networks": {"inject": False}}), namespace="default", cluster=snapshot())
    assert result.validation.warnings == []  # limits count as requests: 1 + 1 (an unreadable value is one unit)
    compute_resources(pod)["limits"][VF] = "0"
    result = chain(pod, parse_config({"networks": {"inject": False}}), namespace="default", cluster=snapshot())
    assert result.validation.warnings == [
        f"networks.vf-missing: {FIELD}: 2 attachments need one {VF} (an SR-IOV VF) each (default/sriov-a, "
        f"default/sriov-a), but the pod requests 1: it runs without 1 of its VFs. Recreate it with the request "
        "(vm-admission adds it on CREATE with networks.inject), or install an injector"
    ]
    _, verdict = mutated(no_namespace(launcher("sriov-b,sriov-a", dedicated=False)))
    assert verdict.audit["network-resources"] == (
        f"containers[0] (compute) requests and limits {MLX}: 1 (default/sriov-b); {VF}: 1 (default/sriov-a)"
    )


@pytest.mark.parametrize(
    ("raw", "units"),
    [("3", 3), (3, 3), ("03", 3), ("1k", 1000), ("10m", 1), (2.5, 3), ("", 1), (True, 1), ("x", 1), ("9" * 12, 10**12)],
)
def test_units_of_a_requested_resource(raw: Any, units: int) -> None:
    """Counts as the API server reads the quantity (Value(), rounded up); one that does not parse counts as one
    unit (it is there)."""
    pod = launcher(",".join(["sriov-a"] * 12), dedicated=False)
    compute_resources(pod)["requests"][VF] = raw
    findings = audit_object(pod, POD_KIND, Config(), snapshot()).findings
    messages = [f.message for f in findings if f.rule == "networks.vf-missing"]
    assert messages == ([] if units >= 12 else [m for m in messages if f"but the pod requests {units}:" in m])
    assert len(messages) == (0 if units >= 12 else 1)


def test_requests_of_every_container_add_up_and_limits_stand_in_for_requests() -> None:
    pod = launcher("sriov-a,sriov-a,sriov-a", dedicated=False)
    pod["spec"]["containers"].insert(1, "junk")
    pod["spec"]["containers"].insert(1, {"name": "no-resources", "resources": None})
    pod["spec"]["containers"].append({"name": "one", "resources": {"limits": {VF: "1"}}})
    pod["spec"]["containers"].append({"name": "two", "resources": {"limits": {VF: "2"}}})
    assert audit_object(copy.deepcopy(pod), POD_KIND, Config(), snapshot()).findings == ()
    pod["spec"]["containers"][-1]["resources"]["limits"][VF] = "1"
    [finding] = audit_object(pod, POD_KIND, Config(), snapshot()).findings
    assert "but the pod requests 2:" in finding.message


def test_each_missing_nad_once_and_every_one_of_them() -> None:
    verdict = review(launcher("ghost,ghost,other-ghost,sriov-a,third", dedicated=False), "validate", None, snapshot())
    assert [w.split(": ")[2] for w in verdict.warnings] == [
        "item 1 (default/ghost)",
        "item 3 (default/other-ghost)",
        "item 5 (default/third)",
    ]


def test_vmi_messages_in_full_and_the_requests_namespace() -> None:
    obj = no_namespace(vmi(("a", "sriov", "ghost"), ("b", "sriov", "sriov-bare")))
    verdict = review(obj, "validate", ENFORCE, snapshot())
    assert [c.message for c in verdict.causes] == [
        "no NetworkAttachmentDefinition default/ghost exists: KubeVirt fails to render the launcher pod ('failed to "
        "locate network attachment definition default/ghost') and the VM stays Pending (from KubeVirt 1.9, Multus "
        "fails the pod instead); create it first, or fix the name"
    ]
    assert verdict.warnings == [
        'networks.sriov-no-resource: spec.networks[2].multus.networkName: interface "b" is SR-IOV, but the SR-IOV '
        "network default/sriov-bare has no k8s.v1.cni.cncf.io/resourceName annotation, so no VF is requested for it "
        "and the SR-IOV CNI finds no device to attach: annotate the NAD with its device plugin's resource name"
    ]
    running = no_namespace(vm(("a", "sriov", "ghost"), running=True))
    for operation in ("CREATE", "UPDATE"):
        got = review(running, "validate", ENFORCE, snapshot(), operation=operation, old=running)
        assert [c.rule for c in got.causes] == ["networks.nad-missing"]
        assert "default/ghost" in got.causes[0].message


def test_a_vm_without_a_template_or_with_an_odd_one_has_nothing_to_check() -> None:
    for template in (None, "x", {"spec": None}, {"spec": {"networks": "x"}}):
        obj = vm(running=True)
        obj["spec"]["template"] = template
        ctx = Context(ENFORCE, "VirtualMachine", "CREATE", namespace="default", cluster=snapshot())
        assert attachments.validate_vm(obj, ctx).causes == []


def test_multus_names_must_be_non_empty_strings_on_multus_networks() -> None:
    obj = vmi(("a", "sriov", "ghost"))
    obj["spec"]["networks"][1]["multus"]["networkName"] = ""
    assert not [c for c in review(obj, "validate", ENFORCE, snapshot()).causes if c.rule.startswith("networks")]
    obj["spec"]["networks"][1]["multus"]["networkName"] = 5
    verdict = review(obj, "validate", ENFORCE, snapshot())
    assert verdict.code == 400 and "networkName: must be a string" in verdict.message  # the interface rules say it
    pod_net = vmi(("a", "bridge", "ghost"))
    pod_net["spec"]["networks"][1] = {"name": "a", "pod": {}, "extra": {"networkName": "ghost"}}
    assert not [c for c in review(pod_net, "validate", ENFORCE, snapshot()).causes if c.rule.startswith("networks")]


def test_rules_called_outside_their_operations_say_nothing() -> None:
    pod = launcher("ghost,sriov-a")
    for kind in ("Pod", "VirtualMachineInstance", "VirtualMachine"):
        for op in ("DELETE", "CONNECT"):
            assert admission.rules_for(kind, "validate", op) == admission.rules_for(kind, "mutate", op) == ()
    assert attachments.mutate_pod not in admission.rules_for("Pod", "mutate", "UPDATE")
    assert admission.rules_for("Pod", "validate", "UPDATE") == (attachments.validate_pod_update,)
    create = Context(ENFORCE, "Pod", "CREATE", namespace="default", cluster=snapshot())  # no patch builder
    assert attachments.mutate_pod(pod, create).audit == {}
    same = Context(ENFORCE, "Pod", "UPDATE", old_object=copy.deepcopy(pod), cluster=snapshot())
    assert attachments.validate_pod_update(pod, same).causes == []  # the annotation did not change
    gone = Context(ENFORCE, "Pod", "UPDATE", old_object=pod, cluster=snapshot())
    assert attachments.validate_pod_update(launcher(None), gone).causes == []  # removed


def test_hotplug_compares_with_the_old_value_in_the_old_pods_namespace() -> None:
    old = no_namespace(launcher("sriov-a", dedicated=False))
    new = no_namespace(launcher("sriov-a,sriov-a,sriov-a,ghost", dedicated=False))
    verdict = review(new, "validate", ENFORCE, snapshot(), operation="UPDATE", old=old)
    assert [c.message for c in verdict.causes] == [
        "item 4 (default/ghost): no NetworkAttachmentDefinition default/ghost exists: Multus cannot attach it to the "
        "running pod; create it first, or fix the name"
    ]
    assert [w.split(" is added")[0] for w in verdict.warnings] == [
        f"networks.vf-hotplug: {FIELD}: item 2 (default/sriov-a)",
        f"networks.vf-hotplug: {FIELD}: item 3 (default/sriov-a)",
    ]
    assert verdict.warnings[0].endswith(
        f"default/sriov-a needs one {VF} (an SR-IOV VF) per attachment and a running pod's resource requests cannot "
        "change, so it gets no VF and the attachment fails: recreate the pod with this network instead; for a "
        "KubeVirt VM, add an sriov interface on this network to the VM and let KubeVirt live-migrate it"
    )
    unreadable_old = launcher("sriov-a", dedicated=False)
    unreadable_old["metadata"]["annotations"][ANNOTATION] = "Bad"
    assert len(review(new, "validate", None, snapshot(), operation="UPDATE", old=unreadable_old).warnings) == 4
    no_old = Context(Config(), "Pod", "UPDATE", namespace="default", cluster=snapshot())
    assert len(attachments.validate_pod_update(new, no_old).warnings) == 4


def test_odd_metadata_is_no_selection() -> None:
    for meta in ("x", {"annotations": "x"}, {"annotations": None}, {"namespace": 5, "annotations": {}}):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [{"name": "c"}]}}
        assert not attachments.concerns_pod(pod)
        ctx = Context(ENFORCE, "Pod", "CREATE", namespace="default", cluster=snapshot())
        assert attachments.validate_pod(pod, ctx).causes == [] and attachments.pod_vfs(pod, ctx) == {}
    pod = launcher("sriov-a")
    pod["metadata"]["namespace"] = 5  # not a string: the request's namespace
    ctx = Context(Config(), "Pod", "CREATE", namespace="default", cluster=snapshot())
    assert attachments.pod_vfs(pod, ctx) == {VF: (1, ("metadata", "annotations", ANNOTATION))}
    pod["spec"] = "x"
    ctx.patch = PatchBuilder(pod)
    assert attachments.mutate_pod(pod, ctx).audit == {} and ctx.patch.ops == []


def test_more_edges_of_injection_hotplug_and_vf_missing() -> None:
    # a pod that no networks rule concerns (dedicated, no annotation) passes them untouched
    assert review(launcher(None), "validate", ENFORCE, snapshot()).allowed
    # the first resource already requested does not stop the second from being added
    pod = launcher("sriov-a,sriov-b", dedicated=False)
    compute_resources(pod)["requests"][VF] = "1"
    after, _ = mutated(pod)
    assert compute_resources(after)["requests"][MLX] == compute_resources(after)["limits"][MLX] == "1"
    # nothing requested at all
    bare = launcher("sriov-b", dedicated=False)
    [finding] = [f for f in audit_object(bare, POD_KIND, Config(), snapshot()).findings if f.rule.startswith("net")]
    assert "but the pod requests 0: it runs without 1 of its VFs" in finding.message
    # an unreadable spec in audit: the object is a bad request, not a crash
    odd = launcher("sriov-a", dedicated=False)
    odd["spec"] = "x"
    ctx = Context(Config(), "Pod", "CREATE", namespace="default", cluster=snapshot(), offline=True)
    assert attachments.validate_pod(odd, ctx).warnings[0].startswith("networks.vf-missing")
    # an unchanged value, even one Multus refuses, is not judged again
    same = launcher("Bad,sriov-a", dedicated=False)
    unchanged = Context(ENFORCE, "Pod", "UPDATE", old_object=copy.deepcopy(same), cluster=snapshot())
    assert attachments.validate_pod_update(same, unchanged).causes == []
    # a value that is not a string on update
    broken = launcher(None, dedicated=False)
    broken["metadata"]["annotations"][ANNOTATION] = 7
    assert attachments.validate_pod_update(broken, unchanged).bad_request == f"{FIELD}: must be a string, got number"
    # the same NAD twice before and three times after: one added
    assert len(update("sriov-a,sriov-a", "sriov-a,sriov-a,sriov-a").warnings) == 1
    assert len(update("sriov-a,sriov-b,sriov-a", "sriov-a,sriov-a,sriov-b,sriov-b").warnings) == 1


def test_a_vmi_with_odd_metadata_is_read_in_the_requests_namespace() -> None:
    obj = vmi(("a", "sriov", "ghost"))
    obj["metadata"] = "x"
    ctx = Context(ENFORCE, "VirtualMachineInstance", "CREATE", namespace="vms", cluster=snapshot())
    [cause] = attachments.validate_vmi(obj, ctx).causes
    assert "vms/ghost" in cause.message


def test_k3_takes_the_larger_of_the_request_and_the_attachments_and_names_the_request() -> None:
    cluster = snapshot(nodes=[node("n1", allocatable={**KVM, VF: "2"})])
    injected, _ = mutated(launcher("sriov-a,sriov-a,sriov-a", dedicated=False))
    [cause] = review(injected, "validate", ENFORCE, cluster).causes
    assert (cause.field, cause.message[-16:]) == (f"spec.containers[0].resources.requests.{VF}", "this pod needs 3")
    more = launcher("sriov-a", dedicated=False)
    compute_resources(more)["requests"][VF] = compute_resources(more)["limits"][VF] = "3"
    [cause] = review(more, "validate", ENFORCE, cluster).causes
    assert cause.message.endswith("this pod needs 3")


def test_k3_adds_a_vmis_vfs_to_its_host_devices_of_the_same_resource() -> None:
    cluster = snapshot(nodes=[node("n1", allocatable={**KVM, VF: "2"})])
    obj = vmi(("a", "sriov", "sriov-a"), ("b", "sriov", "sriov-a"))
    obj["spec"]["domain"]["devices"]["hostDevices"] = [{"name": "h", "deviceName": VF}]
    [cause] = review(obj, "validate", ENFORCE, cluster).causes
    assert cause.rule == "preflight.not-enough-devices" and cause.message.endswith("this VMI needs 3")
