"""The pure core: one admission request in, one verdict out. No HTTP, no I/O, no clock.

``handle`` picks the rules for the request's kind and operation, runs them over the raw object and turns
their findings into a :class:`Verdict`. ``chain`` runs mutate -> patch -> defaulting -> validate the way
the API server chains our two webhooks (used by ``vm-admission review``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.admission import BY_KIND, RULES, Phase, Rule
from webhook.config import Config
from webhook.k8s.defaults import default_pod_requests
from webhook.k8s.patch import JsonPatch, PatchBuilder, PatchError
from webhook.k8s.snapshot import ClusterSnapshot
from webhook.rules import attachments, passthrough, preflight, qos
from webhook.rules.base import Cause, Context, Findings, Operation
from webhook.rules.qos import is_dedicated_pod

Webhook = Phase

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
MAX_CAUSES = 10

# Most pods in a cluster are neither dedicated-CPU pods nor carry a passthrough declaration or networks: the Pod
# CREATE rules have nothing to say about them (``pod_concerned``), and ``handle`` answers such pods without
# building a context (most of the fast path's time). A Pod rule not in this set (a new one, a test's) turns that
# off until ``pod_concerned`` knows what it looks at.
GATED_POD_RULES: frozenset[Rule] = frozenset(
    {
        qos.mutate_pod,
        passthrough.mutate_pod,
        attachments.mutate_pod,
        qos.validate_pod,
        passthrough.validate_pod,
        attachments.validate_pod,
        preflight.validate_pod,
    }
)


@dataclass(slots=True, init=False)
class Verdict:
    """The outcome of one review, independent of the envelope it travels in.

    ``would_deny``: with ``enforcement: warn``, the causes that would have denied (their rule ids stay reachable
    for the denials metric and ``review -o json``); ``causes`` is then empty. ``advisories``: the warnings that
    are rule findings (the preflight's node findings in warn mode), structured. Neither is sent on the wire.
    ``__init__`` is spelled out so that mypyc compiles it (see ``rules.base.Findings``).
    """

    allowed: bool
    code: int
    message: str
    reason: str
    causes: list[Cause]
    warnings: list[str]
    audit: dict[str, str]
    patch: JsonPatch
    would_deny: list[Cause]
    advisories: list[Cause]

    def __init__(
        self,
        allowed: bool = True,
        code: int = 200,
        message: str = "",
        reason: str = "",
        causes: list[Cause] | None = None,
        warnings: list[str] | None = None,
        audit: dict[str, str] | None = None,
        patch: JsonPatch | None = None,
        would_deny: list[Cause] | None = None,
        advisories: list[Cause] | None = None,
    ) -> None:
        self.allowed, self.code, self.message, self.reason = allowed, code, message, reason
        self.causes = [] if causes is None else causes
        self.warnings = [] if warnings is None else warnings
        self.audit = {} if audit is None else audit
        self.patch = [] if patch is None else patch
        self.would_deny = [] if would_deny is None else would_deny
        self.advisories = [] if advisories is None else advisories


def object_kind(request: Mapping[str, Any]) -> str:
    """The kind of the admission table the request is about ('' when none): matched by kind and group."""
    kind = request.get("kind")
    if not isinstance(kind, dict):
        return ""
    row = BY_KIND.get(kind.get("kind"))  # type: ignore[arg-type]
    return row.kind if row is not None and kind.get("group", "") == row.group else ""


def pod_concerned(pod: dict[str, Any], config: Config) -> bool:
    """Whether any Pod rule (mutating or validating) has something to say about ``pod``."""
    return is_dedicated_pod(pod, config) or passthrough.concerns_pod(pod) or attachments.concerns_pod(pod)


def _concerned(kind: str, operation: str, obj: Any, old: Any) -> bool:
    """The admission table's match conditions, for the requests the table has rules for."""
    if not isinstance(obj, dict):
        return False
    if kind == "Pod" and operation == "UPDATE" and attachments.networks_value(obj) == attachments.networks_value(old):
        return False  # pod-networks: only a change of the networks annotation (pod network hotplug)
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return True
    if kind == "VirtualMachine" and meta.get("deletionTimestamp"):
        return False  # KubeVirt lets a VM that is being deleted through (finalizer updates must not stick)
    annotations = meta.get("annotations")
    return not (kind == "Pod" and isinstance(annotations, dict) and MIRROR_ANNOTATION in annotations)


def handle(
    request: Mapping[str, Any],
    webhook: Webhook,
    config: Config,
    cluster: ClusterSnapshot | None = None,
    offline: bool = False,
) -> Verdict:
    """Review one AdmissionReview ``request`` for ``webhook`` and return the verdict.

    ``cluster`` is the cluster view's snapshot (docs/cluster-view.md); None, or one not synced, turns preflight
    off. ``offline``: ``audit`` or ``review`` asks, not the API server (see ``rules.base.Context.offline``).

    Raises nothing for bad objects (they become a 400 verdict); unexpected exceptions from a rule are the
    caller's to turn into an errored response.
    """
    kind = object_kind(request)
    if not kind:
        return Verdict()
    operation = request.get("operation")
    if not isinstance(operation, str):
        return Verdict()
    rules = RULES.get((kind, webhook, operation))
    obj = request.get("object")
    old = request.get("oldObject")
    if rules is None or not _concerned(kind, operation, obj, old):
        return Verdict()
    assert isinstance(obj, dict)
    if kind == "Pod" and operation == "CREATE" and GATED_POD_RULES.issuperset(rules) and not pod_concerned(obj, config):
        return Verdict()
    ctx = Context(
        config=config,
        kind=kind,
        operation=operation,  # type: ignore[arg-type]  # one of the table's operations
        old_object=old if isinstance(old, dict) else None,
        namespace=str(request.get("namespace") or ""),
        dry_run=bool(request.get("dryRun")),
        cluster=cluster if cluster is not None and cluster.usable else None,
        offline=offline,
    )
    if webhook == "mutate":
        return run_mutators(obj, ctx, rules)
    return run_validators(obj, ctx, rules)


def run_mutators(obj: dict[str, Any], ctx: Context, rules: tuple[Rule, ...]) -> Verdict:
    """Run the mutation ``rules`` on ``obj`` (edited in place) and collect one patch."""
    ctx.patch = PatchBuilder(obj)
    findings = Findings()
    try:
        for rule in rules:
            findings.extend(rule(obj, ctx))
    except PatchError as exc:
        findings.bad_request = f"cannot patch the object: {exc}"
    verdict = to_verdict(findings, ctx.config)
    if verdict.allowed:
        verdict.patch = ctx.patch.ops
    return verdict


def run_validators(obj: dict[str, Any], ctx: Context, rules: tuple[Rule, ...]) -> Verdict:
    findings = Findings()
    for rule in rules:
        findings.extend(rule(obj, ctx))
    return to_verdict(findings, ctx.config)


def deny_message(causes: list[Cause]) -> str:
    shown = [c.message if not c.field else f"{c.field}: {c.message}" for c in causes[:MAX_CAUSES]]
    message = ", ".join(shown)
    if len(causes) > MAX_CAUSES:
        message += f", and {len(causes) - MAX_CAUSES} more"
    return message


def to_verdict(findings: Findings, config: Config) -> Verdict:
    """Turn findings into a verdict; ``enforcement: warn`` turns denials into warnings naming the fields."""
    verdict = Verdict(
        warnings=list(findings.warnings), audit=dict(findings.audit), advisories=list(findings.advisories)
    )
    if findings.bad_request is not None:
        verdict.allowed, verdict.code, verdict.reason = False, 400, "BadRequest"
        verdict.message = findings.bad_request
        return verdict
    if not findings.causes:
        return verdict
    message = deny_message(findings.causes)
    if config.enforcement == "warn":
        verdict.warnings.extend(
            f"would deny: {c.field}: {c.message}" if c.field else f"would deny: {c.message}" for c in findings.causes
        )
        verdict.audit["would-deny"] = message
        verdict.would_deny = findings.causes
        return verdict
    verdict.allowed, verdict.code, verdict.reason = False, 422, "Invalid"
    verdict.causes = findings.causes
    verdict.message = message
    return verdict


@dataclass(slots=True)
class ChainResult:
    """``review``'s result for one object: the mutation verdict, the validation verdict, the final object."""

    mutation: Verdict
    validation: Verdict
    admitted: dict[str, Any]

    @property
    def allowed(self) -> bool:
        return self.mutation.allowed and self.validation.allowed


def chain(
    obj: dict[str, Any],
    config: Config,
    operation: Operation = "CREATE",
    old_object: dict[str, Any] | None = None,
    namespace: str = "",
    cluster: ClusterSnapshot | None = None,
) -> ChainResult:
    """Run mutate -> apply patch -> Kubernetes defaulting -> validate on a copy of ``obj``."""
    request: dict[str, Any] = {
        "uid": "review",
        "kind": _gvk(obj),
        "operation": operation,
        "namespace": namespace,
        "object": copy.deepcopy(obj),
        "oldObject": old_object,
    }
    mutation = handle(request, "mutate", config, cluster, offline=True)
    admitted = request["object"]
    if object_kind(request) == "Pod":
        default_pod_requests(admitted)
    validation = handle(request, "validate", config, cluster, offline=True) if mutation.allowed else Verdict()
    return ChainResult(mutation, validation, admitted)


def _gvk(obj: Mapping[str, Any]) -> dict[str, str]:
    api_version = str(obj.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    return {"group": group, "version": version, "kind": str(obj.get("kind") or "")}
