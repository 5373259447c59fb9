"""What ``engine.handle`` and ``engine.chain`` answer: kinds and operations no rule concerns, the chain of the two
webhooks over a copy of the object, enforcement, and the denial message."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.testkit import objects
from tests.testkit.review import make_review
from webhook import engine
from webhook.config import load_config, parse_config
from webhook.rules.base import Cause, Findings


def test_warn_enforcement_turns_denials_into_warnings_naming_fields() -> None:
    cfg = parse_config({"enforcement": "warn"})
    verdict = engine.to_verdict(Findings(causes=[Cause("spec.a", "bad")]), cfg)
    assert verdict.allowed and verdict.warnings == ["would deny: spec.a: bad"]
    assert verdict.audit["would-deny"] == "spec.a: bad"


@pytest.mark.parametrize(
    "request_",
    [
        make_review({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})["request"],
        make_review(None, operation="DELETE", old={"apiVersion": "v1", "kind": "Pod", "metadata": {}})["request"],
        make_review({"kind": "Pod", "metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}}})["request"],
        make_review({"kind": "Pod", "spec": {}}, operation="UPDATE", old={"kind": "Pod"})["request"],
    ],
)
def test_requests_no_rule_concerns_are_allowed_untouched(request_: dict[str, Any]) -> None:
    for webhook in ("mutate", "validate"):
        verdict = engine.handle(request_, webhook, load_config(None))  # type: ignore[arg-type]
        assert verdict.allowed and not verdict.patch and not verdict.warnings


_PATCHABLE_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "annotations": {"vm-admission.io/guaranteed-qos": "true"}},
    "spec": {"containers": [{"name": "a", "image": "x", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]},
}


_BAD_PASSTHROUGH = "10de:1eb"  # a device id of three digits: denied by the passthrough rule


def _vmi(annotations: dict[str, str]) -> dict[str, Any]:
    return objects.vmi(namespace=None, annotations=annotations)


def test_request_kind_without_group_is_the_core_group() -> None:
    request = make_review(_PATCHABLE_POD)["request"]
    request["kind"] = {"version": "v1", "kind": "Pod"}
    verdict = engine.handle(request, "mutate", load_config(None))
    assert verdict.allowed
    assert [op["path"] for op in verdict.patch] == ["/spec/containers/0/resources/limits"]


@pytest.mark.parametrize(
    "kind",
    [
        {"group": "example.com", "version": "v1", "kind": "Pod"},
        {"group": "", "version": "v1", "kind": "VirtualMachineInstance"},
        {"group": "example.com", "version": "v1", "kind": "VirtualMachine"},
        "Pod",
    ],
)
def test_same_named_kind_from_another_api_group_is_ignored(kind: Any) -> None:
    obj = _vmi({"vm-admission.io/passthrough": _BAD_PASSTHROUGH}) if "Pod" not in str(kind) else _PATCHABLE_POD
    request = make_review(obj)["request"]
    request["kind"] = kind
    for webhook in ("mutate", "validate"):
        verdict = engine.handle(request, webhook, load_config(None))  # type: ignore[arg-type]
        assert verdict == engine.Verdict()


def test_vmi_update_is_untouched_with_no_patch() -> None:
    obj = _vmi({"vm-admission.io/passthrough": "10de:1eb8"})
    create = engine.handle(make_review(obj)["request"], "mutate", load_config(None))
    assert create.patch  # on CREATE the declaration becomes a hostDevices entry
    request = make_review(obj, operation="UPDATE", old=obj)["request"]
    assert engine.handle(request, "mutate", load_config(None)) == engine.Verdict()
    bad = _vmi({"vm-admission.io/passthrough": _BAD_PASSTHROUGH})
    request = make_review(bad, operation="UPDATE", old=bad)["request"]
    assert engine.handle(request, "validate", load_config(None)) == engine.Verdict()


def test_mirror_pod_exemption_is_only_for_pods() -> None:
    obj = _vmi({"kubernetes.io/config.mirror": "x", "vm-admission.io/passthrough": _BAD_PASSTHROUGH})
    verdict = engine.handle(make_review(obj)["request"], "validate", load_config(None))
    assert not verdict.allowed and verdict.code == 422
    assert [c.field for c in verdict.causes] == ["metadata.annotations.vm-admission.io/passthrough"]
    vm = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": "vm", "annotations": {"kubernetes.io/config.mirror": "x"}},
        "spec": {"template": {"metadata": {"annotations": {"vm-admission.io/passthrough": _BAD_PASSTHROUGH}}}},
    }
    verdict = engine.handle(make_review(vm)["request"], "validate", load_config(None))
    assert not verdict.allowed
    assert [c.field for c in verdict.causes] == ["spec.template.metadata.annotations.vm-admission.io/passthrough"]


def test_review_of_a_mutation_denied_object_shows_no_patch_and_skips_validation() -> None:
    obj = _vmi({"vm-admission.io/passthrough": "10de:1eb8"})
    obj["spec"]["domain"]["devices"] = {"hostDevices": {"name": "x"}}
    result = engine.chain(obj, load_config(None))
    assert not result.allowed
    assert (result.mutation.allowed, result.mutation.code, result.mutation.reason) == (False, 400, "BadRequest")
    assert result.mutation.message.startswith("spec.domain.devices.hostDevices: must be")
    assert result.mutation.patch == []
    assert result.validation == engine.Verdict()
    assert result.admitted == obj


def test_exactly_ten_causes_are_all_listed_without_a_count() -> None:
    causes = [Cause(f"spec.f{i}", f"problem {i}") for i in range(10)]
    verdict = engine.to_verdict(Findings(causes=causes), load_config(None))
    assert verdict.message == ", ".join(f"spec.f{i}: problem {i}" for i in range(10))
    assert engine.deny_message([*causes, Cause("", "bare")]) == verdict.message + ", and 1 more"
    assert engine.deny_message([Cause("", "bare")]) == "bare"


def test_review_works_on_a_copy_and_leaves_the_callers_object_alone() -> None:
    obj = _vmi({"vm-admission.io/passthrough": "10de:1eb8"})
    before = copy.deepcopy(obj)
    result = engine.chain(obj, load_config(None))
    assert result.allowed and result.mutation.patch
    assert obj == before
    assert result.admitted["spec"]["domain"]["devices"]["hostDevices"] == [
        {"name": "pt-10de-1eb8-0", "deviceName": "devices.kubevirt.io/10de_1eb8"}
    ]


def test_review_gives_the_cluster_view_to_the_mutation_too() -> None:
    from webhook.k8s.snapshot import ClusterSnapshot, KubeVirtView

    obj = _vmi({"vm-admission.io/passthrough": "10de:1eb8"})
    assert any("HostDevices feature gate" in w for w in engine.chain(obj, load_config(None)).mutation.warnings)
    cluster = ClusterSnapshot(synced=True, kubevirt=KubeVirtView("kubevirt", "kubevirt"))
    result = engine.chain(obj, load_config(None), cluster=cluster)
    assert result.mutation.patch and result.mutation.warnings == []
    unsynced = ClusterSnapshot(synced=False, kubevirt=KubeVirtView("kubevirt", "kubevirt"))
    assert engine.chain(obj, load_config(None), cluster=unsynced).mutation.warnings != []


def test_review_applies_kubernetes_defaulting_to_pods() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]},
    }
    result = engine.chain(pod, load_config(None))
    assert result.allowed and result.mutation.patch == []
    assert result.admitted["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert "requests" not in pod["spec"]["containers"][0]["resources"]


def test_pod_update_is_untouched_with_no_patch() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": {"vm-admission.io/passthrough": "10de:1eb8"}},
        "spec": {"containers": [{"name": "compute", "image": "x"}]},
    }
    assert engine.handle(make_review(pod)["request"], "mutate", load_config(None)).patch  # CREATE: translated
    request = make_review(pod, operation="UPDATE", old=pod)["request"]
    assert engine.handle(request, "mutate", load_config(None)) == engine.Verdict()
    pod["metadata"]["annotations"]["vm-admission.io/passthrough"] = _BAD_PASSTHROUGH
    request = make_review(pod, operation="UPDATE", old=pod)["request"]
    assert engine.handle(request, "validate", load_config(None)) == engine.Verdict()


def test_a_rule_that_cannot_patch_the_object_is_a_400_and_no_patch(monkeypatch: pytest.MonkeyPatch) -> None:
    def rule(obj: dict[str, Any], ctx: Any) -> Findings:
        ctx.patch.set(("metadata", "labels", "a"), "1")
        ctx.patch.set(("spec", "x", "y"), "1")  # spec is a string: PatchError
        return Findings(warnings=["seen"])

    monkeypatch.setitem(engine.RULES, ("Pod", "mutate", "CREATE"), (rule,))
    request = make_review({"kind": "Pod", "metadata": {}, "spec": "x"})["request"]
    verdict = engine.handle(request, "mutate", load_config(None))
    assert (verdict.allowed, verdict.code, verdict.reason) == (False, 400, "BadRequest")
    assert verdict.message == "cannot patch the object: /spec/x/y: 'x' is not under a map"
    assert verdict.patch == []


def test_warn_enforcement_of_a_cause_without_a_field() -> None:
    cfg = parse_config({"enforcement": "warn"})
    verdict = engine.to_verdict(Findings(causes=[Cause("", "bare"), Cause("spec.a", "bad")]), cfg)
    assert verdict.allowed and verdict.warnings == ["would deny: bare", "would deny: spec.a: bad"]
    assert verdict.audit == {"would-deny": "bare, spec.a: bad"}
    assert verdict.causes == [] and [c.message for c in verdict.would_deny] == ["bare", "bad"]


def test_review_validates_the_patched_object_against_the_cluster_view() -> None:
    from webhook.k8s.snapshot import ClusterSnapshot, KubeVirtView

    obj = _vmi({"vm-admission.io/passthrough": "10de:1eb8"})
    cluster = ClusterSnapshot(synced=True, kubevirt=KubeVirtView("kubevirt", "kubevirt"))  # no HostDevices gate
    result = engine.chain(obj, load_config(None), cluster=cluster)
    assert result.mutation.allowed and not result.validation.allowed
    assert [(c.field, c.rule) for c in result.validation.causes] == [
        ("spec.domain.devices.hostDevices", "preflight.host-devices-gate-off")
    ]
    assert engine.chain(obj, load_config(None)).allowed


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_operations_other_than_create_and_update_are_untouched_even_with_an_object(operation: str) -> None:
    obj = _vmi({"vm-admission.io/passthrough": _BAD_PASSTHROUGH})
    request = make_review(obj, operation=operation, old=obj)["request"]
    for webhook in ("mutate", "validate"):
        assert engine.handle(request, webhook, load_config(None)) == engine.Verdict()  # type: ignore[arg-type]


def test_an_old_object_that_is_not_a_map_is_read_as_none() -> None:
    vm = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": "vm"},
        "spec": {"runStrategy": "Always", "template": {"spec": {"domain": {"devices": {}}}}},
    }
    request = make_review(vm, operation="UPDATE")["request"]
    request["oldObject"] = "not a map"
    verdict = engine.handle(request, "validate", load_config(None))
    assert verdict.allowed and verdict.warnings == []
