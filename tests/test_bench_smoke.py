"""The benchmark runs: every payload goes through our path, the naive reference and bare orjson."""

from __future__ import annotations

from typing import Any

import orjson

from bench import inprocess, wrk
from bench.http import post
from bench.payloads import payloads


def test_payloads_are_admission_reviews_of_realistic_size() -> None:
    cases = payloads()
    names = {(p.name, p.webhook) for p in cases}
    assert ("launcher-pod", "mutate") in names
    assert ("unrelated-pod", "mutate") in names
    pod = next(p for p in cases if p.name == "launcher-pod")
    doc = orjson.loads(pod.body)
    assert doc["kind"] == "AdmissionReview"
    assert 8_000 <= len(pod.body) <= 12_000
    spec = doc["request"]["object"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["compute", "hook-sidecar-0", "istio-proxy"]
    assert spec["initContainers"][0]["restartPolicy"] == "Always"


def test_in_process_bench_runs_and_prints_a_table() -> None:
    rows = inprocess.run(iterations=3)
    assert len(rows) == len(payloads())
    out = inprocess.table(rows)
    assert out.count("\n") == len(rows) + 1
    assert "launcher-pod" in out and "unrelated-pod" in out
    verdicts = inprocess.verdicts(rows)
    assert verdicts, "the bench printed no verdict lines"
    assert all(line.startswith(("PASS", "FAIL")) for line in verdicts)


def test_bench_server_answers_the_webhook_and_the_bare_and_decode_endpoints_with_the_same_size() -> None:
    from bench import http

    pod = next(p for p in payloads() if p.name == "launcher-pod" and p.webhook == "mutate")
    with http.server(core=None, log_level="warning") as srv:
        sizes = [len(_post(srv, path, pod.body)) for path in ("/mutate", "/bare", "/decode")]
        assert max(sizes) - min(sizes) <= 64, sizes
        status, _ = post(srv, "/decode", b"{not json", timeout=10)
        assert status == 500  # /decode really decodes (and, being bench-only, has no error handling)
        assert http.rss_kib(srv.pid) > 0
        if wrk.available():
            result = wrk.run(
                srv.url, [("/mutate", pod.body), ("/bare", pod.body)], connections=2, duration_s=1, core=None
            )
            assert result.requests > 0
            assert result.errors == 0


def _post(srv: Any, path: str, body: bytes) -> bytes:
    status, data = post(srv, path, body, timeout=10)
    assert status == 200, data[:200]
    assert orjson.loads(data)["kind"] == "AdmissionReview"
    return data
