"""Network interfaces (docs/network.md): consistency rules and hotplug warnings.

Every rule row N1-N19 is checked on a VMI (paths under ``spec``) and a VM (paths under ``spec.template.spec``)
through the engine, as the API server's request would reach it; allowed objects are checked against KubeVirt's
own CRD schemas; hotplug guidance is checked on VM UPDATEs of running and stopped VMs.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.testkit import objects, paths
from tests.testkit.paths import DATA
from tests.testkit.review import assert_crd_valid, make_review
from tests.testkit.server import ServerProcess
from webhook import engine
from webhook.config import Config
from webhook.engine import Verdict
from webhook.rules import network
from webhook.rules.base import Context

EXAMPLES = paths.EXAMPLES / "network"
CONFIG = Config()
ROOTS = {"VirtualMachineInstance": "spec", "VirtualMachine": "spec.template.spec"}

# Building blocks: interfaces and networks as users write them.
POD = {"name": "default", "pod": {}}
MASQ = {"name": "default", "masquerade": {}}


def multus(name: str, nad: str = "", default: bool | None = None) -> dict[str, Any]:
    m: dict[str, Any] = {"networkName": nad or f"ns/{name}"}
    if default is not None:
        m["default"] = default
    return {"name": name, "multus": m}


def iface(name: str, binding: str = "bridge", **extra: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"name": "managedtap"} if binding == "binding" else {}
    return {"name": name, binding: value, **extra}


def vmi_spec(interfaces: list[Any] | None, networks: list[Any] | None) -> dict[str, Any]:
    devices: dict[str, Any] = {}
    if interfaces is not None:
        devices["interfaces"] = copy.deepcopy(interfaces)
    spec: dict[str, Any] = {"domain": {"resources": {"requests": {"memory": "1Gi"}}, "devices": devices}}
    if networks is not None:
        spec["networks"] = copy.deepcopy(networks)
    return spec


def make(kind: str, interfaces: list[Any] | None, networks: list[Any] | None, **vm_spec: Any) -> dict[str, Any]:
    spec = vmi_spec(interfaces, networks)
    if kind == "VirtualMachineInstance":
        return objects.vmi(spec, name="vm1", namespace="apps")
    return objects.vm(spec, name="vm1", namespace="apps", **vm_spec)


def validate(obj: dict[str, Any], operation: str = "CREATE", old: dict[str, Any] | None = None) -> Verdict:
    return engine.handle(make_review(obj, operation=operation, old=old)["request"], "validate", CONFIG)


def causes(verdict: Verdict) -> set[tuple[str, str]]:
    return {(c.field, c.type) for c in verdict.causes}


# --- consistency rules: deny side ---------------------------------------------------------------------------

# (rule, interfaces, networks, field relative to the root, cause type, a word the message must contain)
DENIED = [
    ("unknown-state unknown state", [MASQ, iface("a", state="sleeping")], [POD, multus("a")],
     "domain.devices.interfaces[1].state", "FieldValueInvalid", "sleeping"),
    ("sriov-link-state SR-IOV down", [MASQ, iface("a", "sriov", state="down")], [POD, multus("a")],
     "domain.devices.interfaces[1].state", "FieldValueInvalid", "SR-IOV"),
    ("sriov-link-state SR-IOV up", [MASQ, iface("a", "sriov", state="up")], [POD, multus("a")],
     "domain.devices.interfaces[1].state", "FieldValueInvalid", "SR-IOV"),
    ("absent-not-bridge absent on SR-IOV", [MASQ, iface("a", "sriov", state="absent")], [POD, multus("a")],
     "domain.devices.interfaces[1].state", "FieldValueInvalid", "bridge"),
    ("absent-not-bridge absent on masquerade", [{**MASQ, "state": "absent"}], [POD],
     "domain.devices.interfaces[0].state", "FieldValueInvalid", "bridge"),
    ("absent-not-bridge absent on a plugin", [MASQ, iface("a", "binding", state="absent")], [POD, multus("a")],
     "domain.devices.interfaces[1].state", "FieldValueInvalid", "binding plugin"),
    ("absent-default-network absent on the pod network", [iface("default", state="absent")], [POD],
     "domain.devices.interfaces[0].state", "FieldValueInvalid", "pod network"),
    ("absent-default-network absent on the Multus default", [iface("a", state="absent")], [multus("a", default=True)],
     "domain.devices.interfaces[0].state", "FieldValueInvalid", "Multus default"),
    ("binding-count no binding", [MASQ, {"name": "a"}], [POD, multus("a")],
     "domain.devices.interfaces[1]", "FieldValueInvalid", "no binding"),
    ("binding-count two bindings", [{"name": "default", "masquerade": {}, "bridge": {}}], [POD],
     "domain.devices.interfaces[0]", "FieldValueInvalid", "2 bindings"),
    ("binding-count method and plugin", [MASQ, {**iface("a"), "binding": {"name": "x"}}], [POD, multus("a")],
     "domain.devices.interfaces[1]", "FieldValueInvalid", "bridge, binding"),
    ("masquerade-not-pod-network masquerade on Multus", [MASQ, iface("a", "masquerade")], [POD, multus("a")],
     "domain.devices.interfaces[1].name", "FieldValueInvalid", "masquerade"),
    ("masquerade-reserved-mac reserved MAC", [{**MASQ, "macAddress": "02:00:00:00:00:00"}], [POD],
     "domain.devices.interfaces[0].macAddress", "FieldValueInvalid", "reserved"),
    ("passt-not-pod-network passtBinding on Multus", [MASQ, iface("a", "passtBinding")], [POD, multus("a")],
     "domain.devices.interfaces[1].name", "FieldValueInvalid", "passtBinding"),
    ("network-without-interface network without interface", [MASQ], [POD, multus("a")],
     "networks[1].name", "FieldValueRequired", '"a"'),
    ("interface-without-network interface without network", [MASQ, iface("a")], [POD],
     "domain.devices.interfaces[1].name", "FieldValueInvalid", '"a"'),
    ("duplicate-network duplicate network", [MASQ, iface("a")], [POD, multus("a"), multus("a")],
     "networks[2].name", "FieldValueDuplicate", '"a"'),
    ("duplicate-interface duplicate interface", [MASQ, iface("a"), iface("a")], [POD, multus("a")],
     "domain.devices.interfaces[2].name", "FieldValueDuplicate", '"a"'),
    ("several-pod-networks two pod networks", [MASQ, {"name": "p2", "masquerade": {}}],
     [POD, {"name": "p2", "pod": {}}], "interfaces", "FieldValueDuplicate", "pod network"),
    ("several-default-networks two Multus defaults", [iface("a"), iface("b")],
     [multus("a", default=True), multus("b", default=True)], "networks", "FieldValueInvalid", "default"),
    ("several-default-networks pod and Multus default", [MASQ, iface("a")], [POD, multus("a", default=True)],
     "networks", "FieldValueInvalid", "Multus default"),
    ("network-type-count no network type", [MASQ, iface("a")], [POD, {"name": "a"}],
     "networks[1]", "FieldValueRequired", "no type"),
    ("network-type-count two network types", [MASQ], [{"name": "default", "pod": {}, "multus": {"networkName": "x"}}],
     "networks[0]", "FieldValueRequired", "pod, multus"),
    ("multus-without-network-name Multus without networkName", [MASQ, iface("a")],
     [POD, {"name": "a", "multus": {"networkName": ""}}], "networks[1]", "FieldValueRequired", "networkName"),
    ("bad-interface-field bad interface name", [MASQ, iface("a.b")], [POD, multus("a.b")],
     "domain.devices.interfaces[1].name", "FieldValueInvalid", "letters"),
    ("bad-interface-field unknown model", [{**MASQ, "model": "ne2000"}], [POD],
     "domain.devices.interfaces[0].model", "FieldValueNotSupported", "ne2000"),
    ("bad-interface-field malformed MAC", [MASQ, iface("a", macAddress="02:00:zz:00:00:01")], [POD, multus("a")],
     "domain.devices.interfaces[1].macAddress", "FieldValueInvalid", "malformed"),
    ("discontinued-binding slirp", [{"name": "default", "slirp": {}}], [POD],
     "domain.devices.interfaces[0].slirp", "FieldValueInvalid", "discontinued"),
    ("discontinued-binding old passt", [{"name": "default", "passt": {}}], [POD],
     "domain.devices.interfaces[0].passt", "FieldValueInvalid", "discontinued"),
    ("discontinued-binding macvtap", [MASQ, iface("a", "macvtap")], [POD, multus("a")],
     "domain.devices.interfaces[1].macvtap", "FieldValueInvalid", "discontinued"),
]  # fmt: skip


@pytest.mark.parametrize("kind", ROOTS)
@pytest.mark.parametrize(("rule", "ifaces", "nets", "where", "ctype", "word"), DENIED, ids=[d[0] for d in DENIED])
def test_rule_denies_with_kubevirts_field_and_type(
    kind: str, rule: str, ifaces: list[Any], nets: list[Any], where: str, ctype: str, word: str
) -> None:
    verdict = validate(make(kind, ifaces, nets))

    assert not verdict.allowed and verdict.code == 422 and verdict.reason == "Invalid"
    assert (f"{ROOTS[kind]}.{where}", ctype) in causes(verdict), verdict.causes
    messages = [c.message for c in verdict.causes if c.field == f"{ROOTS[kind]}.{where}"]
    assert any(word in m for m in messages), messages
    rules = {c.rule for c in verdict.causes if c.field == f"{ROOTS[kind]}.{where}"}
    assert f"interfaces.{rule.split()[0]}" in rules, rules


def test_n17_reports_only_the_first_multus_network_without_a_name() -> None:
    nets = [POD, {"name": "a", "multus": {"networkName": ""}}, {"name": "b", "multus": {"networkName": ""}}]
    verdict = validate(make("VirtualMachineInstance", [MASQ, iface("a"), iface("b")], nets))
    assert causes(verdict) == {("spec.networks[1]", "FieldValueRequired")}


def test_every_problem_is_reported_at_once_in_one_response() -> None:
    ifaces = [{"name": "default", "masquerade": {}, "bridge": {}}, iface("a", "sriov", state="up"), iface("orphan")]
    verdict = validate(make("VirtualMachineInstance", ifaces, [POD, multus("a"), multus("lonely")]))
    assert causes(verdict) == {
        ("spec.domain.devices.interfaces[0]", "FieldValueInvalid"),
        ("spec.domain.devices.interfaces[1].state", "FieldValueInvalid"),
        ("spec.domain.devices.interfaces[2].name", "FieldValueInvalid"),
        ("spec.networks[2].name", "FieldValueRequired"),
    }
    assert '"orphan"' in verdict.message and '"lonely"' in verdict.message


def test_network_causes_travel_with_cpu_causes() -> None:
    vmi = make("VirtualMachineInstance", [MASQ, iface("a")], [POD])
    vmi["spec"]["domain"]["cpu"] = {"dedicatedCpuPlacement": True}
    vmi["spec"]["domain"]["resources"] = {"requests": {"cpu": "1500m", "memory": "1Gi"}}
    fields = {c.field for c in validate(vmi).causes}
    assert "spec.domain.devices.interfaces[1].name" in fields
    assert "spec.domain.resources.requests.cpu" in fields


def by_rule(verdict: Verdict) -> dict[str, list[tuple[str, str, str]]]:
    out: dict[str, list[tuple[str, str, str]]] = {}
    for c in verdict.causes:
        out.setdefault(c.rule, []).append((c.field, c.type, c.message))
    return out


@pytest.mark.parametrize("binding", ["slirp", "passt", "macvtap"])
@pytest.mark.parametrize(
    ("kind", "operation"),
    [("VirtualMachineInstance", "CREATE"), ("VirtualMachine", "CREATE"), ("VirtualMachine", "UPDATE")],
)
def test_an_interface_with_only_a_discontinued_binding_has_no_binding_on_every_operation(
    binding: str, kind: str, operation: str
) -> None:
    obj = make(kind, [{"name": "default", binding: {}}], [POD])
    verdict = validate(obj, operation, old=obj if operation == "UPDATE" else None)

    assert not verdict.allowed and verdict.code == 422
    found = by_rule(verdict)
    [(field, ctype, message)] = found["interfaces.binding-count"]
    assert (field, ctype) == (f"{ROOTS[kind]}.domain.devices.interfaces[0]", "FieldValueInvalid")
    assert "no binding" in message and binding in message and "counts as none" in message
    if operation == "CREATE":  # the discontinued-binding cause is KubeVirt's create-only rule
        [(field, ctype, message)] = found["interfaces.discontinued-binding"]
        assert field == f"{ROOTS[kind]}.domain.devices.interfaces[0].{binding}" and "discontinued" in message
    else:
        assert "interfaces.discontinued-binding" not in found


def test_a_discontinued_binding_beside_a_counted_one_fails_on_create_only() -> None:
    vm = make("VirtualMachine", [{"name": "default", "slirp": {}, "masquerade": {}}], [POD])
    created = validate(vm)
    assert not created.allowed
    assert set(by_rule(created)) == {"interfaces.discontinued-binding"}  # masquerade is the one binding: N5 holds
    update = validate(vm, "UPDATE", old=vm)
    assert update.allowed and not update.causes  # KubeVirt runs the discontinued rule on VM CREATE only


def test_warn_enforcement_turns_network_denials_into_warnings() -> None:
    request = make_review(make("VirtualMachineInstance", [MASQ, iface("a")], [POD]))["request"]
    verdict = engine.handle(request, "validate", Config(enforcement="warn"))
    assert verdict.allowed
    assert any("spec.domain.devices.interfaces[1].name" in w for w in verdict.warnings)


# --- consistency rules: allow side --------------------------------------------------------------------------

ALLOWED = [
    ("pod network with masquerade", [MASQ], [POD]),
    ("pod network with passtBinding", [{"name": "default", "passtBinding": {}}], [POD]),
    ("pod network with a binding plugin", [iface("default", "binding")], [POD]),
    ("Multus bridge and SR-IOV next to the pod network", [MASQ, iface("a"), iface("b", "sriov")],
     [POD, multus("a"), multus("b")]),
    ("absent bridge on a secondary Multus network", [MASQ, iface("a", state="absent")], [POD, multus("a")]),
    ("explicit default: false is secondary", [MASQ, iface("a", state="absent")], [POD, multus("a", default=False)]),
    ("up and down on bridge and masquerade", [{**MASQ, "state": "down"}, iface("a", state="up")],
     [POD, multus("a")]),
    ("Multus default network alone", [iface("a"), iface("b")], [multus("a", default=True), multus("b")]),
    ("no interfaces and no networks (KubeVirt adds a default)", None, None),
    ("empty lists", [], []),
    ("a valid MAC on a bridge", [MASQ, iface("a", macAddress="02:5e:00:00:10:01", model="virtio")],
     [POD, multus("a")]),
    ("another MAC on masquerade", [{**MASQ, "macAddress": "02:00:00:00:00:01"}], [POD]),
]  # fmt: skip


@pytest.mark.parametrize("kind", ROOTS)
@pytest.mark.parametrize(("case", "ifaces", "nets"), ALLOWED, ids=[a[0] for a in ALLOWED])
def test_consistent_networks_are_allowed_and_schema_valid(
    kind: str, case: str, ifaces: list[Any] | None, nets: list[Any] | None
) -> None:
    obj = make(kind, ifaces, nets, runStrategy="Always")
    verdict = validate(obj)
    assert verdict.allowed and not verdict.causes, verdict.message
    assert verdict.warnings == []
    assert_crd_valid(obj)


def test_a_vm_being_deleted_is_let_through() -> None:
    vm = make("VirtualMachine", [MASQ, iface("a")], [POD])
    vm["metadata"]["deletionTimestamp"] = "2026-11-23T10:00:00Z"
    assert validate(vm, "UPDATE", old=vm).allowed


# --- objects the rules cannot read --------------------------------------------------------------------------

BAD_SHAPES = [
    ("interfaces not a list", {"domain": {"devices": {"interfaces": {"name": "x"}}}},
     "domain.devices.interfaces: must be a list"),
    ("devices not an object", {"domain": {"devices": ["x"]}}, "domain.devices: must be an object"),
    ("an interface that is a string", {"domain": {"devices": {"interfaces": ["default"]}}, "networks": [POD]},
     "domain.devices.interfaces[0]: must be an object"),
    ("a binding that is not an object", {"domain": {"devices": {"interfaces": [{"name": "d", "bridge": True}]}}},
     "domain.devices.interfaces[0].bridge: must be an object"),
    ("a numeric name", {"domain": {"devices": {"interfaces": [{"name": 7, "masquerade": {}}]}}},
     "domain.devices.interfaces[0].name: must be a string"),
    ("networks not a list", {"domain": {}, "networks": "pod"}, "networks: must be a list"),
    ("a network that is a number", {"domain": {}, "networks": [3]}, "networks[0]: must be an object"),
    ("multus.default not a boolean", {"domain": {}, "networks": [{"name": "a", "multus": {"networkName": "x",
     "default": "yes"}}]}, "networks[0].multus.default: must be a boolean"),
]  # fmt: skip


@pytest.mark.parametrize("kind", ROOTS)
@pytest.mark.parametrize(("case", "spec", "text"), BAD_SHAPES, ids=[b[0] for b in BAD_SHAPES])
def test_unreadable_network_fields_are_a_400_naming_the_field(
    kind: str, case: str, spec: dict[str, Any], text: str
) -> None:
    obj = make(kind, None, None)
    if kind == "VirtualMachine":
        obj["spec"]["template"]["spec"] = copy.deepcopy(spec)
    else:
        obj["spec"] = copy.deepcopy(spec)

    verdict = validate(obj)

    assert not verdict.allowed and verdict.code == 400
    assert f"{ROOTS[kind]}.{text}" in verdict.message


def test_rules_read_odd_objects_without_raising() -> None:
    ctx = Context(config=CONFIG, kind="VirtualMachine", operation="UPDATE", old_object={"spec": "x"})
    for obj in ({}, {"spec": None}, {"spec": {"template": None}}, {"spec": {"template": {"spec": 3}}}):
        network.validate_vm(obj, ctx)  # no exception
    assert network.validate_vm({"spec": 1}, ctx).bad_request == "spec: must be an object, got number"


# --- hotplug guidance on VM UPDATE --------------------------------------------------------------------------

BASE_IFACES = [MASQ, iface("storage")]
BASE_NETS = [POD, multus("storage")]


def vm(ifaces: list[Any] | None = None, nets: list[Any] | None = None, **run: Any) -> dict[str, Any]:
    run = run or {"runStrategy": "Always"}
    return make("VirtualMachine", BASE_IFACES if ifaces is None else ifaces, BASE_NETS if nets is None else nets, **run)


def update(old: dict[str, Any], new: dict[str, Any]) -> Verdict:
    verdict = validate(new, "UPDATE", old=old)
    assert all(len(w) <= 200 for w in verdict.warnings), verdict.warnings
    return verdict


LIVE = [
    ("plug a bridge on a Multus network", [*BASE_IFACES, iface("backup")], [*BASE_NETS, multus("backup")]),
    ("plug an SR-IOV interface", [*BASE_IFACES, iface("fast", "sriov")], [*BASE_NETS, multus("fast")]),
    ("unplug a bridge with state: absent", [MASQ, iface("storage", state="absent")], BASE_NETS),
    ("link down on a bridge", [MASQ, iface("storage", state="down")], BASE_NETS),
    ("link down on masquerade", [{**MASQ, "state": "down"}, iface("storage")], BASE_NETS),
    ("add an interface already absent", [*BASE_IFACES, iface("later", state="absent")],
     [*BASE_NETS, multus("later")]),
    ("no change", BASE_IFACES, BASE_NETS),
]  # fmt: skip


@pytest.mark.parametrize(("case", "ifaces", "nets"), LIVE, ids=[x[0] for x in LIVE])
def test_live_changes_to_a_running_vm_pass_without_warning(case: str, ifaces: list[Any], nets: list[Any]) -> None:
    new = vm(ifaces, nets)
    verdict = update(vm(), new)
    assert verdict.allowed and verdict.warnings == [], verdict.warnings
    assert_crd_valid(new)


def test_state_up_on_an_interface_marked_absent_plugs_it_back() -> None:
    old = vm([MASQ, iface("storage", state="absent")])
    assert update(old, vm()).warnings == []


def test_removing_an_interface_kubevirt_already_unplugged_is_quiet() -> None:
    old = vm([MASQ, iface("storage", state="absent")])
    assert update(old, vm([MASQ], [POD])).warnings == []


RESTART = [
    ("plug a binding plugin", [*BASE_IFACES, iface("tap", "binding")], [*BASE_NETS, multus("tap")],
     '"tap"', "bridge and SR-IOV"),
    ("remove a bridge instead of state: absent", [MASQ], [POD], '"storage"', "state: absent"),
    ("remove the masquerade interface", [iface("storage")], [multus("storage")], '"default"',
     "only bridge interfaces"),
    ("change the model of an interface", [MASQ, iface("storage", model="e1000e")], BASE_NETS, '"storage"',
     "model"),
    ("change a MAC address", [{**MASQ, "macAddress": "02:11:22:33:44:55"}, iface("storage")], BASE_NETS,
     '"default"', "macAddress"),
    ("move an interface to another NAD", BASE_IFACES, [POD, multus("storage", "ns/other")], '"storage"',
     "migration"),
    ("turn a Multus network into the default", BASE_IFACES, [POD, multus("storage", default=True)],
     '"storage"', "multus"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "ifaces", "nets", "name", "advice"), RESTART, ids=[r[0] for r in RESTART])
def test_changes_that_need_a_restart_are_allowed_with_a_warning_naming_the_interface(
    case: str, ifaces: list[Any], nets: list[Any], name: str, advice: str
) -> None:
    verdict = update(vm(), vm(ifaces, nets))
    assert len(verdict.warnings) == 1, verdict.warnings
    (warning,) = verdict.warnings
    assert name in warning and advice in warning
    assert "restart" in warning and "virtctl restart vm1" in warning


@pytest.mark.parametrize(
    ("added", "net", "words"),
    [
        ({"name": "p", "passtBinding": {}}, {"name": "p", "pod": {}}, "the pod network"),
        (iface("p"), multus("p", default=True), "the Multus default network"),
    ],
)
def test_adding_a_primary_network_to_a_running_vm_needs_a_restart(
    added: dict[str, Any], net: dict[str, Any], words: str
) -> None:
    old = vm([iface("storage")], [multus("storage")])
    (warning,) = update(old, vm([iface("storage"), added], [multus("storage"), net])).warnings
    assert warning.startswith('interface "p": added') and words in warning and "virtctl restart vm1" in warning


def test_restart_warnings_are_given_per_interface() -> None:
    new = vm([iface("storage", model="e1000"), iface("tap", "binding")], [multus("storage"), multus("tap")])
    warnings = update(vm(), new).warnings
    assert sorted(w.split(":")[0] for w in warnings) == [
        'interface "default"',
        'interface "storage"',
        'interface "tap"',
    ]


@pytest.mark.parametrize("run", [{"runStrategy": "RerunOnFailure"}, {"running": True}, {"runStrategy": "Once"}])
def test_other_running_vms_get_the_warnings_too(run: dict[str, Any]) -> None:
    assert update(vm(**run), vm([MASQ], [POD], **run)).warnings != []


@pytest.mark.parametrize("run", [{"runStrategy": "Halted"}, {"runStrategy": "Manual"}, {"running": False}])
def test_stopped_vms_get_no_hotplug_warnings(run: dict[str, Any]) -> None:
    new = vm([iface("storage", model="e1000"), iface("tap", "binding")], [multus("storage"), multus("tap")], **run)
    verdict = update(vm(**run), new)
    assert verdict.allowed and verdict.warnings == []


def test_the_old_run_strategy_decides_not_the_new_one() -> None:
    verdict = update(vm(), vm([MASQ], [POD], runStrategy="Halted"))
    assert [w.split(":")[0] for w in verdict.warnings] == ['interface "storage"']


def test_create_of_a_running_vm_gets_no_hotplug_warnings() -> None:
    assert validate(vm([iface("tap", "binding")], [multus("tap")])).warnings == []


def test_implicit_default_interface_spelled_out_is_no_change() -> None:
    old = vm(None, None) | {}
    old["spec"]["template"]["spec"]["domain"]["devices"] = {}
    old["spec"]["template"]["spec"].pop("networks")
    verdict = update(old, vm([MASQ, iface("storage")], BASE_NETS))
    assert verdict.warnings == []


def test_dropping_the_implicit_default_interface_is_warned() -> None:
    old = vm()
    old["spec"]["template"]["spec"]["domain"]["devices"] = {}
    old["spec"]["template"]["spec"].pop("networks")
    verdict = update(old, vm([iface("storage")], [multus("storage")]))
    assert len(verdict.warnings) == 1 and 'interface "default"' in verdict.warnings[0]


def test_an_unreadable_old_object_gives_no_warnings_and_no_error() -> None:
    old = vm()
    old["spec"]["template"]["spec"]["networks"] = "broken"
    verdict = update(old, vm([MASQ], [POD]))
    assert verdict.allowed and verdict.warnings == []


def test_denied_updates_still_say_what_needs_a_restart() -> None:
    verdict = update(vm(), vm([MASQ], BASE_NETS))  # the network stays: N10
    assert not verdict.allowed
    assert causes(verdict) == {("spec.template.spec.networks[1].name", "FieldValueRequired")}
    assert any('"storage"' in w for w in verdict.warnings)


# --- examples, CLI and HTTPS --------------------------------------------------------------------------------


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8"))
    return doc


@pytest.mark.parametrize("name", ["vm-multus-bridge", "vm-hotplug", "vm-needs-restart"])
def test_vm_examples_are_schema_valid(name: str) -> None:
    assert_crd_valid(load(name))


def test_example_updates_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from webhook.cli import main

    old = str(EXAMPLES / "vm-multus-bridge.yaml")
    assert main(["review", "--operation", "UPDATE", "--old", old, str(EXAMPLES / "vm-hotplug.yaml")]) == 0
    out = capsys.readouterr().out
    assert "ADMITTED" in out and "!" not in out

    assert main(["review", "--operation", "UPDATE", "--old", old, str(EXAMPLES / "vm-needs-restart.yaml")]) == 0
    out = capsys.readouterr().out
    warned = sorted(line.split('"')[1] for line in out.splitlines() if line.strip().startswith("!"))
    assert warned == ["default", "metrics", "storage"]


def test_hotplug_update_over_https(https_server: ServerProcess) -> None:
    """As kube-apiserver calls /validate on a VM UPDATE: verified TLS, v1 review, warnings in the response."""
    old, new = load("vm-multus-bridge"), load("vm-needs-restart")
    review = make_review(new, operation="UPDATE", old=old)

    reply = https_server.post("/validate", review)

    assert reply.status_code == 200
    response = reply.json()["response"]
    assert response["uid"] == review["request"]["uid"]
    assert response["allowed"] is True and "patch" not in response
    assert sorted(w.split('"')[1] for w in response["warnings"]) == ["default", "metrics", "storage"]

    bad = make_review(load("vmi-bad-networks"))
    denied = https_server.post("/validate", bad).json()["response"]
    assert denied["allowed"] is False and denied["status"]["code"] == 422
    fields = {c["field"] for c in denied["status"]["details"]["causes"]}
    assert "spec.networks[3].name" in fields and "spec.domain.devices.interfaces[2].state" in fields


# --- property: any shape is read without raising ------------------------------------------------------------

_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from(["", "a", "default", "absent", "up"]))
KEYS = ["name", "state", "bridge", "masquerade", "sriov", "binding", "pod", "multus", "networkName", "default"]
_json = st.recursive(
    _scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
)
_iface = st.fixed_dictionaries({"name": st.sampled_from(["a", "b", "default"])}, optional={
    k: st.one_of(st.just({}), _json) for k in ("bridge", "masquerade", "sriov", "state", "model", "macAddress")
})  # fmt: skip
_net = st.fixed_dictionaries({"name": st.sampled_from(["a", "b", "default"])}, optional={
    "pod": st.one_of(st.just({}), _json), "multus": st.one_of(st.just({"networkName": "x"}), _json)
})  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    old=st.tuples(st.one_of(st.lists(_iface, max_size=3), _json), st.one_of(st.lists(_net, max_size=3), _json)),
    new=st.tuples(st.one_of(st.lists(_iface, max_size=3), _json), st.one_of(st.lists(_net, max_size=3), _json)),
)
def test_any_shape_gets_a_verdict_never_an_exception(old: tuple[Any, Any], new: tuple[Any, Any]) -> None:
    verdict = update(vm(*old), vm(*new))
    assert verdict.code in (200, 400, 422)
    assert verdict.allowed == (verdict.code == 200)


@pytest.mark.parametrize("kind", ROOTS)
@pytest.mark.parametrize(
    ("binding", "rule"),
    [("masquerade", "interfaces.masquerade-not-pod-network"), ("passtBinding", "interfaces.passt-not-pod-network")],
)
def test_a_pod_only_binding_without_any_network_also_fails_the_pod_network_rule(
    kind: str, binding: str, rule: str
) -> None:
    # KubeVirt looks the network up by name and reads a missing one as "not the pod network"
    verdict = validate(make(kind, [{"name": "default", binding: {}}], []))
    found = by_rule(verdict)
    field = f"{ROOTS[kind]}.domain.devices.interfaces[0].name"
    assert [(f, t) for f, t, _ in found["interfaces.interface-without-network"]] == [(field, "FieldValueInvalid")]
    [(f, t, message)] = found[rule]
    assert (f, t) == (field, "FieldValueInvalid") and "only on the pod network" in message
    assert message.endswith('not on an undefined network (no entry in networks is named "default")'), message
    assert "not on no network" not in message


# --- edges found by mutation testing ----------------------------------------------------------------------

VMI = "VirtualMachineInstance"


def rules(verdict: Verdict) -> list[tuple[str, str, str]]:
    return sorted((c.field, c.type, c.rule) for c in verdict.causes)


def test_interfaces_with_no_networks_are_denied_n11() -> None:
    verdict = validate(make(VMI, [MASQ], None))
    assert rules(verdict) == [
        ("spec.domain.devices.interfaces[0].name", "FieldValueInvalid", "interfaces.interface-without-network"),
        ("spec.domain.devices.interfaces[0].name", "FieldValueInvalid", "interfaces.masquerade-not-pod-network"),
    ]


def test_networks_with_no_interfaces_are_denied_n10() -> None:
    verdict = validate(make(VMI, None, [POD]))
    assert rules(verdict) == [("spec.networks[0].name", "FieldValueRequired", "interfaces.network-without-interface")]


def test_bridge_null_is_no_binding_n5() -> None:
    verdict = validate(make(VMI, [{"name": "default", "bridge": None}], [POD]))
    assert rules(verdict) == [("spec.domain.devices.interfaces[0]", "FieldValueInvalid", "interfaces.binding-count")]
    assert 'interface "default" has no binding: set exactly one of' in verdict.causes[0].message


def test_an_empty_interface_name_is_denied_n18() -> None:
    verdict = validate(make(VMI, [{"name": "", "masquerade": {}}], [{"name": "", "pod": {}}]))
    assert rules(verdict) == [
        ("spec.domain.devices.interfaces[0].name", "FieldValueInvalid", "interfaces.bad-interface-field")
    ]
    assert verdict.causes[0].message == 'interface name "" may contain only letters, digits, "-" and "_"'


@pytest.mark.parametrize("mac", ["02-00-00-00-00-00", "02:00:00:00:00:00"])
def test_the_reserved_mac_is_denied_in_any_spelling_n7(mac: str) -> None:
    verdict = validate(make(VMI, [{**MASQ, "macAddress": mac}], [POD]))
    assert rules(verdict) == [
        ("spec.domain.devices.interfaces[0].macAddress", "FieldValueInvalid", "interfaces.masquerade-reserved-mac")
    ]
    assert verdict.causes[0].message == (
        f'interface "default": MAC address {mac} is reserved for KubeVirt\'s in-pod bridge; choose another'
    )


def test_an_empty_model_is_no_model() -> None:
    verdict = validate(make(VMI, [{**MASQ, "model": ""}], [POD]))
    assert verdict.allowed and verdict.causes == []


def test_an_eight_byte_mac_is_denied_as_longer_than_six_bytes() -> None:
    verdict = validate(make(VMI, [{**MASQ, "macAddress": "02:00:00:00:00:00:00:01"}], [POD]))
    assert rules(verdict) == [
        ("spec.domain.devices.interfaces[0].macAddress", "FieldValueInvalid", "interfaces.bad-interface-field")
    ]
    assert verdict.causes[0].message.endswith('"02:00:00:00:00:00:00:01" is longer than 6 bytes')
    assert validate(make(VMI, [{**MASQ, "macAddress": "02:00:00:aa:bb:cc"}], [POD])).allowed


def test_a_null_key_is_the_same_as_an_absent_key_in_the_hotplug_diff() -> None:
    assert update(vm([MASQ, iface("storage", model=None)]), vm()).warnings == []
    assert update(vm(), vm([MASQ, iface("storage", model=None)])).warnings == []
    assert update(vm(), vm([MASQ, iface("storage", model="e1000")])).warnings == [
        'interface "storage": changing model needs a restart (virtctl restart vm1); only state is live; '
        "to swap it live, set state: absent and add a new interface"
    ]


def test_an_old_spec_with_autoattach_pod_interface_false_had_no_default_interface() -> None:
    old = vm()
    old["spec"]["template"]["spec"]["domain"]["devices"] = {"autoattachPodInterface": False}
    old["spec"]["template"]["spec"].pop("networks")
    assert update(old, vm()).warnings == [
        'interface "default": added, but it is on the pod network; only secondary Multus networks hot-plug; '
        "the running VM needs a restart (virtctl restart vm1)"
    ]
    assert update(old, vm([iface("storage")], [multus("storage")])).warnings == []


def test_a_multus_change_other_than_network_name_needs_a_restart() -> None:
    verdict = update(vm(), vm(BASE_IFACES, [POD, multus("storage", default=False)]))
    assert verdict.warnings == [
        'interface "storage": its network changed (multus); needs a restart (virtctl restart vm1)'
    ]
    verdict = update(vm(), vm(BASE_IFACES, [POD, multus("storage", nad="ns/other")]))
    assert verdict.warnings == [
        'interface "storage": new multus.networkName reaches the running VM only by live migration (if '
        "KubeVirt's NAD live update is on), else restart (virtctl restart vm1)"
    ]


# --- every message as a user sees it (tests/data/network-messages.json) -----------------------------------
# Causes and warnings word for word; after a deliberate change regenerate with VM_ADMISSION_UPDATE_SNAPSHOTS=1
# and review the diff.

NETWORK_MESSAGES = DATA / "network-messages.json"


def _unnamed(obj: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"].pop("name")
    return obj


def _network_message_cases() -> dict[str, Verdict]:
    k = VMI
    long_name = "y" * 250
    return {
        "masquerade on a resourceClaim network": validate(
            make(k, [{"name": "dra", "masquerade": {}}], [{"name": "dra", "resourceClaim": {"claimName": "x"}}])
        ),
        "a network without a type": validate(make(k, [{"name": "x", "masquerade": {}}], [{"name": "x"}])),
        "a network with two types": validate(
            make(k, [{"name": "x", "masquerade": {}}], [{"name": "x", "pod": {}, "multus": {"networkName": "a"}}])
        ),
        "masquerade on a secondary Multus network": validate(make(k, [{"name": "s", "masquerade": {}}], [multus("s")])),
        "masquerade on the Multus default network": validate(
            make(k, [{"name": "s", "masquerade": {}}], [multus("s", default=True)])
        ),
        "absent on the Multus default network": validate(
            make(k, [iface("s", state="absent")], [multus("s", default=True)])
        ),
        "two bindings": validate(make(k, [{"name": "s", "bridge": {}, "sriov": {}, "state": "absent"}], [multus("s")])),
        "absent on a binding plugin": validate(
            make(k, [{"name": "s", "binding": {"name": "p"}, "state": "absent"}], [multus("s")])
        ),
        "everything twice": validate(make(k, [MASQ, MASQ], [POD, POD])),
        "an unknown model": validate(make(k, [{**MASQ, "model": "fast"}], [POD])),
        "two changes on an unnamed VM": update(
            vm(), _unnamed(vm([MASQ, iface("storage", model="e1000", macAddress="02:00:00:00:00:01")]))
        ),
        "a bridge removed": update(vm(), vm([MASQ], [POD])),
        "an SR-IOV interface removed": update(vm([MASQ, iface("storage", "sriov")]), vm([MASQ], [POD])),
        "masquerade plugged on Multus": update(
            vm(), vm([MASQ, iface("storage"), iface("x", "masquerade")], [*BASE_NETS, multus("x")])
        ),
        "a long warning is cut": update(
            vm(), vm([MASQ, iface("storage"), iface(long_name)], [*BASE_NETS, {"name": long_name, "pod": {}}])
        ),
    }


def test_every_network_message_is_as_recorded() -> None:
    found = {
        name: {"causes": [[c.field, c.type, c.rule, c.message] for c in v.causes], "warnings": v.warnings}
        for name, v in _network_message_cases().items()
    }
    if os.environ.get("VM_ADMISSION_UPDATE_SNAPSHOTS") == "1":
        NETWORK_MESSAGES.write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    recorded = json.loads(NETWORK_MESSAGES.read_text(encoding="utf-8"))
    assert found.keys() == recorded.keys()
    for key in found:
        assert found[key] == recorded[key], key


@pytest.mark.parametrize(
    ("mac", "problem"),
    [
        ("020000000001", None),  # Go 1.26's net.ParseMAC (KubeVirt 1.9) takes 12 bare hex digits
        ("02005E0010AB", None),
        ("0200.5e00.10ab", None),
        ("0200000000010203", "is longer than 6 bytes"),  # 8 bytes, bare
        ("02000000000", "is malformed"),
        ("02000000000g", "is malformed"),
        ("02:0000000001", "is malformed"),
    ],
)
def test_macs_are_read_as_go_126_reads_them_n18(mac: str, problem: str | None) -> None:
    verdict = validate(make(VMI, [{**MASQ, "macAddress": mac}], [POD]))
    if problem is None:
        assert verdict.allowed and verdict.causes == []
    else:
        assert rules(verdict) == [
            ("spec.domain.devices.interfaces[0].macAddress", "FieldValueInvalid", "interfaces.bad-interface-field")
        ]
        assert problem in verdict.causes[0].message
