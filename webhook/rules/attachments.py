"""Secondary networks as devices (docs/networks.md): SR-IOV VFs requested, checked and hot-plugged safely.

A pod attached to a NetworkAttachmentDefinition whose annotation ``k8s.v1.cni.cncf.io/resourceName`` names a
device plugin resource (an SR-IOV VF pool) must request one unit of it per attachment; without the request it
is scheduled anywhere, gets no VF, and the CNI fails. KubeVirt up to 1.8 added that request to launcher pods
itself; from 1.9 (``ExternalNetResourceInjection``) it leaves it to a separately installed injector. So:

- ``networks.bad-selection``: the pod's networks annotation must parse as Multus parses it
  (:mod:`webhook.k8s.multus`), on CREATE and when an UPDATE changes it (works without the cluster view);
- injection (pod CREATE, with the view's NADs): each attachment to a NAD with a resourceName adds one unit of
  it, requests and limits, on ``containers[0]`` (where KubeVirt and the Network Resources Injector put it); a
  resource any container already requests is left alone, so reinvocation and other injectors never double it;
- ``networks.nad-missing`` (pods, VMIs, VMs to run) and ``networks.sriov-no-resource`` (always a warning);
- ``networks.vf-hotplug``: a network added to a running pod cannot get a VF (its requests cannot change);
- ``networks.vf-missing`` (``audit`` and ``review``, not the API server's calls): a pod that requests fewer
  units than it has attachments runs without some of its VFs;
- ``preflight.not-enough-devices`` counts the VFs among the devices a node must have (:func:`pod_vfs`,
  :func:`spec_vfs`).

Findings that need the NAD view follow ``cluster.enforcement`` like the preflight's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.k8s import quantity
from webhook.k8s.multus import NETWORKS_ANNOTATION, Attachment, Selection, network_ref, parse_selection
from webhook.k8s.paths import Path
from webhook.k8s.paths import field as field_path
from webhook.k8s.snapshot import NadKey, NadView
from webhook.rules import network
from webhook.rules.base import Cause, Context, Findings, cluster_finding, json_type, to_run
from webhook.rules.fields import VM_ROOT, VMI_ROOT, vm_template_spec
from webhook.rules.registry import define

BAD_SELECTION = define(
    "networks.bad-selection",
    "a pod's networks annotation Multus would fail on (JSON or text form, DNS-1123 units, MAC and IP fields), "
    "or two attachments with one interface name ([networks](networks.md))",
    field="`metadata.annotations.k8s.v1.cni.cncf.io/networks`",
    page="networks.md",
    replaces="networks.selection",
)
NAD_MISSING = define(
    "networks.nad-missing",
    "the selected NetworkAttachmentDefinition does not exist",
    field="the annotation (pods), `spec.networks[i].multus.networkName` (VMIs, VMs to run)",
    page="networks.md",
    kind="cluster",
)
SRIOV_NO_RESOURCE = define(
    "networks.sriov-no-resource",
    "an SR-IOV attachment (`sriov` interface, or a NAD of CNI type `sriov`) whose NAD names no resource: no VF "
    "is requested",
    field="the annotation, or `spec.networks[i].multus.networkName`",
    page="networks.md",
    kind="warning",
)
VF_HOTPLUG = define(
    "networks.vf-hotplug",
    "a network with a resourceName added to a running pod (pod UPDATE): its VF cannot be requested",
    field="`metadata.annotations.k8s.v1.cni.cncf.io/networks`",
    page="networks.md",
    kind="warning",
)
VF_MISSING = define(
    "networks.vf-missing",
    "`audit` and `review` only: a pod requests fewer units of a NAD's resource than it has attachments to it",
    field="`metadata.annotations.k8s.v1.cni.cncf.io/networks`",
    page="networks.md",
    kind="cluster",
)

ANNOTATION_PATH: Path = ("metadata", "annotations", NETWORKS_ANNOTATION)
SRIOV_CNI = "sriov"
AUDIT_KEY = "network-resources"
Nads = Mapping[NadKey, NadView]
VfDemand = dict[str, tuple[int, Path]]  # resource -> (units, the field that asks for them)


def networks_value(obj: Any) -> Any:
    """The networks annotation's value (None when absent or unreadable), of any object."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return annotations.get(NETWORKS_ANNOTATION) if isinstance(annotations, dict) else None


def concerns_pod(pod: dict[str, Any]) -> bool:
    """Whether the pod carries the networks annotation (the engine skips the networks rules otherwise)."""
    return networks_value(pod) is not None


def namespace_of(obj: dict[str, Any], ctx: Context) -> str:
    meta = obj.get("metadata")
    ns = meta.get("namespace") if isinstance(meta, dict) else None
    return ns if isinstance(ns, str) and ns else ctx.namespace


def _nads(ctx: Context) -> Nads | None:
    return ctx.cluster.nads if ctx.cluster is not None and ctx.cluster.usable else None


def _read(obj: dict[str, Any] | None, ctx: Context, found: Findings) -> Selection | None:
    """The pod's selection (None without the annotation); a value that is not a string is a bad request."""
    raw = networks_value(obj)
    if raw is None or obj is None:
        return None
    if not isinstance(raw, str):
        found.bad_request = f"{field_path(ANNOTATION_PATH)}: must be a string, got {json_type(raw)}"
        return None
    selection = parse_selection(raw, namespace_of(obj, ctx))
    for problem in selection.problems:
        found.causes.append(
            Cause.at(
                ANNOTATION_PATH,
                f"{problem}: Multus would fail the pod when it creates its sandbox, and it would stay in "
                "ContainerCreating",
                rule=BAD_SELECTION,
            )
        )
    return selection


def _vf_counts(attachments: tuple[Attachment, ...], nads: Nads) -> dict[str, list[Attachment]]:
    """resource -> the attachments that each need one unit of it (NADs with a resourceName)."""
    out: dict[str, list[Attachment]] = {}
    for a in attachments:
        nad = nads.get(a.key)
        if nad is not None and nad.resource_name:
            out.setdefault(nad.resource_name, []).append(a)
    return out


def _requested(spec: dict[str, Any], names: dict[str, list[Attachment]]) -> dict[str, int]:
    """Units of each of ``names`` that the pod's containers and init containers request (else limit)."""
    out: dict[str, int] = {}
    for part in ("containers", "initContainers"):
        items = spec.get(part)
        for c in items if isinstance(items, list) else ():
            res = c.get("resources") if isinstance(c, dict) else None
            if not isinstance(res, dict):
                continue
            requests, limits = res.get("requests"), res.get("limits")
            for name in names:  # a request defaults to its limit
                if isinstance(requests, dict) and name in requests:
                    out[name] = out.get(name, 0) + _units(requests[name])
                elif isinstance(limits, dict) and name in limits:
                    out[name] = out.get(name, 0) + _units(limits[name])
    return out


def _units(raw: Any) -> int:
    """An extended resource's count as the API server reads the quantity (``Value()``: ``"1k"`` is 1000); one
    that does not parse counts as one unit (it is requested, and the API server refuses it anyway)."""
    q = quantity.try_parse(raw)
    return quantity.value(q) if q is not None else 1


def _refs(attachments: list[Attachment]) -> str:
    return ", ".join(a.ref for a in attachments)


# --- mutation --------------------------------------------------------------------------------------------


def mutate_pod(obj: dict[str, Any], ctx: Context) -> Findings:
    """Pod CREATE: one unit of each attached NAD's resource per attachment, on ``containers[0]``."""
    found = Findings()
    nads = _nads(ctx)
    if ctx.patch is None or nads is None or not ctx.config.networks.inject:
        return found
    selection = _read(obj, ctx, Findings())
    if selection is None or not selection.ok:
        return found  # the validating webhook says what is wrong with it
    wanted = _vf_counts(selection.attachments, nads)
    spec = obj.get("spec")
    containers = spec.get("containers") if isinstance(spec, dict) else None
    if not wanted or not isinstance(containers, list) or not containers or not isinstance(containers[0], dict):
        return found
    assert isinstance(spec, dict)
    requested = _requested(spec, wanted)
    added = []
    for resource, attachments in wanted.items():
        if resource in requested:
            continue  # KubeVirt <= 1.8 or another injector was first: never doubled
        units = str(len(attachments))
        for block in ("requests", "limits"):
            ctx.patch.set(("spec", "containers", 0, "resources", block, resource), units)
        added.append(f"{resource}: {units} ({_refs(attachments)})")
    if added:
        name = containers[0].get("name")
        found.audit[AUDIT_KEY] = f"containers[0] ({name}) requests and limits " + "; ".join(added)
    return found


# --- pod validation --------------------------------------------------------------------------------------


def _missing(what: str, ref: str, path: Path, consequence: str) -> Cause:
    return Cause.at(
        path,
        f"{what}no NetworkAttachmentDefinition {ref} exists: {consequence}; create it first, or fix the name",
        "FieldValueNotFound",
        rule=NAD_MISSING,
    )


def _no_resource(what: str, ref: str, ctx: Context) -> str:
    return (
        f"{what}the SR-IOV network {ref} has no {ctx.config.networks.resourceNameAnnotation} annotation, so no VF "
        "is requested for it and the SR-IOV CNI finds no device to attach: annotate the NAD with its device "
        "plugin's resource name"
    )


def _advise(found: Findings, cause: Cause) -> None:
    """A finding that is always a warning (kept as an advisory for ``audit``)."""
    found.warnings.append(f"{cause.rule}: {cause.field}: {cause.message}")
    found.advisories.append(cause)


def _pod_nad_findings(attachments: tuple[Attachment, ...], nads: Nads, ctx: Context, found: Findings) -> None:
    seen: set[NadKey] = set()
    for a in attachments:
        if a.key in seen:
            continue
        seen.add(a.key)
        nad = nads.get(a.key)
        if nad is None:
            consequence = "Multus cannot attach it, and the pod would stay in ContainerCreating"
            cluster_finding(found, _missing(f"{a.describe()}: ", a.ref, ANNOTATION_PATH, consequence), ctx)
        elif nad.cni_type == SRIOV_CNI and not nad.resource_name:
            message = _no_resource(f"{a.describe()}: ", a.ref, ctx)
            _advise(found, Cause.at(ANNOTATION_PATH, message, rule=SRIOV_NO_RESOURCE))


def _vf_missing(
    obj: dict[str, Any], attachments: tuple[Attachment, ...], nads: Nads, ctx: Context, found: Findings
) -> None:
    spec = obj.get("spec")
    wanted = _vf_counts(attachments, nads)
    requested = _requested(spec, wanted) if isinstance(spec, dict) else {}
    for resource, users in wanted.items():
        have = requested.get(resource, 0)
        if have < len(users):
            message = (
                f"{len(users)} attachments need one {resource} (an SR-IOV VF) each ({_refs(users)}), but the pod "
                f"requests {have}: it runs without {len(users) - have} of its VFs. Recreate it with the request "
                "(vm-admission adds it on CREATE with networks.inject), or install an injector"
            )
            cluster_finding(found, Cause.at(ANNOTATION_PATH, message, rule=VF_MISSING), ctx)


def _hotplug(obj: dict[str, Any], ctx: Context) -> Findings:
    """Pod UPDATE that changes the networks annotation: what was added, and whether it can work live."""
    found = Findings()
    new = networks_value(obj)
    if new is None or new == networks_value(ctx.old_object):
        return found  # removing networks is fine
    selection = _read(obj, ctx, found)
    if selection is None or not selection.ok:
        return found
    before: dict[NadKey, int] = {}
    old = _read(ctx.old_object, ctx, Findings())
    for a in old.attachments if old is not None else ():
        before[a.key] = before.get(a.key, 0) + 1
    nads = _nads(ctx)
    if nads is None:
        return found
    for a in selection.attachments:
        if before.get(a.key, 0) > 0:
            before[a.key] -= 1
            continue
        nad = nads.get(a.key)
        if nad is None:
            consequence = "Multus cannot attach it to the running pod"
            cluster_finding(found, _missing(f"{a.describe()}: ", a.ref, ANNOTATION_PATH, consequence), ctx)
        elif nad.resource_name:
            message = (
                f"{a.describe()} is added, but {a.ref} needs one {nad.resource_name} (an SR-IOV VF) per attachment "
                "and a running pod's resource requests cannot change, so it gets no VF and the attachment fails: "
                "recreate the pod with this network instead; for a KubeVirt VM, add an sriov interface on this "
                "network to the VM and let KubeVirt live-migrate it"
            )
            _advise(found, Cause.at(ANNOTATION_PATH, message, rule=VF_HOTPLUG))
    return found


def validate_pod(obj: dict[str, Any], ctx: Context) -> Findings:
    """Pod CREATE: the selection, and with the NAD view its NADs."""
    found = Findings()
    selection = _read(obj, ctx, found)
    nads = _nads(ctx)
    if selection is None or not selection.ok or nads is None:
        return found
    _pod_nad_findings(selection.attachments, nads, ctx, found)
    if ctx.offline:
        _vf_missing(obj, selection.attachments, nads, ctx, found)
    return found


def pod_vfs(obj: dict[str, Any], ctx: Context) -> VfDemand:
    """For ``preflight.not-enough-devices``: the VFs a pod's attachments need, per resource, on the annotation."""
    nads = _nads(ctx)
    raw = networks_value(obj)
    if nads is None or not isinstance(raw, str):
        return {}
    selection = parse_selection(raw, namespace_of(obj, ctx))
    return {r: (len(users), ANNOTATION_PATH) for r, users in _vf_counts(selection.attachments, nads).items()}


# --- VMIs and VM templates -------------------------------------------------------------------------------


def _multus_refs(spec: network.Spec, namespace: str) -> list[tuple[network.Net, NadKey, Path]]:
    out = []
    for net in spec.nets:
        name = net.multus.get("networkName")
        if "multus" in net.sources and isinstance(name, str) and name:
            out.append((net, network_ref(name, namespace), spec.net_path(net.index, "multus", "networkName")))
    return out


def _sriov_networks(spec: network.Spec) -> set[str]:
    return {i.name for i in spec.ifaces if "sriov" in i.bindings}


def spec_vfs(spec: Any, root: Path, namespace: str, ctx: Context) -> VfDemand:
    """For ``preflight.not-enough-devices``: one VF per ``sriov`` interface, of the resource its NAD names, on its
    networkName."""
    nads = _nads(ctx)
    if nads is None:
        return {}
    read = network.read_spec(spec, root)
    sriov = _sriov_networks(read)
    out: VfDemand = {}
    for net, key, path in _multus_refs(read, namespace):
        nad = nads.get(key)
        if net.name in sriov and nad is not None and nad.resource_name:
            units, first = out.get(nad.resource_name, (0, path))
            out[nad.resource_name] = (units + 1, first)
    return out


def _validate_spec(spec: Any, root: Path, namespace: str, ctx: Context) -> Findings:
    found = Findings()
    nads = _nads(ctx)
    if nads is None:
        return found
    read = network.read_spec(spec, root)
    if read.problems:
        return found  # the interface rules report what cannot be read
    sriov = _sriov_networks(read)
    for net, key, path in _multus_refs(read, namespace):
        ref = f"{key[0]}/{key[1]}"
        nad = nads.get(key)
        if nad is None:
            consequence = (
                f"KubeVirt fails to render the launcher pod ('failed to locate network attachment definition {ref}') "
                "and the VM stays Pending (from KubeVirt 1.9, Multus fails the pod instead)"
            )
            cluster_finding(found, _missing("", ref, path, consequence), ctx)
        elif net.name in sriov and not nad.resource_name:
            message = _no_resource(f'interface "{net.name}" is SR-IOV, but ', ref, ctx)
            _advise(found, Cause.at(path, message, rule=SRIOV_NO_RESOURCE))
    return found


def validate_pod_update(obj: dict[str, Any], ctx: Context) -> Findings:
    """Pod UPDATE that changes the networks annotation: the hotplug check."""
    return _hotplug(obj, ctx)


def validate_vmi(obj: dict[str, Any], ctx: Context) -> Findings:
    """VMI CREATE: its Multus networks' NADs (with the NAD view)."""
    return _validate_spec(obj.get("spec"), VMI_ROOT, namespace_of(obj, ctx), ctx)


def validate_vm(obj: dict[str, Any], ctx: Context) -> Findings:
    """VM CREATE/UPDATE, when the VM is to run: its template's Multus networks' NADs (with the NAD view)."""
    if not to_run(obj):
        return Findings()
    tpl_spec, _ = vm_template_spec(obj)  # a template that is not a map: the other rules say so (400)
    return _validate_spec(tpl_spec, VM_ROOT, namespace_of(obj, ctx), ctx)
