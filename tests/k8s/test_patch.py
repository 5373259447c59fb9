"""Field paths and JSON Patch pointers (webhook.k8s.paths) and the patch builder (webhook.k8s.patch)."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from webhook.k8s import paths
from webhook.k8s.patch import PatchBuilder, PatchError


def test_field_path_and_pointer_render_kubernetes_and_rfc6901_forms() -> None:
    p = ("spec", "containers", 1, "resources", "limits", "devices.kubevirt.io/10de_1eb8")
    assert paths.field(p) == "spec.containers[1].resources.limits.devices.kubevirt.io/10de_1eb8"
    assert paths.pointer(p) == "/spec/containers/1/resources/limits/devices.kubevirt.io~110de_1eb8"
    assert paths.pointer(("a~b",)) == "/a~0b"
    assert paths.get({"a": [{"b": 1}]}, ("a", 0, "b")) == 1
    assert paths.get({"a": "x"}, ("a", 0), "d") == "d"


def test_patch_builder_creates_parents_with_one_add_and_applies_to_the_raw_object() -> None:
    raw = {"spec": {"containers": [{"name": "c", "resources": None}]}}
    work = copy.deepcopy(raw)
    pb = PatchBuilder(work)
    pb.set(("spec", "containers", 0, "resources", "limits", "cpu"), "200m")
    pb.set(("spec", "containers", 0, "resources", "requests", "cpu"), "200m")
    pb.set(("spec", "containers", 0, "resources", "limits", "x.io/a_b"), "1")
    pb.append(("spec", "domain", "devices", "hostDevices"), {"name": "a"})
    pb.append(("spec", "domain", "devices", "hostDevices"), {"name": "b"})
    assert [op["op"] for op in pb.ops] == ["add"] * 5
    assert pb.ops[0] == {"op": "add", "path": "/spec/containers/0/resources", "value": {"limits": {"cpu": "200m"}}}
    assert pb.ops[2]["path"] == "/spec/containers/0/resources/limits/x.io~1a_b"
    assert pb.ops[4]["path"] == "/spec/domain/devices/hostDevices/-"
    assert jsonpatch.JsonPatch(pb.ops).apply(raw) == work


def test_patch_builder_refuses_shapes_it_cannot_patch() -> None:
    with pytest.raises(PatchError):
        PatchBuilder({"spec": {"containers": {}}}).set(("spec", "containers", 0, "x"), 1)
    with pytest.raises(PatchError):
        PatchBuilder({"spec": "x"}).set(("spec", "a"), 1)


@pytest.mark.parametrize(
    ("root", "path", "message"),
    [
        ({"spec": {"a": "x"}}, ("spec", "a", "b", "c"), "/spec/a/b/c: 'b' is not under a map"),
        ({"spec": {"a": "x"}}, ("spec", "a", "b"), "/spec/a is not a map"),
        ({"spec": {"a": [1]}}, ("spec", "a", 3, "b"), "/spec/a/3/b: index 3 does not exist"),
        ({"spec": {"a": [1]}}, ("spec", "a", 1, "b"), "/spec/a/1/b: index 1 does not exist"),
        ({"spec": {"a": [1]}}, ("spec", "a", -1, "b"), "/spec/a/-1/b: index -1 does not exist"),
        ({"spec": {}}, ("spec", "a", 0, "b"), "cannot create a list element by index"),
        ({"spec": {}}, ("spec", "a", 0), "set() needs a path that ends in a map key"),
        ({"spec": {}}, (), "set() needs a path that ends in a map key"),
    ],
)
def test_patch_builder_names_a_non_map_in_mid_path(root: dict[str, Any], path: Any, message: str) -> None:
    before = copy.deepcopy(root)
    pb = PatchBuilder(root)
    with pytest.raises(PatchError) as err:
        pb.set(path, 1)
    assert str(err.value) == message
    assert pb.ops == [] and root == before


def test_patch_builder_appends_only_to_lists_and_copies_values() -> None:
    with pytest.raises(PatchError, match=r"^/spec/a is not a list$"):
        PatchBuilder({"spec": {"a": {}}}).append(("spec", "a"), 1)
    with pytest.raises(PatchError, match=r"^/spec/a/b: 'b' is not under a map$"):
        PatchBuilder({"spec": {"a": 1}}).append(("spec", "a", "b"), 1)
    value = {"m": {"n": [1, {"o": "p"}]}, "s": "t", "z": None}
    pb = PatchBuilder({"spec": {"a": [], "b": None}})
    pb.append(("spec", "a"), value)
    pb.append(("spec", "b"), "x")
    pb.set(("spec", "c"), [value, 2.5, True])
    assert pb.ops == [
        {"op": "add", "path": "/spec/a/-", "value": value},
        {"op": "add", "path": "/spec/b", "value": ["x"]},
        {"op": "add", "path": "/spec/c", "value": [value, 2.5, True]},
    ]
    value["m"]["n"][1]["o"] = "changed"  # the recorded ops are copies: later edits of the object do not leak in
    assert pb.ops[0]["value"]["m"]["n"][1] == {"o": "p"}
    assert pb.ops[2]["value"][0]["m"]["n"][1] == {"o": "p"}
    assert pb.root == {"spec": {"a": [value], "b": ["x"], "c": [value, 2.5, True]}}


def test_patch_values_of_other_types_are_deep_copies() -> None:
    inner = [1]
    pb = PatchBuilder({})
    pb.set(("a",), (inner,))
    inner.append(2)
    assert pb.ops == [{"op": "add", "path": "/a", "value": ([1],)}]
