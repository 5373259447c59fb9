"""kubelet's pod QoS class (``pkg/apis/core/v1/helper/qos``), with the places that keep a pod from Guaranteed.

One implementation serves the mutator (what to fill in) and the validator (what to reject), so the two can
never disagree about what Guaranteed means. Only ``cpu`` and ``memory`` count; ephemeral containers do not;
init containers (native sidecars included) do; when pod-level ``spec.resources`` is set it alone decides.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from webhook.k8s import quantity
from webhook.k8s.paths import Path

QOS_RESOURCES = ("cpu", "memory")
QOSClass = Literal["Guaranteed", "Burstable", "BestEffort"]


@dataclass(frozen=True, slots=True)
class Gap:
    """One resource of one resources block that is not request == limit (a reason the pod is not Guaranteed).

    ``path`` is the resources block (``spec.containers[1].resources`` or ``spec.resources``).
    """

    path: Path
    resource: str
    request: Any  # raw values as written (None when absent)
    limit: Any


def resource_blocks(pod: Any) -> Iterator[tuple[Path, Any]]:
    """Yield ``(path, resources)`` for every resources block that decides QoS.

    Pod-level ``spec.resources`` (when set) alone; otherwise each init container and container. Non-dict
    entries are skipped (schema validation rejects them before anything depends on it).
    """
    spec = pod.get("spec") if isinstance(pod, dict) else None
    if not isinstance(spec, dict):
        return
    pod_res = spec.get("resources")
    if isinstance(pod_res, dict) and pod_res:
        yield ("spec", "resources"), pod_res
        return
    for key in ("initContainers", "containers"):
        items = spec.get(key)
        if not isinstance(items, list):
            continue
        for i, c in enumerate(items):
            if isinstance(c, dict):
                res = c.get("resources")
                yield ("spec", key, i, "resources"), res if isinstance(res, dict) else {}


def _amount(raw: Any) -> Decimal:
    q = quantity.try_parse(raw)
    return q if q is not None else Decimal(0)


def _block_class(res: dict[str, Any]) -> QOSClass:
    requests = res.get("requests") if isinstance(res.get("requests"), dict) else {}
    limits = res.get("limits") if isinstance(res.get("limits"), dict) else {}
    assert isinstance(requests, dict) and isinstance(limits, dict)
    if not requests and not limits:
        return "BestEffort"
    zero = 0
    for name in QOS_RESOURCES:
        req, lim = _amount(requests.get(name)), _amount(limits.get(name))
        if req != lim:
            return "Burstable"
        if lim == 0:
            zero += 1
    if zero == len(QOS_RESOURCES):
        return "BestEffort"
    return "Burstable" if zero else "Guaranteed"


def qos_class(pod: Any) -> QOSClass:
    """The QoS class kubelet computes for ``pod`` (``status.qosClass`` is ignored: we judge the spec)."""
    classes = {_block_class(res) for _, res in resource_blocks(pod)}
    if not classes or classes == {"BestEffort"}:
        return "BestEffort"
    if classes == {"Guaranteed"}:
        return "Guaranteed"
    return "Burstable"


def gaps(pod: Any) -> list[Gap]:
    """Every (block, resource) whose request and limit are not equal and non-zero; empty iff Guaranteed."""
    out: list[Gap] = []
    for path, res in resource_blocks(pod):
        requests = res.get("requests") if isinstance(res.get("requests"), dict) else {}
        limits = res.get("limits") if isinstance(res.get("limits"), dict) else {}
        assert isinstance(requests, dict) and isinstance(limits, dict)
        for name in QOS_RESOURCES:
            req, lim = requests.get(name), limits.get(name)
            a, b = _amount(req), _amount(lim)
            if a != b or b == 0:
                out.append(Gap(path, name, req, lim))
    return out
