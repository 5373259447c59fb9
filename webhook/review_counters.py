"""The per-review numbers: counts, duration histograms and in-flight gauges as plain integers and floats.

Updated on every review (by :mod:`webhook.endpoint`, on the event loop thread, which also serves the scrape)
and turned into Prometheus families only when ``/metrics`` is scraped (:class:`webhook.metrics.ReviewStats`).
No Prometheus import here: the module is compiled with the hot path, so an update is a few native operations.
"""

from __future__ import annotations

from bisect import bisect_left

from webhook import admission

DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
KINDS = admission.KINDS  # the kinds of the admission table; others count as "other"
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})

Labels = tuple[str, str, str, str]  # webhook, kind, operation, verdict


class InFlight:
    """A gauge child that is a plain integer."""

    value: int

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1


class Series:
    """One label set of the review counter and histogram: count, sum and per-bucket (not cumulative) counts."""

    count: int
    total: float
    buckets: list[int]

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)  # the last one is +Inf


class Tally:
    """Every review's series and the in-flight gauges, by label set."""

    series: dict[Labels, Series]
    in_flight: dict[str, InFlight]

    def __init__(self) -> None:
        self.series = {}
        self.in_flight = {}

    def in_flight_for(self, webhook: str) -> InFlight:
        gauge = self.in_flight.get(webhook)
        if gauge is None:
            gauge = self.in_flight[webhook] = InFlight()
        return gauge

    def observe(self, webhook: str, kind: str, operation: str, verdict: str, seconds: float) -> None:
        """Count one answered review and its duration; unknown kinds/operations become ``other``."""
        key = (webhook, kind if kind in KINDS else "other", operation if operation in OPERATIONS else "other", verdict)
        s = self.series.get(key)
        if s is None:
            s = self.series[key] = Series()
        s.count += 1
        s.total += seconds
        s.buckets[bisect_left(DURATION_BUCKETS, seconds)] += 1  # le is inclusive: bisect_left finds its bucket
