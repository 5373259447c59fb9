"""The objects the tests and bench send: Pods, VirtualMachineInstances and VirtualMachines, with the envelope
(apiVersion, kind, metadata) written once here; each test file shapes the spec for its area.

The virt-launcher pod is the one of ``examples/pods/virt-launcher-istio.yaml`` (examples/ is its only copy).
Light on purpose: bench imports it from the install ``scripts/bench`` makes (runtime dependencies only).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import yaml

from tests.testkit.paths import EXAMPLES
from webhook.admission import TABLE
from webhook.rules.passthrough import ANNOTATION as PASSTHROUGH

# the kinds the webhook reviews (the admission table): group/version/kind and resource, as an AdmissionRequest
# names them
GVK = {k.kind: k.gvk for k in TABLE}
RESOURCE = {k.kind: k.plural for k in TABLE}
LAUNCHER_EXAMPLE = "pods/virt-launcher-istio.yaml"


def _meta(
    name: str | None,
    namespace: str | None,
    annotations: dict[str, str] | None,
    labels: dict[str, str] | None,
) -> dict[str, Any]:
    """metadata with the keys given (None leaves a key out; ``{}`` keeps it, empty)."""
    meta: dict[str, Any] = {}
    if name is not None:
        meta["name"] = name
    if namespace is not None:
        meta["namespace"] = namespace
    if labels is not None:
        meta["labels"] = dict(labels)
    if annotations is not None:
        meta["annotations"] = dict(annotations)
    return meta


def vmi_spec(memory: str = "1Gi", devices: dict[str, Any] | None = None) -> dict[str, Any]:
    """The smallest VMI spec the rules read: a memory request and the devices (none by default)."""
    return {"domain": {"resources": {"requests": {"memory": memory}}, "devices": copy.deepcopy(devices or {})}}


def vmi(
    spec: dict[str, Any] | None = None,
    *,
    name: str | None = "v",
    namespace: str | None = "default",
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A VirtualMachineInstance with ``spec`` (a copy; default ``vmi_spec()``)."""
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": _meta(name, namespace, annotations, labels),
        "spec": vmi_spec() if spec is None else copy.deepcopy(spec),
    }


def vm(
    template_spec: dict[str, Any] | None = None,
    *,
    name: str | None = "vm",
    namespace: str | None = "default",
    annotations: dict[str, str] | None = None,
    template_metadata: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A VirtualMachine whose template runs ``template_spec`` (a copy; default ``vmi_spec()``); ``spec`` keywords
    (``runStrategy``, ``instancetype``, ...) go beside the template; ``template_metadata`` None leaves it out."""
    template: dict[str, Any] = {}
    if template_metadata is not None:
        template["metadata"] = copy.deepcopy(template_metadata)
    template["spec"] = vmi_spec() if template_spec is None else copy.deepcopy(template_spec)
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": _meta(name, namespace, annotations, None),
        "spec": {**spec, "template": template},
    }


def pod(
    containers: list[dict[str, Any]] | None = None,
    *,
    init: list[dict[str, Any]] | None = None,
    spec: dict[str, Any] | None = None,
    name: str | None = "p",
    namespace: str | None = "default",
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Pod running ``containers`` (default: one ``main`` container without resources) and ``init`` containers;
    ``spec`` adds other spec fields (nodeSelector, resources, ...)."""
    s: dict[str, Any] = {
        "containers": copy.deepcopy(containers or [{"name": "main", "image": "registry.example.com/app:1"}]),
        **copy.deepcopy(spec or {}),
    }
    if init is not None:
        s["initContainers"] = copy.deepcopy(init)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _meta(name, namespace, annotations, labels), "spec": s}


def example(path: str) -> dict[str, Any]:
    """One manifest of ``examples/`` (``pods/virt-launcher-istio.yaml``, say), as written."""
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / path).read_text(encoding="utf-8"))
    return doc


def api_defaults(pod: dict[str, Any]) -> dict[str, Any]:
    """``pod`` (in place) with the fields the API server fills in before the mutating webhooks see it: the
    defaults of SetDefaults_Pod and SetDefaults_Container, and DefaultTolerationSeconds' two tolerations."""
    spec = pod["spec"]
    for c in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        c.setdefault("imagePullPolicy", "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
    for key, value in (
        ("restartPolicy", "Always"),
        ("dnsPolicy", "ClusterFirst"),
        ("schedulerName", "default-scheduler"),
        ("securityContext", {}),
        ("serviceAccountName", "default"),
        ("enableServiceLinks", True),
        ("priority", 0),
        ("preemptionPolicy", "PreemptLowerPriority"),
    ):
        spec.setdefault(key, value)
    tolerations = spec.setdefault("tolerations", [])
    for taint in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(t.get("key") == taint for t in tolerations):
            tolerations.append({"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    return pod


def launcher_pod(
    *, passthrough: str | None = None, networks: str | None = None, defaulted: bool = False
) -> dict[str, Any]:
    """The virt-launcher pod of a 4-vCPU dedicated VMI in an Istio namespace, as it reaches the mutating webhook
    (``examples/pods/virt-launcher-istio.yaml``): ``compute``, a hook sidecar with limits only, the
    ``guest-console-log`` native sidecar and Istio's injected init container and proxy with requests only, the
    cpumanager node selector. ``passthrough`` sets the passthrough annotation (a device, e.g. ``10de:1eb8``);
    ``networks`` Multus' ``k8s.v1.cni.cncf.io/networks`` annotation; ``defaulted`` adds what the API server
    fills in before the webhook sees the pod (``api_defaults``)."""
    pod = example(LAUNCHER_EXAMPLE)
    if defaulted:
        api_defaults(pod)
    annotations = pod["metadata"].setdefault("annotations", {})
    if passthrough is not None:
        annotations[PASSTHROUGH] = passthrough
    if networks is not None:
        annotations["k8s.v1.cni.cncf.io/networks"] = networks
    return pod


def make_review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    api_version: str = "admission.k8s.io/v1",
    dry_run: bool = False,
    kind: str | None = None,
    uid: str | None = None,
    user: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An AdmissionReview request for ``obj`` (kind taken from the object unless given), with every field
    kube-apiserver fills in; ``uid`` a fresh one and ``user`` a cluster admin unless given."""
    k = kind or (obj or old or {}).get("kind", "Pod")
    gvk = GVK.get(k, {"group": "example.com", "version": "v1", "kind": k})
    resource = {"group": gvk["group"], "version": gvk["version"], "resource": RESOURCE.get(k, k.lower() + "s")}
    meta = (obj or old or {}).get("metadata", {})
    return {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": gvk,
            "resource": resource,
            "requestKind": gvk,
            "requestResource": resource,
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", "default"),
            "operation": operation,
            "userInfo": user or {"username": "kubernetes-admin", "groups": ["system:masters"]},
            "object": copy.deepcopy(obj),
            "oldObject": copy.deepcopy(old),
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }
