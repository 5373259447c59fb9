"""``vm-admission audit``: the webhook's rules on what already runs (docs/audit.md).

- :mod:`webhook.audit.run`: list VMs, VMIs and pods page by page (through :mod:`webhook.cluster.client`) and
  review each stored object as a CREATE on the validating webhook, with the preflight against a cluster view
  listed once; the findings and their counts;
- :mod:`webhook.audit.reports`: one ``wgpolicyk8s.io/v1alpha2`` PolicyReport per namespace, by server-side apply;
- :mod:`webhook.audit.render`: text (streamed), JSON and YAML output, the progress line.

The command itself (flags, credentials, exit codes) is :mod:`webhook.commands.audit`.
"""

from webhook.audit.render import Progress, as_document, render_block, render_output, render_summary
from webhook.audit.reports import existing_reports, policy_report, write_reports
from webhook.audit.run import (
    KINDS,
    Audited,
    AuditError,
    AuditRun,
    Finding,
    Kind,
    Ref,
    Summary,
    api_error,
    audit_object,
    findings_of,
    run_audit,
)

__all__ = [
    "KINDS",
    "AuditError",
    "AuditRun",
    "Audited",
    "Finding",
    "Kind",
    "Progress",
    "Ref",
    "Summary",
    "api_error",
    "as_document",
    "audit_object",
    "existing_reports",
    "findings_of",
    "policy_report",
    "render_block",
    "render_output",
    "render_summary",
    "run_audit",
    "write_reports",
]
