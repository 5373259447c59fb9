"""The cluster view at scale: ``python -m bench.cluster [--nodes 5000 --shapes 50 --nads 10000]`` (needs the
envtest assets).

Creates the nodes (status via the status subresource) and NetworkAttachmentDefinitions through a real
kube-apiserver, then, in a fresh process (so its memory is the view's alone): the initial sync time, the RSS
the view adds, the watch-event throughput while the nodes' labels are patched, the in-process cost of one
preflight against the full snapshot next to the same review with the view off (the ratio is what to read),
and a launcher pod with two SR-IOV attachments reviewed against all the NADs and against a view holding only
its two (equal costs: O(1) per attachment).
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


NAD_NAMESPACES = 100


def create_nads(cp: Any, n: int, threads: int = 8) -> float:
    """``n`` SR-IOV NADs over ``NAD_NAMESPACES`` namespaces (the CRD installed first); nads-0/vf-0 and
    nads-0/vf-1 name the pool the bench's launcher pod attaches to."""
    from kubernetes import client

    cp.kubectl("apply", "--server-side", "-f", str(REPO / "tests" / "data" / "network-attachment-definition-crd.yaml"))
    cp.kubectl("wait", "--for=condition=Established", "--timeout=60s",
               "crd/network-attachment-definitions.k8s.cni.cncf.io")  # fmt: skip
    core, custom = client.CoreV1Api(cp.api_client()), client.CustomObjectsApi(cp.api_client())
    for ns in range(min(n, NAD_NAMESPACES)):
        core.create_namespace({"metadata": {"name": f"nads-{ns}"}}, _preload_content=False)

    def one(i: int) -> None:
        ns = f"nads-{i % NAD_NAMESPACES}"
        body = {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": f"vf-{i // NAD_NAMESPACES}", "namespace": ns,
                         "annotations": {"k8s.v1.cni.cncf.io/resourceName": f"example.com/pool_{i % 16}"}},
            "spec": {"config": json.dumps({"cniVersion": "1.0.0", "type": "sriov", "vlan": i % 4094})},
        }  # fmt: skip
        custom.create_namespaced_custom_object("k8s.cni.cncf.io", "v1", ns, "network-attachment-definitions", body,
                                               _preload_content=False)  # fmt: skip

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(n)))
    return time.perf_counter() - started


def sriov_costs(snap: Any, config: Any) -> dict[str, Any]:
    """µs per review of the bench's launcher pod with two attachments (nads-0/vf-0, nads-0/vf-1), bytes in and
    out, against the full view and against one that holds only those two NADs."""
    import dataclasses
    import timeit
    from types import MappingProxyType

    import orjson

    from bench.networks import path, sriov_launcher
    from bench.payloads import review
    from webhook.engine import chain

    keys = (("nads-0", "vf-0"), ("nads-0", "vf-1"))
    if not snap.nads or any(k not in snap.nads for k in keys):
        return {}
    pod = sriov_launcher("nads-0")
    pod["metadata"]["namespace"] = "nads-0"
    small = dataclasses.replace(snap, nads=MappingProxyType({k: snap.nads[k] for k in keys}), memo={})
    out: dict[str, Any] = {"nads": len(snap.nads)}
    n = 5_000
    for webhook in ("mutate", "validate"):
        obj = pod if webhook == "mutate" else chain(pod, config, cluster=snap).admitted
        body = orjson.dumps(review(obj))
        for label, s in (("all", snap), ("two", small)):
            run = path(webhook, config, s)
            t = min(timeit.repeat(lambda: run(body), number=n, repeat=5))  # noqa: B023
            out[f"sriov_{webhook}_{label}_us"] = t / n * 1e6
    return out


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
        "nad_count": len(snap.nads) if snap.nads is not None else 0,
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
    out |= sriov_costs(snap, config)
    view.stop()
    return out


def run(nodes: int, shapes: int, patches: int, nads: int) -> dict[str, Any]:
    from kubernetes import client

    from tests.testkit.controlplane import ControlPlane, find_assets

    with ControlPlane(find_assets(), extra_apiserver_args=("--v=0",)) as cp:
        created = create_nodes(cp, nodes, shapes)
        nads_s = create_nads(cp, nads) if nads else 0.0
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
        result |= {"create_s": created, "patch_s": patch_s, "patches": patches, "nads_s": nads_s}
        return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--shapes", type=int, default=50)
    parser.add_argument("--patches", type=int, default=2000, help="label patches for the event throughput")
    parser.add_argument("--nads", type=int, default=10_000, help="SR-IOV NetworkAttachmentDefinitions (0: none)")
    parser.add_argument("--child", nargs=3, metavar=("KUBECONFIG", "NODES", "PATCHES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kubeconfig, nodes, patches = args.child
        result = child(kubeconfig, int(nodes), int(patches))
        print(json.dumps(result), flush=True)
        return 0
    r = run(args.nodes, args.shapes, args.patches, args.nads)
    print(f"## Cluster view: {r['nodes']} nodes in {r['classes']} classes (created in {r['create_s']:.0f} s), "
          f"{r['nad_count']} NADs (created in {r['nads_s']:.0f} s)")  # fmt: skip
    print()
    print("| measure | figure | target |")
    print("|---|---|---|")
    print(f"| initial sync (paged list, limit 500) | {r['sync_s']:.2f} s | |")
    print(f"| RSS of the view (nodes and NADs) | {r['rss_view_mib']:.1f} MiB | ≤ 50 MiB |")
    print(f"| watch events applied | {r['events_per_s']:.0f} events/s ({r['events']} of {r['patches']} patches "
          f"made in {r['patch_s']:.1f} s; the API server is the limit when close) | |")  # fmt: skip
    print(f"| dedicated VMI validate, view off | {r['validate_off_us']:.1f} µs | |")
    print(f"| the same with the {r['nodes']}-node view (preflight) | {r['validate_on_us']:.1f} µs "
          f"(+{r['preflight_us']:.1f} µs, {r['classes_after']} classes) | preflight ≤ 10 µs |")  # fmt: skip
    for webhook in ("mutate", "validate"):
        if f"sriov_{webhook}_all_us" in r:
            a, b = r[f"sriov_{webhook}_all_us"], r[f"sriov_{webhook}_two_us"]
            print(f"| launcher pod + 2 SR-IOV attachments, {webhook}: {r['nads']} NADs / only its 2 "
                  f"| {a:.1f} / {b:.1f} µs ({a / b:.2f}x) | O(1) per attachment: ≈ 1x |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
