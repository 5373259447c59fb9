"""Kubernetes defaulting that changes what admission sees.

The API server runs ``SetDefaults_Pod`` when it decodes a request and again after each mutating webhook's
patch: in every container and init container (and pod-level ``spec.resources``), a resource that has a
limit but no request gets ``request := limit``. ``review`` applies it between mutation and validation.
"""

from __future__ import annotations

from typing import Any


def default_pod_requests(pod: Any) -> None:
    """Apply requests-from-limits defaulting to ``pod`` in place (containers and init containers)."""
    spec = pod.get("spec") if isinstance(pod, dict) else None
    if not isinstance(spec, dict):
        return
    blocks: list[Any] = [spec.get("resources")]
    for key in ("initContainers", "containers"):
        items = spec.get(key)
        if isinstance(items, list):
            blocks.extend(c.get("resources") for c in items if isinstance(c, dict))
    for res in blocks:
        if not isinstance(res, dict):
            continue
        limits = res.get("limits")
        if not isinstance(limits, dict) or not limits:
            continue
        requests = res.get("requests")
        if not isinstance(requests, dict):
            requests = res["requests"] = {}
        for name, lim in limits.items():
            requests.setdefault(name, lim)
