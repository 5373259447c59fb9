"""``vm-admission review``: verdicts, output formats and exit codes, on the examples and on crafted input."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.testkit.paths import REPO
from webhook.cli import main
from webhook.commands.review import Source, find_old

EXAMPLES = REPO / "examples"
INDEX = EXAMPLES / "README.md"
VM_ADMISSION = Path(sys.executable).parent / "vm-admission"
EXIT = {"admitted": 0, "denied": 1}


def expected_verdicts() -> dict[str, str]:
    """examples/README.md's index: ``| [dir/file.yaml](dir/file.yaml) | admitted|denied | ... |`` rows."""
    rows: dict[str, str] = {}
    for line in INDEX.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*\[([^\]]+\.(?:ya?ml|json))\]\([^)]*\)\s*\|\s*(admitted|denied)\b", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def example_files() -> list[str]:
    return sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))


def review(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["review", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


DEDICATED_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: pinned
  namespace: apps
  annotations:
    vm-admission.io/guaranteed-qos: "true"
spec:
  containers:
    - name: app
      image: app:1
      resources:
        limits: {cpu: "2", memory: 1Gi}
    - name: log-shipper
      image: shipper:1
"""

UNEQUAL_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: unequal
  namespace: apps
  annotations:
    vm-admission.io/guaranteed-qos: "true"
spec:
  containers:
    - name: app
      image: app:1
      resources:
        requests: {cpu: "1", memory: 1Gi}
        limits: {cpu: "2", memory: 1Gi}
"""

FRACTIONAL_VMI = """\
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: half
  namespace: default
spec:
  domain:
    cpu: {dedicatedCpuPlacement: true}
    resources:
      requests: {cpu: 1500m, memory: 1Gi}
      limits: {cpu: 1500m, memory: 1Gi}
    devices: {}
"""


# --- every example ---------------------------------------------------------------------------------------


def test_every_example_is_indexed_with_its_verdict() -> None:
    expected = expected_verdicts()
    missing = [f for f in example_files() if f not in expected]
    assert not missing, f"add these examples to the index in examples/README.md with their verdict: {missing}"
    stale = [f for f in expected if not (EXAMPLES / f).is_file()]
    assert not stale, f"examples/README.md lists files that do not exist: {stale}"


@pytest.mark.parametrize("example", example_files())
def test_example_gets_its_documented_verdict(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    verdict = expected_verdicts().get(example)
    if verdict is None:
        pytest.fail(f"{example} has no verdict in examples/README.md")
    code, out, err = review(capsys, str(EXAMPLES / example))
    assert code == EXIT[verdict], out + err
    assert (": DENIED" in out) == (verdict == "denied")
    assert out.splitlines()[-1].endswith(" 0 denied") == (verdict == "admitted")


def test_examples_at_once_exit_1_and_each_object_once(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(EXAMPLES / f) for f in example_files()]
    code, out, _ = review(capsys, *files, "-o", "json")
    results = json.loads(out)
    expected = expected_verdicts()
    assert code == (1 if "denied" in expected.values() else 0)
    assert {r["file"] for r in results} == set(files)
    for r in results:
        rel = str(Path(r["file"]).relative_to(EXAMPLES))
        if expected[rel] == "admitted":
            assert r["verdict"] == "admitted", r


def test_the_installed_command_reviews_an_example() -> None:
    bad = EXAMPLES / "cpu" / "vmi-dedicated-fractional-cpu.yaml"
    good = EXAMPLES / "cpu" / "vmi-dedicated.yaml"
    run = subprocess.run([str(VM_ADMISSION), "review", str(good), str(bad)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    assert "VirtualMachineInstance databases/pinned-db: ADMITTED" in run.stdout
    assert "VirtualMachineInstance default/half-pinned: DENIED" in run.stdout
    assert f"  ✗ {bad}:14:9: spec.domain.resources.requests.cpu: " in run.stdout  # file:line:col of the field
    assert run.stdout.splitlines()[-1] == "2 objects: 1 admitted, 1 denied"
    assert run.stderr == ""


# --- text output -----------------------------------------------------------------------------------------


def test_text_shows_denial_causes_with_their_fields(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = review(capsys, write(tmp_path, "vmi.yaml", FRACTIONAL_VMI))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "VirtualMachineInstance default/half: DENIED"
    causes = [line for line in lines if line.startswith("  ✗ ")]
    assert [c.split(": ")[0:2] for c in causes] == [
        [f"  ✗ {tmp_path / 'vmi.yaml'}:10:18", "spec.domain.resources.requests.cpu"],
        [f"  ✗ {tmp_path / 'vmi.yaml'}:11:16", "spec.domain.resources.limits.cpu"],
    ]
    assert lines[-1] == "1 object: 0 admitted, 1 denied"


def test_text_shows_the_patch_as_readable_ops_and_warnings(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = review(capsys, write(tmp_path, "pod.yaml", DEDICATED_POD))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Pod apps/pinned: ADMITTED"
    assert any(line.startswith("  ! ") and "log-shipper" in line for line in lines)
    ops = [line for line in lines if line.startswith("  + ")]
    assert ops, out
    assert all(line.startswith("  + add /spec/containers/") for line in ops), ops
    sidecar = [line for line in ops if line.startswith("  + add /spec/containers/1/resources = ")]
    assert sidecar and '"cpu":"200m"' in sidecar[0] and '"memory":"64M"' in sidecar[0], ops


def test_warnings_of_an_admitted_vmi(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = review(capsys, str(EXAMPLES / "cpu" / "vmi-dedicated-cores-and-cpu.yaml"))
    assert code == 0
    assert out.splitlines()[0] == "VirtualMachineInstance web/pinned-web: ADMITTED"
    assert out.splitlines()[1].startswith("  ! ")


def test_unknown_kinds_are_admitted_untouched(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cm.yaml",
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings}
        data: {a: b}
        """,
    )
    code, out, _ = review(capsys, path)
    assert code == 0
    assert out.splitlines()[0] == "ConfigMap settings: ADMITTED (not reviewed: no rule concerns this kind)"


def test_multi_document_files_and_lists(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pod_list = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [yaml.safe_load(DEDICATED_POD), yaml.safe_load(UNEQUAL_POD)],
    }
    typed_list = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceList", "items": []}
    vmi = yaml.safe_load(FRACTIONAL_VMI)
    del vmi["apiVersion"], vmi["kind"]  # items of a typed list may leave them out
    typed_list["items"] = [vmi]
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump_all([pod_list, None, typed_list]), encoding="utf-8")
    code, out, _ = review(capsys, str(path))
    assert code == 1
    titles = [line for line in out.splitlines() if not line.startswith(("  ", "#")) and ": " in line]
    assert titles[:3] == [
        "Pod apps/pinned: ADMITTED",
        "Pod apps/unequal: DENIED",
        "VirtualMachineInstance default/half: DENIED",
    ]
    assert out.splitlines()[-1] == "3 objects: 1 admitted, 2 denied"


def test_json_from_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(yaml.safe_load(FRACTIONAL_VMI))))
    code, out, _ = review(capsys, "-")
    assert code == 1
    assert out.startswith("VirtualMachineInstance default/half: DENIED")


# --- json and yaml output --------------------------------------------------------------------------------


def test_json_output_has_verdict_causes_warnings_and_patch(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "both.yaml"
    path.write_text(DEDICATED_POD + "---\n" + FRACTIONAL_VMI, encoding="utf-8")
    code, out, _ = review(capsys, str(path), "-o", "json")
    assert code == 1
    pod, vmi = json.loads(out)
    assert (pod["kind"], pod["namespace"], pod["name"], pod["verdict"]) == ("Pod", "apps", "pinned", "admitted")
    assert pod["causes"] == [] and pod["warnings"]
    assert pod["patch"] and all(op["op"] == "add" for op in pod["patch"])
    assert (vmi["verdict"], vmi["code"], vmi["document"]) == ("denied", 422, 2)
    assert {c["field"] for c in vmi["causes"]} == {
        "spec.domain.resources.requests.cpu",
        "spec.domain.resources.limits.cpu",
    }
    assert all(c["type"] == "FieldValueInvalid" for c in vmi["causes"])


def test_yaml_output_is_the_admitted_objects_and_is_stable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(DEDICATED_POD + "---\n" + FRACTIONAL_VMI, encoding="utf-8")
    code, out, err = review(capsys, str(path), "-o", "yaml")
    assert code == 1
    docs = list(yaml.safe_load_all(out))
    assert [d["metadata"]["name"] for d in docs] == ["pinned"]  # the denied VMI is left out ...
    assert "VirtualMachineInstance default/half: DENIED" in err  # ... and said so on stderr
    sidecar = docs[0]["spec"]["containers"][1]["resources"]
    assert sidecar["requests"] == sidecar["limits"]
    app = docs[0]["spec"]["containers"][0]["resources"]
    assert app["requests"] == app["limits"] == {"cpu": "2", "memory": "1Gi"}  # API server defaulting applied

    again = tmp_path / "admitted.yaml"
    again.write_text(out, encoding="utf-8")
    code, out2, _ = review(capsys, str(again), "-o", "json")
    assert code == 0
    assert [r["patch"] for r in json.loads(out2)] == [[]]


@pytest.mark.parametrize("example", sorted(f for f, v in expected_verdicts().items() if v == "admitted"))
def test_reviewing_admitted_yaml_again_changes_nothing(
    example: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = review(capsys, str(EXAMPLES / example), "-o", "yaml")
    assert code == 0
    path = tmp_path / "again.yaml"
    path.write_text(out, encoding="utf-8")
    code, out2, _ = review(capsys, str(path), "-o", "json")
    assert code == 0
    assert all(r["patch"] == [] for r in json.loads(out2))


# --- UPDATE ----------------------------------------------------------------------------------------------


def test_update_uses_the_operation(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pod = write(tmp_path, "pod.yaml", UNEQUAL_POD)
    assert review(capsys, pod)[0] == 1
    code, out, _ = review(capsys, pod, "--operation", "UPDATE", "--old", pod)
    assert code == 0  # pod updates are allowed untouched (container resources are immutable)
    assert "Pod apps/unequal: ADMITTED" in out


def test_vm_update_is_validated_like_create(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    vm = str(EXAMPLES / "cpu" / "vm-dedicated-arm64-threads.yaml")
    code, out, _ = review(capsys, vm, "--operation", "UPDATE", "--old", vm)
    assert code == 1
    assert f"  ✗ {vm}:13:7: spec.template.spec.architecture: " in out


def test_old_objects_are_matched_by_kind_namespace_and_name() -> None:
    def src(kind: str, ns: str, name: str) -> Source:
        return Source("f", 1, {"apiVersion": "v1", "kind": kind, "metadata": {"namespace": ns, "name": name}})

    a, b, other_ns = src("VirtualMachine", "x", "a"), src("VirtualMachine", "x", "b"), src("VirtualMachine", "y", "a")
    assert find_old(src("VirtualMachine", "x", "b"), [a, b]) is b.obj
    assert find_old(src("VirtualMachine", "x", "a"), [other_ns, a]) is a.obj
    assert find_old(src("VirtualMachine", "z", "a"), [other_ns, b]) is other_ns.obj  # same kind and name
    assert find_old(src("VirtualMachine", "x", "c"), [a]) is a.obj  # the only old object
    assert find_old(src("VirtualMachine", "x", "c"), [a, b]) is None


# --- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("kind: Pod\nmetadata: {name: [unclosed\n", "3:1", "not valid YAML"),
        ("apiVersion: v1\nmetadata: {name: x}\n", "1:1", "has no kind"),
        ("kind: Pod\nmetadata: {name: x}\n", "1:1", "has no apiVersion"),
        ("apiVersion: v1\nkind: List\nitems: [[a, list]]\n", "3:9", "items[0]: expected an object"),
        ("apiVersion: v1\nkind: List\nitems: {a: b}\n", "3:1", "items must be a list"),
    ],
)
def test_an_unreadable_document_is_an_error_with_its_position_and_the_others_keep_their_verdicts(
    text: str, position: str, message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = str(EXAMPLES / "cpu" / "vmi-dedicated.yaml")
    bad = write(tmp_path, "bad.yaml", text)
    code, out, err = review(capsys, good, bad, str(EXAMPLES / "cpu" / "vmi-dedicated-fractional-cpu.yaml"))
    assert code == 2  # unreadable wins over denied
    assert "VirtualMachineInstance databases/pinned-db: ADMITTED" in out
    assert "VirtualMachineInstance default/half-pinned: DENIED" in out
    [line] = [line for line in out.splitlines() if "UNREADABLE" in line]
    assert line.startswith(f"{bad}:{position}: document 1: UNREADABLE: ") and message in line, line
    assert line.endswith("[input.unreadable]")
    assert out.splitlines()[-1] == "2 objects: 1 admitted, 1 denied, 1 unreadable document"
    code, out, err = review(capsys, good, bad, "-o", "json")
    assert code == 2
    admitted, error = json.loads(out)
    assert admitted["verdict"] == "admitted"
    assert (error["verdict"], error["file"], error["document"], error["rule"]) == ("error", bad, 1, "input.unreadable")
    assert f"{error['line']}:{error['column']}" == position and message in error["message"]
    assert f"{bad}:{position}: document 1: " in err


def test_a_document_without_apiversion_among_others_in_one_stream(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """One document without apiVersion no longer stops the run; the later ones are read."""
    stream = FRACTIONAL_VMI + "---\nkind: Pod\nmetadata: {name: x}\n---\n" + DEDICATED_POD
    code, out, _ = review(capsys, write(tmp_path, "all.yaml", stream), "-o", "json")
    assert code == 2
    results = json.loads(out)
    assert [(r.get("name"), r["verdict"], r["document"], r["line"]) for r in results] == [
        ("half", "denied", 1, 1),
        (None, "error", 2, 14),
        ("pinned", "admitted", 3, 17),
    ]


def test_bad_yaml_in_the_middle_of_a_stream_costs_only_its_document(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stream = DEDICATED_POD + "---\nkind: Pod\nmetadata: {name: [unclosed\n---\n" + UNEQUAL_POD
    code, out, _ = review(capsys, write(tmp_path, "all.yaml", stream))
    assert code == 2
    assert "Pod apps/pinned: ADMITTED" in out and "Pod apps/unequal: DENIED" in out
    assert re.search(r"all\.yaml:19:1: document 2: UNREADABLE: not valid YAML", out), out


# --- paths as kubectl -f reads them ------------------------------------------------------------------------


def _tree(tmp_path: Path) -> Path:
    """manifests/{b.yaml, a.yml, c.json, notes.txt, values.yaml (not Kubernetes), sub/{z.yaml, deeper/y.yaml}}."""
    root = tmp_path / "manifests"
    (root / "sub" / "deeper").mkdir(parents=True)
    vmi = yaml.safe_load(FRACTIONAL_VMI)
    pod = yaml.safe_load(DEDICATED_POD)

    def named(obj: dict[str, object], name: str) -> dict[str, object]:
        return {**obj, "metadata": {**obj["metadata"], "name": name}}  # type: ignore[dict-item]

    (root / "b.yaml").write_text(yaml.safe_dump(named(pod, "b")))
    (root / "a.yml").write_text(yaml.safe_dump(named(pod, "a")))
    (root / "c.json").write_text(json.dumps(named(vmi, "c")))
    (root / "notes.txt").write_text("apiVersion: v1\nkind: [not, read]\n")  # no manifest extension: passed over
    (root / "values.yaml").write_text("replicas: 2\nimage: {tag: x}\n")
    (root / "sub" / "z.yaml").write_text(yaml.safe_dump(named(pod, "z")))
    (root / "sub" / "deeper" / "y.yaml").write_text(yaml.safe_dump(named(vmi, "y")))
    return root


def _reviewed(out: str) -> list[str]:
    return [r["name"] for r in json.loads(out)]


def test_a_directory_is_read_in_lexical_order_of_its_manifest_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = _tree(tmp_path)
    code, out, err = review(capsys, str(root), "-o", "json")
    assert code == 1  # c is the fractional VMI
    assert _reviewed(out) == ["a", "b", "c"]  # a.yml, b.yaml, c.json; not notes.txt, not sub/
    assert [r["file"] for r in json.loads(out)] == [str(root / f) for f in ("a.yml", "b.yaml", "c.json")]
    assert (
        err == f"vm-admission review: note: {root / 'values.yaml'}: document 1 is not a Kubernetes object "
        "(no apiVersion or kind): skipped\n"
    )


def test_recursive_descends_into_subdirectories_where_their_names_sort(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = _tree(tmp_path)
    (root / "d.yaml").write_text(yaml.safe_dump({**yaml.safe_load(DEDICATED_POD), "metadata": {"name": "d"}}))
    for flag in ("-R", "--recursive"):
        code, out, _ = review(capsys, str(root), flag, "-o", "json")
        assert code == 1
        # filepath.Walk order: a.yml b.yaml c.json d.yaml sub/deeper/y.yaml sub/z.yaml ("sub" sorts after "d.yaml")
        assert _reviewed(out) == ["a", "b", "c", "d", "y", "z"]


def test_files_named_explicitly_are_read_whatever_their_extension_and_in_argument_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = _tree(tmp_path)
    manifest = tmp_path / "pod.manifest"
    manifest.write_text(yaml.safe_dump({**yaml.safe_load(DEDICATED_POD), "metadata": {"name": "m"}}))
    code, out, _ = review(capsys, str(root / "sub"), str(manifest), str(root / "a.yml"), "-o", "json")
    assert code == 0
    assert _reviewed(out) == ["z", "m", "a"]


def test_a_directory_and_stdin_mix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(UNEQUAL_POD))
    code, out, _ = review(capsys, "-", str(root / "sub"), "-o", "json")
    assert code == 1
    assert _reviewed(out) == ["unequal", "z"]


def test_only_non_kubernetes_documents_exit_0_with_notes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    workflow = write(tmp_path, "ci.yml", "on: [push]\njobs: {test: {runs-on: x}}\n")
    playbook = write(tmp_path, "play.yaml", "- hosts: all\n  tasks: []\n---\njust a string\n")
    code, out, err = review(capsys, workflow, playbook)
    assert code == 0
    assert out == "0 objects: 0 admitted, 0 denied\n"
    assert err.count("is not a Kubernetes object") == 3
    assert "play.yaml: document 2 is not a Kubernetes object" in err


def test_a_stream_from_kustomize_or_helm_on_stdin_with_lists(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``kustomize build | vm-admission review -`` sends: ``---``-separated documents, comments, empty
    documents, a ``List``; every object is reviewed in stream order."""
    stream = "\n".join(
        [
            "# Source: chart/templates/pod.yaml",
            "---",
            DEDICATED_POD,
            "---",
            "# an empty document",
            "---",
            yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [yaml.safe_load(FRACTIONAL_VMI)]}),
            "---",
            UNEQUAL_POD,
        ]
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(stream))
    code, out, err = review(capsys, "-", "-o", "json")
    assert (code, err) == (1, "")
    assert [(r["name"], r["verdict"]) for r in json.loads(out)] == [
        ("pinned", "admitted"),
        ("half", "denied"),
        ("unequal", "denied"),
    ]


def test_an_empty_directory_has_no_objects(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, out, err = review(capsys, str(tmp_path / "empty"))
    assert (code, out) == (2, "")
    assert "no objects found" in err


def test_bad_yaml_in_a_directory_exits_2_and_the_other_files_are_reviewed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = _tree(tmp_path)
    (root / "broken.yaml").write_text("kind: Pod\nmetadata: {name: [unclosed\n")
    code, out, _ = review(capsys, str(root))
    assert code == 2
    assert f"{root / 'broken.yaml'}:3:1: document 1: UNREADABLE: not valid YAML" in out
    assert "Pod apps/a: ADMITTED" in out and "VirtualMachineInstance default/c: DENIED" in out


def test_input_without_objects_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = review(capsys, write(tmp_path, "empty.yaml", "# nothing here\n---\n"))
    assert (code, out) == (2, "")
    assert "no objects found" in err


def test_unreadable_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = str(EXAMPLES / "cpu" / "vmi-dedicated.yaml")
    code, out, _ = review(capsys, str(tmp_path / "missing.yaml"), good)
    assert code == 2
    assert f"{tmp_path / 'missing.yaml'}:1:1: UNREADABLE: cannot read: " in out
    assert "VirtualMachineInstance databases/pinned-db: ADMITTED" in out
    (tmp_path / "latin1.yaml").write_bytes("apiVersion: v1\nkind: ConfigMap\ndata: {a: caf\xe9}\n".encode("latin-1"))
    code, out, _ = review(capsys, str(tmp_path / "latin1.yaml"))
    assert code == 2 and "UNREADABLE: not UTF-8 text" in out


def test_bad_config_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write(tmp_path, "config.yaml", "cpuManager: {enabeld: true}\n")
    code, out, err = review(capsys, str(EXAMPLES / "cpu" / "vmi-dedicated.yaml"), "--config", config)
    assert (code, out) == (2, "")
    assert "enabeld" in err


def test_old_without_update_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    vm = str(EXAMPLES / "cpu" / "vm-dedicated.yaml")
    code, _, err = review(capsys, vm, "--old", vm)
    assert code == 2
    assert "--operation UPDATE" in err


# --- config ----------------------------------------------------------------------------------------------


def test_config_is_applied(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write(tmp_path, "config.yaml", "enforcement: warn\n")
    code, out, _ = review(capsys, write(tmp_path, "vmi.yaml", FRACTIONAL_VMI), "--config", config, "-o", "json")
    assert code == 0
    (result,) = json.loads(out)
    assert result["verdict"] == "admitted"
    assert any("spec.domain.resources.requests.cpu" in w for w in result["warnings"])


def test_an_object_the_rules_cannot_read_is_denied_with_code_400(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    vmi = yaml.safe_load(FRACTIONAL_VMI)
    vmi["spec"]["domain"]["resources"] = "x"
    path = tmp_path / "odd.yaml"
    path.write_text(yaml.safe_dump(vmi), encoding="utf-8")
    code, out, _ = review(capsys, str(path), "--schema", "off")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "VirtualMachineInstance default/half: DENIED"
    assert re.match(rf"  ✗ {re.escape(str(path))}:\d+:5: spec\.domain\.resources: ", lines[1]), lines[1]
    assert lines[1].endswith("(code 400)")
    code, out, _ = review(capsys, str(path), "-o", "json", "--schema", "off")
    (result,) = json.loads(out)
    assert (result["verdict"], result["code"], result["causes"]) == ("denied", 400, [])
    assert result["message"].startswith("spec.domain.resources")
    # the API server's schema check comes first: a 422 schema.type cause, as kubectl would show it
    code, out, _ = review(capsys, str(path), "-o", "json")
    (result,) = json.loads(out)
    assert (result["verdict"], result["code"]) == ("denied", 422)
    assert [(c["field"], c["rule"]) for c in result["causes"]] == [("spec.domain.resources", "schema.type")]


def test_stdin_can_be_read_once(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = review(capsys, "-", "-")
    assert (code, out) == (2, "")
    assert "standard input" in err


def test_vm_update_against_the_running_vm_warns_only_for_changes_that_need_a_restart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    network = EXAMPLES / "network"
    if not (network / "vm-multus-bridge.yaml").is_file():
        pytest.skip("the network examples are not in this tree")
    old = str(network / "vm-multus-bridge.yaml")
    code, out, _ = review(capsys, "--operation", "UPDATE", "--old", old, str(network / "vm-hotplug.yaml"))
    assert code == 0
    assert not [line for line in out.splitlines() if line.startswith("  ! ")]
    code, out, _ = review(capsys, "--operation", "UPDATE", "--old", old, str(network / "vm-needs-restart.yaml"))
    assert code == 0
    warnings = [line for line in out.splitlines() if line.startswith("  ! ")]
    assert len(warnings) == 3 and all("restart" in w for w in warnings)
    # created from scratch, the same VM has no running predecessor: nothing to warn about
    code, out, _ = review(capsys, str(network / "vm-needs-restart.yaml"))
    assert code == 0 and "  ! " not in out


def test_the_examples_directory_recursively_is_every_example_once(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = review(capsys, "-R", str(EXAMPLES), "-o", "json")
    results = json.loads(out)
    assert code == 1 and err == ""
    files = [str(EXAMPLES / f) for f in example_files()]
    assert sorted({r["file"] for r in results}) == sorted(files)
    # kubectl's order: by name within each directory, a subdirectory where its name sorts
    seen = list(dict.fromkeys(r["file"] for r in results))
    assert seen == sorted(files, key=lambda f: Path(f).relative_to(EXAMPLES).parts)
