"""``review --schema``: VMIs and VMs against KubeVirt's CRD schema, pods against Kubernetes' OpenAPI
schema (kubernetes-validate), as the API server checks them with strict field validation. Each problem is a
``schema.*`` cause with its field and position."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from webhook.cli import main
from webhook.schema import SchemaValidator, kubevirt_validator, pod_validator, resolve_version

VMI = """\
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: small
  namespace: default
  labels: {app: web}
spec:
  domain:
    cpu: {cores: 2}
    resources:
      requests: {memory: 1Gi}
    devices: {}
"""

VM = """\
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata: {name: vm, namespace: default}
spec:
  runStrategy: Always
  template:
    spec:
      domain:
        resources:
          requests: {memory: 1Gi}
        devices: {}
"""

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: apps}
spec:
  containers:
    - name: app
      image: app:1
"""


def review(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, *argv: str) -> tuple[int, Any, str]:
    path = tmp_path / "in.yaml"
    path.write_text(text, encoding="utf-8")
    code = main(["review", str(path), "-o", "json", *argv])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def schema_causes(result: dict[str, Any], key: str = "causes") -> list[tuple[str, str, int, int]]:
    return [(c["rule"], c["field"], c["line"], c["column"]) for c in result[key] if c["rule"].startswith("schema.")]


def test_valid_objects_pass_the_schema(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, results, _ = review(capsys, tmp_path, VMI + "---\n" + VM + "---\n" + POD)
    assert code == 0, results
    assert all(r["verdict"] == "admitted" for r in results)


def test_a_missing_required_field_denies_at_its_parent(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, [result], _ = review(capsys, tmp_path, VMI.replace("    devices: {}\n", ""))
    assert code == 1 and result["verdict"] == "denied"
    assert schema_causes(result) == [("schema.required", "spec.domain.devices", 8, 3)]
    assert result["causes"][0]["type"] == "FieldValueRequired"


def test_unknown_fields_are_errors_as_under_strict_field_validation(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = VMI.replace("    cpu: {cores: 2}\n", "    cpu: {cores: 2, dedicatedCPUPlacement: true}\n    gpu: {}\n")
    code, [result], _ = review(capsys, tmp_path, text)
    assert code == 1
    assert schema_causes(result) == [
        ("schema.unknown-field", "spec.domain.cpu.dedicatedCPUPlacement", 9, 21),
        ("schema.unknown-field", "spec.domain.gpu", 10, 5),
    ]
    assert 'unknown field "spec.domain.gpu"' in result["causes"][1]["message"]


def test_preserved_fields_take_anything(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = VM.replace("  template:\n", "  template:\n    metadata:\n      labels: {a: b}\n      anything: {x: 1}\n")
    code, [result], _ = review(capsys, tmp_path, text)
    assert code == 0, result


@pytest.mark.parametrize(
    ("old", "new", "rule", "field", "words"),
    [
        ("cores: 2", 'cores: "2"', "schema.type", "spec.domain.cpu.cores", "must be of type integer, got string"),
        ("memory: 1Gi", "memory: 1.5", "schema.type", "spec.domain.resources.requests.memory", "integer or a string"),
        ("memory: 1Gi", "memory: 1Gb", "schema.pattern", "spec.domain.resources.requests.memory", "must match"),
        ("labels: {app: web}", "labels: {app: true}", "schema.type", "metadata.labels.app", "type string"),
    ],
)
def test_types_int_or_string_patterns_and_labels(
    old: str, new: str, rule: str, field: str, words: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, [result], _ = review(capsys, tmp_path, VMI.replace(old, new))
    assert code == 1, result
    [cause] = [c for c in result["causes"] if c["rule"].startswith("schema.")]
    assert (cause["rule"], cause["field"]) == (rule, field)
    assert words in cause["message"]


def test_an_enum(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = VM.replace("      domain:\n", "      domain:\n        rebootPolicy: Sometimes\n")
    code, [result], _ = review(capsys, tmp_path, text)
    assert code == 1
    [cause] = result["causes"]
    assert (cause["rule"], cause["type"], cause["line"]) == ("schema.enum", "FieldValueNotSupported", 9)
    assert "'Reboot', 'Terminate'" in cause["message"]


def test_vm_templates_are_checked(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, [result], _ = review(capsys, tmp_path, VM.replace("        devices: {}\n", ""))
    assert code == 1
    assert schema_causes(result) == [("schema.required", "spec.template.spec.domain.devices", 8, 7)]


def test_a_vm_without_template_is_a_schema_cause_under_strict_and_a_note_otherwise(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: v}\nspec:\n  runStrategy: Halted\n"
    code, [result], _ = review(capsys, tmp_path, text)
    assert code == 1
    assert schema_causes(result) == [("schema.required", "spec.template", 4, 1)]
    assert result["notes"] == []
    code, [result], _ = review(capsys, tmp_path, text, "--schema", "warn")
    assert code == 0
    assert schema_causes(result, "wouldDeny") == [("schema.required", "spec.template", 4, 1)]
    assert [n["rule"] for n in result["notes"]] == ["review.no-template"]
    code, [result], _ = review(capsys, tmp_path, text, "--schema", "off")
    assert code == 0 and result["wouldDeny"] == []
    assert [n["rule"] for n in result["notes"]] == ["review.no-template"]


def test_warn_mode_prints_would_deny_with_the_rule(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "vmi.yaml"
    path.write_text(VMI.replace("    devices: {}\n", ""), encoding="utf-8")
    code = main(["review", str(path), "--schema", "warn"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"  ! {path}:8:3: would deny: spec.domain.devices: Required value: " in out
    assert "[schema.required]" in out


def test_pods_are_checked_against_the_kubernetes_schema(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = POD.replace(
        "      image: app:1\n", "      image: app:1\n      resourcs: {}\n      ports: [{containerPort: x}]\n"
    )
    code, [result], _ = review(capsys, tmp_path, text)
    assert code == 1
    assert schema_causes(result) == [
        ("schema.unknown-field", "spec.containers[0].resourcs", 8, 7),
        ("schema.type", "spec.containers[0].ports[0].containerPort", 9, 16),
    ]


def test_kubernetes_version(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    oldest = resolve_version(None)
    assert resolve_version(oldest.rsplit(".", 1)[0]) == oldest
    code, _, err = review(capsys, tmp_path, POD, "--kubernetes-version", "1.2")
    assert code == 2 and "kubernetes-validate ships schemas for" in err
    code, _, err = review(capsys, tmp_path, POD, "--kubernetes-version", "99.0")
    assert code == 2


def test_schema_off_skips_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, [result], _ = review(capsys, tmp_path, VMI.replace("    devices: {}\n", ""), "--schema", "off")
    assert code == 0 and result["causes"] == []


def test_validators_are_built_once() -> None:
    assert kubevirt_validator("VirtualMachine") is kubevirt_validator("VirtualMachine")
    version = resolve_version(None)
    assert pod_validator(version) is pod_validator(version)
    check = SchemaValidator()
    assert check({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "oops": 1}) == []


def test_list_map_keys_are_unique(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = VM.replace(
        "      domain:\n", "      resourceClaims:\n        - {name: gpu}\n        - {name: gpu}\n      domain:\n"
    )
    code, [result], _ = review(capsys, tmp_path, text)
    assert code == 1
    [cause] = [c for c in result["causes"] if c["rule"].startswith("schema.")]  # (the devices rules deny it too)
    assert (cause["rule"], cause["type"], cause["field"]) == (
        "schema.duplicate",
        "FieldValueDuplicate",
        "spec.template.spec.resourceClaims[1]",
    )
    assert cause["line"] == 10 and "Duplicate value: name='gpu'" in cause["message"]
