"""SR-IOV network attachments in process: ``python -m bench.networks`` (``scripts/compiled -m bench.networks``
for the compiled build). No API server needed.

The launcher pod of ``bench.payloads`` is reviewed as it is and with two SR-IOV attachments (KubeVirt's JSON
networks annotation, two NADs naming a VF pool), each on the full path (bytes -> parse -> engine -> response
-> bytes), both webhooks, in one run:

- with the cluster view on (nodes and 10,000 NADs, folded by the view's own stores), the like-for-like cost of
  the attachments: injection, the NAD look-ups, the selection parse, K3 counting the VFs;
- with the view off (the selection is still parsed and checked);
- the unrelated pod (the fast path) with and without a networks-free annotation map, which must not move.

Prints µs per review (best of 5, the two pods taking turns) and the ratios; the target is at most 1.15x today's
launcher pod.

``--https`` (needs the envtest assets, wrk and Go) runs the same two pods over HTTPS instead: a real
kube-apiserver holds the two NADs and the nodes, ``vm-admission serve`` watches it (cluster view on, so the
VFs are injected), and each pod's ``/mutate`` at 8 connections is compared with the Python floor and the Go
echo (:mod:`bench.http`'s method: each server pinned to core 0, wrk on core 1, best of alternating rounds).
"""

from __future__ import annotations

import argparse
import base64
import copy
import sys
import timeit
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from bench.payloads import launcher_pod, review, unrelated_pod
from webhook import build, endpoint, envelope
from webhook.cluster.view import NadStore, NodeStore
from webhook.config import Config
from webhook.engine import chain, handle
from webhook.k8s.snapshot import ClusterSnapshot

VF = "intel.com/intel_sriov_netdevice"
RESOURCE_ANNOTATION = "k8s.v1.cni.cncf.io/resourceName"
NETWORKS = "k8s.v1.cni.cncf.io/networks"


def sriov_launcher(namespace: str) -> dict[str, Any]:
    pod = launcher_pod()
    pod["metadata"].setdefault("annotations", {})[NETWORKS] = orjson.dumps(
        [
            {"name": "sriov-a", "namespace": namespace, "interface": "pod6a1b3c2e9d0"},
            {"name": "sriov-b", "namespace": namespace, "interface": "pod3f2c7a9b1e4"},
        ]
    ).decode()
    return pod


def snapshot(nads: int, namespace: str) -> ClusterSnapshot:
    """Three nodes that fit the launcher pod, and ``nads`` NADs (two of them the pod's)."""
    nodes = NodeStore()
    for i in range(3):
        alloc = {"cpu": "64", "memory": "256Gi", "pods": "110", "devices.kubevirt.io/kvm": "1k",
                 "devices.kubevirt.io/tun": "1k", "devices.kubevirt.io/vhost-net": "1k",
                 "devices.kubevirt.io/10de_1eb8": "8", "hugepages-1Gi": "64Gi", VF: "16"}  # fmt: skip
        labels = {"kubevirt.io/schedulable": "true", "kubevirt.io/cpumanager": "true", "cpumanager": "true",
                  "kubernetes.io/arch": "amd64", "cpu-model.node.kubevirt.io/Skylake-Server-IBRS": "true"}  # fmt: skip
        nodes.apply("ADDED", {"metadata": {"name": f"n{i}", "labels": labels}, "status": {"allocatable": alloc}})
    store = NadStore()
    for i in range(nads):
        name = ("sriov-a", "sriov-b")[i] if i < 2 else f"net-{i}"
        ns = namespace if i < 2 else f"ns-{i % 500}"
        store.apply(
            "ADDED",
            {
                "metadata": {"name": name, "namespace": ns, "annotations": {RESOURCE_ANNOTATION: VF}},
                "spec": {"config": '{"cniVersion": "1.0.0", "type": "sriov", "vlan": 7}'},
            },
        )
    return ClusterSnapshot(synced=True, node_classes=nodes.classes(), node_count=3, kubevirt=None, nads=store.frozen())


def path(webhook: str, config: Config, cluster: ClusterSnapshot | None) -> Callable[[bytes], bytes]:
    def run(body: bytes) -> bytes:
        doc = envelope.parse_review(body)
        request = doc["request"]
        verdict = handle(request, webhook, config, cluster)  # type: ignore[arg-type]
        resp = endpoint.response(doc["apiVersion"], request["uid"], verdict, allow_patch=webhook == "mutate")
        return orjson.dumps(resp)

    return run


def https(duration: float, rounds: int) -> int:
    """The two launcher pods over HTTPS against the floors, the webhook's view on a real API server."""
    import contextlib
    import json
    import tempfile
    from pathlib import Path

    from bench import baselines
    from bench.http import _best_of, _fmt, _ratio, check_answers, want_go
    from tests.testkit.controlplane import ControlPlane, find_assets
    from tests.testkit.paths import DATA

    crd = DATA / "network-attachment-definition-crd.yaml"
    plain = launcher_pod()
    namespace = plain["metadata"].get("namespace") or "default"
    bodies = {
        "launcher pod": orjson.dumps(review(plain)),
        "+ 2 SR-IOV attachments": orjson.dumps(review(sriov_launcher(namespace))),
    }
    with tempfile.TemporaryDirectory() as tmp, ControlPlane(find_assets(), Path(tmp) / "cp") as cp:
        cp.kubectl("apply", "--server-side", "-f", str(crd))
        cp.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", "crd/network-attachment-definitions.k8s.cni.cncf.io"
        )
        cp.kubectl("create", "namespace", namespace, check=False)
        for name in ("sriov-a", "sriov-b"):
            nad = {
                "apiVersion": "k8s.cni.cncf.io/v1",
                "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": name, "namespace": namespace, "annotations": {RESOURCE_ANNOTATION: VF}},
                "spec": {"config": json.dumps({"cniVersion": "1.0.0", "type": "sriov"})},
            }
            cp.kubectl("apply", "-f", "-", input=json.dumps(nad))
        cfg = Path(tmp) / "config.yaml"
        cfg.write_text(json.dumps({"cluster": {"watch": True, "kubeconfig": str(cp.kubeconfig)}}))
        names = ["webhook", "python", *(["go"] if want_go() else [])]
        with contextlib.ExitStack() as stack:
            servers = {}
            for n in names:
                extra = ("--config", str(cfg)) if n == "webhook" else ()
                servers[n] = stack.enter_context(baselines.server(n, core=0, extra=extra))
            hook = servers["webhook"]
            _, answer = hook.request("POST", "/mutate", bodies["+ 2 SR-IOV attachments"])
            patch = base64.b64decode(orjson.loads(answer)["response"].get("patch", ""))
            if VF.replace("/", "~1").encode() not in patch:
                raise RuntimeError("the webhook did not inject the VFs (is its cluster view synced?)")
            for body in bodies.values():
                for srv in servers.values():
                    check_answers(srv, "/mutate", body, None)
            print(f"webhook build: {baselines.served_build(hook)}; cluster view on; best of {rounds} x {duration:g} s")
            print("| case | webhook req/s (p50 / p99 ms) | Python floor | Go echo | ÷ Python | ÷ Go |")
            print("|---|---:|---:|---:|---:|---:|")
            for label, body in bodies.items():
                case = _best_of(servers, body, label, 8, duration, rounds, 1)
                print(
                    f"| {label} ({len(body):,} B) /mutate, 8 conns | {_fmt(case.results['webhook'])} "
                    f"| {_fmt(case.results.get('python'))} | {_fmt(case.results.get('go'))} "
                    f"| {_ratio(case.ratio('python'))} | {_ratio(case.ratio('go'))} |"
                )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.networks", description=__doc__.split("\n")[0])
    parser.add_argument("--nads", type=int, default=10_000)
    parser.add_argument("--number", type=int, default=5_000)
    parser.add_argument("--https", action="store_true", help="over HTTPS against the floors (envtest, wrk, Go)")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.https:
        return https(args.duration, args.rounds)
    config = Config()
    plain = launcher_pod()
    namespace = plain["metadata"].get("namespace") or "default"
    sriov = sriov_launcher(namespace)
    snap = snapshot(args.nads, namespace)
    mutated = chain(sriov, config, cluster=snap)
    res = mutated.admitted["spec"]["containers"][0]["resources"]
    assert res["requests"][VF] == res["limits"][VF] == "2", "the VFs were not injected"
    assert mutated.validation.allowed and not mutated.validation.warnings, mutated.validation.warnings
    n = args.number

    def best(fn: Callable[[bytes], bytes], body: bytes) -> float:
        return min(timeit.repeat(lambda: fn(body), number=n, repeat=5)) / n * 1e6

    def pair(fn: Callable[[bytes], bytes], a: bytes, b: bytes) -> tuple[float, float]:
        """Best of 5 each, the two bodies taking turns (so drift of a shared machine hits both alike)."""
        runs: tuple[list[float], list[float]] = ([], [])
        for _ in range(5):
            for out, body in zip(runs, (a, b), strict=True):
                out.append(timeit.timeit(lambda: fn(body), number=n) / n * 1e6)  # noqa: B023
        return min(runs[0]), min(runs[1])

    def body(obj: dict[str, Any], webhook: str, cluster: ClusterSnapshot | None) -> bytes:
        target = obj if webhook == "mutate" else chain(copy.deepcopy(obj), config, cluster=cluster).admitted
        return orjson.dumps(review(target))

    print(f"build: {build.flavor()}; {args.nads} NADs in the view; µs per review, best of 5 x {n}")
    print("| case | webhook | launcher pod µs | + 2 SR-IOV attachments µs | ratio |")
    print("|---|---|---:|---:|---:|")
    worst = 0.0
    for label, cluster in (("view on", snap), ("view off", None)):
        for webhook in ("mutate", "validate"):
            fn = path(webhook, config, cluster)
            plain_body, sriov_body = body(plain, webhook, cluster), body(sriov, webhook, cluster)
            for _ in range(2000):  # warm every cache of this path before either is timed
                fn(plain_body)
                fn(sriov_body)
            base, with_vfs = pair(fn, plain_body, sriov_body)
            ratio = with_vfs / base
            if cluster is not None:
                worst = max(worst, ratio)
            print(f"| {label} | {webhook} | {base:.1f} | {with_vfs:.1f} | {ratio:.2f}x |")
    fast = path("mutate", config, snap)
    unrelated = unrelated_pod()
    other = copy.deepcopy(unrelated)
    other["metadata"].setdefault("annotations", {})["example.com/team"] = "web"
    print(f"| fast path (view on) | mutate | {best(fast, orjson.dumps(review(unrelated))):.2f} "
          f"| {best(fast, orjson.dumps(review(other))):.2f} (another annotation) | |")  # fmt: skip
    ok = worst <= 1.15
    print(f"{'PASS' if ok else 'FAIL'}  two SR-IOV attachments cost at most 1.15x today's launcher pod "
          f"(view on, worst webhook: {worst:.2f}x)")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
