"""One command for every benchmark: ``python -m bench.run`` (from the repository root, in the venv).

Prints Markdown tables: in-process µs per review against the naive reference and bare orjson, then, when
``wrk`` is installed, HTTPS throughput/latency against the bare endpoint, cold-connection cost and worker
memory; each target of issue 7 is listed as PASS or FAIL. Exit status is 0 even when a target fails (the
machine is shared and noisy; read the numbers).
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence

import orjson

from bench import inprocess, wrk
from webhook import build


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description="vm-admission benchmarks")
    parser.add_argument("--iterations", type=int, default=20_000, help="in-process timed calls per case")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating webhook/bare runs; best counts")
    parser.add_argument("--memory-reviews", type=int, default=100_000, help="reviews before the second RSS read")
    parser.add_argument("--skip-http", action="store_true", help="in-process part only")
    args = parser.parse_args(argv)

    print(
        f"Python {platform.python_version()}, orjson {orjson.__version__}, {platform.machine()}, "
        f"build: {build.flavor()} (scripts/compiled -m bench.run for the mypyc build)"
    )
    print()
    print(f"## In process ({args.iterations:,} reviews per case)")
    print()
    rows = inprocess.run(args.iterations)
    print(inprocess.table(rows))
    print()
    print("\n".join(inprocess.verdicts(rows)))
    print()
    if args.skip_http:
        return 0
    if not wrk.available():
        print(f"HTTPS part skipped: {wrk.INSTALL_HINT}")
        return 0
    from bench import http

    print("## Over HTTPS on loopback (uvicorn worker on core 0, wrk on core 1, launcher-pod mutate)")
    print()
    report = http.run(duration_s=args.duration, memory_reviews=args.memory_reviews, rounds=args.rounds)
    print(http.table(report))
    print()
    print("\n".join(http.verdicts(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
