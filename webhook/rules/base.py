"""What every rule returns, and what it is given.

A rule is a pure function ``(obj, ctx) -> Findings`` over the raw object dict. Validation rules only read;
mutation rules edit through ``ctx.patch`` (see :mod:`webhook.k8s.patch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from webhook.config import Config
from webhook.k8s.patch import PatchBuilder
from webhook.k8s.paths import Path
from webhook.k8s.paths import field as field_path
from webhook.k8s.snapshot import ClusterSnapshot

if TYPE_CHECKING:  # what rules compute once per review and share (set by the first rule that needs it)
    from webhook.rules.cpu import SpecRead
    from webhook.rules.passthrough import Plan

CauseType = Literal[
    "FieldValueInvalid",
    "FieldValueRequired",
    "FieldValueNotSupported",
    "FieldValueDuplicate",
    "FieldValueNotFound",
]
Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


@dataclass(frozen=True, slots=True)
class Cause:
    """One problem, on one field (``field`` is a rendered field path; "" when it has none, as for KubeVirt's
    ``cpu.memory-required``)."""

    field: str
    message: str
    type: CauseType = "FieldValueInvalid"
    rule: str = ""  # stable rule id (docs/rules.md), e.g. "cpu.cpu-request-not-limit", "preflight.not-enough-devices"

    @classmethod
    def at(cls, path: Path, message: str, type: CauseType = "FieldValueInvalid", rule: str = "") -> Cause:
        return cls(field_path(path), message, type, rule)


@dataclass(slots=True, init=False)
class Findings:
    """What rules found: causes deny, warnings inform, audit annotations go to the audit log.

    ``bad_request`` marks an object the rules could not read (a 400, not a policy denial). ``advisories`` are
    the warnings that are findings of a rule (preflight under ``cluster.enforcement: warn``) kept as causes, so
    ``vm-admission audit`` reads their rule id and field without parsing the warning text; the warning itself
    is in ``warnings`` too. They never travel on the wire.

    The per-review classes (this, :class:`Context`, ``engine.Verdict``, ``passthrough.Plan``) spell out
    ``__init__``: mypyc compiles a hand-written one, while a dataclass's generated ``__init__`` stays
    interpreted (0.2-0.4 µs per object, several objects per review).
    """

    causes: list[Cause]
    warnings: list[str]
    audit: dict[str, str]
    bad_request: str | None
    advisories: list[Cause]

    def __init__(
        self,
        causes: list[Cause] | None = None,
        warnings: list[str] | None = None,
        audit: dict[str, str] | None = None,
        bad_request: str | None = None,
        advisories: list[Cause] | None = None,
    ) -> None:
        self.causes = [] if causes is None else causes
        self.warnings = [] if warnings is None else warnings
        self.audit = {} if audit is None else audit
        self.bad_request = bad_request
        self.advisories = [] if advisories is None else advisories

    def extend(self, other: Findings) -> None:
        self.causes.extend(other.causes)
        self.warnings.extend(other.warnings)
        self.advisories.extend(other.advisories)
        self.audit.update(other.audit)
        if self.bad_request is None:
            self.bad_request = other.bad_request


@dataclass(slots=True, init=False)
class Context:
    """Everything a rule may know beyond the object: the config and the request's facts."""

    config: Config
    kind: str
    operation: Operation
    old_object: dict[str, Any] | None
    namespace: str
    dry_run: bool
    patch: PatchBuilder | None  # set for mutation; rules must not edit without it
    cluster: ClusterSnapshot | None  # the cluster view when it is on and synced; rules only read it
    # Not the API server's admission call but ``audit`` or ``review``: rules also report what an object would
    # run without (networks.vf-missing), which at admission is the mutators' job to prevent.
    offline: bool
    # Computed once per review by whichever rule needs it first (no rule depends on another having run):
    cpu_spec: SpecRead | None  # the VMI spec (or VM template spec) read and defaulted: rules.cpu.read
    passthrough_plan: Plan | None  # the passthrough declarations checked: rules.passthrough.checked

    def __init__(
        self,
        config: Config,
        kind: str,
        operation: Operation = "CREATE",
        old_object: dict[str, Any] | None = None,
        namespace: str = "",
        dry_run: bool = False,
        patch: PatchBuilder | None = None,
        cluster: ClusterSnapshot | None = None,
        offline: bool = False,
    ) -> None:
        self.config, self.kind, self.operation, self.old_object = config, kind, operation, old_object
        self.namespace, self.dry_run, self.patch, self.cluster = namespace, dry_run, patch, cluster
        self.offline = offline
        self.cpu_spec = None
        self.passthrough_plan = None


def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, for messages about a value of the wrong type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names: dict[type, str] = {dict: "object", list: "list", str: "string"}
    return names.get(type(value), type(value).__name__)


def quoted(raw: Any) -> str:
    """A value as it is shown in a message: a quantity or other string quoted, anything else as its string."""
    return repr(raw) if isinstance(raw, str) else repr(str(raw))


def default_architecture(ctx: Context) -> str:
    """The architecture KubeVirt gives a spec without ``spec.architecture`` (docs/dedicated-cpu.md).

    virt-api defaults it from the KubeVirt CR's ``status.defaultArchitecture``; we know that value only when the
    cluster view (docs/cluster-view.md) is on, synced and has the CR, and an empty value counts as unknown. Otherwise
    the config's ``kubevirt.defaultArchitecture`` (default ``amd64``) stands in for it.
    """
    cluster = ctx.cluster
    kubevirt = cluster.kubevirt if cluster is not None and cluster.usable else None
    if kubevirt is not None and kubevirt.default_architecture:
        return kubevirt.default_architecture
    return ctx.config.kubevirt.defaultArchitecture


def cluster_finding(findings: Findings, cause: Cause, ctx: Context, label: str = "") -> None:
    """A finding about the cluster (preflight, NADs): a cause under ``cluster.enforcement: enforce``, else a
    warning (``label``: its prefix, default the rule id) kept as an advisory for ``audit``."""
    if ctx.config.cluster.enforcement == "enforce":
        findings.causes.append(cause)
    else:
        findings.warnings.append(f"{label or cause.rule}: {cause.field}: {cause.message}")
        findings.advisories.append(cause)


RUN_STRATEGIES = ("Always", "RerunOnFailure", "Once")


def to_run(vm: dict[str, Any]) -> bool:
    """A VM that is to run: ``running: true`` or runStrategy Always, RerunOnFailure or Once."""
    spec = vm.get("spec")
    return isinstance(spec, dict) and (spec.get("running") is True or spec.get("runStrategy") in RUN_STRATEGIES)
