"""The benchmark runs: every payload goes through our path, the naive reference and bare orjson."""

from __future__ import annotations

import orjson

from bench import inprocess
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
    assert all(line.startswith(("PASS", "FAIL")) for line in inprocess.verdicts(rows))
