"""Reading the raw object's fields by their expected shape: the one reader every rule uses.

Rules read the object as the API server sent it (plain JSON), so any field may hold a value of the wrong type
(``resources: "x"``, ``cores: "2"``). Such a value makes the object unreadable: the rule answers 400 naming the
field (``spec.domain.cpu: must be an object, got string``), never guesses. :class:`Reader` collects these
problems with their field paths while a rule reads what it needs; :func:`map_at` walks to one map.

Where a VMI's spec is: ``spec`` of a VMI (:data:`VMI_ROOT`) and ``spec.template.spec`` of a VM
(:data:`VM_ROOT`), unwrapped by :func:`vm_template_spec`.
"""

from __future__ import annotations

from typing import Any

from webhook.k8s.paths import Path
from webhook.k8s.paths import field as field_path
from webhook.rules.base import json_type

VMI_ROOT: Path = ("spec",)
VM_ROOT: Path = ("spec", "template", "spec")


def wrong_type(path: Path, expected: str, value: Any) -> str:
    """The problem text for ``value`` at ``path`` not being ``expected`` (e.g. "an object", "a string")."""
    return f"{field_path(path)}: must be {expected}, got {json_type(value)}"


def map_at(obj: dict[str, Any], path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The map at ``path`` (None when a level is absent or null), or the problem naming the first level that is
    not a map."""
    cur: Any = obj
    for depth, key in enumerate(path):
        cur = cur.get(key)
        if cur is None:
            return None, None
        if not isinstance(cur, dict):
            return None, wrong_type(path[: depth + 1], "an object", cur)
    found: dict[str, Any] = cur
    return found, None


def vm_template_spec(vm: dict[str, Any]) -> tuple[Any, str | None]:
    """A VM's ``spec.template.spec`` as it is (None when absent; not checked to be a map), or the problem that
    stops us reaching it (``spec`` or ``spec.template`` not a map)."""
    template, problem = map_at(vm, ("spec", "template"))
    return (template.get("spec") if template is not None else None), problem


class Reader:
    """Reads typed values out of raw maps, collecting each wrong-type value as a problem (a 400) with its path.

    Every method returns the value when it has the type, and the empty value (None, "", False, 0) when it is
    absent or, with a problem recorded, of another type.
    """

    problems: list[str]

    def __init__(self, problems: list[str] | None = None) -> None:
        self.problems = [] if problems is None else problems

    def mapping(self, parent: dict[str, Any], key: str, path: Path) -> dict[str, Any] | None:
        v = parent.get(key)
        if v is None:
            return None
        if not isinstance(v, dict):
            self.problems.append(wrong_type(path, "an object", v))
            return None
        return v

    def items(self, parent: dict[str, Any], key: str, path: Path) -> list[Any] | None:
        v = parent.get(key)
        if v is None:
            return None
        if not isinstance(v, list):
            self.problems.append(wrong_type(path, "a list", v))
            return None
        return v

    def string(self, parent: dict[str, Any], key: str, path: Path) -> str | None:
        v = parent.get(key)
        if v is None or isinstance(v, str):
            return v
        self.problems.append(wrong_type(path, "a string", v))
        return None

    def flag(self, parent: dict[str, Any], key: str, path: Path) -> bool:
        v = parent.get(key)
        if v is None:
            return False
        if not isinstance(v, bool):
            self.problems.append(wrong_type(path, "true or false", v))
            return False
        return v

    def integer(self, parent: dict[str, Any], key: str, path: Path) -> int | None:
        v = parent.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            self.problems.append(wrong_type(path, "an integer", v))
            return None
        return v
