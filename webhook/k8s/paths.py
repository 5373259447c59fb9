"""Field paths, the one way the project names a place in an object.

A path is a tuple of keys (str) and list indices (int). It renders two ways:
- as a Kubernetes field path (``spec.containers[0].resources.limits.cpu``), used in causes and warnings,
  the form ``k8s.io/apimachinery``'s ``field.Path`` produces and that KubeVirt reports;
- as an RFC 6901 JSON pointer (``/spec/containers/0/resources/limits/cpu``), used in JSON Patch ops,
  with ``~`` and ``/`` escaped (extended resource names contain ``/``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, TypeAlias

Segment: TypeAlias = str | int
Path: TypeAlias = tuple[Segment, ...]


def field(path: Path) -> str:
    """Render ``path`` as a Kubernetes field path: keys joined by ``.``, indices as ``[i]``."""
    try:
        return _field_cached(path)  # rules render the same few paths on every review
    except TypeError:  # an unhashable path (a list): render it directly
        return _field(path)


def _field(path: Path) -> str:
    out: list[str] = []
    for seg in path:
        if isinstance(seg, int):
            out.append(f"[{seg}]")
        elif out:
            out.append("." + seg)
        else:
            out.append(seg)
    return "".join(out)


_field_cached = lru_cache(maxsize=4096)(_field)


def escape(segment: Segment) -> str:
    """Escape one JSON-pointer reference token (RFC 6901 §3)."""
    return str(segment).replace("~", "~0").replace("/", "~1")


def pointer(path: Path) -> str:
    """Render ``path`` as an RFC 6901 JSON pointer."""
    try:
        return _pointer_cached(path)  # mutation rules patch the same few paths on every review
    except TypeError:  # an unhashable path (a list): render it directly
        return _pointer(path)


def _pointer(path: Path) -> str:
    out = []
    for seg in path:  # hot in mutation: escape only the tokens that need it
        text = seg if type(seg) is str else str(seg)
        out.append(escape(text) if "~" in text or "/" in text else text)
    return "/" + "/".join(out) if out else ""


_pointer_cached = lru_cache(maxsize=4096)(_pointer)


def get(obj: Any, path: Path, default: Any = None) -> Any:
    """Read ``path`` from nested dicts/lists; ``default`` when any step is missing or of the wrong type."""
    cur = obj
    for seg in path:
        if isinstance(seg, int):
            if not isinstance(cur, list) or not -len(cur) <= seg < len(cur):
                return default
            cur = cur[seg]
        else:
            if not isinstance(cur, dict):
                return default
            cur = cur.get(seg)
            if cur is None:
                return default
    return cur
