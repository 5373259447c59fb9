"""Shared test helpers: build AdmissionReviews as kube-apiserver sends them, read responses, apply patches."""

from __future__ import annotations

import base64
import copy
import functools
import json
import uuid
from pathlib import Path
from typing import Any

import jsonpatch
import jsonschema
import orjson
import pytest
import yaml

from webhook import build

GVK = {
    "Pod": {"group": "", "version": "v1", "kind": "Pod"},
    "VirtualMachineInstance": {"group": "kubevirt.io", "version": "v1", "kind": "VirtualMachineInstance"},
    "VirtualMachine": {"group": "kubevirt.io", "version": "v1", "kind": "VirtualMachine"},
}
RESOURCE = {"Pod": "pods", "VirtualMachineInstance": "virtualmachineinstances", "VirtualMachine": "virtualmachines"}


def make_review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    api_version: str = "admission.k8s.io/v1",
    dry_run: bool = False,
    kind: str | None = None,
) -> dict[str, Any]:
    """An AdmissionReview request for ``obj`` (kind taken from the object unless given)."""
    k = kind or (obj or old or {}).get("kind", "Pod")
    gvk = GVK.get(k, {"group": "example.com", "version": "v1", "kind": k})
    resource = {"group": gvk["group"], "version": gvk["version"], "resource": RESOURCE.get(k, k.lower() + "s")}
    meta = (obj or old or {}).get("metadata", {})
    return {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": gvk,
            "resource": resource,
            "requestKind": gvk,
            "requestResource": resource,
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", "default"),
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
            "object": copy.deepcopy(obj),
            "oldObject": copy.deepcopy(old),
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def patch_ops(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON Patch a response carries ([] when none); asserts patch and patchType travel together."""
    resp = response["response"]
    assert ("patch" in resp) == ("patchType" in resp), resp
    if "patch" not in resp:
        return []
    assert resp["patchType"] == "JSONPatch"
    ops: list[dict[str, Any]] = orjson.loads(base64.b64decode(resp["patch"]))
    return ops


def apply_response(obj: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """Apply a response's patch to a copy of ``obj`` with jsonpatch (RFC 6902), as the API server does."""
    return jsonpatch.JsonPatch(patch_ops(response)).apply(copy.deepcopy(obj))  # type: ignore[no-any-return]


# KubeVirt's VMI and VM CRDs: the copy `review --schema` ships
CRDS = Path(__file__).resolve().parent.parent / "webhook" / "data" / "kubevirt-crds.yaml"


@functools.cache
def _crd_validator(kind: str) -> Any:
    for doc in yaml.safe_load_all(CRDS.read_text(encoding="utf-8")):
        if doc and doc.get("kind") == "CustomResourceDefinition" and doc["spec"]["names"]["kind"] == kind:
            schema = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            return cls(schema)
    raise LookupError(f"no CRD for kind {kind}")


def assert_crd_valid(obj: dict[str, Any]) -> None:
    """The VMI/VM is one a cluster with KubeVirt's CRDs accepts (openAPIV3Schema, via jsonschema)."""
    _crd_validator(obj["kind"]).validate(obj)


# --- the Helm chart --------------------------------------------------------------------------------------

CHART = Path(__file__).resolve().parent.parent / "charts" / "vm-admission"
RELEASE, RELEASE_NAMESPACE = "vm-admission", "vm-admission"


def helm(*args: str, timeout: float = 120) -> str:
    """Run the pinned helm (tests/tools.py: skips locally, fails under CI=true when it is not built)."""
    import subprocess

    from tests.tools import tool

    run = subprocess.run([tool("helm"), *args], capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"helm {' '.join(args)}:\n{run.stderr}"
    return run.stdout


def chart_profile(values_profile: str) -> Path:
    """``charts/vm-admission/ci/<profile>-values.yaml`` (the profiles helm lint and the tests render)."""
    path = CHART / "ci" / f"{values_profile}-values.yaml"
    assert path.is_file(), f"no values profile {values_profile!r}: {sorted(p.name for p in path.parent.iterdir())}"
    return path


@functools.cache
def _render(args: tuple[str, ...]) -> str:
    return helm("template", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE, *args)


def render_chart(values_profile: str | None = "default", *args: str) -> list[dict[str, Any]]:
    """The objects ``helm template vm-admission charts/vm-admission -n vm-admission -f ci/<profile>-values.yaml``
    renders (``None``: the chart's own defaults; ``args`` are more helm flags, e.g. ``--set``), hooks included.
    Reusable for ``helm template | kubectl apply --dry-run=server`` against a control plane."""
    flags = ("--values", str(chart_profile(values_profile))) if values_profile else ()
    text = _render((*flags, *args))
    return [copy.deepcopy(d) for d in yaml.safe_load_all(text) if d is not None]


# --- the cluster view (CONTRACT §9) without an API server ------------------------------------------------------


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


# Tests that count calls by monkeypatching a module function: compiled callers call it natively and never see
# the patch, so those tests check the pure build only (the behaviour they count is the same in both).
pure_python_only = pytest.mark.skipif(
    build.flavor() == "mypyc", reason="counts calls through a monkeypatched module function (pure build only)"
)
