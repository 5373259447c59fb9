"""The benchmarks run: in process, the three HTTPS servers (webhook, Python floor, Go echo), ``bench.run --quick``."""

from __future__ import annotations

import os
from typing import Any

import orjson
import pytest

from bench import baselines, http, inprocess, overhead, run, wrk
from bench.http import post
from bench.inprocess import ours
from bench.payloads import payloads
from webhook import build
from webhook.config import Config


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
    assert "Always" in [c.get("restartPolicy") for c in spec["initContainers"]]  # a native sidecar


def test_in_process_bench_runs_and_prints_a_table() -> None:
    rows = inprocess.run(iterations=3)
    assert len(rows) == len(payloads())
    out = inprocess.table(rows)
    assert out.count("\n") == len(rows) + 1
    assert "launcher-pod" in out and "unrelated-pod" in out
    verdicts = inprocess.verdicts(rows)
    assert verdicts, "the bench printed no verdict lines"
    assert all(line.startswith(("PASS", "FAIL")) for line in verdicts)


def test_per_review_bookkeeping_bench_runs() -> None:
    rows = overhead.run(number=200)
    assert len(rows) == 4 and all(us > 0 for _, us in rows)
    assert overhead.table(rows).count("\n") == len(rows) + 1


def _go_or_skip() -> None:
    """Go is needed for the Go baseline; on CI (CI=true, where Go is installed) its absence is a failure."""
    if not baselines.go_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {baselines.GO_HINT}")
        pytest.skip(baselines.GO_HINT)


@pytest.mark.parametrize("kind", ["webhook", "python", "go"])
def test_every_bench_server_answers_the_launcher_pod_with_its_uid(kind: str) -> None:
    if kind == "go":
        _go_or_skip()
    pod = next(p for p in payloads() if p.name == "launcher-pod" and p.webhook == "mutate")
    expected = ours("mutate", Config())(pod.body) if kind == "webhook" else None
    with baselines.server(kind, core=None, log_level="warning") as srv:
        for path in ("/mutate", "/validate"):
            http.check_answers(srv, path, pod.body, expected if path == "/mutate" else None)
        if kind == "webhook":
            assert baselines.served_build(srv) == build.flavor()  # the bench measures the build it imported
        if kind == "go":  # registrable as a webhook: a valid allowed AdmissionReview, errors as 4xx
            doc = orjson.loads(_post(srv, "/validate", pod.body))
            assert doc["kind"] == "AdmissionReview" and doc["response"]["allowed"] is True
            assert srv.request("POST", "/mutate", b"{not json")[0] == 400
        assert baselines.rss_kib(srv.pid) > 0


def test_go_missing_is_an_error_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(baselines, "go_available", lambda: False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(baselines.GoMissing):
        http.want_go()
    monkeypatch.setenv("CI", "false")
    assert http.want_go() is False


def test_the_quick_bench_run_prints_every_table_and_target(capsys: pytest.CaptureFixture[str]) -> None:
    if not wrk.available():
        pytest.skip(wrk.INSTALL_HINT)
    if baselines.go_available() or os.environ.get("CI") == "true":
        _go_or_skip()
    assert run.main(["--quick", "--no-pin"]) == 0
    out = capsys.readouterr().out
    assert "## In process" in out and "## Per-review bookkeeping" in out
    assert f"webhook build: {build.flavor()}" in out
    for case in ("launcher pod", "fast path"):
        assert case in out
    for target in ("0.75x the Python floor", "p99 ≤ 3 ms", "0.9x the Python floor", "flat memory"):
        assert target in out
    if baselines.go_available():
        assert "1.5x the Go echo" in out
    assert "errors during" not in out


def _post(srv: Any, path: str, body: bytes) -> bytes:
    status, data = post(srv, path, body, timeout=10)
    assert status == 200, data[:200]
    assert orjson.loads(data)["kind"] == "AdmissionReview"
    return data


def test_the_go_echo_with_a_patch_answers_mutate_with_it_and_validate_without(tmp_path: Any) -> None:
    """``goecho -patch FILE`` (bench.apiserver's go-echo+patch): the mutating answer carries that JSON Patch."""
    import base64
    import http.client
    import ssl
    import subprocess
    import time

    from webhook import certs

    _go_or_skip()
    pod = next(p for p in payloads() if p.name == "launcher-pod" and p.webhook == "mutate")
    ops = [{"op": "add", "path": "/metadata/labels/bench", "value": "yes"}]
    (tmp_path / "patch.json").write_bytes(orjson.dumps(ops))
    certs.ensure_certs(tmp_path / "certs")
    port = baselines.free_port()
    binary = str(baselines.go_binary())
    cmd = [binary, "-addr", f"127.0.0.1:{port}", "-cert", str(tmp_path / "certs" / "tls.crt"),
           "-key", str(tmp_path / "certs" / "tls.key"), "-patch", str(tmp_path / "patch.json")]  # fmt: skip
    proc = subprocess.Popen(cmd)
    ctx = ssl.create_default_context(cafile=str(tmp_path / "certs" / "ca.crt"))
    try:
        answers = {}
        deadline = time.monotonic() + 10
        for path in ("/mutate", "/validate"):
            while True:
                try:
                    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
                    conn.request("POST", path, pod.body, {"Content-Type": "application/json"})
                    answers[path] = orjson.loads(conn.getresponse().read())["response"]
                    conn.close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "goecho did not start"
                    time.sleep(0.1)
        assert answers["/mutate"]["patchType"] == "JSONPatch"
        assert orjson.loads(base64.b64decode(answers["/mutate"]["patch"])) == ops
        assert "patch" not in answers["/validate"] and answers["/validate"]["allowed"] is True
    finally:
        proc.terminate()
        proc.wait(10)
