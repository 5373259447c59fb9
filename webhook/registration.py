"""The Mutating- and ValidatingWebhookConfiguration for a running webhook (``vm-admission webhook-config``).

One webhook per resource type (pods, VMIs, VMs) and per phase, so each registration stays small and each
``matchConditions`` list reads at a glance. The conditions are there so the API server does not call us for
objects no rule concerns (most pods in a cluster): a pod is sent only when it is not a mirror pod and it
carries the guaranteed-QoS, passthrough or Multus networks annotation or a CPU-manager node selector, and a pod
UPDATE (to its own validating webhook) only when it changes the networks annotation; a VMI or VM is sent to
the mutating webhook only when it declares passthrough devices. Every VMI and VM goes to validation (the
general CPU/memory and network rules apply to all of them), VM updates only when they change the spec of a
VM that is not being deleted.

CEL notes: webhook ``matchConditions`` see ``object`` untyped, and selecting a missing field is an error (which
``failurePolicy: Fail`` turns into a rejected request), so every optional level is guarded with ``has()`` and
map keys are tested with ``in`` before they are read. No ``?.`` optional syntax (not enabled in older API
servers).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from webhook.admission import TABLE, Hook, Kind, Phase
from webhook.config import Config
from webhook.engine import MIRROR_ANNOTATION
from webhook.k8s.multus import NETWORKS_ANNOTATION
from webhook.rules.passthrough import ANNOTATION as PASSTHROUGH_ANNOTATION
from webhook.rules.qos import GUARANTEED_QOS_ANNOTATION

NAME = "vm-admission"
DOMAIN = "vm-admission.io"
TIMEOUT_SECONDS = 5
EXCLUDED_NAMESPACES = ("kube-system",)
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "admission-webhook"}
FailurePolicy = Literal["Fail", "Ignore"]


class WebhookConfigError(ValueError):
    """The command line cannot produce a configuration; the message says which flag and why."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where the API server calls us: a base URL (out-of-cluster) or a Service."""

    url: str | None = None
    namespace: str = ""
    service: str = ""
    port: int = 443

    def client_config(self, phase: Phase, ca_bundle: str | None) -> dict[str, Any]:
        cc: dict[str, Any]
        if self.url is not None:
            cc = {"url": f"{self.url}/{phase}"}
        else:
            cc = {
                "service": {"namespace": self.namespace, "name": self.service, "path": f"/{phase}", "port": self.port}
            }
        if ca_bundle is not None:
            cc["caBundle"] = ca_bundle
        return cc


def parse_url(url: str) -> Target:
    """A base URL the API server accepts: https, a host, no user info, query or fragment."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise WebhookConfigError(f"--url {url!r}: must start with https:// (the API server calls webhooks over TLS)")
    if not parts.hostname:
        raise WebhookConfigError(f"--url {url!r}: has no host")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise WebhookConfigError(f"--url {url!r}: must not carry user info, a query or a fragment")
    return Target(url=url.rstrip("/"))


def parse_service(ref: str, port: int) -> Target:
    """``NAMESPACE/NAME`` of the Service in front of the webhook."""
    namespace, sep, name = ref.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise WebhookConfigError(f"--service {ref!r}: write NAMESPACE/NAME, e.g. vm-admission/vm-admission")
    if not 1 <= port <= 65535:
        raise WebhookConfigError(f"--port {port}: must be 1..65535")
    return Target(namespace=namespace, service=name, port=port)


def read_ca_bundle(path: str) -> str:
    """The base64 ``caBundle`` of the PEM file at ``path``."""
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise WebhookConfigError(f"--ca-file {path}: cannot read: {exc.strerror or exc}") from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise WebhookConfigError(f"--ca-file {path}: not a PEM certificate (expected -----BEGIN CERTIFICATE-----)")
    return base64.b64encode(pem).decode("ascii")


# --- CEL -----------------------------------------------------------------------------------------------


def cel_string(value: str) -> str:
    """A CEL single-quoted string literal for ``value``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _has_path(root: str, *fields: str) -> str:
    """``has(root.a) && has(root.a.b) && ...``: every level guarded, as untyped objects require."""
    checks, cur = [], root
    for f in fields:
        cur = f"{cur}.{f}"
        checks.append(f"has({cur})")
    return " && ".join(checks)


def _has_annotation(meta: str, key: str) -> str:
    return f"{cel_string(key)} in {meta}.annotations"


def _any_annotation(meta_path: tuple[str, ...], keys: Sequence[str]) -> str:
    meta = ".".join(("object", *meta_path))
    tests = " || ".join(_has_annotation(meta, k) for k in keys)
    return f"({_has_path('object', *meta_path, 'annotations')} && ({tests}))"


def _node_selector(labels: Mapping[str, str]) -> str:
    if not labels:
        return "false"
    sel = "object.spec.nodeSelector"
    tests = " || ".join(
        f"({cel_string(k)} in {sel} && {sel}[{cel_string(k)}] == {cel_string(v)})" for k, v in sorted(labels.items())
    )
    return f"({_has_path('object', 'spec', 'nodeSelector')} && ({tests}))"


def _spec_passthrough(spec_path: tuple[str, ...]) -> str:
    return f"({_has_path('object', *spec_path, 'domain', 'devices', 'passthrough')})"


def _not_mirror() -> dict[str, str]:
    mirror = _has_annotation("object.metadata", MIRROR_ANNOTATION)
    return {"name": "not-a-mirror-pod", "expression": f"!has(object.metadata.annotations) || !({mirror})"}


def pod_conditions(config: Config) -> list[dict[str, str]]:
    """Only pods a rule concerns: not mirror pods; dedicated-CPU (annotation or node selector), passthrough, or
    secondary networks (the Multus networks annotation)."""
    keys = (GUARANTEED_QOS_ANNOTATION, PASSTHROUGH_ANNOTATION, NETWORKS_ANNOTATION)
    return [
        _not_mirror(),
        {
            "name": "dedicated-cpu-passthrough-or-networks",
            "expression": " || ".join((_any_annotation(("metadata",), keys), _node_selector(config.cpuManager.labels))),
        },
    ]


def _annotation_or_empty(root: str, key: str) -> str:
    meta = f"{root}.metadata"
    present = f"{_has_path(root, 'metadata', 'annotations')} && {_has_annotation(meta, key)}"
    return f"({present} ? {meta}.annotations[{cel_string(key)}] : '')"


def pod_update_conditions() -> list[dict[str, str]]:
    """Pod UPDATE only when the networks annotation changes (pod network hotplug): no other pod update, and
    pods update often (status, labels, finalizers), ever reaches the webhook."""
    new, old = (_annotation_or_empty(root, NETWORKS_ANNOTATION) for root in ("object", "oldObject"))
    return [_not_mirror(), {"name": "networks-changed", "expression": f"{new} != {old}"}]


def vm_conditions() -> list[dict[str, str]]:
    """VM updates only when the spec changes and the VM is not being deleted, as KubeVirt's own VM admitter
    allows deleting VMs: label, annotation and finalizer updates of an existing VM are never held up (a VM
    admitted before a config change could otherwise not even be deleted)."""
    return [
        {
            "name": "spec-changed-on-update",
            "expression": "request.operation != 'UPDATE' || !has(oldObject.spec) || !has(object.spec)"
            " || object.spec != oldObject.spec",
        },
        {"name": "not-being-deleted", "expression": "!has(object.metadata.deletionTimestamp)"},
    ]


def vmi_mutate_conditions() -> list[dict[str, str]]:
    """VMIs are mutated only for passthrough declarations (annotation or spec form)."""
    expr = f"{_any_annotation(('metadata',), (PASSTHROUGH_ANNOTATION,))} || {_spec_passthrough(('spec',))}"
    return [{"name": "declares-passthrough", "expression": expr}]


def vm_mutate_conditions() -> list[dict[str, str]]:
    """VMs are mutated only for passthrough declarations on their template."""
    template = ("spec", "template")
    expr = (
        f"{_any_annotation((*template, 'metadata'), (PASSTHROUGH_ANNOTATION,))}"
        f" || {_spec_passthrough((*template, 'spec'))}"
    )
    return [*vm_conditions(), {"name": "template-declares-passthrough", "expression": expr}]


# --- configurations ------------------------------------------------------------------------------------


def webhook_name(hook: Hook, phase: Phase) -> str:
    """E.g. ``pods.mutate.vm-admission.io`` (shown to users: 'admission webhook "..." denied the request')."""
    return f"{hook.name}.{phase}.{DOMAIN}"


def _hooks_in_order() -> list[tuple[Kind, Hook]]:
    """Each kind's first hook in table order, then the second ones (pod-networks last, where it was added)."""
    depth = max(len(k.hooks) for k in TABLE)
    return [(k, k.hooks[i]) for i in range(depth) for k in TABLE if i < len(k.hooks)]


def _no_conditions(config: Config) -> list[dict[str, str]]:
    return []


# The matchConditions of each hook of the admission table, per phase (engine._concerned is the same in Python).
CONDITIONS: dict[tuple[str, Phase], Callable[[Config], list[dict[str, str]]]] = {
    ("pods", "mutate"): pod_conditions,
    ("pods", "validate"): pod_conditions,
    ("pod-networks", "validate"): lambda _: pod_update_conditions(),
    ("virtualmachineinstances", "mutate"): lambda _: vmi_mutate_conditions(),
    ("virtualmachines", "mutate"): lambda _: vm_mutate_conditions(),
    ("virtualmachines", "validate"): lambda _: vm_conditions(),
}


def _webhook(
    kind: Kind,
    hook: Hook,
    phase: Phase,
    target: Target,
    ca_bundle: str | None,
    failure_policy: FailurePolicy,
    excluded: Sequence[str],
    conditions: list[dict[str, str]],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": webhook_name(hook, phase),
        "clientConfig": target.client_config(phase, ca_bundle),
        "rules": [
            {
                "apiGroups": [kind.group],
                "apiVersions": [kind.version],
                "operations": list(hook.operations),
                "resources": [kind.plural],
                "scope": "Namespaced",
            }
        ],
        "failurePolicy": failure_policy,
        "matchPolicy": "Equivalent",
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": list(excluded)},
            ]
        },
        "sideEffects": "None",
        "timeoutSeconds": TIMEOUT_SECONDS,
        "admissionReviewVersions": ["v1"],
    }
    if phase == "mutate":
        out["reinvocationPolicy"] = "IfNeeded"
    if conditions:
        out["matchConditions"] = conditions
    return out


def default_failure_policy(kind: Kind, phase: Phase) -> FailurePolicy:
    """Fail closed only where a user waits on the answer: VMI/VM validation. Mutation, and everything for
    pods, fails open: virt-controller creates launcher pods, and a webhook outage must not stop VMs from
    starting (an unmutated dedicated pod still runs; it is just not pinned until it is recreated)."""
    return "Fail" if phase == "validate" and kind.kind != "Pod" else "Ignore"


def build_configurations(
    target: Target,
    ca_bundle: str | None,
    failure_policy: FailurePolicy | None = None,
    config: Config | None = None,
) -> list[dict[str, Any]]:
    """[MutatingWebhookConfiguration, ValidatingWebhookConfiguration]; ``ca_bundle`` None leaves it out
    (for cert-manager's CA injector or a later patch); ``failure_policy`` None: :func:`default_failure_policy`."""
    config = config or Config()
    excluded = [*EXCLUDED_NAMESPACES]
    if target.namespace and target.namespace not in excluded:
        excluded.append(target.namespace)

    def hooks(phase: Phase) -> list[dict[str, Any]]:
        return [
            _webhook(
                kind,
                hook,
                phase,
                target,
                ca_bundle,
                failure_policy or default_failure_policy(kind, phase),
                excluded,
                CONDITIONS.get((hook.name, phase), _no_conditions)(config),
            )
            for kind, hook in _hooks_in_order()
            if hook.rules(phase)
        ]

    mutating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": NAME, "labels": dict(LABELS)},
        "webhooks": hooks("mutate"),
    }
    validating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": NAME, "labels": dict(LABELS)},
        "webhooks": hooks("validate"),
    }
    return [mutating, validating]


def render(configurations: Sequence[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(configurations, sort_keys=False, default_flow_style=False, width=120)
