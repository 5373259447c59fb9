"""The ``vm-admission`` command line: the parser and the dispatch; each verb lives in its module of
:mod:`webhook.commands`, imported only when it runs (docs/review-and-deploy.md, docs/audit.md,
docs/operations.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any


class _Version(argparse.Action):
    """``--version``: the installed version and which build runs (as ``vm_admission_build_info{build}`` says it),
    imported only when asked, so other commands do not load the engine for it."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        from webhook import build

        try:
            installed = version("vm-admission")
        except PackageNotFoundError:  # a source tree on sys.path, never installed
            installed = "unknown"
        print(f"vm-admission {installed} (build: {build.flavor()})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vm-admission",
        description="Admission webhook for dedicated-CPU and passthrough-device virtual machines (KubeVirt).",
    )
    parser.add_argument("--version", action=_Version, help="print the version and the build (mypyc or python)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTPS admission webhook")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8443, help="port to listen on (default 8443)")
    serve.add_argument(
        "--cert-dir", default="certs", help="directory with ca.crt, tls.crt, tls.key (generated if missing)"
    )
    serve.add_argument("--config", default=None, help="YAML config file (reloaded on change)")
    serve.add_argument("--dns-name", action="append", default=[], help="extra SAN for a generated serving cert")
    serve.add_argument("--client-ca", default=None, help="require client certificates signed by this CA")
    serve.add_argument(
        "--kubeconfig", default=None, help="kubeconfig for the cluster view (cluster.watch: true); default in-cluster"
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--reload-interval", type=float, default=5.0, help="seconds between checks of the cert and config files"
    )
    serve.add_argument(
        "--shutdown-delay",
        type=float,
        default=5.0,
        help="seconds /readyz fails before the listener closes on SIGTERM (default 5)",
    )

    review = sub.add_parser("review", help="run mutate -> validate offline on manifest files")
    review.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="YAML/JSON manifests, directories of them (.yaml, .yml, .json, as kubectl -f reads them), or - for stdin",
    )
    review.add_argument(
        "-R", "--recursive", action="store_true", help="also read the subdirectories of directories, as kubectl -R"
    )
    review.add_argument("--config", default=None, help="YAML config file")
    review.add_argument(
        "-o",
        "--output",
        default="text",
        choices=["text", "json", "yaml", "sarif", "junit"],
        help="text (default), json, yaml (the admitted objects), sarif (SARIF 2.1.0), junit (JUnit XML)",
    )
    review.add_argument(
        "--schema",
        default="strict",
        choices=["strict", "warn", "off"],
        help="check VMs and VMIs against KubeVirt's CRD schema and pods against Kubernetes' OpenAPI schema: "
        "strict (default) denies what the API server would refuse, warn only warns, off skips it",
    )
    review.add_argument(
        "--kubernetes-version",
        default=None,
        metavar="X.Y",
        help="the Kubernetes version whose Pod schema to check against (default: the newest kubernetes-validate ships)",
    )
    review.add_argument("--operation", default="CREATE", choices=["CREATE", "UPDATE"])
    review.add_argument("--old", default=None, help="the old object (with --operation UPDATE)")
    review.add_argument(
        "--cluster",
        action="store_true",
        help="also run the preflight against a cluster (nodes, KubeVirt CR), listed once",
    )
    review.add_argument(
        "--kubeconfig", default=None, help="with --cluster: kubeconfig (default: $KUBECONFIG, ~/.kube/config)"
    )
    review.add_argument("--context", default=None, help="with --cluster: the kubeconfig context to use")

    audit = sub.add_parser(
        "audit", help="run the rules and the preflight on the VMs, VMIs and pods a cluster already holds"
    )
    audit.add_argument(
        "--kubeconfig", default=None, help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    audit.add_argument("--context", default=None, help="the kubeconfig context to use")
    scope = audit.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", default=None, help="audit this namespace only")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="audit every namespace (the default)")
    audit.add_argument("-o", "--output", default="text", choices=["text", "json", "yaml"])
    audit.add_argument(
        "--report", action="store_true", help="write a wgpolicyk8s.io/v1alpha2 PolicyReport per namespace"
    )
    audit.add_argument(
        "--exclude-namespace",
        action="append",
        default=[],
        metavar="NS",
        help="leave this namespace out (repeatable; filtered by the API server)",
    )
    audit.add_argument(
        "-l", "--selector", default=None, help="audit only objects with these labels (a label selector, as kubectl -l)"
    )
    audit.add_argument("--config", default=None, help="YAML config file (the webhook's)")
    audit.add_argument("--limit", type=int, default=250, help="objects per list page (default 250)")

    certs = sub.add_parser("certs", help="generate a CA and serving certificate")
    certs.add_argument("--dns-name", action="append", default=[], required=True, help="SAN (repeatable)")
    certs.add_argument("--out", default="certs", help="output directory")

    wh = sub.add_parser("webhook-config", help="print the Mutating- and ValidatingWebhookConfiguration YAML")
    target = wh.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="base URL of an out-of-cluster webhook, e.g. https://10.0.0.5:8443")
    target.add_argument("--service", help="NAMESPACE/NAME of the in-cluster Service")
    wh.add_argument("--ca-file", required=True, help="PEM CA that signed the serving certificate")
    wh.add_argument("--port", type=int, default=443, help="Service port (with --service)")
    wh.add_argument(
        "--failure-policy",
        default=None,
        choices=["Fail", "Ignore"],
        help="for every webhook (default: Fail for VMI/VM validation, Ignore for mutation and pods)",
    )
    wh.add_argument(
        "--config", default=None, help="the webhook's config file (cpuManager.nodeSelectorLabels shape the pod filter)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from webhook.commands.serve import serve_command

        return serve_command(args)
    if args.command == "review":
        from webhook.commands.review import review_command

        return review_command(args)
    if args.command == "audit":
        from webhook.commands.audit import audit_command

        return audit_command(args)
    if args.command == "certs":
        from webhook.commands.certs import certs_command

        return certs_command(args)
    from webhook.commands.webhook_config import webhook_config_command

    return webhook_config_command(args)


if __name__ == "__main__":
    sys.exit(main())
