"""Over HTTPS on loopback: the webhook against the Python floor and the Go echo, each pinned to one core.

Servers (:mod:`bench.baselines`): ``vm-admission serve`` as installed (``webhook``), the raw ASGI
decode-and-echo on uvicorn with httptools (``python``) and the Go ``net/http`` echo (``go``). Each runs pinned
to core 0 (``taskset``), ``wrk -t1 -cN`` on core 1. For every case the servers take turns, ``rounds`` times
(alternating, so load on a shared machine hits each side alike); the best round of each server counts.

Measured: the launcher pod on ``/mutate`` at 1, 8 and 32 keep-alive connections; the fast path (an unrelated
pod, nothing to do) at 8 connections; the webhook's RSS after 1k reviews and after ``memory_reviews``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

from bench import baselines, wrk
from bench.baselines import Server, rss_kib
from bench.inprocess import ours
from bench.payloads import payloads
from webhook.config import Config

CONNECTIONS = (1, 8, 32)


def server(core: int | None = 0, log_level: str = "info") -> contextlib.AbstractContextManager[Server]:
    """The webhook as installed (``vm-admission serve``), for the soak and the smoke test."""
    return baselines.server("webhook", core=core, log_level=log_level)


def post(srv: Server, path: str, body: bytes, timeout: float = 5) -> tuple[int, bytes]:
    """One POST over a fresh, CA-verified TLS connection: (status, body)."""
    return srv.request("POST", path, body, timeout=timeout)


@dataclass(frozen=True, slots=True)
class Case:
    label: str
    connections: int
    results: dict[str, wrk.WrkResult]  # server name -> best round

    def ratio(self, other: str) -> float | None:
        if other not in self.results or not self.results[other].rps:
            return None
        return self.results["webhook"].rps / self.results[other].rps


@dataclass
class HttpReport:
    build: str
    servers: list[str]
    cases: list[Case] = field(default_factory=list)
    rss_after_1k_kib: int = 0
    rss_after_kib: int = 0
    reviews_for_memory: int = 0
    memory_errors: int = 0
    notes: list[str] = field(default_factory=list)


def want_go() -> bool:
    """Go is measured when installed; under ``CI=true`` a missing Go is an error, not a skipped column."""
    if baselines.go_available():
        return True
    if os.environ.get("CI") == "true":
        raise baselines.GoMissing(f"CI=true and {baselines.GO_HINT}")
    return False


def check_answers(srv: Server, path: str, body: bytes, expected: bytes | None) -> None:
    """The server answers ``body`` as it must before anything is timed: uid echoed, same bytes as in process."""
    status, data = post(srv, path, body)
    if status != 200:
        raise RuntimeError(f"{srv.name} POST {path}: {status} {data[:200]!r}")
    got, sent = orjson.loads(data), orjson.loads(body)
    if expected is not None and got != orjson.loads(expected):
        raise RuntimeError(f"{srv.name} POST {path}: the answer differs from the in-process one")
    if got["response"]["uid"] != sent["request"]["uid"] or got["apiVersion"] != sent["apiVersion"]:
        raise RuntimeError(f"{srv.name} POST {path}: uid or apiVersion not echoed: {data[:200]!r}")


@contextlib.contextmanager
def _servers(names: list[str], core: int | None) -> Iterator[dict[str, Server]]:
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(baselines.server(name, core=core)) for name in names}


def run(duration_s: float = 10.0, memory_reviews: int = 100_000, rounds: int = 3, *, pin: bool = True) -> HttpReport:
    """The whole HTTPS part; raises if wrk is missing (callers check :func:`wrk.available` first).

    ``pin=False`` (smoke tests, one-core machines) runs servers and wrk unpinned.
    """
    client = 1 if pin else None  # wrk's core
    cases = payloads()
    pod = next(p for p in cases if p.name == "launcher-pod" and p.webhook == "mutate")
    plain = next(p for p in cases if p.name == "unrelated-pod")
    config = Config()
    names = ["webhook", "python", *(["go"] if want_go() else [])]
    with _servers(names, 0 if pin else None) as servers:
        hook = servers["webhook"]
        report = HttpReport(baselines.served_build(hook), names)
        if "go" not in servers:
            report.notes.append(f"Go baseline skipped: {baselines.GO_HINT}")
        for p in (pod, plain):
            for name, srv in servers.items():
                check_answers(srv, "/mutate", p.body, ours("mutate", config)(p.body) if name == "webhook" else None)
        for c in CONNECTIONS:
            report.cases.append(_best_of(servers, pod.body, f"launcher pod ({len(pod.body):,} B) /mutate", c,
                                         duration_s, rounds, client))  # fmt: skip
        fast = f"fast path: unrelated pod ({len(plain.body):,} B) /mutate"
        report.cases.append(_best_of(servers, plain.body, fast, 8, duration_s, rounds, client))
        _memory(report, hook, [(f"/{p.webhook}", p.body) for p in cases], memory_reviews, client)
        if hook.get("/healthz") != 200:
            raise RuntimeError("webhook unhealthy after the runs")
    return report


def _best_of(
    servers: dict[str, Server],
    body: bytes,
    label: str,
    connections: int,
    duration_s: float,
    rounds: int,
    client: int | None,
) -> Case:
    runs: dict[str, list[wrk.WrkResult]] = {name: [] for name in servers}
    for _ in range(rounds):
        for name, srv in servers.items():
            r = wrk.run(srv.url, [("/mutate", body)], connections=connections, duration_s=duration_s, core=client)
            runs[name].append(r)
    bad = {name: [r for r in rs if r.errors] for name, rs in runs.items() if any(r.errors for r in rs)}
    if bad:
        raise RuntimeError(f"errors during the HTTPS runs ({label}, {connections} connections): {bad}")
    return Case(label, connections, {name: max(rs, key=lambda r: r.rps) for name, rs in runs.items()})


def _memory(report: HttpReport, hook: Server, mix: list[tuple[str, bytes]], reviews: int, client: int | None) -> None:
    """RSS of the webhook (which has already served the timed runs) after 1k more reviews and after ``reviews``."""
    first = wrk.run(hook.url, mix, connections=8, duration_s=10, stop_after=1000, core=client)
    report.rss_after_1k_kib = rss_kib(hook.pid)
    done, errors = first.requests, first.errors
    while done < reviews:
        r = wrk.run(hook.url, mix, connections=8, duration_s=10, stop_after=reviews - done, core=client)
        done += r.requests
        errors += r.errors
    report.rss_after_kib = rss_kib(hook.pid)
    report.reviews_for_memory, report.memory_errors = done, errors


def _fmt(r: wrk.WrkResult | None) -> str:
    return "—" if r is None else f"{r.rps:,.0f} ({r.p50_us / 1000:.2f} / {r.p99_us / 1000:.2f})"


def _ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}x"


def table(report: HttpReport) -> str:
    lines = [
        f"webhook build: {report.build}",
        "",
        "| case | conns | webhook req/s (p50 / p99 ms) | Python floor req/s (p50 / p99 ms) "
        "| Go echo req/s (p50 / p99 ms) | webhook ÷ Python | webhook ÷ Go |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in report.cases:
        lines.append(
            f"| {c.label} | {c.connections} | {_fmt(c.results['webhook'])} | {_fmt(c.results.get('python'))} "
            f"| {_fmt(c.results.get('go'))} | {_ratio(c.ratio('python'))} | {_ratio(c.ratio('go'))} |"
        )
    lines.append("")
    lines.append(
        f"webhook RSS: {report.rss_after_1k_kib / 1024:.1f} MiB after 1k reviews, {report.rss_after_kib / 1024:.1f} "
        f"MiB after {report.reviews_for_memory:,} ({report.memory_errors} errors)"
    )
    lines.extend(report.notes)
    return "\n".join(lines)


def verdicts(report: HttpReport) -> list[str]:
    """Issue 16's targets, each PASS/FAIL (on a shared machine they mean little: read the method)."""
    at8 = next(c for c in report.cases if c.connections == 8 and c.label.startswith("launcher"))
    fast = next(c for c in report.cases if c.label.startswith("fast path"))
    growth = report.rss_after_kib - report.rss_after_1k_kib
    go, py, fast_py = at8.ratio("go"), at8.ratio("python"), fast.ratio("python")
    out = []
    if go is not None:
        out.append(_target("launcher pod /mutate at 8 connections ≥ 1.5x the Go echo", go >= 1.5, f"{go:.2f}x"))
    p99 = at8.results["webhook"].p99_us
    out += [
        _target("launcher pod /mutate at 8 connections ≥ 0.75x the Python floor", (py or 0) >= 0.75, _ratio(py)),
        _target("launcher pod /mutate at 8 connections p99 ≤ 3 ms", p99 <= 3000, f"{p99 / 1000:.2f} ms"),
        _target("fast path at 8 connections ≥ 0.9x the Python floor", (fast_py or 0) >= 0.9, _ratio(fast_py)),
        _target("flat memory (≤ 5 MiB RSS growth from 1k reviews on)", growth <= 5 * 1024, f"{growth / 1024:+.1f} MiB"),
        _target("no errors", report.memory_errors == 0, str(report.memory_errors)),
    ]
    return out


def _target(what: str, ok: bool, got: str) -> str:
    return f"{'PASS' if ok else 'FAIL'}  {what} (measured {got})"
