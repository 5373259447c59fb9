"""Admission through a real kube-apiserver: ``python -m bench.apiserver`` (needs the envtest assets).

N server-side dry-run creates of the launcher pod from C client threads, once per target:
- ``none``: no webhook registered (the API server's own floor);
- ``vm-admission``: our ``serve`` (the build the README runs), registered with our own ``webhook-config``;
- ``go-echo``: bench/goecho (an allowed answer after decoding the review), registered the same way, when built;
- ``go-echo+patch``: the same echo answering the mutating call with the very JSON Patch vm-admission gives the
  launcher pod (``goecho -patch``): the share of the API server's measured time that is applying a patch.
Reports creates/s, the client's p50/p99, and the API server's own mean of
``apiserver_admission_webhook_admission_duration_seconds`` per webhook, read from its /metrics before and
after (so earlier traffic does not count).

``--pin`` gives the webhook under test a core of its own, as in the HTTPS bench: the target (ours or the Go
echo, every thread) on core 0; kube-apiserver, etcd and the client threads on core 1. Without it all share
both cores. ``--rounds N`` measures the two webhooks N times, alternating, and keeps each one's best round.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.payloads import launcher_pod
from tests.testkit.controlplane import ControlPlane, find_assets, register, register_url, unregister
from tests.testkit.server import ServerProcess

REPO = Path(__file__).resolve().parent.parent

_SAMPLE = re.compile(
    r"^apiserver_admission_webhook_admission_duration_seconds_(sum|count)\{(?P<labels>[^}]*)\} (?P<value>\S+)$"
)


@dataclass
class Result:
    target: str
    creates: int
    seconds: float
    latencies: list[float]
    errors: int
    webhook_mean_ms: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.creates / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def webhook_durations(cp: ControlPlane) -> dict[tuple[str, str], tuple[float, float]]:
    """(webhook name, type) -> (sum seconds, count) of the API server's admission webhook histogram."""
    out: dict[tuple[str, str], list[float]] = {}
    for line in cp.metrics().splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m["labels"]))
        if labels.get("rejected") == "true":
            continue
        key = (labels.get("name", ""), labels.get("type", ""))
        acc = out.setdefault(key, [0.0, 0.0])
        acc[0 if m.group(1) == "sum" else 1] += float(m["value"])
    return {k: (v[0], v[1]) for k, v in out.items()}


def drive(cp: ControlPlane, namespace: str, creates: int, threads: int) -> tuple[float, list[float], int]:
    from kubernetes import client

    api = cp.api_client()
    core = client.CoreV1Api(api)
    body = copy.deepcopy(launcher_pod())
    body["metadata"].pop("namespace", None)
    body["metadata"].pop("name", None)
    body["metadata"].setdefault("generateName", "bench-")
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    remaining = [creates]

    def worker() -> None:
        nonlocal errors
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            t0 = time.perf_counter()
            try:
                core.create_namespaced_pod(namespace, body, dry_run="All", _preload_content=False)
            except Exception:
                with lock:
                    errors += 1
                continue
            with lock:
                latencies.append(time.perf_counter() - t0)

    for _ in range(min(20, creates)):  # warm connections and caches
        core.create_namespaced_pod(namespace, body, dry_run="All", _preload_content=False)
    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - started, latencies, errors


def measure(cp: ControlPlane, target: str, namespace: str, creates: int, threads: int) -> Result:
    before = webhook_durations(cp)
    seconds, latencies, errors = drive(cp, namespace, creates, threads)
    after = webhook_durations(cp)
    means = {}
    for key, (s, c) in after.items():
        s0, c0 = before.get(key, (0.0, 0.0))
        if c - c0 > 0:
            means[f"{key[0]} ({key[1]})"] = (s - s0) / (c - c0) * 1000
    return Result(target, len(latencies), seconds, latencies, errors, means)


# A target starts a webhook, registers it, and returns (its pid, a function that stops it).
Target = Callable[[ControlPlane, Path], tuple[int, Callable[[], None]]]


def pin(pid: int, cores: set[int]) -> None:
    """Pin every thread of process ``pid`` to ``cores`` (threads started later inherit it from theirs)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), cores)


BENCH_VENV = REPO / ".cache" / "bench-venv" / "bin" / "python"  # scripts/bench's `pip install .` (compiled)


def server_python() -> str:
    """The build the README's `serve` runs (scripts/bench's install) when it exists, else this venv's."""
    return str(BENCH_VENV) if BENCH_VENV.exists() else sys.executable


def with_vm_admission(cp: ControlPlane, work: Path) -> tuple[int, Callable[[], None]]:
    server = ServerProcess(
        work / "certs-ours", ["--shutdown-delay", "0", "--log-level", "warning"], python=server_python()
    )
    server.wait_ready()
    register(cp, server)
    return server.proc.pid, server.stop


def with_go_echo(cp: ControlPlane, work: Path, patch: Path | None = None) -> tuple[int, Callable[[], None]]:
    """bench/goecho (net/http + crypto/tls + encoding/json), registered with our own webhook-config output."""
    import socket
    import subprocess

    from bench.baselines import go_binary
    from webhook import certs

    certs.ensure_certs(work / "certs-go")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(go_binary()), "-addr", f"127.0.0.1:{port}", "-cert", str(work / "certs-go" / "tls.crt"),
         "-key", str(work / "certs-go" / "tls.key"), *(["-patch", str(patch)] if patch else [])],
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    register_url(cp, f"https://127.0.0.1:{port}", work / "certs-go" / "ca.crt")

    def stop() -> None:
        proc.terminate()
        proc.wait(10)

    return proc.pid, stop


def with_go_echo_patch(cp: ControlPlane, work: Path) -> tuple[int, Callable[[], None]]:
    """The Go echo answering /mutate with the patch vm-admission gives the bench's launcher pod."""
    import orjson

    from bench.payloads import review
    from webhook import engine
    from webhook.config import Config

    ops = engine.handle(review(launcher_pod())["request"], "mutate", Config()).patch
    assert ops, "vm-admission gives the launcher pod a patch"
    path = work / "launcher-pod.patch.json"
    path.write_bytes(orjson.dumps(ops))
    return with_go_echo(cp, work, path)


def run(creates: int, threads: int, *, pinned: bool = False, rounds: int = 1) -> list[Result]:
    """``none`` once, then ours and the Go echoes ``rounds`` times, alternating; each target's best round."""
    best: dict[str, Result] = {}
    with ControlPlane(find_assets(), extra_apiserver_args=("--v=0",)) as cp:
        if pinned:
            for proc in (cp.etcd, cp.apiserver):
                assert proc is not None
                pin(proc.pid, {1})
            pin(os.getpid(), {1})  # the client threads (started later) inherit it
        cp.kubectl("create", "namespace", "bench")
        plan: list[tuple[str, Target | None]] = [("none", None)]
        plan += [
            ("vm-admission", with_vm_admission),
            ("go-echo", with_go_echo),
            ("go-echo+patch", with_go_echo_patch),
        ] * rounds
        for name, start in plan:
            started = start(cp, cp.dir) if start else None
            try:
                if started is not None and pinned:
                    pin(started[0], {0})
                result = measure(cp, name, "bench", creates, threads)
                if name not in best or result.rate > best[name].rate:
                    best[name] = result
            finally:
                unregister(cp)
                if started is not None:
                    started[1]()
    return list(best.values())


def table(results: Sequence[Result]) -> str:
    rows = [
        "| target | creates/s | client p50 ms | client p99 ms | errors | API server's mean per webhook (ms) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        hooks = ", ".join(f"{k}: {v:.2f}" for k, v in sorted(r.webhook_mean_ms.items())) or "—"
        rows.append(f"| {r.target} | {r.rate:.1f} | {r.pct(0.5):.1f} | {r.pct(0.99):.1f} | {r.errors} | {hooks} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.apiserver", description=__doc__.split("\n")[0])
    parser.add_argument("--creates", type=int, default=600, help="dry-run creates per target (default 600)")
    parser.add_argument("--threads", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--pin", action="store_true", help="the webhook on core 0, everything else on core 1")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of ours and Go; best counts")
    args = parser.parse_args(argv)
    results = run(args.creates, args.threads, pinned=args.pin, rounds=max(1, args.rounds))
    print(f"webhook served by {server_python()} (scripts/bench installs the compiled build there)")
    where = "webhook pinned to core 0, the rest to core 1" if args.pin else "unpinned"
    print(f"## Through kube-apiserver: {args.creates} server-side dry-run creates of the launcher pod, "
          f"{args.threads} client threads, {where}, best of {max(1, args.rounds)} round(s)")  # fmt: skip
    print()
    print(table(results))
    ours = next((r for r in results if r.target == "vm-admission"), None)
    go = next((r for r in results if r.target == "go-echo"), None)
    if ours and go:
        print()
        print(f"vm-admission / go-echo creates/s: {ours.rate / go.rate:.2f}x")
        for hook, ms in sorted(ours.webhook_mean_ms.items()):
            if hook in go.webhook_mean_ms:
                print(f"API server's mean for {hook}: vm-admission / go-echo {ms / go.webhook_mean_ms[hook]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
