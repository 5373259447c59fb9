"""The service over real HTTPS (CA-verified, as kube-apiserver calls it) and in-process for rule-shape tests."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.testkit.review import make_review, patch_ops
from tests.testkit.server import ServerProcess, StartServer
from webhook import build, engine
from webhook.config import Config, parse_config
from webhook.endpoint import MAX_BODY
from webhook.rules.base import Cause, Context, Findings
from webhook.server import AppState, create_app

CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "default"}}
PLAIN_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {"requests": {"cpu": "100m"}}}]},
}


def assert_alive(server: ServerProcess) -> None:
    assert server.get("/healthz").status_code == 200
    r = server.post("/validate", make_review(CONFIGMAP))
    assert r.status_code == 200 and r.json()["response"]["allowed"] is True


# ------------------------------------------------------------------------------------------ over HTTPS


@pytest.mark.parametrize("api_version", ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
@pytest.mark.parametrize("path", ["/mutate", "/validate"])
def test_answers_in_the_request_version_with_the_uid_echoed(
    https_server: ServerProcess, api_version: str, path: str
) -> None:
    review = make_review(CONFIGMAP, api_version=api_version)
    r = https_server.post(path, review)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["apiVersion"] == api_version
    assert body["kind"] == "AdmissionReview"
    assert body["response"]["uid"] == review["request"]["uid"]
    assert body["response"]["allowed"] is True
    assert "patch" not in body["response"] and "patchType" not in body["response"]


@pytest.mark.parametrize("operation", ["CREATE", "UPDATE", "DELETE", "CONNECT"])
def test_unrelated_objects_are_allowed_without_a_patch(https_server: ServerProcess, operation: str) -> None:
    for path in ("/mutate", "/validate"):
        review = make_review(CONFIGMAP, operation=operation, old=CONFIGMAP)
        body = https_server.post(path, review).json()
        assert body["response"] == {"uid": review["request"]["uid"], "allowed": True}


def test_a_pod_no_rule_concerns_is_allowed_untouched(https_server: ServerProcess) -> None:
    for path in ("/mutate", "/validate"):
        review = make_review(PLAIN_POD, dry_run=True)
        resp = https_server.post(path, review).json()["response"]
        assert resp["allowed"] is True
        assert patch_ops({"response": resp}) == []


def test_health_readiness_and_metrics(https_server: ServerProcess) -> None:
    assert https_server.get("/healthz").json() == {"status": "ok"}
    assert https_server.get("/readyz").status_code == 200
    https_server.post("/validate", make_review(CONFIGMAP))
    metrics = https_server.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert (
        https_server.metric(
            "vm_admission_requests_total", webhook="validate", kind="other", operation="CREATE", verdict="allowed"
        )
        >= 1
    )
    assert https_server.metric("vm_admission_cert_expiry_seconds") > 300 * 86400
    assert https_server.metric("vm_admission_build_info", build=build.flavor()) == 1  # the server runs this build


_AR = b'{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1",'
BAD_INPUTS: list[tuple[str, bytes, dict[str, str], int]] = [
    ("not JSON", b"{not json", {}, 400),
    ("truncated JSON", orjson.dumps(make_review(CONFIGMAP))[:-7], {}, 400),
    ("a JSON array", b"[1, 2]", {}, 400),
    ("JSON but not an AdmissionReview", b'{"kind": "Pod", "apiVersion": "v1"}', {}, 400),
    ("unknown apiVersion", _AR.replace(b"/v1", b"/v2") + b'"request":{"uid":"a"}}', {}, 400),
    ("no request", _AR[:-1] + b"}", {}, 400),
    ("missing uid", _AR + b'"request":{"operation":"CREATE"}}', {}, 400),
    ("uid not a string", _AR + b'"request":{"uid":7}}', {}, 400),
    ("request not an object", _AR + b'"request":"x"}', {}, 400),
    ("empty body", b"", {}, 400),
    ("text/plain", orjson.dumps(make_review(CONFIGMAP)), {"content-type": "text/plain"}, 415),
    ("application/yaml", orjson.dumps(make_review(CONFIGMAP)), {"content-type": "application/yaml"}, 415),
]  # fmt: skip


@pytest.mark.parametrize(("what", "body", "headers", "status"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
@pytest.mark.parametrize("path", ["/mutate", "/validate"])
def test_bad_input_gets_a_4xx_json_error_and_the_server_keeps_serving(
    https_server: ServerProcess, path: str, what: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    r = https_server.post(path, body, headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert isinstance(r.json()["error"], str) and r.json()["error"]
    assert_alive(https_server)


def test_content_type_with_charset_is_accepted(https_server: ServerProcess) -> None:
    r = https_server.post("/validate", make_review(CONFIGMAP), {"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 200


def test_body_over_7_mib_is_refused_with_413(https_server: ServerProcess) -> None:
    review = make_review(CONFIGMAP)
    review["request"]["object"]["data"] = {"big": "x" * MAX_BODY}
    r = https_server.post("/mutate", review)
    assert r.status_code == 413
    assert "larger than" in r.json()["error"]
    assert_alive(https_server)


def test_streamed_body_over_7_mib_without_content_length_is_refused(https_server: ServerProcess) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"x","object":"'
        for _ in range(8):
            yield b"y" * (1024 * 1024)
        yield b'"}}'

    r = https_server.client.post("/validate", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert_alive(https_server)


def test_body_just_under_the_limit_is_reviewed(https_server: ServerProcess) -> None:
    review = make_review(CONFIGMAP)
    review["request"]["object"]["data"] = {"big": ""}
    room = MAX_BODY - len(orjson.dumps(review)) - 16
    review["request"]["object"]["data"]["big"] = "x" * room
    r = https_server.post("/validate", review)
    assert r.status_code == 200 and r.json()["response"]["allowed"] is True


def test_the_api_servers_timeout_query_is_ignored(https_server: ServerProcess) -> None:
    review = make_review(CONFIGMAP)
    for path in ("/mutate?timeout=10s", "/validate?timeout=5s"):
        r = https_server.post(path, review)
        assert r.status_code == 200 and r.json()["response"]["uid"] == review["request"]["uid"]


def test_unknown_paths_and_methods_are_not_served(https_server: ServerProcess) -> None:
    assert https_server.get("/mutate").status_code == 405
    assert https_server.get("/docs").status_code == 404


# ------------------------------------------------------------------------------------------ in-process


def _asgi_client(state: AppState) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(state))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


def _post(state: AppState, path: str, review: dict[str, Any]) -> httpx.Response:
    async def go() -> httpx.Response:
        async with _asgi_client(state) as client:
            return await client.post(path, content=orjson.dumps(review), headers={"content-type": "application/json"})

    return asyncio.run(go())


def _set_label(obj: dict[str, Any], ctx: Context) -> Findings:
    assert ctx.patch is not None
    ctx.patch.set(("metadata", "labels", "vm-admission.io/seen"), "yes")
    return Findings(warnings=["labelled"])


def _explode(obj: dict[str, Any], ctx: Context) -> Findings:
    raise RuntimeError("rule bug")


def _deny_unless_warn(obj: dict[str, Any], ctx: Context) -> Findings:
    return Findings(causes=[Cause("spec.nodeName", "not allowed")])


@pytest.fixture
def state() -> AppState:
    return AppState(config=Config(), certs_loaded=True)


def test_patch_travels_base64_with_its_patch_type(state: AppState, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "RULES", {("Pod", "mutate", "CREATE"): (_set_label,)})
    review = make_review(PLAIN_POD)
    body = _post(state, "/mutate", review).json()
    resp = body["response"]
    assert resp["patchType"] == "JSONPatch"
    ops = orjson.loads(base64.b64decode(resp["patch"]))
    assert ops == [{"op": "add", "path": "/metadata/labels", "value": {"vm-admission.io/seen": "yes"}}]
    assert resp["warnings"] == ["labelled"]
    assert resp["uid"] == review["request"]["uid"]


def test_validate_never_carries_a_patch(state: AppState, monkeypatch: pytest.MonkeyPatch) -> None:
    # Even a verdict that carries a patch (a bug in some rule) travels without it from /validate.
    op = {"op": "add", "path": "/metadata/labels", "value": {"vm-admission.io/seen": "yes"}}
    monkeypatch.setattr(engine, "handle", lambda request, webhook, config, cluster=None: engine.Verdict(patch=[op]))
    resp = _post(state, "/validate", make_review(PLAIN_POD)).json()["response"]
    assert resp["allowed"] is True
    assert "patch" not in resp and "patchType" not in resp


@pytest.mark.parametrize("path", ["/mutate", "/validate"])
@pytest.mark.parametrize("api_version", ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
def test_a_rule_exception_becomes_an_errored_response_with_the_uid(
    state: AppState, monkeypatch: pytest.MonkeyPatch, path: str, api_version: str
) -> None:
    monkeypatch.setattr(
        engine, "RULES", {("Pod", webhook, "CREATE"): (_explode,) for webhook in ("mutate", "validate")}
    )
    review = make_review(PLAIN_POD, api_version=api_version)
    r = _post(state, path, review)
    assert r.status_code == 200
    body = r.json()
    assert body["apiVersion"] == api_version
    resp = body["response"]
    assert resp["uid"] == review["request"]["uid"]
    assert resp["allowed"] is False
    assert resp["status"]["code"] == 500
    assert "patch" not in resp
    assert b'vm_admission_errors_total{reason="internal"} 1.0' in state.metrics.render()[0]
    # the app still answers
    ok = _post(state, path, make_review(CONFIGMAP)).json()["response"]
    assert ok["allowed"] is True


def test_config_is_read_by_reference_per_request(state: AppState, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "RULES", {("Pod", "validate", "CREATE"): (_deny_unless_warn,)})
    denied = _post(state, "/validate", make_review(PLAIN_POD)).json()["response"]
    assert denied["allowed"] is False and denied["status"]["code"] == 422
    state.set_config(parse_config({"enforcement": "warn"}))
    warned = _post(state, "/validate", make_review(PLAIN_POD)).json()["response"]
    assert warned["allowed"] is True
    assert any("spec.nodeName" in w for w in warned["warnings"])


def test_readyz_fails_without_certificates_or_when_shutting_down() -> None:
    async def status(state: AppState) -> int:
        async with _asgi_client(state) as client:
            return (await client.get("/readyz")).status_code

    assert asyncio.run(status(AppState(certs_loaded=False))) == 503
    assert asyncio.run(status(AppState(certs_loaded=True))) == 200
    assert asyncio.run(status(AppState(certs_loaded=True, shutting_down=True))) == 503


DENIED_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "pinned", "namespace": "team-a", "labels": {"secret": "hunter2-xyz"}},
    "spec": {
        "nodeSelector": {"kubevirt.io/cpumanager": "true"},
        "containers": [{"name": "compute", "image": "x", "resources": {"requests": {"cpu": "1", "memory": "1Gi"},
                                                                        "limits": {"cpu": "2", "memory": "1Gi"}}}],
    },
}  # fmt: skip


def _log_lines(server: ServerProcess, uid: str, *, wait: bool = True) -> list[dict[str, Any]]:
    def lines() -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in server.log.splitlines() if uid in line]

    deadline = time.monotonic() + (10 if wait else 0.5)
    while not lines() and time.monotonic() < deadline:
        time.sleep(0.05)
    return lines()


def test_at_the_default_level_denials_are_logged_and_allowed_reviews_are_not(https_server: ServerProcess) -> None:
    denied = make_review(DENIED_POD, dry_run=True)
    r = https_server.post("/validate", denied)
    assert r.status_code == 200 and r.json()["response"]["allowed"] is False
    [entry] = _log_lines(https_server, denied["request"]["uid"])
    assert entry["msg"] == "review" and entry["level"] == "info"
    assert {k: entry[k] for k in ("webhook", "kind", "namespace", "name", "operation", "dryRun", "verdict")} == {
        "webhook": "validate",
        "kind": "Pod",
        "namespace": "team-a",
        "name": "pinned",
        "operation": "CREATE",
        "dryRun": True,
        "verdict": "denied",
    }
    assert entry["patchOps"] == 0 and entry["durationMs"] >= 0
    allowed = make_review(PLAIN_POD)
    assert https_server.post("/validate", allowed).status_code == 200
    assert _log_lines(https_server, allowed["request"]["uid"], wait=False) == []
    assert "hunter2-xyz" not in https_server.log


def test_at_debug_every_review_gets_one_json_log_line_without_the_object(start_server: StartServer) -> None:
    server = start_server("--log-level", "debug")
    pod = {**PLAIN_POD, "metadata": {"name": "logged", "namespace": "team-a", "labels": {"secret": "hunter2-xyz"}}}
    review = make_review(pod, dry_run=True)
    assert server.post("/validate", review).status_code == 200
    [entry] = _log_lines(server, review["request"]["uid"])
    assert entry["msg"] == "review" and entry["level"] == "debug"
    assert {k: entry[k] for k in ("webhook", "kind", "namespace", "name", "operation", "dryRun", "verdict")} == {
        "webhook": "validate",
        "kind": "Pod",
        "namespace": "team-a",
        "name": "logged",
        "operation": "CREATE",
        "dryRun": True,
        "verdict": "allowed",
    }
    assert "hunter2-xyz" not in server.log


def test_review_metrics_count_every_review_with_its_duration(state: AppState) -> None:
    for _ in range(3):
        _post(state, "/validate", make_review(CONFIGMAP))
    text = state.metrics.render()[0].decode()
    labels = 'kind="other",operation="CREATE",verdict="allowed",webhook="validate"'
    assert f"vm_admission_requests_total{{{labels}}} 3.0" in text
    assert f"vm_admission_request_duration_seconds_count{{{labels}}} 3.0" in text
    assert 'vm_admission_request_duration_seconds_bucket{kind="other",le="+Inf",operation="CREATE",' in text
    assert 'vm_admission_requests_in_flight{webhook="validate"} 0.0' in text


def test_log_lines_carry_utc_timestamps_with_milliseconds_across_second_boundaries() -> None:
    import logging

    from webhook.server import JsonFormatter

    formatter = JsonFormatter()

    def line(created: float) -> dict[str, Any]:
        record = logging.LogRecord("vm_admission.review", logging.INFO, __file__, 1, "review", None, None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        record.fields = {"uid": "u"}  # type: ignore[attr-defined]
        parsed: dict[str, Any] = orjson.loads(formatter.format(record))
        return parsed

    first = line(1_700_000_000.25)
    assert first == {"ts": "2023-11-14T22:13:20.250Z", "level": "info", "logger": "vm_admission.review",
                     "msg": "review", "uid": "u"}  # fmt: skip
    assert line(1_700_000_000.999)["ts"] == "2023-11-14T22:13:20.999Z"  # same second, cached prefix
    assert line(1_700_000_001.0)["ts"] == "2023-11-14T22:13:21.000Z"  # the next second
    assert line(1_600_000_000.5)["ts"] == "2020-09-13T12:26:40.500Z"  # clocks may step back


# ------------------------------------------------------------------- the raw ASGI admission handler


def _asgi_call(
    state: AppState,
    messages: list[dict[str, Any]],
    method: str = "POST",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> list[dict[str, Any]]:
    """Call the app with ``messages`` as what ``receive()`` returns, in order; return what it sent."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "https",
        "path": "/validate", "raw_path": b"/validate", "query_string": b"", "root_path": "",
        "headers": headers if headers is not None else [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8443),
    }  # fmt: skip
    pending = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(create_app(state)(scope, receive, send))
    return sent


def test_a_body_in_many_pieces_is_joined_before_review(state: AppState) -> None:
    body = orjson.dumps(make_review(CONFIGMAP))
    pieces = [body[i : i + 100] for i in range(0, len(body), 100)]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1} for i, p in enumerate(pieces)]
    start, payload = _asgi_call(state, messages)
    assert start["status"] == 200
    assert (b"content-type", b"application/json") in start["headers"]
    assert orjson.loads(payload["body"])["response"]["allowed"] is True


def test_streamed_pieces_over_7_mib_get_413_and_the_rest_is_drained(state: AppState) -> None:
    chunk = b"x" * (1024 * 1024)
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for _ in range(9)]
    messages.append({"type": "http.request", "body": b"}", "more_body": False})
    start, payload = _asgi_call(state, messages)
    assert start["status"] == 413 and "larger than" in orjson.loads(payload["body"])["error"]
    assert b'vm_admission_errors_total{reason="too_large"} 1.0' in state.metrics.render()[0]


def test_a_client_that_leaves_mid_body_gets_no_answer_and_nothing_is_counted(state: AppState) -> None:
    sent = _asgi_call(state, [{"type": "http.request", "body": b'{"kind":', "more_body": True}])
    assert sent == []
    text = state.metrics.render()[0].decode()
    assert 'vm_admission_requests_in_flight{webhook="validate"} 0.0' in text
    assert "vm_admission_requests_total{" not in text


def test_a_client_gone_before_its_body_gets_no_answer(state: AppState) -> None:
    assert _asgi_call(state, [{"type": "http.disconnect"}]) == []
    assert 'vm_admission_requests_in_flight{webhook="validate"} 0.0' in state.metrics.render()[0].decode()


def test_one_message_over_7_mib_without_a_content_length_gets_413(state: AppState) -> None:
    start, payload = _asgi_call(state, [{"type": "http.request", "body": b" " * (MAX_BODY + 1)}])
    assert start["status"] == 413 and "larger than" in orjson.loads(payload["body"])["error"]


def test_other_methods_on_the_admission_paths_get_405_naming_post(state: AppState) -> None:
    start, payload = _asgi_call(state, [], method="PUT")
    assert start["status"] == 405 and (b"allow", b"POST") in start["headers"]
    assert orjson.loads(payload["body"])["error"]


def test_a_missing_content_type_gets_415(state: AppState) -> None:
    start, _ = _asgi_call(state, [{"type": "http.request", "body": b"{}"}], headers=[])
    assert start["status"] == 415
