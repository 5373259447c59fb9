"""Core semantics: quantities, field paths, the patch builder, QoS, defaulting, config, envelope, engine."""

from __future__ import annotations

import base64
import copy
from decimal import Decimal
from typing import Any

import jsonpatch
import orjson
import pytest

from tests.testkit.review import make_review
from webhook import engine, review
from webhook.config import ConfigError, load_config, parse_config
from webhook.k8s import defaults, paths, qos, quantity
from webhook.k8s.patch import PatchBuilder, PatchError
from webhook.rules.base import Cause, Findings


@pytest.mark.parametrize(
    ("text", "val", "milli", "whole"),
    [
        ("2", 2, 2000, True),
        ("500m", 1, 500, False),
        ("800m", 1, 800, False),
        ("1500m", 2, 1500, False),
        ("0.5", 1, 500, False),
        ("2000m", 2, 2000, True),
        ("2Gi", 2147483648, 2147483648000, True),
        ("1e3", 1000, 1000000, True),
        (3, 3, 3000, True),
        (0.25, 1, 250, False),
    ],
)
def test_quantity_value_rounds_up_like_apimachinery(text: Any, val: int, milli: int, whole: bool) -> None:
    q = quantity.parse(text)
    assert (quantity.value(q), quantity.milli_value(q), quantity.is_whole(q)) == (val, milli, whole)


@pytest.mark.parametrize(
    "bad", ["NaN", "Infinity", " 2 ", "1_000", "1ki", "2^70", "", "1e400", "1K", True, None, [], {}, float("inf")]
)
def test_quantity_rejects_what_the_api_server_rejects(bad: Any) -> None:
    with pytest.raises(quantity.QuantityError):
        quantity.parse(bad)


def test_quantity_negative_values_round_away_from_zero() -> None:
    assert quantity.value(Decimal("-1.5")) == -2
    assert quantity.parse("-0") == 0


def test_field_path_and_pointer_render_kubernetes_and_rfc6901_forms() -> None:
    p = ("spec", "containers", 1, "resources", "limits", "devices.kubevirt.io/10de_1eb8")
    assert paths.field(p) == "spec.containers[1].resources.limits.devices.kubevirt.io/10de_1eb8"
    assert paths.pointer(p) == "/spec/containers/1/resources/limits/devices.kubevirt.io~110de_1eb8"
    assert paths.pointer(("a~b",)) == "/a~0b"
    assert paths.get({"a": [{"b": 1}]}, ("a", 0, "b")) == 1
    assert paths.get({"a": "x"}, ("a", 0), "d") == "d"


def test_patch_builder_creates_parents_with_one_add_and_applies_to_the_raw_object() -> None:
    raw = {"spec": {"containers": [{"name": "c", "resources": None}]}}
    work = copy.deepcopy(raw)
    pb = PatchBuilder(work)
    pb.set(("spec", "containers", 0, "resources", "limits", "cpu"), "200m")
    pb.set(("spec", "containers", 0, "resources", "requests", "cpu"), "200m")
    pb.set(("spec", "containers", 0, "resources", "limits", "x.io/a_b"), "1")
    pb.append(("spec", "domain", "devices", "hostDevices"), {"name": "a"})
    pb.append(("spec", "domain", "devices", "hostDevices"), {"name": "b"})
    assert [op["op"] for op in pb.ops] == ["add"] * 5
    assert pb.ops[0] == {"op": "add", "path": "/spec/containers/0/resources", "value": {"limits": {"cpu": "200m"}}}
    assert pb.ops[2]["path"] == "/spec/containers/0/resources/limits/x.io~1a_b"
    assert pb.ops[4]["path"] == "/spec/domain/devices/hostDevices/-"
    assert jsonpatch.JsonPatch(pb.ops).apply(raw) == work


def test_patch_builder_refuses_shapes_it_cannot_patch() -> None:
    with pytest.raises(PatchError):
        PatchBuilder({"spec": {"containers": {}}}).set(("spec", "containers", 0, "x"), 1)
    with pytest.raises(PatchError):
        PatchBuilder({"spec": "x"}).set(("spec", "a"), 1)


def _pod(*resources: dict[str, Any], init: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {
        "spec": {
            "containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(resources)],
            "initContainers": [{"name": f"i{i}", "resources": r} for i, r in enumerate(init)],
        }
    }


G = {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}


def test_qos_class_follows_kubelet() -> None:
    assert qos.qos_class(_pod(G)) == "Guaranteed"
    assert qos.qos_class(_pod(G, {})) == "Burstable"
    assert qos.qos_class(_pod({}, {})) == "BestEffort"
    assert qos.qos_class(_pod(G, init=({"limits": {"cpu": "1"}, "requests": {"cpu": "1"}},))) == "Burstable"
    assert qos.qos_class(
        _pod({"limits": {"cpu": "1", "memory": "1"}, "requests": {"cpu": "1000m", "memory": "1"}})
    ) == ("Guaranteed")
    only_ext = {"limits": {"devices.kubevirt.io/kvm": "1"}, "requests": {"devices.kubevirt.io/kvm": "1"}}
    assert qos.qos_class(_pod(only_ext)) == "BestEffort"


def test_pod_level_resources_alone_decide_qos() -> None:
    pod = _pod({})
    pod["spec"]["resources"] = G
    assert qos.qos_class(pod) == "Guaranteed"
    assert qos.gaps(pod) == []


def test_gaps_name_every_resource_that_keeps_a_pod_from_guaranteed() -> None:
    gaps = qos.gaps(_pod(G, {"requests": {"cpu": "100m"}}))
    assert [(paths.field(g.path), g.resource) for g in gaps] == [
        ("spec.containers[1].resources", "cpu"),
        ("spec.containers[1].resources", "memory"),
    ]


def test_requests_default_from_limits_like_set_defaults_pod() -> None:
    pod = _pod({"limits": {"cpu": "200m", "memory": "64M"}}, init=({"limits": {"cpu": "1"}, "requests": {"cpu": "1"}},))
    defaults.default_pod_requests(pod)
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "200m", "memory": "64M"}
    assert qos.qos_class(pod) == "Burstable"  # the init container has no memory


def test_config_defaults_and_errors_name_the_key(tmp_path: Any) -> None:
    cfg = load_config(None)
    assert (cfg.sidecars.cpu, cfg.sidecars.memory, cfg.passthrough.maxCount) == ("200m", "64M", 8)
    assert cfg.cpuManager.labels == {"kubevirt.io/cpumanager": "true", "cpumanager": "true"}
    bad = tmp_path / "c.yaml"
    bad.write_text("cpuManager:\n  enable: true\nsidecars:\n  cpu: lots\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert "cpuManager.enable: unknown key" in str(err.value)
    assert "sidecars.cpu" in str(err.value)
    with pytest.raises(ConfigError, match="not valid YAML"):
        bad.write_text("a: [")
        load_config(bad)
    assert parse_config({"cpuManager": {"nodeSelectorLabels": {"x": "y"}}}).cpuManager.labels == {"x": "y"}


def test_envelope_errors_name_what_is_wrong() -> None:
    for body, msg in [
        (b"{", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"kind": "Pod"}', "kind must be AdmissionReview"),
        (b'{"kind": "AdmissionReview", "apiVersion": "v1"}', "apiVersion"),
        (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}', "request"),
        (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {}}', "uid"),
    ]:
        with pytest.raises(review.EnvelopeError, match=msg):
            review.parse_review(body)


def test_denial_lists_ten_causes_then_counts_the_rest() -> None:
    causes = [Cause(f"spec.f{i}", f"problem {i}") for i in range(12)]
    verdict = engine.to_verdict(Findings(causes=causes), load_config(None))
    resp = review.response("admission.k8s.io/v1beta1", "u1", verdict, allow_patch=True)
    assert resp["apiVersion"] == "admission.k8s.io/v1beta1"
    r = resp["response"]
    assert r["uid"] == "u1" and r["allowed"] is False and "patch" not in r
    assert r["status"]["code"] == 422 and r["status"]["reason"] == "Invalid"
    assert len(r["status"]["details"]["causes"]) == 10
    assert r["status"]["message"].endswith(", and 2 more")
    assert r["status"]["details"]["causes"][0] == {
        "reason": "FieldValueInvalid",  # metav1.StatusCause's JSON name for its type (what the API server keeps)
        "type": "FieldValueInvalid",
        "field": "spec.f0",
        "message": "problem 0",
    }


def test_warn_enforcement_turns_denials_into_warnings_naming_fields() -> None:
    cfg = parse_config({"enforcement": "warn"})
    verdict = engine.to_verdict(Findings(causes=[Cause("spec.a", "bad")]), cfg)
    assert verdict.allowed and verdict.warnings == ["would deny: spec.a: bad"]
    assert verdict.audit["would-deny"] == "spec.a: bad"


def test_patched_response_carries_patch_and_patch_type_together() -> None:
    verdict = engine.Verdict(patch=[{"op": "add", "path": "/a", "value": 1}])
    r = review.response("admission.k8s.io/v1", "u", verdict, allow_patch=True)["response"]
    assert r["patchType"] == "JSONPatch"
    assert orjson.loads(base64.b64decode(r["patch"])) == verdict.patch
    assert "patch" not in review.response("admission.k8s.io/v1", "u", verdict, allow_patch=False)["response"]


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


def test_quantity_ei_suffix_is_two_to_the_sixtieth() -> None:
    assert quantity.value(quantity.parse("1Ei")) == 2**60
    assert quantity.value(quantity.parse("2Pi")) == 2**51


def test_quantity_length_cap_is_64_characters() -> None:
    at_cap = "0" * 63 + "1"
    assert quantity.parse(at_cap) == 1
    over = "0" * 64 + "1"
    with pytest.raises(quantity.QuantityError) as err:
        quantity.parse(over)
    assert str(err.value).startswith(repr("0" * 64) + " is not a quantity")


@pytest.mark.parametrize(
    ("text", "ok"), [("1e21", True), ("9e21", True), ("1e22", False), ("1e-18", True), ("1e-19", False)]
)
def test_quantity_exponent_range_edges(text: str, ok: bool) -> None:
    if ok:
        assert quantity.parse(text) == Decimal(text)
    else:
        with pytest.raises(quantity.QuantityError, match="out of range: quantities must lie between 1e-18 and 1e21"):
            quantity.parse(text)


def test_quantity_zero_with_a_tiny_exponent_is_zero() -> None:
    assert quantity.parse("0e-30") == 0
    assert quantity.value(quantity.parse("0e-30")) == 0


def test_quantity_negative_fractions_round_away_from_zero() -> None:
    q = quantity.parse("-1.2")
    assert (quantity.value(q), quantity.milli_value(q), quantity.is_whole(q)) == (-2, -1200, False)
    assert quantity.value(quantity.parse("-2")) == -2


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (True, "bool value is not a quantity: use a string such as '2' or '500m'"),
        (None, "NoneType value is not a quantity: use a string such as '2' or '500m'"),
        ([], "list value is not a quantity: use a string such as '2' or '500m'"),
        ({}, "dict value is not a quantity: use a string such as '2' or '500m'"),
        (float("nan"), "nan is not a finite quantity"),
        (float("-inf"), "-inf is not a finite quantity"),
        ("1K", "'1K' is not a quantity: use a number with an optional suffix, e.g. 2, 500m, 4Gi"),
    ],
)
def test_quantity_errors_name_the_json_type(raw: Any, message: str) -> None:
    with pytest.raises(quantity.QuantityError) as err:
        quantity.parse(raw)
    assert str(err.value) == message


def test_quantity_json_numbers_parse_as_their_text() -> None:
    assert quantity.parse(2) == 2
    assert quantity.parse(1.5) == Decimal("1.5")
    assert quantity.parse(-0.001) == Decimal("-0.001")
    assert quantity.try_parse(None) is None
    assert quantity.try_parse("x") is None
    assert quantity.try_parse("0") == 0


def test_qos_block_with_only_requests_or_only_limits_is_burstable() -> None:
    assert qos.qos_class(_pod({"requests": {"cpu": "1", "memory": "1Gi"}})) == "Burstable"
    assert qos.qos_class(_pod({"limits": {"cpu": "1", "memory": "1Gi"}})) == "Burstable"
    assert qos.qos_class(_pod({"requests": {"cpu": "1"}, "limits": {}})) == "Burstable"
    assert qos.qos_class(_pod({"requests": {}, "limits": {"memory": "1Gi"}})) == "Burstable"


_PATCHABLE_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "annotations": {"vm-admission.io/guaranteed-qos": "true"}},
    "spec": {"containers": [{"name": "a", "image": "x", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]},
}
_BAD_PASSTHROUGH = "10de:1eb"  # a device id of three digits: denied by the passthrough rule


def _vmi(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"name": "v", "annotations": annotations},
        "spec": {"domain": {"resources": {"requests": {"memory": "1Gi"}}, "devices": {}}},
    }


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


@pytest.mark.parametrize(
    ("root", "path", "message"),
    [
        ({"spec": {"a": "x"}}, ("spec", "a", "b", "c"), "/spec/a/b/c: 'b' is not under a map"),
        ({"spec": {"a": "x"}}, ("spec", "a", "b"), "/spec/a is not a map"),
        ({"spec": {"a": [1]}}, ("spec", "a", 3, "b"), "/spec/a/3/b: index 3 does not exist"),
        ({"spec": {"a": [1]}}, ("spec", "a", 1, "b"), "/spec/a/1/b: index 1 does not exist"),
        ({"spec": {"a": [1]}}, ("spec", "a", -1, "b"), "/spec/a/-1/b: index -1 does not exist"),
        ({"spec": {}}, ("spec", "a", 0, "b"), "cannot create a list element by index"),
        ({"spec": {}}, ("spec", "a", 0), "set() needs a path that ends in a map key"),
        ({"spec": {}}, (), "set() needs a path that ends in a map key"),
    ],
)
def test_patch_builder_names_a_non_map_in_mid_path(root: dict[str, Any], path: Any, message: str) -> None:
    before = copy.deepcopy(root)
    pb = PatchBuilder(root)
    with pytest.raises(PatchError) as err:
        pb.set(path, 1)
    assert str(err.value) == message
    assert pb.ops == [] and root == before


def test_patch_builder_appends_only_to_lists_and_copies_values() -> None:
    with pytest.raises(PatchError, match=r"^/spec/a is not a list$"):
        PatchBuilder({"spec": {"a": {}}}).append(("spec", "a"), 1)
    with pytest.raises(PatchError, match=r"^/spec/a/b: 'b' is not under a map$"):
        PatchBuilder({"spec": {"a": 1}}).append(("spec", "a", "b"), 1)
    value = {"m": {"n": [1, {"o": "p"}]}, "s": "t", "z": None}
    pb = PatchBuilder({"spec": {"a": [], "b": None}})
    pb.append(("spec", "a"), value)
    pb.append(("spec", "b"), "x")
    pb.set(("spec", "c"), [value, 2.5, True])
    assert pb.ops == [
        {"op": "add", "path": "/spec/a/-", "value": value},
        {"op": "add", "path": "/spec/b", "value": ["x"]},
        {"op": "add", "path": "/spec/c", "value": [value, 2.5, True]},
    ]
    value["m"]["n"][1]["o"] = "changed"  # the recorded ops are copies: later edits of the object do not leak in
    assert pb.ops[0]["value"]["m"]["n"][1] == {"o": "p"}
    assert pb.ops[2]["value"][0]["m"]["n"][1] == {"o": "p"}
    assert pb.root == {"spec": {"a": [value], "b": ["x"], "c": [value, 2.5, True]}}


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

    monkeypatch.setitem(engine.MUTATORS, "Pod", (rule,))  # type: ignore[index]
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


def test_patch_values_of_other_types_are_deep_copies() -> None:
    inner = [1]
    pb = PatchBuilder({})
    pb.set(("a",), (inner,))
    inner.append(2)
    assert pb.ops == [{"op": "add", "path": "/a", "value": ([1],)}]


def test_review_validates_the_patched_object_against_the_cluster_view() -> None:
    from webhook.k8s.snapshot import ClusterSnapshot, KubeVirtView

    obj = _vmi({"vm-admission.io/passthrough": "10de:1eb8"})
    cluster = ClusterSnapshot(synced=True, kubevirt=KubeVirtView("kubevirt", "kubevirt"))  # no HostDevices gate
    result = engine.chain(obj, load_config(None), cluster=cluster)
    assert result.mutation.allowed and not result.validation.allowed
    assert [(c.field, c.rule) for c in result.validation.causes] == [
        ("spec.domain.devices.hostDevices", "preflight.K6")
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
