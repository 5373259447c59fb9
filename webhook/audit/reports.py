"""The audit's PolicyReports: one ``wgpolicyk8s.io/v1alpha2`` PolicyReport per namespace (docs/audit.md).

``--report`` writes one report per namespace, named ``vm-admission``, by server-side apply through the API
client layer (:class:`webhook.cluster.client.Client`), so a re-run replaces the previous results; namespaces
that held a report before and are clean now get an empty one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from webhook.audit.run import Audited, AuditError, AuditRun, Kind, api_error, scope
from webhook.cluster.client import Client, terminating

POLICY = "vm-admission"
REPORT_NAME = "vm-admission"
FIELD_MANAGER = "vm-admission"
REPORT_API = ("wgpolicyk8s.io", "v1alpha2", "policyreports")
REPORTS = Kind("PolicyReport", *REPORT_API)
REPORT_CRD_HINT = "kubectl apply -f manifests/crds/policyreport-crd.yaml"
# A report is one etcd object (at most ~1.5 MiB); a result is ~0.5-1 KiB, so one report keeps this many (fail and
# error before warn) and says in an annotation how many it left out. The summary counts them all.
MAX_REPORT_RESULTS = 1000
TRUNCATED_ANNOTATION = "vm-admission.io/results-left-out"


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


def existing_reports(api: Client, namespace: str | None, limit: int) -> set[str]:
    """Namespaces that already hold a ``vm-admission`` PolicyReport (they get a fresh one, empty if clean)."""
    kind = REPORTS
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
    api: Client,
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
            api.apply(REPORTS, ns, REPORT_NAME, policy_report(ns, by_ns.get(ns, []), stamp), FIELD_MANAGER)
            written.append(ns)
        except Exception as exc:
            if terminating(exc):
                run.notes.append(f"namespace {ns} is being deleted: no PolicyReport written there")
                continue
            raise api_error(
                exc, "apply (patch)", f"policyreports.wgpolicyk8s.io {REPORT_NAME} in namespace {ns}"
            ) from None
    return written  # sorted: targets were visited in order; a namespace being deleted is not among them



