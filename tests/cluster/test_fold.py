"""From API objects to the snapshot (webhook.cluster.fold, webhook.k8s.snapshot): a Node's class key, the
KubeVirt CR's view, feature gates, node classes, a NAD's view and the NAD store. Pure: plain dicts in, no API server."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.testkit.cluster import cluster_snapshot, kubevirt_cr, nad, node
from webhook.cluster.fold import kubevirt_view, nad_view, node_class, node_key
from webhook.cluster.view import RESOURCE_NAME_ANNOTATION as RESOURCE_ANNOTATION
from webhook.cluster.view import NadStore
from webhook.k8s.snapshot import ClusterSnapshot, KubeVirtView, NadView, NodeClass, Taint, gate_enabled

# ------------------------------------------------------------------------------------------------- nodes


def test_a_nodes_key_holds_what_rules_read_and_leaves_the_hostname_out() -> None:
    n = node(
        "a",
        cpu="3500m",
        memory="1Gi",
        labels={"zone": "z1"},
        unschedulable=True,
        taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}],
        allocatable={"nvidia.com/T4": 2},
    )
    n["metadata"]["labels"]["kubernetes.io/hostname"] = "a.example.com"
    name, hostname, (labels, taints, unschedulable, allocatable) = node_key(n)
    assert (name, hostname) == ("a", "a.example.com")
    assert labels == (("kubernetes.io/arch", "amd64"), ("kubevirt.io/schedulable", "true"), ("zone", "z1"))
    assert taints == (Taint("gpu", "true", "NoSchedule"),)
    assert unschedulable is True
    assert allocatable == (
        ("cpu", Decimal("3.5")),
        ("memory", Decimal(2**30)),
        ("nvidia.com/T4", Decimal(2)),
        ("pods", Decimal(110)),
    )


def test_nodes_differing_only_in_name_hostname_order_or_soft_taints_share_a_key() -> None:
    a = node("a", labels={"x": "1", "y": "2"}, taints=[{"key": "k", "effect": "NoExecute"}])
    b = node(
        "b",
        labels={"y": "2", "x": "1"},
        taints=[
            {"key": "soft", "effect": "PreferNoSchedule"},
            {"key": "k", "effect": "NoExecute"},
            {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
            {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
        ],
    )
    assert node_key(a)[2] == node_key(b)[2]
    (nc,) = cluster_snapshot([a, b]).node_classes
    assert nc.names == {"a", "b"} and nc.hostnames == {"a", "b"} and nc.count == 2
    assert nc.taints == (Taint("k", "", "NoExecute"),)
    assert node_key(a)[2] != node_key(node("c", labels={"x": "1", "y": "3"}))[2]


def test_taints_are_sorted_and_their_missing_parts_read_empty() -> None:
    n = node(
        "a",
        taints=[
            {"key": "z", "effect": "NoSchedule"},
            {"key": "a", "value": "2", "effect": "NoExecute"},
            {"key": "a", "value": "1", "effect": "NoSchedule"},
            {"effect": "NoSchedule"},
            {"key": "a", "value": "1", "effect": "NoExecute"},
            "junk",
            {"key": "q"},
        ],
    )
    taints = node_key(n)[2][1]
    assert taints == (
        Taint("", "", "NoSchedule"),
        Taint("a", "1", "NoExecute"),
        Taint("a", "1", "NoSchedule"),
        Taint("a", "2", "NoExecute"),
        Taint("z", "", "NoSchedule"),
    )


def test_only_unschedulable_true_cordons() -> None:
    n = node("a")
    for value, cordoned in ((True, True), ("true", False), (1, False), (None, False)):
        n["spec"]["unschedulable"] = value
        assert node_key(n)[2][2] is cordoned


def test_unparsable_allocatable_quantities_are_left_out() -> None:
    n = node("a", allocatable={"bad": "lots", "none": None, "ok": "1k"})
    assert dict(node_key(n)[2][3]) == {"cpu": 16, "memory": 64 * 2**30, "pods": 110, "ok": 1000}


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"metadata": [], "spec": [], "status": []},
        {"metadata": {"labels": []}, "spec": {"taints": None}, "status": {"allocatable": []}},
    ],
)
def test_malformed_nodes_read_as_absent_parts(obj: dict[str, Any]) -> None:
    assert node_key(obj) == ("", "", ((), (), False, ()))


def test_labels_and_names_are_read_as_strings() -> None:
    n = {"metadata": {"name": "a", "labels": {"n": 3, "kubernetes.io/hostname": 7}}}
    assert node_key(n) == ("a", "7", ((("n", "3"),), (), False, ()))


def test_a_class_is_read_only() -> None:
    key = node_key(node("a", labels={"z": "1"}))[2]
    nc = node_class(key, frozenset({"a"}), frozenset({"a"}))
    assert nc.labels["z"] == "1" and nc.allocatable["cpu"] == 16 and nc.unschedulable is False
    assert nc.names == {"a"} and nc.hostnames == {"a"} and nc.taints == ()
    with pytest.raises(TypeError):
        nc.labels["z"] = "2"  # type: ignore[index]
    with pytest.raises(TypeError):
        nc.allocatable["cpu"] = Decimal(1)  # type: ignore[index]


def test_a_class_describes_its_first_nodes_and_counts_the_rest() -> None:
    def described(n: int, shown: int = 2) -> str:
        return NodeClass({}, (), False, {}, frozenset(f"n{i}" for i in range(n))).describe(shown)

    assert described(1) == "n0"
    assert described(2) == "n0, n1"
    assert described(3) == "n0, n1 and 1 more"
    assert described(5, shown=3) == "n0, n1, n2 and 2 more"
    assert described(0) == ""
    assert NodeClass({}, (), False, {}, frozenset({"b", "a", "c"})).describe() == "a, b and 1 more"


# ---------------------------------------------------------------------------------------------- the CR


def test_the_kubevirt_view_of_a_deployed_cr() -> None:
    cr = kubevirt_cr(
        gates=["HostDevices", "CPUManager"],
        disabled=["PasstBinding"],
        namespace="kv",
        name="main",
        default_architecture="arm64",
        permitted={
            "pciHostDevices": [{"pciVendorSelector": "10DE:1EB8", "resourceName": "nvidia.com/T4"}],
            "mediatedDevices": [{"mdevNameSelector": "GRID", "resourceName": "nvidia.com/GRID"}],
            "usb": [{"resourceName": "kubevirt.io/storage"}, {"resourceName": 3}, "junk"],
        },
    )
    assert kubevirt_view(cr) == KubeVirtView(
        namespace="kv",
        name="main",
        feature_gates=("HostDevices", "CPUManager"),
        disabled_feature_gates=("PasstBinding",),
        permitted_resources=frozenset({"nvidia.com/T4", "nvidia.com/GRID", "kubevirt.io/storage"}),
        default_architecture="arm64",
    )
    assert kubevirt_view(cr).ref == "kv/main"  # type: ignore[union-attr]


def test_a_cr_being_deleted_or_without_a_phase_is_not_used() -> None:
    assert kubevirt_view(kubevirt_cr(phase="")) is None
    deleting = kubevirt_cr()
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert kubevirt_view(deleting) is None
    no_status = kubevirt_cr()
    del no_status["status"]
    assert kubevirt_view(no_status) is None
    assert cluster_snapshot([], deleting).kubevirt is None


def test_without_permitted_host_devices_nothing_is_checked_but_an_empty_one_permits_nothing() -> None:
    assert kubevirt_view(kubevirt_cr()).permitted_resources is None  # type: ignore[union-attr]
    empty = kubevirt_view(kubevirt_cr(permitted={}))
    assert empty is not None and empty.permitted_resources == frozenset()
    lists = kubevirt_view(kubevirt_cr(permitted={"pciHostDevices": None, "usb": []}))
    assert lists is not None and lists.permitted_resources == frozenset()


def test_a_malformed_cr_reads_as_defaults() -> None:
    cr = {
        "metadata": {"name": "k"},
        "spec": {"configuration": {"developerConfiguration": {"featureGates": "GPU"}, "permittedHostDevices": []}},
        "status": {"phase": "Deployed"},
    }
    assert kubevirt_view(cr) == KubeVirtView(namespace="", name="k")
    for spec in ([], {"configuration": []}, {"configuration": {"developerConfiguration": []}}):
        view = kubevirt_view({"metadata": [], "spec": spec, "status": {"phase": "Deployed"}})
        assert view == KubeVirtView(namespace="", name="")
    assert kubevirt_view({"metadata": {}, "status": []}) is None
    gates = kubevirt_view(kubevirt_cr(gates=[1, "X"]))
    assert gates is not None and gates.feature_gates == ("1", "X") and gates.disabled_feature_gates == ()


# ---------------------------------------------------------------------------------------------- gates


@pytest.mark.parametrize(
    ("gate", "enabled", "disabled", "on"),
    [
        ("GPU", (), (), True),  # GA: always on
        ("GPU", (), ("GPU",), True),
        ("NUMA", (), (), True),
        ("HostDevices", (), (), False),  # Alpha: off unless listed
        ("HostDevices", ("HostDevices",), (), True),
        ("HostDevices", ("HostDevices",), ("HostDevices",), True),
        ("PasstBinding", (), (), True),  # Beta: on unless disabled
        ("PasstBinding", (), ("PasstBinding",), False),
        ("GPUsWithDRA", (), (), True),
        ("Unknown", (), (), False),
        ("Unknown", ("Unknown",), (), True),
    ],
)
def test_kubevirts_gate_rule(gate: str, enabled: tuple[str, ...], disabled: tuple[str, ...], on: bool) -> None:
    assert gate_enabled(gate, enabled, disabled) is on
    assert KubeVirtView("kv", "k", enabled, disabled).gate(gate) is on


def test_a_snapshot_is_usable_once_synced_and_compares_without_its_memo() -> None:
    assert not ClusterSnapshot().usable and ClusterSnapshot(synced=True).usable
    a, b = ClusterSnapshot(synced=True), ClusterSnapshot(synced=True)
    a.memo["k"] = 1
    assert a == b and "memo" not in repr(a) and b.memo == {}
    assert ClusterSnapshot().node_classes == () and ClusterSnapshot().node_count == 0
    assert ClusterSnapshot().kubevirt is None


# --------------------------------------------------------------------------------------------------- NADs


def test_a_nads_view_is_its_resource_name_and_cni_type() -> None:
    assert nad_view(nad("a", "ns"), RESOURCE_ANNOTATION) == (("ns", "a"), NadView("intel.com/sriov_vf", "sriov"))
    assert nad_view(nad("b", conflist=True), RESOURCE_ANNOTATION)[1] == NadView("intel.com/sriov_vf", "sriov")
    assert nad_view(nad("c", resource=None, cni="bridge"), RESOURCE_ANNOTATION)[1] == NadView("", "bridge")
    assert nad_view(nad("d", cni=None), RESOURCE_ANNOTATION)[1] == NadView("intel.com/sriov_vf", "")
    custom = nad("e", annotation="example.com/res")
    assert nad_view(custom, RESOURCE_ANNOTATION)[1].resource_name == ""
    assert nad_view(custom, "example.com/res")[1].resource_name == "intel.com/sriov_vf"


@pytest.mark.parametrize(
    "config",
    ["", "{not json", "[]", '"sriov"', '{"type": 7}', '{"plugins": []}', '{"plugins": "x"}', '{"plugins": [3]}', 5],
)
def test_an_unreadable_cni_config_has_no_type(config: Any) -> None:
    obj = nad("a")
    obj["spec"]["config"] = config
    assert nad_view(obj, RESOURCE_ANNOTATION)[1] == NadView("intel.com/sriov_vf", "")


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"metadata": "x"},
        {"metadata": {"annotations": ["x"]}, "spec": []},
        {"metadata": {"annotations": {RESOURCE_ANNOTATION: 3}}},
    ],
)
def test_malformed_nads_read_as_absent_parts(obj: dict[str, Any]) -> None:
    assert nad_view(obj, RESOURCE_ANNOTATION) == (("", ""), NadView())


def test_the_nad_store_shares_views_and_publishes_a_frozen_mapping_rebuilt_only_on_change() -> None:
    store = NadStore()
    for i in range(100):
        store.apply("ADDED", nad(f"vf-{i}"))
    first = store.frozen()
    assert len(first) == len(store) == 100
    assert len({id(v) for v in first.values()}) == 1  # one shared view for 100 equal NADs
    store.apply("MODIFIED", nad("vf-1"))  # nothing rules read changed
    assert store.frozen() is first
    store.apply("MODIFIED", nad("vf-1", resource="other/vf"))
    second = store.frozen()
    assert second is not first and second[("default", "vf-1")].resource_name == "other/vf"
    assert first[("default", "vf-1")].resource_name == "intel.com/sriov_vf"  # a published mapping never changes
    with pytest.raises(TypeError):
        second[("default", "x")] = NadView()  # type: ignore[index]
    store.apply("DELETED", nad("vf-2"))
    store.apply("DELETED", nad("never-there"))
    assert ("default", "vf-2") not in store.frozen() and len(store) == 99
    fresh = store.fresh()
    assert fresh.resource_annotation == store.resource_annotation and len(fresh) == 0
    store.adopt(fresh)
    assert len(store.frozen()) == 0


def test_a_snapshot_without_the_nad_crd_has_no_nads_and_one_with_it_has_them() -> None:
    assert cluster_snapshot([]).nads is None
    snap = cluster_snapshot([], nads=[nad("a")])
    assert dict(snap.nads) == {("default", "a"): NadView("intel.com/sriov_vf", "sriov")}
