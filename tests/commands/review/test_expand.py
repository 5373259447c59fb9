"""``review`` applies presets, instance types and preferences found in its input before the rules, as KubeVirt
expands them; what it cannot expand it says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from webhook.cli import main
from webhook.expand import selector_matches, topology

PRESET = """\
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstancePreset
metadata:
  name: small-qemu
spec:
  selector:
    matchLabels:
      kubevirt.io/size: small
  domain:
    resources:
      requests:
        memory: 64M
"""

VMI = """\
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: myvmi
  labels:
    kubevirt.io/size: small
spec:
  domain:
    devices: {}
"""

CX1 = """\
apiVersion: instancetype.kubevirt.io/v1beta1
kind: VirtualMachineClusterInstancetype
metadata:
  name: cx1.medium
spec:
  cpu:
    guest: 2
    dedicatedCPUPlacement: true
    isolateEmulatorThread: true
    numa:
      guestMappingPassthrough: {}
  memory:
    guest: 4Gi
    hugepages:
      pageSize: 2Mi
"""

VM = """\
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata: {name: db, namespace: apps}
spec:
  runStrategy: Always
  instancetype: {name: cx1.medium}
  template:
    spec:
      domain:
        devices: {}
"""


def review(capsys: pytest.CaptureFixture[str], tmp_path: Path, *texts: str, args: tuple[str, ...] = ()) -> Any:
    paths = []
    for i, text in enumerate(texts):
        path = tmp_path / f"{i}.yaml"
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    code = main(["review", *paths, "-o", "json", *args])
    return code, {r["name"]: r for r in json.loads(capsys.readouterr().out)}


def rules(result: dict[str, Any], key: str) -> list[str]:
    return [c["rule"] for c in result[key]]


def test_a_preset_in_the_input_gives_a_vmi_its_memory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, results = review(capsys, tmp_path, VMI)
    assert code == 1 and rules(results["myvmi"], "causes") == ["cpu.memory-required"]
    assert "review the preset together with it" in results["myvmi"]["hints"][0]
    code, results = review(capsys, tmp_path, VMI, PRESET)  # the preset may come after the VMI
    assert code == 0, results
    assert rules(results["myvmi"], "notes") == ["preset.applied"]
    assert results["myvmi"]["notes"][0]["line"] == 8  # at spec.domain


def test_a_preset_that_does_not_select_the_vmi_is_named_in_the_denial(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, results = review(capsys, tmp_path, PRESET, VMI.replace("size: small", "size: large"))
    assert code == 1
    [hint] = results["myvmi"]["hints"]
    assert "small-qemu gives domain.resources but does not select this object" in hint
    assert "kubevirt.io/size" in hint


def test_a_conflicting_preset_is_not_applied(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    vmi = VMI.replace("    devices: {}\n", "    devices: {}\n    resources:\n      requests: {memory: 128M}\n")
    code, results = review(capsys, tmp_path, PRESET, vmi)
    assert code == 0
    [note] = results["myvmi"]["notes"]
    assert note["rule"] == "preset.conflict" and "spec.domain.resources.requests.memory" in note["message"]


def test_presets_apply_to_vm_templates_by_template_labels(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    vm = (
        "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: v}\nspec:\n  runStrategy: Always\n"
        "  template:\n    metadata:\n      labels: {kubevirt.io/size: small}\n    spec:\n      domain:\n"
        "        cpu: {dedicatedCpuPlacement: true, cores: 2}\n        devices: {}\n"
    )
    code, results = review(capsys, tmp_path, vm)
    assert code == 1 and "cpu.dedicated-without-memory" in rules(
        results["v"], "causes"
    )  # dedicated CPUs without memory
    assert results["v"]["hints"]
    code, results = review(capsys, tmp_path, PRESET.replace("64M", "1Gi"), vm)
    assert code == 0, results["v"]
    assert rules(results["v"], "notes") == ["preset.applied"]


def test_a_cx1_instancetype_makes_a_dedicated_cpu_vm(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, results = review(capsys, tmp_path, CX1, VM)
    assert code == 0, results["db"]
    assert rules(results["db"], "notes") == ["instancetype.applied"]
    # the expansion made it a dedicated-CPU VM: a fractional CPU request in the template is now a denial
    vm = VM.replace(
        "        devices: {}\n", "        devices: {}\n        resources:\n          requests: {cpu: 1500m}\n"
    )
    code, results = review(capsys, tmp_path, CX1, vm)
    assert code == 1
    assert "instancetype.conflict" in rules(results["db"], "causes")
    assert "cpu.fractional-cpu-request" in rules(results["db"], "causes")


def test_a_vm_that_sets_what_its_instancetype_sets_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    vm = VM.replace("      domain:\n", "      domain:\n        cpu: {cores: 4}\n        memory: {guest: 1Gi}\n")
    code, results = review(capsys, tmp_path, CX1, vm)
    assert code == 1
    conflicts = [(c["field"], c["line"]) for c in results["db"]["causes"] if c["rule"] == "instancetype.conflict"]
    assert conflicts == [("spec.template.spec.domain.cpu.cores", 10), ("spec.template.spec.domain.memory.guest", 11)]


def test_an_instancetype_not_in_the_input_says_which_checks_could_not_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    vm = VM.replace(
        "  instancetype: {name: cx1.medium}\n", "  instancetype: {name: cx1.medium}\n  preference: {name: fedora}\n"
    )
    code, results = review(capsys, tmp_path, vm)
    assert code == 0
    notes = {n["rule"]: n for n in results["db"]["notes"]}
    assert set(notes) == {"instancetype.not-found", "preference.not-found"}
    message = notes["instancetype.not-found"]["message"]
    assert "VirtualMachineClusterInstancetype cx1.medium is not in the input" in message
    assert "dedicated-CPU VM" in message and "checks could not run" in message
    assert notes["instancetype.not-found"]["line"] == 6


def test_preferred_topology_of_a_preference(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pref = (
        "apiVersion: instancetype.kubevirt.io/v1beta1\nkind: VirtualMachinePreference\nmetadata: {name: cores, "
        "namespace: apps}\nspec:\n  cpu: {preferredCPUTopology: preferCores}\n"
    )
    vm = VM.replace(
        "  instancetype: {name: cx1.medium}\n",
        "  instancetype: {name: cx1.medium}\n  preference: {kind: VirtualMachinePreference, name: cores}\n",
    )
    code, results = review(capsys, tmp_path, CX1, pref, vm)
    assert code == 0, results["db"]
    assert rules(results["db"], "notes") == ["instancetype.applied"]


def test_topology_and_selectors() -> None:
    assert topology(4, None) == {"sockets": 4, "cores": 1, "threads": 1}
    assert topology(4, {"spec": {"cpu": {"preferredCPUTopology": "cores"}}}) == {"sockets": 1, "cores": 4, "threads": 1}
    assert topology(4, {"spec": {"cpu": {"preferredCPUTopology": "preferThreads"}}})["threads"] == 4
    assert topology(4, {"spec": {"cpu": {"preferredCPUTopology": "preferSpread"}}}) == {
        "sockets": 2,
        "cores": 2,
        "threads": 1,
    }
    assert selector_matches({}, {"a": "b"})
    assert selector_matches({"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}, {"a": "b"})
    assert not selector_matches({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "b"})
    assert not selector_matches({"matchLabels": {"a": "c"}}, {"a": "b"})


def test_presets_on_stdin_are_read_in_a_pre_pass_and_the_stream_reviewed_again(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO(VMI + "---\n" + PRESET))  # `helm template ... | review -`
    code = main(["review", "-", "-o", "json"])
    results = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert code == 0 and rules(results["myvmi"], "notes") == ["preset.applied"]
    assert results["myvmi"]["file"] == "<stdin>" and results["myvmi"]["line"] == 1


class _Status(Exception):
    def __init__(self, status: int) -> None:
        self.status, self.reason = status, "Not Found" if status == 404 else "Forbidden"


def test_with_cluster_the_clusters_instancetypes_are_looked_up_and_the_inputs_win(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kubernetes.client
    import yaml

    from tests.testkit.cluster import cluster_snapshot
    from webhook.commands import review as offline

    stored = yaml.safe_load(CX1)
    del stored["apiVersion"], stored["kind"]  # list items carry neither
    asked: list[str] = []

    class Custom:
        def __init__(self, api: Any) -> None:
            pass

        def list_cluster_custom_object(self, group: str, version: str, plural: str, **kw: Any) -> Any:
            asked.append(plural)
            if plural == "virtualmachineclusterinstancetypes":
                return {"items": [stored]}
            if plural == "virtualmachineinstancepresets":
                raise _Status(403)
            if plural == "virtualmachinepreferences":
                raise _Status(404)
            return {"items": []}

    monkeypatch.setattr(offline, "cluster_snapshot", lambda args: cluster_snapshot([]))
    monkeypatch.setattr("webhook.cluster.client.api_client", lambda kubeconfig, context: object())
    monkeypatch.setattr(kubernetes.client, "CustomObjectsApi", Custom)
    path = tmp_path / "vm.yaml"
    path.write_text(VM)
    code = main(["review", str(path), "-o", "json", "--cluster", "--kubeconfig", "x"])
    out, err = capsys.readouterr()
    [result] = json.loads(out)
    assert code == 0, result
    assert rules(result, "notes") == ["instancetype.applied"]  # the cluster's cx1.medium made it a dedicated VM
    assert len(asked) == 5
    assert "virtualmachineinstancepresets.kubevirt.io forbidden: not looked up" in err
    # one of the input wins over the cluster's: here one without dedicated CPUs, so a fractional request passes
    fractional = VM.replace(
        "        devices: {}\n", "        devices: {}\n        resources:\n          requests: {cpu: 1500m}\n"
    )
    plain = CX1[: CX1.index("spec:")] + "spec:\n  memory: {guest: 1Gi}\n"
    path.write_text(fractional + "---\n" + plain)
    code = main(["review", str(path), "-o", "json", "--cluster", "--kubeconfig", "x"])
    results = json.loads(capsys.readouterr().out)
    assert code == 0, results[0]
    # missing from both: the note says so
    stored["metadata"]["name"] = "other"
    path.write_text(VM)
    code = main(["review", str(path), "-o", "json", "--cluster", "--kubeconfig", "x"])
    [result] = json.loads(capsys.readouterr().out)
    assert "cx1.medium is not in the input or the cluster" in result["notes"][0]["message"]


def test_yaml_output_is_the_vm_as_stored_not_its_expansion(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import yaml

    (tmp_path / "vm.yaml").write_text(CX1 + "---\n" + VM)
    code = main(["review", str(tmp_path / "vm.yaml"), "-o", "yaml"])
    _, vm = list(yaml.safe_load_all(capsys.readouterr().out))
    assert code == 0
    assert vm["spec"]["instancetype"] == {"name": "cx1.medium"}
    assert vm["spec"]["template"]["spec"]["domain"] == {"devices": {}}  # KubeVirt expands it into the VMI only
    (tmp_path / "vmi.yaml").write_text(PRESET + "---\n" + VMI)
    main(["review", str(tmp_path / "vmi.yaml"), "-o", "yaml"])
    _, vmi = list(yaml.safe_load_all(capsys.readouterr().out))
    assert vmi["spec"]["domain"]["resources"]["requests"] == {"memory": "64M"}  # a VMI is stored with its preset
    assert vmi["metadata"]["annotations"] == {"virtualmachinepreset.kubevirt.io/small-qemu": "kubevirt.io/v1"}
