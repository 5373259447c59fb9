"""The cluster view at scale: ``python -m bench.cluster [--nodes 5000 --shapes 50]`` (needs the envtest assets).

Creates the nodes through a real kube-apiserver (status via the status subresource), then, in a fresh
process (so its memory is the view's alone): the initial sync time, the RSS the view adds, the watch-event
throughput while the nodes' labels are patched, and the in-process cost of one preflight against the full
snapshot, next to the same review with the view off (the ratio is what to read).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def shape(i: int, shapes: int) -> tuple[dict[str, str], dict[str, str]]:
    s = i % shapes
    labels = {
        "kubevirt.io/schedulable": "true",
        "kubevirt.io/cpumanager": "true" if s % 2 == 0 else "false",
        "node.kubernetes.io/instance-type": f"shape-{s}",
        "topology.kubernetes.io/zone": f"zone-{s % 3}",
        "kubernetes.io/hostname": f"node-{i}",
        "kubernetes.io/arch": "amd64",
    }
    alloc = {"cpu": str(8 * (1 + s % 8)), "memory": f"{32 * (1 + s % 4)}Gi", "pods": "110"}
    if s % 5 == 0:
        alloc["devices.kubevirt.io/10de_1eb8"] = str(1 + s % 4)
    if s % 7 == 0:
        alloc["hugepages-1Gi"] = "16Gi"
    return labels, alloc


def create_nodes(cp: Any, n: int, shapes: int, threads: int = 8) -> float:
    from kubernetes import client

    core = client.CoreV1Api(cp.api_client())

    def one(i: int) -> None:
        labels, alloc = shape(i, shapes)
        core.create_node({"metadata": {"name": f"node-{i}", "labels": labels}}, _preload_content=False)
        core.patch_node_status(
            f"node-{i}", {"status": {"capacity": alloc, "allocatable": alloc}}, _preload_content=False
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(n)))
    return time.perf_counter() - started


def child(kubeconfig: str, nodes: int, patches: int) -> dict[str, Any]:
    """Runs in its own process: sync, RSS, event throughput (patches made by the parent), preflight cost."""
    import timeit

    from bench.payloads import dedicated_vmi, review
    from webhook.cluster.view import ClusterView, api_client
    from webhook.config import Config
    from webhook.engine import handle

    config = Config()
    request = review(dedicated_vmi())["request"]
    handle(request, "validate", config)  # imports and caches warm before the baseline
    base = rss_mib()

    class Count:
        events = 0
        first = last = 0.0

        def cluster_synced(self, synced: bool) -> None: ...
        def cluster_objects(self, kind: str, count: int) -> None: ...
        def cluster_watch_restart(self, kind: str, reason: str) -> None: ...

        def cluster_event(self, kind: str) -> None:
            now = time.perf_counter()
            self.first = self.first or now
            self.last, self.events = now, self.events + 1

    counter = Count()
    view = ClusterView(api_client(kubeconfig), observer=counter)
    started = time.perf_counter()
    view.start()
    view.wait_synced(600)
    sync = time.perf_counter() - started
    snap = view.snapshot
    out: dict[str, Any] = {
        "nodes": snap.node_count,
        "classes": len(snap.node_classes),
        "sync_s": sync,
        "rss_view_mib": rss_mib() - base,
    }
    print("READY", flush=True)  # the parent now patches the nodes
    deadline = time.monotonic() + 300
    while counter.events < patches and time.monotonic() < deadline:
        time.sleep(0.05)
    out["events"] = counter.events
    out["events_per_s"] = counter.events / (counter.last - counter.first) if counter.last > counter.first else 0.0
    snap = view.snapshot
    n = 20_000
    on = min(timeit.repeat(lambda: handle(request, "validate", config, snap), number=n, repeat=5)) / n
    off = min(timeit.repeat(lambda: handle(request, "validate", config, None), number=n, repeat=5)) / n
    verdict = handle(request, "validate", config, snap)
    out |= {
        "validate_off_us": off * 1e6,
        "validate_on_us": on * 1e6,
        "preflight_us": (on - off) * 1e6,
        "classes_after": len(snap.node_classes),
        "warnings": verdict.warnings[:1],
    }
    view.stop()
    return out


def run(nodes: int, shapes: int, patches: int) -> dict[str, Any]:
    from kubernetes import client

    from tests.envtest.controlplane import ControlPlane, find_assets

    with ControlPlane(find_assets(), extra_apiserver_args=("--v=0",)) as cp:
        created = create_nodes(cp, nodes, shapes)
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.cluster", "--child", str(cp.kubeconfig), str(nodes), str(patches)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "READY", line
        core = client.CoreV1Api(cp.api_client())
        started = time.perf_counter()

        def patch(i: int) -> None:  # a label rules read, so every patch is a real change of class
            body = {"metadata": {"labels": {"bench.vm-admission.io/generation": str(1 + i // nodes)}}}
            core.patch_node(f"node-{i % nodes}", body, _preload_content=False)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(patch, range(patches)))
        patch_s = time.perf_counter() - started
        result: dict[str, Any] = json.loads(proc.stdout.read())
        proc.wait(60)
        result |= {"create_s": created, "patch_s": patch_s, "patches": patches}
        return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--shapes", type=int, default=50)
    parser.add_argument("--patches", type=int, default=2000, help="label patches for the event throughput")
    parser.add_argument("--child", nargs=3, metavar=("KUBECONFIG", "NODES", "PATCHES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kubeconfig, nodes, patches = args.child
        result = child(kubeconfig, int(nodes), int(patches))
        print(json.dumps(result), flush=True)
        return 0
    r = run(args.nodes, args.shapes, args.patches)
    print(f"## Cluster view: {r['nodes']} nodes in {r['classes']} classes (created in {r['create_s']:.0f} s)")
    print()
    print("| measure | figure | target |")
    print("|---|---|---|")
    print(f"| initial sync (paged list, limit 500) | {r['sync_s']:.2f} s | |")
    print(f"| RSS of the view | {r['rss_view_mib']:.1f} MiB | ≤ 50 MiB |")
    print(f"| watch events applied | {r['events_per_s']:.0f} events/s ({r['events']} of {r['patches']} patches "
          f"made in {r['patch_s']:.1f} s; the API server is the limit when close) | |")  # fmt: skip
    print(f"| dedicated VMI validate, view off | {r['validate_off_us']:.1f} µs | |")
    print(f"| the same with the {r['nodes']}-node view (preflight) | {r['validate_on_us']:.1f} µs "
          f"(+{r['preflight_us']:.1f} µs, {r['classes_after']} classes) | preflight ≤ 10 µs |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
