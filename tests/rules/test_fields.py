"""The one field-shape reader (webhook.rules.fields): what a rule reads, and the 400 text for a value of the wrong
type, naming its field."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.rules.fields import VM_ROOT, VMI_ROOT, Reader, map_at, vm_template_spec

OBJ: dict[str, Any] = {"m": {"k": 1}, "l": [1], "s": "x", "b": True, "i": 3, "bad": "y"}


@pytest.mark.parametrize(
    ("method", "key", "want", "problem"),
    [
        ("mapping", "m", {"k": 1}, None),
        ("mapping", "bad", None, "spec.bad: must be an object, got string"),
        ("items", "l", [1], None),
        ("items", "bad", None, "spec.bad: must be a list, got string"),
        ("string", "s", "x", None),
        ("string", "i", None, "spec.i: must be a string, got number"),
        ("flag", "b", True, None),
        ("flag", "bad", False, "spec.bad: must be true or false, got string"),
        ("integer", "i", 3, None),
        ("integer", "b", None, "spec.b: must be an integer, got boolean"),
        ("integer", "bad", None, "spec.bad: must be an integer, got string"),
    ],
)
def test_the_reader_returns_the_value_or_records_the_wrong_type_with_its_field(
    method: str, key: str, want: Any, problem: str | None
) -> None:
    r = Reader()
    assert getattr(r, method)(OBJ, key, ("spec", key)) == want
    assert r.problems == ([problem] if problem else [])
    assert getattr(r, method)(OBJ, "absent", ("spec", "absent")) in (None, False)
    assert len(r.problems) == (1 if problem else 0)


def test_a_reader_can_add_to_a_list_it_is_given() -> None:
    shared = ["earlier"]
    Reader(shared).string({"a": 1}, "a", ("a",))
    assert shared == ["earlier", "a: must be a string, got number"]


def test_map_at_walks_to_a_map_or_names_the_first_level_that_is_not_one() -> None:
    obj = {"spec": {"template": {"spec": {"x": 1}}}}
    assert map_at(obj, VM_ROOT) == ({"x": 1}, None)
    assert map_at(obj, ("spec", "nothing", "deeper")) == (None, None)
    assert map_at({"spec": {"template": []}}, VM_ROOT) == (None, "spec.template: must be an object, got list")
    assert map_at({"spec": None}, VMI_ROOT) == (None, None)


def test_the_vm_template_spec_is_unwrapped_as_it_is() -> None:
    assert vm_template_spec({"spec": {"template": {"spec": "odd"}}}) == ("odd", None)
    assert vm_template_spec({"spec": {}}) == (None, None)
    assert vm_template_spec({}) == (None, None)
    assert vm_template_spec({"spec": 5}) == (None, "spec: must be an object, got number")
