"""The cluster as rules see it (docs/cluster-view.md): an immutable snapshot of Nodes, the KubeVirt CR and
NetworkAttachmentDefinitions.

``webhook.cluster`` builds these from list + watch and swaps one reference; rules only read them, so this
module holds no I/O and no client. Nodes are folded into :class:`NodeClass` es of identical relevant state
(labels, taints, unschedulable, allocatable), so a preflight costs O(classes), not O(nodes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# KubeVirt's gate states (docs/cluster-view.md): GA gates are always on, Beta gates are on unless
# disabled, everything else (Alpha, Deprecated, unknown) is off unless listed in featureGates.
GA_GATES = frozenset({"GPU", "NUMA", "VMLiveUpdateFeatures", "HotplugNICs"})
BETA_GATES = frozenset({"GPUsWithDRA", "HostDevicesWithDRA", "PasstBinding", "DeclarativeHotplugVolumes"})
HOST_DEVICES_GATE = "HostDevices"
CPU_MANAGER_GATE = "CPUManager"


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str


HOSTNAME_LABEL = "kubernetes.io/hostname"  # unique per node: kept out of the class key (see NodeClass)


@dataclass(frozen=True, slots=True)
class NodeClass:
    """Nodes with the same labels, taints, schedulability and allocatable resources.

    ``labels`` leave out ``kubernetes.io/hostname`` (unique per node, it would make every node a class of
    its own); ``hostnames`` holds those values and ``names`` the node names, so selectors on either still
    work ("is there any node"). ``allocatable`` maps a resource name to its quantity (CPUs in cores, memory
    in bytes, counts as numbers). Only NoSchedule and NoExecute taints are kept (the others never keep a
    pod off a node).
    """

    labels: Mapping[str, str]
    taints: tuple[Taint, ...]
    unschedulable: bool
    allocatable: Mapping[str, Decimal]
    names: frozenset[str] = frozenset()
    hostnames: frozenset[str] = frozenset()

    @property
    def count(self) -> int:
        return len(self.names)

    def describe(self, shown: int = 2) -> str:
        """``node-a`` or ``node-a, node-b and 3 more`` (the names this class stands for)."""
        first = sorted(self.names)[:shown]
        more = self.count - len(first)
        text = ", ".join(first)
        return f"{text} and {more} more" if more > 0 else text


def gate_enabled(name: str, enabled: tuple[str, ...], disabled: tuple[str, ...]) -> bool:
    """KubeVirt's rule for one gate: GA on; listed in featureGates on; listed disabled off; Beta on."""
    if name in GA_GATES or name in enabled:
        return True
    if name in disabled:
        return False
    return name in BETA_GATES


@dataclass(frozen=True, slots=True)
class KubeVirtView:
    """What rules read of the KubeVirt CR that virt-api would use (not deleting, ``status.phase`` set)."""

    namespace: str
    name: str
    feature_gates: tuple[str, ...] = ()
    disabled_feature_gates: tuple[str, ...] = ()
    # resourceNames of pciHostDevices, mediatedDevices and usb; None when permittedHostDevices is absent
    # (KubeVirt then skips its permitted check entirely).
    permitted_resources: frozenset[str] | None = None
    default_architecture: str = ""

    def gate(self, name: str) -> bool:
        return gate_enabled(name, self.feature_gates, self.disabled_feature_gates)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class NadView:
    """What rules read of one NetworkAttachmentDefinition: the device plugin resource its pods need one
    unit of per attachment ("" when it names none), and its CNI plugin type ("" when unknown)."""

    resource_name: str = ""
    cni_type: str = ""


NadKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """One consistent view of the cluster. ``synced`` is False until every kind's first list completed."""

    synced: bool = False
    node_classes: tuple[NodeClass, ...] = ()
    node_count: int = 0
    kubevirt: KubeVirtView | None = None
    # NADs by (namespace, name); None when the view has none (off, or the NAD CRD is not installed), so
    # nothing that needs a NAD applies. A mapping that is never changed once published.
    nads: Mapping[NadKey, NadView] | None = None
    # Derived answers (a preflight's findings per demand), computed on first use: the snapshot never changes,
    # so neither do they. Bounded by the reader (see webhook.rules.preflight).
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def usable(self) -> bool:
        """Preflight runs only on a synced view; without one every rule behaves as with the view off."""
        return self.synced
