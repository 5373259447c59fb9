"""``vm-admission audit``: the webhook's rules on what already runs (CONTRACT §10).

VMs, VMIs and pods are listed through the API server page by page (``limit``/``continue``, raw JSON decoded
with orjson) and every stored object goes through :func:`webhook.engine.handle` as a synthesized CREATE on
the validating webhook, with the §9 preflight against a cluster view listed once. Stored objects are not
mutated: only validation runs. A page is dropped once reviewed, so memory holds one page and the findings,
never the cluster.

Findings: the causes a CREATE would be denied for (``fail``; also under ``enforcement: warn``), preflight
findings that are warnings under ``cluster.enforcement: warn`` (``warn``, read from the verdict's structured
``advisories``, not from the warning text), and objects the rules cannot read (``error``). ``--report``
writes one ``wgpolicyk8s.io/v1alpha2`` PolicyReport per namespace, named ``vm-admission``, by server-side
apply, so a re-run replaces the previous results.

Exit 0 no finding, 1 findings, 2 error (the API server unreachable, a list or write forbidden, a bad config):
one line on stderr naming the verb and the resource, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import orjson
import yaml

from webhook.config import Config, ConfigError, load_config
from webhook.engine import Verdict, handle
from webhook.k8s.snapshot import ClusterSnapshot
from webhook.offline import Source, cause_json
from webhook.rules.base import Cause, CauseType

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
# Objects per list page. A page of 500 launcher pods is ~40 MiB once decoded; 250 keeps a 20,000-object audit
# under 120 MiB peak RSS (bench.audit) for twice the list requests (84 instead of 44), and was no slower.
DEFAULT_LIMIT = 250
POLICY = "vm-admission"
REPORT_NAME = "vm-admission"
FIELD_MANAGER = "vm-admission"
REPORT_API = ("wgpolicyk8s.io", "v1alpha2", "policyreports")
REPORT_CRD_HINT = "kubectl apply -f manifests/crds/policyreport-crd.yaml"
# A report is one etcd object (at most ~1.5 MiB); a result is ~0.5-1 KiB, so one report keeps this many (fail and
# error before warn) and says in an annotation how many it left out. The summary counts them all.
MAX_REPORT_RESULTS = 1000
TRUNCATED_ANNOTATION = "vm-admission.io/results-left-out"
NOT_PINNED = "not pinned (the pod is not Guaranteed, so the CPU manager gives it no dedicated CPUs): "
Result = Literal["fail", "warn", "error"]
Output = Literal["text", "json", "yaml"]


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind the audit lists: its group/version/plural and the name its findings are printed with."""

    kind: str
    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


KINDS = (
    Kind("VirtualMachine", "kubevirt.io", "v1", "virtualmachines"),
    Kind("VirtualMachineInstance", "kubevirt.io", "v1", "virtualmachineinstances"),
    Kind("Pod", "", "v1", "pods"),
)


class AuditError(Exception):
    """The audit cannot go on; the message is one line naming what failed."""


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    result: Result
    field: str
    message: str
    type: CauseType = "FieldValueInvalid"

    def as_json(self) -> dict[str, str]:
        """As ``review -o json`` prints a cause ({type, field, message, rule}), plus the result."""
        return {"result": self.result, **cause_json(Cause(self.field, self.message, self.type, self.rule))}


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
    message = NOT_PINNED + c.message if kind == "Pod" and c.rule == "qos.not-guaranteed" else c.message
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


# --- talking to the API server ---------------------------------------------------------------------------


def _status_message(exc: Any) -> str:
    """The API server's own one-line message from an ApiException's Status body."""
    body = getattr(exc, "body", None)
    try:
        message = orjson.loads(body).get("message") if body else None
    except (orjson.JSONDecodeError, AttributeError):
        message = None
    return str(message or getattr(exc, "reason", "") or exc).replace("\n", " ")


def _terminating(exc: BaseException) -> bool:
    """A 403 because the namespace is being deleted (its Status cause ``NamespaceTerminating``)."""
    if getattr(exc, "status", None) != 403:
        return False
    try:
        details = orjson.loads(getattr(exc, "body", None) or b"{}").get("details") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return False
    causes = details.get("causes") or []
    return any(isinstance(c, dict) and "NamespaceTerminating" in (c.get("reason"), c.get("type")) for c in causes)


def _inconsistent_continue(exc: BaseException) -> str | None:
    """The continue token a 410 ResourceExpired offers to go on with an inconsistent list, if any."""
    if getattr(exc, "status", None) != 410:
        return None
    try:
        token = (orjson.loads(getattr(exc, "body", None) or b"{}").get("metadata") or {}).get("continue")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return token if isinstance(token, str) and token else None


def api_error(exc: BaseException, verb: str, what: str) -> AuditError:
    """``exc`` from the client as one line: ``cannot list pods in all namespaces: 403 Forbidden: ...``."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status:
        reason = getattr(exc, "reason", "") or ""
        return AuditError(f"cannot {verb} {what}: {status} {reason}: {_status_message(exc)}")
    import urllib3

    text = (str(getattr(exc, "reason", None) or exc).splitlines() or [repr(exc)])[0][:300]
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return AuditError(f"cannot {verb} {what}: the API server is unreachable: {text}")
    return AuditError(f"cannot {verb} {what}: {type(exc).__name__}: {text}")


class Api:
    """The few calls the audit makes, through the ``kubernetes`` client; ``requests`` counts them."""

    def __init__(self, api_client: Any, timeout: float = 60.0) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.core: Any = client.CoreV1Api(api_client)
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.timeout = (5.0, timeout)
        self.requests = 0
        self.inconsistent: set[str] = set()  # kinds whose list went on past an expired continue token

    def _list_call(self, kind: Kind, namespace: str | None) -> Callable[..., Any]:
        if kind.group == "":
            if namespace:
                return lambda **kw: self.core.list_namespaced_pod(namespace, **kw)
            return lambda **kw: self.core.list_pod_for_all_namespaces(**kw)
        if namespace:
            return lambda **kw: self.custom.list_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, **kw
            )
        return lambda **kw: self.custom.list_cluster_custom_object(kind.group, kind.version, kind.plural, **kw)

    def pages(
        self,
        kind: Kind,
        namespace: str | None,
        limit: int,
        field_selector: str | None = None,
        label_selector: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """The items of ``kind``, one page at a time (raises the client's exceptions); the selectors narrow the
        list on the API server's side."""
        call = self._list_call(kind, namespace)
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"limit": limit, "_preload_content": False, "_request_timeout": self.timeout}
            if token:
                kw["_continue"] = token
            if field_selector:
                kw["field_selector"] = field_selector
            if label_selector:
                kw["label_selector"] = label_selector
            self.requests += 1
            try:
                resp = call(**kw)
            except Exception as exc:
                fresh = _inconsistent_continue(exc) if token else None
                if fresh is None:
                    raise
                # The continue token expired (410, a long list across an etcd compaction): go on from where
                # we were with the token the API server offers, as client-go's pager may; say so.
                self.inconsistent.add(kind.kind)
                token = fresh
                continue
            page = orjson.loads(resp.data)
            del resp
            batch = [i for i in page.get("items") or [] if isinstance(i, dict)]
            token = (page.get("metadata") or {}).get("continue") or None
            del page
            yield batch
            # Drop this page before the next one is fetched and parsed: only one page of objects is ever held.
            del batch
            if token is None:
                return

    def apply_report(self, namespace: str, report: dict[str, Any]) -> None:
        self.requests += 1
        self.custom.patch_namespaced_custom_object(
            *REPORT_API[:2],
            namespace,
            REPORT_API[2],
            REPORT_NAME,
            report,  # sent as JSON, which is YAML: the apply body as the API server reads it
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
            _request_timeout=self.timeout,
        )


def scope(namespace: str | None, exclude: Sequence[str] = ()) -> str:
    where = f"in namespace {namespace}" if namespace else "in all namespaces"
    return where + (f" but {', '.join(exclude)}" if exclude and not namespace else "")


def exclude_selector(exclude: Sequence[str]) -> str | None:
    """``--exclude-namespace``s as a field selector the API server applies (every kind supports
    ``metadata.namespace``, custom resources too)."""
    return ",".join(f"metadata.namespace!={ns}" for ns in dict.fromkeys(exclude)) or None


# --- the run -----------------------------------------------------------------------------------------------


def _counting_view(api: Api, page_size: int, resource_annotation: str) -> Any:
    """A :class:`ClusterView` whose list calls count in ``api.requests``."""
    from webhook.cluster.view import ClusterView

    class CountingView(ClusterView):
        def _list_nodes(self, limit: int, token: str | None) -> dict[str, Any]:
            api.requests += 1
            return super()._list_nodes(limit, token)

        def _list_custom(self, gvr: tuple[str, str, str], limit: int, token: str | None) -> dict[str, Any]:
            api.requests += 1
            return super()._list_custom(gvr, limit, token)

    return CountingView(api.api_client, page_size=page_size, resource_annotation=resource_annotation)


class Progress:
    """``scanned N objects (R/s)`` overwritten in place on a terminal; nothing when stderr is not one."""

    def __init__(self, stream: TextIO, interval: float = 0.2) -> None:
        self.stream = stream
        self.on = bool(getattr(stream, "isatty", lambda: False)())
        self.started = self.last = time.monotonic()
        self.interval = interval
        self.shown = False

    def tick(self, scanned: int, force: bool = False) -> None:
        if not self.on:
            return
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        rate = scanned / max(now - self.started, 1e-6)
        self.stream.write(f"\r\x1b[Kscanned {scanned} objects ({rate:,.0f}/s)")
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        """Erase the line (before other output goes to the same terminal, and at the end)."""
        if self.on and self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


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
    api: Api,
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
    view = _counting_view(api, limit, config.networks.resourceNameAnnotation)
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


# --- PolicyReports -------------------------------------------------------------------------------------------


def report_results(found: list[Audited], seconds: int) -> list[dict[str, Any]]:
    results = []
    for a in found:
        for f in a.findings:
            result: dict[str, Any] = {
                "source": POLICY,
                "policy": POLICY,
                "rule": f.rule,
                "category": f.rule.partition(".")[0],
                "result": f.result,
                "scored": f.result != "warn",  # a warning informs; it does not count against compliance
                "message": f"{f.field}: {f.message}" if f.field else f.message,
                "resources": [a.ref.as_json()],
                "timestamp": {"seconds": seconds, "nanos": 0},
            }
            if f.field:
                result["properties"] = {"field": f.field}
            results.append(result)
    return results


def policy_report(
    namespace: str, found: list[Audited], now: float, max_results: int = MAX_REPORT_RESULTS
) -> dict[str, Any]:
    """The ``vm-admission`` PolicyReport of one namespace (``found``: its objects with findings)."""
    results = report_results(found, int(now))
    summary = {"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0}
    for r in results:
        summary[r["result"]] += 1
    metadata: dict[str, Any] = {
        "name": REPORT_NAME,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "vm-admission"},
    }
    if len(results) > max_results:
        results.sort(key=lambda r: r["result"] == "warn")  # stable: fail and error first, in audit order
        metadata["annotations"] = {TRUNCATED_ANNOTATION: str(len(results) - max_results)}
        del results[max_results:]
    return {
        "apiVersion": f"{REPORT_API[0]}/{REPORT_API[1]}",
        "kind": "PolicyReport",
        "metadata": metadata,
        "summary": summary,
        "results": results,
    }


def existing_reports(api: Api, namespace: str | None, limit: int) -> set[str]:
    """Namespaces that already hold a ``vm-admission`` PolicyReport (they get a fresh one, empty if clean)."""
    kind = Kind("PolicyReport", *REPORT_API)
    out: set[str] = set()
    try:
        for page in api.pages(kind, namespace, limit, field_selector=f"metadata.name={REPORT_NAME}"):
            out.update(str((i.get("metadata") or {}).get("namespace") or "") for i in page)
    except Exception as exc:
        if getattr(exc, "status", None) == 404:
            raise AuditError(
                f"--report: the API server does not serve {kind.resource}/{kind.version} (the PolicyReport CRD is "
                f"not installed): {REPORT_CRD_HINT}"
            ) from None
        raise api_error(exc, "list", f"{kind.resource} {scope(namespace)}") from None
    return out - {""}


def write_reports(
    api: Api,
    run: AuditRun,
    namespace: str | None,
    earlier: set[str],
    now: float | None = None,
    exclude: Sequence[str] = (),
) -> list[str]:
    """Apply one report per namespace with audited objects or an earlier report (``earlier``: see
    :func:`existing_reports`, listed before the audit so a missing CRD fails fast; skipping namespaces that are
    being deleted, with a note); the namespaces written, sorted."""
    targets = (run.summary.namespaces | earlier) - {""} - set(exclude)
    if namespace:
        targets = {namespace} - set(exclude)
    by_ns: dict[str, list[Audited]] = {}
    for a in run.found:
        by_ns.setdefault(a.ref.namespace, []).append(a)
    stamp = time.time() if now is None else now
    written = []
    for ns in sorted(targets):
        try:
            api.apply_report(ns, policy_report(ns, by_ns.get(ns, []), stamp))
            written.append(ns)
        except Exception as exc:
            if _terminating(exc):
                run.notes.append(f"namespace {ns} is being deleted: no PolicyReport written there")
                continue
            raise api_error(
                exc, "apply (patch)", f"policyreports.wgpolicyk8s.io {REPORT_NAME} in namespace {ns}"
            ) from None
    return written  # sorted: targets were visited in order; a namespace being deleted is not among them


# --- printing ------------------------------------------------------------------------------------------------

_MARK = {"fail": "✗", "warn": "!", "error": "?"}


def render_block(a: Audited) -> str:
    """One object as ``review`` prints it: the title, then each finding with its field and rule id."""
    lines = [f"{a.ref.title}:"]
    for f in a.findings:
        where = f"{f.field}: " if f.field else ""
        lines.append(f"  {_MARK[f.result]} {where}{f.message} [{f.rule}]")
    return "\n".join(lines) + "\n"


def render_summary(s: Summary) -> str:
    scanned = ", ".join(f"{n} {k}" for k, n in s.scanned.items())
    r = s.results
    lines = [
        f"{s.objects} objects scanned ({scanned}) in {s.seconds:.1f}s, {s.requests} API requests: "
        f"{s.with_findings} with findings ({r['fail']} fail, {r['warn']} warn, {r['error']} error)"
    ]
    if s.by_namespace:
        rows = [
            (ns, rule, counts) for ns in sorted(s.by_namespace) for rule, counts in sorted(s.by_namespace[ns].items())
        ]
        width_ns = max(len("NAMESPACE"), *(len(ns) for ns, _, _ in rows))
        width_rule = max(len("RULE"), *(len(rule) for _, rule, _ in rows))
        lines.append(f"{'NAMESPACE':<{width_ns}}  {'RULE':<{width_rule}}  FAIL  WARN  ERROR")
        for ns, rule, c in rows:
            lines.append(f"{ns:<{width_ns}}  {rule:<{width_rule}}  {c['fail']:>4}  {c['warn']:>4}  {c['error']:>5}")
    return "\n".join(lines) + "\n"


def as_document(run: AuditRun, reports: list[str] | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "objects": [a.as_json() for a in run.found],
        "summary": run.summary.as_json(),
        "notes": run.notes,
    }
    if reports is not None:
        doc["reports"] = reports
    return doc


# --- command -------------------------------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> Any:
    from webhook.cluster.view import api_client

    kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG")
    if not kubeconfig and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        default = Path.home() / ".kube" / "config"
        kubeconfig = str(default) if default.exists() else None
    try:
        return api_client(kubeconfig, args.context)
    except Exception as exc:
        where = kubeconfig or "the in-cluster service account"
        first = str(exc).splitlines()[0] if str(exc) else repr(exc)  # (a !r here would quote the message too)
        raise AuditError(f"cannot load credentials from {where}: {first}") from None


def audit_command(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """``vm-admission audit``; returns the exit code (0 no finding, 1 findings, 2 error)."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    output: Output = args.output
    namespace: str | None = None if args.all_namespaces else args.namespace
    progress = Progress(stderr)
    exclude: list[str] = list(getattr(args, "exclude_namespace", None) or [])
    selector: str | None = getattr(args, "selector", None)
    try:
        if args.limit < 1:
            raise AuditError("--limit must be at least 1")
        if selector and args.report:
            raise AuditError(
                "--selector audits part of each namespace, and --report would replace the namespace's whole "
                "report with that part: use --selector without --report"
            )
        config = load_config(args.config)
        api = Api(_client(args))
        earlier = existing_reports(api, namespace, args.limit) if args.report else set()  # fails fast without the CRD

        def on_found(a: Audited) -> None:
            progress.done()  # stdout may be the same terminal
            stdout.write(render_block(a))

        run = run_audit(
            api,
            config,
            namespace,
            args.limit,
            on_found if output == "text" else None,
            progress,
            keep=output != "text" or args.report,  # text alone streams: nothing is kept but the counts
            exclude=exclude,
            selector=selector,
        )
        reports = write_reports(api, run, namespace, earlier, exclude=exclude) if args.report else None
        run.summary.requests = api.requests
    except (AuditError, ConfigError) as exc:
        progress.done()
        print(f"vm-admission audit: {exc}", file=stderr)
        return EXIT_ERROR
    for note in run.notes:
        print(f"vm-admission audit: note: {note}", file=stderr)
    if output == "text":
        stdout.write(render_summary(run.summary))
        if reports is not None:
            stdout.write(f"PolicyReports {REPORT_NAME} written in {len(reports)} namespaces\n")
    elif output == "json":
        stdout.write(orjson.dumps(as_document(run, reports), option=orjson.OPT_INDENT_2).decode("utf-8") + "\n")
    else:
        stdout.write(yaml.safe_dump(as_document(run, reports), sort_keys=False, allow_unicode=True))
    return EXIT_FINDINGS if run.summary.findings else EXIT_CLEAN
