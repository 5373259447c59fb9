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
    info = RuleInfo(rule_id, title, kind, field, page, replaces)
    if _REGISTRY.setdefault(rule_id, info) != info:  # the same entry again is a module imported twice
        raise ValueError(f"rule id {rule_id!r} is defined twice")
    return rule_id


def get(rule_id: str) -> RuleInfo | None:
    return _REGISTRY.get(rule_id)


def all_rules() -> list[RuleInfo]:
    """Every registered rule, by area (in :data:`AREAS` order), then in the order its module defines them."""
    order = list(AREAS)
    return sorted(_REGISTRY.values(), key=lambda r: order.index(r.area))


# --- docs/rules.md ------------------------------------------------------------------------------------------

_INTRO = """\
# Rule ids

<!-- Generated from the rule registry (webhook/rules/registry.py) by scripts/rules-doc: do not edit. -->

Every cause vm-admission emits carries a stable **rule id** `<area>.<what-is-wrong>`: lowercase words joined by
`-`, matching `^[a-z]+\\.[a-z0-9]+(-[a-z0-9]+)*$`. The ids are what to grep for, alert on and suppress by:

- `vm-admission review -o json` prints them as `"rule"` in `causes` (and in `wouldDeny` with
  `enforcement: warn`); the text output shows them in brackets after each cause; `-o sarif` and `-o junit`
  describe them with the titles below;
- `vm_admission_denials_total{webhook,rule}` counts denying causes by id, `vm_admission_would_deny_total{webhook,rule}`
  the causes that `enforcement: warn` let through ([operations](operations.md#metrics));
- `vm-admission audit` reports them with each finding and as the `rule` of each PolicyReport result
  ([audit](audit.md)); its own `object.unreadable` (result `error`) marks a stored object the rules cannot read,
  which the webhook would answer 400, and is not a rule of this table;
- they are **not** sent to the API server: an AdmissionReview's `status.details.causes[]` stays
  `{type, field, message}`, the schema the API server knows.

Ids never change meaning; a retired id is not reused. Ids used to be letter-number codes (`cpu.R7`,
`network.N12`, `preflight.K1`); [the renaming table](#renamed-ids) maps each old id to its name. Fields are shown
for a VMI; on a VM they are under `spec.template.spec` (annotations under `spec.template.metadata`). Each rule is
defined once, where it is checked, with `define(...)` in its module; this page is generated from those entries
(`scripts/rules-doc`, and a test fails when the page is stale). How to add a rule:
[architecture](architecture.md#adding-a-rule).
"""

_KINDS = """\
## What the kinds mean

Kind `deny`: a 422 cause (with `enforcement: warn`, a `would deny:` warning and a would-deny count instead).
Kind `reserved`: the id is reserved and emitted by no rule today.
Kind `preflight`: needs the cluster view; a warning `preflight (<id>): <field>: <message>` under
`cluster.enforcement: warn` (the default), a 422 cause under `enforce`. When every need is met by some node but
never all by one, the finding takes the id of the first need the closest node lacks. Details:
[cluster view](cluster-view.md).
Kind `cluster`: needs the cluster view's NADs, and like `preflight` is a warning `<id>: <field>: <message>` under
`cluster.enforcement: warn` and a 422 cause under `enforce`.
Kind `warning`: always a warning `<id>: <field>: <message>` (and a `warn` result in `audit`), never a denial.

Warnings that are advice on admitted objects (the consistent-duplicate CPU warning, the sidecar-limits mutation
note, the HostDevices-gate note, hotplug guidance on running VMs) carry no rule id; they are plain strings in the
AdmissionReview's `warnings`.
"""

_REVIEW = """\
## Ids of `vm-admission review` only

`vm-admission review` checks more than the webhook does before the rules run (the API server has already done
these when it calls the webhook). Its own ids, kind `review`, appear in `-o json`, the text output's brackets,
SARIF and JUnit.
"""


def _row(r: RuleInfo) -> str:
    return f'| <a id="{r.id}"></a>`{r.id}` | {r.kind} | {r.field or "—"} | {r.title} ([more]({r.page})) |'


def render_markdown() -> str:
    """docs/rules.md, from every registered rule (the caller imports the modules that define them)."""
    rules = all_rules()
    header = "| id | kind | field | what it finds |\n|---|---|---|---|"
    out = [_INTRO]
    review_areas = [a for a in AREAS if any(r.area == a and r.kind == "review" for r in rules)]
    for area, heading in AREAS.items():
        rows = [r for r in rules if r.area == area]
        if not rows or area in review_areas:
            continue
        out += [f"## {heading}\n", header, *(_row(r) for r in rows), ""]
    out.append(_KINDS)
    out.append(_REVIEW)
    out += [header, *(_row(r) for r in rules if r.area in review_areas), ""]
    renamed = [r for r in rules if r.replaces]
    out += [
        '<a id="renamed-ids"></a>',
        "## Renamed ids\n",
        "The ids used to be codes. Each old id and the id that replaced it (the same rule, the same meaning):\n",
        "| old id | id |\n|---|---|",
        *(f"| `{r.replaces}` | [`{r.id}`](#{r.id}) |" for r in sorted(renamed, key=lambda r: _code_order(r.replaces))),
        "",
    ]
    return "\n".join(out)


def _code_order(old: str) -> tuple[str, str, int]:
    """``cpu.R2`` before ``cpu.R10``: area, letter, number (non-coded old ids sort after, by name)."""
    area, _, name = old.partition(".")
    m = re.fullmatch(r"([A-Z])(\d+)", name)
    return (area, m.group(1), int(m.group(2))) if m else (area, "~" + name, 0)
