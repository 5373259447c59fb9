"""The preflight's cost in process: ``python -m bench.preflight`` (``scripts/compiled -m bench.preflight`` for
the compiled build). 5,000 nodes in 50 shapes (bench.cluster's) are folded by the view's own store, then a
dedicated-CPU VMI is validated with the snapshot and without it; a new shape each call (nothing remembered)
shows the O(classes) scan itself. No API server needed.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Sequence

from bench.cluster import shape
from bench.payloads import dedicated_vmi, review
from webhook import build
from webhook.cluster.view import NodeStore
from webhook.config import Config
from webhook.engine import handle
from webhook.k8s.snapshot import ClusterSnapshot


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.preflight", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--shapes", type=int, default=50)
    parser.add_argument("--number", type=int, default=20_000)
    args = parser.parse_args(argv)
    store = NodeStore()
    for i in range(args.nodes):
        labels, alloc = shape(i, args.shapes)
        store.apply("ADDED", {"metadata": {"name": f"node-{i}", "labels": labels}, "status": {"allocatable": alloc}})
    snap = ClusterSnapshot(synced=True, node_classes=store.classes(), node_count=args.nodes)
    config = Config()
    request = review(dedicated_vmi())["request"]
    assert not handle(request, "validate", config, snap).warnings, "the bench VMI should fit"
    n = args.number

    def best(fn: object) -> float:
        return min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6  # type: ignore[arg-type]

    off = best(lambda: handle(request, "validate", config, None))
    on = best(lambda: handle(request, "validate", config, snap))
    cores = iter(range(1, 10**9))

    def new_shape() -> None:  # a different CPU count each call: the memo never hits, every class is scanned
        request["object"]["spec"]["domain"]["cpu"]["cores"] = 1 + next(cores) % 4
        snap.memo.clear()
        handle(request, "validate", config, snap)

    scan = best(new_shape)
    print(f"build: {build.flavor()}; {args.nodes} nodes in {len(snap.node_classes)} classes")
    print()
    print("| dedicated VMI validate | µs |")
    print("|---|---:|")
    print(f"| view off | {off:.1f} |")
    print(f"| view on (preflight, a shape seen before) | {on:.1f} (+{on - off:.1f}) |")
    print(f"| view on, a new shape every call (full scan) | {scan:.1f} (+{scan - off:.1f}) |")
    print()
    print(f"preflight cost {on - off:.1f} µs: {'PASS' if on - off <= 10 else 'FAIL'} (target ≤ 10 µs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
