"""``vm-admission review`` positions: every cause and warning names file, document, line and column,
in the files users write: multi-document YAML, JSON, ``kind: List``, rendered streams on stdin, CRLF line
endings, a byte-order mark, anchors and aliases. Positions are checked by line number."""

from __future__ import annotations

import io
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from webhook.cli import main
from webhook.manifests import Position, file_items, split_documents

VMI = """\
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: half
  namespace: default
spec:
  domain:
    cpu:
      dedicatedCpuPlacement: true
    resources:
      requests:
        cpu: 1500m
        memory: 1Gi
      limits:
        cpu: 1500m
        memory: 1Gi
    devices: {}
"""


def review(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["review", "--schema", "off", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def causes(out: str) -> list[dict[str, Any]]:
    return [c for r in json.loads(out) for c in r.get("causes", [])]


def where(c: dict[str, Any]) -> tuple[str, int, int, int]:
    return (c["field"], c["document"], c["line"], c["column"])


def test_causes_carry_file_document_line_and_column(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "vmi.yaml"
    path.write_text("# a comment\n---\n" + VMI, encoding="utf-8")
    code, out, _ = review(capsys, str(path), "-o", "json")
    assert code == 1
    assert [where(c) for c in causes(out)] == [
        ("spec.domain.resources.requests.cpu", 1, 14, 9),
        ("spec.domain.resources.limits.cpu", 1, 17, 9),
    ]
    assert {c["file"] for c in causes(out)} == {str(path)}
    code, out, _ = review(capsys, str(path))
    assert f"  ✗ {path}:14:9: spec.domain.resources.requests.cpu: " in out


def test_the_second_document_of_a_stream_counts_lines_from_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(VMI + "---\n" + VMI.replace("half", "other"), encoding="utf-8")
    _, out, _ = review(capsys, str(path), "-o", "json")
    assert [where(c)[1:3] for c in causes(out)] == [(1, 12), (1, 15), (2, 30), (2, 33)]


def test_a_missing_field_points_at_its_nearest_parent(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = VMI.replace("        memory: 1Gi\n", "").replace("    resources:\n      requests:\n        cpu: 1500m\n", "")
    text = VMI.replace("      requests:\n        cpu: 1500m\n        memory: 1Gi\n", "")  # limits only
    text = text.replace("        memory: 1Gi\n", "")  # no memory at all: R1 on limits.memory
    path = tmp_path / "vmi.yaml"
    path.write_text(text, encoding="utf-8")
    _, out, _ = review(capsys, str(path), "-o", "json")
    by_field = {c["field"]: (c["line"], c["column"]) for c in causes(out)}
    # limits.memory does not exist: the position is that of `limits` (line 11, column 7)
    assert by_field["spec.domain.resources.limits.memory"] == (11, 7)


def test_json_input_has_positions(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "vmi.json"
    path.write_text(json.dumps(yaml.safe_load(VMI), indent=2), encoding="utf-8")
    _, out, _ = review(capsys, str(path), "-o", "json")
    lines = path.read_text().splitlines()
    for c in causes(out):
        line = lines[c["line"] - 1]
        assert line[c["column"] - 1 :].startswith('"cpu"'), (c, line)


def test_items_of_a_list_have_their_own_positions(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    body = textwrap.indent(VMI, "    ").replace("    apiVersion", "  - apiVersion", 1)
    path = tmp_path / "list.yaml"
    path.write_text("apiVersion: v1\nkind: List\nitems:\n" + body, encoding="utf-8")
    _, out, _ = review(capsys, str(path), "-o", "json")
    [result] = json.loads(out)
    assert (result["line"], result["column"]) == (4, 5)
    assert [where(c)[2:] for c in result["causes"]] == [(15, 13), (18, 13)]


def test_stdin_crlf_and_bom(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    crlf = VMI.replace("\n", "\r\n")
    path = tmp_path / "crlf.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + crlf.encode("utf-8"))
    _, out, _ = review(capsys, str(path), "-o", "json")
    assert [where(c)[2:] for c in causes(out)] == [(12, 9), (15, 9)]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\ufeff# rendered by kustomize\n---\n" + VMI))
    _, out, _ = review(capsys, "-", "-o", "json")
    assert [(c["file"], c["line"]) for c in causes(out)] == [("<stdin>", 14), ("<stdin>", 17)]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\ufeff# rendered by kustomize\r\n---\r\n" + crlf))
    _, out, _ = review(capsys, "-")
    assert "  ✗ <stdin>:14:9: spec.domain.resources.requests.cpu: " in out


def test_anchors_and_aliases_point_at_the_anchor(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    resources = "      requests:\n        cpu: 1500m\n        memory: 1Gi\n      limits:\n        cpu: 1500m\n"
    text = VMI.replace(
        resources + "        memory: 1Gi\n",
        "      requests: &res\n        cpu: 1500m\n        memory: 1Gi\n      limits: *res\n",
    )
    path = tmp_path / "alias.yaml"
    path.write_text(text, encoding="utf-8")
    _, out, _ = review(capsys, str(path), "-o", "json")
    assert [where(c)[0::2] for c in causes(out)] == [
        ("spec.domain.resources.requests.cpu", 12),
        ("spec.domain.resources.limits.cpu", 12),  # the alias's value is the anchored mapping
    ]


def test_merge_keys_are_followed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = VMI.replace(
        "      limits:\n        cpu: 1500m\n        memory: 1Gi\n",
        "      limits:\n        <<: {cpu: 1500m}\n        memory: 1Gi\n",
    )
    path = tmp_path / "merge.yaml"
    path.write_text(text, encoding="utf-8")
    _, out, _ = review(capsys, str(path), "-o", "json")
    assert [where(c)[2:] for c in causes(out)] == [(12, 9), (15, 14)]


def test_warnings_and_would_deny_lines_carry_positions_and_rules(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("enforcement: warn\n", encoding="utf-8")
    path = tmp_path / "vmi.yaml"
    path.write_text(VMI, encoding="utf-8")
    code, out, _ = review(capsys, str(path), "--config", str(config))
    assert code == 0
    lines = out.splitlines()
    assert f"  ! {path}:12:9: would deny: spec.domain.resources.requests.cpu: " in out
    would = [line for line in lines if "would deny" in line]
    assert [line.rsplit(" ", 1)[1] for line in would] == ["[cpu.fractional-cpu-request]", "[cpu.fractional-cpu-limit]"]


def test_yaml_output_names_file_and_document_of_each_denial(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    nameless = VMI.replace("  name: half\n", "")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(nameless, encoding="utf-8")
    b.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n" + nameless, encoding="utf-8")
    code, _out, err = review(capsys, str(a), str(b), "-o", "yaml")
    assert code == 1
    assert f"{a}:1:1: document 1: VirtualMachineInstance default/(no name): DENIED: " in err
    assert f"{b}:5:1: document 2: VirtualMachineInstance default/(no name): DENIED: " in err


def test_a_vm_without_template_gets_a_note(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "vm.yaml"
    path.write_text("apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: v}\nspec:\n  running: false\n")
    code, out, _ = review(capsys, str(path))
    assert code == 0
    assert f"  ! {path}:4:1: spec.template: the VirtualMachine has no spec.template" in out
    assert out.splitlines()[1].endswith("[review.no-template]")


def test_split_documents_keeps_line_numbers() -> None:
    text = "a: 1\n---\nb: 2\n--- # comment\nc: 3\n"
    assert list(split_documents(text)) == [(0, "a: 1\n"), (1, "---\nb: 2\n"), (3, "--- # comment\nc: 3\n")]
    starts = [
        item.position for item in file_items("f", "apiVersion: v1\nkind: A\n---\n\n---\napiVersion: v1\nkind: B\n")
    ]  # type: ignore[union-attr]
    assert starts == [Position(1, 1), Position(6, 1)]
