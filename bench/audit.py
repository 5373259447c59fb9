"""``vm-admission audit`` at scale: ``python -m bench.audit [--objects 2000] [--limit 250]`` (needs the envtest assets).

Starts a real kube-apiserver + etcd (tests/testkit), creates N VirtualMachines and N pods through it (the pods:
half the virt-launcher pod of bench/payloads.py as it reaches the mutating webhook, so its sidecars are not
Guaranteed and each is a finding; half an unrelated pod), then runs ``vm-admission audit -A -o json --limit L``
as a subprocess and reports wall time, objects/s, the audit process's peak RSS (``VmHWM`` from its own
/proc/self/status, read just before it exits) and the API requests it made (list pages). The issue asks for
10,000 of each: ``--objects 10000`` (creating them takes a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.payloads import launcher_pod, unrelated_pod, vm
from tests.testkit.controlplane import ControlPlane, find_assets

REPO = Path(__file__).resolve().parent.parent
NAMESPACES = 10

# Runs the audit in the measured process, then prints what it measured of itself on stderr's last line.
MEASURED_MAIN = """
import json, sys, time
from webhook.cli import main
started = time.monotonic()
rc = main(sys.argv[1:])
seconds = time.monotonic() - started
hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
sys.stdout.flush()
sys.stderr.write("\\nBENCH " + json.dumps({"rc": rc, "seconds": seconds, "vmhwm_kib": int(hwm)}) + "\\n")
"""


def _named(obj: dict[str, Any], name: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    for key in ("namespace", "uid", "resourceVersion", "creationTimestamp", "generateName", "ownerReferences"):
        meta.pop(key, None)
    meta["name"] = name
    return out


def seed(cp: ControlPlane, n: int, threads: int = 8) -> float:
    """Create n VMs and n pods across NAMESPACES namespaces; the seconds it took."""
    from kubernetes import client

    api = cp.api_client()
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    namespaces = [f"bench-audit-{i}" for i in range(NAMESPACES)]
    for ns in namespaces:
        core.create_namespace({"metadata": {"name": ns}})
    templates = {"vm": vm(), "launcher": launcher_pod(), "plain": unrelated_pod()}
    jobs: list[Callable[[], Any]] = []
    for i in range(n):
        ns = namespaces[i % NAMESPACES]
        body_vm = _named(templates["vm"], f"vm-{i}")
        pod = _named(templates["launcher" if i % 2 == 0 else "plain"], f"pod-{i}")
        jobs.append(
            lambda ns=ns, b=body_vm: custom.create_namespaced_custom_object(
                "kubevirt.io", "v1", ns, "virtualmachines", b
            )
        )
        jobs.append(lambda ns=ns, b=pod: core.create_namespaced_pod(ns, b))
    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(j) for j in jobs]:
            f.result()
    return time.monotonic() - started


_TEXT_SUMMARY = re.compile(
    r"^(\d+) objects scanned \((.*?)\) in [\d.]+s, (\d+) API requests: (\d+) with findings "
    r"\((\d+) fail, (\d+) warn, (\d+) error\)$",
    re.MULTILINE,
)


def _text_summary(out: str) -> dict[str, Any]:
    """The JSON summary's fields from the text output's summary line."""
    m = _TEXT_SUMMARY.search(out)
    if m is None:
        raise SystemExit(f"no summary line in the text output:\n{out[-2000:]}")
    return {
        "objects": int(m.group(1)),
        "scanned": m.group(2),
        "apiRequests": int(m.group(3)),
        "objectsWithFindings": int(m.group(4)),
        "results": {"fail": int(m.group(5)), "warn": int(m.group(6)), "error": int(m.group(7))},
    }


def audit(cp: ControlPlane, limit: int, output: str = "json") -> tuple[dict[str, Any], dict[str, Any]]:
    """(the audit's summary, what the audit process measured of itself). ``-o text`` streams its findings and
    keeps none; ``-o json`` keeps the objects with findings for its document."""
    cmd = [sys.executable, "-c", MEASURED_MAIN, "audit", "--kubeconfig", str(cp.kubeconfig), "-A", "-o", output,
           "--limit", str(limit)]  # fmt: skip
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    marker = [line for line in run.stderr.splitlines() if line.startswith("BENCH ")]
    if not marker or run.returncode not in (0, 1):
        raise SystemExit(f"audit failed ({run.returncode}):\n{run.stderr}")
    measured: dict[str, Any] = json.loads(marker[-1][len("BENCH ") :])
    summary: dict[str, Any] = json.loads(run.stdout)["summary"] if output == "json" else _text_summary(run.stdout)
    return summary, measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000, help="VMs and pods to create, each (default 2000)")
    parser.add_argument("--limit", type=int, default=250, help="the audit's page size (default 250, the audit's)")
    parser.add_argument("--output", choices=["json", "text"], default="json", help="the audit's -o (default json)")
    args = parser.parse_args(argv)
    with ControlPlane(find_assets()) as cp:
        seeded = seed(cp, args.objects)
        print(f"created {args.objects} VMs and {args.objects} pods in {seeded:.1f}s")
        summary, measured = audit(cp, args.limit, args.output)
    objects, results = summary["objects"], summary["results"]
    print(
        f"audit -A -o {args.output} --limit {args.limit}: {objects} objects ({summary['scanned']}) "
        f"in {measured['seconds']:.2f}s "
        f"wall = {objects / measured['seconds']:,.0f} objects/s; peak RSS {measured['vmhwm_kib'] / 1024:.0f} MiB; "
        f"{summary['apiRequests']} API requests; {results['fail']} fail + {results['warn']} warn findings on "
        f"{summary['objectsWithFindings']} objects; exit {measured['rc']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
