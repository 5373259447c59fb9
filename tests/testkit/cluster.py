"""What the cluster view lists, without an API server: Node, KubeVirt CR and NetworkAttachmentDefinition objects,
and the snapshot the view folds from them (``cluster_snapshot``)."""

from __future__ import annotations

import json
from typing import Any


def node(
    name: str,
    *,
    cpu: str | int = 16,
    memory: str = "64Gi",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
    allocatable: dict[str, Any] | None = None,
    kubevirt: bool = True,
) -> dict[str, Any]:
    """A Node object as the API server lists it: a kubelet's hostname and arch labels, virt-handler's
    ``kubevirt.io/schedulable`` (``kubevirt=False`` leaves it out), ``status.allocatable``."""
    all_labels = {"kubernetes.io/hostname": name, "kubernetes.io/arch": "amd64"}
    if kubevirt:
        all_labels["kubevirt.io/schedulable"] = "true"
    all_labels.update(labels or {})
    spec: dict[str, Any] = {}
    if taints is not None:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": all_labels},
        "spec": spec,
        "status": {"allocatable": {"cpu": str(cpu), "memory": memory, "pods": "110", **(allocatable or {})}},
    }


def kubevirt_cr(
    *,
    gates: list[str] | None = None,
    disabled: list[str] | None = None,
    permitted: dict[str, list[dict[str, Any]]] | None = None,
    phase: str = "Deployed",
    name: str = "kubevirt",
    namespace: str = "kubevirt",
    default_architecture: str = "amd64",
) -> dict[str, Any]:
    """A KubeVirt CR as virt-operator leaves it (``status.phase`` set, so virt-api would use it)."""
    config: dict[str, Any] = {"developerConfiguration": {"featureGates": list(gates or [])}}
    if disabled is not None:
        config["developerConfiguration"]["disabledFeatureGates"] = disabled
    if permitted is not None:
        config["permittedHostDevices"] = permitted
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "KubeVirt",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"configuration": config},
        "status": {"phase": phase, "defaultArchitecture": default_architecture},
    }


def nad(
    name: str,
    namespace: str = "default",
    *,
    resource: str | None = "intel.com/sriov_vf",
    cni: str | None = "sriov",
    conflist: bool = False,
    annotation: str = "k8s.v1.cni.cncf.io/resourceName",
) -> dict[str, Any]:
    """A NetworkAttachmentDefinition as the API server lists it: ``resource`` in the resourceName annotation
    (None: no annotation), ``cni`` the CNI type of ``spec.config`` (None: no config; ``conflist``: in
    ``plugins``)."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if resource is not None:
        meta["annotations"] = {annotation: resource}
    spec: dict[str, Any] = {}
    if cni is not None:
        body: dict[str, Any] = {"type": cni, "vlan": 0, "ipam": {}}
        cfg = {"cniVersion": "1.0.0", "name": name, "plugins": [body]} if conflist else {"cniVersion": "1.0.0", **body}
        spec["config"] = json.dumps(cfg)
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition", "metadata": meta, "spec": spec}


def cluster_snapshot(
    nodes: list[dict[str, Any]],
    kubevirt: dict[str, Any] | None = None,
    *,
    synced: bool = True,
    nads: list[dict[str, Any]] | None = None,
    resource_annotation: str = "k8s.v1.cni.cncf.io/resourceName",
) -> Any:
    """The snapshot the cluster view would publish after listing ``nodes``, the ``kubevirt`` CR and ``nads``
    (None: the NAD CRD is not installed): folded by the view's own stores (webhook.cluster.view,
    webhook.cluster.fold), as ClusterView._publish does."""
    from webhook.cluster.view import KubeVirtStore, NadStore, NodeStore
    from webhook.k8s.snapshot import ClusterSnapshot

    store, crs, nad_store = NodeStore(), KubeVirtStore(), NadStore(resource_annotation)
    for n in nodes:
        store.apply("ADDED", n)
    if kubevirt is not None:
        crs.apply("ADDED", kubevirt)
    for d in nads or []:
        nad_store.apply("ADDED", d)
    return ClusterSnapshot(
        synced=synced,
        node_classes=store.classes(),
        node_count=len(store),
        kubevirt=crs.current(),
        nads=None if nads is None else nad_store.frozen(),
    )
