"""Guaranteed QoS for dedicated-CPU pods (docs/guaranteed-qos.md): fill in the sidecar resources that are missing.

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

from webhook.config import Config
from webhook.k8s import paths, quantity
from webhook.k8s import qos as kqos
from webhook.k8s.patch import PatchBuilder
from webhook.k8s.paths import Path
from webhook.k8s.qos import QOS_RESOURCES, resource_blocks
from webhook.rules.base import Cause, Context, Findings, quoted
from webhook.rules.fields import Reader, wrong_type
from webhook.rules.registry import define

NOT_GUARANTEED = define(
    "qos.not-guaranteed",
    "a dedicated-CPU pod that would not be Guaranteed",
    field="`spec.containers[i].resources.{requests,limits}.{cpu,memory}` (or `spec.resources...`)",
    page="guaranteed-qos.md",
    replaces="qos.guaranteed",
)
BAD_QUANTITY = define(
    "qos.bad-quantity",
    "an unparsable cpu/memory quantity in a dedicated-CPU pod",
    field="the quantity's field",
    page="guaranteed-qos.md",
    replaces="qos.quantity",
)

AUDIT_KEY = "sidecar-resources"
GUARANTEED_QOS_ANNOTATION = "vm-admission.io/guaranteed-qos"


def is_dedicated_pod(pod: dict[str, Any], config: Config) -> bool:
    """True for pods that must reach Guaranteed QoS: the opt-in annotation, or a CPU-manager node selector.

    The annotation value ``"false"`` opts a pod out even when its node selector matches.
    """
    meta = pod.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if isinstance(annotations, dict):
        flag = annotations.get(GUARANTEED_QOS_ANNOTATION)
        if flag == "false":
            return False
        if flag == "true":
            return True
    spec = pod.get("spec")
    selector = spec.get("nodeSelector") if isinstance(spec, dict) else None
    if not isinstance(selector, dict):
        return False
    # A loop, not any(<generator>): this runs for every Pod, and compiled a generator costs an object.
    for label, value in config.cpuManager.labels.items():  # noqa: SIM110
        if selector.get(label) == value:
            return True
    return False


def mutate_pod(obj: dict[str, Any], ctx: Context) -> Findings:
    """Complete cpu/memory requests and limits of a dedicated-CPU pod so that it is ``Guaranteed``."""
    findings = Findings()
    if ctx.patch is None or not is_dedicated_pod(obj, ctx.config):
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


def _container_of(pod: dict[str, Any], block: paths.Path) -> tuple[str, str | None]:
    """("container" or "init container", its name if it has one) of a container's resources block path."""
    name = paths.get(pod, (*block[:-1], "name"))
    kind = "init container" if block[1] == "initContainers" else "container"
    return kind, name if isinstance(name, str) and name else None


def _describe(pod: dict[str, Any], path: paths.Path) -> str:
    """``container "istio-proxy" (spec.containers[2])`` for a container block, the field path for pod level."""
    if len(path) < 3:
        return f"pod-level resources ({paths.field(path)})"
    kind, name = _container_of(pod, path)
    where = paths.field(path[:-1])
    return f'{kind} "{name}" ({where})' if name is not None else f"{kind} {where}"


# --- validation: a dedicated-CPU pod must be Guaranteed ------------------------------------------------


def _pod_shape_problems(pod: dict[str, Any]) -> list[str]:
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return ["spec: must be an object"]
    r = Reader()

    def check_block(parent: dict[str, Any], where: Path) -> None:
        res = r.mapping(parent, "resources", (*where, "resources"))
        if res is not None:
            for section in ("requests", "limits"):
                r.mapping(res, section, (*where, "resources", section))

    check_block(spec, ("spec",))
    for key in ("initContainers", "containers"):
        for i, c in enumerate(r.items(spec, key, ("spec", key)) or []):
            if isinstance(c, dict):
                check_block(c, ("spec", key, i))
            else:
                r.problems.append(wrong_type(("spec", key, i), "an object", c))
    return r.problems


def _owner(pod: dict[str, Any], block: Path) -> str:
    """'container "x"' / 'init container "y"' / 'the pod' for a resources block path (in a denial)."""
    if len(block) < 3:
        return "the pod (spec.resources)"
    kind, name = _container_of(pod, block)
    return f"{kind} {name!r}" if name is not None else f"{kind} #{block[2]}"


def _gap_causes(pod: dict[str, Any], gap: kqos.Gap) -> list[Cause]:
    req_path, lim_path = (*gap.path, "requests", gap.resource), (*gap.path, "limits", gap.resource)
    bad = []
    for raw, path in ((gap.request, req_path), (gap.limit, lim_path)):
        if raw is not None:
            try:
                quantity.parse(raw)
            except quantity.QuantityError as exc:
                bad.append(Cause.at(path, str(exc), rule=BAD_QUANTITY))
    if bad:
        return bad
    who, r = _owner(pod, gap.path), gap.resource
    need = "a dedicated-CPU pod must be Guaranteed (request == limit for cpu and memory everywhere)"
    req = quantity.parse(gap.request) if gap.request is not None else None
    lim = quantity.parse(gap.limit) if gap.limit is not None else None
    if req is not None and req != 0 and lim is None:
        return [
            Cause.at(
                lim_path,
                f"{who} has a {r} request {quoted(gap.request)} but no limit: {need}, so set the "
                f"limit to {quoted(gap.request)}",
                "FieldValueRequired",
                rule=NOT_GUARANTEED,
            )
        ]
    if req is None and lim is None:
        return [
            Cause.at(
                req_path,
                f"{who} has no {r} request or limit: {need}, so set both to the same value",
                "FieldValueRequired",
                rule=NOT_GUARANTEED,
            )
        ]
    if req is None:
        return [
            Cause.at(
                req_path,
                f"{who} has a {r} limit {quoted(gap.limit)} but no request: {need}, so set the "
                f"request to {quoted(gap.limit)}",
                "FieldValueRequired",
                rule=NOT_GUARANTEED,
            )
        ]
    if lim is None:  # a zero request and no limit
        return [
            Cause.at(
                req_path,
                f"{who} has a {r} request of 0 and no limit: {need}, so give it a positive request and an equal limit",
                rule=NOT_GUARANTEED,
            )
        ]
    if req == lim:  # both zero
        return [
            Cause.at(
                req_path,
                f"{who} has a {r} request and limit of 0: {need}, so give it a positive amount",
                rule=NOT_GUARANTEED,
            )
        ]
    return [
        Cause.at(
            req_path,
            f"{who} has a {r} request {quoted(gap.request)} but a limit {quoted(gap.limit)}: {need}, "
            "so make them equal",
            rule=NOT_GUARANTEED,
        )
    ]


def _has_whole_cpu(pod: dict[str, Any]) -> bool:
    spec = pod["spec"]
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            res = c.get("resources") or {}
            q = quantity.try_parse((res.get("requests") or {}).get("cpu"))
            if q is not None and q > 0 and quantity.is_whole(q):
                return True
    return False


def validate_pod(obj: dict[str, Any], ctx: Context) -> Findings:
    """Dedicated-CPU pods on CREATE: Guaranteed by kubelet's algorithm, and something to pin."""
    if not is_dedicated_pod(obj, ctx.config):
        return Findings()
    problems = _pod_shape_problems(obj)
    if problems:
        return Findings(bad_request="; ".join(problems))
    if not ctx.config.cpuManager.enabled:
        return Findings(
            warnings=[
                "cpuManager.enabled is false in the vm-admission config: this dedicated-CPU pod is not checked for "
                "Guaranteed QoS and gets no pinned CPUs (enable the CPUManager feature gate and the kubelet's "
                "static policy, then set it to true)"
            ]
        )
    findings = Findings()
    for gap in kqos.gaps(obj):
        findings.causes.extend(_gap_causes(obj, gap))
    if not _has_whole_cpu(obj):
        findings.warnings.append(
            "no container requests a whole number of CPUs, so the CPU manager pins none: give the main "
            "container a whole CPU request and an equal limit (e.g. 2)"
        )
    return findings
