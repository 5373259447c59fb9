"""The scheduler's static filters, on node classes: nodeSelector, required node affinity, taints/tolerations.

Semantics follow kube-scheduler's NodeAffinity and TaintToleration plugins (component-helpers
``nodeaffinity`` and ``v1helper.TolerationsTolerateTaint``): terms of ``nodeSelectorTerms`` are ORed, the
expressions of a term ANDed, an empty term matches nothing; a toleration with an empty key and ``Exists``
tolerates every taint; an empty effect matches every effect. Only what "could this node ever run it" needs:
what runs on a node now is ignored. Malformed shapes are ignored here (API validation refuses them first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.k8s.snapshot import HOSTNAME_LABEL, NodeClass, Taint

HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})
# Taints the node lifecycle controller (and the API server's TaintNodesByCondition plugin, on every new node)
# sets from node conditions: they say how a node is now, not whether it could ever run something, so the
# preflight leaves them out (and the view does not even keep them: readiness flapping must not churn classes).
CONDITION_TAINTS = frozenset(
    {
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/disk-pressure",
        "node.kubernetes.io/pid-pressure",
        "node.kubernetes.io/network-unavailable",
        "node.cloudprovider.kubernetes.io/uninitialized",
    }
)
# A cordoned node (spec.unschedulable) keeps off every pod that does not tolerate this taint (NodeUnschedulable).
UNSCHEDULABLE = Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an object may run: its node selector, required affinity terms and tolerations."""

    node_selector: Mapping[str, str] = field(default_factory=dict)
    required_terms: tuple[dict[str, Any], ...] | None = None  # None: no required node affinity
    tolerations: tuple[dict[str, Any], ...] = ()

    @property
    def constrained(self) -> bool:
        return bool(self.node_selector) or self.required_terms is not None


def read_placement(spec: Any, extra_selector: Mapping[str, str] | None = None) -> Placement:
    """The placement of a pod spec (or a VMI spec, whose fields of these names carry over to its launcher).

    ``extra_selector`` entries are added after the object's own (KubeVirt's launcher adds its labels so).
    """
    spec = spec if isinstance(spec, dict) else {}
    selector: dict[str, str] = {}
    raw = spec.get("nodeSelector")
    if isinstance(raw, dict):
        selector.update({str(k): str(v) for k, v in raw.items() if isinstance(v, str)})
    if extra_selector:
        selector.update(extra_selector)
    terms: tuple[dict[str, Any], ...] | None = None
    affinity = spec.get("affinity")
    node_affinity = affinity.get("nodeAffinity") if isinstance(affinity, dict) else None
    required = (
        node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") if isinstance(node_affinity, dict) else None
    )
    if isinstance(required, dict) and isinstance(required.get("nodeSelectorTerms"), list):
        terms = tuple(t for t in required["nodeSelectorTerms"] if isinstance(t, dict))
    tolerations = spec.get("tolerations")
    tols = tuple(t for t in tolerations if isinstance(t, dict)) if isinstance(tolerations, list) else ()
    return Placement(selector, terms, tols)


def _values(nc: NodeClass, key: str) -> frozenset[str] | None:
    """The values ``key`` takes on the class's nodes (None: the label is absent on them)."""
    if key == HOSTNAME_LABEL:
        return nc.hostnames or None
    value = nc.labels.get(key)
    return None if value is None else frozenset((value,))


def _expression(values: frozenset[str] | None, expr: dict[str, Any]) -> bool:
    op = expr.get("operator")
    raw = expr.get("values")
    wanted: list[Any] = raw if isinstance(raw, list) else []
    wanted_set = {str(v) for v in wanted}
    if op == "In":
        return values is not None and bool(values & wanted_set)
    if op == "NotIn":
        return values is None or bool(values - wanted_set)
    if op == "Exists":
        return values is not None
    if op == "DoesNotExist":
        return values is None
    if op in ("Gt", "Lt") and values is not None and len(wanted) == 1:
        try:
            bound = int(str(wanted[0]))
            return any(int(v) > bound if op == "Gt" else int(v) < bound for v in values)
        except ValueError:
            return False
    return False


def _term(nc: NodeClass, term: dict[str, Any]) -> bool:
    exprs = term.get("matchExpressions") or []  # not annotated: compiled code would type-check before we do
    fields = term.get("matchFields") or []
    if not isinstance(exprs, list) or not isinstance(fields, list):
        return False
    if not exprs and not fields:
        return False  # an empty term matches no node
    for expr in exprs:
        if not isinstance(expr, dict) or not _expression(_values(nc, str(expr.get("key", ""))), expr):
            return False
    for expr in fields:  # only metadata.name is supported by the API
        if not isinstance(expr, dict) or expr.get("key") != "metadata.name" or not _expression(nc.names, expr):
            return False
    return True


def matches(nc: NodeClass, placement: Placement) -> bool:
    """True when some node of the class matches the selector and the required affinity."""
    for key, value in placement.node_selector.items():
        values = _values(nc, key)
        if values is None or value not in values:
            return False
    if placement.required_terms is not None:
        return any(_term(nc, t) for t in placement.required_terms)
    return True


def tolerated(taint: Taint, tolerations: tuple[dict[str, Any], ...]) -> bool:
    for tol in tolerations:
        effect = tol.get("effect") or ""
        if effect and effect != taint.effect:
            continue
        key = tol.get("key") or ""
        op = tol.get("operator") or "Equal"
        if op == "Exists":
            if not key or key == taint.key:
                return True
        elif op == "Equal" and key == taint.key and (tol.get("value") or "") == taint.value:
            return True
    return False


def untolerated(nc: NodeClass, placement: Placement) -> list[Taint]:
    """The class's NoSchedule/NoExecute taints that the placement does not tolerate."""
    return [t for t in nc.taints if t.effect in HARD_EFFECTS and not tolerated(t, placement.tolerations)]


def eligible(nc: NodeClass, placement: Placement) -> bool:
    """Schedulable (or cordoned and tolerated), selected, and every hard taint tolerated."""
    if nc.unschedulable and not tolerated(UNSCHEDULABLE, placement.tolerations):
        return False
    return matches(nc, placement) and not untolerated(nc, placement)
