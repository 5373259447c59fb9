"""Over HTTPS on loopback: one uvicorn worker on core 0, wrk on core 1, webhook vs a bare endpoint.

The server is :mod:`bench.bare_server`: ``vm-admission serve``'s own app and uvicorn/TLS settings with one
extra route, ``POST /bare``, that reads the body and returns a canned AdmissionReview response of the same
size as the webhook's answer. So the ratio webhook ÷ bare is the cost of our review, nothing else. A third
route, ``POST /decode``, decodes the body with orjson before the same answer: the floor for any webhook that
reads the object, measured against ``/bare`` the same way.

Measured: keep-alive throughput and latency at 1/8/32 connections; cold connections (``Connection: close``:
a TCP connection and a TLS handshake per request); the worker's RSS after 1k and after 100k reviews.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import wrk
from bench.inprocess import ours
from bench.payloads import payloads
from webhook.config import Config

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (``VmRSS`` in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    cert_dir: Path

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.cert_dir / "ca.crt"))
        return ctx

    def get(self, path: str) -> int:
        conn = http.client.HTTPSConnection(HOST, self.port, context=self.ssl_context(), timeout=5)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        finally:
            conn.close()


@contextlib.contextmanager
def server(core: int | None = 0, log_level: str = "info", extra_args: list[str] | None = None) -> Iterator[Server]:
    """Start the bench server pinned to ``core``; stop it (SIGTERM, then SIGKILL) when done.

    ``log_level`` defaults to ``serve``'s own default (one JSON log line per review), written to a file.
    """
    with tempfile.TemporaryDirectory(prefix="vm-admission-bench-") as tmp:
        cert_dir = Path(tmp) / "certs"
        port = free_port()
        cmd = [sys.executable, "-m", "bench.bare_server", "--host", HOST, "--port", str(port)]
        cmd += ["--cert-dir", str(cert_dir), "--log-level", log_level, *(extra_args or [])]
        if core is not None:
            cmd = ["taskset", "-c", str(core), *cmd]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        log = (Path(tmp) / "server.log").open("wb")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
        srv = Server(proc, port, cert_dir)
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"bench server exited with {proc.returncode}")
                with contextlib.suppress(OSError, ssl.SSLError, http.client.HTTPException):
                    if (cert_dir / "ca.crt").exists() and srv.get("/healthz") == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("bench server did not become healthy within 30 s")
                time.sleep(0.2)
            yield srv
        finally:
            proc.send_signal(signal.SIGINT)  # SIGTERM drains readiness for seconds; two SIGINTs exit at once
            time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


@dataclass(frozen=True, slots=True)
class Pair:
    label: str
    connections: int
    webhook: wrk.WrkResult
    bare: wrk.WrkResult

    @property
    def ratio(self) -> float:
        return self.webhook.rps / self.bare.rps if self.bare.rps else 0.0


@dataclass(frozen=True, slots=True)
class HttpReport:
    pairs: list[Pair]
    floor: Pair  # /decode (orjson.loads of the body + the canned answer) against /bare, 8 connections
    rss_after_1k_kib: int
    rss_after_100k_kib: int
    reviews_for_memory: int
    memory_errors: int


def run(duration_s: float = 5.0, memory_reviews: int = 100_000, rounds: int = 3) -> HttpReport:
    """The whole HTTPS part; raises if wrk is missing (callers check :func:`wrk.available` first).

    Webhook and bare runs alternate ``rounds`` times and the best run of each counts: on a shared machine
    noise only ever slows a run down, and alternating gives both sides the same chances.
    """
    cases = payloads()
    pod = next(p for p in cases if p.name == "launcher-pod" and p.webhook == "mutate")
    mix = [(f"/{p.webhook}", p.body) for p in cases]
    pairs: list[Pair] = []
    with server() as srv:
        # Check the server answers the payload as in process before timing anything.
        expected = ours("mutate", Config())(pod.body)
        _post_check(srv, "/mutate", pod.body, len(expected))
        _post_check(srv, "/bare", pod.body, len(expected))
        for c in (1, 8, 32):
            hook, bare = _best_of(srv, [("/mutate", pod.body)], [("/bare", pod.body)], c, duration_s, rounds)
            pairs.append(Pair("keep-alive", c, hook, bare))
        hook, bare = _best_of(srv, [("/mutate", pod.body)], [("/bare", pod.body)], 1, duration_s, rounds, close=True)
        pairs.append(Pair("new TLS connection per request", 1, hook, bare))
        _post_check(srv, "/decode", pod.body, len(expected))
        decode, bare = _best_of(srv, [("/decode", pod.body)], [("/bare", pod.body)], 8, duration_s, rounds)
        floor = Pair("decode only", 8, decode, bare)
    with server() as srv:
        first = wrk.run(srv.url, mix, connections=8, duration_s=10, stop_after=1000)
        rss_1k = rss_kib(srv.pid)
        done, errors = first.requests, first.errors
        while done < memory_reviews:
            r = wrk.run(srv.url, mix, connections=8, duration_s=10)
            done += r.requests
            errors += r.errors
        rss_100k = rss_kib(srv.pid)
        if srv.get("/healthz") != 200:
            raise RuntimeError("server unhealthy after the memory run")
    return HttpReport(pairs, floor, rss_1k, rss_100k, done, errors)


def _best_of(
    srv: Server,
    hook_reqs: list[tuple[str, bytes]],
    bare_reqs: list[tuple[str, bytes]],
    connections: int,
    duration_s: float,
    rounds: int,
    close: bool = False,
) -> tuple[wrk.WrkResult, wrk.WrkResult]:
    hooks, bares = [], []
    for _ in range(rounds):
        hooks.append(
            wrk.run(srv.url, hook_reqs, connections=connections, duration_s=duration_s, close_connections=close)
        )
        bares.append(
            wrk.run(srv.url, bare_reqs, connections=connections, duration_s=duration_s, close_connections=close)
        )
    if any(r.errors for r in hooks + bares):
        raise RuntimeError(f"errors during the HTTPS runs: {hooks + bares}")
    return max(hooks, key=lambda r: r.rps), max(bares, key=lambda r: r.rps)


def post(srv: Server, path: str, body: bytes, timeout: float = 5) -> tuple[int, bytes]:
    """One POST over a fresh, CA-verified TLS connection: (status, body)."""
    conn = http.client.HTTPSConnection(HOST, srv.port, context=srv.ssl_context(), timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _post_check(srv: Server, path: str, body: bytes, size: int) -> None:
    status, data = post(srv, path, body)
    if status != 200 or b'"AdmissionReview"' not in data:
        raise RuntimeError(f"POST {path}: {status} {data[:200]!r}")
    if abs(len(data) - size) > 64:
        raise RuntimeError(f"POST {path}: answer of {len(data)} bytes, expected about {size}")


def table(report: HttpReport) -> str:
    lines = [
        "| connections | mode | webhook req/s | webhook p50 / p99 ms | bare req/s | bare p50 / p99 ms "
        "| webhook ÷ bare |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for p in report.pairs:
        w, b = p.webhook, p.bare
        lines.append(
            f"| {p.connections} | {p.label} | {w.rps:,.0f} | {w.p50_us / 1000:.2f} / {w.p99_us / 1000:.2f} "
            f"| {b.rps:,.0f} | {b.p50_us / 1000:.2f} / {b.p99_us / 1000:.2f} | {p.ratio:.2f} |"
        )
    errors = sum(p.webhook.errors + p.bare.errors for p in report.pairs)
    lines.append("")
    lines.append(f"errors during the runs: {errors}")
    at8 = next(p for p in report.pairs if p.connections == 8 and p.label == "keep-alive")
    floor = report.floor
    lines.append(
        f"decode-only floor at 8 connections (orjson.loads of the body, then the canned answer): "
        f"{floor.webhook.rps:,.0f} req/s = {floor.ratio:.2f}x bare; the webhook reaches "
        f"{at8.webhook.rps / floor.webhook.rps if floor.webhook.rps else 0:.2f}x of that floor"
    )
    cold = next(p for p in report.pairs if p.label.startswith("new TLS"))
    if cold.webhook.rps:
        lines.append(f"cold connection: {1000 / cold.webhook.rps:.2f} ms per request including the TLS handshake")
    lines.append(
        f"worker RSS: {report.rss_after_1k_kib / 1024:.1f} MiB after 1k reviews, "
        f"{report.rss_after_100k_kib / 1024:.1f} MiB after {report.reviews_for_memory:,} "
        f"({report.memory_errors} errors)"
    )
    return "\n".join(lines)


def verdicts(report: HttpReport) -> list[str]:
    at8 = next(p for p in report.pairs if p.connections == 8 and p.label == "keep-alive")
    growth = report.rss_after_100k_kib - report.rss_after_1k_kib
    return [
        _target(
            "HTTPS ≥ 0.85x bare throughput at 8 connections",
            at8.ratio >= 0.85,
            f"{at8.ratio:.2f}x; decoding the body alone reaches {report.floor.ratio:.2f}x",
        ),
        _target(
            "HTTPS p99 ≤ 10 ms at 8 connections", at8.webhook.p99_us <= 10_000, f"{at8.webhook.p99_us / 1000:.2f} ms"
        ),
        _target(
            "flat memory (≤ 5 MiB growth from 1k to 100k reviews)", growth <= 5 * 1024, f"{growth / 1024:+.1f} MiB"
        ),
        _target("no errors", report.memory_errors == 0, str(report.memory_errors)),
    ]


def _target(what: str, ok: bool, got: str) -> str:
    return f"{'PASS' if ok else 'FAIL'}  {what} (measured {got})"
