"""Prometheus collectors (served on ``GET /metrics``), in a registry of their own per app instance.

Names and labels are part of the operations documentation (docs/operations.md); label values are bounded
(kinds we know or ``other``, the four operations or ``other``, a fixed set of verdicts and error reasons).

The per-review series (``vm_admission_requests_total``, ``vm_admission_request_duration_seconds``,
``vm_admission_requests_in_flight``) are plain integers and floats (:mod:`webhook.review_counters`, compiled with the
hot path), turned into Prometheus families only when ``/metrics`` is scraped (:class:`ReviewStats`).
prometheus_client's own children take a lock and walk the buckets in Python on every ``inc``/``observe``:
about 1.8 µs per review for the four updates, against about 0.3 µs here. That is safe because every update
happens on the event loop thread, which also serves the scrape; nothing else writes these numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from webhook import build
from webhook.review_counters import DURATION_BUCKETS, Tally
from webhook.rules.registry import RULE_ID  # the ids rules emit: anything else is counted as "other"

if TYPE_CHECKING:
    from webhook.engine import Verdict


class ReviewStats:
    """The per-review collectors as a custom Prometheus collector over a :class:`~webhook.review_counters.Tally`."""

    def __init__(self) -> None:
        self.tally = Tally()

    def collect(self) -> Iterable[Metric]:
        labels = ["webhook", "kind", "operation", "verdict"]
        requests = CounterMetricFamily(
            "vm_admission_requests",
            "AdmissionReviews answered, by webhook, kind, operation and verdict.",
            labels=labels,
        )
        duration = HistogramMetricFamily(
            "vm_admission_request_duration_seconds",
            "Time from the first body byte read to the response built, by webhook, kind, operation and verdict.",
            labels=labels,
        )
        bounds = [*(repr(float(b)) for b in DURATION_BUCKETS), "+Inf"]  # as prometheus_client writes them
        for key, s in sorted(self.tally.series.items()):
            requests.add_metric(key, s.count)
            cumulative, running = [], 0
            for bound, n in zip(bounds, s.buckets, strict=True):
                running += n
                cumulative.append((bound, float(running)))
            duration.add_metric(key, cumulative, s.total)
        in_flight = GaugeMetricFamily(
            "vm_admission_requests_in_flight", "AdmissionReviews being handled now.", labels=["webhook"]
        )
        for webhook, gauge in sorted(self.tally.in_flight.items()):
            in_flight.add_metric([webhook], gauge.value)
        return [requests, duration, in_flight]

    def describe(self) -> Iterator[Metric]:
        return iter(())  # no fixed description: registering never calls collect() early


class Metrics:
    """All collectors of one server; ``render()`` gives the exposition text and its content type."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.reviews = ReviewStats()
        r.register(self.reviews)
        self.errors = Counter(
            "vm_admission_errors",
            "Requests refused at the edge (bad_json, not_admission_review, content_type, too_large) and "
            "reviews that failed inside the rules (internal).",
            ["reason"],
            registry=r,
        )
        self.denials = Counter(
            "vm_admission_denials",
            "Causes of denied reviews, by webhook and rule id (docs/rules.md); a review with three causes counts 3.",
            ["webhook", "rule"],
            registry=r,
        )
        self.would_deny = Counter(
            "vm_admission_would_deny",
            "With enforcement: warn, causes that would have denied a review (admitted with warnings), by webhook "
            "and rule id.",
            ["webhook", "rule"],
            registry=r,
        )
        self._rule_children: dict[tuple[bool, str, str], Any] = {}
        self.cert_reloads = Counter(
            "vm_admission_cert_reloads", "Serving certificate reload attempts, by result.", ["result"], registry=r
        )
        self.cert_last_reload = Gauge(
            "vm_admission_cert_last_reload_success_timestamp_seconds",
            "Unix time the serving certificate was last loaded successfully.",
            registry=r,
        )
        self.cert_expiry = Gauge(
            "vm_admission_cert_expiry_seconds",
            "Seconds until the serving certificate in use expires (negative once expired).",
            registry=r,
        )
        self.config_reloads = Counter(
            "vm_admission_config_reloads", "Config file reload attempts, by result.", ["result"], registry=r
        )
        self.config_last_reload = Gauge(
            "vm_admission_config_last_reload_success_timestamp_seconds",
            "Unix time the config was last loaded successfully.",
            registry=r,
        )
        self.build_info = Gauge(
            "vm_admission_build_info",
            "Always 1; the build label says whether the hot path runs as mypyc-compiled modules or pure Python.",
            ["build"],
            registry=r,
        )
        self.build_info.labels(build.flavor()).set(1)
        # The cluster view (docs/cluster-view.md); exported whether or not the view is on (synced 0 when off).
        self.cluster_synced_gauge = Gauge(
            "vm_admission_cluster_synced",
            "1 while the cluster view is synced and preflight runs; 0 when it is off, not yet synced, or lost.",
            registry=r,
        )
        self.cluster_view_enabled = Gauge(
            "vm_admission_cluster_view_enabled", "1 when the cluster view is on (config cluster.watch).", registry=r
        )
        self.cluster_objects_gauge = Gauge(
            "vm_admission_cluster_objects",
            "Objects in the cluster view, by kind (Node, KubeVirt, NetworkAttachmentDefinition).",
            ["kind"],
            registry=r,
        )
        self.cluster_restarts = Counter(
            "vm_admission_cluster_watch_restarts",
            "Watches of the cluster view restarted, by kind and reason: timeout (routine, resumed from the last "
            "resourceVersion), expired (410 Gone: relisted), error (backed off with jitter).",
            ["kind", "reason"],
            registry=r,
        )
        self.cluster_last_event = Gauge(
            "vm_admission_cluster_last_event_timestamp_seconds",
            "Unix time of the last watch event applied to the cluster view, by kind.",
            ["kind"],
            registry=r,
        )
        for result in ("success", "failure"):
            self.cert_reloads.labels(result)
            self.config_reloads.labels(result)

    def count_denials(self, webhook: str, verdict: Verdict) -> None:
        """Count each cause of a denied ``verdict`` (or, in warn mode, each would-deny cause) by rule id.

        The endpoint calls it only when the verdict has such causes. Rule ids come from a fixed set; an id that
        does not look like one (or a missing one) is counted as ``other`` so labels stay bounded.
        """
        self._count(False, webhook, (c.rule for c in verdict.causes))
        self._count(True, webhook, (c.rule for c in verdict.would_deny))

    def _count(self, warn: bool, webhook: str, rules: Iterable[str]) -> None:
        for rule in rules:
            key = (warn, webhook, rule)
            child = self._rule_children.get(key)
            if child is None:
                label = rule if RULE_ID.fullmatch(rule) else "other"
                counter = self.would_deny if warn else self.denials
                child = self._rule_children[key] = counter.labels(webhook, label)
            child.inc()

    # -- the cluster view's observer (webhook.cluster.view.Observer) -----------------------------------

    def cluster_synced(self, synced: bool) -> None:
        self.cluster_synced_gauge.set(1 if synced else 0)

    def cluster_objects(self, kind: str, count: int) -> None:
        self.cluster_objects_gauge.labels(kind).set(count)

    def cluster_watch_restart(self, kind: str, reason: str) -> None:
        self.cluster_restarts.labels(kind, reason).inc()

    def cluster_event(self, kind: str) -> None:
        self.cluster_last_event.labels(kind).set_to_current_time()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
