"""The scheduler's static filters on node classes (webhook.k8s.scheduling): nodeSelector, required node affinity,
taints and tolerations, with kube-scheduler's semantics. Classes come from Node objects folded as the view does."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from tests.testkit.cluster import cluster_snapshot, node
from webhook.k8s.scheduling import Placement, eligible, matches, read_placement, tolerated, untolerated
from webhook.k8s.snapshot import NodeClass, Taint


def one_class(n: dict[str, Any]) -> NodeClass:
    (nc,) = cluster_snapshot([n]).node_classes
    return nc


def affinity(*terms: dict[str, Any]) -> dict[str, Any]:
    required = {"nodeSelectorTerms": list(terms)}
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}}


def expr(key: str, operator: str, *values: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        e["values"] = list(values)
    return e


ZONE_A = one_class(node("a", labels={"zone": "z1", "cores": "16"}))


# ---------------------------------------------------------------------------------------- reading


def test_read_placement_keeps_string_selectors_and_adds_the_extra_ones_last() -> None:
    p = read_placement({"nodeSelector": {"disk": "ssd", "n": 3, "arch": "arm64"}}, {"arch": "amd64", "x": "y"})
    assert dict(p.node_selector) == {"disk": "ssd", "arch": "amd64", "x": "y"}
    assert p.required_terms is None and p.tolerations == ()
    assert p.constrained
    assert dict(read_placement({"nodeSelector": {"disk": "ssd"}}).node_selector) == {"disk": "ssd"}


def test_read_placement_of_malformed_specs_is_unconstrained() -> None:
    for spec in (
        None,
        [],
        {"nodeSelector": ["a"]},
        {"affinity": []},
        {"affinity": {"nodeAffinity": []}},
        {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}}},
        {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}},
        {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": {}}}}},
        {"tolerations": {"key": "k"}},
    ):
        p = read_placement(spec)
        assert p == Placement() and not p.constrained, spec


def test_read_placement_keeps_the_terms_and_tolerations_that_are_objects() -> None:
    term = {"matchExpressions": [expr("zone", "In", "z1")]}
    p = read_placement({**affinity(term, "junk"), "tolerations": [{"key": "k"}, 3]})
    assert p.required_terms == (term,) and p.tolerations == ({"key": "k"},)
    assert p.constrained and not p.node_selector
    assert read_placement(affinity()).required_terms == ()  # an empty list still constrains: it matches nothing
    assert read_placement(affinity()).constrained


# --------------------------------------------------------------------------------------- selectors


def test_node_selector_needs_every_label_with_its_value() -> None:
    assert matches(ZONE_A, Placement({"zone": "z1"}))
    assert matches(ZONE_A, Placement({"zone": "z1", "cores": "16"}))
    assert not matches(ZONE_A, Placement({"zone": "z1", "cores": "8"}))
    assert not matches(ZONE_A, Placement({"disk": "ssd"}))
    assert matches(ZONE_A, Placement())


def test_the_hostname_label_selects_among_the_classes_nodes() -> None:
    (nc,) = cluster_snapshot([node("a"), node("b")]).node_classes
    assert "kubernetes.io/hostname" not in nc.labels and nc.count == 2
    assert matches(nc, Placement({"kubernetes.io/hostname": "b"}))
    assert not matches(nc, Placement({"kubernetes.io/hostname": "c"}))
    term = {"matchExpressions": [expr("kubernetes.io/hostname", "In", "a", "z")]}
    assert matches(nc, Placement(required_terms=(term,)))
    nameless = NodeClass(MappingProxyType({}), (), False, MappingProxyType({}), frozenset({"a"}))
    assert not matches(nameless, Placement({"kubernetes.io/hostname": "a"}))  # no hostname label on its nodes
    absent = {"matchExpressions": [expr("kubernetes.io/hostname", "DoesNotExist")]}
    assert matches(nameless, Placement(required_terms=(absent,)))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (expr("zone", "In", "z1", "z2"), True),
        (expr("zone", "In", "z2"), False),
        (expr("rack", "In", "r1"), False),
        (expr("zone", "NotIn", "z2"), True),
        (expr("zone", "NotIn", "z1"), False),
        (expr("rack", "NotIn", "r1"), True),
        (expr("zone", "Exists"), True),
        (expr("rack", "Exists"), False),
        (expr("zone", "DoesNotExist"), False),
        (expr("rack", "DoesNotExist"), True),
        (expr("cores", "Gt", "8"), True),
        (expr("cores", "Gt", "16"), False),
        (expr("cores", "Gt", 15), True),
        (expr("cores", "Lt", "17"), True),
        (expr("cores", "Lt", "16"), False),
        (expr("cores", "Gt", "8", "9"), False),
        (expr("cores", "Gt"), False),
        (expr("cores", "Gt", "many"), False),
        (expr("zone", "Gt", "1"), False),  # z1 is no integer
        (expr("rack", "Gt", "1"), False),
        (expr("rack", "Lt", "1"), False),
        (expr("zone", "Like", "z1"), False),
        ({"key": "zone", "operator": "In", "values": "z1"}, False),
        ({"operator": "Exists"}, False),
    ],
)
def test_match_expressions_follow_the_scheduler(expression: dict[str, Any], expected: bool) -> None:
    assert matches(ZONE_A, Placement(required_terms=({"matchExpressions": [expression]},))) is expected


def test_terms_are_ored_their_expressions_anded_and_an_empty_term_matches_nothing() -> None:
    z1, z2 = expr("zone", "In", "z1"), expr("zone", "In", "z2")
    big = expr("cores", "Gt", "8")
    assert matches(ZONE_A, Placement(required_terms=({"matchExpressions": [z2]}, {"matchExpressions": [z1]})))
    assert matches(ZONE_A, Placement(required_terms=({"matchExpressions": [z1, big]},)))
    assert not matches(ZONE_A, Placement(required_terms=({"matchExpressions": [z1, z2]},)))
    assert not matches(ZONE_A, Placement(required_terms=({"matchExpressions": [z2, z1]},)))
    assert not matches(ZONE_A, Placement(required_terms=({},)))
    assert not matches(ZONE_A, Placement(required_terms=({"matchExpressions": [], "matchFields": []},)))
    assert not matches(ZONE_A, Placement(required_terms=()))
    assert not matches(ZONE_A, Placement({"zone": "z2"}, ({"matchExpressions": [z1]},)))
    assert not matches(ZONE_A, Placement(required_terms=({"matchExpressions": [z1, "junk"]},)))
    assert not matches(
        ZONE_A,
        Placement(
            required_terms=({"matchExpressions": {"key": "zone"}, "matchFields": [expr("metadata.name", "In", "a")]},)
        ),
    )
    assert not matches(ZONE_A, Placement(required_terms=({"matchExpressions": [z1], "matchFields": {"key": "x"}},)))


def test_match_fields_select_by_node_name_only() -> None:
    by_name = expr("metadata.name", "In", "a")
    assert matches(ZONE_A, Placement(required_terms=({"matchFields": [by_name]},)))
    assert not matches(ZONE_A, Placement(required_terms=({"matchFields": [expr("metadata.name", "In", "b")]},)))
    assert matches(ZONE_A, Placement(required_terms=({"matchFields": [expr("metadata.name", "NotIn", "b")]},)))
    assert not matches(ZONE_A, Placement(required_terms=({"matchFields": [expr("metadata.uid", "In", "a")]},)))
    assert not matches(ZONE_A, Placement(required_terms=({"matchFields": ["junk"]},)))
    both = {"matchExpressions": [expr("zone", "In", "z1")], "matchFields": [by_name]}
    assert matches(ZONE_A, Placement(required_terms=(both,)))
    assert not matches(
        ZONE_A, Placement(required_terms=({**both, "matchFields": [by_name, expr("metadata.name", "In", "b")]},))
    )


# --------------------------------------------------------------------------------------------- taints


T = Taint("gpu", "true", "NoSchedule")


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [
        ({"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}, True),
        ({"key": "gpu", "value": "true"}, True),  # Equal is the default operator, no effect matches every effect
        ({"key": "gpu", "value": "false"}, False),
        ({"key": "gpu"}, False),  # Equal to "" is not "true"
        ({"key": "gpu", "operator": "Exists"}, True),
        ({"key": "gpu", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "other", "operator": "Exists"}, False),
        ({"operator": "Exists"}, True),  # an empty key with Exists tolerates everything
        ({"operator": "Exists", "effect": "NoSchedule"}, True),
        ({"key": "", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "gpu", "operator": "In", "value": "true"}, False),
        ({"value": "true"}, False),
        ({"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoExecute"}, False),
    ],
)
def test_tolerations_follow_the_scheduler(toleration: dict[str, Any], expected: bool) -> None:
    assert tolerated(T, (toleration,)) is expected


def test_any_one_toleration_is_enough() -> None:
    assert tolerated(T, ({"key": "x", "operator": "Exists"}, {"key": "gpu", "operator": "Exists"}))
    assert not tolerated(T, ())
    assert tolerated(Taint("k", "", "NoSchedule"), ({"key": "k", "operator": "Equal"},))
    assert tolerated(Taint("k", "", "NoSchedule"), ({"key": "k", "value": None},))


def test_untolerated_lists_the_hard_taints_only() -> None:
    soft = Taint("soft", "", "PreferNoSchedule")
    hard = Taint("hard", "", "NoExecute")
    nc = NodeClass(MappingProxyType({}), (soft, T, hard), False, MappingProxyType({}), frozenset({"a"}))
    assert untolerated(nc, Placement()) == [T, hard]
    assert untolerated(nc, Placement(tolerations=({"key": "gpu", "operator": "Exists"},))) == [hard]
    assert untolerated(nc, Placement(tolerations=({"operator": "Exists"},))) == []


def test_eligible_needs_schedulable_selected_and_tolerated() -> None:
    tainted = one_class(
        node("t", labels={"zone": "z1"}, taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}])
    )
    cordoned = one_class(node("c", labels={"zone": "z1"}, unschedulable=True))
    tol = ({"key": "gpu", "operator": "Exists"},)
    assert eligible(ZONE_A, Placement({"zone": "z1"}))
    assert not eligible(ZONE_A, Placement({"zone": "z2"}))
    assert not eligible(tainted, Placement({"zone": "z1"}))
    assert eligible(tainted, Placement({"zone": "z1"}, tolerations=tol))
    assert not eligible(tainted, Placement({"zone": "z2"}, tolerations=tol))
    assert not eligible(cordoned, Placement())
    unschedulable_ok = ({"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},)
    assert eligible(cordoned, Placement(tolerations=unschedulable_ok))
    assert not eligible(cordoned, Placement({"zone": "z2"}, tolerations=unschedulable_ok))
    assert eligible(cordoned, Placement(tolerations=({"operator": "Exists"},)))


def test_a_toleration_for_another_effect_does_not_hide_the_next_one() -> None:
    assert tolerated(
        T, ({"key": "gpu", "operator": "Exists", "effect": "NoExecute"}, {"key": "gpu", "operator": "Exists"})
    )


def test_term_parts_of_the_wrong_type_match_nothing() -> None:
    by_name = [expr("metadata.name", "In", "a")]
    for term in (
        {"matchExpressions": 5, "matchFields": by_name},
        {"matchExpressions": [expr("zone", "In", "z1")], "matchFields": 7},
    ):
        assert not matches(ZONE_A, Placement(required_terms=(term,)))


def test_an_expression_without_a_key_selects_no_label() -> None:
    nc = one_class(node("a", labels={"None": "x", "XXXX": "y"}))
    assert not matches(nc, Placement(required_terms=({"matchExpressions": [{"operator": "Exists"}]},)))
