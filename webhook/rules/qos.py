"""Guaranteed QoS for dedicated-CPU pods (CONTRACT §4): fill in the sidecar resources that are missing.

A pod keeps the CPU manager's exclusive CPUs only while it is ``Guaranteed``: every container and init
container (native sidecars included) needs cpu and memory with request == limit. Sidecars injected by other
webhooks (Istio, Linkerd, Vault agents, KubeVirt hook sidecars) often come without limits, which silently
makes the whole pod Burstable. For each resources block that decides QoS (the same blocks
:func:`webhook.k8s.qos.resource_blocks` reads, so mutation and validation agree), per cpu and memory:

- neither request nor limit: both := the configured sidecar default (not at pod level: no defaults there);
- request only: limit := request; limit only: request := limit (a request never ends above a limit);
- both: left alone, equal or not (an unequal pair is the validator's to deny; we never change what a user
  wrote). Values we cannot read (unparsable, zero or negative, wrong shapes) are left alone as well.

Edits go through ``ctx.patch`` only, grouped so a block that lacks ``resources``, ``requests`` or ``limits``
gets one ``add`` of the whole missing map.
"""

from __future__ import annotations

from typing import Any

from webhook.k8s import paths, quantity
from webhook.k8s.patch import PatchBuilder
from webhook.k8s.qos import QOS_RESOURCES, resource_blocks
from webhook.rules.base import Context, Findings
from webhook.rules.dedicated import is_dedicated_pod

AUDIT_KEY = "sidecar-resources"


def mutate_pod(obj: dict[str, Any], ctx: Context) -> Findings:
    """Complete cpu/memory requests and limits of a dedicated-CPU pod so that it is ``Guaranteed``."""
    findings = Findings()
    if ctx.operation != "CREATE" or ctx.patch is None or not is_dedicated_pod(obj, ctx.config):
        return findings
    defaults = {"cpu": ctx.config.sidecars.cpu, "memory": ctx.config.sidecars.memory}
    summary: list[str] = []
    for path, block in list(resource_blocks(obj)):
        if block and _complete(block):
            continue  # the common case: every cpu/memory request and limit is there, nothing to add
        pod_level = path == ("spec", "resources")
        # resource_blocks yields a non-empty block as it is; an empty one may stand for null or a wrong shape.
        raw = block if block else paths.get(obj, path)
        added = _fill_block(ctx.patch, raw, path, None if pod_level else defaults)
        if not added:
            continue
        entry = f"{_describe(obj, path)}: added {', '.join(added)}"
        summary.append(entry)
        findings.warnings.append(f"{entry}; a dedicated-CPU pod must be Guaranteed to keep its pinned CPUs")
    if summary:
        findings.audit[AUDIT_KEY] = "; ".join(summary)
    return findings


def _complete(block: dict[str, Any]) -> bool:
    """Every QoS resource has both a request and a limit (so there is nothing to fill in)."""
    requests = block.get("requests")
    limits = block.get("limits")
    if type(requests) is not dict or type(limits) is not dict:
        return False
    cpu, memory = QOS_RESOURCES  # unrolled: this check runs for every container of every dedicated pod
    return not (
        requests.get(cpu) is None
        or limits.get(cpu) is None
        or requests.get(memory) is None
        or limits.get(memory) is None
    )


def _fill_block(patch: PatchBuilder, raw: Any, path: paths.Path, defaults: dict[str, str] | None) -> list[str]:
    """Add what the block ``raw`` at ``path`` lacks; return what was added, e.g. ``limits.cpu=2 (from its request)``."""
    if raw is not None and not isinstance(raw, dict):
        return []  # wrong shape: the validator reports it
    requests = raw.get("requests") if raw is not None else None
    limits = raw.get("limits") if raw is not None else None
    if (requests is not None and type(requests) is not dict) or (limits is not None and type(limits) is not dict):
        return []
    add_limits: dict[str, Any] = {}
    add_requests: dict[str, Any] = {}
    described: list[str] = []
    for name in QOS_RESOURCES:
        req = requests.get(name) if requests is not None else None
        lim = limits.get(name) if limits is not None else None
        if req is None and lim is None:
            if defaults is not None:
                add_limits[name] = add_requests[name] = defaults[name]
                described.append(f"requests+limits.{name}={defaults[name]} (sidecar default)")
        elif lim is None:
            if _usable(req):
                add_limits[name] = req
                described.append(f"limits.{name}={req} (from its request)")
        elif req is None and _usable(lim):
            add_requests[name] = lim
            described.append(f"requests.{name}={lim} (from its limit)")
    if not described:
        return []
    if raw is None:
        # No resources block at all: one op adds it whole.
        patch.set(path, {s: v for s, v in (("limits", add_limits), ("requests", add_requests)) if v})
        return described
    for section, current, values in (("limits", limits, add_limits), ("requests", requests, add_requests)):
        if not values:
            continue
        if current is None:
            patch.put(raw, (*path, section), values)
        else:
            for name, value in values.items():
                patch.put(current, (*path, section, name), value)
    return described


def _usable(raw: Any) -> bool:
    """A value worth copying to its missing partner: a parsable, positive quantity."""
    q = quantity.try_parse(raw)
    return q is not None and q > 0


def _describe(pod: dict[str, Any], path: paths.Path) -> str:
    """``container "istio-proxy" (spec.containers[2])`` for a container block, the field path for pod level."""
    if len(path) < 3:
        return f"pod-level resources ({paths.field(path)})"
    container_path = path[:-1]
    name = paths.get(pod, (*container_path, "name"))
    kind = "init container" if path[1] == "initContainers" else "container"
    where = paths.field(container_path)
    return f'{kind} "{name}" ({where})' if isinstance(name, str) and name else f"{kind} {where}"
