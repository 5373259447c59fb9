"""Presets, instance types and preferences found in ``review``'s input, applied before the rules run.

In a cluster KubeVirt fills in a VM or VMI before anything validates it, from objects the manifest only
names; ``review`` does the same with the ones it finds in its input (any file, any order), on a copy:

- **VirtualMachineInstancePresets** (``kubevirt.io/v1``, KubeVirt's presets mutator): a preset of the same
  namespace whose ``spec.selector`` (``matchLabels``, ``matchExpressions``) matches the VMI's labels (a VM's
  template labels) gives its ``spec.domain``: ``resources.requests``/``limits`` key by key, and ``cpu``,
  ``memory``, ``firmware``, ``clock``, ``features``, ``machine`` where the VMI has none. A preset that
  conflicts with the VMI (a different value for a field both set) is not applied, as KubeVirt skips it;
  the annotation ``virtualmachineinstancepresets.admission.kubevirt.io/exclude: "true"`` opts out.
- **VirtualMachine(Cluster)Instancetypes** (``instancetype.kubevirt.io``, KubeVirt's ``pkg/instancetype``
  expansion) named by a VM's ``spec.instancetype``: ``cpu.guest`` becomes sockets x cores x threads by the
  preference's ``preferredCPUTopology`` (default ``preferSockets``: N sockets of 1 core of 1 thread),
  ``dedicatedCPUPlacement``, ``isolateEmulatorThread``, ``numa``, ``realtime``, ``model``, ``maxSockets``
  go to ``domain.cpu``; ``memory.guest``, ``hugepages``, ``maxGuest`` to ``domain.memory``;
  ``ioThreadsPolicy``, ``gpus``, ``hostDevices``, ``nodeSelector``, ``schedulerName``, ``annotations``
  where KubeVirt puts them. A VM that also sets one of these itself is refused by KubeVirt
  (``instancetype.conflict``). The ``cx1`` "compute exclusive" types of common-instancetypes carry
  dedicated CPUs, an isolated emulator thread and hugepages, so a VM using one is a dedicated-CPU VM.
- **VirtualMachine(Cluster)Preferences** named by ``spec.preference``: only ``cpu.preferredCPUTopology``
  (and ``preferSpreadSocketToCoreRatio``) matter to the rules.

An instance type or preference the input does not hold is a note saying which checks could not run; a
denial for missing memory or CPUs gets a hint when a preset could have given them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from webhook.k8s.paths import Path, get
from webhook.k8s.paths import field as field_path
from webhook.manifests import InputError, Source, expand_paths, file_items, open_lines
from webhook.rules.base import Cause
from webhook.rules.registry import define

PRESET_APPLIED = define(
    "preset.applied",
    "a VirtualMachineInstancePreset of the input selected the object and was applied before the rules (a note)",
    field="`spec.domain`",
    page="review-and-deploy.md",
    kind="review",
)
PRESET_CONFLICT = define(
    "preset.conflict",
    "a preset selects the object but conflicts with it, so it is not applied, as KubeVirt skips it (a note)",
    field="`spec.domain`",
    page="review-and-deploy.md",
    kind="review",
)
INSTANCETYPE_APPLIED = define(
    "instancetype.applied",
    "the VM's instance type (and preference) from the input was expanded into its template before the rules (a note)",
    field="`spec.instancetype`",
    page="review-and-deploy.md",
    kind="review",
)
INSTANCETYPE_CONFLICT = define(
    "instancetype.conflict",
    "the VM sets a field its instance type sets (CPU topology, dedicated placement, memory guest, CPU/memory "
    "requests, ...): KubeVirt refuses it",
    field="the template field",
    page="review-and-deploy.md",
    kind="review",
)
INSTANCETYPE_NOT_FOUND = define(
    "instancetype.not-found",
    "the instance type is not in the input: the dedicated-CPU, topology, memory and hugepages checks could not "
    "run on what it gives (a note)",
    field="`spec.instancetype`",
    page="review-and-deploy.md",
    kind="review",
)
PREFERENCE_NOT_FOUND = define(
    "preference.not-found",
    "the preference is not in the input: its preferred CPU topology is not applied (a note)",
    field="`spec.preference`",
    page="review-and-deploy.md",
    kind="review",
)

PRESET = "VirtualMachineInstancePreset"
# what ``review --cluster`` lists besides the nodes: (group, version, plural, kind)
CLUSTER_RESOURCES = (
    ("instancetype.kubevirt.io", "v1beta1", "virtualmachineclusterinstancetypes", "VirtualMachineClusterInstancetype"),
    ("instancetype.kubevirt.io", "v1beta1", "virtualmachineinstancetypes", "VirtualMachineInstancetype"),
    ("instancetype.kubevirt.io", "v1beta1", "virtualmachineclusterpreferences", "VirtualMachineClusterPreference"),
    ("instancetype.kubevirt.io", "v1beta1", "virtualmachinepreferences", "VirtualMachinePreference"),
    ("kubevirt.io", "v1", "virtualmachineinstancepresets", PRESET),
)
INSTANCETYPE_KINDS = ("VirtualMachineInstancetype", "VirtualMachineClusterInstancetype")
PREFERENCE_KINDS = ("VirtualMachinePreference", "VirtualMachineClusterPreference")
KINDS = (PRESET, *INSTANCETYPE_KINDS, *PREFERENCE_KINDS)
EXCLUDE_ANNOTATION = "virtualmachineinstancepresets.admission.kubevirt.io/exclude"
PRESET_DOMAIN_FIELDS = ("cpu", "memory", "firmware", "clock", "features", "machine")
# the rules whose denial a preset could have avoided: no memory at all (cpu.memory-required), dedicated CPUs
# without memory (cpu.dedicated-without-memory) or without a CPU count (cpu.dedicated-without-cpu-count)
PRESET_AVOIDABLE = frozenset({"cpu.memory-required", "cpu.dedicated-without-memory", "cpu.dedicated-without-cpu-count"})
_MENTIONS = re.compile(
    r"""["']?kind["']?\s*:\s*["']?(?:VirtualMachineInstancePreset|VirtualMachine(?:Cluster)?(?:Instancetype|Preference))\b"""
)
# cx1 types of KubeVirt's common-instancetypes: dedicated CPUs, isolated emulator thread, 2Mi hugepages
COMPUTE_EXCLUSIVE = re.compile(r"^cx1\.")


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _name(obj: dict[str, Any]) -> str:
    return str(_meta(obj).get("name") or "")


def _namespace(obj: dict[str, Any]) -> str:
    return str(_meta(obj).get("namespace") or "")


def selector_matches(selector: Any, labels: dict[str, Any]) -> bool:
    """A LabelSelector against labels (an empty selector matches everything, as in KubeVirt's presets)."""
    if not isinstance(selector, dict):
        return False
    match = selector.get("matchLabels") or {}
    if not isinstance(match, dict) or any(labels.get(k) != v for k, v in match.items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, dict):
            return False
        key, op, values = str(expr.get("key")), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


@dataclass(slots=True)
class Expansions:
    """The presets, instance types and preferences of one input."""

    presets: list[dict[str, Any]] = field(default_factory=list)
    instancetypes: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)  # (kind, ns, name)
    preferences: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    where: str = ""  # " or the cluster" once the cluster's were listed (--cluster)

    @classmethod
    def scan(cls, paths: Sequence[str], stdin: TextIO, recursive: bool = False) -> Expansions:
        """Read the objects of these kinds from the input: each file is scanned line by line, and only one
        that mentions such a kind is parsed (``stdin`` must be seekable: it is read again for the review)."""
        out = cls()
        for path in expand_paths(paths, recursive):
            try:
                fh = open_lines(path, stdin)
            except InputError:
                continue  # the review pass reports it
            try:
                if any(_MENTIONS.search(line) for line in fh):
                    fh.seek(0)
                    for item in file_items(path, fh):
                        if isinstance(item, Source):
                            out.add(item.obj)
            except UnicodeDecodeError:
                pass  # the review pass reports it
            finally:
                if fh is not stdin:
                    fh.close()
        if "-" in paths:
            stdin.seek(0)
        return out

    def add(self, obj: dict[str, Any], *, replace: bool = True) -> None:
        """Keep ``obj`` if it is one of these kinds; with ``replace=False`` (the cluster's, under
        ``--cluster``) one of the same kind, namespace and name from the input wins."""
        kind = obj.get("kind")
        key = (str(kind), _namespace(obj), _name(obj))
        if kind == PRESET:
            if replace or not any((PRESET, _namespace(p), _name(p)) == key for p in self.presets):
                self.presets.append(obj)
        elif kind in INSTANCETYPE_KINDS and (replace or key not in self.instancetypes):
            self.instancetypes[key] = obj
        elif kind in PREFERENCE_KINDS and (replace or key not in self.preferences):
            self.preferences[key] = obj

    def __bool__(self) -> bool:
        return bool(self.presets or self.instancetypes or self.preferences)

    # --- the object ---------------------------------------------------------------------------------

    def expand(self, src: Source) -> tuple[dict[str, Any], list[Cause], list[Cause], list[str]]:
        """``(object to review, denying causes, notes, hints for a denial)`` for one VM or VMI."""
        obj = src.obj
        if src.kind not in ("VirtualMachine", "VirtualMachineInstance"):
            return obj, [], [], []
        causes: list[Cause] = []
        notes: list[Cause] = []
        if src.kind == "VirtualMachine":
            obj, causes, notes = self._instancetype(src)
            root: Path = ("spec", "template", "spec")
            labels = get(obj, ("spec", "template", "metadata", "labels")) or {}
        else:
            root = ("spec",)
            labels = get(obj, ("metadata", "labels")) or {}
        obj, more = self._presets(src, obj, root, labels if isinstance(labels, dict) else {})
        notes += more
        return obj, causes, notes, self._hints(src, root, labels if isinstance(labels, dict) else {})

    def _candidates(self, src: Source) -> Iterator[dict[str, Any]]:
        for preset in self.presets:
            if _namespace(preset) in ("", src.namespace) or not src.namespace:
                yield preset

    def _presets(
        self, src: Source, obj: dict[str, Any], root: Path, labels: dict[str, Any]
    ) -> tuple[dict[str, Any], list[Cause]]:
        notes: list[Cause] = []
        annotations = (
            _meta(obj).get("annotations") if root == ("spec",) else get(obj, (*root[:-1], "metadata", "annotations"))
        )
        if isinstance(annotations, dict) and str(annotations.get(EXCLUDE_ANNOTATION)).lower() == "true":
            return obj, notes
        matching = [p for p in self._candidates(src) if selector_matches(get(p, ("spec", "selector")), labels)]
        if not matching:
            return obj, notes
        obj = copy.deepcopy(obj) if obj is src.obj else obj
        domain_path = (*root, "domain")
        domain = get(obj, domain_path)
        if not isinstance(domain, dict):
            return obj, notes
        for preset in matching:
            given = get(preset, ("spec", "domain"))
            title = f"{PRESET} {_namespace(preset) + '/' if _namespace(preset) else ''}{_name(preset)}"
            if not isinstance(given, dict):
                continue
            conflicts = _preset_conflicts(domain, given)
            if conflicts:
                where = ", ".join(field_path((*domain_path, *c)) for c in conflicts)
                notes.append(
                    Cause(
                        field_path(domain_path),
                        f"{title} selects this object but is not applied: it conflicts on {where} (KubeVirt skips "
                        "a conflicting preset)",
                        rule=PRESET_CONFLICT,
                    )
                )
                continue
            _apply_preset(domain, given)
            if root == ("spec",):  # a VMI: KubeVirt's presets mutator marks it with the preset it applied
                annotations = obj.setdefault("metadata", {}).setdefault("annotations", {})
                if isinstance(annotations, dict):
                    annotations[f"virtualmachinepreset.kubevirt.io/{_name(preset)}"] = "kubevirt.io/v1"
            notes.append(
                Cause(
                    field_path(domain_path),
                    f"{title} applied (as KubeVirt would, before validation)",
                    rule=PRESET_APPLIED,
                )
            )
        return obj, notes

    def _hints(self, src: Source, root: Path, labels: dict[str, Any]) -> list[str]:
        """What a preset could have given a VMI denied for missing memory or CPUs."""
        hints = []
        for preset in self._candidates(src):
            selector = get(preset, ("spec", "selector"))
            if selector_matches(selector, labels):
                continue
            given = get(preset, ("spec", "domain")) or {}
            gives = [f for f in ("resources", "memory", "cpu") if isinstance(given, dict) and f in given]
            if gives:
                want = (selector or {}).get("matchLabels") if isinstance(selector, dict) else None
                hints.append(
                    f"{PRESET} {_name(preset)} gives domain.{', domain.'.join(gives)} but does not select this "
                    f"object: its selector wants labels {want or selector}"
                    + (" (on spec.template.metadata.labels)" if root != ("spec",) else "")
                )
        if not hints and not self.presets:
            hints.append(
                "if a VirtualMachineInstancePreset gives this object its memory or CPUs in your cluster, review the "
                "preset together with it (vm-admission review preset.yaml vm.yaml): KubeVirt applies presets "
                "before it validates"
            )
        return hints

    def _instancetype(self, src: Source) -> tuple[dict[str, Any], list[Cause], list[Cause]]:
        obj = src.obj
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return obj, [], []
        ref, pref_ref = spec.get("instancetype"), spec.get("preference")
        notes: list[Cause] = []
        preference = None
        if isinstance(pref_ref, dict) and pref_ref.get("name"):
            kind = str(pref_ref.get("kind") or "VirtualMachineClusterPreference")
            preference = self._find(self.preferences, kind, src.namespace, str(pref_ref["name"]))
            if preference is None:
                notes.append(
                    Cause(
                        "spec.preference",
                        f"{kind} {pref_ref['name']} is not in the input{self.where}: its preferred CPU topology is "
                        "not applied (the CPU checks assume preferSockets); review it together with the VM",
                        rule=PREFERENCE_NOT_FOUND,
                    )
                )
        if not isinstance(ref, dict) or not ref.get("name"):
            return obj, [], notes
        kind = str(ref.get("kind") or "VirtualMachineClusterInstancetype")
        name = str(ref["name"])
        instancetype = self._find(self.instancetypes, kind, src.namespace, name)
        if instancetype is None:
            exclusive = (
                " (a cx1 type: dedicated CPUs, an isolated emulator thread and hugepages, so this VM is a "
                "dedicated-CPU VM)"
                if COMPUTE_EXCLUSIVE.match(name)
                else ""
            )
            notes.append(
                Cause(
                    "spec.instancetype",
                    f"{kind} {name} is not in the input{self.where}{exclusive}: the dedicated-CPU, CPU topology, "
                    "memory and hugepages checks could not run on what it gives; review it together with the VM (e.g. "
                    f"kubectl get {kind.lower()} {name} -o yaml)",
                    rule=INSTANCETYPE_NOT_FOUND,
                )
            )
            return obj, [], notes
        obj = copy.deepcopy(obj)
        causes = _apply_instancetype(obj, instancetype, preference, f"{kind} {name}")
        notes.append(
            Cause("spec.instancetype", f"{kind} {name} applied (as KubeVirt expands it)", rule=INSTANCETYPE_APPLIED)
        )
        return obj, causes, notes

    @staticmethod
    def _find(
        table: dict[tuple[str, str, str], dict[str, Any]], kind: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        if "Cluster" in kind:
            return table.get((kind, "", name)) or next(
                (v for (k, _, n), v in table.items() if k == kind and n == name), None
            )
        return table.get((kind, namespace, name)) or next(
            (v for (k, ns, n), v in table.items() if k == kind and n == name and not (ns and namespace)), None
        )


def _preset_conflicts(domain: dict[str, Any], given: dict[str, Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for key in ("requests", "limits"):
        mine, theirs = get(domain, ("resources", key)), get(given, ("resources", key))
        if isinstance(mine, dict) and isinstance(theirs, dict):
            out += [("resources", key, r) for r, v in theirs.items() if r in mine and str(mine[r]) != str(v)]
    for name in PRESET_DOMAIN_FIELDS:
        if name in given and name in domain and domain[name] != given[name]:
            out.append((name,))
    return out


def _apply_preset(domain: dict[str, Any], given: dict[str, Any]) -> None:
    for key in ("requests", "limits"):
        theirs = get(given, ("resources", key))
        if isinstance(theirs, dict):
            resources = domain.setdefault("resources", {})
            mine = resources.setdefault(key, {}) if isinstance(resources, dict) else {}
            if isinstance(mine, dict):
                for r, v in theirs.items():
                    mine.setdefault(r, v)
    for name in PRESET_DOMAIN_FIELDS:
        if name in given and name not in domain:
            domain[name] = copy.deepcopy(given[name])


def topology(guest: int, preference: dict[str, Any] | None) -> dict[str, int]:
    """sockets/cores/threads for ``guest`` vCPUs by the preference's preferredCPUTopology."""
    spec = get(preference, ("spec",)) if preference is not None else None
    preferred = str(get(spec, ("cpu", "preferredCPUTopology")) or "preferSockets")
    choice = preferred.removeprefix("prefer").lower()
    if choice == "cores" or choice == "any":
        return {"sockets": 1, "cores": guest, "threads": 1}
    if choice == "threads":
        return {"sockets": 1, "cores": 1, "threads": guest}
    if choice == "spread":
        ratio = get(spec, ("preferSpreadSocketToCoreRatio",)) or 2
        if isinstance(ratio, int) and ratio > 0 and guest % ratio == 0:
            return {"sockets": guest // ratio, "cores": ratio, "threads": 1}
    return {"sockets": guest, "cores": 1, "threads": 1}


_CPU_FIELDS = {  # instancetype spec.cpu -> VMI domain.cpu
    "dedicatedCPUPlacement": "dedicatedCpuPlacement",
    "isolateEmulatorThread": "isolateEmulatorThread",
    "numa": "numa",
    "realtime": "realtime",
    "model": "model",
    "maxSockets": "maxSockets",
}
_MEMORY_FIELDS = ("guest", "hugepages", "maxGuest")


def _apply_instancetype(
    vm: dict[str, Any], instancetype: dict[str, Any], preference: dict[str, Any] | None, title: str
) -> list[Cause]:
    """Expand ``instancetype`` into ``vm``'s template in place; the conflicts KubeVirt refuses the VM for."""
    spec = instancetype.get("spec") if isinstance(instancetype.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    template = vm["spec"].get("template")
    if not isinstance(template, dict):
        return []
    tspec = template.setdefault("spec", {})
    domain = tspec.setdefault("domain", {}) if isinstance(tspec, dict) else None
    if not isinstance(domain, dict):
        return []
    base: Path = ("spec", "template", "spec", "domain")
    conflicts: list[Path] = []
    cpu_in, mem_in = spec.get("cpu"), spec.get("memory")
    cpu = domain.setdefault("cpu", {})
    memory = domain.setdefault("memory", {})
    resources = domain.get("resources") if isinstance(domain.get("resources"), dict) else {}
    assert isinstance(resources, dict)
    if isinstance(cpu_in, dict) and isinstance(cpu, dict):
        guest = cpu_in.get("guest")
        if isinstance(guest, int) and guest > 0:
            for key, value in topology(guest, preference).items():
                if key in cpu:
                    conflicts.append((*base, "cpu", key))
                cpu[key] = value
            for key in ("requests", "limits"):
                if isinstance(resources.get(key), dict) and "cpu" in resources[key]:
                    conflicts.append((*base, "resources", key, "cpu"))
        for theirs, mine in _CPU_FIELDS.items():
            if theirs in cpu_in:
                if mine in cpu:
                    conflicts.append((*base, "cpu", mine))
                cpu[mine] = copy.deepcopy(cpu_in[theirs])
    if isinstance(mem_in, dict) and isinstance(memory, dict):
        for key in _MEMORY_FIELDS:
            if key in mem_in:
                if key in memory:
                    conflicts.append((*base, "memory", key))
                memory[key] = copy.deepcopy(mem_in[key])
        if "guest" in mem_in:
            for key in ("requests", "limits"):
                if isinstance(resources.get(key), dict) and "memory" in resources[key]:
                    conflicts.append((*base, "resources", key, "memory"))
    if "ioThreadsPolicy" in spec:
        if "ioThreadsPolicy" in domain:
            conflicts.append((*base, "ioThreadsPolicy"))
        domain["ioThreadsPolicy"] = spec["ioThreadsPolicy"]
    devices = domain.setdefault("devices", {})
    for key in ("gpus", "hostDevices"):
        if isinstance(spec.get(key), list) and isinstance(devices, dict):
            if key in devices:
                conflicts.append((*base, "devices", key))
            devices[key] = copy.deepcopy(spec[key])
    for key in ("nodeSelector", "schedulerName"):
        if key in spec and isinstance(tspec, dict):
            if key in tspec:
                conflicts.append(("spec", "template", "spec", key))
            tspec[key] = copy.deepcopy(spec[key])
    if isinstance(spec.get("annotations"), dict):
        meta = template.setdefault("metadata", {})
        if isinstance(meta, dict):
            annotations = meta.setdefault("annotations", {})
            if isinstance(annotations, dict):
                for k, v in spec["annotations"].items():
                    annotations.setdefault(k, v)
    if not cpu:
        domain.pop("cpu", None)
    if not memory:
        domain.pop("memory", None)
    return [
        Cause(
            field_path(path),
            f"conflicts with the {title} the VM selects: KubeVirt refuses a VM that sets what its instance type "
            "sets; remove it from the VM (or choose another instance type)",
            rule=INSTANCETYPE_CONFLICT,
        )
        for path in conflicts
    ]
