"""``vm-admission audit`` without a cluster: findings from verdicts, the PolicyReport shape against the vendored
CRD's schema, rendering, progress. The audit against a real API server is tests/e2e/test_audit.py."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import orjson
import pytest
import yaml
from kubernetes.client import ApiClient, Configuration

from webhook.audit import (
    KINDS,
    Audited,
    Finding,
    Progress,
    Ref,
    Summary,
    api_error,
    audit_object,
    findings_of,
    policy_report,
    render_block,
    render_summary,
)
from webhook.cli import main
from webhook.config import load_config
from webhook.engine import Verdict, handle
from webhook.k8s.snapshot import ClusterSnapshot
from webhook.review import response
from webhook.rules.base import Cause

REPO = Path(__file__).resolve().parent.parent
KIND = {k.kind: k for k in KINDS}


def example(path: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "examples" / path).read_text())
    return doc


def test_vendored_policy_report_crd_is_the_shipped_one() -> None:
    shipped = (REPO / "manifests" / "crds" / "policyreport-crd.yaml").read_text()
    assert (REPO / "tests" / "data" / "policyreport-crd.yaml").read_text() == shipped
    crd = yaml.safe_load(shipped)
    assert crd["spec"]["group"] == "wgpolicyk8s.io" and crd["spec"]["scope"] == "Namespaced"
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v1alpha2"]


def test_preflight_warnings_are_also_structured_advisories_and_stay_off_the_wire() -> None:
    vmi = example("cpu/vmi-dedicated.yaml")
    request = {
        "uid": "u",
        "kind": {"group": "kubevirt.io", "version": "v1", "kind": "VirtualMachineInstance"},
        "operation": "CREATE",
        "namespace": "ns",
        "object": vmi,
    }
    verdict = handle(request, "validate", load_config(None), ClusterSnapshot(synced=True))
    assert verdict.allowed
    (advisory,) = verdict.advisories
    assert advisory.rule.startswith("preflight.") and advisory.field == "spec.nodeSelector"
    assert verdict.warnings == [f"preflight ({advisory.rule}): {advisory.field}: {advisory.message}"]
    wire = response("admission.k8s.io/v1", "u", verdict, allow_patch=False)["response"]
    assert set(wire) == {"uid", "allowed", "warnings"} and wire["warnings"] == verdict.warnings


def test_findings_fail_for_causes_and_would_deny_warn_for_advisories_error_for_unreadable() -> None:
    c = Cause("spec.x", "bad", rule="cpu.R6")
    verdict = Verdict(allowed=False, code=422, causes=[c], advisories=[Cause("spec.y", "far", rule="preflight.K2")])
    assert findings_of(verdict, "VirtualMachine") == (
        Finding("cpu.R6", "fail", "spec.x", "bad"),
        Finding("preflight.K2", "warn", "spec.y", "far"),
    )
    assert findings_of(Verdict(would_deny=[c]), "VirtualMachine") == (Finding("cpu.R6", "fail", "spec.x", "bad"),)
    (bad,) = findings_of(Verdict(allowed=False, code=400, message="spec: must be an object"), "Pod")
    assert bad == Finding("object.unreadable", "error", "", "spec: must be an object")


def test_a_stored_dedicated_pod_that_is_not_guaranteed_is_reported_as_not_pinned_naming_its_containers() -> None:
    pod = example("pods/virt-launcher-unequal-sidecar.yaml")
    audited = audit_object(pod, KIND["Pod"], load_config(None), None)
    assert audited.findings and all(f.rule == "qos.guaranteed" for f in audited.findings)
    assert all(f.message.startswith("not pinned") for f in audited.findings)
    names = [c["name"] for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]]
    assert all(any(repr(n) in f.message for n in names) for f in audited.findings)
    assert pod == example("pods/virt-launcher-unequal-sidecar.yaml") | {"apiVersion": "v1", "kind": "Pod"}


def _found() -> list[Audited]:
    ref = Ref("kubevirt.io/v1", "VirtualMachineInstance", "ns", "db", "1234")
    return [
        Audited(
            ref,
            (
                Finding("cpu.R2", "fail", "spec.domain.resources.requests.cpu", "must be whole"),
                Finding("preflight.K1", "warn", "spec.domain.cpu.dedicatedCpuPlacement", "no node"),
                Finding("object.unreadable", "error", "", "spec: must be an object"),
            ),
        )
    ]


def test_policy_report_validates_against_the_crd_schema_and_counts_its_results() -> None:
    crd = yaml.safe_load((REPO / "manifests" / "crds" / "policyreport-crd.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    report = policy_report("ns", _found(), 1_700_000_000.5)
    jsonschema.validate(report, schema)
    assert report["metadata"] == {
        "name": "vm-admission",
        "namespace": "ns",
        "labels": {"app.kubernetes.io/managed-by": "vm-admission"},
    }
    assert report["summary"] == {"pass": 0, "fail": 1, "warn": 1, "error": 1, "skip": 0}
    assert report["apiVersion"] == "wgpolicyk8s.io/v1alpha2" and report["kind"] == "PolicyReport"
    assert [r["category"] for r in report["results"]] == ["cpu", "preflight", "object"]
    assert [r["message"] for r in report["results"]] == [
        "spec.domain.resources.requests.cpu: must be whole",
        "spec.domain.cpu.dedicatedCpuPlacement: no node",
        "spec: must be an object",
    ]
    first = report["results"][0]
    assert first["policy"] == first["source"] == "vm-admission" and first["rule"] == "cpu.R2"
    assert first["properties"] == {"field": "spec.domain.resources.requests.cpu"}
    assert first["resources"] == [
        {
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachineInstance",
            "namespace": "ns",
            "name": "db",
            "uid": "1234",
        }
    ]
    assert first["timestamp"] == {"seconds": 1_700_000_000, "nanos": 0} and first["scored"] is True
    assert report["results"][1]["scored"] is False and "properties" not in report["results"][2]
    empty = policy_report("clean", [], 0)
    jsonschema.validate(empty, schema)
    assert empty["results"] == [] and set(empty["summary"].values()) == {0}


def test_a_huge_report_keeps_the_failures_first_and_says_how_many_it_left_out() -> None:
    exactly = policy_report("ns", _found(), 0, max_results=3)
    assert len(exactly["results"]) == 3 and "annotations" not in exactly["metadata"]
    report = policy_report("ns", _found() * 3, 0, max_results=4)
    assert [r["result"] for r in report["results"]] == ["fail", "error", "fail", "error"]
    assert report["metadata"]["annotations"] == {"vm-admission.io/results-left-out": "5"}
    assert report["summary"] == {"pass": 0, "fail": 3, "warn": 3, "error": 3, "skip": 0}


def test_text_blocks_and_summary_by_namespace_and_rule() -> None:
    (a,) = _found()
    block = render_block(a)
    assert block.splitlines() == [
        "VirtualMachineInstance ns/db:",
        "  ✗ spec.domain.resources.requests.cpu: must be whole [cpu.R2]",
        "  ! spec.domain.cpu.dedicatedCpuPlacement: no node [preflight.K1]",
        "  ? spec: must be an object [object.unreadable]",
    ]
    s = Summary()
    s.add(a)
    s.add(Audited(Ref("v1", "Pod", "other", "web", ""), ()))
    out = render_summary(s)
    assert out.startswith("2 objects scanned (0 VirtualMachine, 1 VirtualMachineInstance, 1 Pod)")
    assert "1 with findings (1 fail, 1 warn, 1 error)" in out
    assert any(line.split()[:2] == ["ns", "cpu.R2"] for line in out.splitlines())
    assert s.namespaces == {"ns", "other"}


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_overwrites_one_line_on_a_terminal_and_is_quiet_when_piped() -> None:
    tty = _Tty()
    p = Progress(tty, interval=0)
    p.tick(10)
    p.tick(20)
    p.done()
    assert tty.getvalue().count("\r") == 3 and "scanned 20 objects (" in tty.getvalue() and "\n" not in tty.getvalue()
    piped = io.StringIO()
    q = Progress(piped, interval=0)
    q.tick(10)
    q.done()
    assert piped.getvalue() == ""


def test_bad_arguments_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--limit", "0", "--kubeconfig", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert err == "vm-admission audit: --limit must be at least 1\n"
    with pytest.raises(SystemExit):
        main(["audit", "-n", "x", "-A"])


class _ApiException(Exception):
    def __init__(self, status: int, reason: str, body: bytes) -> None:
        self.status, self.reason, self.body = status, reason, body


def test_api_errors_are_one_line_naming_the_verb_and_resource() -> None:
    import urllib3

    body = b'{"kind":"Status","message":"pods is forbidden: User \\"a\\" cannot list resource \\"pods\\""}'
    err = str(api_error(_ApiException(403, "Forbidden", body), "list", "pods in all namespaces"))
    assert (
        err
        == 'cannot list pods in all namespaces: 403 Forbidden: pods is forbidden: User "a" cannot list resource "pods"'
    )
    down = urllib3.exceptions.MaxRetryError(None, "/api/v1/pods", "Connection refused\nmore")  # type: ignore[arg-type]
    err = str(api_error(down, "list", "pods in namespace x"))
    assert err == "cannot list pods in namespace x: the API server is unreachable: Connection refused"
    assert str(api_error(ValueError("bad\nworse"), "list", "nodes")) == "cannot list nodes: ValueError: bad"


def test_a_list_goes_on_past_an_expired_continue_token_with_the_one_the_api_server_offers() -> None:
    from webhook.audit import Api

    calls: list[str | None] = []

    def fake(**kw: Any) -> Any:
        token = kw.get("_continue")
        calls.append(token)
        if token == "old":
            raise _ApiException(410, "Gone", b'{"kind":"Status","code":410,"metadata":{"continue":"fresh"}}')
        page = {"items": [{"n": len(calls)}], "metadata": {"continue": "old" if token is None else ""}}
        return type("R", (), {"data": orjson.dumps(page)})()

    api = Api.__new__(Api)
    api.requests, api.inconsistent, api.timeout = 0, set(), (1.0, 1.0)
    api._list_call = lambda kind, namespace: fake  # type: ignore[method-assign]
    pages = list(api.pages(KIND["Pod"], None, 1))
    assert calls == [None, "old", "fresh"] and len(pages) == 2 and api.inconsistent == {"Pod"}
    calls.clear()

    def gone(**kw: Any) -> Any:
        raise _ApiException(410, "Gone", b"{}")

    api._list_call = lambda kind, namespace: gone  # type: ignore[method-assign]
    with pytest.raises(_ApiException):
        list(api.pages(KIND["Pod"], None, 1))


# --- the whole audit in process: the kubernetes client against a fake API server at its transport ---------


class _Resp:
    """What the client's REST layer returns (read by ApiClient and ApiException)."""

    def __init__(self, status: int, data: bytes, reason: str = "OK") -> None:
        self.status, self.data, self.reason, self.headers = status, data, reason, {}
        self.response = self

    def read(self) -> bytes:
        return self.data

    def getheaders(self) -> dict[str, str]:
        return {}


class FakeApiServer(ApiClient):
    """kube-apiserver as the ``kubernetes`` client sees it (``ApiClient.call_api``): paged lists of ``objects``
    by URL path (``limit``/``continue``), apply patches recorded in ``applied``, and the ``errors`` a test sets by
    (method, path) or (method, path, continue token) as (status, reason, Status body)."""

    def __init__(
        self,
        objects: dict[str, list[dict[str, Any]]] | None = None,
        errors: dict[tuple[str, ...], tuple[int, str, dict[str, Any]]] | None = None,
    ) -> None:
        super().__init__(Configuration(host="https://apiserver.invalid"))
        self.objects = objects or {}
        self.errors = errors or {}
        self.calls: list[tuple[str, str, dict[str, str], dict[str, str], Any]] = []
        self.applied: dict[str, Any] = {}
        self.timeouts: list[Any] = []

    def call_api(
        self,
        method: str,
        url: str,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> _Resp:
        u = urlsplit(url)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        self.calls.append((method, u.path, q, dict(header_params or {}), body))
        self.timeouts.append(_request_timeout)
        error = self.errors.get((method, u.path, q.get("continue", ""))) or self.errors.get((method, u.path))
        if error is not None:
            status, reason, status_body = error
            return _Resp(status, orjson.dumps(status_body), reason)
        if method == "PATCH":
            self.applied[u.path] = body
            return _Resp(200, orjson.dumps(body))
        items = self.objects.get(u.path, [])
        limit, start = int(q.get("limit", 500)), int(q.get("continue") or 0)
        token = str(start + limit) if start + limit < len(items) else ""
        page = {"items": items[start : start + limit], "metadata": {"continue": token, "resourceVersion": "7"}}
        return _Resp(200, orjson.dumps(page))

    def paths(self, method: str = "GET") -> list[str]:
        return [c[1] for c in self.calls if c[0] == method]


NODES, KUBEVIRTS = "/api/v1/nodes", "/apis/kubevirt.io/v1/kubevirts"
VMS, VMIS, PODS = "/apis/kubevirt.io/v1/virtualmachines", "/apis/kubevirt.io/v1/virtualmachineinstances", "/api/v1/pods"
REPORTS = "/apis/wgpolicyk8s.io/v1alpha2/policyreports"


def _report_path(ns: str) -> str:
    return f"/apis/wgpolicyk8s.io/v1alpha2/namespaces/{ns}/policyreports/vm-admission"


def _status(code: int, reason: str, message: str, **extra: Any) -> tuple[int, str, dict[str, Any]]:
    return (
        code,
        reason,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": message,
            **extra,
        },
    )


def _stored(doc: dict[str, Any], uid: str) -> dict[str, Any]:
    """A list item: no kind or apiVersion (a list's items carry none), a uid."""
    item = {k: v for k, v in doc.items() if k not in ("kind", "apiVersion")}
    item["metadata"] = {**item["metadata"], "uid": uid}
    return item


def _pinned_node() -> dict[str, Any]:
    labels = {
        "kubernetes.io/hostname": "n1",
        "kubernetes.io/arch": "amd64",
        "kubevirt.io/schedulable": "true",
        "kubevirt.io/cpumanager": "true",
    }
    return {"metadata": {"name": "n1", "labels": labels}, "status": {"allocatable": {"cpu": "32", "memory": "128Gi"}}}


def _cluster() -> dict[str, list[dict[str, Any]]]:
    plain = {"metadata": {"name": "web", "namespace": "cache"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    plain2 = {"metadata": {"name": "web2", "namespace": "other"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    return {
        NODES: [_pinned_node()],
        VMIS: [
            _stored(example("cpu/vmi-dedicated.yaml"), "u-good"),
            _stored(example("cpu/vmi-dedicated-fractional-cpu.yaml"), "u-frac"),
        ],
        PODS: [plain, _stored(example("pods/virt-launcher-unequal-sidecar.yaml"), "u-pod"), plain2],
    }


@pytest.fixture
def apiserver(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeApiServer]:
    """Make ``vm-admission audit`` talk to a FakeApiServer (returned by the factory) instead of a kubeconfig's."""

    def make(objects: dict[str, list[dict[str, Any]]] | None = None, **kw: Any) -> FakeApiServer:
        server = FakeApiServer(_cluster() if objects is None else objects, **kw)
        monkeypatch.setattr("webhook.cluster.view.api_client", lambda kubeconfig=None, context=None: server)
        return server

    monkeypatch.setenv("KUBECONFIG", "/fake/kubeconfig")
    return make


def _audit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["audit", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_audit_lists_every_kind_page_by_page_and_prints_the_bad_objects(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = apiserver()
    code, out, err = _audit(capsys, "--limit", "2")
    assert code == 1 and err == ""
    blocks = out.split("\n\n")[0].splitlines()
    assert blocks[0] == "VirtualMachineInstance default/half-pinned:"
    assert blocks[1].startswith("  ✗ spec.domain.resources.requests.cpu: ") and blocks[1].endswith("[cpu.R2]")
    pod_lines = [line for line in out.splitlines() if line.endswith("[qos.guaranteed]")]
    assert len(pod_lines) == 4
    assert all(line.startswith("  ✗ ") and "not pinned (the pod is not Guaranteed" in line for line in pod_lines)
    assert "  ! spec.containers[0].resources.requests.devices.kubevirt.io/kvm: none of the 1 node with " in out
    assert "VirtualMachineInstance databases/pinned-db" not in out  # it fits the pinned node: no finding
    summary = [line for line in out.splitlines() if "objects scanned" in line]
    assert len(summary) == 1 and summary[0].startswith(
        "5 objects scanned (0 VirtualMachine, 2 VirtualMachineInstance, 3 Pod) in "
    )
    assert summary[0].endswith(f", {len(server.calls)} API requests: 2 with findings (6 fail, 1 warn, 0 error)")
    assert server.paths() == [NODES, KUBEVIRTS, VMS, VMIS, PODS, PODS]
    assert [c[2] for c in server.calls if c[1] == PODS] == [{"limit": "2"}, {"limit": "2", "continue": "2"}]
    assert any(line.split()[:2] == ["cache", "qos.guaranteed"] for line in out.splitlines())
    assert server.applied == {}


def test_audit_of_one_namespace_lists_there_only(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = apiserver({NODES: [_pinned_node()]})
    code, out, _ = _audit(capsys, "-n", "ns")
    assert code == 0 and "0 objects scanned" in out and "0 with findings" in out and "NAMESPACE" not in out
    assert server.paths() == [
        NODES,
        KUBEVIRTS,
        "/apis/kubevirt.io/v1/namespaces/ns/virtualmachines",
        "/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances",
        "/api/v1/namespaces/ns/pods",
    ]
    assert all(c[2]["limit"] == "500" for c in server.calls)


def test_audit_json_is_one_document_of_objects_summary_and_notes(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = apiserver()
    code, out, _ = _audit(capsys, "-o", "json")
    doc = orjson.loads(out)
    assert code == 1 and set(doc) == {"objects", "summary", "notes"} and doc["notes"] == []
    frac, pod = doc["objects"]
    assert {k: frac[k] for k in ("apiVersion", "kind", "namespace", "name", "uid")} == {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "namespace": "default",
        "name": "half-pinned",
        "uid": "u-frac",
    }
    assert frac["findings"][0]["result"] == "fail" and frac["findings"][0]["rule"] == "cpu.R2"
    assert set(frac["findings"][0]) == {"result", "type", "field", "message", "rule"}
    assert pod["kind"] == "Pod" and pod["uid"] == "u-pod" and pod["apiVersion"] == "v1"
    s = doc["summary"]
    assert s["scanned"] == {"VirtualMachine": 0, "VirtualMachineInstance": 2, "Pod": 3} and s["objects"] == 5
    assert s["objectsWithFindings"] == 2 and s["results"] == {"fail": 6, "warn": 1, "error": 0}
    assert s["byNamespace"] == {
        "cache": {
            "qos.guaranteed": {"fail": 4, "warn": 0, "error": 0},
            "preflight.K3": {"fail": 0, "warn": 1, "error": 0},
        },
        "default": {"cpu.R2": {"fail": 1, "warn": 0, "error": 0}, "cpu.R3": {"fail": 1, "warn": 0, "error": 0}},
    }
    assert list(s["byNamespace"]) == ["cache", "default"]
    assert s["byRule"] == {"cpu.R2": 1, "cpu.R3": 1, "preflight.K3": 1, "qos.guaranteed": 4}
    assert list(s["byRule"]) == ["cpu.R2", "cpu.R3", "preflight.K3", "qos.guaranteed"]
    assert s["apiRequests"] == len(server.calls) == 5 and isinstance(s["seconds"], float) and s["seconds"] >= 0
    code, out, _ = _audit(capsys, "-o", "yaml")
    doc2 = yaml.safe_load(out)
    doc2["summary"]["seconds"] = s["seconds"]
    assert code == 1 and doc2 == doc and "✗" not in out


def test_audit_warns_with_preflight_findings_and_exits_1(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    apiserver({VMIS: [_stored(example("cpu/vmi-dedicated.yaml"), "u")]})  # no nodes at all
    code, out, _ = _audit(capsys)
    assert code == 1
    assert "  ! spec.nodeSelector: the cluster has no nodes, so nothing can run this VMI [preflight.placement]" in out
    assert "1 with findings (0 fail, 1 warn, 0 error)" in out


def test_audit_report_replaces_each_namespaces_report_by_server_side_apply(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    objects = _cluster()
    objects[REPORTS] = [
        {"metadata": {"name": "vm-admission", "namespace": "stale"}},
        {"metadata": {"name": "vm-admission"}},
    ]
    server = apiserver(objects)
    code, out, _ = _audit(capsys, "--report")
    assert code == 1 and out.endswith("PolicyReports vm-admission written in 5 namespaces\n")
    assert server.calls[0][1] == REPORTS and server.calls[0][2]["fieldSelector"] == "metadata.name=vm-admission"
    patches = [c for c in server.calls if c[0] == "PATCH"]
    assert [c[1] for c in patches] == [_report_path(ns) for ns in ("cache", "databases", "default", "other", "stale")]
    for _, _, query, headers, _ in patches:
        assert query == {"fieldManager": "vm-admission", "force": "true"}
        assert headers["Content-Type"] == "application/apply-patch+yaml"
    cache = server.applied[_report_path("cache")]
    assert cache["kind"] == "PolicyReport" and cache["metadata"]["namespace"] == "cache"
    assert [r["rule"] for r in cache["results"]] == ["qos.guaranteed"] * 4 + ["preflight.K3"]
    assert cache["summary"] == {"pass": 0, "fail": 4, "warn": 1, "error": 0, "skip": 0}
    assert cache["results"][0]["resources"][0]["uid"] == "u-pod"
    assert server.applied[_report_path("stale")]["results"] == []
    assert server.applied[_report_path("other")]["results"] == []
    assert server.applied[_report_path("databases")]["results"] == []  # audited, clean: an empty report
    code, out, _ = _audit(capsys, "--report", "-o", "json")
    assert orjson.loads(out)["reports"] == ["cache", "databases", "default", "other", "stale"]


def test_audit_report_of_one_namespace_writes_that_one(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = apiserver({NODES: [_pinned_node()]})
    code, out, _ = _audit(capsys, "--report", "-n", "ns")
    assert code == 0 and out.endswith("PolicyReports vm-admission written in 1 namespaces\n")
    assert server.calls[0][1] == "/apis/wgpolicyk8s.io/v1alpha2/namespaces/ns/policyreports"
    assert list(server.applied) == [_report_path("ns")] and server.applied[_report_path("ns")]["results"] == []


def test_audit_report_skips_a_namespace_being_deleted_with_a_note(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    terminating = _status(
        403,
        "Forbidden",
        'policyreports "vm-admission" is forbidden: unable to create new content in '
        "namespace cache because it is being terminated",
        details={"causes": [{"reason": "NamespaceTerminating", "field": "metadata.namespace"}]},
    )
    server = apiserver(errors={("PATCH", _report_path("cache")): terminating})
    code, out, err = _audit(capsys, "--report")
    assert code == 1
    assert err == "vm-admission audit: note: namespace cache is being deleted: no PolicyReport written there\n"
    assert set(server.applied) == {_report_path("databases"), _report_path("default"), _report_path("other")}
    assert out.endswith("PolicyReports vm-admission written in 3 namespaces\n")  # not in the one being deleted
    _, out, _ = _audit(capsys, "--report", "-o", "json")
    assert orjson.loads(out)["reports"] == ["databases", "default", "other"]


def test_audit_report_that_cannot_be_written_is_one_line(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    denied = _status(
        403, "Forbidden", 'policyreports.wgpolicyk8s.io "vm-admission" is forbidden: User "a" cannot patch'
    )
    apiserver(errors={("PATCH", _report_path("cache")): denied})
    code, out, err = _audit(capsys, "--report")
    assert code == 2 and "objects scanned" not in out
    assert err == (
        "vm-admission audit: cannot apply (patch) policyreports.wgpolicyk8s.io vm-admission in namespace cache: "
        '403 Forbidden: policyreports.wgpolicyk8s.io "vm-admission" is forbidden: User "a" cannot patch\n'
    )


def test_audit_report_without_the_crd_fails_before_listing(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = apiserver(
        errors={("GET", REPORTS): _status(404, "Not Found", "the server could not find the requested resource")}
    )
    code, out, err = _audit(capsys, "--report")
    assert code == 2 and out == "" and server.paths() == [REPORTS]
    assert err == (
        "vm-admission audit: --report: the API server does not serve policyreports.wgpolicyk8s.io/v1alpha2 (the "
        "PolicyReport CRD is not installed): kubectl apply -f manifests/crds/policyreport-crd.yaml\n"
    )
    apiserver(errors={("GET", REPORTS): _status(403, "Forbidden", "policyreports is forbidden")})
    code, _, err = _audit(capsys, "--report")
    assert code == 2 and err == (
        "vm-admission audit: cannot list policyreports.wgpolicyk8s.io in all namespaces: 403 Forbidden: "
        "policyreports is forbidden\n"
    )


@pytest.mark.parametrize(
    ("path", "args", "line"),
    [
        (PODS, (), "cannot list pods in all namespaces: 403 Forbidden: pods is forbidden"),
        (
            "/api/v1/namespaces/ns/pods",
            ("-n", "ns"),
            "cannot list pods in namespace ns: 403 Forbidden: pods is forbidden",
        ),
        (VMS, (), "cannot list virtualmachines.kubevirt.io in all namespaces: 403 Forbidden: pods is forbidden"),
        (
            NODES,
            (),
            "cannot list nodes and kubevirts.kubevirt.io (the preflight's cluster view): 403 Forbidden: "
            "pods is forbidden",
        ),
    ],
)
def test_a_forbidden_list_is_one_line_and_exit_2(
    apiserver: Callable[..., FakeApiServer],
    capsys: pytest.CaptureFixture[str],
    path: str,
    args: tuple[str, ...],
    line: str,
) -> None:
    apiserver(errors={("GET", path): _status(403, "Forbidden", "pods is forbidden")})
    code, out, err = _audit(capsys, *args)
    assert code == 2 and err == f"vm-admission audit: {line}\n" and "objects scanned" not in out
    if path == NODES:
        assert out == ""


def test_kinds_the_api_server_does_not_serve_are_skipped_with_a_note(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = _status(404, "Not Found", "the server could not find the requested resource")
    server = apiserver(errors={("GET", VMS): missing, ("GET", VMIS): missing, ("GET", KUBEVIRTS): missing})
    code, out, err = _audit(capsys)
    assert code == 1 and server.paths()[-1] == PODS
    assert err.splitlines() == [
        "vm-admission audit: note: VirtualMachine: the API server does not serve virtualmachines.kubevirt.io/v1 "
        "(KubeVirt's CRDs are not installed): skipped",
        "vm-admission audit: note: VirtualMachineInstance: the API server does not serve "
        "virtualmachineinstances.kubevirt.io/v1 (KubeVirt's CRDs are not installed): skipped",
    ]
    assert out.count("objects scanned (0 VirtualMachine, 0 VirtualMachineInstance, 3 Pod)") == 1
    code, out, _ = _audit(capsys, "-o", "json")
    assert len(orjson.loads(out)["notes"]) == 2


def test_an_expired_continue_token_goes_on_and_says_the_list_may_be_inconsistent(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    expired = _status(410, "Gone", "The provided continue parameter is too old", metadata={"continue": "2"})
    server = apiserver(errors={("GET", PODS, "1"): expired})
    _, out, err = _audit(capsys, "--limit", "1")
    assert [c[2].get("continue") for c in server.calls if c[1] == PODS] == [None, "1", "2"]
    assert err == (
        "vm-admission audit: note: Pod: a continue token expired during the list; the rest came from a newer "
        "resourceVersion, so objects changed meanwhile may be missing or seen twice\n"
    )
    assert "2 Pod)" in out  # the second pod was lost with the expired token


def test_an_unreachable_api_server_is_one_line(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib3

    server = apiserver()

    def refuse(*a: Any, **kw: Any) -> Any:
        raise urllib3.exceptions.MaxRetryError(None, "/api/v1/nodes", "Connection refused")  # type: ignore[arg-type]

    monkeypatch.setattr(server, "call_api", refuse)
    code, out, err = _audit(capsys)
    assert code == 2 and out == ""
    assert err.startswith(
        "vm-admission audit: cannot list nodes and kubevirts.kubevirt.io (the preflight's cluster "
        "view): the API server is unreachable: "
    )
    assert err.count("\n") == 1


def test_a_bad_config_is_one_error_before_any_request(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    server = apiserver()
    bad = tmp_path / "config.yaml"
    bad.write_text("enforcement: sometimes\n")
    code, out, err = _audit(capsys, "--config", str(bad))
    assert code == 2 and out == "" and err.startswith("vm-admission audit: ") and "enforcement" in err
    assert server.calls == []


def test_credentials_come_from_the_flag_the_environment_home_or_the_service_account(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    used: list[tuple[str | None, str | None]] = []
    server = FakeApiServer({})

    def client(kubeconfig: str | None = None, context: str | None = None) -> FakeApiServer:
        used.append((kubeconfig, context))
        return server

    monkeypatch.setattr("webhook.cluster.view.api_client", client)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", "/env/kubeconfig")
    assert main(["audit", "--kubeconfig", "/flag/kubeconfig", "--context", "c1"]) == 0
    assert main(["audit"]) == 0
    monkeypatch.delenv("KUBECONFIG")
    assert main(["audit"]) == 0  # no ~/.kube/config: the in-cluster service account (None)
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text("{}")
    assert main(["audit"]) == 0
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert main(["audit"]) == 0
    assert used == [
        ("/flag/kubeconfig", "c1"),
        ("/env/kubeconfig", None),
        (None, None),
        (str(tmp_path / ".kube" / "config"), None),
        (None, None),
    ]
    capsys.readouterr()


def test_credentials_that_do_not_load_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(kubeconfig: str | None = None, context: str | None = None) -> Any:
        raise ValueError("Invalid kube-config file.\nNo configuration found.")

    monkeypatch.setattr("webhook.cluster.view.api_client", broken)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    code, out, err = _audit(capsys, "--kubeconfig", "/x/kubeconfig")
    assert code == 2 and out == ""
    assert err == "vm-admission audit: cannot load credentials from /x/kubeconfig: Invalid kube-config file.\n"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")

    def silent(kubeconfig: str | None = None, context: str | None = None) -> Any:
        raise RuntimeError()

    monkeypatch.setattr("webhook.cluster.view.api_client", silent)
    code, _, err = _audit(capsys)
    assert (
        code == 2
        and err == "vm-admission audit: cannot load credentials from the in-cluster service account: RuntimeError()\n"
    )


# --- the pure helpers ---------------------------------------------------------------------------------------


def test_a_namespace_being_deleted_is_told_by_its_status_cause() -> None:
    from webhook.audit import _terminating

    def exc(status: int, body: Any) -> _ApiException:
        return _ApiException(status, "Forbidden", body)

    def causes(*c: Any) -> bytes:
        return orjson.dumps({"kind": "Status", "details": {"causes": list(c)}})

    assert _terminating(exc(403, causes({"reason": "NamespaceTerminating"})))
    assert _terminating(exc(403, causes({"type": "NamespaceTerminating"})))
    assert _terminating(exc(403, causes("junk", {"reason": "Other"}, {"reason": "NamespaceTerminating"})))
    assert _terminating(exc(403, causes({"reason": "NamespaceTerminating"}).decode()))
    assert not _terminating(exc(404, causes({"reason": "NamespaceTerminating"})))
    assert not _terminating(exc(403, causes({"reason": "Other"}, "NamespaceTerminating")))
    assert not _terminating(exc(403, b'{"kind":"Status"}'))
    assert not _terminating(exc(403, b'{"details": null}'))
    assert not _terminating(exc(403, b"not json"))
    assert not _terminating(exc(403, b"[1]"))
    assert not _terminating(exc(403, None))
    assert not _terminating(ValueError("no status"))


def test_the_continue_token_a_410_offers() -> None:
    from webhook.audit import _inconsistent_continue

    def gone(body: Any, status: int = 410) -> _ApiException:
        return _ApiException(status, "Gone", body)

    assert _inconsistent_continue(gone(b'{"metadata": {"continue": "abc"}}')) == "abc"
    assert _inconsistent_continue(gone('{"metadata": {"continue": "abc"}}')) == "abc"
    assert _inconsistent_continue(gone(b'{"metadata": {"continue": "abc"}}', 403)) is None
    for body in (
        b'{"metadata": {"continue": ""}}',
        b'{"metadata": {"continue": 3}}',
        b'{"metadata": null}',
        b"{}",
        b"not json",
        b"[]",
        None,
    ):
        assert _inconsistent_continue(gone(body)) is None, body
    assert _inconsistent_continue(ValueError()) is None


def test_the_status_message_is_the_api_servers_own_on_one_line() -> None:
    from webhook.audit import _status_message

    assert _status_message(_ApiException(403, "Forbidden", b'{"message": "no\\naccess"}')) == "no access"
    assert _status_message(_ApiException(403, "Forbidden", b'{"code": 403}')) == "Forbidden"
    assert _status_message(_ApiException(403, "Forbidden", b"<html>")) == "Forbidden"
    assert _status_message(_ApiException(403, "Forbidden", b"[1]")) == "Forbidden"
    assert _status_message(_ApiException(403, "", b"")) == str(_ApiException(403, "", b""))
    assert _status_message(ValueError("plain\ntext")) == "plain text"


def test_api_errors_without_a_status_or_message() -> None:
    assert str(api_error(_ApiException(0, "", b""), "list", "pods")).startswith("cannot list pods: _ApiException: ")
    assert str(api_error(ValueError(""), "get", "x")) == "cannot get x: ValueError: ValueError('')"
    assert str(api_error(OSError("down"), "list", "x")) == "cannot list x: the API server is unreachable: down"
    long = str(api_error(ValueError("y" * 400), "list", "x"))
    assert long == "cannot list x: ValueError: " + "y" * 300
    assert str(api_error(_ApiException(500, "Internal Server Error", b"{}"), "list", "x")) == (
        "cannot list x: 500 Internal Server Error: Internal Server Error"
    )


def test_the_scope_of_an_audit() -> None:
    from webhook.audit import scope

    assert scope("ns") == "in namespace ns" and scope(None) == "in all namespaces" and scope("") == "in all namespaces"


def test_a_stored_object_is_reviewed_as_the_kind_it_was_listed_as() -> None:
    vm = _stored(example("cpu/vm-dedicated.yaml"), "u1")
    vm["spec"]["template"]["spec"]["domain"]["resources"] = {"requests": {"cpu": "1500m", "memory": "1Gi"}}
    audited = audit_object(vm, KIND["VirtualMachine"], load_config(None), None)
    assert audited.ref == Ref(
        "kubevirt.io/v1", "VirtualMachine", vm["metadata"]["namespace"], vm["metadata"]["name"], "u1"
    )
    assert vm["apiVersion"] == "kubevirt.io/v1" and vm["kind"] == "VirtualMachine"
    assert audited.findings and all(f.result == "fail" for f in audited.findings)
    assert any(f.field.startswith("spec.template.spec.domain.") for f in audited.findings)
    own = {"apiVersion": "v2", "kind": "Other", "metadata": {"name": "x"}}
    audit_object(own, KIND["Pod"], load_config(None), None)
    assert own["apiVersion"] == "v2" and own["kind"] == "Other"
    nameless = audit_object({"metadata": None, "spec": {}}, KIND["Pod"], load_config(None), None)
    assert nameless.ref == Ref("v1", "Pod", "", "", "") and nameless.findings == ()
    assert nameless.ref.as_json() == {"apiVersion": "v1", "kind": "Pod", "namespace": "", "name": ""}
    assert Audited(nameless.ref, ()).as_json() == {**nameless.ref.as_json(), "findings": []}


def test_a_stored_object_is_reviewed_as_a_create_on_the_validating_webhook_with_the_cluster_view() -> None:
    from tests.helpers import cluster_snapshot, node

    vmi = _stored(example("cpu/vmi-dedicated.yaml"), "u")
    audited = audit_object(vmi, KIND["VirtualMachineInstance"], load_config(None), cluster_snapshot([node("a")]))
    (finding,) = audited.findings
    assert (
        finding.rule == "preflight.K1"
        and finding.result == "warn"
        and finding.field == "spec.domain.cpu.dedicatedCpuPlacement"
    )
    pinned = cluster_snapshot([node("a", labels={"kubevirt.io/cpumanager": "true"})])
    assert audit_object(vmi, KIND["VirtualMachineInstance"], load_config(None), pinned).findings == ()


def test_findings_keep_the_cause_type_and_only_pods_get_the_not_pinned_prefix() -> None:
    c = Cause("spec.x", "bad", "FieldValueNotSupported", rule="qos.guaranteed")
    (vm,) = findings_of(Verdict(allowed=False, code=422, causes=[c]), "VirtualMachine")
    assert vm == Finding("qos.guaranteed", "fail", "spec.x", "bad", "FieldValueNotSupported")
    (pod,) = findings_of(Verdict(allowed=False, code=422, causes=[c]), "Pod")
    assert pod.message == "not pinned (the pod is not Guaranteed, so the CPU manager gives it no dedicated CPUs): bad"
    (other,) = findings_of(Verdict(allowed=False, code=422, causes=[Cause("f", "m", rule="cpu.R6")]), "Pod")
    assert other.message == "m"
    (warn,) = findings_of(Verdict(advisories=[Cause("f", "far", "FieldValueRequired", rule="preflight.K4")]), "Pod")
    assert warn == Finding("preflight.K4", "warn", "f", "far", "FieldValueRequired")
    assert findings_of(Verdict(allowed=False, code=422, message="m"), "Pod") == ()
    assert Finding("r", "warn", "f", "m", "FieldValueRequired").as_json() == {
        "result": "warn",
        "type": "FieldValueRequired",
        "field": "f",
        "message": "m",
        "rule": "r",
    }


def test_progress_shows_at_most_every_interval_unless_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    import webhook.audit as audit

    now = [100.0]
    monkeypatch.setattr(audit.time, "monotonic", lambda: now[0])
    tty = _Tty()
    p = Progress(tty, interval=1.0)
    p.tick(5)
    assert tty.getvalue() == ""  # not a second since it started
    now[0] = 102.0
    p.tick(10)
    assert tty.getvalue() == "\r\x1b[Kscanned 10 objects (5/s)"
    now[0] = 102.5
    p.tick(20)
    assert tty.getvalue().count("scanned") == 1
    p.tick(2000, force=True)
    assert tty.getvalue().endswith("\r\x1b[Kscanned 2000 objects (800/s)")
    p.done()
    p.done()
    assert tty.getvalue().endswith("\r\x1b[K") and tty.getvalue().count("\r\x1b[K") == 3
    quiet = _Tty()
    Progress(quiet).done()
    assert quiet.getvalue() == ""
    assert Progress(_Tty()).interval == 0.2 and not Progress(io.StringIO()).on


def test_the_summary_counts_per_namespace_and_rule_and_renders_aligned_columns() -> None:
    s = Summary()
    long_ns = "a-rather-long-namespace"
    s.add(
        Audited(
            Ref("v1", "Pod", long_ns, "p", ""),
            (
                Finding("qos.guaranteed", "fail", "", "m"),
                Finding("qos.guaranteed", "fail", "", "m"),
                Finding("preflight.K1", "warn", "", "m"),
            ),
        )
    )
    s.add(Audited(Ref("v1", "Pod", "b", "p2", ""), (Finding("object.unreadable", "error", "", "m"),)))
    s.add(Audited(Ref("kubevirt.io/v1", "VirtualMachine", "b", "v", ""), ()))
    assert s.scanned == {"VirtualMachine": 1, "VirtualMachineInstance": 0, "Pod": 2} and s.objects == 3
    assert s.with_findings == 2 and s.findings == 4 and s.results == {"fail": 2, "warn": 1, "error": 1}
    assert s.by_rule == {"qos.guaranteed": 2, "preflight.K1": 1, "object.unreadable": 1}
    assert s.by_namespace[long_ns]["qos.guaranteed"] == {"fail": 2, "warn": 0, "error": 0}
    s.seconds, s.requests = 1.25, 7
    lines = render_summary(s).splitlines()
    assert lines[0] == (
        "3 objects scanned (1 VirtualMachine, 0 VirtualMachineInstance, 2 Pod) in 1.2s, 7 API requests: "
        "2 with findings (2 fail, 1 warn, 1 error)"
    )
    w = len(long_ns)
    assert lines[1:] == [
        f"{'NAMESPACE':<{w}}  {'RULE':<17}  FAIL  WARN  ERROR",
        f"{long_ns}  {'preflight.K1':<17}     0     1      0",
        f"{long_ns}  {'qos.guaranteed':<17}     2     0      0",
        f"{'b':<{w}}  object.unreadable     0     0      1",
    ]
    assert s.as_json()["seconds"] == 1.25 and s.as_json()["apiRequests"] == 7
    one = Summary()
    one.add(Audited(Ref("v1", "Pod", "n", "p", ""), (Finding("x", "fail", "", "m"),)))
    assert render_summary(one).splitlines()[1] == "NAMESPACE  RULE  FAIL  WARN  ERROR"


# --- found by mutation testing -------------------------------------------------------------------------------


def test_every_call_carries_the_audits_timeouts_and_pages_of_limit(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    objects = _cluster()
    objects[NODES] = [_pinned_node(), {**_pinned_node(), "metadata": {"name": "n2", "labels": {}}}]
    cr = {"metadata": {"name": "kv", "namespace": "kubevirt"}, "status": {"phase": "Deployed"}}
    objects[KUBEVIRTS] = [cr, {**cr, "metadata": {"name": "kv2", "namespace": "other"}}]
    server = apiserver(objects)
    code, out, _ = _audit(capsys, "--limit", "1", "--report")
    assert code == 1
    nodes = [c[2] for c in server.calls if c[1] in (NODES, KUBEVIRTS)]
    assert nodes == [{"limit": "1"}, {"limit": "1", "continue": "1"}] * 2
    assert server.calls[0][2] == {"limit": "1", "fieldSelector": "metadata.name=vm-admission"}
    audit_calls = [t for c, t in zip(server.calls, server.timeouts, strict=True) if c[1] not in (NODES, KUBEVIRTS)]
    assert audit_calls and all(t == (5.0, 60.0) for t in audit_calls)
    summary = next(line for line in out.splitlines() if "objects scanned" in line)
    assert f", {len(server.calls)} API requests: " in summary


def test_the_first_page_of_a_list_is_not_retried_with_a_token_a_410_offers(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    gone = _status(410, "Gone", "too old resource version", metadata={"continue": "1"})
    server = apiserver(errors={("GET", PODS, ""): gone})
    code, _, err = _audit(capsys, "-o", "json")
    assert (
        code == 2
        and err == "vm-admission audit: cannot list pods in all namespaces: 410 Gone: too old resource version\n"
    )
    assert server.paths().count(PODS) == 1


def test_an_expired_continue_token_listing_the_reports_is_noted_too(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    objects = _cluster()
    objects[REPORTS] = [{"metadata": {"name": "vm-admission", "namespace": ns}} for ns in ("a", "b", "c")]
    expired = _status(410, "Gone", "The provided continue parameter is too old", metadata={"continue": "2"})
    apiserver(objects, errors={("GET", REPORTS, "1"): expired})
    _, _, err = _audit(capsys, "--report", "--limit", "1", "-o", "json")
    assert "vm-admission audit: note: PolicyReport: a continue token expired during the list" in err


def test_errors_listing_the_reports_of_one_namespace_name_it(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    path = "/apis/wgpolicyk8s.io/v1alpha2/namespaces/ns/policyreports"
    apiserver(errors={("GET", path): _status(403, "Forbidden", "no")})
    code, _, err = _audit(capsys, "--report", "-n", "ns")
    assert (
        code == 2
        and err == "vm-admission audit: cannot list policyreports.wgpolicyk8s.io in namespace ns: 403 Forbidden: no\n"
    )


@pytest.mark.parametrize("path", [PODS, REPORTS])
def test_the_api_server_going_away_mid_audit_is_one_line(
    apiserver: Callable[..., FakeApiServer],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    import urllib3

    server = apiserver()
    answer = server.call_api

    def flaky(method: str, url: str, *a: Any, **kw: Any) -> Any:
        if urlsplit(url).path == path:
            raise urllib3.exceptions.ProtocolError("Connection aborted.")
        return answer(method, url, *a, **kw)

    monkeypatch.setattr(server, "call_api", flaky)
    code, _, err = _audit(capsys, "--report", "-o", "json")
    what = "pods in all namespaces" if path == PODS else "policyreports.wgpolicyk8s.io in all namespaces"
    assert (
        code == 2
        and err == f"vm-admission audit: cannot list {what}: the API server is unreachable: Connection aborted.\n"
    )


def test_objects_without_a_namespace_get_no_report(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = apiserver({PODS: [{"metadata": {"name": "loose"}, "spec": {"containers": [{"name": "c"}]}}]})
    code, out, _ = _audit(capsys, "--report")
    assert code == 0 and server.applied == {} and "written in 0 namespaces" in out


def test_json_is_indented_and_yaml_keeps_the_documents_order_and_its_unicode(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "annotations": {"vm-admission.io/passthrough": "10dé:1eb8"}},
           "spec": {"containers": [{"name": "compute"}]}}  # fmt: skip
    apiserver({PODS: [pod]})
    _, out, _ = _audit(capsys, "-o", "json")
    assert out.startswith('{\n  "objects": [\n')
    code, out, _ = _audit(capsys, "-o", "yaml", "--report")
    assert code == 1 and out.startswith("objects:\n") and "10dé" in out
    assert yaml.safe_load(out)["reports"] == ["ns"]


def test_a_terminal_sees_the_audits_progress(
    apiserver: Callable[..., FakeApiServer], capsys: pytest.CaptureFixture[str]
) -> None:
    from webhook.audit import audit_command
    from webhook.cli import build_parser

    apiserver()
    tty, out = _Tty(), io.StringIO()
    assert audit_command(build_parser().parse_args(["audit", "-o", "json"]), out, tty) == 1
    assert "scanned 5 objects (" in tty.getvalue() and tty.getvalue().endswith("\r\x1b[K")


def test_run_audit_ticks_per_object_forces_the_last_tick_and_counts_its_requests_and_time(
    apiserver: Callable[..., FakeApiServer],
) -> None:
    from webhook.audit import Api, run_audit

    server = apiserver()
    every = _Tty()
    run = run_audit(Api(server), load_config(None), None, 2, progress=Progress(every, interval=0))
    assert [f"scanned {n} objects" in every.getvalue() for n in range(1, 6)] == [True] * 5
    assert run.summary.requests == len(server.calls) and 0 <= run.summary.seconds < 60
    last_only = _Tty()
    run_audit(Api(server), load_config(None), None, 2, progress=Progress(last_only, interval=3600))
    assert last_only.getvalue().count("scanned") == 1 and "scanned 5 objects" in last_only.getvalue()


def test_write_reports_stamps_the_time_it_is_given() -> None:
    from webhook.audit import AuditRun, write_reports

    applied: dict[str, Any] = {}

    class Recorder:
        def apply_report(self, namespace: str, report: dict[str, Any]) -> None:
            applied[namespace] = report

    run = AuditRun(found=_found())
    run.summary.add(run.found[0])
    assert write_reports(Recorder(), run, None, set(), now=1234.9) == ["ns"]  # type: ignore[arg-type]
    assert {r["timestamp"]["seconds"] for r in applied["ns"]["results"]} == {1234}


def test_progress_at_exactly_the_interval_and_before_a_second_has_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    import webhook.audit as audit

    now = [10.0]
    monkeypatch.setattr(audit.time, "monotonic", lambda: now[0])
    tty = _Tty()
    p = Progress(tty, interval=1.0)
    now[0] = 10.5
    p.tick(50, force=True)
    assert tty.getvalue().endswith("scanned 50 objects (100/s)")
    now[0] = 11.5
    p.tick(60)
    assert tty.getvalue().endswith("scanned 60 objects (40/s)")


def test_a_stream_without_isatty_is_no_terminal() -> None:
    class Sink:
        def write(self, text: str) -> int:
            raise AssertionError("nothing may be written")

    p = Progress(Sink())  # type: ignore[arg-type]
    p.tick(1, force=True)
    p.done()
    assert not p.on


def test_seconds_are_rounded_to_milliseconds() -> None:
    s = Summary()
    s.seconds = 1.23456
    assert s.as_json()["seconds"] == 1.235


def test_api_errors_with_a_status_but_no_reason() -> None:
    class Bare(Exception):
        status = 503

    assert str(api_error(Bare("x"), "list", "pods")) == "cannot list pods: 503 : x"
    assert str(api_error(_ApiException(503, "", b'{"message": "m"}'), "list", "pods")) == "cannot list pods: 503 : m"
