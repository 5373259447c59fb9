"""Passthrough devices (docs/passthrough.md): PCI ``vendor:device`` declarations become extended resources.

A Pod, VMI or VM template declares the PCI devices it wants, by ID, in one or both of two forms:

- the annotation ``vm-admission.io/passthrough: "10de:1eb8, 8086:10c9=2"`` (on a VM: on the template's
  metadata), the form that survives KubeVirt's CRDs in a real cluster;
- ``spec.domain.devices.passthrough: [{type: pci, vendor: "10de", device: "1eb8", count: 1}]`` on VMIs and VM
  templates (the unmerged KubeVirt design's form; real CRDs prune or reject it).

Each device becomes the extended resource a device plugin advertises for it: the configured
``passthrough.permittedDevices`` name, else ``<resourcePrefix>/<vendor>_<device>`` (the VFIO device plugin's
naming, which cannot contain ``:``). A Pod gets requests and limits on its target container; a VMI or VM
template gets one ``hostDevices`` entry per device instance, which KubeVirt renders into the same requests on
the launcher pod's ``compute`` container and attaches through VFIO.

One function, :func:`check`, parses and checks a declaration; the mutators apply its plan and the validators
return its causes, so both webhooks deny a bad declaration with the same causes. The declarations stay on the
object: they are the source of truth that makes a second pass a no-op.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from webhook.config import Passthrough
from webhook.k8s import quantity
from webhook.k8s.paths import Path
from webhook.k8s.paths import field as field_path
from webhook.rules.base import Cause, Context, Findings, json_type
from webhook.rules.fields import map_at
from webhook.rules.registry import define

MALFORMED = define(
    "passthrough.malformed",
    "a declaration that does not parse (entry syntax, IDs not 4 hex digits, unknown keys, wrong types)",
    field="the declaration",
    page="passthrough.md",
)
UNSUPPORTED_TYPE = define(
    "passthrough.unsupported-type",
    "a device type other than `pci` (FieldValueNotSupported)",
    field="`spec.domain.devices.passthrough[i]`",
    page="passthrough.md",
    replaces="passthrough.type",
)
COUNT_OUT_OF_RANGE = define(
    "passthrough.count-out-of-range",
    "a count outside 1..`passthrough.maxCount` (also summed over repeats)",
    field="the declaration",
    page="passthrough.md",
    replaces="passthrough.count",
)
CONTAINER_NOT_FOUND = define(
    "passthrough.container-not-found",
    "the target container does not exist, or the pod has none (FieldValueNotFound)",
    field="the declaration",
    page="passthrough.md",
    replaces="passthrough.container",
)
CONFLICTING_REQUEST = define(
    "passthrough.conflicting-request",
    "an existing request/limit or `hostDevices` entry disagrees with the declaration",
    field="the declaration",
    page="passthrough.md",
    replaces="passthrough.conflict",
)
NOT_PERMITTED = define(
    "passthrough.not-permitted",
    "with `permittedOnly`, a device or deviceName not in `passthrough.permittedDevices`",
    field="the declaration, or `hostDevices[i].deviceName` / `gpus[i].deviceName`",
    page="passthrough.md",
    replaces="passthrough.permitted",
)

ANNOTATION = "vm-admission.io/passthrough"
CONTAINER_ANNOTATION = "vm-admission.io/passthrough-container"
DEFAULT_CONTAINER = "compute"
PCI = "pci"
ENTRY_KEYS = frozenset({"type", "vendor", "device", "count"})

_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_ANNOTATION_ENTRY = re.compile(r"(?P<vendor>[^:=]*):(?P<device>[^:=]*)(?:=(?P<count>.*))?")
_WHITESPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"[0-9]+")
_MAX_COUNT_DIGITS = 6  # int() of a huge digit string is slow (and limited); any such count is out of range
_CACHED_LENGTH = 256  # annotation values up to this length are parsed once (lru cache)
_SHOWN = 40  # characters of a user's value quoted back in a message

# Where the declaration lives, per kind: (metadata path, spec path).
_LAYOUT: dict[str, tuple[Path, Path]] = {
    "Pod": (("metadata",), ("spec",)),
    "VirtualMachineInstance": (("metadata",), ("spec",)),
    "VirtualMachine": (("spec", "template", "metadata"), ("spec", "template", "spec")),
}


@dataclass(slots=True, init=False)
class Device:
    """One declared device, merged over all its declarations (counts summed)."""

    vendor: str  # 4 lower-case hex digits
    device: str
    count: int
    declared_at: Path  # the first declaration's field: causes about the device go there
    resource: str

    def __init__(self, vendor: str, device: str, count: int, declared_at: Path, resource: str = "") -> None:
        # spelled out so that mypyc compiles it (see rules.base.Findings)
        self.vendor, self.device, self.count = vendor, device, count
        self.declared_at, self.resource = declared_at, resource

    @property
    def selector(self) -> str:
        return f"{self.vendor}:{self.device}"

    def host_device_name(self, index: int) -> str:
        return f"pt-{self.vendor}-{self.device}-{index}"


@dataclass(slots=True, init=False)
class Plan:
    """What :func:`check` found: the devices, the problems, and where the changes go."""

    findings: Findings
    devices: list[Device]
    spec: Path
    container: Path | None  # Pod: the target container's path
    host_devices: list[Any]  # VMI/VM: the existing hostDevices entries

    def __init__(self, spec: Path = ()) -> None:  # spelled out so that mypyc compiles it (rules.base.Findings)
        self.findings, self.devices, self.spec, self.container, self.host_devices = Findings(), [], spec, None, []

    @property
    def ok(self) -> bool:
        return not self.findings.causes and self.findings.bad_request is None

    def by_resource(self) -> dict[str, list[Device]]:
        """Devices grouped by resource name (permittedDevices may map several selectors to one resource)."""
        groups: dict[str, list[Device]] = {}
        for dev in self.devices:
            groups.setdefault(dev.resource, []).append(dev)
        return groups


def _total(group: list[Device]) -> int:
    """How many devices of one resource the declarations ask for."""
    total = 0
    for dev in group:
        total += dev.count
    return total


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")


def _map_at(obj: dict[str, Any], path: Path, findings: Findings) -> dict[str, Any] | None:
    """:func:`~webhook.rules.fields.map_at`, its problem kept as the bad request (the first one wins)."""
    found, problem = map_at(obj, path)
    if problem is not None and findings.bad_request is None:
        findings.bad_request = problem
    return found


def _count(raw: str, where: str, max_count: int) -> tuple[int | None, str | None]:
    """Parse an annotation count: (count, None) or (None, problem)."""
    if not _DIGITS.fullmatch(raw):
        return None, f"{where}: count {_shown(raw)} is not a whole number"
    if len(raw.lstrip("0")) > _MAX_COUNT_DIGITS:
        return None, f"{where}: count {_shown(raw)} is out of range: use 1 to {max_count} (passthrough.maxCount)"
    return int(raw), None


def _range_problem(count: int, where: str, max_count: int) -> str | None:
    if 1 <= count <= max_count:
        return None
    return f"{where}: count {count} is out of range: use 1 to {max_count} (passthrough.maxCount)"


Entries = tuple[tuple[str, str, int], ...]


def parse_annotation(value: Any, at: Path, max_count: int) -> tuple[Entries, tuple[Cause, ...]]:
    """Parse ``"10de:1eb8, 8086:10c9=2"``: whitespace ignored, ``=N`` a count (default 1), "" declares nothing."""
    if not isinstance(value, str):
        return (), (
            Cause.at(
                at,
                f'must be a string such as "10de:1eb8, 8086:10c9=2", got {json_type(value)}',
                rule=MALFORMED,
            ),
        )
    if len(value) <= _CACHED_LENGTH:
        return _parse_annotation_cached(value, at, max_count)
    return _parse_annotation(value, at, max_count)


def _parse_annotation(value: str, at: Path, max_count: int) -> tuple[Entries, tuple[Cause, ...]]:
    text = _WHITESPACE.sub("", value)
    if not text:
        return (), ()
    found: list[tuple[str, str, int]] = []
    causes: list[Cause] = []
    for n, entry in enumerate(text.split(","), start=1):
        where = f"entry {n} {_shown(entry)}"
        if not entry:
            causes.append(
                Cause.at(
                    at,
                    f"entry {n} is empty: separate VENDOR:DEVICE[=COUNT] entries by one comma",
                    rule=MALFORMED,
                )
            )
            continue
        m = _ANNOTATION_ENTRY.fullmatch(entry)
        if m is None:
            causes.append(
                Cause.at(
                    at,
                    f"{where} is malformed: write VENDOR:DEVICE[=COUNT], e.g. 10de:1eb8=2",
                    rule=MALFORMED,
                )
            )
            continue
        vendor, device, raw_count = m["vendor"], m["device"], m["count"]
        problems = [
            (f"{where}: {part} {_shown(hex_id)} is not 4 hex digits", MALFORMED)
            for part, hex_id in (("vendor", vendor), ("device", device))
            if not _HEX4.fullmatch(hex_id)
        ]
        count: int | None = 1
        if raw_count is not None:
            count, problem = _count(raw_count, where, max_count)
            if problem is None and count is not None:
                problem = _range_problem(count, where, max_count)
            if problem is not None:
                problems.append((problem, COUNT_OUT_OF_RANGE if "out of range" in problem else MALFORMED))
        if problems:
            causes.extend(Cause.at(at, p, rule=rule) for p, rule in problems)
        elif count is not None:
            found.append((vendor.lower(), device.lower(), count))
    return tuple(found), tuple(causes)


# Every launcher pod of a VM carries the same short declaration: parse each distinct one once. Results are
# immutable (tuples, frozen causes); long values are not cached, so the cache's memory stays small.
_parse_annotation_cached = lru_cache(maxsize=1024)(_parse_annotation)


def parse_entry(entry: Any, at: Path, max_count: int) -> tuple[tuple[str, str, int] | None, list[Cause]]:
    """Parse one ``spec.domain.devices.passthrough[i]`` entry: ``{type: pci, vendor, device, count}``."""
    if not isinstance(entry, dict):
        return None, [
            Cause.at(
                at,
                f"must be a map {{type, vendor, device, count}}, got {json_type(entry)}",
                rule=MALFORMED,
            )
        ]
    causes: list[Cause] = []
    unknown = sorted(_shown(str(k)) for k in entry if k not in ENTRY_KEYS)
    if unknown:
        causes.append(
            Cause.at(
                at,
                f"unknown key(s) {', '.join(unknown)}: an entry has type, vendor, device, count",
                rule=MALFORMED,
            )
        )
    kind = entry.get("type")
    if kind is not None and kind != PCI:
        causes.append(
            Cause.at(
                at,
                f'type {kind!r} is not supported: supported values: "{PCI}"',
                "FieldValueNotSupported",
                rule=UNSUPPORTED_TYPE,
            )
        )
    ids: list[str] = []
    for part in ("vendor", "device"):
        raw = entry.get(part)
        if raw is None or raw == "":
            causes.append(
                Cause.at(
                    at,
                    f'{part} is required: 4 hex digits, e.g. "10de"',
                    "FieldValueRequired",
                    rule=MALFORMED,
                )
            )
        elif not isinstance(raw, str):
            causes.append(
                Cause.at(
                    at,
                    f"{part} must be a string of 4 hex digits (quote it in YAML), got {raw!r}",
                    rule=MALFORMED,
                )
            )
        elif not _HEX4.fullmatch(raw):
            causes.append(Cause.at(at, f"{part} {_shown(raw)} is not 4 hex digits", rule=MALFORMED))
        else:
            ids.append(raw.lower())
    raw_count = entry.get("count", 1)
    count = 1
    if isinstance(raw_count, bool) or not isinstance(raw_count, int):
        causes.append(Cause.at(at, f"count must be a whole number, got {raw_count!r}", rule=MALFORMED))
    else:
        count = raw_count
        problem = _range_problem(count, "count", max_count)
        if problem is not None:
            causes.append(Cause.at(at, problem.removeprefix("count: "), rule=COUNT_OUT_OF_RANGE))
    if causes:
        return None, causes
    return (ids[0], ids[1], count), []


def _declarations(obj: dict[str, Any], kind: str, cfg: Passthrough, plan: Plan) -> None:
    """Read both declaration forms into ``plan.devices`` (merged, counts summed), causes into the plan."""
    meta_path, spec_path = _LAYOUT[kind]
    found = plan.findings
    declared: list[tuple[str, str, int, Path]] = []
    meta = _map_at(obj, meta_path, found)
    annotations = meta.get("annotations") if meta is not None else None
    if annotations is not None and not isinstance(annotations, dict):
        found.bad_request = f"{field_path((*meta_path, 'annotations'))}: must be a map of strings"
    elif annotations is not None and ANNOTATION in annotations:
        at = (*meta_path, "annotations", ANNOTATION)
        entries, causes = parse_annotation(annotations[ANNOTATION], at, cfg.maxCount)
        found.causes.extend(causes)
        declared.extend((v, d, c, at) for v, d, c in entries)
    if kind != "Pod":
        devices = _map_at(obj, (*spec_path, "domain", "devices"), found)
        listed = devices.get("passthrough") if devices is not None else None
        list_at = (*spec_path, "domain", "devices", "passthrough")
        if listed is not None and not isinstance(listed, list):
            found.causes.append(
                Cause.at(
                    list_at,
                    f"must be a list of {{type, vendor, device, count}}, got {json_type(listed)}",
                    rule=MALFORMED,
                )
            )
        elif listed is not None:
            for i, item in enumerate(listed):
                at = (*list_at, i)
                parsed, entry_causes = parse_entry(item, at, cfg.maxCount)
                found.causes.extend(entry_causes)
                if parsed is not None:
                    declared.append((*parsed, at))
    merged: dict[tuple[str, str], Device] = {}
    for vendor, device, count, at in declared:
        if (vendor, device) in merged:
            merged[(vendor, device)].count += count
        else:
            merged[(vendor, device)] = Device(vendor, device, count, at)
    for dev in merged.values():
        if dev.count > cfg.maxCount:
            found.causes.append(
                Cause.at(
                    dev.declared_at,
                    f"{dev.selector} is declared {dev.count} times in total (repeated declarations add up), "
                    f"more than passthrough.maxCount ({cfg.maxCount})",
                    rule=COUNT_OUT_OF_RANGE,
                )
            )
        named = cfg.resource_for(dev.vendor, dev.device) if cfg.permittedDevices else None
        if named is None and cfg.permittedOnly:
            allowed = ", ".join(e.selector for e in cfg.permittedDevices) or "none"
            found.causes.append(
                Cause.at(
                    dev.declared_at,
                    f"device {dev.selector} is not in passthrough.permittedDevices (permitted: {allowed})",
                    "FieldValueNotSupported",
                    rule=NOT_PERMITTED,
                )
            )
        dev.resource = named or f"{cfg.resourcePrefix}/{dev.vendor}_{dev.device}"
        plan.devices.append(dev)


def _check_pod(obj: dict[str, Any], plan: Plan) -> None:
    """Find the target container; an existing request or limit of another count is a conflict."""
    found = plan.findings
    if not plan.devices:
        return
    at = plan.devices[0].declared_at
    spec = _map_at(obj, ("spec",), found)
    containers = spec.get("containers") if spec is not None else None
    if containers is not None and not isinstance(containers, list):
        found.bad_request = f"spec.containers: must be a list, got {json_type(containers)}"
        return
    if found.bad_request is not None:
        return
    containers = containers or []
    names = [c.get("name") if isinstance(c, dict) else None for c in containers]
    annotations = obj["metadata"]["annotations"]  # present: the declaration is an annotation
    wanted = annotations.get(CONTAINER_ANNOTATION)
    if wanted is not None:
        if wanted not in names:
            found.causes.append(
                Cause.at(
                    at,
                    f"target container {wanted!r} (annotation {CONTAINER_ANNOTATION}) does not exist; "
                    f"containers: {', '.join(str(n) for n in names) or 'none'}",
                    "FieldValueNotFound",
                    rule=CONTAINER_NOT_FOUND,
                )
            )
            return
        index = names.index(wanted)
    elif DEFAULT_CONTAINER in names:
        index = names.index(DEFAULT_CONTAINER)
    elif containers:
        index = 0
    else:
        found.causes.append(
            Cause.at(
                at,
                "the pod has no container to give the devices to",
                "FieldValueNotFound",
                rule=CONTAINER_NOT_FOUND,
            )
        )
        return
    plan.container = ("spec", "containers", index)
    container = containers[index]
    if not isinstance(container, dict):
        found.bad_request = f"{field_path(plan.container)}: must be an object, got {json_type(container)}"
        return
    resources = container.get("resources")
    if resources is not None and not isinstance(resources, dict):
        found.bad_request = (
            f"{field_path((*plan.container, 'resources'))}: must be an object, got {json_type(resources)}"
        )
        return
    groups = plan.by_resource()
    for part in ("requests", "limits"):
        values = resources.get(part) if resources is not None else None
        part_path = (*plan.container, "resources", part)
        if values is not None and not isinstance(values, dict):
            found.bad_request = f"{field_path(part_path)}: must be a map of quantities, got {json_type(values)}"
            continue
        for resource, group in groups.items():
            existing = values.get(resource) if values is not None else None
            total = _total(group)
            if existing is not None and quantity.try_parse(existing) != total:
                asked = " + ".join(f"{dev.count} of {dev.selector}" for dev in group)
                found.causes.append(
                    Cause.at(
                        group[0].declared_at,
                        f"{field_path((*part_path, resource))} is {existing!r} but the declaration asks for "
                        f"{asked}: make them equal or drop one of them",
                        rule=CONFLICTING_REQUEST,
                    )
                )


def _check_vmi(obj: dict[str, Any], cfg: Passthrough, plan: Plan) -> None:
    """Existing hostDevices must agree with the declaration; with permittedOnly every deviceName is permitted."""
    found = plan.findings
    devices = _map_at(obj, (*plan.spec, "domain", "devices"), found)
    lists: dict[str, list[Any]] = {}
    for name in ("hostDevices", "gpus"):
        value = devices.get(name) if devices is not None else None
        if value is not None and not isinstance(value, list):
            at = field_path((*plan.spec, "domain", "devices", name))
            found.bad_request = f"{at}: must be a list, got {json_type(value)}"
            return
        lists[name] = value or []
    plan.host_devices = lists["hostDevices"]
    if cfg.permittedOnly:
        permitted = {e.resourceName for e in cfg.permittedDevices}
        for name, entries in lists.items():
            for i, entry in enumerate(entries):
                device_name = entry.get("deviceName") if isinstance(entry, dict) else None
                if isinstance(device_name, str) and device_name not in permitted:
                    found.causes.append(
                        Cause.at(
                            (*plan.spec, "domain", "devices", name, i, "deviceName"),
                            f"{device_name!r} is not a resource of passthrough.permittedDevices "
                            f"(permitted: {', '.join(sorted(permitted)) or 'none'}); KubeVirt would only fail "
                            "later, when it renders the pod",
                            "FieldValueNotSupported",
                            rule=NOT_PERMITTED,
                        )
                    )
    prefixes = tuple(f"pt-{dev.vendor}-{dev.device}-" for dev in plan.devices)
    for dev in plan.devices:
        ours = {dev.host_device_name(i) for i in range(dev.count)}
        prefix = f"pt-{dev.vendor}-{dev.device}-"
        for name, entries in lists.items():
            for i, entry in enumerate(entries):
                if not isinstance(entry, dict):
                    continue
                entry_name, device_name = entry.get("name"), entry.get("deviceName")
                where = field_path((*plan.spec, "domain", "devices", name, i))
                if name == "hostDevices" and entry_name in ours:
                    if device_name != dev.resource:
                        found.causes.append(
                            Cause.at(
                                dev.declared_at,
                                f"{where} ({entry_name}) has deviceName {device_name!r} but {dev.selector} maps to "
                                f"{dev.resource!r}: remove the entry to let it be recreated",
                                rule=CONFLICTING_REQUEST,
                            )
                        )
                elif name == "hostDevices" and isinstance(entry_name, str) and entry_name.startswith(prefix):
                    found.causes.append(
                        Cause.at(
                            dev.declared_at,
                            f"{where} ({entry_name}) is beyond the declared count {dev.count} of {dev.selector}: "
                            "remove the entry or raise the count",
                            rule=CONFLICTING_REQUEST,
                        )
                    )
                elif device_name == dev.resource and not (
                    name == "hostDevices" and isinstance(entry_name, str) and entry_name.startswith(prefixes)
                ):
                    found.causes.append(
                        Cause.at(
                            dev.declared_at,
                            f"{where} ({entry_name}) already requests {dev.resource!r}, which {dev.selector} is "
                            "declared as: declare the device once, either way",
                            rule=CONFLICTING_REQUEST,
                        )
                    )


def check(obj: dict[str, Any], ctx: Context) -> Plan:
    """Parse and check ``obj``'s declarations: the one function both webhooks use for a kind."""
    cfg = ctx.config.passthrough
    plan = Plan(spec=_LAYOUT[ctx.kind][1])
    if ctx.kind == "VirtualMachine" and _map_at(obj, ("spec", "template"), plan.findings) is None:
        return plan
    _declarations(obj, ctx.kind, cfg, plan)
    if plan.findings.bad_request is not None:
        return plan
    if ctx.kind == "Pod":
        _check_pod(obj, plan)
    else:
        _check_vmi(obj, cfg, plan)
    return plan


def _mutate_pod(obj: dict[str, Any], ctx: Context) -> Findings:
    plan = check(obj, ctx)
    if not plan.ok or ctx.patch is None or plan.container is None:
        return plan.findings
    resources = obj["spec"]["containers"][plan.container[-1]].get("resources") or {}
    groups = plan.by_resource()
    for part in ("requests", "limits"):
        values = resources.get(part)
        for resource, group in groups.items():
            path = (*plan.container, "resources", part, resource)
            total = str(_total(group))
            if values is None:
                ctx.patch.set(path, total)  # creates resources/part as needed
            elif resource not in values:
                ctx.patch.put(values, path, total)
    return plan.findings


def _mutate_vmi(obj: dict[str, Any], ctx: Context) -> Findings:
    plan = check(obj, ctx)
    if not plan.ok or ctx.patch is None:
        return plan.findings
    existing = {e.get("name") for e in plan.host_devices if isinstance(e, dict)}
    path = (*plan.spec, "domain", "devices", "hostDevices")
    for dev in plan.devices:
        for i in range(dev.count):
            if dev.host_device_name(i) not in existing:
                ctx.patch.append(path, {"name": dev.host_device_name(i), "deviceName": dev.resource})
        names = dev.host_device_name(0)
        if dev.count > 1:
            names += f" ... {dev.host_device_name(dev.count - 1)}"
        if ctx.cluster is not None and ctx.cluster.kubevirt is not None:
            # the KubeVirt CR is known: preflight.device-not-permitted and preflight.host-devices-gate-off
            # say exactly what is missing, if anything
            continue
        plan.findings.warnings.append(
            f"{field_path(path)}: {dev.selector} is requested as {names} (deviceName {dev.resource}); KubeVirt "
            "attaches it only with its HostDevices feature gate enabled and a permittedHostDevices.pciHostDevices "
            f'entry {{pciVendorSelector: "{dev.selector.upper()}", resourceName: "{dev.resource}", '
            "externalResourceProvider: true}"
        )
    return plan.findings


def concerns_pod(pod: dict[str, Any]) -> bool:
    """Whether the passthrough rules have anything to say about ``pod`` (False lets the engine skip them).

    They speak only of a declaration, or of metadata or annotations that are not maps (a bad request).
    """
    meta = pod.get("metadata")
    if meta is None:
        return False
    if not isinstance(meta, dict):
        return True
    annotations = meta.get("annotations")
    if annotations is None:
        return False
    return not isinstance(annotations, dict) or ANNOTATION in annotations


def mutate_pod(obj: dict[str, Any], ctx: Context) -> Findings:
    """Give the target container requests and limits for each declared device."""
    return _mutate_pod(obj, ctx)


def mutate_vmi(obj: dict[str, Any], ctx: Context) -> Findings:
    """Append one ``hostDevices`` entry per declared device instance."""
    return _mutate_vmi(obj, ctx)


def mutate_vm(obj: dict[str, Any], ctx: Context) -> Findings:
    """The VMI translation on ``spec.template``."""
    return _mutate_vmi(obj, ctx)


def checked(obj: dict[str, Any], ctx: Context) -> Plan:
    """:func:`check`, once per validation review (the preflight reads the same plan)."""
    plan = ctx.passthrough_plan
    if plan is None:
        plan = ctx.passthrough_plan = check(obj, ctx)
    return plan


def validate_pod(obj: dict[str, Any], ctx: Context) -> Findings:
    return checked(obj, ctx).findings


def validate_vmi(obj: dict[str, Any], ctx: Context) -> Findings:
    return checked(obj, ctx).findings


def validate_vm(obj: dict[str, Any], ctx: Context) -> Findings:
    return checked(obj, ctx).findings
