"""A pod's QoS class as the kubelet computes it, what keeps a pod from Guaranteed, and requests defaulted from
limits as the API server's SetDefaults_Pod does (webhook.k8s.qos, webhook.k8s.defaults)."""

from __future__ import annotations

from typing import Any

from webhook.k8s import defaults, paths, qos


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


def test_qos_block_with_only_requests_or_only_limits_is_burstable() -> None:
    assert qos.qos_class(_pod({"requests": {"cpu": "1", "memory": "1Gi"}})) == "Burstable"
    assert qos.qos_class(_pod({"limits": {"cpu": "1", "memory": "1Gi"}})) == "Burstable"
    assert qos.qos_class(_pod({"requests": {"cpu": "1"}, "limits": {}})) == "Burstable"
    assert qos.qos_class(_pod({"requests": {}, "limits": {"memory": "1Gi"}})) == "Burstable"
