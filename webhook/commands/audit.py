"""``vm-admission audit`` (docs/audit.md): flags, credentials, the run, the output, the exit code.

Exit 0 no finding, 1 findings, 2 error (the API server unreachable, a list or write forbidden, a bad config):
one line on stderr naming the verb and the resource, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TextIO

from webhook.audit.render import Output, Progress, render_block, render_output
from webhook.audit.reports import existing_reports, write_reports
from webhook.audit.run import Audited, AuditError, run_audit
from webhook.cluster.client import Client
from webhook.config import ConfigError, load_config

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _client(args: argparse.Namespace) -> Client:
    """The API client for ``--kubeconfig``/``--context``, ``$KUBECONFIG``, ``~/.kube/config`` or the in-cluster
    service account, in that order (raises AuditError saying which could not be loaded)."""
    from webhook.cluster import client

    kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG")
    if not kubeconfig and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        default = Path.home() / ".kube" / "config"
        kubeconfig = str(default) if default.exists() else None
    try:
        return Client(client.api_client(kubeconfig, args.context))
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
        api = _client(args)
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
    stdout.write(render_output(run, reports, output))
    return EXIT_FINDINGS if run.summary.findings else EXIT_CLEAN
