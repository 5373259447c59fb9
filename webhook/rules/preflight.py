"""Preflight against the cluster view (docs/cluster-view.md): could any node ever run this object? And does the
KubeVirt CR allow what it asks for?

Pure: reads ``ctx.cluster`` (an immutable snapshot; None when the view is off, unsynced or lost, and then
nothing here applies). Nodes come folded into classes, so every check is O(classes).

- ``no-matching-node``: schedulable, ``nodeSelector`` (plus the launcher's own labels for VMIs), required node
  affinity, NoSchedule/NoExecute taints tolerated;
- ``no-cpu-manager-node``: dedicated CPUs need a CPU-manager label (``cpuManager.nodeSelectorLabels``; VMIs also
  need ``kubevirt.io/schedulable=true``, which every launcher selects anyway);
- ``not-enough-cpus``: allocatable CPUs cover the launcher's dedicated CPUs (vCPUs + pool threads + emulator
  thread) or a dedicated pod's CPU requests;
- ``not-enough-devices``: allocatable extended resources cover every device asked for, SR-IOV VFs of network
  attachments included (one per attachment to a NAD with a resourceName, :mod:`webhook.rules.attachments`);
- ``not-enough-memory``: allocatable memory (or ``hugepages-<pageSize>``) covers the request;
- ``device-not-permitted``: a deviceName the CR's ``permittedHostDevices`` does not list; ``host-devices-gate-off``:
  host devices with the CR's ``HostDevices`` gate off (both always causes).

The node findings are warnings under ``cluster.enforcement: warn`` (the default: autoscalers add nodes) and causes
under ``enforce``. Messages name the closest nodes and the numbers that fail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from webhook.k8s import quantity, scheduling
from webhook.k8s.paths import Path
from webhook.k8s.snapshot import CPU_MANAGER_GATE, HOST_DEVICES_GATE, ClusterSnapshot, NodeClass
from webhook.rules import attachments, cpu, devices, passthrough
from webhook.rules.base import Cause, Context, Findings, cluster_finding, to_run
from webhook.rules.fields import VM_ROOT, VMI_ROOT, vm_template_spec
from webhook.rules.qos import is_dedicated_pod
from webhook.rules.registry import define

NO_MATCHING_NODE = define(
    "preflight.no-matching-node",
    "no schedulable node matches the nodeSelector (plus the launcher's `kubevirt.io/schedulable`, "
    "`kubernetes.io/arch`), required node affinity and tolerations",
    field="`spec.nodeSelector`",
    page="cluster-view.md",
    kind="preflight",
    replaces="preflight.placement",
)
NO_CPU_MANAGER_NODE = define(
    "preflight.no-cpu-manager-node",
    "dedicated CPUs, but no node that could run it carries a CPU-manager label (names the CPUManager gate when "
    "the CR has it off)",
    field="`spec.domain.cpu.dedicatedCpuPlacement` (pods: `spec.nodeSelector`)",
    page="cluster-view.md",
    kind="preflight",
    replaces="preflight.K1",
)
NOT_ENOUGH_CPUS = define(
    "preflight.not-enough-cpus",
    "no such node has the allocatable CPUs to pin: vCPUs + I/O pool threads + emulator thread",
    field="`spec.domain.cpu.dedicatedCpuPlacement` (pods: the largest CPU request)",
    page="cluster-view.md",
    kind="preflight",
    replaces="preflight.K2",
)
NOT_ENOUGH_DEVICES = define(
    "preflight.not-enough-devices",
    "no such node advertises enough of a device resource",
    field="the declaration / `hostDevices[i].deviceName` / `gpus[i].deviceName` (pods: the request)",
    page="cluster-view.md",
    kind="preflight",
    replaces="preflight.K3",
)
NOT_ENOUGH_MEMORY = define(
    "preflight.not-enough-memory",
    "no such node has the allocatable memory or `hugepages-<pageSize>`",
    field="`spec.domain.resources.requests.memory` (pods: the first memory request)",
    page="cluster-view.md",
    kind="preflight",
    replaces="preflight.K4",
)
DEVICE_NOT_PERMITTED = define(
    "preflight.device-not-permitted",
    "the deviceName is not in the KubeVirt CR's `permittedHostDevices` (plus `passthrough.permittedDevices`)",
    field="`hostDevices[i].deviceName` / `gpus[i].deviceName`",
    page="cluster-view.md",
    replaces="preflight.K5",
)
HOST_DEVICES_GATE_OFF = define(
    "preflight.host-devices-gate-off",
    "host devices while the KubeVirt CR's `HostDevices` gate is off",
    field="`spec.domain.devices.hostDevices`",
    page="cluster-view.md",
    replaces="preflight.K6",
)

SCHEDULABLE_LABEL = ("kubevirt.io/schedulable", "true")
ARCH_LABEL = "kubernetes.io/arch"
_PLAIN_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage", "pods", "storage"})
_BINARY = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))


def fmt_bytes(amount: Decimal) -> str:
    """Bytes as the largest binary suffix that divides them (``16Gi``), else in the largest that fits."""
    value = int(amount)
    for suffix, size in _BINARY:
        if value >= size and value % size == 0:
            return f"{value // size}{suffix}"
    for suffix, size in _BINARY:
        if value >= size:
            return f"{value / size:.1f}{suffix}"
    return str(value)


def fmt_cpus(amount: Decimal) -> str:
    return str(int(amount)) if amount == amount.to_integral_value() else f"{int(amount * 1000)}m"


@dataclass(slots=True)
class Demand:
    """What one object needs of a node, with the field each need is reported on."""

    what: str  # "this VMI", "this VM", "this pod"
    root: Path  # the pod spec or VMI spec the object asks from
    placement: scheduling.Placement
    dedicated: bool = False
    dedicated_field: Path = ()
    cpus: Decimal = Decimal(0)  # preflight.not-enough-cpus: pinned CPUs (dedicated only)
    cpus_field: Path = ()
    cpus_detail: str = ""
    devices: dict[str, int] = field(default_factory=dict)  # preflight.not-enough-devices: resource -> count
    device_fields: dict[str, Path] = field(default_factory=dict)
    memory: dict[str, Decimal] = field(default_factory=dict)  # not-enough-memory: "memory"/"hugepages-2Mi" -> bytes
    memory_field: Path = ()
    vmi: bool = True


# ------------------------------------------------------------------------------------------- demands


def _count_devices(spec: dict[str, Any], root: Path, demand: Demand) -> None:
    """1 of ``deviceName`` per gpus/hostDevices entry without a claim (DRA entries ask for no resource)."""
    for list_name, entries in devices.read_entries(spec, root, []).items():
        for e in entries:
            if e.device_name and not e.claim:
                demand.devices[e.device_name] = demand.devices.get(e.device_name, 0) + 1
                field_at = (*root, "domain", "devices", list_name, e.index, "deviceName")
                demand.device_fields.setdefault(e.device_name, field_at)


def _count_declared(obj: dict[str, Any], ctx: Context, demand: Demand) -> bool:
    """Declared passthrough instances that are not (yet) translated count too (mutation may have been skipped).

    True when the object declares any device."""
    plan = passthrough.checked(obj, ctx)
    if not plan.devices:
        return False
    existing = {e.get("name") for e in plan.host_devices if isinstance(e, dict)}
    for dev in plan.devices:
        missing = sum(1 for i in range(dev.count) if dev.host_device_name(i) not in existing)
        if ctx.kind == "Pod":
            missing = dev.count if dev.resource not in demand.devices else 0
        if missing:
            demand.devices[dev.resource] = demand.devices.get(dev.resource, 0) + missing
        demand.device_fields[dev.resource] = dev.declared_at  # the user wrote the declaration, not our entries
    return bool(plan.devices)


def vmi_demand(obj: dict[str, Any], spec: Any, root: Path, ctx: Context, what: str) -> Demand | None:
    if not isinstance(spec, dict):
        return None
    s = cpu.read(spec, root, ctx).defaulted  # the CPU rules' defaulted copy
    if s is None:
        return None
    extra = dict([SCHEDULABLE_LABEL])
    if s.architecture:
        extra[ARCH_LABEL] = s.architecture.lower()
    d = (*root, "domain")
    demand = Demand(
        what, root, scheduling.read_placement(spec, extra), dedicated_field=(*d, "cpu", "dedicatedCpuPlacement")
    )
    if s.dedicated:
        demand.dedicated = True
        n = cpu.vcpus(s.cores, s.sockets, s.threads)
        parts = [f"{n} vCPUs"] if n else []
        total = Decimal(n) if n else s.q(cpu.REQ_CPU)
        if s.pool_threads:  # added whatever the ioThreadsPolicy, as virt-launcher sizes the pod
            total += s.pool_threads
            parts.append(f"{s.pool_threads} I/O pool threads")
        if s.isolate_emulator_thread:
            total += 1
            parts.append("1 emulator thread")
        demand.cpus, demand.cpus_field = total, demand.dedicated_field
        demand.cpus_detail = " + ".join(parts)
    _count_devices(spec, root, demand)
    _count_declared(obj, ctx, demand)
    for resource, (units, at) in attachments.spec_vfs(spec, root, attachments.namespace_of(obj, ctx), ctx).items():
        demand.devices[resource] = demand.devices.get(resource, 0) + units
        demand.device_fields.setdefault(resource, at)
    demand.memory_field = (*d, "resources", "requests", "memory")
    request = next((v for v in (s.q(cpu.REQ_MEM), s.q(cpu.LIM_MEM), s.guest or Decimal(0)) if v), Decimal(0))
    if s.hugepages and s.page_size is not None and isinstance(s.page_size_raw, str):
        amount = request or s.page_size
        if s.guest is not None and amount > s.guest:
            amount = s.guest
        demand.memory[f"hugepages-{s.page_size_raw}"] = amount
    elif request:
        demand.memory["memory"] = request
    return demand


def _pod_containers(spec: dict[str, Any]) -> Iterable[tuple[Path, dict[str, Any]]]:
    for part in ("containers", "initContainers"):
        items = spec.get(part)
        if isinstance(items, list):
            for i, c in enumerate(items):
                if isinstance(c, dict):
                    yield ("spec", part, i), c


def _request(c: dict[str, Any], name: str) -> Decimal:
    res = c.get("resources")
    if not isinstance(res, dict):
        return Decimal(0)
    for part in ("requests", "limits"):  # a missing request defaults to the limit
        values = res.get(part)
        if isinstance(values, dict) and name in values:
            return quantity.try_parse(values[name]) or Decimal(0)
    return Decimal(0)


def _resource_names(c: dict[str, Any]) -> set[str]:
    res = c.get("resources")
    names: set[str] = set()
    if isinstance(res, dict):
        for part in ("requests", "limits"):
            if isinstance(res.get(part), dict):
                names.update(str(k) for k in res[part])
    return names


def pod_demand(obj: dict[str, Any], ctx: Context) -> tuple[Demand, bool]:
    """The pod's effective requests: app containers and native sidecars add up, a plain init container
    needs its own amount alone (the kubelet's max(sum, max(init))); and whether it declares passthrough or
    attaches VFs (either makes a pod that is not dedicated worth a preflight)."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    labels = ctx.config.cpuManager.labels
    raw_selector = spec.get("nodeSelector") if isinstance(spec.get("nodeSelector"), dict) else {}
    assert isinstance(raw_selector, dict)
    # preflight.no-cpu-manager-node judges the CPU-manager labels
    own = {k: v for k, v in raw_selector.items() if labels.get(k) != v}
    placement = scheduling.read_placement({**spec, "nodeSelector": own})
    demand = Demand("this pod", ("spec",), placement, vmi=False, dedicated_field=("spec", "nodeSelector"))
    demand.dedicated = is_dedicated_pod(obj, ctx.config)
    totals: dict[str, Decimal] = {}
    init_peaks: dict[str, Decimal] = {}
    first: dict[str, Path] = {}
    for path, c in _pod_containers(spec):
        native = path[1] == "initContainers" and c.get("restartPolicy") == "Always"
        for name in _resource_names(c) | {"cpu", "memory"}:
            amount = _request(c, name)
            if not amount:
                continue
            kind = "requests" if name in ((c.get("resources") or {}).get("requests") or {}) else "limits"
            first.setdefault(name, (*path, "resources", kind, name))
            if path[1] == "containers" or native:
                totals[name] = totals.get(name, Decimal(0)) + amount
            else:
                init_peaks[name] = max(init_peaks.get(name, Decimal(0)), amount)
    for name, peak in init_peaks.items():
        totals[name] = max(totals.get(name, Decimal(0)), peak)
    for name, amount in totals.items():
        if name == "cpu":
            if demand.dedicated:
                demand.cpus, demand.cpus_field, demand.cpus_detail = amount, first[name], "CPU requests"
        elif name == "memory" or name.startswith("hugepages-"):
            demand.memory[name] = amount
            demand.memory_field = demand.memory_field or first[name]
        elif name not in _PLAIN_RESOURCES and "/" in name:
            demand.devices[name] = quantity.value(amount)
            demand.device_fields[name] = first[name]
    declared = _count_declared(obj, ctx, demand)
    vfs = attachments.pod_vfs(obj, ctx)
    for resource, (units, at) in vfs.items():  # what the attachments need, whether or not it was injected
        if units > demand.devices.get(resource, 0):
            demand.devices[resource], demand.device_fields[resource] = units, at
    if "memory" in first:
        demand.memory_field = first["memory"]
    return demand, declared or bool(vfs)


# ---------------------------------------------------------------------------------------------- fit


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _count(classes: Iterable[NodeClass]) -> int:
    return sum(c.count for c in classes)


def _placement_message(snapshot: ClusterSnapshot, demand: Demand) -> str:
    if not snapshot.node_classes:
        return f"the cluster has no nodes, so nothing can run {demand.what}"
    p = demand.placement
    cordoned = _count(c for c in snapshot.node_classes if c.unschedulable)
    unselected = _count(c for c in snapshot.node_classes if not c.unschedulable and not scheduling.matches(c, p))
    tainted: dict[str, int] = {}
    for c in snapshot.node_classes:
        if not c.unschedulable and scheduling.matches(c, p):
            for t in scheduling.untolerated(c, p)[:1]:
                label = f"{t.key}={t.value}:{t.effect}" if t.value else f"{t.key}:{t.effect}"
                tainted[label] = tainted.get(label, 0) + c.count
    reasons = []
    if unselected:
        what = ", ".join(f"{k}={v}" for k, v in sorted(p.node_selector.items()))
        sel = f"nodeSelector {{{what}}}" if what else ""
        aff = "required node affinity" if p.required_terms is not None else ""
        reasons.append(f"{_plural(unselected, 'node')} do not match its {' or '.join(x for x in (sel, aff) if x)}")
    for label, n in sorted(tainted.items(), key=lambda kv: -kv[1])[:3]:
        reasons.append(f"{_plural(n, 'node')} have the taint {label}, which it does not tolerate")
    if cordoned:
        reasons.append(f"{_plural(cordoned, 'node')} are cordoned (spec.unschedulable)")
    return f"no node of {snapshot.node_count} can run {demand.what}: " + "; ".join(reasons)


def _cpu_manager_nodes(classes: list[NodeClass], ctx: Context, demand: Demand) -> list[NodeClass]:
    labels = ctx.config.cpuManager.labels
    out = []
    for c in classes:
        if not any(c.labels.get(k) == v for k, v in labels.items()):
            continue
        if demand.vmi and c.labels.get(SCHEDULABLE_LABEL[0]) != SCHEDULABLE_LABEL[1]:
            continue
        out.append(c)
    return out


def _k1_message(classes: list[NodeClass], ctx: Context, demand: Demand, snapshot: ClusterSnapshot) -> str:
    labels = " or ".join(f"{k}={v}" for k, v in ctx.config.cpuManager.labels.items())
    false = _count(c for c in classes if "false" in (c.labels.get(k) for k in ctx.config.cpuManager.labels))
    msg = (
        f"none of the {_plural(_count(classes), 'node')} that could run {demand.what} carries {labels}, so its "
        "dedicated CPUs can never be pinned and it would stay Pending"
    )
    if false:
        msg += f" ({false} carry the label set to false: the kubelet there does not run the static CPU manager policy)"
    kv = snapshot.kubevirt
    if kv is not None and not kv.gate(CPU_MANAGER_GATE):
        msg += (
            f"; the KubeVirt CR {kv.ref} does not enable the CPUManager feature gate, and virt-handler then labels "
            "every node kubevirt.io/cpumanager=false: add CPUManager to "
            "spec.configuration.developerConfiguration.featureGates"
        )
    return msg


def _largest(classes: list[NodeClass], resource: str) -> tuple[Decimal, NodeClass | None]:
    best: tuple[Decimal, NodeClass | None] = (Decimal(-1), None)
    for c in classes:
        have = c.allocatable.get(resource, Decimal(0))
        if have > best[0]:
            best = (have, c)
    return best


def _fits(c: NodeClass, demand: Demand) -> dict[str, bool]:
    """Each K2-K4 criterion on one class."""
    a = c.allocatable
    zero = Decimal(0)
    return {
        NOT_ENOUGH_CPUS: not demand.cpus or a.get("cpu", zero) >= demand.cpus,
        NOT_ENOUGH_DEVICES: all(a.get(r, zero) >= n for r, n in demand.devices.items()),
        NOT_ENOUGH_MEMORY: all(a.get(r, zero) >= n for r, n in demand.memory.items()),
    }


def _resource_shortfalls(classes: list[NodeClass], demand: Demand, where: str) -> list[tuple[str, Path, str]]:
    """(rule, field, message) for each of K2-K4 that no class in ``classes`` meets."""
    out: list[tuple[str, Path, str]] = []
    nodes = _plural(_count(classes), "node")
    if demand.cpus:
        have, best = _largest(classes, "cpu")
        if have < demand.cpus:
            detail = f" ({demand.cpus_detail})" if demand.cpus_detail and demand.vmi else ""
            named = f" ({best.describe()})" if best else ""
            message = (
                f"{nodes} {where}; the largest has {fmt_cpus(max(have, Decimal(0)))} allocatable CPUs{named}, "
                f"{demand.what} needs {fmt_cpus(demand.cpus)} pinned CPUs{detail}"
            )
            out.append((NOT_ENOUGH_CPUS, demand.cpus_field, message))
    for resource, n in sorted(demand.devices.items()):
        have, best = _largest(classes, resource)
        if have < n:
            if have <= 0:
                msg = f"none of the {nodes} {where} advertises {resource}"
            else:
                named = f" ({best.describe()})" if best else ""
                msg = f"the most any of the {nodes} {where} advertises is {int(have)} {resource}{named}"
            hint = " (is its device plugin running?)" if have <= 0 else ""
            out.append(
                (
                    NOT_ENOUGH_DEVICES,
                    demand.device_fields.get(resource, demand.root),
                    f"{msg}, {demand.what} needs {n}{hint}",
                )
            )
    for resource, amount in sorted(demand.memory.items()):
        have, best = _largest(classes, resource)
        if have < amount:
            label = "memory" if resource == "memory" else resource
            if have <= 0:
                msg = f"none of the {nodes} {where} has allocatable {label}"
            else:
                named = f" ({best.describe()})" if best else ""
                msg = f"the largest of the {nodes} {where} has {fmt_bytes(have)} allocatable {label}{named}"
            out.append((NOT_ENOUGH_MEMORY, demand.memory_field, f"{msg}, {demand.what} needs {fmt_bytes(amount)}"))
    return out


MEMO_SIZE = 1024  # distinct demand shapes remembered per snapshot (a new snapshot starts empty)


def _signature(demand: Demand, ctx: Context) -> tuple[Any, ...]:
    p = demand.placement
    return (
        demand.what,
        demand.root,
        demand.vmi,
        tuple(sorted(p.node_selector.items())),
        None if p.required_terms is None else orjson.dumps(p.required_terms, option=orjson.OPT_SORT_KEYS),
        orjson.dumps(p.tolerations, option=orjson.OPT_SORT_KEYS) if p.tolerations else None,
        demand.dedicated,
        demand.dedicated_field,
        demand.cpus,
        demand.cpus_field,
        demand.cpus_detail,
        tuple(sorted(demand.devices.items())),
        tuple(sorted(demand.device_fields.items())),
        tuple(sorted(demand.memory.items())),
        demand.memory_field,
        tuple(ctx.config.cpuManager.labels.items()),
    )


def fit_memo(demand: Demand, ctx: Context, snapshot: ClusterSnapshot) -> list[tuple[str, Path, str]]:
    """:func:`fit`, remembered per snapshot: VMIs of one shape (an instance type) are judged once per view."""
    key = _signature(demand, ctx)
    found = snapshot.memo.get(key)
    if found is None:
        if len(snapshot.memo) >= MEMO_SIZE:
            snapshot.memo.clear()
        found = snapshot.memo[key] = tuple(fit(demand, ctx, snapshot))
    return list(found)


def fit(demand: Demand, ctx: Context, snapshot: ClusterSnapshot) -> list[tuple[str, Path, str]]:
    """(rule, field, message) for every reason no node could ever run the object; [] when some node fits."""
    eligible = [c for c in snapshot.node_classes if scheduling.eligible(c, demand.placement)]
    if not eligible:
        sel = (*demand.root, "nodeSelector")
        return [(NO_MATCHING_NODE, sel, _placement_message(snapshot, demand))]
    candidates, where = eligible, "that could run it"
    if demand.dedicated:
        candidates = _cpu_manager_nodes(eligible, ctx, demand)
        if not candidates:
            return [(NO_CPU_MANAGER_NODE, demand.dedicated_field, _k1_message(eligible, ctx, demand, snapshot))]
        where = "with " + " or ".join(f"{k}={v}" for k, v in ctx.config.cpuManager.labels.items())
    failures = _resource_shortfalls(candidates, demand, where)
    if failures or any(all(_fits(c, demand).values()) for c in candidates):
        return failures
    # Every need is met somewhere, but never all on one node: name what the closest one lacks.
    best = max(candidates, key=lambda c: (sum(_fits(c, demand).values()), c.count))
    lacking = [k for k, ok in _fits(best, demand).items() if not ok]
    fields = {
        NOT_ENOUGH_CPUS: demand.cpus_field,
        NOT_ENOUGH_DEVICES: next(iter(demand.device_fields.values()), demand.root),
        NOT_ENOUGH_MEMORY: demand.memory_field,
    }
    needs = {NOT_ENOUGH_CPUS: "pinnable CPUs", NOT_ENOUGH_DEVICES: "the devices", NOT_ENOUGH_MEMORY: "memory"}
    message = f"no single node has everything {demand.what} needs; the closest ({best.describe()}) lacks " + ", ".join(
        needs[k] for k in lacking
    )
    return [(lacking[0], fields[lacking[0]], message)]


# ------------------------------------------------------------------------------------ the CR (preflight.device-not-
# permitted, preflight.host-devices-gate-off)


def _cr_rules(spec: Any, root: Path, ctx: Context, snapshot: ClusterSnapshot) -> list[Cause]:
    kv = snapshot.kubevirt
    if kv is None or not isinstance(spec, dict):
        return []
    domain = spec.get("domain") if isinstance(spec.get("domain"), dict) else {}
    devices = domain.get("devices") if isinstance(domain, dict) and isinstance(domain.get("devices"), dict) else {}
    assert isinstance(devices, dict)
    causes = []
    if devices.get("hostDevices") is not None and not kv.gate(HOST_DEVICES_GATE):
        causes.append(
            Cause.at(
                (*root, "domain", "devices", "hostDevices"),
                f"the KubeVirt CR {kv.ref} does not enable the HostDevices feature gate, so KubeVirt refuses any "
                "hostDevices (on the field spec.HostDevices): add HostDevices to "
                "spec.configuration.developerConfiguration.featureGates, or remove the host devices",
                rule=HOST_DEVICES_GATE_OFF,
            )
        )
    if kv.permitted_resources is not None:
        permitted = kv.permitted_resources | {e.resourceName for e in ctx.config.passthrough.permittedDevices}
        for list_name, kind in (("gpus", "GPU"), ("hostDevices", "HostDevice")):
            entries = devices.get(list_name)
            for i, entry in enumerate(entries if isinstance(entries, list) else []):
                name = entry.get("deviceName") if isinstance(entry, dict) else None
                if not isinstance(name, str) or not name or name in permitted:
                    continue
                causes.append(
                    Cause.at(
                        (*root, "domain", "devices", list_name, i, "deviceName"),
                        f"{name!r} is not among the KubeVirt CR {kv.ref}'s permittedHostDevices (pciHostDevices, "
                        f"mediatedDevices, usb), so KubeVirt would fail to render the launcher pod ('{kind} {name} "
                        "is not permitted in permittedHostDevices configuration'): add an entry with this "
                        "resourceName (externalResourceProvider: true for an external device plugin)",
                        "FieldValueNotSupported",
                        rule=DEVICE_NOT_PERMITTED,
                    )
                )
    return causes


# ----------------------------------------------------------------------------------------- the rules


def _findings(fails: list[tuple[str, Path, str]], ctx: Context) -> Findings:
    out = Findings()
    for rule, path, message in fails:
        cluster_finding(out, Cause.at(path, message, rule=rule), ctx, label=f"preflight ({rule})")
    return out


def _vmi_like(obj: dict[str, Any], spec: Any, root: Path, ctx: Context, what: str, placement: bool) -> Findings:
    snapshot = ctx.cluster
    if snapshot is None or not snapshot.usable:
        return Findings()
    findings = Findings(causes=_cr_rules(spec, root, ctx, snapshot))
    if placement:
        demand = vmi_demand(obj, spec, root, ctx, what)
        if demand is not None:
            findings.extend(_findings(fit_memo(demand, ctx, snapshot), ctx))
    return findings


def validate_vmi(obj: dict[str, Any], ctx: Context) -> Findings:
    return _vmi_like(obj, obj.get("spec"), VMI_ROOT, ctx, "this VMI", placement=True)


def validate_vm(obj: dict[str, Any], ctx: Context) -> Findings:
    spec, problem = vm_template_spec(obj)
    if problem is not None:  # the CPU rules answer 400
        return Findings()
    return _vmi_like(obj, spec, VM_ROOT, ctx, "this VM", placement=to_run(obj))


def validate_pod(obj: dict[str, Any], ctx: Context) -> Findings:
    snapshot = ctx.cluster
    if snapshot is None or not snapshot.usable:
        return Findings()
    demand, declared = pod_demand(obj, ctx)
    if not demand.dedicated and not declared:
        return Findings()
    return _findings(fit_memo(demand, ctx, snapshot), ctx)
