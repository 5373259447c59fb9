"""The admission table: which kinds vm-admission reviews, for which operations, with which rules.

One row per kind: its group, version and plural, and the webhooks it is registered with (a name, the operations
the API server sends, the mutating and validating rules that run). Everything that asks "which kinds and
operations" reads this table: the engine (which rules run), ``webhook-config`` (what is registered), the audit
(what it lists), the request counters (their ``kind`` label), the tests and the benchmarks. The
``matchConditions`` that keep most objects away from the webhook are built beside the CEL helpers in
:mod:`webhook.webhook_config`, keyed by the hook names here; the engine's own filter (``engine._concerned``) is
the same conditions in Python, so a review with no conditions (``kubectl --dry-run``, ``review``, ``audit``)
is answered alike.

A rule is listed where it runs and checks no operation itself; adding a rule is adding it to a row
(docs/architecture.md, "Adding a rule").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from webhook.rules import attachments, cpu, devices, network, passthrough, preflight, qos
from webhook.rules.base import Context, Findings, Operation

Phase = Literal["mutate", "validate"]
PHASES: tuple[Phase, ...] = ("mutate", "validate")
Rule = Callable[[dict[str, Any], Context], Findings]


@dataclass(frozen=True, slots=True)
class Hook:
    """One webhook registration of a kind: the API server sends ``operations``; ``mutators`` run on /mutate and
    ``validators`` on /validate (an empty tuple: not registered for that phase)."""

    name: str  # the webhook names' prefix: <name>.<phase>.vm-admission.io
    operations: tuple[Operation, ...]
    mutators: tuple[Rule, ...] = ()
    validators: tuple[Rule, ...] = ()

    def rules(self, phase: Phase) -> tuple[Rule, ...]:
        return self.mutators if phase == "mutate" else self.validators


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind and where it lives in the API; with hooks, one we review (the audit also lists PolicyReports, a kind
    without hooks)."""

    kind: str
    group: str
    version: str
    plural: str
    hooks: tuple[Hook, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """``plural.group`` (``pods`` for the core group), as kubectl names it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def gvk(self) -> dict[str, str]:
        """The AdmissionReview's ``request.kind``."""
        return {"group": self.group, "version": self.version, "kind": self.kind}


POD = Kind(
    "Pod",
    "",
    "v1",
    "pods",
    (
        Hook(
            "pods",
            ("CREATE",),
            mutators=(qos.mutate_pod, passthrough.mutate_pod, attachments.mutate_pod),
            validators=(qos.validate_pod, passthrough.validate_pod, attachments.validate_pod, preflight.validate_pod),
        ),
        # container resources are immutable: an update is checked only for a networks change (hotplug)
        Hook("pod-networks", ("UPDATE",), validators=(attachments.validate_pod_update,)),
    ),
)
VMI = Kind(
    "VirtualMachineInstance",
    "kubevirt.io",
    "v1",
    "virtualmachineinstances",
    (  # CREATE only: VMI updates belong to KubeVirt's own service accounts
        Hook(
            "virtualmachineinstances",
            ("CREATE",),
            mutators=(passthrough.mutate_vmi,),
            validators=(
                cpu.validate_vmi,
                passthrough.validate_vmi,
                devices.validate_vmi,
                network.validate_vmi,
                attachments.validate_vmi,
                preflight.validate_vmi,
            ),
        ),
    ),
)
VM = Kind(
    "VirtualMachine",
    "kubevirt.io",
    "v1",
    "virtualmachines",
    (
        Hook(
            "virtualmachines",
            ("CREATE", "UPDATE"),
            mutators=(passthrough.mutate_vm,),
            validators=(
                cpu.validate_vm,
                passthrough.validate_vm,
                devices.validate_vm,
                network.validate_vm,
                attachments.validate_vm,
                preflight.validate_vm,
            ),
        ),
    ),
)
TABLE: tuple[Kind, ...] = (POD, VMI, VM)
BY_KIND: dict[str, Kind] = {k.kind: k for k in TABLE}
KINDS: frozenset[str] = frozenset(BY_KIND)


def _rules_by_request() -> dict[tuple[str, Phase, str], tuple[Rule, ...]]:
    out: dict[tuple[str, Phase, str], tuple[Rule, ...]] = {}
    for kind in TABLE:
        for hook in kind.hooks:
            for phase in PHASES:
                for operation in hook.operations if hook.rules(phase) else ():
                    out[(kind.kind, phase, operation)] = hook.rules(phase)  # one hook per operation of a kind
    return out


# (kind, phase, operation) -> the rules that run, in order: what the engine looks up per review
RULES: dict[tuple[str, Phase, str], tuple[Rule, ...]] = _rules_by_request()


def rules_for(kind: str, phase: Phase, operation: str) -> tuple[Rule, ...]:
    return RULES.get((kind, phase, operation), ())
