"""What ``engine.handle`` and ``engine.chain`` hand a rule: the request's facts in its Context, and which rules run
at all (the Pod fast path). Probe rules are put into the engine's tables for the test; the shipped rules' verdicts
are tested elsewhere (test_handle.py and tests/rules/)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.testkit.cluster import cluster_snapshot, node
from tests.testkit.review import make_review
from webhook import admission, engine
from webhook.config import Config
from webhook.rules.base import Context, Findings

KINDS = ("Pod", "VirtualMachineInstance", "VirtualMachine")


class Probe:
    """A rule that records the Context it is given and warns once, so its running shows in the verdict."""

    def __init__(self) -> None:
        self.seen: list[Context] = []

    def __call__(self, obj: dict[str, Any], ctx: Context) -> Findings:
        self.seen.append(ctx)
        return Findings(warnings=["probe ran"])


def obj_of(kind: str, namespace: str = "ns1") -> dict[str, Any]:
    api = "v1" if kind == "Pod" else "kubevirt.io/v1"
    return {"apiVersion": api, "kind": kind, "metadata": {"name": "x", "namespace": namespace}, "spec": {}}


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Probe:
    """The only rule of every kind, in both tables (a Pod rule outside GATED_POD_RULES: the fast path is off)."""
    p = Probe()
    monkeypatch.setattr(engine, "RULES", {key: (p,) for key in admission.RULES})
    return p


@pytest.mark.parametrize("webhook", ["mutate", "validate"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_rule_is_given_the_requests_namespace_dry_run_and_config(probe: Probe, webhook: str, kind: str) -> None:
    config = Config()
    verdict = engine.handle(make_review(obj_of(kind), dry_run=True)["request"], webhook, config)  # type: ignore[arg-type]
    assert verdict.warnings == ["probe ran"]
    (ctx,) = probe.seen
    assert ctx.namespace == "ns1" and ctx.dry_run is True and ctx.kind == kind and ctx.operation == "CREATE"
    assert ctx.config is config and ctx.old_object is None and ctx.cluster is None
    assert (ctx.patch is not None) is (webhook == "mutate")


def test_a_request_without_namespace_or_dry_run_reads_as_empty_and_false(probe: Probe) -> None:
    request = make_review(obj_of("VirtualMachineInstance"))["request"]
    del request["namespace"], request["dryRun"]
    engine.handle(request, "validate", Config())
    request = {**make_review(obj_of("VirtualMachineInstance"))["request"], "namespace": None, "dryRun": None}
    engine.handle(request, "validate", Config())
    request = {**make_review(obj_of("VirtualMachineInstance"))["request"], "dryRun": False}
    engine.handle(request, "validate", Config())
    assert [(c.namespace, c.dry_run) for c in probe.seen] == [("", False), ("", False), ("ns1", False)]


def test_a_vm_update_rule_sees_the_old_object_and_a_synced_cluster(probe: Probe) -> None:
    old = obj_of("VirtualMachine")
    old["spec"] = {"running": True}
    snap = cluster_snapshot([node("a")])
    request = make_review(obj_of("VirtualMachine"), operation="UPDATE", old=old)["request"]
    engine.handle(request, "validate", Config(), snap)
    (ctx,) = probe.seen
    assert ctx.old_object == old and ctx.operation == "UPDATE" and ctx.cluster is snap
    engine.handle(
        {**request, "oldObject": ["not", "an", "object"]}, "validate", Config(), cluster_snapshot([], synced=False)
    )
    assert probe.seen[1].old_object is None and probe.seen[1].cluster is None


def test_chain_reviews_in_the_namespace_it_is_given(probe: Probe) -> None:
    result = engine.chain(obj_of("VirtualMachineInstance"), Config(), namespace="team-a")
    assert [c.namespace for c in probe.seen] == ["team-a", "team-a"] and result.validation.warnings == ["probe ran"]
    probe.seen.clear()
    engine.chain(obj_of("VirtualMachineInstance"), Config())
    assert [c.namespace for c in probe.seen] == ["", ""]


PLAIN_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "ns"},
    "spec": {"containers": [{"name": "c", "image": "x"}]},
}
DEDICATED_POD = {**PLAIN_POD, "spec": {**PLAIN_POD["spec"], "nodeSelector": {"cpumanager": "true"}}}


@pytest.mark.parametrize("webhook", ["mutate", "validate"])
def test_gated_pod_rules_are_not_run_for_pods_no_rule_concerns(monkeypatch: pytest.MonkeyPatch, webhook: str) -> None:
    probe = Probe()
    monkeypatch.setitem(engine.RULES, ("Pod", webhook, "CREATE"), (probe,))
    monkeypatch.setattr(engine, "GATED_POD_RULES", frozenset({probe}))
    assert engine.handle(make_review(PLAIN_POD)["request"], webhook, Config()) == engine.Verdict()  # type: ignore[arg-type]
    assert probe.seen == []
    assert engine.handle(make_review(DEDICATED_POD)["request"], webhook, Config()).warnings == ["probe ran"]  # type: ignore[arg-type]
    assert len(probe.seen) == 1


@pytest.mark.parametrize("webhook", ["mutate", "validate"])
def test_a_pod_rule_outside_the_gated_set_runs_for_every_pod(monkeypatch: pytest.MonkeyPatch, webhook: str) -> None:
    probe = Probe()
    key = ("Pod", webhook, "CREATE")
    monkeypatch.setitem(engine.RULES, key, (*engine.RULES[key], probe))
    verdict = engine.handle(make_review(PLAIN_POD)["request"], webhook, Config())  # type: ignore[arg-type]
    assert verdict.warnings == ["probe ran"] and len(probe.seen) == 1


@pytest.mark.parametrize("webhook", ["mutate", "validate"])
def test_a_review_no_rule_speaks_to_is_allowed_with_nothing_to_say(webhook: str) -> None:
    """What ``review -o json`` and the audit print for such an object: no message, no warnings, no annotations."""
    request = make_review({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}})["request"]
    verdict = engine.handle(request, webhook, Config())  # type: ignore[arg-type]
    assert (verdict.allowed, verdict.code, verdict.message, verdict.reason) == (True, 200, "", "")
    assert verdict.causes == [] and verdict.warnings == [] and verdict.audit == {} and verdict.patch == []
    assert verdict.would_deny == [] and verdict.advisories == []


@pytest.mark.parametrize("obj", [None, [], "pod", 7])
@pytest.mark.parametrize("kind", KINDS)
def test_a_request_whose_object_is_not_a_map_reaches_no_rule(probe: Probe, obj: Any, kind: str) -> None:
    request = {**make_review(obj_of(kind))["request"], "object": obj}
    for webhook in ("mutate", "validate"):
        assert engine.handle(request, webhook, Config()) == engine.Verdict()  # type: ignore[arg-type]
    assert probe.seen == []


def _with_networks(value: str | None) -> dict[str, Any]:
    pod = obj_of("Pod")
    if value is not None:
        pod["metadata"]["annotations"] = {"k8s.v1.cni.cncf.io/networks": value}
    return pod


@pytest.mark.parametrize(
    ("old", "new", "runs"),
    [
        (None, "a", True),
        ("a", "a,b", True),
        ("a", None, True),
        ("a", "a", False),
        (None, None, False),
    ],
)
def test_a_pod_update_reaches_validation_only_when_its_networks_change(
    probe: Probe, old: str | None, new: str | None, runs: bool
) -> None:
    request = make_review(_with_networks(new), operation="UPDATE", old=_with_networks(old))["request"]
    assert engine.handle(request, "mutate", Config()).warnings == []  # never mutated on update
    assert engine.handle(request, "validate", Config()).warnings == (["probe ran"] if runs else [])
    if runs:
        assert probe.seen[-1].operation == "UPDATE" and probe.seen[-1].old_object == request["oldObject"]


def test_chain_is_offline_in_both_webhooks_and_validates_the_mutated_object(probe: Probe) -> None:
    result = engine.chain(obj_of("VirtualMachineInstance"), Config())
    assert [ctx.offline for ctx in probe.seen] == [True, True]
    assert [ctx.patch is not None for ctx in probe.seen] == [True, False]
    assert result.validation.warnings == ["probe ran"]
    assert engine.handle(make_review(obj_of("Pod"))["request"], "validate", Config()).allowed
    assert probe.seen[-1].offline is False


def test_an_old_object_that_is_not_a_map_reads_as_without_networks(probe: Probe) -> None:
    request = make_review(_with_networks("a"), operation="UPDATE")["request"]
    request["oldObject"] = "x"
    assert engine.handle(request, "validate", Config()).warnings == ["probe ran"]
