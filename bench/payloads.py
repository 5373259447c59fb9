"""Benchmark payloads: AdmissionReviews as kube-apiserver sends them, built once and serialised to bytes.

- ``launcher-pod``: a ~8.3 KB virt-launcher pod of a dedicated-CPU VMI as KubeVirt renders it, the tests' one
  (``examples/pods/virt-launcher-istio.yaml``: ``compute``, a hook sidecar with limits only, the
  ``guest-console-log`` native sidecar init container, Istio's injected init container and proxy with requests
  only, the ``kubevirt.io/cpumanager`` node selector) with a passthrough and a Multus networks annotation --
  the pod the mutating webhook has the most work on;
- ``dedicated-vmi``: a VMI with dedicated CPUs, NUMA-less, a passthrough device in the spec form;
- ``vm``: a VirtualMachine whose template asks for dedicated CPUs and a device by annotation;
- ``unrelated-pod``: an ordinary web pod no rule concerns (the fast path).

The validate payload of a kind is the mutate payload with our own patch applied, as the API server chains
the two webhooks (so validation sees what it sees in a cluster).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from tests.testkit import objects
from tests.testkit.objects import PASSTHROUGH

Webhook = Literal["mutate", "validate"]


KUBEVIRT_CONTROLLER = {
    "username": "system:serviceaccount:kubevirt:kubevirt-controller",
    "uid": "0b6b4f0e-8f1c-4b5e-9d55-0e1f2a3b4c5d",
    "groups": ["system:serviceaccounts", "system:serviceaccounts:kubevirt", "system:authenticated"],
}


def review(
    obj: dict[str, Any], *, operation: str = "CREATE", api_version: str = "admission.k8s.io/v1"
) -> dict[str, Any]:
    """An AdmissionReview request for ``obj`` as virt-controller's creates reach the webhook (a fixed uid, so the
    payload bytes are the same in every run)."""
    return objects.make_review(
        obj, operation=operation, api_version=api_version, uid=str(uuid.UUID(int=0x5EED)), user=KUBEVIRT_CONTROLLER
    )


def launcher_pod() -> dict[str, Any]:
    """The virt-launcher pod of a 4-vCPU dedicated VMI with a GPU and a Multus network, as it reaches the mutating
    webhook: the tests' launcher pod (examples/pods/virt-launcher-istio.yaml) with the passthrough and networks
    annotations and the API server's defaults (the fields it fills in before calling webhooks)."""
    return objects.launcher_pod(
        defaulted=True,
        passthrough="10de:1eb8",
        networks='[{"name":"storage-net","namespace":"databases","interface":"pod1a2b3c"}]',
    )


def _vmi_spec(*, passthrough_spec: bool) -> dict[str, Any]:
    devices: dict[str, Any] = {
        "disks": [
            {"name": "rootdisk", "disk": {"bus": "virtio"}, "bootOrder": 1},
            {"name": "cloudinitdisk", "disk": {"bus": "virtio"}},
        ],
        "interfaces": [
            {"name": "default", "masquerade": {}},
            {"name": "storage", "bridge": {}},
        ],
        "rng": {},
        "autoattachGraphicsDevice": False,
    }
    if passthrough_spec:
        devices["passthrough"] = [{"type": "pci", "vendor": "10de", "device": "1eb8", "count": 1}]
    return {
        "architecture": "amd64",
        "domain": {
            "cpu": {"dedicatedCpuPlacement": True, "isolateEmulatorThread": True, "model": "host-passthrough"},
            "resources": {"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}},
            "machine": {"type": "q35"},
            "firmware": {"uuid": "5d307ca9-b3ef-428c-8861-06e72d69f223"},
            "features": {"acpi": {}, "apic": {}, "smm": {"enabled": True}},
            "devices": devices,
        },
        "networks": [
            {"name": "default", "pod": {}},
            {"name": "storage", "multus": {"networkName": "payments/storage-net"}},
        ],
        "terminationGracePeriodSeconds": 45,
        "evictionStrategy": "LiveMigrate",
        "volumes": [
            {"name": "rootdisk", "persistentVolumeClaim": {"claimName": "db-primary-rootdisk"}},
            {
                "name": "cloudinitdisk",
                "cloudInitNoCloud": {
                    "userData": "#cloud-config\nuser: fedora\npassword: changeme\nchpasswd: { expire: False }\n"
                    "ssh_authorized_keys:\n  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8i9yfG0bench user@host\n"
                },
            },
        ],
    }


def dedicated_vmi() -> dict[str, Any]:
    """A dedicated-CPU VMI with a passthrough device declared in the spec form."""
    return objects.vmi(
        _vmi_spec(passthrough_spec=True), name="db-primary", namespace="payments", labels={"kubevirt.io/size": "large"}
    )


def vm() -> dict[str, Any]:
    """A VirtualMachine whose template asks for dedicated CPUs and a device through the annotation."""
    return objects.vm(
        _vmi_spec(passthrough_spec=False),
        name="db-primary",
        namespace="payments",
        template_metadata={
            "labels": {"kubevirt.io/domain": "db-primary", "kubevirt.io/size": "large"},
            "annotations": {PASSTHROUGH: "10de:1eb8"},
        },
        runStrategy="Always",
    )


def unrelated_pod() -> dict[str, Any]:
    """An ordinary Deployment pod: no dedicated-CPU selector, no passthrough (the fast path)."""
    pod = objects.pod(
        [
            {
                "name": "web",
                "image": "nginx:1.27",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5},
            }
        ],
        spec={"serviceAccountName": "web", "terminationGracePeriodSeconds": 30},
        name=None,
        namespace="shop",
        labels={"app": "web", "pod-template-hash": "7d9c5b6f8"},
    )
    pod["metadata"] = {"generateName": "web-7d9c5b6f8-", **pod["metadata"]}
    return pod


OBJECTS = {
    "launcher-pod": launcher_pod,
    "dedicated-vmi": dedicated_vmi,
    "vm": vm,
    "unrelated-pod": unrelated_pod,
}


@dataclass(frozen=True, slots=True)
class Payload:
    """One benchmark case: a name, the webhook it goes to, the request body."""

    name: str
    webhook: Webhook
    body: bytes


def _admitted(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` after our mutating webhook (what the validating webhook sees in a cluster)."""
    from webhook.config import Config
    from webhook.engine import chain

    return chain(obj, Config()).admitted


def payloads() -> list[Payload]:
    """Every case, in table order: mutate and validate for each object (the unrelated pod: mutate only)."""
    out: list[Payload] = []
    for name, build in OBJECTS.items():
        obj = build()
        out.append(Payload(name, "mutate", orjson.dumps(review(obj))))
        if name != "unrelated-pod":
            out.append(Payload(name, "validate", orjson.dumps(review(_admitted(obj)))))
    return out
