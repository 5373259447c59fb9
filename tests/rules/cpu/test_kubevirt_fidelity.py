"""KubeVirt fidelity of the CPU/memory rules: ioThreadsPolicy, memory hotplug, default architecture.

Facts: KubeVirt's VM admitter (memory hotplug, ioThreadsPolicy) and its defaulting (the architecture). Two
deliberate differences from KubeVirt (docs/dedicated-cpu.md): the supplementalPool cause is on
``ioThreads.supplementalPoolThreadCount`` (KubeVirt: ``ioThreads.count``), and every failing memory-hotplug
condition is reported (KubeVirt: the first only).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.testkit.review import assert_crd_valid
from webhook.config import Config, parse_config
from webhook.k8s.snapshot import ClusterSnapshot, KubeVirtView
from webhook.rules import cpu
from webhook.rules.base import Cause, Context, Findings, default_architecture

KINDS = ["VirtualMachineInstance", "VirtualMachine"]
ROOT = {"VirtualMachineInstance": "spec.", "VirtualMachine": "spec.template.spec."}
GUEST = "spec.template.spec.domain.memory.guest"


def wrap(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    spec.setdefault("domain", {}).setdefault("devices", {})
    meta = {"name": "t", "namespace": "default"}
    if kind == "VirtualMachineInstance":
        return {"apiVersion": "kubevirt.io/v1", "kind": kind, "metadata": meta, "spec": spec}
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": kind,
        "metadata": meta,
        "spec": {"runStrategy": "Always", "template": {"metadata": {}, "spec": spec}},
    }


def cluster(arch: str, synced: bool = True) -> ClusterSnapshot:
    return ClusterSnapshot(synced=synced, kubevirt=KubeVirtView("kubevirt", "kubevirt", default_architecture=arch))


def run(
    obj: dict[str, Any],
    *,
    config: Config | None = None,
    snapshot: ClusterSnapshot | None = None,
    operation: str = "CREATE",
) -> Findings:
    ctx = Context(config=config or Config(), kind=obj["kind"], operation=operation, cluster=snapshot)  # type: ignore[arg-type]
    findings = cpu.validate_vm(obj, ctx) if obj["kind"] == "VirtualMachine" else cpu.validate_vmi(obj, ctx)
    assert findings.bad_request is None, findings.bad_request
    return findings


def of_rule(findings: Findings, rule: str) -> list[Cause]:
    return [c for c in findings.causes if c.rule == rule]


def memory(requests: str = "2Gi", **domain: Any) -> dict[str, Any]:
    return {"domain": {"resources": {"requests": {"memory": requests}}, **domain}}


# --- ioThreadsPolicy (d.3) -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("policy", ["dedicated", "Shared", ""])
def test_rejects_an_unknown_io_threads_policy(kind: str, policy: str) -> None:
    findings = run(wrap(kind, memory(ioThreadsPolicy=policy)))
    [cause] = findings.causes
    assert (cause.field, cause.type, cause.rule) == (
        ROOT[kind] + "domain.ioThreadsPolicy",
        "FieldValueInvalid",
        "cpu.unknown-io-threads-policy",
    )
    assert repr(policy) in cause.message and "shared, auto or supplementalPool" in cause.message


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("io_threads", "said"), [(None, "is not set"), ({}, "is not set"), ({"supplementalPoolThreadCount": 0}, "is 0")]
)
def test_rejects_a_supplemental_pool_without_a_positive_thread_count(
    kind: str, io_threads: dict[str, Any] | None, said: str
) -> None:
    spec = memory(ioThreadsPolicy="supplementalPool")
    if io_threads is not None:
        spec["domain"]["ioThreads"] = io_threads
    [cause] = run(wrap(kind, spec)).causes
    # we name the field to fix; KubeVirt says spec.domain.ioThreads.count, a field that does not exist
    assert (cause.field, cause.type, cause.rule) == (
        ROOT[kind] + "domain.ioThreads.supplementalPoolThreadCount",
        "FieldValueInvalid",
        "cpu.io-thread-pool-missing",
    )
    assert said in cause.message and "positive" in cause.message


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "domain",
    [
        {"ioThreadsPolicy": "shared"},
        {"ioThreadsPolicy": "auto"},
        {"ioThreadsPolicy": "supplementalPool", "ioThreads": {"supplementalPoolThreadCount": 2}},
        {"ioThreads": {"supplementalPoolThreadCount": 0}},  # no policy: KubeVirt checks nothing
    ],
)
def test_accepts_known_io_threads_policies(kind: str, domain: dict[str, Any]) -> None:
    obj = wrap(kind, memory(**domain))
    assert run(obj).causes == []
    assert_crd_valid(obj)


def test_a_negative_pool_count_is_refused_on_its_field() -> None:
    spec = memory(ioThreadsPolicy="supplementalPool", ioThreads={"supplementalPoolThreadCount": -1})
    causes = run(wrap("VirtualMachineInstance", spec)).causes
    assert {(c.field, c.rule) for c in causes} == {
        ("spec.domain.ioThreads.supplementalPoolThreadCount", "cpu.negative-count"),
        ("spec.domain.ioThreads.supplementalPoolThreadCount", "cpu.io-thread-pool-missing"),
    }


# --- memory hotplug (d.1) ------------------------------------------------------------------------------------


def hotplug(guest: str | None = "2Gi", max_guest: str = "8Gi", **domain: Any) -> dict[str, Any]:
    mem: dict[str, Any] = {"maxGuest": max_guest}
    if guest is not None:
        mem["guest"] = guest
    spec: dict[str, Any] = {"domain": {"memory": mem, **domain}}
    return spec


def test_accepts_memory_hotplug_within_kubevirts_conditions() -> None:
    obj = wrap("VirtualMachine", hotplug())
    assert run(obj).causes == []
    assert_crd_valid(obj)


NUMA_RT = {"dedicatedCpuPlacement": True, "realtime": {}, "numa": {"guestMappingPassthrough": {}}}
HOTPLUG_DENIED = [
    pytest.param(hotplug(cpu=NUMA_RT), "realtime", id="realtime"),
    pytest.param(hotplug(cpu={"dedicatedCpuPlacement": True, "numa": {"guestMappingPassthrough": {}}}), "NUMA",
                 id="NUMA guestMappingPassthrough"),
    pytest.param(hotplug(launchSecurity={"sev": {}}), "launchSecurity", id="launchSecurity (encrypted VM)"),
    pytest.param(hotplug(guest=None), "needs the guest memory", id="guest unset and not defaultable"),
    pytest.param(hotplug(guest="4Gi", max_guest="2Gi"), "is more than", id="guest above maxGuest"),
    pytest.param(hotplug(guest="1025Mi"), "not a multiple of 2Mi", id="guest not 2Mi aligned"),
    pytest.param(hotplug(max_guest="8193Mi"), "maxGuest '8193Mi' is not a multiple of 2Mi",
                 id="maxGuest not 2Mi aligned"),
    pytest.param({**hotplug(guest="3Gi", max_guest="8Gi"), "architecture": "arm64"}, "only on amd64",
                 id="not amd64"),
    pytest.param(hotplug(guest="512Mi", max_guest="2Gi"), "at least 1Gi", id="guest below 1Gi"),
]  # fmt: skip


@pytest.mark.parametrize("operation", ["CREATE", "UPDATE"])
@pytest.mark.parametrize(("spec", "word"), HOTPLUG_DENIED)
def test_rejects_memory_hotplug_that_kubevirt_refuses_on_the_guest_field(
    spec: dict[str, Any], word: str, operation: str
) -> None:
    obj = wrap("VirtualMachine", spec)
    found = of_rule(run(obj, operation=operation), "cpu.memory-hotplug-unsupported")
    assert found, "expected a memory hotplug cause"
    assert all((c.field, c.type) == (GUEST, "FieldValueInvalid") for c in found)
    assert any(word in c.message for c in found), [c.message for c in found]


def test_guest_and_max_guest_align_to_1gi_with_1gi_hugepages() -> None:
    spec = hotplug(guest="3Gi", max_guest="9Gi")
    spec["domain"]["memory"]["hugepages"] = {"pageSize": "1Gi"}
    assert of_rule(run(wrap("VirtualMachine", spec)), "cpu.memory-hotplug-unsupported") == []
    spec["domain"]["memory"]["maxGuest"] = "9218Mi"  # 2Mi aligned, not 1Gi aligned
    [cause] = of_rule(run(wrap("VirtualMachine", spec)), "cpu.memory-hotplug-unsupported")
    assert "not a multiple of 1Gi (the hugepage size)" in cause.message


def test_guest_memory_is_defaulted_from_the_request_before_the_hotplug_check() -> None:
    spec = hotplug(guest=None)
    spec["domain"]["resources"] = {"requests": {"memory": "1025Mi"}}
    [cause] = of_rule(run(wrap("VirtualMachine", spec)), "cpu.memory-hotplug-unsupported")
    assert "1025Mi" in cause.message and "taken from the memory request" in cause.message


def test_every_failing_hotplug_condition_is_reported_at_once() -> None:
    # KubeVirt reports only the first failing condition; we report all of them
    spec = {**hotplug(guest="513Mi", max_guest="257Mi", launchSecurity={"sev": {}}), "architecture": "s390x"}
    messages = [c.message for c in of_rule(run(wrap("VirtualMachine", spec)), "cpu.memory-hotplug-unsupported")]
    assert len(messages) == 6, messages  # launchSecurity, > maxGuest, guest and maxGuest unaligned, arch, < 1Gi


def test_vmis_have_no_max_guest_rule() -> None:
    obj = wrap("VirtualMachineInstance", {**hotplug(guest="512Mi", max_guest="2Gi"), "architecture": "arm64"})
    assert of_rule(run(obj), "cpu.memory-hotplug-unsupported") == []


def test_without_max_guest_there_is_no_hotplug_check() -> None:
    spec = {"architecture": "arm64", "domain": {"memory": {"guest": "513Mi"}}}
    assert run(wrap("VirtualMachine", spec)).causes == []


def test_hotplug_architecture_defaults_to_the_clusters() -> None:
    obj = wrap("VirtualMachine", hotplug())
    [cause] = of_rule(run(obj, snapshot=cluster("arm64")), "cpu.memory-hotplug-unsupported")
    assert "this one is arm64 (the cluster's default architecture)" in cause.message


# --- default architecture (d.4) ------------------------------------------------------------------------------

TWO_THREADS = {
    "domain": {
        "cpu": {"dedicatedCpuPlacement": True, "cores": 1, "threads": 2},
        "resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "1Gi"}},
    }
}


def r8(findings: Findings) -> list[Cause]:
    return of_rule(findings, "cpu.arm64-threads")


@pytest.mark.parametrize("kind", KINDS)
def test_arm64_threads_rule_uses_the_kubevirt_crs_default_architecture(kind: str) -> None:
    [cause] = r8(run(wrap(kind, TWO_THREADS), snapshot=cluster("arm64")))
    assert (cause.field, cause.type) == (ROOT[kind] + "architecture", "FieldValueInvalid")
    assert "arm64 (the cluster's default architecture)" in cause.message


@pytest.mark.parametrize("kind", KINDS)
def test_spec_architecture_wins_over_the_cluster_default(kind: str) -> None:
    assert r8(run(wrap(kind, {**TWO_THREADS, "architecture": "amd64"}), snapshot=cluster("arm64"))) == []
    [cause] = r8(run(wrap(kind, {**TWO_THREADS, "architecture": "arm64"}), snapshot=cluster("amd64")))
    assert "cluster's default" not in cause.message


def test_config_default_architecture_applies_without_a_cluster_view() -> None:
    arm = parse_config({"kubevirt": {"defaultArchitecture": "arm64"}})
    assert r8(run(wrap("VirtualMachineInstance", TWO_THREADS), config=arm))
    assert r8(run(wrap("VirtualMachineInstance", TWO_THREADS))) == []  # default config: amd64


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        (None, "s390x"),  # the view is off
        (cluster(""), "s390x"),  # the CR's status has no default: unknown
        (cluster("arm64", synced=False), "s390x"),  # not synced: as if off
        (ClusterSnapshot(synced=True), "s390x"),  # synced, but no usable KubeVirt CR
        (cluster("arm64"), "arm64"),
    ],
)
def test_default_architecture_prefers_the_cr_status_then_the_config(
    snapshot: ClusterSnapshot | None, expected: str
) -> None:
    config = parse_config({"kubevirt": {"defaultArchitecture": "s390x"}})
    ctx = Context(config=config, kind="VirtualMachineInstance", cluster=snapshot)
    assert default_architecture(ctx) == expected


MAX = "spec.template.spec.domain.memory.maxGuest"


def _hotplug_messages(spec: dict[str, Any], **kw: Any) -> list[str]:
    found = of_rule(run(wrap("VirtualMachine", spec), **kw), "cpu.memory-hotplug-unsupported")
    assert all((c.field, c.type) == (GUEST, "FieldValueInvalid") for c in found)
    return [c.message for c in found]


def test_memory_hotplug_messages_say_what_to_change() -> None:
    spec = {**hotplug(guest="513Mi", max_guest="257Mi", launchSecurity={"sev": {}}), "architecture": "s390x"}
    assert _hotplug_messages(spec) == [
        f"memory hotplug ({MAX}) does not work with launchSecurity (an encrypted VM): remove maxGuest or "
        "launchSecurity",
        f"the guest memory '513Mi' is more than {MAX} '257Mi': raise maxGuest or lower the guest memory",
        "the guest memory '513Mi' is not a multiple of 2Mi: memory hotplug adds memory in 2Mi blocks, so round it",
        f"{MAX} '257Mi' is not a multiple of 2Mi: memory hotplug adds memory in 2Mi blocks, so round it",
        f"memory hotplug ({MAX}) works only on amd64 (x86_64) VMs, this one is s390x: remove maxGuest",
        f"memory hotplug ({MAX}) needs at least 1Gi of guest memory, {GUEST} is '513Mi': raise it or remove maxGuest",
    ]
    spec = hotplug(
        guest=None, cpu={"dedicatedCpuPlacement": True, "realtime": {}, "numa": {"guestMappingPassthrough": {}}}
    )
    assert _hotplug_messages(spec) == [
        f"memory hotplug ({MAX}) does not work with realtime vCPUs: remove maxGuest or realtime",
        f"memory hotplug ({MAX}) does not work with NUMA guestMappingPassthrough: remove maxGuest or the NUMA "
        "passthrough",
        f"memory hotplug ({MAX}) needs the guest memory: set {GUEST} (or a memory request or limit)",
    ]
    spec = hotplug(guest=None)
    spec["domain"]["resources"] = {"requests": {"memory": "1025Mi"}}
    assert _hotplug_messages(spec) == [
        "the guest memory '1025Mi' (taken from the memory request or limit) is not a multiple of 2Mi: memory hotplug "
        "adds memory in 2Mi blocks, so round it"
    ]
    spec = hotplug(guest="3Gi", max_guest="9218Mi")
    spec["domain"]["memory"]["hugepages"] = {"pageSize": "1Gi"}
    assert _hotplug_messages(spec) == [
        f"{MAX} '9218Mi' is not a multiple of 1Gi (the hugepage size): memory hotplug adds memory in 1Gi blocks, "
        "so round it"
    ]
    spec = hotplug(guest="1026Mi", max_guest="2Gi")
    spec["domain"]["memory"]["hugepages"] = {"pageSize": "1Gi"}
    assert _hotplug_messages(spec) == [
        "the guest memory '1026Mi' is not a multiple of 1Gi (the hugepage size): memory hotplug adds memory in 1Gi "
        "blocks, so round it"
    ]
    spec = hotplug(guest="1026Mi", max_guest="2Gi")
    spec["domain"]["memory"]["hugepages"] = {"pageSize": "2Mi"}
    assert _hotplug_messages(spec) == []


def test_memory_hotplug_edges_are_admitted() -> None:
    assert _hotplug_messages(hotplug(guest="1Gi", max_guest="1Gi")) == []  # guest == maxGuest == 1Gi
    assert _hotplug_messages(hotplug(guest="1Gi", max_guest="1026Mi")) == []
    assert _hotplug_messages({**hotplug(), "architecture": "amd64"}) == []
    assert _hotplug_messages(hotplug(guest="1022Mi", max_guest="2Gi")) == [
        f"memory hotplug ({MAX}) needs at least 1Gi of guest memory, {GUEST} is '1022Mi': raise it or remove maxGuest"
    ]
