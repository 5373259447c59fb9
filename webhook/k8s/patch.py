"""Minimal RFC 6902 JSON Patch recorded while editing an object.

Mutation rules edit the object they are given through a :class:`PatchBuilder`; every edit is applied to the
object at once (so a later rule sees an earlier rule's result, as the API server's next webhook would) and
recorded as an ``add`` op against the state before it. Missing parents are created by one ``add`` of the
nested value at the first missing level, so the patch applies to the raw request object as it is. Ops
therefore apply in order, per RFC 6902, and a rule never emits ``replace`` or ``remove``.
"""

from __future__ import annotations

import copy
from typing import Any

from webhook.k8s.paths import Path, pointer

JsonPatch = list[dict[str, Any]]


class PatchError(ValueError):
    """The object's shape does not allow the edit (e.g. a string where a map is needed)."""


class PatchBuilder:
    """Apply ``add`` edits to ``root`` in place and record them as JSON Patch ops."""

    __slots__ = ("ops", "root")

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.ops: JsonPatch = []

    def set(self, path: Path, value: Any) -> None:
        """Set the map member at ``path`` (all but the last segment may be missing or null: created)."""
        if not path or not isinstance(path[-1], str):
            raise PatchError("set() needs a path that ends in a map key")
        cur: Any = self.root
        for depth, seg in enumerate(path[:-1]):
            # The common step (a key of a map) inline; _child checks and explains everything else.
            nxt = cur.get(seg) if type(cur) is dict and type(seg) is str else _child(cur, seg, path)
            if nxt is None:
                self.put(cur, path[: depth + 1], _nest(path[depth + 1 :], value))
                return
            cur = nxt
        if not isinstance(cur, dict):
            raise PatchError(f"{pointer(path[:-1])} is not a map")
        self.put(cur, path, value)

    def put(self, parent: dict[str, Any], path: Path, value: Any) -> None:
        """Set member ``path[-1]`` of ``parent``, the map the caller found at ``path[:-1]`` (no walk from the root)."""
        self.ops.append({"op": "add", "path": pointer(path), "value": _copy(value)})
        parent[path[-1]] = value  # type: ignore[index]  # a map member: path[-1] is a key

    def append(self, path: Path, value: Any) -> None:
        """Append ``value`` to the list at ``path`` (created with the value when missing or null)."""
        current = self._resolve(path)
        if current is None:
            self.set(path, [value])
            return
        if not isinstance(current, list):
            raise PatchError(f"{pointer(path)} is not a list")
        self.ops.append({"op": "add", "path": pointer(path) + "/-", "value": _copy(value)})
        current.append(value)

    def _resolve(self, path: Path) -> Any:
        cur: Any = self.root
        for seg in path:
            cur = _child(cur, seg, path)
            if cur is None:
                return None
        return cur


def _copy(value: Any) -> Any:
    """A deep copy of a JSON value; scalars are immutable and shared (much cheaper than ``copy.deepcopy``)."""
    kind = type(value)
    if kind is str:  # most patch values are quantities or names
        return value
    if kind is dict:
        return {k: v if type(v) is str else _copy(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) is str else _copy(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return copy.deepcopy(value)


def _child(cur: Any, seg: str | int, path: Path) -> Any:
    if isinstance(seg, int):
        if not isinstance(cur, list) or not 0 <= seg < len(cur):
            raise PatchError(f"{pointer(path)}: index {seg} does not exist")
        return cur[seg]
    if not isinstance(cur, dict):
        raise PatchError(f"{pointer(path)}: {seg!r} is not under a map")
    return cur.get(seg)


def _nest(rest: Path, value: Any) -> Any:
    for seg in reversed(rest):
        if isinstance(seg, int):
            raise PatchError("cannot create a list element by index")
        value = {seg: value}
    return value
