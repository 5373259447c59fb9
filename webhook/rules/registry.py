"""The rule registry: every id a cause can carry, as data.

A rule module names each of its rules once, at module level, with :func:`define`: its id (``<area>.<what>``,
words joined by ``-``), a one-line title, its kind, the field it points at and the docs page that explains it.
``define`` returns the id, which the rule puts on its causes (``Cause.at(..., rule=MEMORY_REQUIRED)``).
``docs/rules.md`` is generated from this registry by ``scripts/rules-doc`` (a test fails when the page is
stale), and so are ``review -o sarif``'s rule descriptions. Ids never change meaning; an id that replaced an
older one names it in ``replaces``, for the renaming table of docs/rules.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

RuleKind = Literal["deny", "cluster", "preflight", "warning", "reserved", "review"]
RULE_ID = re.compile(r"[a-z]+\.[a-z0-9]+(?:-[a-z0-9]+)*")

# The areas in the order docs/rules.md lists them, with the heading of each section.
AREAS: dict[str, str] = {
    "cpu": "Dedicated CPUs, memory and hugepages (VMIs, VM templates)",
    "qos": "Guaranteed QoS of dedicated-CPU pods",
    "passthrough": "Passthrough declarations",
    "devices": "Host devices, GPUs and DRA claims",
    "interfaces": "Interfaces and networks of a VMI",
    "networks": "Secondary networks (Multus attachments)",
    "preflight": "Cluster preflight",
    "input": "Input of vm-admission review",
    "review": "Outcomes of vm-admission review",
    "schema": "Schema of vm-admission review",
    "preset": "Presets in vm-admission review",
    "instancetype": "Instance types in vm-admission review",
    "preference": "Preferences in vm-admission review",
}


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """One registry entry (what docs/rules.md shows in one row)."""

    id: str
    title: str  # one line: what the rule finds
    kind: RuleKind
    field: str  # the field its causes name, in Markdown ("" when none)
    page: str  # the docs page that explains it, relative to docs/ (optionally with a #anchor)
    replaces: str  # the id it had before the ids became words, "" for a rule born with its name

    @property
    def area(self) -> str:
        return self.id.partition(".")[0]


_REGISTRY: dict[str, RuleInfo] = {}


def define(rule_id: str, title: str, *, field: str, page: str, kind: RuleKind = "deny", replaces: str = "") -> str:
    """Register a rule and return its id. Raises ``ValueError`` on a malformed, unknown-area or repeated id."""
    if not RULE_ID.fullmatch(rule_id) or rule_id.partition(".")[0] not in AREAS:
        raise ValueError(f"malformed rule id {rule_id!r}: <area>.<words-joined-by-dashes>, area one of {list(AREAS)}")
    if rule_id in _REGISTRY:
        raise ValueError(f"rule id {rule_id!r} is defined twice")
    _REGISTRY[rule_id] = RuleInfo(rule_id, title, kind, field, page, replaces)
    return rule_id


def get(rule_id: str) -> RuleInfo | None:
    return _REGISTRY.get(rule_id)


def all_rules() -> list[RuleInfo]:
    """Every registered rule, by area (in :data:`AREAS` order), then in the order its module defines them."""
    order = list(AREAS)
    return sorted(_REGISTRY.values(), key=lambda r: order.index(r.area))
