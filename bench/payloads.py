"""Benchmark payloads: AdmissionReviews as kube-apiserver sends them, built once and serialised to bytes.

- ``launcher-pod``: a ~9 KB virt-launcher pod of a dedicated-CPU VMI as KubeVirt renders it (``compute``,
  a hook sidecar without resources, the ``guest-console-log`` native sidecar init container, an injected
  service-mesh proxy with requests only, the ``kubevirt.io/cpumanager`` node selector and a passthrough
  annotation) -- the pod the mutating webhook has the most work on;
- ``dedicated-vmi``: a VMI with dedicated CPUs, NUMA-less, a passthrough device in the spec form;
- ``vm``: a VirtualMachine whose template asks for dedicated CPUs and a device by annotation;
- ``unrelated-pod``: an ordinary web pod no rule concerns (the fast path).

The validate payload of a kind is the mutate payload with our own patch applied, as the API server chains
the two webhooks (so validation sees what it sees in a cluster).
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import orjson

PASSTHROUGH = "vm-admission.io/passthrough"

Webhook = Literal["mutate", "validate"]

_GVK = {
    "Pod": {"group": "", "version": "v1", "kind": "Pod"},
    "VirtualMachineInstance": {"group": "kubevirt.io", "version": "v1", "kind": "VirtualMachineInstance"},
    "VirtualMachine": {"group": "kubevirt.io", "version": "v1", "kind": "VirtualMachine"},
}
_RESOURCE = {
    "Pod": "pods",
    "VirtualMachineInstance": "virtualmachineinstances",
    "VirtualMachine": "virtualmachines",
}


def review(
    obj: dict[str, Any], *, operation: str = "CREATE", api_version: str = "admission.k8s.io/v1"
) -> dict[str, Any]:
    """An AdmissionReview request for ``obj``, with every field kube-apiserver fills in."""
    kind = obj["kind"]
    gvk = _GVK[kind]
    resource = {"group": gvk["group"], "version": gvk["version"], "resource": _RESOURCE[kind]}
    meta = obj.get("metadata", {})
    return {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.UUID(int=0x5EED)),
            "kind": gvk,
            "resource": resource,
            "requestKind": gvk,
            "requestResource": resource,
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", "default"),
            "operation": operation,
            "userInfo": {
                "username": "system:serviceaccount:kubevirt:kubevirt-controller",
                "uid": "0b6b4f0e-8f1c-4b5e-9d55-0e1f2a3b4c5d",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kubevirt", "system:authenticated"],
            },
            "object": copy.deepcopy(obj),
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def _volume_mounts(names: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [{"name": n, "mountPath": p} for n, p in names]


def launcher_pod() -> dict[str, Any]:
    """The virt-launcher pod of a 4-vCPU dedicated VMI with a GPU, as it reaches the mutating webhook."""
    vmi = "db-primary"
    labels = {
        "kubevirt.io": "virt-launcher",
        "kubevirt.io/created-by": "4f1c2e3a-7b8d-4e5f-9a0b-1c2d3e4f5a6b",
        "vm.kubevirt.io/name": vmi,
        "kubevirt.io/domain": vmi,
        "kubevirt.io/size": "large",
        "app.kubernetes.io/part-of": "payments",
        "security.istio.io/tlsMode": "istio",
        "service.istio.io/canonical-name": vmi,
        "service.istio.io/canonical-revision": "latest",
    }
    annotations = {
        "kubevirt.io/domain": vmi,
        "kubevirt.io/migrationTransportUnix": "true",
        "kubectl.kubernetes.io/default-container": "compute",
        "post.hook.backup.velero.io/command": '["/usr/bin/virt-freezer", "--unfreeze", "--name", "db-primary"]',
        "pre.hook.backup.velero.io/command": '["/usr/bin/virt-freezer", "--freeze", "--name", "db-primary"]',
        "pre.hook.backup.velero.io/container": "compute",
        "hooks.kubevirt.io/hookSidecars": '[{"args": ["--version", "v1alpha2"], '
        '"image": "quay.io/kubevirt/sidecar-shim:v1.4.0", "configMap": {"name": "smbios-hook", '
        '"key": "my_script.sh", "hookPath": "/usr/bin/onDefineDomain"}}]',
        "sidecar.istio.io/status": '{"initContainers":null,"containers":["istio-proxy"],'
        '"volumes":["istio-envoy","istio-data","istio-podinfo","istio-token","istiod-ca-cert"],'
        '"imagePullSecrets":null,"revision":"default"}',
        "traffic.sidecar.istio.io/kubevirtInterfaces": "k6t-eth0",
        "k8s.v1.cni.cncf.io/networks": '[{"name":"storage-net","namespace":"payments","interface":"pod1a2b3c"}]',
        PASSTHROUGH: "10de:1eb8",
    }
    compute_env = [
        {"name": "XDG_CACHE_HOME", "value": "/var/run/kubevirt-private"},
        {"name": "XDG_CONFIG_HOME", "value": "/var/run/kubevirt-private"},
        {"name": "XDG_RUNTIME_DIR", "value": "/var/run"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
    ]
    compute = {
        "name": "compute",
        "image": "quay.io/kubevirt/virt-launcher:v1.4.0",
        "imagePullPolicy": "IfNotPresent",
        "command": [
            "/usr/bin/virt-launcher-monitor",
            "--qemu-timeout",
            "321s",
            "--name",
            vmi,
            "--uid",
            "4f1c2e3a-7b8d-4e5f-9a0b-1c2d3e4f5a6b",
            "--namespace",
            "payments",
            "--kubevirt-share-dir",
            "/var/run/kubevirt",
            "--ephemeral-disk-dir",
            "/var/run/kubevirt-ephemeral-disks",
            "--container-disk-dir",
            "/var/run/kubevirt/container-disks",
            "--grace-period-seconds",
            "45",
            "--hook-sidecars",
            "1",
            "--ovmf-path",
            "/usr/share/OVMF",
            "--run-as-nonroot",
        ],
        "env": compute_env,
        "resources": {
            "limits": {
                "cpu": "4",
                "memory": "8560Mi",
                "devices.kubevirt.io/kvm": "1",
                "devices.kubevirt.io/tun": "1",
                "devices.kubevirt.io/vhost-net": "1",
            },
            "requests": {
                "cpu": "4",
                "memory": "8560Mi",
                "ephemeral-storage": "50M",
                "devices.kubevirt.io/kvm": "1",
                "devices.kubevirt.io/tun": "1",
                "devices.kubevirt.io/vhost-net": "1",
            },
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"add": ["NET_BIND_SERVICE", "SYS_NICE"], "drop": ["ALL"]},
            "privileged": False,
            "runAsGroup": 107,
            "runAsNonRoot": True,
            "runAsUser": 107,
        },
        "volumeMounts": _volume_mounts(
            [
                ("private", "/var/run/kubevirt-private"),
                ("public", "/var/run/kubevirt"),
                ("ephemeral-disks", "/var/run/kubevirt-ephemeral-disks"),
                ("container-disks", "/var/run/kubevirt/container-disks"),
                ("libvirt-runtime", "/var/run/libvirt"),
                ("sockets", "/var/run/kubevirt/sockets"),
                ("hook-sidecar-sockets", "/var/run/kubevirt-hooks"),
                ("hotplug-disks", "/var/run/kubevirt/hotplug-disks"),
                ("rootdisk", "/var/run/kubevirt-private/vmi-disks/rootdisk"),
            ]
        ),
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    hook_sidecar = {
        "name": "hook-sidecar-0",
        "image": "quay.io/kubevirt/sidecar-shim:v1.4.0",
        "imagePullPolicy": "IfNotPresent",
        "args": ["--version", "v1alpha2"],
        "resources": {},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": 107,
        },
        "volumeMounts": _volume_mounts(
            [("hook-sidecar-sockets", "/var/run/kubevirt-hooks"), ("smbios-hook", "/usr/bin/onDefineDomain")]
        ),
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    proxy = {
        "name": "istio-proxy",
        "image": "docker.io/istio/proxyv2:1.23.2",
        "args": [
            "proxy",
            "sidecar",
            "--domain",
            "$(POD_NAMESPACE).svc.cluster.local",
            "--proxyLogLevel=warning",
            "--proxyComponentLogLevel=misc:error",
            "--log_output_level=default:info",
        ],
        "env": [
            {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
            {"name": "CA_ADDR", "value": "istiod.istio-system.svc:15012"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}},
            },
            {"name": "INSTANCE_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
            {
                "name": "SERVICE_ACCOUNT",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.serviceAccountName"}},
            },
            {"name": "PROXY_CONFIG", "value": "{}"},
            {"name": "ISTIO_META_POD_PORTS", "value": "[]"},
            {"name": "ISTIO_META_APP_CONTAINERS", "value": "compute,hook-sidecar-0"},
            {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"},
            {"name": "ISTIO_META_INTERCEPTION_MODE", "value": "REDIRECT"},
            {"name": "ISTIO_META_WORKLOAD_NAME", "value": vmi},
            {"name": "ISTIO_META_MESH_ID", "value": "cluster.local"},
            {"name": "TRUST_DOMAIN", "value": "cluster.local"},
        ],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "readinessProbe": {
            "failureThreshold": 4,
            "httpGet": {"path": "/healthz/ready", "port": 15021, "scheme": "HTTP"},
            "periodSeconds": 15,
            "timeoutSeconds": 3,
        },
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsGroup": 1337,
            "runAsNonRoot": True,
            "runAsUser": 1337,
        },
        "volumeMounts": _volume_mounts(
            [
                ("workload-socket", "/var/run/secrets/workload-spiffe-uds"),
                ("credential-socket", "/var/run/secrets/credential-uds"),
                ("workload-certs", "/var/run/secrets/workload-spiffe-credentials"),
                ("istiod-ca-cert", "/var/run/secrets/istio"),
                ("istio-data", "/var/lib/istio/data"),
                ("istio-envoy", "/etc/istio/proxy"),
                ("istio-token", "/var/run/secrets/tokens"),
                ("istio-podinfo", "/etc/istio/pod"),
            ]
        ),
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    console_log = {
        "name": "guest-console-log",
        "image": "quay.io/kubevirt/virt-launcher:v1.4.0",
        "imagePullPolicy": "IfNotPresent",
        "command": ["/usr/bin/virt-tail"],
        "args": ["--logfile", "/var/run/kubevirt-private/4f1c2e3a/virt-serial0-log"],
        "restartPolicy": "Always",
        "resources": {"limits": {"cpu": "15m", "memory": "60M"}, "requests": {"cpu": "5m", "memory": "35M"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": 107,
        },
        "volumeMounts": _volume_mounts([("private", "/var/run/kubevirt-private")]),
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    # KubeVirt sets request := limit on support containers of dedicated VMIs (REFERENCE §2.4).
    console_log["resources"] = {"limits": {"cpu": "15m", "memory": "60M"}, "requests": {"cpu": "15m", "memory": "60M"}}
    volumes: list[dict[str, Any]] = [
        {"name": "private", "emptyDir": {}},
        {"name": "public", "emptyDir": {}},
        {"name": "sockets", "emptyDir": {}},
        {"name": "virt-bin-share-dir", "emptyDir": {}},
        {"name": "libvirt-runtime", "emptyDir": {}},
        {"name": "ephemeral-disks", "emptyDir": {}},
        {"name": "container-disks", "emptyDir": {}},
        {"name": "hook-sidecar-sockets", "emptyDir": {}},
        {"name": "hotplug-disks", "emptyDir": {}},
        {"name": "rootdisk", "persistentVolumeClaim": {"claimName": "db-primary-rootdisk"}},
        {"name": "smbios-hook", "configMap": {"name": "smbios-hook", "defaultMode": 493}},
        {"name": "workload-socket", "emptyDir": {}},
        {"name": "credential-socket", "emptyDir": {}},
        {"name": "workload-certs", "emptyDir": {}},
        {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},
        {"name": "istio-data", "emptyDir": {}},
        {
            "name": "istio-podinfo",
            "downwardAPI": {
                "items": [
                    {"fieldRef": {"fieldPath": "metadata.labels"}, "path": "labels"},
                    {"fieldRef": {"fieldPath": "metadata.annotations"}, "path": "annotations"},
                ]
            },
        },
        {
            "name": "istio-token",
            "projected": {
                "sources": [
                    {"serviceAccountToken": {"audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}
                ]
            },
        },
        {"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}},
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"virt-launcher-{vmi}-",
            "namespace": "payments",
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "kubevirt.io/v1",
                    "kind": "VirtualMachineInstance",
                    "name": vmi,
                    "uid": "4f1c2e3a-7b8d-4e5f-9a0b-1c2d3e4f5a6b",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [compute, hook_sidecar, proxy],
            "initContainers": [console_log],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": False,
            "hostname": vmi,
            "nodeSelector": {
                "kubernetes.io/arch": "amd64",
                "kubevirt.io/schedulable": "true",
                "kubevirt.io/cpumanager": "true",
                "cpu-model.node.kubevirt.io/Skylake-Server-IBRS": "true",
            },
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "readinessGates": [{"conditionType": "kubevirt.io/virtual-machine-unpaused"}],
            "restartPolicy": "Never",
            "schedulerName": "default-scheduler",
            "securityContext": {"fsGroup": 107, "runAsGroup": 107, "runAsNonRoot": True, "runAsUser": 107},
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 60,
            "tolerations": [
                {
                    "effect": "NoExecute",
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "tolerationSeconds": 300,
                },
                {
                    "effect": "NoExecute",
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "tolerationSeconds": 300,
                },
            ],
            "volumes": volumes,
        },
    }


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
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"name": "db-primary", "namespace": "payments", "labels": {"kubevirt.io/size": "large"}},
        "spec": _vmi_spec(passthrough_spec=True),
    }


def vm() -> dict[str, Any]:
    """A VirtualMachine whose template asks for dedicated CPUs and a device through the annotation."""
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": "db-primary", "namespace": "payments"},
        "spec": {
            "runStrategy": "Always",
            "template": {
                "metadata": {
                    "labels": {"kubevirt.io/domain": "db-primary", "kubevirt.io/size": "large"},
                    "annotations": {PASSTHROUGH: "10de:1eb8"},
                },
                "spec": _vmi_spec(passthrough_spec=False),
            },
        },
    }


def unrelated_pod() -> dict[str, Any]:
    """An ordinary Deployment pod: no dedicated-CPU selector, no passthrough (the fast path)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "web-7d9c5b6f8-",
            "namespace": "shop",
            "labels": {"app": "web", "pod-template-hash": "7d9c5b6f8"},
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "nginx:1.27",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5},
                }
            ],
            "serviceAccountName": "web",
            "terminationGracePeriodSeconds": 30,
        },
    }


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
