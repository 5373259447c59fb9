"""Dedicated-CPU pods must be Guaranteed (docs/dedicated-cpu.md): the validating webhook's view.

The validator sees a pod after our mutator filled sidecar limits and after the API server's
requests-from-limits defaulting. Causes sit on ``...resources.requests.<cpu|memory>``, except when the
request is set and the limit is missing: then on ``...resources.limits.<cpu|memory>``.
"""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.testkit import objects, paths
from tests.testkit.review import make_review
from webhook import endpoint, engine
from webhook.config import Config, parse_config
from webhook.rules import qos
from webhook.rules.base import Context, Findings

DEFAULT = Config()
EXAMPLES = paths.EXAMPLES / "pods"
K8S_VERSION = "1.34"
INV, REQ = "FieldValueInvalid", "FieldValueRequired"


def res(
    cpu_: str | None = None, mem: str | None = None, *, lcpu: str | None = None, lmem: str | None = None
) -> dict[str, Any]:
    """A resources block; limits default to the requests (Guaranteed) unless given."""
    requests = {k: v for k, v in (("cpu", cpu_), ("memory", mem)) if v is not None}
    limits = {k: v for k, v in (("cpu", lcpu or cpu_), ("memory", lmem or mem)) if v is not None}
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def pod(
    containers: list[dict[str, Any]],
    init: list[dict[str, Any]] | None = None,
    *,
    selector: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    pod_resources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A pod on a CPU-manager node (``selector`` replaces it); containers named c0.., init containers init0.."""
    spec: dict[str, Any] = {"nodeSelector": {"kubevirt.io/cpumanager": "true"} if selector is None else selector}
    if pod_resources is not None:
        spec["resources"] = pod_resources
    return objects.pod(
        [{"name": f"c{i}", "image": "busybox", **c} for i, c in enumerate(containers)],
        init=None if init is None else [{"name": f"init{i}", "image": "busybox", **c} for i, c in enumerate(init)],
        spec=spec,
        annotations=annotations or {},
    )


def run(obj: dict[str, Any], config: Config = DEFAULT, operation: str = "CREATE") -> Findings:
    return qos.validate_pod(obj, Context(config=config, kind="Pod", operation=operation))  # type: ignore[arg-type]


def got(findings: Findings) -> list[tuple[str, str]]:
    assert findings.bad_request is None, findings.bad_request
    return [(c.field, c.type) for c in findings.causes]


COMPUTE = {"resources": res("2", "4Gi")}


def test_guaranteed_dedicated_pod_is_allowed_without_warnings() -> None:
    p = pod([COMPUTE, {"resources": res("200m", "64M")}], [{"resources": res("10m", "40M"), "restartPolicy": "Always"}])
    kubernetes_validate.validate(p, K8S_VERSION, strict=True)
    findings = run(p)
    assert got(findings) == [] and findings.warnings == []


@pytest.mark.parametrize(
    ("containers", "init", "causes"),
    [
        pytest.param(
            [COMPUTE, {"resources": res("100m", "128Mi", lcpu="2", lmem="1Gi")}],
            None,
            [("spec.containers[1].resources.requests.cpu", INV), ("spec.containers[1].resources.requests.memory", INV)],
            id="sidecar request below limit",
        ),
        pytest.param(
            [COMPUTE, {"resources": {"requests": {"cpu": "100m", "memory": "64M"}}}],
            None,
            [("spec.containers[1].resources.limits.cpu", REQ), ("spec.containers[1].resources.limits.memory", REQ)],
            id="request without limit is reported on the missing limit",
        ),
        pytest.param(
            [COMPUTE, {}],
            None,
            [("spec.containers[1].resources.requests.cpu", REQ), ("spec.containers[1].resources.requests.memory", REQ)],
            id="container without resources",
        ),
        pytest.param(
            [COMPUTE],
            [{"resources": res("10m", "40M", lmem="80M")}],
            [("spec.initContainers[0].resources.requests.memory", INV)],
            id="init container memory request below limit",
        ),
        pytest.param(
            [COMPUTE],
            [{"resources": {"limits": {"cpu": "15m", "memory": "60M"}}, "restartPolicy": "Always"}],
            [
                ("spec.initContainers[0].resources.requests.cpu", REQ),
                ("spec.initContainers[0].resources.requests.memory", REQ),
            ],
            id="native sidecar with limits only (no API-server defaulting applied)",
        ),
        pytest.param(
            [{"resources": res("2", "4Gi", lcpu="3")}],
            None,
            [("spec.containers[0].resources.requests.cpu", INV)],
            id="compute cpu request below limit",
        ),
        pytest.param(
            [COMPUTE, {"resources": res("0", "0")}],
            None,
            [("spec.containers[1].resources.requests.cpu", INV), ("spec.containers[1].resources.requests.memory", INV)],
            id="zero request and limit",
        ),
    ],
)
def test_dedicated_pod_that_is_not_guaranteed_is_denied_on_each_value(
    containers: list[dict[str, Any]], init: list[dict[str, Any]] | None, causes: list[tuple[str, str]]
) -> None:
    p = pod(containers, init)
    kubernetes_validate.validate(p, K8S_VERSION, strict=True)
    findings = run(p)
    assert got(findings) == causes
    assert all("Guaranteed" in c.message for c in findings.causes)


def test_cause_message_names_the_container_and_the_values() -> None:
    p = pod([COMPUTE, {"name": "istio-proxy", "resources": res("100m", "64M", lcpu="2")}])
    (cause,) = run(p).causes
    assert "container 'istio-proxy'" in cause.message and "'100m'" in cause.message and "'2'" in cause.message


def test_pod_level_resources_alone_decide() -> None:
    ok = pod([{"resources": {"requests": {"cpu": "3"}}}, {}], pod_resources=res("4", "8Gi"))
    kubernetes_validate.validate(ok, K8S_VERSION, strict=True)
    assert got(run(ok)) == []
    bad = pod([{"resources": res("3", "1Gi")}], pod_resources=res("4", "8Gi", lcpu="6"))
    assert got(run(bad)) == [("spec.resources.requests.cpu", INV)]
    no_memory = pod([COMPUTE], pod_resources={"limits": {"cpu": "4"}, "requests": {"cpu": "4"}})
    assert got(run(no_memory)) == [("spec.resources.requests.memory", REQ)]


def test_warns_when_no_container_has_a_whole_cpu() -> None:
    p = pod([{"resources": res("1500m", "1Gi")}, {"resources": res("200m", "64M")}])
    findings = run(p)
    assert got(findings) == []
    assert len(findings.warnings) == 1 and "whole number of CPUs" in findings.warnings[0]
    assert run(pod([{"resources": res("2000m", "1Gi")}])).warnings == []


@pytest.mark.parametrize(
    ("selector", "annotations", "checked"),
    [
        ({"kubevirt.io/cpumanager": "true"}, {}, True),
        ({"cpumanager": "true"}, {}, True),
        ({}, {"vm-admission.io/guaranteed-qos": "true"}, True),
        ({"kubevirt.io/cpumanager": "true"}, {"vm-admission.io/guaranteed-qos": "false"}, False),
        ({"kubevirt.io/cpumanager": "false"}, {}, False),
        ({}, {}, False),
    ],
)
def test_only_dedicated_cpu_pods_are_checked(
    selector: dict[str, str], annotations: dict[str, str], checked: bool
) -> None:
    p = pod([COMPUTE, {}], selector=selector, annotations=annotations)
    assert bool(run(p).causes) is checked


def test_configured_node_selector_labels_replace_the_defaults() -> None:
    cfg = parse_config({"cpuManager": {"nodeSelectorLabels": {"example.com/pinned": "yes"}}})
    assert run(pod([COMPUTE, {}], selector={"example.com/pinned": "yes"}), cfg).causes
    assert not run(pod([COMPUTE, {}]), cfg).causes


def test_ephemeral_containers_do_not_count() -> None:
    p = pod([COMPUTE])
    p["spec"]["ephemeralContainers"] = [{"name": "debug", "image": "busybox"}]
    assert got(run(p)) == []


def test_cpu_manager_disabled_admits_dedicated_pods_with_a_warning() -> None:
    off = parse_config({"cpuManager": {"enabled": False}})
    findings = run(pod([COMPUTE, {}]), off)
    assert got(findings) == []
    assert len(findings.warnings) == 1
    w = findings.warnings[0]
    assert "cpuManager.enabled" in w and "CPUManager feature gate" in w


def test_unparsable_quantity_is_a_cause_on_its_field() -> None:
    p = pod(
        [
            COMPUTE,
            {"resources": {"requests": {"cpu": "lots", "memory": "64M"}, "limits": {"cpu": "1", "memory": "64M"}}},
        ]
    )
    findings = run(p)
    assert got(findings) == [("spec.containers[1].resources.requests.cpu", INV)]
    assert "'lots' is not a quantity" in findings.causes[0].message


@pytest.mark.parametrize(
    ("spec_patch", "field"),
    [
        ({"containers": "x"}, "spec.containers"),
        ({"containers": [COMPUTE, 7]}, "spec.containers[1]"),
        ({"containers": [{"name": "c", "resources": "x"}]}, "spec.containers[0].resources"),
        (
            {"initContainers": [{"name": "i", "resources": {"limits": ["cpu"]}}]},
            "spec.initContainers[0].resources.limits",
        ),
        ({"resources": 5}, "spec.resources"),
    ],
)
def test_wrong_shapes_are_a_bad_request_naming_the_field(spec_patch: dict[str, Any], field: str) -> None:
    p = pod([COMPUTE])
    p["spec"].update(copy.deepcopy(spec_patch))
    findings = run(p)
    assert findings.bad_request is not None and findings.bad_request.startswith(field + ":")


# --- through the engine, as the API server chains the webhooks -----------------------------------------------


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8"))
    return doc


def test_launcher_pod_with_bare_sidecar_is_admitted_after_mutation() -> None:
    p = pod([{"name": "compute", "resources": res("2", "4Gi")}, {"name": "hook-sidecar-0"}])
    result = engine.chain(p, DEFAULT)
    assert result.allowed, result.validation.message
    assert got(run(result.admitted)) == []


def test_unequal_sidecar_example_is_denied_with_422_and_both_fields() -> None:
    obj = load("virt-launcher-unequal-sidecar")
    result = engine.chain(obj, DEFAULT)
    assert not result.validation.allowed and result.validation.code == 422
    rev = make_review(result.admitted)
    verdict = engine.handle(rev["request"], "validate", DEFAULT)
    out = endpoint.response(rev["apiVersion"], rev["request"]["uid"], verdict, allow_patch=False)
    status = out["response"]["status"]
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert [c["field"] for c in status["details"]["causes"]] == [
        "spec.containers[1].resources.requests.cpu",
        "spec.containers[1].resources.requests.memory",
    ]


def test_warn_enforcement_admits_the_pod_with_would_deny_warnings() -> None:
    rev = make_review(pod([COMPUTE, {"resources": res("100m", "64M", lcpu="1")}]))
    verdict = engine.handle(rev["request"], "validate", parse_config({"enforcement": "warn"}))
    assert verdict.allowed
    assert verdict.warnings == [
        f"would deny: spec.containers[1].resources.requests.cpu: {run(rev['request']['object']).causes[0].message}"
    ]
    assert "spec.containers[1].resources.requests.cpu" in verdict.audit["would-deny"]


def test_pod_update_is_allowed_untouched() -> None:
    bad = pod([COMPUTE, {"resources": res("100m", "64M", lcpu="1")}])
    rev = make_review(bad, operation="UPDATE", old=bad)
    verdict = engine.handle(rev["request"], "validate", DEFAULT)
    assert verdict.allowed and not verdict.warnings


def test_zero_cpu_request_without_a_limit_on_a_dedicated_pod_asks_for_a_positive_amount() -> None:
    obj = pod([COMPUTE, {"resources": {"requests": {"cpu": "0", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}}])
    findings = run(obj)
    assert got(findings) == [("spec.containers[1].resources.requests.cpu", "FieldValueInvalid")]
    assert findings.causes[0].message == (
        "container 'c1' has a cpu request of 0 and no limit: a dedicated-CPU pod must be Guaranteed "
        "(request == limit for cpu and memory everywhere), so give it a positive request and an equal limit"
    )
    assert findings.warnings == []
    assert findings.causes[0].rule == "qos.not-guaranteed"


def test_a_whole_cpu_request_only_in_an_init_container_is_enough_to_pin() -> None:
    obj = pod([{"resources": res("500m", "1Gi")}], init=[{"resources": res("1", "1Gi")}])
    findings = run(obj)
    assert got(findings) == [] and findings.warnings == []
    obj = pod([{"resources": res("500m", "1Gi")}], init=[{"resources": res("500m", "1Gi")}])
    assert run(obj).warnings[0].startswith("no container requests a whole number of CPUs")


NEED = "a dedicated-CPU pod must be Guaranteed (request == limit for cpu and memory everywhere)"
NO_WHOLE_CPU = (
    "no container requests a whole number of CPUs, so the CPU manager pins none: give the main container a whole "
    "CPU request and an equal limit (e.g. 2)"
)


def causes_of(findings: Findings) -> list[tuple[str, str, str, str]]:
    assert findings.bad_request is None, findings.bad_request
    return [(c.field, c.type, c.rule, c.message) for c in findings.causes]


def test_each_kind_of_gap_gets_its_own_message() -> None:
    c0 = "spec.containers[0].resources"
    assert causes_of(run(pod([{"resources": res("2", "1Gi", lcpu="3")}]))) == [
        (f"{c0}.requests.cpu", "FieldValueInvalid", "qos.not-guaranteed",
         f"container 'c0' has a cpu request '2' but a limit '3': {NEED}, so make them equal"),
    ]  # fmt: skip
    findings = run(pod([{"resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}]))
    assert causes_of(findings) == [
        (f"{c0}.limits.cpu", "FieldValueRequired", "qos.not-guaranteed",
         f"container 'c0' has a cpu request '2' but no limit: {NEED}, so set the limit to '2'"),
        (f"{c0}.limits.memory", "FieldValueRequired", "qos.not-guaranteed",
         f"container 'c0' has a memory request '1Gi' but no limit: {NEED}, so set the limit to '1Gi'"),
    ]  # fmt: skip
    assert findings.warnings == []
    findings = run(pod([{"resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}]))
    assert causes_of(findings) == [
        (f"{c0}.requests.cpu", "FieldValueRequired", "qos.not-guaranteed",
         f"container 'c0' has a cpu limit '2' but no request: {NEED}, so set the request to '2'"),
        (f"{c0}.requests.memory", "FieldValueRequired", "qos.not-guaranteed",
         f"container 'c0' has a memory limit '1Gi' but no request: {NEED}, so set the request to '1Gi'"),
    ]  # fmt: skip
    assert findings.warnings == [NO_WHOLE_CPU]
    findings = run(pod([{"resources": {}}]))
    assert causes_of(findings) == [
        (f"{c0}.requests.cpu", "FieldValueRequired", "qos.not-guaranteed",
         f"container 'c0' has no cpu request or limit: {NEED}, so set both to the same value"),
        (f"{c0}.requests.memory", "FieldValueRequired", "qos.not-guaranteed",
         f"container 'c0' has no memory request or limit: {NEED}, so set both to the same value"),
    ]  # fmt: skip
    assert run(pod([{"resources": res("0", "1Gi")}])).warnings == [NO_WHOLE_CPU]  # a zero request pins nothing
    assert causes_of(run(pod([{"resources": res("0", "1Gi")}]))) == [
        (f"{c0}.requests.cpu", "FieldValueInvalid", "qos.not-guaranteed",
         f"container 'c0' has a cpu request and limit of 0: {NEED}, so give it a positive amount"),
    ]  # fmt: skip


def test_gap_messages_name_init_containers_unnamed_containers_and_the_pod() -> None:
    findings = run(pod([{"resources": res("2", "1Gi")}], init=[{"resources": res("1", "1Gi", lcpu="2")}]))
    assert causes_of(findings) == [
        ("spec.initContainers[0].resources.requests.cpu", "FieldValueInvalid", "qos.not-guaranteed",
         f"init container 'init0' has a cpu request '1' but a limit '2': {NEED}, so make them equal"),
    ]  # fmt: skip
    obj = pod([{"resources": res("2", "1Gi")}, {"resources": res("1", "1Gi", lcpu="2")}])
    del obj["spec"]["containers"][1]["name"]
    assert (
        causes_of(run(obj))[0][3] == f"container #1 has a cpu request '1' but a limit '2': {NEED}, so make them equal"
    )
    obj = pod([{"resources": res("2", "1Gi")}], pod_resources={"requests": {"cpu": "2"}})
    assert causes_of(run(obj)) == [
        ("spec.resources.limits.cpu", "FieldValueRequired", "qos.not-guaranteed",
         f"the pod (spec.resources) has a cpu request '2' but no limit: {NEED}, so set the limit to '2'"),
        ("spec.resources.requests.memory", "FieldValueRequired", "qos.not-guaranteed",
         f"the pod (spec.resources) has no memory request or limit: {NEED}, so set both to the same value"),
    ]  # fmt: skip


def test_unparsable_values_are_named_instead_of_the_gap() -> None:
    obj = pod([{"resources": {"requests": {"cpu": "two", "memory": "1Gi"}, "limits": {"cpu": "2x", "memory": "1Gi"}}}])
    assert causes_of(run(obj)) == [
        ("spec.containers[0].resources.requests.cpu", "FieldValueInvalid", "qos.bad-quantity",
         "'two' is not a quantity: use a number with an optional suffix, e.g. 2, 500m, 4Gi"),
        ("spec.containers[0].resources.limits.cpu", "FieldValueInvalid", "qos.bad-quantity",
         "'2x' is not a quantity: use a number with an optional suffix, e.g. 2, 500m, 4Gi"),
    ]  # fmt: skip


def test_every_wrong_shape_is_named_in_one_bad_request() -> None:
    obj = pod([{"resources": res("2", "1Gi")}])
    obj["spec"]["containers"].append("x")
    obj["spec"]["initContainers"] = {"a": 1}
    obj["spec"]["resources"] = [1]
    obj["spec"]["containers"][0]["resources"]["limits"] = 3
    obj["spec"]["containers"][0]["resources"]["requests"] = "x"
    findings = run(obj)
    assert findings.bad_request == (
        "spec.resources: must be an object, got list; spec.initContainers: must be a list, got object; "
        "spec.containers[0].resources.requests: must be an object, got string; "
        "spec.containers[0].resources.limits: must be an object, got number; "
        "spec.containers[1]: must be an object, got string"
    )
    assert findings.causes == [] and findings.warnings == []


def test_cpu_manager_disabled_warning_says_how_to_enable_it() -> None:
    findings = run(
        pod([{"resources": res("2", "1Gi", lcpu="3")}]), config=parse_config({"cpuManager": {"enabled": False}})
    )
    assert findings.causes == [] and findings.bad_request is None
    assert findings.warnings == [
        "cpuManager.enabled is false in the vm-admission config: this dedicated-CPU pod is not checked for "
        "Guaranteed QoS and gets no pinned CPUs (enable the CPUManager feature gate and the kubelet's static "
        "policy, then set it to true)"
    ]


def test_an_opted_in_pod_whose_spec_is_not_a_map_is_a_bad_request() -> None:
    obj = pod([COMPUTE], annotations={"vm-admission.io/guaranteed-qos": "true"})
    obj["spec"] = "x"
    assert run(obj).bad_request == "spec: must be an object"
