"""Hostile input: every body and every badly shaped object gets a 4xx or a well-formed AdmissionResponse.

Two layers:
- objects: a wrong value at every place the rules read, for both webhooks and every kind we review, through
  ``engine.handle`` + ``endpoint.response``: never an exception, a well-formed response, a patch that applies;
- bodies: broken JSON, wrong envelopes, deep nesting, huge objects, through the ASGI app (and a subset over
  real HTTPS): a 4xx with a JSON error or a well-formed response, never a 500, and ``/healthz`` still answers.
"""

from __future__ import annotations

import base64
import copy
import re
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import jsonpatch
import orjson
import pytest

from bench.payloads import dedicated_vmi, launcher_pod, vm
from tests.testkit.review import make_review
from webhook import endpoint, engine, envelope
from webhook.config import Config

CAUSE_TYPES = {
    "FieldValueInvalid",
    "FieldValueRequired",
    "FieldValueNotSupported",
    "FieldValueDuplicate",
    "FieldValueNotFound",
}


def assert_well_formed(doc: Any, uid: str | None, api_version: str, original: Any, *, webhook: str) -> None:
    """``doc`` is an AdmissionReview response the API server accepts; its patch applies to ``original``.

    The patch is applied in place: pass an object the caller no longer needs.
    """
    assert isinstance(doc, dict), doc
    assert doc["apiVersion"] == api_version
    assert doc["kind"] == "AdmissionReview"
    resp = doc["response"]
    if uid is not None:
        assert resp["uid"] == uid
    assert isinstance(resp["allowed"], bool)
    if not resp["allowed"]:
        status = resp["status"]
        assert status["code"] in (400, 422), status
        assert isinstance(status["message"], str) and status["message"]
        for cause in status.get("details", {}).get("causes", []):
            # rule ids stay off the wire; "reason" is StatusCause's JSON name for the type (what the API server keeps)
            assert set(cause) == {"reason", "type", "field", "message"}, cause
            assert cause["type"] in CAUSE_TYPES and cause["reason"] == cause["type"], cause
            assert isinstance(cause["field"], str) and isinstance(cause["message"], str)
    assert all(isinstance(w, str) for w in resp.get("warnings", []))
    assert ("patch" in resp) == ("patchType" in resp)
    if "patch" in resp:
        assert webhook == "mutate" and resp["allowed"] and resp["patchType"] == "JSONPatch"
        ops = orjson.loads(base64.b64decode(resp["patch"]))
        assert ops and all(op["op"] == "add" for op in ops), ops
        jsonpatch.JsonPatch(ops).apply(original, in_place=True)


RULE_ID = re.compile(r"[a-z]+\.[A-Za-z0-9-]+")


def assert_rule_ids(verdict: engine.Verdict) -> None:
    """Every cause (denying, or would-deny in warn mode) carries a stable rule id (docs/rules.md)."""
    for cause in [*verdict.causes, *verdict.would_deny]:
        assert RULE_ID.fullmatch(cause.rule), f"cause without a rule id: {cause}"


def review_in_process(doc: dict[str, Any], webhook: str, config: Config | None = None) -> dict[str, Any]:
    """bytes -> parse -> handle -> response -> bytes -> dict, as the server does (minus HTTP)."""
    parsed = envelope.parse_review(orjson.dumps(doc))
    request = parsed["request"]
    verdict = engine.handle(request, webhook, config or Config())  # type: ignore[arg-type]
    assert_rule_ids(verdict)
    out = endpoint.response(parsed["apiVersion"], request["uid"], verdict, allow_patch=webhook == "mutate")
    result: dict[str, Any] = orjson.loads(orjson.dumps(out))
    return result


# --- objects: a wrong value at every place the rules read ----------------------------------------------------

HOSTILE_VALUES: list[Any] = [
    None,
    {},
    [],
    "x",
    "",
    True,
    0,
    -1,
    2**63 - 1,
    float(2**70),
    1.5,
    "1e400",
    "NaN",
    "-0",
    "Infinity",
    "1180591620717411303424",
    "\u00e9\u4e2d\U0001f4a5",
    [{}],
    [None, "x", 1],
    {"x": {"y": []}},
]

_POD_C = ("spec", "containers", 0)
_POD_I = ("spec", "initContainers", 0)
POD_PATHS: list[tuple[Any, ...]] = [
    ("metadata",),
    ("metadata", "annotations"),
    ("metadata", "annotations", "vm-admission.io/passthrough"),
    ("metadata", "annotations", "vm-admission.io/passthrough-container"),
    ("metadata", "annotations", "vm-admission.io/guaranteed-qos"),
    ("spec",),
    ("spec", "nodeSelector"),
    ("spec", "nodeSelector", "kubevirt.io/cpumanager"),
    ("spec", "resources"),
    ("spec", "resources", "limits"),
    ("spec", "resources", "requests", "cpu"),
    ("spec", "containers"),
    ("spec", "initContainers"),
    ("spec", "ephemeralContainers"),
    _POD_C,
    (*_POD_C, "name"),
    (*_POD_C, "resources"),
    (*_POD_C, "resources", "limits"),
    (*_POD_C, "resources", "requests"),
    (*_POD_C, "resources", "limits", "cpu"),
    (*_POD_C, "resources", "requests", "memory"),
    (*_POD_C, "resources", "limits", "devices.kubevirt.io/10de_1eb8"),
    ("spec", "containers", 1, "resources"),
    ("spec", "containers", 2, "resources", "requests", "cpu"),
    _POD_I,
    (*_POD_I, "restartPolicy"),
    (*_POD_I, "resources", "limits", "memory"),
]

_DOM = ("spec", "domain")
VMI_PATHS: list[tuple[Any, ...]] = [
    ("metadata", "annotations"),
    ("spec",),
    ("spec", "architecture"),
    _DOM,
    (*_DOM, "cpu"),
    (*_DOM, "cpu", "dedicatedCpuPlacement"),
    (*_DOM, "cpu", "isolateEmulatorThread"),
    (*_DOM, "cpu", "cores"),
    (*_DOM, "cpu", "sockets"),
    (*_DOM, "cpu", "threads"),
    (*_DOM, "cpu", "maxSockets"),
    (*_DOM, "cpu", "numa"),
    (*_DOM, "cpu", "realtime"),
    (*_DOM, "resources"),
    (*_DOM, "resources", "requests"),
    (*_DOM, "resources", "limits"),
    (*_DOM, "resources", "requests", "cpu"),
    (*_DOM, "resources", "limits", "cpu"),
    (*_DOM, "resources", "requests", "memory"),
    (*_DOM, "resources", "limits", "memory"),
    (*_DOM, "memory"),
    (*_DOM, "memory", "guest"),
    (*_DOM, "memory", "hugepages"),
    (*_DOM, "memory", "hugepages", "pageSize"),
    (*_DOM, "devices"),
    (*_DOM, "devices", "passthrough"),
    (*_DOM, "devices", "passthrough", 0),
    (*_DOM, "devices", "passthrough", 0, "vendor"),
    (*_DOM, "devices", "passthrough", 0, "count"),
    (*_DOM, "devices", "passthrough", 0, "type"),
    (*_DOM, "devices", "hostDevices"),
    (*_DOM, "devices", "gpus"),
    (*_DOM, "devices", "interfaces"),
    (*_DOM, "devices", "interfaces", 0),
    (*_DOM, "devices", "interfaces", 0, "name"),
    (*_DOM, "devices", "interfaces", 0, "state"),
    (*_DOM, "devices", "interfaces", 1, "bridge"),
    ("spec", "networks"),
    ("spec", "networks", 0),
    ("spec", "networks", 1, "multus"),
]

VM_PATHS: list[tuple[Any, ...]] = [
    ("spec",),
    ("spec", "running"),
    ("spec", "runStrategy"),
    ("spec", "template"),
    ("spec", "template", "metadata"),
    ("spec", "template", "metadata", "annotations"),
    ("spec", "template", "metadata", "annotations", "vm-admission.io/passthrough"),
    ("spec", "template", "spec"),
    *[("spec", "template", *p) for p in VMI_PATHS if p[0] == "spec" and len(p) > 1],
]


def put(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of ``obj`` with ``value`` at ``path``; parents of the wrong type are replaced, lists padded with {}."""
    if not path:
        return copy.deepcopy(value)
    seg, rest = path[0], path[1:]
    if isinstance(seg, int):
        items = copy.deepcopy(obj) if isinstance(obj, list) else []
        items.extend({} for _ in range(seg + 1 - len(items)))
        items[seg] = put(items[seg], rest, value)
        return items
    node = copy.deepcopy(obj) if isinstance(obj, dict) else {}
    node[seg] = put(node.get(seg), rest, value)
    return node


def cases(base: dict[str, Any], paths: list[tuple[Any, ...]]) -> list[Any]:
    return [pytest.param(base, path, id=".".join(map(str, path))) for path in paths]


def _check_all_values(base: dict[str, Any], path: tuple[Any, ...], operation: str = "CREATE") -> None:
    for value in HOSTILE_VALUES:
        obj = put(base, path, value)
        for webhook in ("mutate", "validate"):
            doc = make_review(base, operation=operation)
            doc["request"]["object"] = copy.deepcopy(obj)
            if operation == "UPDATE":
                doc["request"]["oldObject"] = copy.deepcopy(obj)
            uid = doc["request"]["uid"]
            out = review_in_process(doc, webhook)
            assert_well_formed(out, uid, "admission.k8s.io/v1", copy.deepcopy(obj), webhook=webhook)


@pytest.mark.parametrize(("base", "path"), cases(launcher_pod(), POD_PATHS))
def test_pod_with_a_wrong_value_where_rules_read_gets_a_well_formed_answer(
    base: dict[str, Any], path: tuple[Any, ...]
) -> None:
    _check_all_values(base, path)


@pytest.mark.parametrize(("base", "path"), cases(dedicated_vmi(), VMI_PATHS))
def test_vmi_with_a_wrong_value_where_rules_read_gets_a_well_formed_answer(
    base: dict[str, Any], path: tuple[Any, ...]
) -> None:
    _check_all_values(base, path)


@pytest.mark.parametrize(("base", "path"), cases(vm(), VM_PATHS))
def test_vm_with_a_wrong_value_where_rules_read_gets_a_well_formed_answer(
    base: dict[str, Any], path: tuple[Any, ...]
) -> None:
    _check_all_values(base, path)


@pytest.mark.parametrize(("base", "path"), cases(vm(), [("spec", "running"), ("spec", "runStrategy"), *VM_PATHS[3:12]]))
def test_vm_update_with_a_hostile_old_and_new_object_gets_a_well_formed_answer(
    base: dict[str, Any], path: tuple[Any, ...]
) -> None:
    _check_all_values(base, path, operation="UPDATE")


def test_a_pod_with_thousands_of_sidecars_is_answered_and_every_one_is_patched() -> None:
    pod = launcher_pod()
    pod["spec"]["containers"] += [
        {"name": f"sidecar-\u00e9-{i}", "image": "busybox", "resources": {}} for i in range(3000)
    ]
    doc = make_review(pod)
    out = review_in_process(doc, "mutate")
    assert_well_formed(out, doc["request"]["uid"], "admission.k8s.io/v1", pod, webhook="mutate")


def test_unicode_names_are_echoed_intact_in_fields_and_patches() -> None:
    pod = launcher_pod()
    pod["spec"]["containers"][1]["name"] = "h\u00f6\u00f6k-\u4fa7\u8f66-\U0001f680"
    doc = make_review(pod)
    out = review_in_process(doc, "mutate")
    assert_well_formed(out, doc["request"]["uid"], "admission.k8s.io/v1", pod, webhook="mutate")


def test_object_null_on_create_is_allowed_untouched() -> None:
    doc = make_review(launcher_pod())
    doc["request"]["object"] = None
    for webhook in ("mutate", "validate"):
        out = review_in_process(doc, webhook)
        assert_well_formed(out, doc["request"]["uid"], "admission.k8s.io/v1", None, webhook=webhook)
        assert "patch" not in out["response"]


# --- bodies: through the HTTP layer ----------------------------------------------------------------------------


def _envelope(obj: Any = None, **request: Any) -> dict[str, Any]:
    doc = make_review(obj if obj is not None else launcher_pod())
    doc["request"].update(request)
    return doc


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _deep_object_body(depth: int) -> bytes:
    body = orjson.dumps(_envelope())
    marker = b'"automountServiceAccountToken":false'
    return body.replace(marker, b'"automountServiceAccountToken":' + _nested(depth), 1)


UID = str(uuid.UUID(int=7))

# (id, body, expected: "4xx" or an apiVersion whose well-formed response is expected)
BODIES: list[tuple[str, bytes, str]] = [
    ("empty", b"", "4xx"),
    ("truncated", orjson.dumps(_envelope())[:-17], "4xx"),
    ("not-json", b"<AdmissionReview/>", "4xx"),
    ("invalid-utf8", b'{"kind":"AdmissionReview","x":"\xff"}', "4xx"),
    ("lone-surrogate", b'{"kind":"AdmissionReview","x":"\\ud800"}', "4xx"),
    ("nan-literal", b'{"kind":"AdmissionReview","apiVersion":NaN}', "4xx"),
    ("number-1e400", orjson.dumps(_envelope()).replace(b'"priority":0', b'"priority":1e400'), "4xx"),
    ("null", b"null", "4xx"),
    ("array", b"[]", "4xx"),
    ("string", b'"AdmissionReview"', "4xx"),
    ("no-kind", orjson.dumps({"apiVersion": "admission.k8s.io/v1", "request": {"uid": UID}}), "4xx"),
    ("wrong-kind", orjson.dumps({**_envelope(), "kind": "Pod"}), "4xx"),
    ("wrong-api-version", orjson.dumps({**_envelope(), "apiVersion": "admission.k8s.io/v2"}), "4xx"),
    ("api-version-number", orjson.dumps({**_envelope(), "apiVersion": 1}), "4xx"),
    ("request-null", orjson.dumps({**_envelope(), "request": None}), "4xx"),
    ("request-list", orjson.dumps({**_envelope(), "request": []}), "4xx"),
    ("missing-uid", orjson.dumps(_envelope(uid=None)), "4xx"),
    ("uid-number", orjson.dumps(_envelope(uid=42)), "4xx"),
    ("deep-nesting-10k", _nested(10_000), "4xx"),
    ("deep-nesting-in-object", _deep_object_body(10_000), "4xx"),
    ("nesting-just-under-limit", _deep_object_body(1000), "admission.k8s.io/v1"),
    ("kind-is-a-list", orjson.dumps(_envelope(kind=[])), "admission.k8s.io/v1"),
    ("operation-number", orjson.dumps(_envelope(operation=1)), "admission.k8s.io/v1"),
    ("object-null-on-create", orjson.dumps(_envelope(object=None)), "admission.k8s.io/v1"),
    ("object-string", orjson.dumps(_envelope(object="pod")), "admission.k8s.io/v1"),
    ("containers-map", orjson.dumps(_envelope(put(launcher_pod(), ("spec", "containers"), {}))), "admission.k8s.io/v1"),
    (
        "resources-string",
        orjson.dumps(_envelope(put(launcher_pod(), ("spec", "containers", 1, "resources"), "x"))),
        "admission.k8s.io/v1",
    ),
    (
        "limits-list",
        orjson.dumps(_envelope(put(launcher_pod(), ("spec", "containers", 2, "resources", "limits"), []))),
        "admission.k8s.io/v1",
    ),
    (
        "huge-int-quantity",
        orjson.dumps(
            _envelope(put(launcher_pod(), ("spec", "containers", 0, "resources", "limits", "cpu"), 2**64 - 1))
        ),
        "admission.k8s.io/v1",
    ),
    (
        "2-to-the-70",
        orjson.dumps(_envelope()).replace(b'"cpu":"4"', b'"cpu":1180591620717411303424', 1),
        "admission.k8s.io/v1",
    ),
    ("duplicate-keys", orjson.dumps(_envelope()).replace(b'{"uid":', b'{"uid":"dup","uid":', 1), "admission.k8s.io/v1"),
    ("v1beta1", orjson.dumps({**_envelope(), "apiVersion": "admission.k8s.io/v1beta1"}), "admission.k8s.io/v1beta1"),
    (
        "v1beta1-vmi",
        orjson.dumps({**make_review(dedicated_vmi()), "apiVersion": "admission.k8s.io/v1beta1"}),
        "admission.k8s.io/v1beta1",
    ),
    (
        "delete-with-old-object",
        orjson.dumps(_envelope(operation="DELETE", object=None, oldObject={})),
        "admission.k8s.io/v1",
    ),
]


def _uid_of(body: bytes) -> str | None:
    try:
        uid = orjson.loads(body)["request"]["uid"]
    except Exception:
        return None
    return uid if isinstance(uid, str) else None


def _object_of(body: bytes) -> Any:
    return orjson.loads(body)["request"]["object"]


def check_http_answer(status: int, payload: bytes, body: bytes, expected: str, webhook: str) -> None:
    """A 4xx with a JSON error, or a 200 with a well-formed AdmissionReview response."""
    assert status != 500 and status < 500, (status, payload[:300])
    if expected == "4xx":
        assert 400 <= status < 500, (status, payload[:300])
        orjson.loads(payload)  # a JSON error body
        return
    assert status == 200, (status, payload[:300])
    assert_well_formed(orjson.loads(payload), _uid_of(body), expected, _object_of(body), webhook=webhook)


@pytest.mark.parametrize(("name", "body", "expected"), BODIES, ids=[b[0] for b in BODIES])
def test_hostile_body_through_the_envelope_is_a_4xx_or_a_well_formed_answer(
    name: str, body: bytes, expected: str
) -> None:
    """Without HTTP: ``parse_review`` refuses exactly the bodies that must get a 4xx."""
    for webhook in ("mutate", "validate"):
        try:
            parsed = envelope.parse_review(body)
        except envelope.EnvelopeError:
            assert expected == "4xx", name
            continue
        assert expected != "4xx", f"{name} should have been refused"
        request = parsed["request"]
        verdict = engine.handle(request, webhook, Config())
        out = endpoint.response(parsed["apiVersion"], request["uid"], verdict, allow_patch=webhook == "mutate")
        check_http_answer(200, orjson.dumps(out), body, expected, webhook)


# --- through the ASGI app and over real HTTPS -------------------------------------------------------------------

JSON_HEADERS = {"content-type": "application/json"}
OVERSIZED = b'{"kind":"AdmissionReview","pad":"' + b"x" * (7 * 1024 * 1024 + 16) + b'"}'


class AsgiClient:
    """A synchronous face on ``httpx.ASGITransport``: the app in process, exceptions become 500s as in uvicorn."""

    def __init__(self, app: Any) -> None:
        self.transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url="http://asgi") as client:
                return await client.request(method, path, **kwargs)

        return anyio.run(go)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)


@pytest.fixture(scope="module")
def asgi() -> Iterator[AsgiClient]:
    from webhook.server import AppState, create_app

    yield AsgiClient(create_app(AppState()))


@pytest.mark.parametrize(("name", "body", "expected"), BODIES, ids=[b[0] for b in BODIES])
def test_hostile_body_through_the_app_is_a_4xx_or_a_well_formed_answer_and_the_app_keeps_serving(
    asgi: AsgiClient, name: str, body: bytes, expected: str
) -> None:
    for webhook in ("mutate", "validate"):
        r = asgi.post(f"/{webhook}", content=body, headers=JSON_HEADERS)
        check_http_answer(r.status_code, r.content, body, expected, webhook)
        assert asgi.get("/healthz").status_code == 200


def test_a_body_over_7_mib_is_refused_with_413_through_the_app(asgi: AsgiClient) -> None:
    r = asgi.post("/mutate", content=OVERSIZED, headers=JSON_HEADERS)
    assert r.status_code == 413
    assert "error" in r.json()
    assert asgi.get("/healthz").status_code == 200


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_wrong_content_type_is_refused_with_415_through_the_app(asgi: AsgiClient, ctype: str) -> None:
    r = asgi.post("/validate", content=orjson.dumps(make_review(launcher_pod())), headers={"content-type": ctype})
    assert r.status_code == 415
    assert asgi.get("/healthz").status_code == 200


HTTPS_SUBSET = {
    "truncated",
    "invalid-utf8",
    "deep-nesting-10k",
    "deep-nesting-in-object",
    "missing-uid",
    "request-null",
    "containers-map",
    "2-to-the-70",
    "duplicate-keys",
    "v1beta1",
    "object-null-on-create",
}


@pytest.mark.parametrize(
    ("name", "body", "expected"),
    [b for b in BODIES if b[0] in HTTPS_SUBSET],
    ids=[b[0] for b in BODIES if b[0] in HTTPS_SUBSET],
)
def test_hostile_body_over_https_is_a_4xx_or_a_well_formed_answer_and_the_server_keeps_serving(
    https_server: Any, name: str, body: bytes, expected: str
) -> None:
    for webhook in ("mutate", "validate"):
        r = https_server.post(f"/{webhook}", body)
        check_http_answer(r.status_code, r.content, body, expected, webhook)
        assert https_server.get("/healthz").status_code == 200


def test_an_oversized_body_and_thousands_of_containers_over_https(https_server: Any) -> None:
    r = https_server.post("/mutate", OVERSIZED)
    assert r.status_code == 413
    assert https_server.get("/healthz").status_code == 200
    pod = launcher_pod()
    pod["spec"]["containers"] += [{"name": f"s-{i}", "image": "busybox"} for i in range(3000)]
    body = orjson.dumps(make_review(pod))
    r = https_server.post("/mutate", body)
    check_http_answer(r.status_code, r.content, body, "admission.k8s.io/v1", "mutate")
    assert len(patch_ops_of(r.json())) >= 3000  # every sidecar got its limits
    assert https_server.get("/healthz").status_code == 200


def patch_ops_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    resp = doc["response"]
    ops: list[dict[str, Any]] = orjson.loads(base64.b64decode(resp["patch"])) if "patch" in resp else []
    return ops
