"""The admission table (webhook.admission): which kinds, operations and rules; what the engine looks rules up in."""

from __future__ import annotations

from webhook import admission
from webhook.rules import attachments, cpu, passthrough, preflight, qos


def test_the_engine_looks_up_exactly_the_tables_hooks() -> None:
    assert admission._rules_by_request() == admission.RULES
    assert set(admission.RULES) == {
        ("Pod", "mutate", "CREATE"),
        ("Pod", "validate", "CREATE"),
        ("Pod", "validate", "UPDATE"),  # pod-networks: validation only
        ("VirtualMachineInstance", "mutate", "CREATE"),
        ("VirtualMachineInstance", "validate", "CREATE"),
        ("VirtualMachine", "mutate", "CREATE"),
        ("VirtualMachine", "mutate", "UPDATE"),
        ("VirtualMachine", "validate", "CREATE"),
        ("VirtualMachine", "validate", "UPDATE"),
    }
    assert admission.rules_for("Pod", "mutate", "CREATE") == (
        qos.mutate_pod,
        passthrough.mutate_pod,
        attachments.mutate_pod,
    )
    assert admission.rules_for("Pod", "validate", "UPDATE") == (attachments.validate_pod_update,)
    assert admission.rules_for("VirtualMachine", "validate", "UPDATE")[0] is cpu.validate_vm
    assert admission.rules_for("VirtualMachine", "validate", "UPDATE")[-1] is preflight.validate_vm
    assert admission.rules_for("VirtualMachineInstance", "validate", "UPDATE") == ()
    assert admission.rules_for("ConfigMap", "validate", "CREATE") == ()


def test_a_kind_names_itself_as_the_api_server_does() -> None:
    assert (admission.POD.api_version, admission.POD.resource) == ("v1", "pods")
    assert (admission.VM.api_version, admission.VM.resource) == ("kubevirt.io/v1", "virtualmachines.kubevirt.io")
    assert admission.VMI.gvk == {"group": "kubevirt.io", "version": "v1", "kind": "VirtualMachineInstance"}
    assert {"Pod", "VirtualMachineInstance", "VirtualMachine"} == admission.KINDS
    assert [h.name for k in admission.TABLE for h in k.hooks] == [
        "pods",
        "pod-networks",
        "virtualmachineinstances",
        "virtualmachines",
    ]
    assert admission.POD.hooks[1].rules("mutate") == ()


def test_no_two_hooks_of_a_kind_take_the_same_operation() -> None:
    """The API server would call both: each (kind, phase, operation) has one hook, whose rules the engine runs."""
    for kind in admission.TABLE:
        operations = [op for hook in kind.hooks for op in hook.operations]
        assert len(operations) == len(set(operations)), kind.kind
