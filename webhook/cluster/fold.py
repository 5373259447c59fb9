"""From API objects to what the snapshot keeps: a node's class key, the KubeVirt CR's view, a NAD's view.
No I/O here.

A node's key is everything rules read of it (labels but the hostname, hard taints, unschedulable,
allocatable); nodes with equal keys share one :class:`~webhook.k8s.snapshot.NodeClass`. Keys are interned,
so 5,000 nodes in 50 shapes hold 50 keys.
"""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType
from typing import Any

import orjson

from webhook.k8s import quantity
from webhook.k8s.scheduling import CONDITION_TAINTS, HARD_EFFECTS
from webhook.k8s.snapshot import HOSTNAME_LABEL, KubeVirtView, NadKey, NadView, NodeClass, Taint

NodeKey = tuple[tuple[tuple[str, str], ...], tuple[Taint, ...], bool, tuple[tuple[str, Decimal], ...]]


def node_key(node: dict[str, Any]) -> tuple[str, str, NodeKey]:
    """(name, hostname, key) of a Node object; malformed parts read as absent."""
    meta = node.get("metadata") if isinstance(node.get("metadata"), dict) else {}
    spec = node.get("spec") if isinstance(node.get("spec"), dict) else {}
    status = node.get("status") if isinstance(node.get("status"), dict) else {}
    assert isinstance(meta, dict) and isinstance(spec, dict) and isinstance(status, dict)
    name = str(meta.get("name") or "")
    raw_labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    assert isinstance(raw_labels, dict)
    hostname = str(raw_labels.get(HOSTNAME_LABEL, ""))
    labels = tuple(sorted((str(k), str(v)) for k, v in raw_labels.items() if k != HOSTNAME_LABEL))
    taints = tuple(
        sorted(
            (
                Taint(str(t.get("key") or ""), str(t.get("value") or ""), str(t.get("effect") or ""))
                for t in (spec.get("taints") or [])
                if isinstance(t, dict) and t.get("effect") in HARD_EFFECTS and t.get("key") not in CONDITION_TAINTS
            ),
            key=lambda t: (t.key, t.value, t.effect),
        )
    )
    allocatable: list[tuple[str, Decimal]] = []
    raw_alloc = status.get("allocatable") if isinstance(status.get("allocatable"), dict) else {}
    assert isinstance(raw_alloc, dict)
    for res, raw in raw_alloc.items():
        value = quantity.try_parse(raw)
        if value is not None:
            allocatable.append((str(res), value))
    return name, hostname, (labels, taints, spec.get("unschedulable") is True, tuple(sorted(allocatable)))


def node_class(key: NodeKey, names: frozenset[str], hostnames: frozenset[str]) -> NodeClass:
    labels, taints, unschedulable, allocatable = key
    return NodeClass(
        labels=MappingProxyType(dict(labels)),
        taints=taints,
        unschedulable=unschedulable,
        allocatable=MappingProxyType(dict(allocatable)),
        names=names,
        hostnames=hostnames,
    )


def kubevirt_view(cr: dict[str, Any]) -> KubeVirtView | None:
    """The view of one KubeVirt CR, or None when virt-api would not use it (being deleted, no status.phase)."""
    meta = cr.get("metadata") if isinstance(cr.get("metadata"), dict) else {}
    status = cr.get("status") if isinstance(cr.get("status"), dict) else {}
    spec = cr.get("spec") if isinstance(cr.get("spec"), dict) else {}
    assert isinstance(meta, dict) and isinstance(status, dict) and isinstance(spec, dict)
    if meta.get("deletionTimestamp") or not status.get("phase"):
        return None
    config = spec.get("configuration") if isinstance(spec.get("configuration"), dict) else {}
    assert isinstance(config, dict)
    dev = config.get("developerConfiguration") if isinstance(config.get("developerConfiguration"), dict) else {}
    assert isinstance(dev, dict)
    permitted: frozenset[str] | None = None
    phd = config.get("permittedHostDevices")
    if isinstance(phd, dict):
        names = set()
        for list_name in ("pciHostDevices", "mediatedDevices", "usb"):
            for entry in phd.get(list_name) or []:
                if isinstance(entry, dict) and isinstance(entry.get("resourceName"), str):
                    names.add(entry["resourceName"])
        permitted = frozenset(names)

    def strings(value: Any) -> tuple[str, ...]:
        return tuple(str(v) for v in value) if isinstance(value, list) else ()

    return KubeVirtView(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        feature_gates=strings(dev.get("featureGates")),
        disabled_feature_gates=strings(dev.get("disabledFeatureGates")),
        permitted_resources=permitted,
        default_architecture=str(status.get("defaultArchitecture") or ""),
    )


def _cni_type(config: Any) -> str:
    """The CNI plugin type of a NAD's ``spec.config``: its top-level ``type``, else the first plugin's (a
    conflist); "" when the config is absent (Multus then reads it from the node) or unreadable."""
    if not isinstance(config, str) or not config:
        return ""
    try:
        doc = orjson.loads(config)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(doc, dict):
        return ""
    kind = doc.get("type")
    if isinstance(kind, str) and kind:
        return kind
    plugins = doc.get("plugins")
    first = plugins[0] if isinstance(plugins, list) and plugins else None
    kind = first.get("type") if isinstance(first, dict) else None
    return kind if isinstance(kind, str) else ""


def nad_view(nad: dict[str, Any], resource_annotation: str) -> tuple[NadKey, NadView]:
    """((namespace, name), view) of a NetworkAttachmentDefinition; the resource is the value of
    ``resource_annotation`` (``networks.resourceNameAnnotation``); malformed parts read as absent."""
    meta = nad.get("metadata") if isinstance(nad.get("metadata"), dict) else {}
    spec = nad.get("spec") if isinstance(nad.get("spec"), dict) else {}
    assert isinstance(meta, dict) and isinstance(spec, dict)
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    assert isinstance(annotations, dict)
    resource = annotations.get(resource_annotation)
    key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
    return key, NadView(resource if isinstance(resource, str) else "", _cni_type(spec.get("config")))
