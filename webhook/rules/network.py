"""Network interfaces (docs/network.md; the rules: docs/rules.md).

Two jobs, on VMI CREATE and VM CREATE/UPDATE (VM paths under ``spec.template.spec``):

- **Consistency** (denials, KubeVirt's field paths and cause types): interfaces and networks match one to one
  by name, names are unique, each interface has exactly one binding, ``state`` is "", ``up``, ``down`` or
  ``absent``; ``absent`` only on bridge interfaces on secondary (Multus, non-default) networks; SR-IOV takes
  no ``up``/``down``. A spec with neither interfaces nor networks is fine: KubeVirt adds its default.
- **Hotplug guidance** (warnings, never denials) on UPDATE of a *running* VM: KubeVirt applies an edited
  template to the running VMI only for a few changes (plugging a bridge or SR-IOV interface on a Multus
  network, ``state: absent`` on a bridge interface, ``up``/``down``). Everything else is accepted and leaves
  the VM with a ``RestartRequired`` condition few people read, so we say so, per interface, and what to do.

Rules that depend on KubeVirt's cluster configuration, which a webhook cannot see, are left to KubeVirt:
bridge binding on the pod network (``interfaces.bridge-on-pod-network``, reserved) and the PasstBinding feature
gate (the first half of ``interfaces.passt-not-pod-network``).

Values of the wrong JSON type (``interfaces: {}``, an entry that is a string, ``bridge: true``) make the object
unreadable: the rule returns ``Findings(bad_request=...)`` naming every such field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from webhook.k8s.multus import parse_mac
from webhook.k8s.paths import Path, get
from webhook.k8s.paths import field as field_path
from webhook.rules.base import Cause, Context, Findings, json_type, to_run
from webhook.rules.fields import VM_ROOT, VMI_ROOT, Reader, vm_template_spec, wrong_type
from webhook.rules.registry import define

UNKNOWN_STATE = define(
    "interfaces.unknown-state",
    "unknown interface state",
    field="`spec.domain.devices.interfaces[i].state`",
    page="network.md#consistency-rules-denials",
    replaces="network.N1",
)
SRIOV_LINK_STATE = define(
    "interfaces.sriov-link-state",
    "`up`/`down` on an SR-IOV interface",
    field="`spec.domain.devices.interfaces[i].state`",
    page="network.md#consistency-rules-denials",
    replaces="network.N2",
)
ABSENT_NOT_BRIDGE = define(
    "interfaces.absent-not-bridge",
    "`absent` on a non-bridge interface",
    field="`spec.domain.devices.interfaces[i].state`",
    page="network.md#consistency-rules-denials",
    replaces="network.N3",
)
ABSENT_DEFAULT_NETWORK = define(
    "interfaces.absent-default-network",
    "`absent` on the default (pod or Multus default) network",
    field="`spec.domain.devices.interfaces[i].state`",
    page="network.md#consistency-rules-denials",
    replaces="network.N4",
)
BINDING_COUNT = define(
    "interfaces.binding-count",
    "not exactly one binding (slirp/macvtap/old passt count as none)",
    field="`spec.domain.devices.interfaces[i]`",
    page="network.md#consistency-rules-denials",
    replaces="network.N5",
)
MASQUERADE_NOT_POD_NETWORK = define(
    "interfaces.masquerade-not-pod-network",
    "masquerade on a non-pod network",
    field="`spec.domain.devices.interfaces[i].name`",
    page="network.md#consistency-rules-denials",
    replaces="network.N6",
)
MASQUERADE_RESERVED_MAC = define(
    "interfaces.masquerade-reserved-mac",
    "masquerade with KubeVirt's reserved MAC",
    field="`spec.domain.devices.interfaces[i].macAddress`",
    page="network.md#consistency-rules-denials",
    replaces="network.N7",
)
BRIDGE_ON_POD_NETWORK = define(
    "interfaces.bridge-on-pod-network",
    "reserved: bridge on the pod network depends on KubeVirt's config; left to KubeVirt",
    field="`spec.domain.devices.interfaces[i].name`",
    page="network.md#consistency-rules-denials",
    kind="reserved",
    replaces="network.N8",
)
PASST_NOT_POD_NETWORK = define(
    "interfaces.passt-not-pod-network",
    "passtBinding on a non-pod network (its feature gate is left to KubeVirt)",
    field="`spec.domain.devices.interfaces[i].name`",
    page="network.md#consistency-rules-denials",
    replaces="network.N9",
)
NETWORK_WITHOUT_INTERFACE = define(
    "interfaces.network-without-interface",
    "a network without an interface (FieldValueRequired)",
    field="`spec.networks[i].name`",
    page="network.md#consistency-rules-denials",
    replaces="network.N10",
)
INTERFACE_WITHOUT_NETWORK = define(
    "interfaces.interface-without-network",
    "an interface without a network",
    field="`spec.domain.devices.interfaces[i].name`",
    page="network.md#consistency-rules-denials",
    replaces="network.N11",
)
DUPLICATE_NETWORK = define(
    "interfaces.duplicate-network",
    "duplicate network name",
    field="`spec.networks[i].name`",
    page="network.md#consistency-rules-denials",
    replaces="network.N12",
)
DUPLICATE_INTERFACE = define(
    "interfaces.duplicate-interface",
    "duplicate interface name",
    field="`spec.domain.devices.interfaces[i].name`",
    page="network.md#consistency-rules-denials",
    replaces="network.N13",
)
SEVERAL_POD_NETWORKS = define(
    "interfaces.several-pod-networks",
    "more than one pod network",
    field="`spec.interfaces` (sic, KubeVirt's path)",
    page="network.md#consistency-rules-denials",
    replaces="network.N14",
)
SEVERAL_DEFAULT_NETWORKS = define(
    "interfaces.several-default-networks",
    "more than one Multus default, or a pod network beside a Multus default",
    field="`spec.networks`",
    page="network.md#consistency-rules-denials",
    replaces="network.N15",
)
NETWORK_TYPE_COUNT = define(
    "interfaces.network-type-count",
    "a network with no type or several (FieldValueRequired)",
    field="`spec.networks[i]`",
    page="network.md#consistency-rules-denials",
    replaces="network.N16",
)
MULTUS_WITHOUT_NETWORK_NAME = define(
    "interfaces.multus-without-network-name",
    "Multus without `networkName` (first only)",
    field="`spec.networks[i]`",
    page="network.md#consistency-rules-denials",
    replaces="network.N17",
)
BAD_INTERFACE_FIELD = define(
    "interfaces.bad-interface-field",
    "bad interface name, unsupported model, malformed MAC",
    field="`...interfaces[i].{name,model,macAddress}`",
    page="network.md#consistency-rules-denials",
    replaces="network.N18",
)
DISCONTINUED_BINDING = define(
    "interfaces.discontinued-binding",
    "discontinued binding (VMI and VM CREATE only)",
    field="`...interfaces[i].{slirp,passt,macvtap}`",
    page="network.md#consistency-rules-denials",
    replaces="network.N19",
)


# The binding methods that count as one (KubeVirt's binding-count rule, interfaces.binding-count). ``slirp``,
# ``passt`` (the old field) and ``macvtap`` were discontinued in KubeVirt v1.3: they survive in the API as
# deprecated aliases but count as no binding at all, so an interface with only one of them fails
# interfaces.binding-count on every operation (and interfaces.discontinued-binding on CREATE).
BINDINGS = ("bridge", "masquerade", "sriov", "passtBinding", "binding")
DISCONTINUED = {"slirp": "slirp", "passt": "passt (the old field; use passtBinding)", "macvtap": "macvtap"}
SOURCES = ("pod", "multus", "resourceClaim")
STATES = ("", "up", "down", "absent")
RESERVED_MAC = "02:00:00:00:00:00"  # KubeVirt's in-pod bridge for masquerade
MODELS = ("e1000", "e1000e", "ne2k_pci", "pcnet", "rtl8139", "virtio")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
HOTPLUG_BINDINGS = ("bridge", "sriov")
MAX_WARNING = 200


@dataclass(frozen=True, slots=True)
class Iface:
    """One ``domain.devices.interfaces[i]`` entry, read."""

    index: int
    raw: dict[str, Any]
    name: str
    state: str  # "" when unset; may be any string (interfaces.unknown-state checks it)
    bindings: tuple[str, ...]  # the counted bindings (BINDINGS) present
    discontinued: tuple[str, ...] = ()  # slirp / passt / macvtap present (count as no binding)


@dataclass(frozen=True, slots=True)
class Net:
    """One ``networks[i]`` entry, read."""

    index: int
    raw: dict[str, Any]
    name: str
    sources: tuple[str, ...]

    @property
    def multus(self) -> dict[str, Any]:
        m = self.raw.get("multus")
        return m if isinstance(m, dict) else {}

    @property
    def is_default(self) -> bool:
        """The pod network or a Multus default network: the VM's primary interface (eth0)."""
        return self.sources == ("pod",) or (self.sources == ("multus",) and self.multus.get("default") is True)

    @property
    def is_secondary_multus(self) -> bool:
        return self.sources == ("multus",) and self.multus.get("default") is not True

    def describe(self) -> str:
        if self.sources == ("pod",):
            return "the pod network"
        if self.sources == ("multus",):
            return "the Multus default network" if self.is_default else "a secondary Multus network"
        if self.sources == ("resourceClaim",):
            return "a resourceClaim (DRA) network"
        return "a network without one type"


@dataclass(slots=True)
class Spec:
    """The network part of one VMI spec: where it lives, its entries, and what could not be read."""

    root: Path
    ifaces: list[Iface] = field(default_factory=list)
    nets: list[Net] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def iface_path(self, i: int, *rest: str) -> Path:
        return (*self.root, "domain", "devices", "interfaces", i, *rest)

    def net_path(self, i: int, *rest: str) -> Path:
        return (*self.root, "networks", i, *rest)

    def nets_by_name(self) -> dict[str, Net]:
        out: dict[str, Net] = {}
        for n in self.nets:
            out.setdefault(n.name, n)
        return out

    def ifaces_by_name(self) -> dict[str, Iface]:
        out: dict[str, Iface] = {}
        for i in self.ifaces:
            out.setdefault(i.name, i)
        return out

    @property
    def empty(self) -> bool:
        return not self.ifaces and not self.nets


def _present(entry: dict[str, Any], key: str) -> bool:
    """A Go pointer field is set when the key is there and not null (``bridge: {}`` is a bridge binding)."""
    return entry.get(key) is not None


def read_spec(spec: Any, root: Path) -> Spec:
    """Read the interfaces and networks of the VMI spec at ``root``; type errors go to ``problems``."""
    out = Spec(root)
    if spec is None:
        return out
    if not isinstance(spec, dict):
        out.problems.append(wrong_type(root, "an object", spec))
        return out
    r = Reader(out.problems)
    domain = r.mapping(spec, "domain", (*root, "domain")) or {}
    devices = r.mapping(domain, "devices", (*root, "domain", "devices")) or {}
    for i, raw in enumerate(r.items(devices, "interfaces", (*root, "domain", "devices", "interfaces")) or []):
        iface = _read_iface(i, raw, out, r)
        if iface is not None:
            out.ifaces.append(iface)
    for i, raw in enumerate(r.items(spec, "networks", (*root, "networks")) or []):
        net = _read_net(i, raw, out, r)
        if net is not None:
            out.nets.append(net)
    return out


def _present_objects(raw: dict[str, Any], keys: Iterable[str], path: Path, out: Spec) -> tuple[str, ...]:
    """The ``keys`` present in ``raw`` (bindings or network sources), each of which must be an object."""
    present = tuple(key for key in keys if _present(raw, key))
    for key in present:
        if not isinstance(raw[key], dict):
            out.problems.append(f"{field_path((*path, key))}: must be an object, got {json_type(raw[key])}")
    return present


def _read_iface(i: int, raw: Any, out: Spec, r: Reader) -> Iface | None:
    path = out.iface_path(i)
    if not isinstance(raw, dict):
        out.problems.append(wrong_type(path, "an object", raw))
        return None
    name = r.string(raw, "name", (*path, "name")) or ""
    state = r.string(raw, "state", (*path, "state")) or ""
    for key in ("macAddress", "model"):
        r.string(raw, key, (*path, key))
    bindings = _present_objects(raw, BINDINGS, path, out)
    return Iface(i, raw, name, state, bindings, _present_objects(raw, DISCONTINUED, path, out))


def _read_net(i: int, raw: Any, out: Spec, r: Reader) -> Net | None:
    path = out.net_path(i)
    if not isinstance(raw, dict):
        out.problems.append(wrong_type(path, "an object", raw))
        return None
    name = r.string(raw, "name", (*path, "name")) or ""
    sources = _present_objects(raw, SOURCES, path, out)
    multus = raw.get("multus")
    if isinstance(multus, dict):
        r.string(multus, "networkName", (*path, "multus", "networkName"))
        default = multus.get("default")
        if default is not None and not isinstance(default, bool):
            out.problems.append(
                f"{field_path((*path, 'multus', 'default'))}: must be a boolean, got {json_type(default)}"
            )
    return Net(i, raw, name, sources)


# --- consistency -------------------------------------------------------------------------------------------


def check(spec: Spec, *, create: bool) -> list[Cause]:
    """Every consistency problem of ``spec`` (read without problems), in KubeVirt's order of checks."""
    if spec.empty:
        return []
    causes: list[Cause] = []
    causes += _check_sources(spec)
    causes += _check_states(spec)
    causes += _check_bindings(spec)
    if create:
        causes += _check_discontinued(spec)
    causes += _check_names(spec)
    causes += _check_fields(spec)
    return causes


def _check_sources(spec: Spec) -> list[Cause]:
    causes: list[Cause] = []
    ifaces_field = field_path((*spec.root, "interfaces"))  # KubeVirt's (odd) path for interfaces.several-pod-networks
    pods = [n for n in spec.nets if "pod" in n.sources]
    if len(pods) > 1:  # interfaces.several-pod-networks
        names = ", ".join(f'"{n.name}"' for n in pods)
        causes.append(
            Cause(
                ifaces_field,
                f"only one network may be the pod network, found {len(pods)}: {names}",
                "FieldValueDuplicate",
                rule=SEVERAL_POD_NETWORKS,
            )
        )
    defaults = [n for n in spec.nets if isinstance(n.raw.get("multus"), dict) and n.multus.get("default") is True]
    nets_field = field_path((*spec.root, "networks"))
    if len(defaults) > 1:  # interfaces.several-default-networks
        names = ", ".join(f'"{n.name}"' for n in defaults)
        causes.append(
            Cause(
                nets_field,
                f"only one Multus network may set default: true, found {len(defaults)}: {names}",
                rule=SEVERAL_DEFAULT_NETWORKS,
            )
        )
    if pods and defaults:
        causes.append(
            Cause(
                nets_field,
                f'the pod network "{pods[0].name}" and the Multus default network "{defaults[0].name}" cannot be used '
                "together: both would be the primary interface; keep one",
                rule=SEVERAL_DEFAULT_NETWORKS,
            )
        )
    for n in spec.nets:  # interfaces.network-type-count
        if not n.sources:
            msg = f'network "{n.name}" has no type: set one of pod, multus or resourceClaim'
            causes.append(Cause.at(spec.net_path(n.index), msg, "FieldValueRequired", rule=NETWORK_TYPE_COUNT))
        elif len(n.sources) > 1:
            msg = f'network "{n.name}" has {len(n.sources)} types ({", ".join(n.sources)}): keep exactly one'
            causes.append(Cause.at(spec.net_path(n.index), msg, "FieldValueRequired", rule=NETWORK_TYPE_COUNT))
    for n in spec.nets:  # interfaces.multus-without-network-name, first only (as KubeVirt)
        if isinstance(n.raw.get("multus"), dict) and not n.multus.get("networkName"):
            msg = (
                f'network "{n.name}": multus needs a networkName, the NetworkAttachmentDefinition to use '
                "(name or namespace/name)"
            )
            causes.append(Cause.at(spec.net_path(n.index), msg, "FieldValueRequired", rule=MULTUS_WITHOUT_NETWORK_NAME))
            break
    return causes


BINDING_WORDS = {"binding": "a binding plugin", "passtBinding": "passt", "sriov": "SR-IOV"}


def _binding_word(iface: Iface) -> str:
    """The interface's binding in words ("masquerade", "a binding plugin"), for messages."""
    if len(iface.bindings) != 1:
        return "no single binding"
    return BINDING_WORDS.get(iface.bindings[0], iface.bindings[0])


def _check_states(spec: Spec) -> list[Cause]:
    causes: list[Cause] = []
    nets = spec.nets_by_name()
    for iface in spec.ifaces:
        at = spec.iface_path(iface.index, "state")
        name, state = iface.name, iface.state
        if state not in STATES:  # interfaces.unknown-state
            causes.append(
                Cause.at(
                    at,
                    f'interface "{name}": state "{state}" is not supported; use "up", "down" or "absent" (or omit it)',
                    rule=UNKNOWN_STATE,
                )
            )
        if state in ("up", "down") and "sriov" in iface.bindings:  # interfaces.sriov-link-state
            causes.append(
                Cause.at(
                    at,
                    f'interface "{name}": SR-IOV interfaces cannot be set "{state}"; remove the state field',
                    rule=SRIOV_LINK_STATE,
                )
            )
        if state == "absent" and "bridge" not in iface.bindings:  # interfaces.absent-not-bridge
            causes.append(
                Cause.at(
                    at,
                    f'interface "{name}": state "absent" (hot-unplug) works only with bridge binding, not '
                    f"{_binding_word(iface)}; remove the interface and its network, then restart the VM",
                    rule=ABSENT_NOT_BRIDGE,
                )
            )
        net = nets.get(name)
        if state == "absent" and net is not None and net.is_default:  # interfaces.absent-default-network
            causes.append(
                Cause.at(
                    at,
                    f'interface "{name}": state "absent" is not supported on {net.describe()} (the primary '
                    "interface); only interfaces on secondary Multus networks can be unplugged",
                    rule=ABSENT_DEFAULT_NETWORK,
                )
            )
    return causes


def _check_bindings(spec: Spec) -> list[Cause]:
    causes: list[Cause] = []
    nets = spec.nets_by_name()
    for iface in spec.ifaces:
        name, n = iface.name, len(iface.bindings)
        if n == 0:  # interfaces.binding-count
            gone = f" ({', '.join(iface.discontinued)} was discontinued in KubeVirt v1.3 and counts as none)"
            msg = (
                f'interface "{name}" has no binding{gone if iface.discontinued else ""}: set exactly one of bridge, '
                "masquerade, sriov, passtBinding or binding (a plugin)"
            )
            causes.append(Cause.at(spec.iface_path(iface.index), msg, rule=BINDING_COUNT))
        elif n > 1:
            msg = f'interface "{name}" has {n} bindings ({", ".join(iface.bindings)}): keep exactly one'
            causes.append(Cause.at(spec.iface_path(iface.index), msg, rule=BINDING_COUNT))
        net = nets.get(name)
        # interfaces.masquerade-not-pod-network, interfaces.passt-not-pod-network (second half)
        for binding in ("masquerade", "passtBinding"):
            # KubeVirt reads a missing network as one that is not the pod network:
            # interfaces.interface-without-network and this both fire
            if binding in iface.bindings and (net is None or "pod" not in net.sources):
                undefined = f'an undefined network (no entry in networks is named "{name}")'
                where = net.describe() if net is not None else undefined
                msg = f'interface "{name}": {binding} works only on the pod network, not on {where}'
                rule = MASQUERADE_NOT_POD_NETWORK if binding == "masquerade" else PASST_NOT_POD_NETWORK
                causes.append(Cause.at(spec.iface_path(iface.index, "name"), msg, rule=rule))
        mac = iface.raw.get("macAddress")
        if "masquerade" in iface.bindings and isinstance(mac, str) and mac.lower().replace("-", ":") == RESERVED_MAC:
            msg = f'interface "{name}": MAC address {mac} is reserved for KubeVirt\'s in-pod bridge; choose another'
            # interfaces.masquerade-reserved-mac
            causes.append(Cause.at(spec.iface_path(iface.index, "macAddress"), msg, rule=MASQUERADE_RESERVED_MAC))
    return causes


def _check_discontinued(spec: Spec) -> list[Cause]:
    causes: list[Cause] = []
    for iface in spec.ifaces:  # interfaces.discontinued-binding (create only)
        for key, what in DISCONTINUED.items():
            if key in iface.discontinued:
                msg = (
                    f'interface "{iface.name}": the {what} binding was discontinued in KubeVirt v1.3; '
                    "use masquerade, bridge or passtBinding"
                )
                causes.append(Cause.at(spec.iface_path(iface.index, key), msg, rule=DISCONTINUED_BINDING))
    return causes


def _check_names(spec: Spec) -> list[Cause]:
    causes: list[Cause] = []
    iface_names = {i.name for i in spec.ifaces}
    net_names = {n.name for n in spec.nets}
    seen: set[str] = set()
    for n in spec.nets:  # interfaces.duplicate-network
        if n.name in seen:
            msg = f'network name "{n.name}" is used more than once; every network needs a unique name'
            causes.append(Cause.at(spec.net_path(n.index, "name"), msg, "FieldValueDuplicate", rule=DUPLICATE_NETWORK))
        seen.add(n.name)
    ifaces_field = field_path((*spec.root, "domain", "devices", "interfaces"))
    for n in spec.nets:  # interfaces.network-without-interface
        if n.name not in iface_names:
            msg = (
                f'network "{n.name}" has no interface: add one named "{n.name}" to {ifaces_field} or remove the network'
            )
            causes.append(
                Cause.at(spec.net_path(n.index, "name"), msg, "FieldValueRequired", rule=NETWORK_WITHOUT_INTERFACE)
            )
    seen = set()
    for i in spec.ifaces:  # interfaces.duplicate-interface
        if i.name in seen:
            msg = f'interface name "{i.name}" is used more than once; each network takes exactly one interface'
            causes.append(
                Cause.at(spec.iface_path(i.index, "name"), msg, "FieldValueDuplicate", rule=DUPLICATE_INTERFACE)
            )
        seen.add(i.name)
    nets_field = field_path((*spec.root, "networks"))
    for i in spec.ifaces:  # interfaces.interface-without-network
        if i.name not in net_names:
            msg = (
                f'interface "{i.name}" has no network: add one named "{i.name}" to {nets_field} or remove the interface'
            )
            causes.append(Cause.at(spec.iface_path(i.index, "name"), msg, rule=INTERFACE_WITHOUT_NETWORK))
    return causes


def _check_fields(spec: Spec) -> list[Cause]:
    causes: list[Cause] = []
    # interfaces.bad-interface-field (name, model, MAC; PCI addresses and ports are left to KubeVirt)
    for i in spec.ifaces:
        if not NAME_RE.match(i.name):
            msg = f'interface name "{i.name}" may contain only letters, digits, "-" and "_"'
            causes.append(Cause.at(spec.iface_path(i.index, "name"), msg, rule=BAD_INTERFACE_FIELD))
        model = i.raw.get("model")
        if isinstance(model, str) and model and model not in MODELS:
            msg = f'interface "{i.name}": model "{model}" is not supported; use one of {", ".join(MODELS)}'
            causes.append(
                Cause.at(spec.iface_path(i.index, "model"), msg, "FieldValueNotSupported", rule=BAD_INTERFACE_FIELD)
            )
        mac = i.raw.get("macAddress")
        if isinstance(mac, str) and mac:
            parsed = parse_mac(mac)  # Go's net.ParseMAC, as KubeVirt (built with Go 1.26) parses it
            if parsed is None:
                msg = f'interface "{i.name}": MAC address "{mac}" is malformed; write it as 02:00:00:aa:bb:cc'
                causes.append(Cause.at(spec.iface_path(i.index, "macAddress"), msg, rule=BAD_INTERFACE_FIELD))
            elif len(parsed) > 6:
                msg = f'interface "{i.name}": MAC address "{mac}" is longer than 6 bytes'
                causes.append(Cause.at(spec.iface_path(i.index, "macAddress"), msg, rule=BAD_INTERFACE_FIELD))
    return causes


# --- hotplug guidance on running VMs ---------------------------------------------------------------------


def _without(d: dict[str, Any], drop: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != drop and v is not None}


def _changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = set(old) | set(new)
    return sorted(k for k in keys if old.get(k) != new.get(k))


def _short(msg: str) -> str:
    return msg if len(msg) <= MAX_WARNING else msg[: MAX_WARNING - 1] + "…"


def _implicit_default(spec: Any) -> bool:
    """KubeVirt gives a VMI without interfaces and networks one on the pod network, unless told not to."""
    return get(spec, ("domain", "devices", "autoattachPodInterface")) is not False


def hotplug_warnings(old: Spec, new: Spec, old_spec: Any, vm_name: str) -> list[str]:
    """Per interface, the template changes a running VM cannot take live, and what to do instead."""
    if old.empty and new.empty:
        return []
    restart = f"virtctl restart {vm_name}" if vm_name else "virtctl restart <vm>"
    warnings: list[str] = []
    old_ifaces, old_nets = old.ifaces_by_name(), old.nets_by_name()
    new_ifaces, new_nets = new.ifaces_by_name(), new.nets_by_name()
    implicit = old.empty and _implicit_default(old_spec)

    def warn(name: str, text: str) -> None:
        warnings.append(_short(f'interface "{name}": {text}'))

    for iface in new.ifaces:
        if new_ifaces.get(iface.name) is not iface:
            continue  # a duplicate name: denied by interfaces.duplicate-interface
        net = new_nets.get(iface.name)
        before = old_ifaces.get(iface.name)
        if before is None or before.state == "absent":  # a plug
            if iface.state == "absent" or net is None:
                continue  # nothing to plug, or denied by interfaces.interface-without-network
            if implicit and iface.name == "default" and net.sources == ("pod",):
                continue  # spells out the pod interface KubeVirt already gave the VM
            if len(iface.bindings) == 1 and iface.bindings[0] in HOTPLUG_BINDINGS and net.is_secondary_multus:
                continue
            if net.is_secondary_multus:
                why = f"only bridge and SR-IOV interfaces hot-plug, not {_binding_word(iface)}"
            else:
                why = f"it is on {net.describe()}; only secondary Multus networks hot-plug"
            warn(iface.name, f"added, but {why}; the running VM needs a restart ({restart})")
            continue
        if iface.state == "absent":
            # hot-unplug (non-bridge interfaces and default networks are denied by interfaces.absent-not-bridge and
            # interfaces.absent-default-network)
            continue
        changed = _changed_keys(_without(before.raw, "state"), _without(iface.raw, "state"))
        if changed:
            swap = ""
            if "bridge" in iface.bindings and net is not None and net.is_secondary_multus:
                swap = "; to swap it live, set state: absent and add a new interface"
            warn(iface.name, f"changing {', '.join(changed)} needs a restart ({restart}); only state is live{swap}")
        old_net = old_nets.get(iface.name)
        if net is not None and old_net is not None and net.raw != old_net.raw:
            net_changed = _changed_keys(old_net.raw, net.raw)
            if net_changed == ["multus"] and _changed_keys(old_net.multus, net.multus) == ["networkName"]:
                warn(
                    iface.name,
                    "new multus.networkName reaches the running VM only by live migration (if KubeVirt's NAD "
                    f"live update is on), else restart ({restart})",
                )
            else:
                warn(iface.name, f"its network changed ({', '.join(net_changed)}); needs a restart ({restart})")
    if implicit and new_ifaces and "default" not in new_ifaces:
        warn(
            "default",
            f"KubeVirt's default pod interface, which the VM runs with, is not in the template; removing it needs a "
            f"restart ({restart}); declare it to keep it",
        )
    for before in old.ifaces:
        if old_ifaces.get(before.name) is not before or before.name in new_ifaces or before.state == "absent":
            continue  # removing an interface already unplugged is how KubeVirt cleans up
        old_net = old_nets.get(before.name)
        if "bridge" in before.bindings and old_net is not None and old_net.is_secondary_multus:
            instead = "keep it with state: absent to unplug it live"
        else:
            instead = "only bridge interfaces on secondary Multus networks unplug live"
        warn(before.name, f"removed; that needs a restart ({restart}); {instead}")
    return warnings


# --- entry points ------------------------------------------------------------------------------------------


def _findings(spec: Spec, *, create: bool) -> Findings:
    if spec.problems:
        return Findings(bad_request="; ".join(spec.problems))
    return Findings(causes=check(spec, create=create))


def validate_vmi(obj: dict[str, Any], ctx: Context) -> Findings:
    """VMI CREATE: the consistency rules on ``spec`` (VMI updates are KubeVirt's own; never sent here)."""
    return _findings(read_spec(obj.get("spec"), VMI_ROOT), create=True)


def validate_vm(obj: dict[str, Any], ctx: Context) -> Findings:
    """VM CREATE and UPDATE: the same rules on ``spec.template.spec``; on UPDATE of a running VM, hotplug warnings."""
    tpl, problem = vm_template_spec(obj)
    if problem:
        return Findings(bad_request=problem)
    spec = read_spec(tpl, VM_ROOT)
    findings = _findings(spec, create=ctx.operation == "CREATE")
    old = ctx.old_object
    if ctx.operation != "UPDATE" or old is None or spec.problems or not to_run(old):
        return findings
    old_tpl, old_problem = vm_template_spec(old)
    old_spec = read_spec(old_tpl, VM_ROOT)
    if old_problem or old_spec.problems:
        return findings  # an unreadable old object gives no basis for comparison
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    findings.warnings.extend(hotplug_warnings(old_spec, spec, old_tpl, name if isinstance(name, str) else ""))
    return findings
