"""In process: what per-review bookkeeping costs (µs per review), with the counters kept as plain numbers.

- the review log line: formatted as JSON and written (to /dev/null) at ``info``, what every review paid before;
  now only denials and errors pay it, an allowed or patched review pays the ``isEnabledFor(DEBUG)`` check;
- the metrics: prometheus_client's labelled children (in-flight gauge inc/dec, counter inc, histogram observe;
  the old path, children cached) against :class:`webhook.metrics.ReviewStats` (plain numbers, built on scrape).

    python -m bench.overhead
"""

from __future__ import annotations

import logging
import os
import timeit
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from webhook import endpoint, server
from webhook.metrics import DURATION_BUCKETS, Metrics

FIELDS = {
    "uid": "00000000-0000-0000-0000-000000005eed",
    "webhook": "mutate",
    "kind": "Pod",
    "namespace": "default",
    "name": "virt-launcher-vmi-dedicated-abcde",
    "operation": "CREATE",
    "dryRun": False,
    "verdict": "patched",
    "patchOps": 7,
    "durationMs": 0.123,
}


def _per_call_us(fn: Callable[[], object], number: int) -> float:
    fn()
    return min(timeit.repeat(fn, number=number, repeat=3)) / number * 1e6


def _prometheus_children() -> Callable[[], None]:
    """The old metrics path: prometheus_client children, looked up once and cached (as the server did)."""
    r = CollectorRegistry()
    labels = ["webhook", "kind", "operation", "verdict"]
    requests = Counter("r", "r", labels, registry=r).labels("mutate", "Pod", "CREATE", "patched")
    duration = Histogram("d", "d", labels, buckets=DURATION_BUCKETS, registry=r).labels(
        "mutate", "Pod", "CREATE", "patched"
    )
    gauge = Gauge("g", "g", ["webhook"], registry=r).labels("mutate")

    def run() -> None:
        gauge.inc()
        requests.inc()
        duration.observe(0.0004)
        gauge.dec()

    return run


def _review_stats() -> Callable[[], None]:
    tally = Metrics().reviews.tally  # as webhook.endpoint updates it

    def run() -> None:
        gauge = tally.in_flight_for("mutate")
        gauge.inc()
        tally.observe("mutate", "Pod", "CREATE", "patched", 0.0004)
        gauge.dec()

    return run


def run(number: int = 20_000) -> list[tuple[str, float]]:
    """(what, µs per review) rows; logging goes to /dev/null through the server's own JSON handler."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    server.setup_logging("info")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    devnull = open(os.devnull, "w")  # noqa: SIM115  (closed below)
    old_stream = handler.setStream(devnull)
    log = endpoint.review_log
    try:
        rows = [
            ("review log line at info (JSON, written): before, every review", _per_call_us(
                lambda: log.info("review", extra={"fields": dict(FIELDS)}), number)),
            ("review log level check (debug off): after, allowed and patched reviews", _per_call_us(
                lambda: log.isEnabledFor(logging.DEBUG), number)),
            ("metrics, prometheus_client children: before", _per_call_us(_prometheus_children(), number)),
            ("metrics, ReviewStats (plain numbers): after", _per_call_us(_review_stats(), number)),
        ]  # fmt: skip
    finally:
        handler.setStream(old_stream)
        devnull.close()
        root.handlers[:], root.level = saved[0], saved[1]
    return rows


def table(rows: list[tuple[str, float]]) -> str:
    lines = ["| per review | µs |", "|---|---:|"]
    lines += [f"| {what} | {us:.2f} |" for what, us in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run()))
