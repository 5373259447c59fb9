"""Preflight against the cluster view (docs/cluster-view.md) in process: snapshots folded from plain Node objects and
KubeVirt CRs by the view's own stores (tests.testkit.cluster.cluster_snapshot), reviews through webhook.engine.handle.
The same rules against a real control plane are tests/e2e/test_cluster_view.py."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.testkit import objects
from tests.testkit.cluster import cluster_snapshot, kubevirt_cr, node
from tests.testkit.review import make_review, pure_python_only
from webhook import admission
from webhook.config import Config, parse_config
from webhook.engine import Verdict, chain, handle
from webhook.k8s.snapshot import ClusterSnapshot
from webhook.rules import preflight
from webhook.rules.base import Cause, Context

WARN = parse_config({})  # cluster.enforcement: warn (the default)
ENFORCE = parse_config({"cluster": {"enforcement": "enforce"}})
PINNED = {"kubevirt.io/cpumanager": "true", "cpumanager": "true"}
LABELS = "kubevirt.io/cpumanager=true or cpumanager=true"
VMI_CPU = "spec.domain.cpu.dedicatedCpuPlacement"
VMI_MEM = "spec.domain.resources.requests.memory"


def vmi(
    cores: int | None = 4,
    *,
    dedicated: bool = True,
    memory: str | None = "8Gi",
    cpu: dict[str, Any] | None = None,
    domain: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    cpu_spec: dict[str, Any] = {} if cores is None else {"cores": cores}
    if dedicated:
        cpu_spec["dedicatedCpuPlacement"] = True
    cpu_spec.update(cpu or {})
    dom: dict[str, Any] = {"cpu": cpu_spec, "devices": {}}
    if memory is not None:
        dom["resources"] = {"requests": {"memory": memory}}
    dom.update(domain or {})
    return objects.vmi({"domain": dom, **(spec or {})}, name="db", namespace="ns", annotations=annotations or None)


def vm(template_spec: dict[str, Any], **vm_spec: Any) -> dict[str, Any]:
    return objects.vm(template_spec, name="db", namespace="ns", **vm_spec)


def pod(
    containers: list[dict[str, Any]],
    *,
    init: list[dict[str, Any]] | None = None,
    selector: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    extra: dict[str, Any] = dict(spec or {})
    if selector is not None:
        extra["nodeSelector"] = selector
    return objects.pod(containers, init=init, spec=extra, namespace="ns", annotations=annotations or None)


def container(name: str, cpu: str | None = None, memory: str = "1Gi", **extra: Any) -> dict[str, Any]:
    values = {"memory": memory} if cpu is None else {"cpu": cpu, "memory": memory}
    return {"name": name, "image": "x", "resources": {"requests": dict(values), "limits": dict(values)}, **extra}


def validate(
    obj: dict[str, Any],
    snapshot: ClusterSnapshot | None,
    config: Config = ENFORCE,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
) -> Verdict:
    return handle(make_review(obj, operation=operation, old=old)["request"], "validate", config, snapshot)


def preflight_causes(verdict: Verdict) -> list[Cause]:
    return [c for c in verdict.causes if c.rule.startswith("preflight.")]


def only(verdict: Verdict) -> Cause:
    assert not verdict.allowed and verdict.code == 422, verdict
    (cause,) = preflight_causes(verdict)
    return cause


# ------------------------------------------------------------------------------------------ formatting


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (0, "0"),
        (1023, "1023"),
        (1024, "1Ki"),
        (1536, "1.5Ki"),
        (2**30 * 16, "16Gi"),
        (2**30 * 3 // 2, "1536Mi"),
        (2**30 + 2**29 + 1, "1.5Gi"),
        (2**60 * 2, "2Ei"),
        (2**40 * 5, "5Ti"),
        (2**50, "1Pi"),
    ],
)
def test_bytes_are_shown_in_the_largest_binary_suffix_that_divides_them_else_fits(amount: int, text: str) -> None:
    assert preflight.fmt_bytes(Decimal(amount)) == text


def test_cpus_are_shown_whole_or_in_millicores() -> None:
    assert preflight.fmt_cpus(Decimal(4)) == "4"
    assert preflight.fmt_cpus(Decimal("3.5")) == "3500m"
    assert preflight.fmt_cpus(Decimal("0.25")) == "250m"


# --------------------------------------------------------------------------------------- fits, or off


def test_a_dedicated_vmi_that_fits_a_pinned_node_is_admitted_silently() -> None:
    snap = cluster_snapshot([node("a", labels=PINNED)])
    for config in (WARN, ENFORCE):
        verdict = validate(vmi(), snap, config)
        assert verdict.allowed and verdict.warnings == [] and verdict.advisories == [] and verdict.causes == []


def test_without_a_synced_view_preflight_says_nothing() -> None:
    obj = vmi()
    assert validate(obj, None).allowed
    unsynced = cluster_snapshot([], kubevirt_cr(), synced=False)
    assert validate(obj, unsynced).allowed and validate(obj, unsynced, WARN).warnings == []
    for rule, o, kind in (
        (preflight.validate_vmi, obj, "VirtualMachineInstance"),
        (preflight.validate_vm, vm(obj["spec"], running=True), "VirtualMachine"),
        (preflight.validate_pod, pod([container("c", "2")], selector=PINNED), "Pod"),
    ):
        for snap in (None, unsynced):
            f = rule(o, Context(ENFORCE, kind, cluster=snap))
            assert f.causes == [] and f.warnings == [] and f.advisories == []


def test_preflight_judges_only_creates_of_vmis_and_pods() -> None:
    empty = cluster_snapshot([])
    for rule, obj, kind in (
        (preflight.validate_vmi, vmi(), "VirtualMachineInstance"),
        (preflight.validate_pod, pod([container("c", "2")], selector=PINNED), "Pod"),
    ):
        assert rule(obj, Context(ENFORCE, kind, operation="CREATE", cluster=empty)).causes
        assert rule in admission.rules_for(kind, "validate", "CREATE")
        assert rule not in admission.rules_for(kind, "validate", "UPDATE")


def test_under_warn_a_finding_is_a_warning_naming_rule_and_field_and_a_structured_advisory() -> None:
    snap = cluster_snapshot([node("a")])
    verdict = validate(vmi(), snap, WARN)
    assert verdict.allowed and verdict.causes == [] and verdict.would_deny == []
    (advisory,) = verdict.advisories
    assert advisory.rule == "preflight.no-cpu-manager-node" and advisory.field == VMI_CPU
    assert verdict.warnings == [f"preflight (preflight.no-cpu-manager-node): {VMI_CPU}: {advisory.message}"]
    enforced = validate(vmi(), snap, ENFORCE)
    assert only(enforced) == advisory and enforced.reason == "Invalid" and enforced.warnings == []


# -------------------------------------------------------------------------------------------------- K1


def test_k1_no_node_carries_a_cpu_manager_label_and_the_ones_set_to_false_are_counted() -> None:
    nodes = [
        node("a"),
        node("b", labels={"kubevirt.io/cpumanager": "false"}),
        node("c", labels={"kubevirt.io/cpumanager": "false", "cpumanager": "false"}),
    ]
    cause = only(validate(vmi(), cluster_snapshot(nodes)))
    assert (
        cause.field == VMI_CPU and cause.rule == "preflight.no-cpu-manager-node" and cause.type == "FieldValueInvalid"
    )
    assert cause.message == (
        f"none of the 3 nodes that could run this VMI carries {LABELS}, so its dedicated CPUs can never be pinned "
        "and it would stay Pending (2 carry the label set to false: the kubelet there does not run the static CPU "
        "manager policy)"
    )
    alone = only(validate(vmi(), cluster_snapshot([node("a")])))
    assert alone.message.startswith(f"none of the 1 node that could run this VMI carries {LABELS}, so")
    assert "false" not in alone.message and "feature gate" not in alone.message


def test_k1_names_the_cpu_manager_gate_when_the_kubevirt_cr_leaves_it_off() -> None:
    nodes = [node("a", labels={"kubevirt.io/cpumanager": "false", "cpumanager": "false"})]
    off = only(validate(vmi(), cluster_snapshot(nodes, kubevirt_cr(gates=["HostDevices"]))))
    assert off.message.endswith(
        "; the KubeVirt CR kubevirt/kubevirt does not enable the CPUManager feature gate, and virt-handler then "
        "labels every node kubevirt.io/cpumanager=false: add CPUManager to "
        "spec.configuration.developerConfiguration.featureGates"
    )
    on = only(validate(vmi(), cluster_snapshot(nodes, kubevirt_cr(gates=["CPUManager"]))))
    assert "feature gate" not in on.message and on.rule == "preflight.no-cpu-manager-node"


def test_k1_any_one_cpu_manager_label_is_enough() -> None:
    for labels in ({"cpumanager": "true"}, {"kubevirt.io/cpumanager": "true", "cpumanager": "false"}):
        assert validate(vmi(), cluster_snapshot([node("a", labels=labels)])).allowed


def test_k1_reads_the_configured_cpu_manager_labels() -> None:
    config = parse_config(
        {"cpuManager": {"nodeSelectorLabels": {"example.com/pinned": "yes"}}, "cluster": {"enforcement": "enforce"}}
    )
    snap = cluster_snapshot([node("a", labels=PINNED)])
    cause = only(validate(vmi(), snap, config))
    assert "carries example.com/pinned=yes, so" in cause.message
    assert validate(vmi(), cluster_snapshot([node("a", labels={"example.com/pinned": "yes"})]), config).allowed
    assert validate(vmi(), snap, ENFORCE).allowed  # the same snapshot, the default labels: not the memo's answer


def test_k1_a_vmi_needs_a_schedulable_node_but_a_dedicated_pod_does_not() -> None:
    snap = cluster_snapshot([node("a", labels=PINNED, kubevirt=False)])
    assert only(validate(vmi(), snap)).rule == "preflight.no-matching-node"
    dedicated = pod([container("app", "2")], selector={"cpumanager": "true"})
    verdict = validate(dedicated, snap)
    assert verdict.allowed and verdict.warnings == []


def test_k1_a_dedicated_pod_is_judged_on_its_cpu_manager_selector_not_placed_by_it() -> None:
    dedicated = pod([container("app", "2")], selector={"kubevirt.io/cpumanager": "true", "disk": "ssd"})
    snap = cluster_snapshot([node("a", labels={"disk": "ssd"}), node("b", labels={**PINNED})])
    cause = only(validate(dedicated, snap))
    assert cause.rule == "preflight.no-cpu-manager-node" and cause.field == "spec.nodeSelector"
    assert cause.message.startswith(f"none of the 1 node that could run this pod carries {LABELS}")
    opted_in = pod([container("app", "2")], annotations={"vm-admission.io/guaranteed-qos": "true"})
    assert only(validate(opted_in, cluster_snapshot([node("a")]))).rule == "preflight.no-cpu-manager-node"


def test_a_pod_that_is_neither_dedicated_nor_declares_passthrough_is_not_preflighted() -> None:
    plain = pod([container("app", "64", memory="1Ti")], selector={"disk": "ssd"})
    assert validate(plain, cluster_snapshot([])).allowed
    f = preflight.validate_pod(plain, Context(ENFORCE, "Pod", cluster=cluster_snapshot([])))
    assert f.causes == [] and f.warnings == []


# -------------------------------------------------------------------------------------------------- K2


def test_k2_a_vmi_needs_its_vcpus_pool_threads_and_emulator_thread_pinned() -> None:
    obj = vmi(
        2,
        cpu={"sockets": 3, "threads": 2, "isolateEmulatorThread": True},
        domain={"ioThreadsPolicy": "supplementalPool", "ioThreads": {"supplementalPoolThreadCount": 2}},
    )
    snap = cluster_snapshot([node("a", cpu=14, labels=PINNED), node("b", cpu=64)])
    cause = only(validate(obj, snap))
    assert cause.rule == "preflight.not-enough-cpus" and cause.field == VMI_CPU
    assert cause.message == (
        f"1 node with {LABELS}; the largest has 14 allocatable CPUs (a), this VMI needs 15 pinned CPUs "
        "(12 vCPUs + 2 I/O pool threads + 1 emulator thread)"
    )
    assert validate(obj, cluster_snapshot([node("a", cpu=15, labels=PINNED)])).allowed


def test_k2_pool_threads_count_whatever_the_io_threads_policy_and_the_emulator_thread_alone() -> None:
    shared = vmi(4, domain={"ioThreadsPolicy": "shared", "ioThreads": {"supplementalPoolThreadCount": 3}})
    cause = only(validate(shared, cluster_snapshot([node("a", cpu=6, labels=PINNED)])))
    assert cause.message.endswith("this VMI needs 7 pinned CPUs (4 vCPUs + 3 I/O pool threads)")
    emulator = vmi(4, cpu={"isolateEmulatorThread": True})
    cause = only(validate(emulator, cluster_snapshot([node("a", cpu=4, labels=PINNED)])))
    assert cause.message.endswith("this VMI needs 5 pinned CPUs (4 vCPUs + 1 emulator thread)")
    plain = only(
        validate(vmi(4), cluster_snapshot([node("a", cpu="3500m", labels=PINNED), node("b", cpu=2, labels=PINNED)]))
    )
    assert plain.message == (
        f"2 nodes with {LABELS}; the largest has 3500m allocatable CPUs (a), this VMI needs 4 pinned CPUs (4 vCPUs)"
    )


def test_k2_a_vmi_without_a_topology_needs_its_cpu_request_pinned() -> None:
    obj = vmi(
        None, domain={"resources": {"requests": {"cpu": "6", "memory": "8Gi"}, "limits": {"cpu": "6", "memory": "8Gi"}}}
    )
    cause = only(validate(obj, cluster_snapshot([node("a", cpu=5, labels=PINNED)])))
    assert cause.rule == "preflight.not-enough-cpus" and "needs 6 pinned CPUs" in cause.message


def test_k2_names_the_nodes_of_the_largest_class() -> None:
    nodes = [node(f"n{i}", cpu=2, labels=PINNED) for i in range(5)]
    cause = only(validate(vmi(4), cluster_snapshot(nodes)))
    assert cause.message.startswith(f"5 nodes with {LABELS}; the largest has 2 allocatable CPUs (n0, n1 and 3 more)")


def test_k2_a_node_without_allocatable_cpu_has_none() -> None:
    bare = node("a", labels=PINNED)
    del bare["status"]["allocatable"]["cpu"]
    cause = only(validate(vmi(4), cluster_snapshot([bare])))
    assert "the largest has 0 allocatable CPUs (a), this VMI needs 4" in cause.message


def test_k2_a_dedicated_pod_needs_its_effective_cpu_requests() -> None:
    snap = cluster_snapshot([node("a", cpu=4, labels=PINNED)])
    apps = pod([container("a", "2"), container("b", "2")], init=[container("i", "3")], selector=PINNED)
    assert validate(apps, snap).allowed  # max(2 + 2, 3)
    bigger_init = pod([container("a", "2"), container("b", "2")], init=[container("i", "5")], selector=PINNED)
    cause = only(validate(bigger_init, snap))
    # the finding goes on the pod's first CPU request (not on the init container that sets the peak)
    assert cause.rule == "preflight.not-enough-cpus" and cause.field == "spec.containers[0].resources.requests.cpu"
    assert (
        cause.message == f"1 node with {LABELS}; the largest has 4 allocatable CPUs (a), this pod needs 5 pinned CPUs"
    )
    sidecar = pod(
        [container("a", "2"), container("b", "2")], init=[container("s", "1", restartPolicy="Always")], selector=PINNED
    )
    cause = only(validate(sidecar, snap))
    assert cause.field == "spec.containers[0].resources.requests.cpu" and cause.message.endswith("needs 5 pinned CPUs")


def test_k2_a_pod_cpu_limit_stands_for_a_missing_request() -> None:
    c = container("a", "6")
    del c["resources"]["requests"]
    cause = only(validate(pod([c], selector=PINNED), cluster_snapshot([node("a", cpu=4, labels=PINNED)])))
    assert cause.field == "spec.containers[0].resources.limits.cpu" and cause.message.endswith("needs 6 pinned CPUs")


def test_k2_a_pod_that_is_not_dedicated_needs_no_pinned_cpus() -> None:
    declared = pod([container("app", "64")], annotations={"vm-admission.io/passthrough": "8086:10c9"})
    snap = cluster_snapshot([node("a", cpu=2, allocatable={"devices.kubevirt.io/8086_10c9": "1"})])
    verdict = validate(declared, snap)
    assert verdict.allowed and preflight_causes(verdict) == []


# -------------------------------------------------------------------------------------------------- K3


def test_k3_device_names_are_counted_per_entry_and_named_with_their_numbers() -> None:
    devices = {
        "gpus": [{"name": "g0", "deviceName": "nvidia.com/T4"}, {"name": "g1", "deviceName": "nvidia.com/T4"}],
        "hostDevices": [{"name": "h0", "deviceName": "intel.com/qat"}],
    }
    obj = vmi(dedicated=False, domain={"devices": devices})
    snap = cluster_snapshot([node("a", allocatable={"nvidia.com/T4": "1"}), node("b")])
    verdict = validate(obj, snap)
    qat, t4 = preflight_causes(verdict)
    assert qat == Cause(
        "spec.domain.devices.hostDevices[0].deviceName",
        "none of the 2 nodes that could run it advertises intel.com/qat, this VMI needs 1 (is its device plugin "
        "running?)",
        rule="preflight.not-enough-devices",
    )
    assert t4 == Cause(
        "spec.domain.devices.gpus[0].deviceName",
        "the most any of the 2 nodes that could run it advertises is 1 nvidia.com/T4 (a), this VMI needs 2",
        rule="preflight.not-enough-devices",
    )
    enough = cluster_snapshot([node("a", allocatable={"nvidia.com/T4": "2", "intel.com/qat": "1"})])
    assert validate(obj, enough).allowed


def test_k3_a_dra_entry_asks_for_no_device() -> None:
    devices = {"gpus": [{"name": "g0", "claimName": "c", "requestName": "r"}]}
    obj = vmi(
        dedicated=False,
        domain={"devices": devices},
        spec={"resourceClaims": [{"name": "c", "resourceClaimName": "rc"}]},
    )
    verdict = validate(obj, cluster_snapshot([node("a")]))
    assert preflight_causes(verdict) == []


def test_k3_a_passthrough_declaration_counts_once_translated_or_not() -> None:
    obj = vmi(dedicated=False, annotations={"vm-admission.io/passthrough": "10de:1eb8"})
    one = cluster_snapshot([node("a", allocatable={"devices.kubevirt.io/10de_1eb8": "1"})])
    assert validate(obj, one).allowed  # not yet translated (mutation skipped)
    result = chain(obj, ENFORCE, cluster=one)  # translated into a hostDevices entry
    assert result.allowed and result.validation.warnings == [] and result.mutation.patch
    none = cluster_snapshot([node("a")])
    cause = only(validate(obj, none))
    assert (
        cause.rule == "preflight.not-enough-devices"
        and cause.field == "metadata.annotations.vm-admission.io/passthrough"
    )
    assert cause.message.startswith("none of the 1 node that could run it advertises devices.kubevirt.io/10de_1eb8")
    assert cause.message.endswith("this VMI needs 1 (is its device plugin running?)")
    translated = chain(obj, ENFORCE, cluster=none)
    assert [c.field for c in preflight_causes(translated.validation)] == [cause.field]


def test_k3_two_instances_of_a_declared_device_need_two() -> None:
    obj = vmi(dedicated=False, annotations={"vm-admission.io/passthrough": "10de:1eb8=2"})
    one = cluster_snapshot([node("a", allocatable={"devices.kubevirt.io/10de_1eb8": "1"})])
    assert only(validate(obj, one)).message.endswith(", this VMI needs 2")
    assert only(chain(obj, ENFORCE, cluster=one).validation).message.endswith(", this VMI needs 2")


def test_k3_a_pod_declaration_counts_once_translated_or_not() -> None:
    declared = pod(
        [container("metrics"), container("app", "2")],
        annotations={"vm-admission.io/passthrough": "8086:10c9=2", "vm-admission.io/passthrough-container": "app"},
    )
    two = cluster_snapshot([node("a", allocatable={"devices.kubevirt.io/8086_10c9": "2"})])
    assert validate(declared, two).allowed
    result = chain(declared, ENFORCE, cluster=two)
    assert (
        result.allowed
        and result.admitted["spec"]["containers"][1]["resources"]["limits"]["devices.kubevirt.io/8086_10c9"]
    )
    one = cluster_snapshot([node("a", allocatable={"devices.kubevirt.io/8086_10c9": "1"})])
    for verdict in (validate(declared, one), chain(declared, ENFORCE, cluster=one).validation):
        cause = only(verdict)
        assert cause.rule == "preflight.not-enough-devices" and cause.message == (
            "the most any of the 1 node that could run it advertises is 1 devices.kubevirt.io/8086_10c9 (a), "
            "this pod needs 2"
        )


def test_k3_a_dedicated_pods_extended_resources_are_devices_but_plain_resources_are_not() -> None:
    c = container("app", "2")
    for part in ("requests", "limits"):
        c["resources"][part].update({"example.com/fpga": "2", "ephemeral-storage": "10Ti"})
    snap = cluster_snapshot([node("a", labels=PINNED, allocatable={"example.com/fpga": "1"})])
    cause = only(validate(pod([c], selector=PINNED), snap))
    assert (
        cause.rule == "preflight.not-enough-devices"
        and cause.field == "spec.containers[0].resources.requests.example.com/fpga"
    )
    assert cause.message.endswith("is 1 example.com/fpga (a), this pod needs 2")


# -------------------------------------------------------------------------------------------------- K4


def test_k4_memory_names_the_largest_node_and_both_amounts() -> None:
    snap = cluster_snapshot([node("a", memory="4Gi"), node("b", memory="6Gi")])
    cause = only(validate(vmi(dedicated=False), snap))
    assert cause == Cause(
        VMI_MEM,
        "the largest of the 2 nodes that could run it has 6Gi allocatable memory (b), this VMI needs 8Gi",
        rule="preflight.not-enough-memory",
    )
    assert validate(vmi(dedicated=False), cluster_snapshot([node("a", memory="8Gi")])).allowed


def test_k4_memory_is_the_request_else_the_limit_else_the_guest() -> None:
    snap = cluster_snapshot([node("a", memory="4Gi")])
    limit = vmi(dedicated=False, memory=None, domain={"resources": {"limits": {"memory": "6Gi"}}})
    guest = vmi(dedicated=False, memory=None, domain={"memory": {"guest": "5Gi"}})
    both = vmi(dedicated=False, domain={"resources": {"requests": {"memory": "3Gi"}, "limits": {"memory": "6Gi"}}})
    assert only(validate(limit, snap)).message.endswith("this VMI needs 6Gi")
    assert only(validate(limit, snap)).field == VMI_MEM
    assert only(validate(guest, snap)).message.endswith("this VMI needs 5Gi")
    assert validate(both, snap).allowed


def test_k4_a_node_without_allocatable_memory() -> None:
    bare = node("a")
    del bare["status"]["allocatable"]["memory"]
    cause = only(validate(vmi(dedicated=False), cluster_snapshot([bare])))
    assert cause.message == "none of the 1 node that could run it has allocatable memory, this VMI needs 8Gi"


def test_k4_hugepages_need_the_page_size_resource_up_to_the_guest() -> None:
    huge = {"memory": {"hugepages": {"pageSize": "1Gi"}}}
    obj = vmi(dedicated=False, memory="4Gi", domain=huge)
    none = cluster_snapshot([node("a", memory="64Gi")])
    assert only(validate(obj, none)).message == (
        "none of the 1 node that could run it has allocatable hugepages-1Gi, this VMI needs 4Gi"
    )
    two = cluster_snapshot([node("a", memory="1Gi", allocatable={"hugepages-1Gi": "2Gi"})])
    cause = only(validate(obj, two))
    assert cause.field == VMI_MEM and cause.message == (
        "the largest of the 1 node that could run it has 2Gi allocatable hugepages-1Gi (a), this VMI needs 4Gi"
    )
    capped = vmi(dedicated=False, memory="4Gi", domain={"memory": {"guest": "2Gi", "hugepages": {"pageSize": "1Gi"}}})
    assert validate(capped, two).allowed  # the amount is cut to the guest memory
    guest_only = vmi(
        dedicated=False, memory=None, domain={"memory": {"guest": "3Gi", "hugepages": {"pageSize": "1Gi"}}}
    )
    assert only(validate(guest_only, two)).message.endswith("this VMI needs 3Gi")


def test_k4_a_pods_memory_adds_up_over_its_containers() -> None:
    dedicated = pod([container("a", "1", memory="3Gi"), container("b", "1", memory="3Gi")], selector=PINNED)
    cause = only(validate(dedicated, cluster_snapshot([node("a", memory="5Gi", labels=PINNED)])))
    assert cause.field == "spec.containers[0].resources.requests.memory"
    assert cause.message.endswith("has 5Gi allocatable memory (a), this pod needs 6Gi")
    huge = container("a", "1", memory="1Gi")
    for part in ("requests", "limits"):
        huge["resources"][part]["hugepages-2Mi"] = "1Gi"
    cause = only(validate(pod([huge], selector=PINNED), cluster_snapshot([node("a", labels=PINNED)])))
    assert cause.field == "spec.containers[0].resources.requests.memory"
    assert cause.message.endswith("has allocatable hugepages-2Mi, this pod needs 1Gi")


# --------------------------------------------------------------------------------------- all at once


def test_every_need_met_somewhere_but_never_on_one_node_names_what_the_closest_lacks() -> None:
    obj = vmi(4)  # 4 pinned CPUs, 8Gi
    nodes = [
        node("a1", cpu=16, memory="4Gi", labels=PINNED),
        node("a2", cpu=16, memory="4Gi", labels=PINNED),
        node("b", cpu=2, memory="64Gi", labels=PINNED),
    ]
    cause = only(validate(obj, cluster_snapshot(nodes)))
    assert cause == Cause(
        VMI_MEM,
        "no single node has everything this VMI needs; the closest (a1, a2) lacks memory",
        rule="preflight.not-enough-memory",
    )
    nodes.reverse()
    assert only(validate(obj, cluster_snapshot(nodes))).message.endswith("the closest (a1, a2) lacks memory")


def test_the_closest_node_is_the_one_meeting_most_needs() -> None:
    gpu = {"devices": {"gpus": [{"name": "g", "deviceName": "nvidia.com/T4"}]}}
    obj = vmi(4, domain=gpu)
    nodes = [
        node("a1", cpu=16, memory="1Gi", labels=PINNED),
        node("a2", cpu=16, memory="1Gi", labels=PINNED),
        node("b", cpu=2, labels=PINNED, allocatable={"nvidia.com/T4": "1"}),
    ]
    cause = only(validate(obj, cluster_snapshot(nodes)))
    assert cause == Cause(
        VMI_CPU,
        "no single node has everything this VMI needs; the closest (b) lacks pinnable CPUs",
        rule="preflight.not-enough-cpus",
    )


def test_the_closest_node_may_lack_several_things() -> None:
    gpu = {"devices": {"gpus": [{"name": "g", "deviceName": "nvidia.com/T4"}]}}
    obj = vmi(4, domain=gpu)
    nodes = [
        node("c", cpu=1, memory="64Gi", labels=PINNED),
        node("a1", cpu=16, memory="1Gi", labels=PINNED),
        node("a2", cpu=16, memory="1Gi", labels=PINNED),
        node("b", cpu=1, memory="1Gi", labels=PINNED, allocatable={"nvidia.com/T4": "1"}),
    ]
    cause = only(validate(obj, cluster_snapshot(nodes)))
    assert cause.rule == "preflight.not-enough-devices" and cause.field == "spec.domain.devices.gpus[0].deviceName"
    assert (
        cause.message == "no single node has everything this VMI needs; the closest (a1, a2) lacks the devices, memory"
    )


def test_shortfalls_are_judged_on_the_cpu_manager_nodes_only() -> None:
    nodes = [node("big", cpu=64, memory="256Gi"), node("small", cpu=2, memory="64Gi", labels=PINNED)]
    cause = only(validate(vmi(4), cluster_snapshot(nodes)))
    assert cause.message.startswith(f"1 node with {LABELS}; the largest has 2 allocatable CPUs (small)")


# -------------------------------------------------------------------------------------------- placement


def test_an_empty_cluster_can_run_nothing() -> None:
    cause = only(validate(vmi(), cluster_snapshot([])))
    assert cause == Cause(
        "spec.nodeSelector", "the cluster has no nodes, so nothing can run this VMI", rule="preflight.no-matching-node"
    )


def test_placement_says_why_each_node_is_out() -> None:
    ssd = {"disk": "ssd"}
    nodes = [
        node("a"),
        node("b", labels={"disk": "hdd"}),
        node("c", labels=ssd, unschedulable=True),
        node("d", labels=ssd, taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}]),
        node("e1", labels=ssd, taints=[{"key": "dedicated", "effect": "NoExecute"}]),
        node("e2", labels=ssd, taints=[{"key": "dedicated", "effect": "NoExecute"}]),
    ]
    cause = only(validate(vmi(dedicated=False, spec={"nodeSelector": ssd}), cluster_snapshot(nodes)))
    assert cause.field == "spec.nodeSelector" and cause.rule == "preflight.no-matching-node"
    assert cause.message == (
        "no node of 6 can run this VMI: 2 nodes do not match its nodeSelector {disk=ssd, kubernetes.io/arch=amd64, "
        "kubevirt.io/schedulable=true}; 2 nodes have the taint dedicated:NoExecute, which it does not tolerate; "
        "1 node have the taint gpu=true:NoSchedule, which it does not tolerate; 1 node are cordoned "
        "(spec.unschedulable)"
    )


def test_placement_names_the_three_commonest_taints_and_one_per_node() -> None:
    nodes = [
        node(f"t{i}-{j}", taints=[{"key": f"t{i}", "effect": "NoSchedule"}]) for i in range(4) for j in range(i + 1)
    ]
    nodes.append(node("two", taints=[{"key": "x1", "effect": "NoSchedule"}, {"key": "x2", "effect": "NoSchedule"}]))
    cause = only(validate(vmi(dedicated=False), cluster_snapshot(nodes)))
    assert cause.message == (
        "no node of 11 can run this VMI: 4 nodes have the taint t3:NoSchedule, which it does not tolerate; "
        "3 nodes have the taint t2:NoSchedule, which it does not tolerate; 2 nodes have the taint t1:NoSchedule, "
        "which it does not tolerate"
    )


def test_placement_by_required_node_affinity_and_tolerations() -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}]
            }
        }
    }
    taint = [{"key": "zone-only", "value": "z1", "effect": "NoSchedule"}]
    snap = cluster_snapshot([node("a", labels={"zone": "z2"}), node("b", labels={"zone": "z1"}, taints=taint)])
    obj = vmi(dedicated=False, spec={"affinity": affinity})
    cause = only(validate(obj, snap))
    assert cause.message == (
        "no node of 2 can run this VMI: 1 node do not match its nodeSelector {kubernetes.io/arch=amd64, "
        "kubevirt.io/schedulable=true} or required node affinity; 1 node have the taint zone-only=z1:NoSchedule, "
        "which it does not tolerate"
    )
    tolerating = vmi(
        dedicated=False,
        spec={
            "affinity": affinity,
            "tolerations": [{"key": "zone-only", "operator": "Equal", "value": "z1", "effect": "NoSchedule"}],
        },
    )
    assert validate(tolerating, snap).allowed
    dedicated = pod([container("app", "2")], selector=PINNED, spec={"affinity": affinity})
    cause = only(validate(dedicated, cluster_snapshot([node("a", labels={"zone": "z2", **PINNED})])))
    assert cause.field == "spec.nodeSelector" and cause.message == (
        "no node of 1 can run this pod: 1 node do not match its required node affinity"
    )


def test_a_cordoned_node_runs_what_tolerates_its_taint() -> None:
    snap = cluster_snapshot([node("a", unschedulable=True)])
    assert only(validate(vmi(dedicated=False), snap)).message == (
        "no node of 1 can run this VMI: 1 node are cordoned (spec.unschedulable)"
    )
    tolerating = vmi(
        dedicated=False,
        spec={
            "tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]
        },
    )
    assert validate(tolerating, snap).allowed


def test_the_launcher_selects_the_vmis_architecture() -> None:
    arm = vmi(dedicated=False, spec={"architecture": "arm64"})
    snap = cluster_snapshot([node("a")])
    cause = only(validate(arm, snap))
    assert "nodeSelector {kubernetes.io/arch=arm64, kubevirt.io/schedulable=true}" in cause.message
    assert validate(arm, cluster_snapshot([node("a", labels={"kubernetes.io/arch": "arm64"})])).allowed
    s390 = cluster_snapshot(
        [node("a", labels={"kubernetes.io/arch": "s390x"})], kubevirt_cr(default_architecture="s390x")
    )
    assert validate(vmi(dedicated=False), s390).allowed  # the CR's default architecture


# ------------------------------------------------------------------------------------------------- VMs


def test_a_vm_to_run_is_preflighted_on_its_template_and_a_stopped_one_is_not() -> None:
    snap = cluster_snapshot([node("a")])
    template = vmi()["spec"]
    for run in (
        {"running": True},
        {"runStrategy": "Always"},
        {"runStrategy": "RerunOnFailure"},
        {"runStrategy": "Once"},
    ):
        for operation in ("CREATE", "UPDATE"):
            obj = vm(template, **run)
            cause = only(validate(obj, snap, operation=operation, old=obj if operation == "UPDATE" else None))
            assert cause.field == "spec.template.spec.domain.cpu.dedicatedCpuPlacement"
            assert "could run this VM carries" in cause.message
    for stopped in ({"running": False}, {"runStrategy": "Halted"}, {"runStrategy": "Manual"}, {}):
        assert validate(vm(template, **stopped), snap).allowed
    assert not preflight.to_run({"spec": None}) and not preflight.to_run({})
    assert not preflight.to_run({"spec": {"running": "true"}})


def test_a_vm_without_a_template_spec_is_not_preflighted() -> None:
    snap = cluster_snapshot([], kubevirt_cr())
    for spec in ({"running": True}, {"running": True, "template": None}, {"running": True, "template": {"spec": 1}}):
        obj = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "v"}, "spec": spec}
        f = preflight.validate_vm(obj, Context(ENFORCE, "VirtualMachine", cluster=snap))
        assert f.causes == [] and f.warnings == []
    f = preflight.validate_vm({"spec": 3}, Context(ENFORCE, "VirtualMachine", cluster=snap))
    assert f.causes == []


def test_a_vm_and_a_vmi_of_one_shape_each_get_their_own_answer_from_one_snapshot() -> None:
    snap = cluster_snapshot([node("a")])
    first = only(validate(vmi(), snap))
    second = only(validate(vm(vmi()["spec"], running=True), snap))
    assert "this VMI" in first.message and "this VM carries" in second.message
    assert second.field == "spec.template.spec.domain.cpu.dedicatedCpuPlacement"


# ------------------------------------------------------------------------------------------------ K5, K6


def test_k6_host_devices_with_the_gate_off_are_denied_even_under_warn() -> None:
    devices = {"devices": {"hostDevices": [{"name": "h", "deviceName": "intel.com/qat"}]}}
    obj = vmi(dedicated=False, domain=devices)
    roomy = [node("a", allocatable={"intel.com/qat": "1"})]
    for config in (WARN, ENFORCE):
        cause = only(validate(obj, cluster_snapshot(roomy, kubevirt_cr(gates=["CPUManager"])), config))
        assert cause == Cause(
            "spec.domain.devices.hostDevices",
            "the KubeVirt CR kubevirt/kubevirt does not enable the HostDevices feature gate, so KubeVirt refuses any "
            "hostDevices (on the field spec.HostDevices): add HostDevices to "
            "spec.configuration.developerConfiguration.featureGates, or remove the host devices",
            rule="preflight.host-devices-gate-off",
        )
    assert validate(obj, cluster_snapshot(roomy, kubevirt_cr(gates=["HostDevices"]))).allowed
    assert validate(obj, cluster_snapshot(roomy)).allowed  # no CR known: §5's static warning instead
    empty = vmi(dedicated=False, domain={"devices": {"hostDevices": []}})
    assert only(validate(empty, cluster_snapshot(roomy, kubevirt_cr()))).rule == "preflight.host-devices-gate-off"
    gpus = vmi(dedicated=False, domain={"devices": {"gpus": [{"name": "g", "deviceName": "nvidia.com/T4"}]}})
    snap = cluster_snapshot([node("a", allocatable={"nvidia.com/T4": "1"})], kubevirt_cr())
    assert validate(gpus, snap).allowed


def test_k6_on_a_vm_template_even_when_it_is_not_to_run() -> None:
    obj = vm(vmi(dedicated=False, domain={"devices": {"hostDevices": []}})["spec"])
    cause = only(validate(obj, cluster_snapshot([], kubevirt_cr()), operation="UPDATE", old=obj))
    assert (
        cause.field == "spec.template.spec.domain.devices.hostDevices"
        and cause.rule == "preflight.host-devices-gate-off"
    )


def test_k5_device_names_the_cr_does_not_permit() -> None:
    permitted = {"pciHostDevices": [{"pciVendorSelector": "10DE:1EB8", "resourceName": "nvidia.com/T4"}]}
    cr = kubevirt_cr(gates=["HostDevices"], permitted=permitted)
    devices = {
        "gpus": [{"name": "g0", "deviceName": "nvidia.com/T4"}, {"name": "g1", "deviceName": "nvidia.com/A100"}],
        "hostDevices": [{"name": "h0", "deviceName": "intel.com/qat"}],
    }
    obj = vmi(dedicated=False, domain={"devices": devices})
    snap = cluster_snapshot(
        [node("a", allocatable={"nvidia.com/T4": "1", "nvidia.com/A100": "1", "intel.com/qat": "1"})], cr
    )
    for config in (WARN, ENFORCE):
        verdict = validate(obj, snap, config)
        a100, qat = preflight_causes(verdict)
        assert a100 == Cause(
            "spec.domain.devices.gpus[1].deviceName",
            "'nvidia.com/A100' is not among the KubeVirt CR kubevirt/kubevirt's permittedHostDevices (pciHostDevices, "
            "mediatedDevices, usb), so KubeVirt would fail to render the launcher pod ('GPU nvidia.com/A100 is not "
            "permitted in permittedHostDevices configuration'): add an entry with this resourceName "
            "(externalResourceProvider: true for an external device plugin)",
            "FieldValueNotSupported",
            rule="preflight.device-not-permitted",
        )
        assert (
            qat.field == "spec.domain.devices.hostDevices[0].deviceName"
            and qat.rule == "preflight.device-not-permitted"
        )
        assert "('HostDevice intel.com/qat is not permitted" in qat.message
    unlisted = cluster_snapshot(
        [node("a", allocatable={"nvidia.com/A100": "1", "nvidia.com/T4": "1", "intel.com/qat": "1"})],
        kubevirt_cr(gates=["HostDevices"]),
    )
    assert validate(obj, unlisted).allowed  # no permittedHostDevices: KubeVirt checks nothing


def test_k5_the_configs_permitted_devices_add_to_the_crs() -> None:
    config = parse_config(
        {
            "passthrough": {
                "permittedDevices": [{"selector": "10de:1eb8", "resourceName": "devices.kubevirt.io/10de_1eb8"}]
            },
            "cluster": {"enforcement": "enforce"},
        }
    )
    cr = kubevirt_cr(gates=["HostDevices"], permitted={"pciHostDevices": []})
    obj = vmi(
        dedicated=False,
        domain={
            "devices": {
                "hostDevices": [
                    {"name": "h", "deviceName": "devices.kubevirt.io/10de_1eb8"},
                    {"name": "x"},
                    {"name": "y", "deviceName": ""},
                ]
            }
        },
    )
    snap = cluster_snapshot([node("a", allocatable={"devices.kubevirt.io/10de_1eb8": "1"})], cr)
    assert preflight_causes(validate(obj, snap, config)) == []
    (cause,) = preflight_causes(validate(obj, snap, ENFORCE))
    assert (
        cause.rule == "preflight.device-not-permitted"
        and cause.field == "spec.domain.devices.hostDevices[0].deviceName"
    )


def test_the_cr_rules_skip_specs_they_cannot_read() -> None:
    snap = cluster_snapshot([], kubevirt_cr(permitted={"usb": []}))
    for spec in (
        None,
        [],
        {"domain": []},
        {"domain": {"devices": []}},
        {"domain": {"devices": {"gpus": {}}}},
        {"domain": {"devices": {"gpus": [1, {"deviceName": 2}]}}},
    ):
        obj = {
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachine",
            "metadata": {"name": "v"},
            "spec": {"template": {"spec": spec}},
        }
        assert preflight.validate_vm(obj, Context(ENFORCE, "VirtualMachine", cluster=snap)).causes == []


# -------------------------------------------------------------------------------------------------- memo


def test_one_snapshot_answers_each_shape_for_itself() -> None:
    snap = cluster_snapshot(
        [
            node(
                "a",
                cpu=4,
                memory="8Gi",
                labels={**PINNED, "disk": "ssd"},
                taints=[{"key": "k", "effect": "NoSchedule"}],
            )
        ]
    )
    tol = {"tolerations": [{"key": "k", "operator": "Exists"}]}
    fits = vmi(4, spec=tol)
    assert validate(fits, snap).allowed
    variants = [
        vmi(5, spec=tol),
        vmi(4, memory="9Gi", spec=tol),
        vmi(4, spec={**tol, "nodeSelector": {"disk": "hdd"}}),
        vmi(4),
        vmi(
            4,
            spec={
                **tol,
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["hdd"]}]}
                            ]
                        }
                    }
                },
            },
        ),
        vmi(4, spec=tol, domain={"devices": {"gpus": [{"name": "g", "deviceName": "nvidia.com/T4"}]}}),
        vmi(4, spec=tol, cpu={"isolateEmulatorThread": True}),
        vmi(4, spec=tol, domain={"memory": {"hugepages": {"pageSize": "2Mi"}}}),
    ]
    for v in variants:
        assert not validate(v, snap).allowed, v
        assert validate(fits, snap).allowed
    spread = vmi(dedicated=False, memory="9Gi", spec=tol)
    assert only(validate(spread, snap)).field == VMI_MEM
    limit = vmi(dedicated=False, memory=None, spec=tol, domain={"resources": {"limits": {"memory": "9Gi"}}})
    assert only(validate(limit, snap)).field == VMI_MEM


def test_the_memo_is_bounded() -> None:
    snap = cluster_snapshot([node("a", labels=PINNED)])
    for i in range(preflight.MEMO_SIZE):
        snap.memo[("filler", i)] = ()
    assert validate(vmi(), snap).allowed
    assert len(snap.memo) == 1
    assert validate(vmi(2), snap).allowed and len(snap.memo) == 2


def test_a_remembered_answer_is_not_shared_with_the_caller() -> None:
    snap = cluster_snapshot([node("a")])
    demand = preflight.vmi_demand(
        {}, vmi()["spec"], ("spec",), Context(ENFORCE, "VirtualMachineInstance", cluster=snap), "this VMI"
    )
    assert demand is not None
    ctx = Context(ENFORCE, "VirtualMachineInstance", cluster=snap)
    first = preflight.fit_memo(demand, ctx, snap)
    first.clear()
    again = preflight.vmi_demand(
        {}, vmi()["spec"], ("spec",), Context(ENFORCE, "VirtualMachineInstance", cluster=snap), "this VMI"
    )
    assert again is not None
    assert [r for r, _, _ in preflight.fit_memo(again, ctx, snap)] == [preflight.NO_CPU_MANAGER_NODE]


def test_a_vmi_the_cpu_rules_cannot_read_gets_no_placement_finding() -> None:
    bad = vmi(dedicated=False, domain={"resources": []})
    assert validate(bad, cluster_snapshot([])).code == 400

    def ctx() -> Context:  # one per review: the spec is read once per review (Context.cpu_spec)
        return Context(ENFORCE, "VirtualMachineInstance", cluster=cluster_snapshot([]))

    assert preflight.validate_vmi(bad, ctx()).causes == []  # without the CPU rules having run too
    assert preflight.validate_vmi(vmi(dedicated=False), ctx()).causes  # (the empty cluster fits nothing)
    f = preflight.validate_vmi({"spec": 5}, Context(ENFORCE, "VirtualMachineInstance", cluster=cluster_snapshot([])))
    assert f.causes == []


# ------------------------------------------------------------------------------- found by mutation testing


def test_a_vmi_with_unreadable_device_lists_is_a_bad_request_not_an_error() -> None:
    for devices in ({"gpus": "x"}, {"hostDevices": [3]}):
        verdict = validate(
            vmi(dedicated=False, domain={"devices": devices}), cluster_snapshot([node("a")], kubevirt_cr())
        )
        assert verdict.code == 400 and not verdict.allowed


def test_k3_a_hand_written_entry_and_an_untranslated_declaration_of_one_resource_add_up() -> None:
    devices = {"hostDevices": [{"name": "mine", "deviceName": "devices.kubevirt.io/10de_1eb8"}]}
    obj = vmi(dedicated=False, domain={"devices": devices}, annotations={"vm-admission.io/passthrough": "10de:1eb8"})
    one = cluster_snapshot([node("a", allocatable={"devices.kubevirt.io/10de_1eb8": "1"})])
    assert only(validate(obj, one)).message.endswith(
        "advertises is 1 devices.kubevirt.io/10de_1eb8 (a), this VMI needs 2"
    )


def test_a_direct_call_defaults_the_architecture_from_the_config() -> None:
    arm_nodes = cluster_snapshot([node("a", labels={"kubernetes.io/arch": "arm64"})])
    ctx = Context(ENFORCE, "VirtualMachineInstance", cluster=arm_nodes)
    (cause,) = preflight.validate_vmi(vmi(dedicated=False), ctx).causes
    assert "{kubernetes.io/arch=amd64, kubevirt.io/schedulable=true}" in cause.message
    arm = parse_config({"kubevirt": {"defaultArchitecture": "arm64"}, "cluster": {"enforcement": "enforce"}})
    assert (
        preflight.validate_vmi(vmi(dedicated=False), Context(arm, "VirtualMachineInstance", cluster=arm_nodes)).causes
        == []
    )


def test_a_direct_call_on_a_vm_counts_its_templates_declaration() -> None:
    template = {
        "metadata": {"annotations": {"vm-admission.io/passthrough": "10de:1eb8"}},
        "spec": vmi(dedicated=False)["spec"],
    }
    obj = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": "v", "namespace": "ns"},
        "spec": {"running": True, "template": template},
    }
    (cause,) = preflight.validate_vm(
        obj, Context(ENFORCE, "VirtualMachine", cluster=cluster_snapshot([node("a")]))
    ).causes
    assert cause.rule == "preflight.not-enough-devices" and "devices.kubevirt.io/10de_1eb8" in cause.message
    assert cause.field == "spec.template.metadata.annotations.vm-admission.io/passthrough"


def test_k4_a_vmi_that_asks_for_no_memory_has_no_memory_finding() -> None:
    bare = node("a")
    del bare["status"]["allocatable"]["memory"]
    verdict = validate(vmi(dedicated=False, memory=None), cluster_snapshot([bare]))
    assert preflight_causes(verdict) == []


def test_k4_the_memory_limit_counts_before_a_smaller_guest() -> None:
    obj = vmi(
        dedicated=False, memory=None, domain={"resources": {"limits": {"memory": "6Gi"}}, "memory": {"guest": "2Gi"}}
    )
    assert only(validate(obj, cluster_snapshot([node("a", memory="4Gi")]))).message.endswith("this VMI needs 6Gi")


def test_k4_an_unreadable_page_size_is_judged_as_plain_memory() -> None:
    obj = vmi(dedicated=False, domain={"memory": {"hugepages": {"pageSize": "lots"}}})
    (cause,) = preflight_causes(validate(obj, cluster_snapshot([node("a", memory="4Gi")])))
    assert cause.rule == "preflight.not-enough-memory" and "4Gi allocatable memory (a)" in cause.message
    not_text = vmi(dedicated=False, domain={"memory": {"hugepages": {"pageSize": 2}}})
    (cause,) = preflight_causes(validate(not_text, cluster_snapshot([node("a", memory="4Gi")])))
    assert "allocatable memory" in cause.message


def test_k4_hugepages_below_the_guest_memory_stay_as_requested() -> None:
    obj = vmi(dedicated=False, memory="4Gi", domain={"memory": {"guest": "6Gi", "hugepages": {"pageSize": "1Gi"}}})
    snap = cluster_snapshot([node("a", allocatable={"hugepages-1Gi": "5Gi"})])
    assert preflight_causes(validate(obj, snap)) == []


def test_k4_one_byte_of_memory_is_some_memory() -> None:
    cause = only(validate(vmi(dedicated=False), cluster_snapshot([node("a", memory="1")])))
    assert (
        cause.message == "the largest of the 1 node that could run it has 1 allocatable memory (a), this VMI needs 8Gi"
    )


def test_a_dedicated_pod_container_without_resources_or_without_cpu_adds_no_cpu() -> None:
    snap = cluster_snapshot([node("a", cpu=4, labels=PINNED)])
    bare = {"name": "bare", "image": "x"}
    verdict = validate(pod([container("app", "4"), bare, container("logs")], selector=PINNED), snap)
    assert preflight_causes(verdict) == []
    verdict = validate(pod([container("app", "4"), {**bare, "resources": "none"}], selector=PINNED), snap)
    assert preflight_causes(verdict) == []


def test_a_pod_counts_requests_not_limits_when_both_are_given() -> None:
    c = container("app", "2")
    c["resources"]["requests"]["memory"], c["resources"]["limits"]["memory"] = "2Gi", "8Gi"
    declared = pod([c], annotations={"vm-admission.io/passthrough": "8086:10c9"})
    snap = cluster_snapshot([node("a", memory="4Gi", allocatable={"devices.kubevirt.io/8086_10c9": "1"})])
    assert preflight_causes(validate(declared, snap)) == []


def test_a_pod_request_that_does_not_parse_counts_as_none() -> None:
    c = container("app", "2")
    c["resources"]["requests"]["memory"] = c["resources"]["limits"]["memory"] = "lots"
    declared = pod([c], annotations={"vm-admission.io/passthrough": "8086:10c9"})
    bare = node("a", allocatable={"devices.kubevirt.io/8086_10c9": "1"})
    del bare["status"]["allocatable"]["memory"]
    assert preflight_causes(validate(declared, cluster_snapshot([bare]))) == []


def test_a_pods_extended_resource_counts_from_its_requests_or_its_limits_alone() -> None:
    snap = cluster_snapshot([node("a", labels=PINNED)])
    for part in ("requests", "limits"):
        c = container("app", "2")
        c["resources"][part]["example.com/fpga"] = "1"
        cause = only(validate(pod([c], selector=PINNED), snap))
        assert (
            cause.rule == "preflight.not-enough-devices"
            and cause.field == f"spec.containers[0].resources.{part}.example.com/fpga"
        )


def test_a_pod_resource_without_a_domain_is_no_device() -> None:
    c = container("app", "2")
    c["resources"]["requests"]["widgets"] = c["resources"]["limits"]["widgets"] = "1"
    assert preflight_causes(validate(pod([c], selector=PINNED), cluster_snapshot([node("a", labels=PINNED)]))) == []


def test_a_zero_request_hides_none_of_the_containers_other_requests() -> None:
    containers = []
    for i in range(10):
        c = container(f"c{i}", memory="1Gi")
        for j in range(10):
            c["resources"]["requests"][f"example.com/z{i}-{j}"] = c["resources"]["limits"][f"example.com/z{i}-{j}"] = (
                "0"
            )
        containers.append(c)
    declared = pod(
        containers,
        annotations={"vm-admission.io/passthrough": "8086:10c9", "vm-admission.io/passthrough-container": "c0"},
    )
    snap = cluster_snapshot([node("a", memory="9Gi", allocatable={"devices.kubevirt.io/8086_10c9": "1"})])
    assert only(validate(declared, snap)).message.endswith("this pod needs 10Gi")


def test_a_pods_init_containers_peak_is_their_largest_and_the_app_containers_sum_may_exceed_it() -> None:
    snap = cluster_snapshot([node("a", cpu=4, labels=PINNED)])
    inits = pod([container("a", "1")], init=[container("i", "5"), container("j", "3")], selector=PINNED)
    assert only(validate(inits, snap)).message.endswith("this pod needs 5 pinned CPUs")
    three = cluster_snapshot([node("a", cpu=3, labels=PINNED)])
    apps = pod([container("a", "2"), container("b", "2")], init=[container("i", "3")], selector=PINNED)
    assert only(validate(apps, three)).message.endswith("this pod needs 4 pinned CPUs")


def test_a_pod_whose_only_cpu_is_a_fractional_init_container() -> None:
    dedicated = pod([container("app")], init=[container("i", "500m")], selector=PINNED)
    cause = only(validate(dedicated, cluster_snapshot([node("a", cpu="400m", labels=PINNED)])))
    assert cause.rule == "preflight.not-enough-cpus" and cause.message.endswith(
        "has 400m allocatable CPUs (a), this pod needs 500m pinned CPUs"
    )


def test_a_pods_hugepages_without_memory_are_reported_on_the_hugepages_request() -> None:
    c = {
        "name": "app",
        "image": "x",
        "resources": {"requests": {"cpu": "1", "hugepages-2Mi": "1Gi"}, "limits": {"cpu": "1", "hugepages-2Mi": "1Gi"}},
    }
    cause = only(validate(pod([c], selector=PINNED), cluster_snapshot([node("a", labels=PINNED)])))
    assert (
        cause.rule == "preflight.not-enough-memory"
        and cause.field == "spec.containers[0].resources.requests.hugepages-2Mi"
    )


def test_an_opted_in_pod_whose_spec_is_not_a_map_is_a_bad_request_with_the_view_on() -> None:
    for spec in (None, [], "x"):
        obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "annotations": {"vm-admission.io/guaranteed-qos": "true"}},
            "spec": spec,
        }
        verdict = validate(obj, cluster_snapshot([node("a", labels=PINNED)]))
        assert not verdict.allowed


def test_placement_counts_a_node_once_for_what_keeps_it_out() -> None:
    taint = [{"key": "gpu", "effect": "NoSchedule"}, {"key": "z-other", "effect": "NoSchedule"}]
    nodes = [
        node("hdd", labels={"disk": "hdd"}, taints=taint),
        node("cordoned", labels={"disk": "ssd"}, unschedulable=True, taints=taint),
        node("t1", labels={"disk": "ssd", "pool": "1"}, taints=taint),
        node("t2", labels={"disk": "ssd", "pool": "2"}, taints=taint),
        node("t3", labels={"disk": "ssd", "pool": "2"}, taints=taint),
    ]
    cause = only(validate(vmi(dedicated=False, spec={"nodeSelector": {"disk": "ssd"}}), cluster_snapshot(nodes)))
    assert cause.message == (
        "no node of 5 can run this VMI: 1 node do not match its nodeSelector {disk=ssd, kubernetes.io/arch=amd64, "
        "kubevirt.io/schedulable=true}; 3 nodes have the taint gpu:NoSchedule, which it does not tolerate; 1 node are "
        "cordoned (spec.unschedulable)"
    )


def test_k1_message_starts_with_the_nodes_when_it_names_the_gate() -> None:
    off = only(validate(vmi(), cluster_snapshot([node("a")], kubevirt_cr())))
    assert off.message.startswith(f"none of the 1 node that could run this VMI carries {LABELS}, so its dedicated")
    assert "does not enable the CPUManager feature gate" in off.message


def test_of_equally_large_nodes_the_first_is_named() -> None:
    nodes = [node("a", cpu=2, labels={**PINNED, "pool": "x"}), node("b", cpu=2, labels={**PINNED, "pool": "y"})]
    assert "the largest has 2 allocatable CPUs (a)," in only(validate(vmi(4), cluster_snapshot(nodes))).message


def test_nodes_lacking_a_resource_count_as_having_none_of_it_when_no_node_fits_all() -> None:
    no_cpu = node("b", memory="64Gi", labels=PINNED)
    del no_cpu["status"]["allocatable"]["cpu"]
    cause = only(validate(vmi(4), cluster_snapshot([node("a", cpu=16, memory="4Gi", labels=PINNED), no_cpu])))
    assert cause.message.startswith("no single node has everything this VMI needs")
    no_mem = node("b", cpu=16, labels=PINNED)
    del no_mem["status"]["allocatable"]["memory"]
    cause = only(validate(vmi(4), cluster_snapshot([node("a", cpu=2, memory="64Gi", labels=PINNED), no_mem])))
    assert cause.message.startswith("no single node has everything this VMI needs")


def test_one_snapshot_tells_affinities_and_tolerations_apart() -> None:
    snap = cluster_snapshot([node("a", labels={"zone": "z1"}, taints=[{"key": "k", "effect": "NoSchedule"}])])
    tol = [{"key": "k", "operator": "Exists"}]

    def zone(z: str, tolerations: list[dict[str, Any]]) -> dict[str, Any]:
        term = {"matchExpressions": [{"key": "zone", "operator": "In", "values": [z]}]}
        aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
        return vmi(dedicated=False, memory="1Gi", spec={"affinity": aff, "tolerations": tolerations})

    assert validate(zone("z1", tol), snap).allowed
    assert not validate(zone("z2", tol), snap).allowed
    assert not validate(zone("z1", [{"key": "other", "operator": "Exists"}]), snap).allowed
    assert validate(zone("z1", tol), snap).allowed


@pure_python_only
def test_one_shape_is_judged_once_per_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = preflight.fit

    def counting(*args: Any) -> Any:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(preflight, "fit", counting)
    snap = cluster_snapshot([node("a")])
    first, second = validate(vmi(), snap), validate(vmi(), snap)
    assert len(calls) == 1 and first.causes == second.causes and first.causes
    validate(vmi(), cluster_snapshot([node("a")]))
    assert len(calls) == 2  # a new snapshot starts empty


def test_a_pods_memory_findings_go_on_its_first_memory_request() -> None:
    huge = {
        "name": "huge",
        "image": "x",
        "resources": {"requests": {"cpu": "1", "hugepages-2Mi": "1Gi"}, "limits": {"cpu": "1", "hugepages-2Mi": "1Gi"}},
    }
    dedicated = pod([huge, container("app", "1")], selector=PINNED)
    cause = only(validate(dedicated, cluster_snapshot([node("a", labels=PINNED)])))
    assert cause.rule == "preflight.not-enough-memory" and cause.field == "spec.containers[1].resources.requests.memory"
    assert cause.message.endswith("has allocatable hugepages-2Mi, this pod needs 1Gi")
