"""Soak: a bounded loopback run of many reviews against one worker; zero errors, nothing lost, flat memory.

    python -m bench.soak --reviews 200000 --minutes 5 --connections 8

wrk (core 1) cycles all benchmark payloads through ``/mutate`` and ``/validate`` of one worker (core 0) in
10-second chunks until ``--reviews`` are done or ``--minutes`` have passed, whichever comes first. After each
chunk the worker's RSS is read and one review is sent by a verifying client that checks the answer (uid
echoed, same bytes as in process). Exits 1 on any error, a failed check, or RSS growth over ``--max-growth-mib``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import orjson

from bench import wrk
from bench.baselines import Server, rss_kib
from bench.http import post, server
from bench.inprocess import ours
from bench.payloads import payloads
from webhook.config import Config


def verify(srv: Server, path: str, body: bytes, expected: bytes) -> bool:
    """One review over a fresh verified TLS connection; True when the answer equals the in-process one."""
    status, data = post(srv, path, body)
    return status == 200 and orjson.loads(data) == orjson.loads(expected)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=200_000, help="stop after this many reviews (default 200k)")
    parser.add_argument("--minutes", type=float, default=5.0, help="stop after this long (default 5)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--chunk-seconds", type=float, default=10.0)
    parser.add_argument("--max-growth-mib", type=float, default=5.0, help="allowed RSS growth after the first chunk")
    args = parser.parse_args(argv)
    if not wrk.available():
        print(wrk.INSTALL_HINT, file=sys.stderr)
        return 2
    cases = payloads()
    mix = [(f"/{p.webhook}", p.body) for p in cases]
    config = Config()
    expected = [(f"/{p.webhook}", p.body, ours(p.webhook, config)(p.body)) for p in cases]
    done = errors = failed_checks = 0
    rss: list[int] = []
    started = time.monotonic()
    print("| chunk | reviews so far | req/s | p99 ms | errors | RSS MiB |")
    print("|---:|---:|---:|---:|---:|---:|")
    with server() as srv:
        chunk = 0
        while done < args.reviews and time.monotonic() - started < args.minutes * 60:
            chunk += 1
            r = wrk.run(srv.url, mix, connections=args.connections, duration_s=args.chunk_seconds)
            done += r.requests
            errors += r.errors
            path, body, want = expected[chunk % len(expected)]
            if not verify(srv, path, body, want):
                failed_checks += 1
            rss.append(rss_kib(srv.pid))
            print(f"| {chunk} | {done:,} | {r.rps:,.0f} | {r.p99_us / 1000:.2f} | {r.errors} | {rss[-1] / 1024:.1f} |")
        healthy = srv.get("/healthz") == 200
    elapsed = time.monotonic() - started
    growth = (rss[-1] - rss[0]) / 1024 if rss else 0.0
    print()
    print(
        f"{done:,} reviews in {elapsed:.0f} s ({done / elapsed:,.0f}/s), errors {errors}, failed checks "
        f"{failed_checks}, RSS {rss[0] / 1024:.1f} -> {rss[-1] / 1024:.1f} MiB ({growth:+.1f} MiB), "
        f"healthy at the end: {healthy}"
    )
    ok = errors == 0 and failed_checks == 0 and healthy and growth <= args.max_growth_mib
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
