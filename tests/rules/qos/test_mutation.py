"""Guaranteed QoS for dedicated-CPU pods (docs/guaranteed-qos.md): the mutating webhook over realistic launcher pods.

Every admitted pod is checked the way the API server would produce it: the returned JSON Patch applied with
``jsonpatch`` to the request object, Kubernetes' requests-from-limits defaulting, then kubelet's QoS class
and the Kubernetes schema (``kubernetes-validate``, strict).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import kubernetes_validate
import pytest
import yaml

from tests.testkit import paths
from tests.testkit.review import apply_response, make_review, patch_ops
from webhook import admission, engine
from webhook.config import Config, parse_config
from webhook.endpoint import response
from webhook.k8s import qos
from webhook.k8s.defaults import default_pod_requests
from webhook.k8s.patch import PatchBuilder
from webhook.rules import qos as qos_rule
from webhook.rules.base import Context

if TYPE_CHECKING:
    from tests.testkit.server import ServerProcess

EXAMPLES = paths.EXAMPLES / "pods"
# Pod-level spec.resources exists in the schema from 1.32 (PodLevelResources, beta in 1.34).
K8S_VERSION = "1.34"
DEDICATED_EXAMPLES = ("virt-launcher-istio", "virt-launcher-linkerd", "pinned-pod-vault-agent")


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8"))
    return doc


def mutate(pod: dict[str, Any], config: Config | None = None, **review: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send ``pod`` to the mutating webhook; return the AdmissionReview response and the admitted pod."""
    request = make_review(pod, **review)
    verdict = engine.handle(request["request"], "mutate", config or Config())
    resp = response(request["apiVersion"], request["request"]["uid"], verdict, allow_patch=True)
    admitted = apply_response(pod, resp)
    default_pod_requests(admitted)
    return resp, admitted


def resource_values(pod: dict[str, Any]) -> dict[tuple[str, int, str, str], Any]:
    """Every (list, index, section, resource) -> value written in containers' and init containers' resources."""
    out: dict[tuple[str, int, str, str], Any] = {}
    for key in ("initContainers", "containers"):
        for i, c in enumerate(pod["spec"].get(key, [])):
            for section in ("requests", "limits"):
                for name, value in (c.get("resources") or {}).get(section, {}).items():
                    out[key, i, section, name] = value
    return out


def warnings(resp: dict[str, Any]) -> list[str]:
    return list(resp["response"].get("warnings", []))


@pytest.mark.parametrize("name", DEDICATED_EXAMPLES)
def test_dedicated_example_becomes_guaranteed_and_schema_valid(name: str) -> None:
    pod = load(name)
    assert qos.qos_class(pod) != "Guaranteed"  # the example really needs the webhook

    resp, admitted = mutate(pod)

    assert resp["response"]["allowed"] is True
    assert qos.qos_class(admitted) == "Guaranteed"
    assert qos.gaps(admitted) == []
    kubernetes_validate.validate(admitted, K8S_VERSION, strict=True)


@pytest.mark.parametrize("name", DEDICATED_EXAMPLES)
def test_values_written_before_mutation_are_kept(name: str) -> None:
    pod = load(name)
    before = resource_values(pod)

    _, admitted = mutate(pod)

    after = resource_values(admitted)
    assert {k: after[k] for k in before} == before
    # Only cpu and memory are ever added.
    assert {k[3] for k in set(after) - set(before)} <= {"cpu", "memory"}


@pytest.mark.parametrize("name", DEDICATED_EXAMPLES)
def test_second_pass_returns_no_patch(name: str) -> None:
    _, admitted = mutate(load(name))

    resp, again = mutate(admitted)

    assert patch_ops(resp) == []
    assert "warnings" not in resp["response"]
    assert again == admitted


@pytest.mark.parametrize("name", DEDICATED_EXAMPLES)
def test_mutated_pod_passes_validation(name: str) -> None:
    result = engine.chain(load(name), Config())

    assert result.mutation.allowed
    assert result.validation.allowed, result.validation.message
    assert qos.qos_class(result.admitted) == "Guaranteed"


def test_istio_launcher_gets_limits_mirrored_from_requests_and_requests_from_limits() -> None:
    resp, admitted = mutate(load("virt-launcher-istio"))

    assert patch_ops(resp) == [
        {"op": "add", "path": "/spec/initContainers/1/resources/limits", "value": {"cpu": "5m", "memory": "35M"}},
        {"op": "add", "path": "/spec/initContainers/2/resources/limits", "value": {"cpu": "100m", "memory": "128Mi"}},
        {"op": "add", "path": "/spec/containers/1/resources/requests", "value": {"cpu": "200m", "memory": "64M"}},
        {"op": "add", "path": "/spec/containers/2/resources/limits", "value": {"cpu": "100m", "memory": "128Mi"}},
    ]
    # Complete containers (compute, container-disk-binary) are not touched: their extended resources stay.
    assert (
        admitted["spec"]["containers"][0]["resources"]
        == load("virt-launcher-istio")["spec"]["containers"][0]["resources"]
    )


def test_istio_launcher_warns_once_per_changed_container_and_audits_the_change() -> None:
    resp, _ = mutate(load("virt-launcher-istio"))

    found = warnings(resp)
    changed = ("guest-console-log", "istio-validation", "hook-sidecar-0", "istio-proxy")
    assert len(found) == len(changed)
    for container, warning in zip(changed, found, strict=True):
        assert f'"{container}"' in warning
    assert "limits.cpu=5m (from its request)" in found[0]
    assert "requests.memory=64M (from its limit)" in found[2]
    assert not any('"compute"' in w or "container-disk-binary" in w for w in found)
    audit = resp["response"]["auditAnnotations"]["sidecar-resources"]
    assert all(name in audit for name in changed)


def test_sidecars_without_any_resources_get_the_sidecar_defaults_as_request_and_limit() -> None:
    resp, admitted = mutate(load("virt-launcher-linkerd"))

    both = {"limits": {"cpu": "200m", "memory": "64M"}, "requests": {"cpu": "200m", "memory": "64M"}}
    assert patch_ops(resp) == [
        {"op": "add", "path": "/spec/initContainers/1/resources", "value": both},
        {"op": "add", "path": "/spec/containers/1/resources", "value": both},
    ]
    # linkerd-proxy is a native sidecar (restartPolicy: Always) and counts for QoS like any init container.
    assert admitted["spec"]["initContainers"][1]["restartPolicy"] == "Always"
    assert [w.split(" (")[0] for w in warnings(resp)] == [
        'init container "linkerd-proxy"',
        'container "hook-sidecar-0"',
    ]
    assert "requests+limits.cpu=200m (sidecar default)" in warnings(resp)[0]


def test_configured_sidecar_defaults_are_used() -> None:
    config = parse_config({"sidecars": {"cpu": "250m", "memory": "96Mi"}})

    _, admitted = mutate(load("virt-launcher-linkerd"), config)

    proxy = admitted["spec"]["initContainers"][1]["resources"]
    assert proxy == {"limits": {"cpu": "250m", "memory": "96Mi"}, "requests": {"cpu": "250m", "memory": "96Mi"}}


def test_request_only_cpu_gets_an_equal_limit_and_missing_memory_gets_the_default() -> None:
    resp, admitted = mutate(load("pinned-pod-vault-agent"))

    engine_ = admitted["spec"]["containers"][0]["resources"]
    assert engine_["limits"] == {"cpu": "2", "memory": "4Gi"}
    agent = admitted["spec"]["containers"][1]["resources"]
    assert agent == {"requests": {"cpu": "250m", "memory": "64M"}, "limits": {"cpu": "250m", "memory": "64M"}}
    assert len(warnings(resp)) == 3


def test_a_limit_below_the_default_becomes_the_request_not_the_default() -> None:
    pod = load("virt-launcher-linkerd")
    pod["spec"]["containers"][1]["resources"] = {"limits": {"cpu": "50m", "memory": "16Mi"}}

    _, admitted = mutate(pod)

    assert admitted["spec"]["containers"][1]["resources"]["requests"] == {"cpu": "50m", "memory": "16Mi"}


@pytest.mark.parametrize("name", ["virt-launcher-not-dedicated", "virt-launcher-opted-out"])
def test_pods_that_are_not_dedicated_cpu_pods_get_no_patch(name: str) -> None:
    pod = load(name)

    resp, admitted = mutate(pod)

    assert resp["response"]["allowed"] is True
    assert patch_ops(resp) == []
    assert "warnings" not in resp["response"]
    assert "auditAnnotations" not in resp["response"]
    assert qos.qos_class(admitted) == "Burstable"


def test_pod_level_resources_are_completed_and_containers_left_alone() -> None:
    pod = load("pinned-pod-level-resources")

    resp, admitted = mutate(pod)

    assert patch_ops(resp) == [
        {"op": "add", "path": "/spec/resources/requests", "value": {"cpu": "4", "memory": "8Gi"}}
    ]
    assert admitted["spec"]["containers"] == pod["spec"]["containers"]
    assert qos.qos_class(admitted) == "Guaranteed"
    kubernetes_validate.validate(admitted, K8S_VERSION, strict=True)
    assert len(warnings(resp)) == 1 and "spec.resources" in warnings(resp)[0]


def test_pod_level_resources_get_no_sidecar_defaults() -> None:
    pod = load("pinned-pod-level-resources")
    pod["spec"]["resources"] = {"limits": {"cpu": "4"}}

    resp, admitted = mutate(pod)

    assert patch_ops(resp) == [{"op": "add", "path": "/spec/resources/requests", "value": {"cpu": "4"}}]
    assert qos.qos_class(admitted) == "Burstable"  # no memory at pod level: left for the validator to deny


def test_an_unequal_pair_is_never_changed() -> None:
    pod = load("virt-launcher-unequal-sidecar")

    resp, admitted = mutate(pod)

    assert not any(op["path"].startswith("/spec/containers/1") for op in patch_ops(resp))
    assert admitted["spec"]["containers"][1] == pod["spec"]["containers"][1]
    # The console logger without resources is still completed.
    assert [op["path"] for op in patch_ops(resp)] == ["/spec/initContainers/0/resources"]
    assert [(g.path, g.resource) for g in qos.gaps(admitted)] == [
        (("spec", "containers", 1, "resources"), "cpu"),
        (("spec", "containers", 1, "resources"), "memory"),
    ]


def test_ephemeral_containers_are_ignored() -> None:
    pod = load("virt-launcher-istio")
    pod["spec"]["ephemeralContainers"] = [{"name": "debugger", "image": "busybox:1.36"}]

    resp, admitted = mutate(pod)

    assert not any("ephemeralContainers" in op["path"] for op in patch_ops(resp))
    assert "resources" not in admitted["spec"]["ephemeralContainers"][0]


def test_update_and_mirror_pods_are_not_mutated() -> None:
    pod = load("virt-launcher-linkerd")
    mirror = copy.deepcopy(pod)
    mirror["metadata"]["annotations"]["kubernetes.io/config.mirror"] = "abc123"

    update, _ = mutate(pod, operation="UPDATE", old=pod)
    mirrored, _ = mutate(mirror)

    assert patch_ops(update) == []
    assert patch_ops(mirrored) == []


def test_dry_run_gets_the_same_patch() -> None:
    pod = load("virt-launcher-istio")

    assert patch_ops(mutate(pod, dry_run=True)[0]) == patch_ops(mutate(pod)[0])


def test_configured_node_selector_labels_decide_which_pods_are_dedicated() -> None:
    config = parse_config({"cpuManager": {"nodeSelectorLabels": {"node-role.example.com/pinned": "yes"}}})
    default_labelled = load("virt-launcher-linkerd")
    custom_labelled = load("virt-launcher-linkerd")
    custom_labelled["spec"]["nodeSelector"] = {"node-role.example.com/pinned": "yes"}

    assert patch_ops(mutate(default_labelled, config)[0]) == []
    assert patch_ops(mutate(custom_labelled, config)[0]) != []


def test_numeric_quantities_are_copied_as_written() -> None:
    pod = load("pinned-pod-vault-agent")
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": 2, "memory": "4Gi"}}

    _, admitted = mutate(pod)

    assert admitted["spec"]["containers"][0]["resources"]["limits"] == {"cpu": 2, "memory": "4Gi"}
    assert qos.qos_class(admitted) == "Guaranteed"
    kubernetes_validate.validate(admitted, K8S_VERSION, strict=True)


def _opted_in(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": {"vm-admission.io/guaranteed-qos": "true"}},
        "spec": spec,
    }


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"containers": "compute"}, id="containers-not-a-list"),
        pytest.param({"containers": ["compute", 3]}, id="container-not-a-map"),
        pytest.param({"containers": [{"name": "a", "resources": "lots"}]}, id="resources-a-string"),
        pytest.param({"containers": [{"name": "a", "resources": {"requests": ["cpu"]}}]}, id="requests-a-list"),
        pytest.param({"containers": [{"name": "a", "resources": {"limits": 7}}]}, id="limits-a-number"),
        pytest.param({"resources": {"limits": "x"}, "containers": []}, id="pod-level-limits-a-string"),
        pytest.param(
            {"containers": [{"name": "a", "resources": {"requests": {"cpu": "two", "memory": "-1Gi"}}}]},
            id="unusable-request-values",
        ),
        pytest.param(
            {"containers": [{"name": "a", "resources": {"limits": {"cpu": "0", "memory": True}}}]},
            id="unusable-limit-values",
        ),
    ],
)
def test_shapes_the_rule_cannot_read_are_left_for_the_validator(spec: dict[str, Any]) -> None:
    resp, _ = mutate(_opted_in(spec))

    assert resp["response"]["allowed"] is True
    assert patch_ops(resp) == []
    assert warnings(resp) == []
    verdict = engine.handle(make_review(_opted_in(spec))["request"], "mutate", Config())
    assert verdict.audit == {} and verdict.warnings == []


def test_a_bad_container_does_not_stop_the_others_being_completed() -> None:
    pod = _opted_in({"containers": [{"name": "bad", "resources": "lots"}, {"name": "good"}]})

    resp, _ = mutate(pod)

    assert [op["path"] for op in patch_ops(resp)] == ["/spec/containers/1/resources"]


def test_null_maps_are_replaced_by_the_added_values() -> None:
    pod = _opted_in(
        {"containers": [{"name": "a", "image": "x", "resources": {"requests": {"cpu": "1"}, "limits": None}}]}
    )

    resp, admitted = mutate(pod)

    assert patch_ops(resp) == [
        {"op": "add", "path": "/spec/containers/0/resources/limits", "value": {"cpu": "1", "memory": "64M"}},
        {"op": "add", "path": "/spec/containers/0/resources/requests/memory", "value": "64M"},
    ]
    assert qos.qos_class(admitted) == "Guaranteed"


def test_validator_denies_what_the_mutator_must_leave_unequal() -> None:
    result = engine.chain(load("virt-launcher-unequal-sidecar"), Config())

    assert result.mutation.allowed
    assert not result.validation.allowed
    assert [c.field for c in result.validation.causes] == [
        "spec.containers[1].resources.requests.cpu",
        "spec.containers[1].resources.requests.memory",
    ]


def test_launcher_pod_is_completed_over_https(https_server: ServerProcess) -> None:
    """As kube-apiserver calls it: HTTPS verified with the generated CA, v1 AdmissionReview in and out."""
    pod = load("virt-launcher-istio")
    review = make_review(pod)

    reply = https_server.post("/mutate", review)

    assert reply.status_code == 200
    body = reply.json()
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    assert body["response"]["uid"] == review["request"]["uid"]
    assert body["response"]["allowed"] is True
    admitted = apply_response(pod, body)
    default_pod_requests(admitted)
    assert qos.qos_class(admitted) == "Guaranteed"
    assert [w.split(" (")[0] for w in body["response"]["warnings"]] == [
        'init container "guest-console-log"',
        'init container "istio-validation"',
        'container "hook-sidecar-0"',
        'container "istio-proxy"',
    ]


# ---------------------------------------------------------------------------------------------------------
# edges found by mutation testing (scripts/mutation webhook/rules/qos.py, webhook/k8s/qos.py)

PINNED = {"cpu": "2", "memory": "2Gi"}
GUARANTEED = {"requests": PINNED, "limits": PINNED}


def test_a_pod_with_only_a_passthrough_declaration_gets_no_sidecar_resources() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": {"vm-admission.io/passthrough": "10de:1eb8"}},
        "spec": {"containers": [{"name": "compute", "image": "x"}, {"name": "sidecar", "image": "y"}]},
    }

    resp, admitted = mutate(pod)

    device = {"devices.kubevirt.io/10de_1eb8": "1"}
    assert admitted["spec"]["containers"][0]["resources"] == {"requests": device, "limits": device}
    assert "resources" not in admitted["spec"]["containers"][1]
    assert warnings(resp) == []
    assert "auditAnnotations" not in resp["response"]


def test_the_rule_completes_pods_only_on_create() -> None:
    pod = _opted_in({"containers": [{"name": "a", "image": "x"}]})
    patch = PatchBuilder(pod)

    for operation in ("UPDATE", "DELETE"):
        assert qos_rule.mutate_pod not in admission.rules_for("Pod", "mutate", operation)
    findings = qos_rule.mutate_pod(pod, Context(Config(), "Pod", "CREATE", patch=patch))
    assert [op["path"] for op in patch.ops] == ["/spec/containers/0/resources"] and findings.warnings


@pytest.mark.parametrize(
    ("requests", "added"),
    [
        ({"memory": "2Gi"}, {"cpu": "2"}),
        ({"cpu": "2"}, {"memory": "2Gi"}),
        ({}, PINNED),
    ],
)
def test_requests_missing_beside_both_limits_are_taken_from_the_limits(
    requests: dict[str, str], added: dict[str, str]
) -> None:
    resources = {"requests": requests, "limits": PINNED}
    pod = _opted_in({"containers": [{"name": "a", "image": "x", "resources": resources}]})

    resp, admitted = mutate(pod)

    assert patch_ops(resp) == [
        {"op": "add", "path": f"/spec/containers/0/resources/requests/{name}", "value": value}
        for name, value in added.items()
    ]
    described = ", ".join(f"requests.{name}={value} (from its limit)" for name, value in added.items())
    assert warnings(resp) == [
        f'container "a" (spec.containers[0]): added {described}; a dedicated-CPU pod must be Guaranteed to keep '
        "its pinned CPUs"
    ]
    assert qos.qos_class(admitted) == "Guaranteed"


def test_containers_without_a_name_are_described_by_their_field_path() -> None:
    pod = _opted_in(
        {
            "containers": [
                {"name": "compute", "image": "x", "resources": GUARANTEED},
                {"name": "", "image": "y"},
                {"image": "z", "resources": {"requests": {"cpu": "1"}}},
            ]
        }
    )

    resp, _ = mutate(pod)

    first = (
        "container spec.containers[1]: added requests+limits.cpu=200m (sidecar default), "
        "requests+limits.memory=64M (sidecar default)"
    )
    second = (
        "container spec.containers[2]: added limits.cpu=1 (from its request), "
        "requests+limits.memory=64M (sidecar default)"
    )
    tail = "; a dedicated-CPU pod must be Guaranteed to keep its pinned CPUs"
    assert warnings(resp) == [first + tail, second + tail]
    assert resp["response"]["auditAnnotations"] == {"sidecar-resources": f"{first}; {second}"}


@pytest.mark.parametrize("pod", [None, "pod", ["spec"], {"spec": "x"}, {}])
def test_what_is_not_a_pod_map_has_no_resources_blocks_and_is_best_effort(pod: Any) -> None:
    assert list(qos.resource_blocks(pod)) == []
    assert qos.qos_class(pod) == "BestEffort"
    assert qos.gaps(pod) == []
