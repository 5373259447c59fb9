"""One command for every benchmark: ``python -m bench.run`` (from the repository root, in the venv).

Prints Markdown tables: in-process µs per review against the naive reference and bare orjson, the cost of the
per-review log line and metrics, then, when ``wrk`` is installed, HTTPS throughput/latency of the webhook
against the Python floor and the Go echo (:mod:`bench.http`) and the webhook's memory; each target is listed
as PASS or FAIL. Exit status is 0 even when a target fails (read the numbers and how they were taken).
``--quick`` is a smoke run of everything (seconds, numbers meaningless). ``scripts/bench`` runs this against a
fresh ``pip install .``, the build the README's ``serve`` runs.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence

import orjson

from bench import inprocess, overhead, wrk
from webhook import build


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description="vm-admission benchmarks")
    parser.add_argument("--iterations", type=int, default=20_000, help="in-process timed calls per case")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk round (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per server; best counts (3)")
    parser.add_argument("--memory-reviews", type=int, default=100_000, help="reviews before the second RSS read")
    parser.add_argument("--skip-http", action="store_true", help="in-process part only")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 s rounds, 1 round, few iterations")
    parser.add_argument("--no-pin", action="store_true", help="no taskset (one-core machines, smoke tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.duration, args.rounds, args.memory_reviews = 200, 1.0, 1, 2000

    print(
        f"Python {platform.python_version()}, orjson {orjson.__version__}, {platform.machine()}, "
        f"build: {build.flavor()} (scripts/bench measures the compiled build of pip install .)"
    )
    print()
    print(f"## In process ({args.iterations:,} reviews per case)")
    print()
    rows = inprocess.run(args.iterations)
    print(inprocess.table(rows))
    print()
    print("\n".join(inprocess.verdicts(rows)))
    print()
    print("## Per-review bookkeeping in process (µs)")
    print()
    print(overhead.table(overhead.run(max(1000, args.iterations))))
    print()
    if args.skip_http:
        return 0
    if not wrk.available():
        print(f"HTTPS part skipped: {wrk.INSTALL_HINT}")
        return 0
    from bench import http

    print(
        f"## Over HTTPS on loopback (each server pinned to core 0, wrk -t1 on core 1, best of {args.rounds} "
        f"alternating {args.duration:g} s rounds)"
    )
    print()
    report = http.run(args.duration, args.memory_reviews, args.rounds, pin=not args.no_pin)
    print(http.table(report))
    print()
    print("\n".join(http.verdicts(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
