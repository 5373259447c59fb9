"""The audit's run: list VMs, VMIs and pods page by page and review every stored object (docs/audit.md).

Objects are listed through the API client layer (:class:`webhook.cluster.client.Client`: ``limit``/``continue``,
raw JSON decoded with orjson) and every stored object goes through :func:`webhook.engine.handle` as a
synthesized CREATE on the validating webhook, with the preflight against a cluster view listed once through the
same client, so its requests are counted with the audit's. Stored objects are not mutated: only validation
runs. A page is dropped once reviewed, so memory holds one page and the findings, never the cluster.

Findings: the causes a CREATE would be denied for (``fail``; also under ``enforcement: warn``), preflight
findings that are warnings under ``cluster.enforcement: warn`` (``warn``, read from the verdict's structured
``advisories``, not from the warning text), and objects the rules cannot read (``error``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from webhook import admission
from webhook.admission import Kind as Kind  # the kinds it lists: the admission table's, and PolicyReports
from webhook.cluster.client import Client, error_message
from webhook.config import Config
from webhook.engine import Verdict, handle
from webhook.k8s.snapshot import ClusterSnapshot
from webhook.manifests import Source
from webhook.rules.base import Cause, CauseType
from webhook.rules.qos import NOT_GUARANTEED

if TYPE_CHECKING:
    from webhook.audit.render import Progress
    from webhook.cluster.view import ClusterView

# Objects per list page. A page of 500 launcher pods is ~40 MiB once decoded; 250 keeps a 20,000-object audit
# under 120 MiB peak RSS (bench.audit) for twice the list requests (84 instead of 44), and was no slower.
DEFAULT_LIMIT = 250
NOT_PINNED = "not pinned (the pod is not Guaranteed, so the CPU manager gives it no dedicated CPUs): "
Result = Literal["fail", "warn", "error"]


# The admission table's kinds, VMs first: a VM's findings name its template before its VMI and launcher pod
# repeat them.
KINDS = (admission.VM, admission.VMI, admission.POD)


class AuditError(Exception):
    """The audit cannot go on; the message is one line naming what failed."""


def api_error(exc: BaseException, verb: str, what: str) -> AuditError:
    """``exc`` from the client as one line (:func:`webhook.cluster.client.error_message`)."""
    return AuditError(error_message(exc, verb, what))


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    result: Result
    field: str
    message: str
    type: CauseType = "FieldValueInvalid"

    def as_json(self) -> dict[str, str]:
        """As ``review -o json`` prints a cause ({type, field, message, rule}), plus the result."""
        return {
            "result": self.result,
            "type": self.type,
            "field": self.field,
            "message": self.message,
            "rule": self.rule,
        }


@dataclass(frozen=True, slots=True)
class Ref:
    """What a PolicyReport result points at (a core ObjectReference)."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def as_json(self) -> dict[str, str]:
        out = {"apiVersion": self.api_version, "kind": self.kind, "namespace": self.namespace, "name": self.name}
        if self.uid:
            out["uid"] = self.uid
        return out

    @property
    def title(self) -> str:
        return Source("", 0, {"kind": self.kind, "metadata": {"namespace": self.namespace, "name": self.name}}).title


@dataclass(frozen=True, slots=True)
class Audited:
    """One stored object and what the audit found on it."""

    ref: Ref
    findings: tuple[Finding, ...]

    def as_json(self) -> dict[str, Any]:
        return {**self.ref.as_json(), "findings": [f.as_json() for f in self.findings]}


def findings_of(verdict: Verdict, kind: str) -> tuple[Finding, ...]:
    """The audit's findings in one validation verdict."""
    if not verdict.allowed and verdict.code == 400:
        return (Finding("object.unreadable", "error", "", verdict.message),)
    out = [_fail(c, kind) for c in (*verdict.causes, *verdict.would_deny)]
    out += [Finding(c.rule, "warn", c.field, c.message, c.type) for c in verdict.advisories]
    return tuple(out)


def _fail(c: Cause, kind: str) -> Finding:
    message = NOT_PINNED + c.message if kind == "Pod" and c.rule == NOT_GUARANTEED else c.message
    return Finding(c.rule, "fail", c.field, message, c.type)


def audit_object(obj: dict[str, Any], kind: Kind, config: Config, cluster: ClusterSnapshot | None) -> Audited:
    """Review one stored object as a CREATE on the validating webhook (nothing is mutated)."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    obj.setdefault("apiVersion", kind.api_version)
    obj.setdefault("kind", kind.kind)  # list items carry no kind of their own
    request = {
        "uid": "audit",
        "kind": {"group": kind.group, "version": kind.version, "kind": kind.kind},
        "resource": {"group": kind.group, "version": kind.version, "resource": kind.plural},
        "operation": "CREATE",
        "namespace": namespace,
        "name": name,
        "object": obj,
    }
    verdict = handle(request, "validate", config, cluster, offline=True)
    ref = Ref(kind.api_version, kind.kind, namespace, name, str(meta.get("uid") or ""))
    return Audited(ref, findings_of(verdict, kind.kind))


def scope(namespace: str | None, exclude: Sequence[str] = ()) -> str:
    where = f"in namespace {namespace}" if namespace else "in all namespaces"
    return where + (f" but {', '.join(exclude)}" if exclude and not namespace else "")


def exclude_selector(exclude: Sequence[str]) -> str | None:
    """``--exclude-namespace``s as a field selector the API server applies (every kind supports
    ``metadata.namespace``, custom resources too)."""
    return ",".join(f"metadata.namespace!={ns}" for ns in dict.fromkeys(exclude)) or None


# --- the run -----------------------------------------------------------------------------------------------


def _cluster_view(api: Client, page_size: int, resource_annotation: str) -> ClusterView:
    """The cluster view, listed through ``api`` (its list calls count in ``api.requests``)."""
    from webhook.cluster.view import ClusterView

    return ClusterView(api, page_size=page_size, resource_annotation=resource_annotation)


@dataclass(slots=True)
class Summary:
    """Counts of one audit: what was scanned, and findings by namespace and rule."""

    scanned: dict[str, int] = field(default_factory=lambda: {k.kind: 0 for k in KINDS})
    results: dict[str, int] = field(default_factory=lambda: {"fail": 0, "warn": 0, "error": 0})
    by_namespace: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    by_rule: dict[str, int] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)  # namespaces holding audited objects
    with_findings: int = 0
    requests: int = 0
    seconds: float = 0.0

    def add(self, a: Audited) -> None:
        self.scanned[a.ref.kind] += 1
        self.namespaces.add(a.ref.namespace)
        if a.findings:
            self.with_findings += 1
        for f in a.findings:
            self.results[f.result] += 1
            rules = self.by_namespace.setdefault(a.ref.namespace, {})
            counts = rules.setdefault(f.rule, {"fail": 0, "warn": 0, "error": 0})
            counts[f.result] += 1
            self.by_rule[f.rule] = self.by_rule.get(f.rule, 0) + 1

    @property
    def objects(self) -> int:
        return sum(self.scanned.values())

    @property
    def findings(self) -> int:
        return sum(self.results.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "objects": self.objects,
            "objectsWithFindings": self.with_findings,
            "results": self.results,
            "byNamespace": {ns: self.by_namespace[ns] for ns in sorted(self.by_namespace)},
            "byRule": {r: self.by_rule[r] for r in sorted(self.by_rule)},
            "apiRequests": self.requests,
            "seconds": round(self.seconds, 3),
        }


@dataclass(slots=True)
class AuditRun:
    found: list[Audited] = field(default_factory=list)  # the objects with findings only
    summary: Summary = field(default_factory=Summary)
    notes: list[str] = field(default_factory=list)


def run_audit(
    api: Client,
    config: Config,
    namespace: str | None,
    limit: int = DEFAULT_LIMIT,
    on_found: Callable[[Audited], None] | None = None,
    progress: Progress | None = None,
    *,
    keep: bool = True,
    exclude: Sequence[str] = (),
    selector: str | None = None,
) -> AuditRun:
    """List the cluster view once, then every kind page by page through the engine (raises AuditError).

    ``keep``: keep the objects with findings in ``run.found`` (for reports and JSON/YAML); without it they go to
    ``on_found`` only and memory stays flat however many findings there are. ``exclude`` (namespaces) and
    ``selector`` (a label selector) narrow the lists on the API server's side."""
    started = time.monotonic()
    run = AuditRun()
    view = _cluster_view(api, limit, config.networks.resourceNameAnnotation)
    try:
        cluster = view.list_once()
    except Exception as exc:
        raise api_error(
            exc, "list", "nodes, kubevirts.kubevirt.io and network-attachment-definitions (the cluster view)"
        ) from None
    skipped = set(exclude)
    fields = None if namespace else exclude_selector(exclude)
    for kind in KINDS:
        if namespace and namespace in skipped:
            break
        try:
            for page in api.pages(kind, namespace, limit, fields, selector):
                for obj in page:
                    audited = audit_object(obj, kind, config, cluster)
                    if audited.ref.namespace in skipped:  # the API server filtered already; a fake may not
                        continue
                    run.summary.add(audited)
                    if audited.findings:
                        if keep:
                            run.found.append(audited)
                        if on_found is not None:
                            on_found(audited)
                    if progress is not None:
                        progress.tick(run.summary.objects)
                del page
        except AuditError:
            raise
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                run.notes.append(
                    f"{kind.kind}: the API server does not serve {kind.resource}/{kind.version} "
                    "(KubeVirt's CRDs are not installed): skipped"
                )
                continue
            raise api_error(exc, "list", f"{kind.resource} {scope(namespace, exclude)}") from None
    for name in sorted(api.inconsistent):
        run.notes.append(
            f"{name}: a continue token expired during the list; the rest came from a newer resourceVersion, so "
            "objects changed meanwhile may be missing or seen twice"
        )
    if progress is not None:
        progress.tick(run.summary.objects, force=True)
        progress.done()
    run.summary.requests = api.requests
    run.summary.seconds = time.monotonic() - started
    return run
