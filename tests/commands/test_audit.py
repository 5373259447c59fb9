"""``vm-admission audit`` without a cluster: findings from verdicts, the PolicyReport shape against the vendored
CRD's schema, rendering, progress. The audit against a real API server is tests/e2e/test_audit.py."""

from __future__ import annotations

import io
from typing import Any

import jsonschema
import orjson
import pytest
import yaml

from tests.testkit.paths import REPO
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
from webhook.endpoint import response
from webhook.engine import Verdict, handle
from webhook.k8s.snapshot import ClusterSnapshot
from webhook.rules.base import Cause

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
    c = Cause("spec.x", "bad", rule="cpu.cpu-request-not-limit")
    verdict = Verdict(
        allowed=False, code=422, causes=[c], advisories=[Cause("spec.y", "far", rule="preflight.not-enough-cpus")]
    )
    assert findings_of(verdict, "VirtualMachine") == (
        Finding("cpu.cpu-request-not-limit", "fail", "spec.x", "bad"),
        Finding("preflight.not-enough-cpus", "warn", "spec.y", "far"),
    )
    assert findings_of(Verdict(would_deny=[c]), "VirtualMachine") == (
        Finding("cpu.cpu-request-not-limit", "fail", "spec.x", "bad"),
    )
    (bad,) = findings_of(Verdict(allowed=False, code=400, message="spec: must be an object"), "Pod")
    assert bad == Finding("object.unreadable", "error", "", "spec: must be an object")


def test_a_stored_dedicated_pod_that_is_not_guaranteed_is_reported_as_not_pinned_naming_its_containers() -> None:
    pod = example("pods/virt-launcher-unequal-sidecar.yaml")
    audited = audit_object(pod, KIND["Pod"], load_config(None), None)
    assert audited.findings and all(f.rule == "qos.not-guaranteed" for f in audited.findings)
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
                Finding("cpu.fractional-cpu-request", "fail", "spec.domain.resources.requests.cpu", "must be whole"),
                Finding("preflight.no-cpu-manager-node", "warn", "spec.domain.cpu.dedicatedCpuPlacement", "no node"),
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
    assert first["policy"] == first["source"] == "vm-admission" and first["rule"] == "cpu.fractional-cpu-request"
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
        "  ✗ spec.domain.resources.requests.cpu: must be whole [cpu.fractional-cpu-request]",
        "  ! spec.domain.cpu.dedicatedCpuPlacement: no node [preflight.no-cpu-manager-node]",
        "  ? spec: must be an object [object.unreadable]",
    ]
    s = Summary()
    s.add(a)
    s.add(Audited(Ref("v1", "Pod", "other", "web", ""), ()))
    out = render_summary(s)
    assert out.startswith("2 objects scanned (0 VirtualMachine, 1 VirtualMachineInstance, 1 Pod)")
    assert "1 with findings (1 fail, 1 warn, 1 error)" in out
    assert any(line.split()[:2] == ["ns", "cpu.fractional-cpu-request"] for line in out.splitlines())
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
    from webhook.cluster.client import Client as Api

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


NODES, KUBEVIRTS = "/api/v1/nodes", "/apis/kubevirt.io/v1/kubevirts"
VMS, VMIS, PODS = "/apis/kubevirt.io/v1/virtualmachines", "/apis/kubevirt.io/v1/virtualmachineinstances", "/api/v1/pods"
REPORTS = "/apis/wgpolicyk8s.io/v1alpha2/policyreports"


def _stored(doc: dict[str, Any], uid: str) -> dict[str, Any]:
    """A list item: no kind or apiVersion (a list's items carry none), a uid."""
    item = {k: v for k, v in doc.items() if k not in ("kind", "apiVersion")}
    item["metadata"] = {**item["metadata"], "uid": uid}
    return item


def _audit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["audit", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_credentials_that_do_not_load_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(kubeconfig: str | None = None, context: str | None = None) -> Any:
        raise ValueError("Invalid kube-config file.\nNo configuration found.")

    monkeypatch.setattr("webhook.cluster.client.api_client", broken)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    code, out, err = _audit(capsys, "--kubeconfig", "/x/kubeconfig")
    assert code == 2 and out == ""
    assert err == "vm-admission audit: cannot load credentials from /x/kubeconfig: Invalid kube-config file.\n"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")

    def silent(kubeconfig: str | None = None, context: str | None = None) -> Any:
        raise RuntimeError()

    monkeypatch.setattr("webhook.cluster.client.api_client", silent)
    code, _, err = _audit(capsys)
    assert (
        code == 2
        and err == "vm-admission audit: cannot load credentials from the in-cluster service account: RuntimeError()\n"
    )


# --- the pure helpers ---------------------------------------------------------------------------------------


def test_a_namespace_being_deleted_is_told_by_its_status_cause() -> None:
    from webhook.cluster.client import terminating as _terminating

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
    from webhook.cluster.client import inconsistent_continue as _inconsistent_continue

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
    from webhook.cluster.client import status_message as _status_message

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
    from webhook.audit.run import scope

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
    from tests.testkit.cluster import cluster_snapshot, node

    vmi = _stored(example("cpu/vmi-dedicated.yaml"), "u")
    audited = audit_object(vmi, KIND["VirtualMachineInstance"], load_config(None), cluster_snapshot([node("a")]))
    (finding,) = audited.findings
    assert (
        finding.rule == "preflight.no-cpu-manager-node"
        and finding.result == "warn"
        and finding.field == "spec.domain.cpu.dedicatedCpuPlacement"
    )
    pinned = cluster_snapshot([node("a", labels={"kubevirt.io/cpumanager": "true"})])
    assert audit_object(vmi, KIND["VirtualMachineInstance"], load_config(None), pinned).findings == ()


def test_findings_keep_the_cause_type_and_only_pods_get_the_not_pinned_prefix() -> None:
    c = Cause("spec.x", "bad", "FieldValueNotSupported", rule="qos.not-guaranteed")
    (vm,) = findings_of(Verdict(allowed=False, code=422, causes=[c]), "VirtualMachine")
    assert vm == Finding("qos.not-guaranteed", "fail", "spec.x", "bad", "FieldValueNotSupported")
    (pod,) = findings_of(Verdict(allowed=False, code=422, causes=[c]), "Pod")
    assert pod.message == "not pinned (the pod is not Guaranteed, so the CPU manager gives it no dedicated CPUs): bad"
    (other,) = findings_of(
        Verdict(allowed=False, code=422, causes=[Cause("f", "m", rule="cpu.cpu-request-not-limit")]), "Pod"
    )
    assert other.message == "m"
    (warn,) = findings_of(
        Verdict(advisories=[Cause("f", "far", "FieldValueRequired", rule="preflight.not-enough-memory")]), "Pod"
    )
    assert warn == Finding("preflight.not-enough-memory", "warn", "f", "far", "FieldValueRequired")
    assert findings_of(Verdict(allowed=False, code=422, message="m"), "Pod") == ()
    assert Finding("r", "warn", "f", "m", "FieldValueRequired").as_json() == {
        "result": "warn",
        "type": "FieldValueRequired",
        "field": "f",
        "message": "m",
        "rule": "r",
    }


def test_progress_shows_at_most_every_interval_unless_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    import webhook.audit.render as audit

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
                Finding("qos.not-guaranteed", "fail", "", "m"),
                Finding("qos.not-guaranteed", "fail", "", "m"),
                Finding("preflight.no-cpu-manager-node", "warn", "", "m"),
            ),
        )
    )
    s.add(Audited(Ref("v1", "Pod", "b", "p2", ""), (Finding("object.unreadable", "error", "", "m"),)))
    s.add(Audited(Ref("kubevirt.io/v1", "VirtualMachine", "b", "v", ""), ()))
    assert s.scanned == {"VirtualMachine": 1, "VirtualMachineInstance": 0, "Pod": 2} and s.objects == 3
    assert s.with_findings == 2 and s.findings == 4 and s.results == {"fail": 2, "warn": 1, "error": 1}
    assert s.by_rule == {"qos.not-guaranteed": 2, "preflight.no-cpu-manager-node": 1, "object.unreadable": 1}
    assert s.by_namespace[long_ns]["qos.not-guaranteed"] == {"fail": 2, "warn": 0, "error": 0}
    s.seconds, s.requests = 1.25, 7
    lines = render_summary(s).splitlines()
    assert lines[0] == (
        "3 objects scanned (1 VirtualMachine, 0 VirtualMachineInstance, 2 Pod) in 1.2s, 7 API requests: "
        "2 with findings (2 fail, 1 warn, 1 error)"
    )
    w = len(long_ns)
    assert lines[1:] == [
        f"{'NAMESPACE':<{w}}  {'RULE':<29}  FAIL  WARN  ERROR",
        f"{long_ns}  preflight.no-cpu-manager-node     0     1      0",
        f"{long_ns}  {'qos.not-guaranteed':<29}     2     0      0",
        f"{'b':<{w}}  {'object.unreadable':<29}     0     0      1",
    ]
    assert s.as_json()["seconds"] == 1.25 and s.as_json()["apiRequests"] == 7
    one = Summary()
    one.add(Audited(Ref("v1", "Pod", "n", "p", ""), (Finding("x", "fail", "", "m"),)))
    assert render_summary(one).splitlines()[1] == "NAMESPACE  RULE  FAIL  WARN  ERROR"


# --- found by mutation testing -------------------------------------------------------------------------------


def test_write_reports_stamps_the_time_it_is_given() -> None:
    from webhook.audit import AuditRun, write_reports

    applied: dict[str, Any] = {}

    class Recorder:
        def apply(self, res: Any, namespace: str, name: str, report: dict[str, Any], manager: str) -> None:
            applied[namespace] = report

    run = AuditRun(found=_found())
    run.summary.add(run.found[0])
    assert write_reports(Recorder(), run, None, set(), now=1234.9) == ["ns"]  # type: ignore[arg-type]
    assert {r["timestamp"]["seconds"] for r in applied["ns"]["results"]} == {1234}


def test_progress_at_exactly_the_interval_and_before_a_second_has_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    import webhook.audit.render as audit

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


def _counted() -> Summary:
    s = Summary()
    s.add(Audited(Ref("v1", "Pod", "zz", "p", ""), (Finding("qos.not-guaranteed", "fail", "", "m"),)))
    s.add(
        Audited(
            Ref("kubevirt.io/v1", "VirtualMachine", "aa", "v", ""),
            (
                Finding("preflight.no-cpu-manager-node", "warn", "", "m"),
                Finding("cpu.fractional-cpu-request", "fail", "", "m"),
            ),
        )
    )
    s.add(Audited(Ref("v1", "Pod", "aa", "clean", ""), ()))
    s.requests, s.seconds = 3, 0.5
    return s


def test_the_json_summary_names_every_count_and_sorts_namespaces_and_rules() -> None:
    out = _counted().as_json()
    assert out == {
        "scanned": {"VirtualMachine": 1, "VirtualMachineInstance": 0, "Pod": 2},
        "objects": 3,
        "objectsWithFindings": 2,
        "results": {"fail": 2, "warn": 1, "error": 0},
        "byNamespace": {
            "aa": {
                "preflight.no-cpu-manager-node": {"fail": 0, "warn": 1, "error": 0},
                "cpu.fractional-cpu-request": {"fail": 1, "warn": 0, "error": 0},
            },
            "zz": {"qos.not-guaranteed": {"fail": 1, "warn": 0, "error": 0}},
        },
        "byRule": {"cpu.fractional-cpu-request": 1, "preflight.no-cpu-manager-node": 1, "qos.not-guaranteed": 1},
        "apiRequests": 3,
        "seconds": 0.5,
    }
    assert list(out) == [
        "scanned",
        "objects",
        "objectsWithFindings",
        "results",
        "byNamespace",
        "byRule",
        "apiRequests",
        "seconds",
    ]
    assert list(out["byNamespace"]) == ["aa", "zz"] and list(out["byRule"]) == [
        "cpu.fractional-cpu-request",
        "preflight.no-cpu-manager-node",
        "qos.not-guaranteed",
    ]


def test_the_json_document_holds_the_objects_summary_notes_and_only_with_reports_the_reports() -> None:
    from webhook.audit import AuditRun, as_document

    run = AuditRun(found=_found(), summary=_counted(), notes=["skipped namespace gone: being deleted"])
    doc = as_document(run, None)
    assert doc == {
        "objects": [a.as_json() for a in _found()],
        "summary": _counted().as_json(),
        "notes": ["skipped namespace gone: being deleted"],
    }
    assert (
        doc["objects"][0]["name"] == "db" and doc["objects"][0]["findings"][0]["rule"] == "cpu.fractional-cpu-request"
    )
    with_reports = as_document(run, ["aa", "zz"])
    assert with_reports == {**doc, "reports": ["aa", "zz"]}
    assert as_document(AuditRun(), [])["reports"] == []


# --- streaming text, --exclude-namespace, --selector --------------------------------------------------------

FRACTIONAL_VMI = {
    "metadata": {"name": "half", "namespace": "a"},
    "spec": {
        "domain": {
            "cpu": {"dedicatedCpuPlacement": True},
            "resources": {"requests": {"cpu": "1500m", "memory": "1Gi"}, "limits": {"cpu": "1500m", "memory": "1Gi"}},
            "devices": {},
        }
    },
}


class _FakeApi:
    """``Api``'s paging surface over in-memory objects; records the selectors each list was sent."""

    def __init__(self, per_kind: dict[str, list[dict[str, Any]]]) -> None:
        self.per_kind, self.calls, self.requests, self.inconsistent = per_kind, [], 0, set()  # type: ignore[var-annotated]
        self.api_client = None

    def pages(
        self, kind: Any, namespace: Any, limit: int, field_selector: Any = None, label_selector: Any = None
    ) -> Any:
        self.calls.append((kind.kind, namespace, field_selector, label_selector))
        items = [orjson.loads(orjson.dumps(o)) for o in self.per_kind.get(kind.kind, [])]
        for i in range(0, len(items), limit):
            self.requests += 1
            yield items[i : i + limit]


def _fake_run(monkeypatch: pytest.MonkeyPatch, objects: int, **kw: Any) -> tuple[Any, _FakeApi, list[Any]]:
    from webhook.audit import run as audit

    class View:
        def list_once(self) -> None:
            return None

    monkeypatch.setattr(audit, "_cluster_view", lambda api, page, annotation: View())
    vmis = []
    for i in range(objects):
        vmi = orjson.loads(orjson.dumps(FRACTIONAL_VMI))
        vmi["metadata"] = {"name": f"v{i}", "namespace": "kube-system" if i % 4 == 0 else f"ns{i % 3}"}
        vmis.append(vmi)
    api = _FakeApi({"VirtualMachineInstance": vmis})
    streamed: list[Any] = []
    run = audit.run_audit(api, load_config(None), None, 50, streamed.append, None, **kw)  # type: ignore[arg-type]
    return run, api, streamed


def test_text_output_streams_findings_and_keeps_only_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    run, _, streamed = _fake_run(monkeypatch, 400, keep=False)
    assert run.found == []  # nothing kept: memory stays flat however many findings there are
    assert len(streamed) == 400 and run.summary.with_findings == 400
    assert run.summary.results["fail"] == 800  # R2 and R3 on each
    run, _, streamed = _fake_run(monkeypatch, 40, keep=True)
    assert len(run.found) == len(streamed) == 40


def test_exclude_namespace_and_selector_go_to_the_api_server(monkeypatch: pytest.MonkeyPatch) -> None:
    run, api, _ = _fake_run(monkeypatch, 40, exclude=["kube-system", "ns1", "kube-system"], selector="app=db")
    assert {c[2] for c in api.calls} == {"metadata.namespace!=kube-system,metadata.namespace!=ns1"}
    assert {c[3] for c in api.calls} == {"app=db"}
    assert run.summary.namespaces == {"ns0", "ns2"}  # (a fake API server that ignores the selector: filtered here)


def test_exclude_of_the_namespace_asked_for_lists_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from webhook.audit import run as audit

    monkeypatch.setattr(
        audit, "_cluster_view", lambda api, page, annotation: type("V", (), {"list_once": lambda self: None})()
    )
    api = _FakeApi({"VirtualMachineInstance": [FRACTIONAL_VMI]})
    run = audit.run_audit(api, load_config(None), "a", 10, None, None, exclude=["a"])  # type: ignore[arg-type]
    assert api.calls == [] and run.summary.objects == 0


def test_audit_cli_takes_exclude_namespace_and_selector(capsys: pytest.CaptureFixture[str]) -> None:
    from webhook.cli import build_parser

    args = build_parser().parse_args(
        ["audit", "--exclude-namespace", "kube-system", "--exclude-namespace", "x", "-l", "app=db"]
    )
    assert (args.exclude_namespace, args.selector) == (["kube-system", "x"], "app=db")
    assert main(["audit", "-l", "app=db", "--report", "--kubeconfig", "/nonexistent"]) == 2
    assert "use --selector without --report" in capsys.readouterr().err


def test_reports_are_not_written_in_excluded_namespaces() -> None:
    from webhook.audit import AuditRun, write_reports

    written: list[str] = []
    api = type("A", (), {"apply": lambda self, res, ns, name, report, manager: written.append(ns)})()
    run = AuditRun()
    run.summary.namespaces = {"a", "kube-system"}
    assert write_reports(api, run, None, {"b", "kube-system"}, 0.0, exclude=["kube-system"]) == ["a", "b"]  # type: ignore[arg-type]
    assert written == ["a", "b"]


def test_text_audit_memory_stays_flat_with_the_number_of_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    """tracemalloc's peak over an audit of 100 and of 1,000 objects with findings (pages of 50 built as they
    are asked for, as the API server sends them): without keeping findings the peak does not grow."""
    import tracemalloc

    from webhook.audit import run as audit

    class View:
        def list_once(self) -> None:
            return None

    class LazyApi(_FakeApi):
        def __init__(self, n: int) -> None:
            super().__init__({})
            self.n = n

        def pages(
            self, kind: Any, namespace: Any, limit: int, field_selector: Any = None, label_selector: Any = None
        ) -> Any:
            if kind.kind != "VirtualMachineInstance":
                return
            for start in range(0, self.n, limit):
                page = []
                for i in range(start, min(start + limit, self.n)):
                    vmi = orjson.loads(orjson.dumps(FRACTIONAL_VMI))
                    vmi["metadata"] = {"name": f"v{i}", "namespace": f"ns{i % 5}"}
                    page.append(vmi)
                yield page

    monkeypatch.setattr(audit, "_cluster_view", lambda api, page, annotation: View())
    config = load_config(None)
    printed = [0]

    def peak(n: int, keep: bool) -> int:
        tracemalloc.start()
        run = audit.run_audit(
            LazyApi(n), config, None, 50, lambda a: printed.__setitem__(0, printed[0] + 1), None, keep=keep
        )  # type: ignore[arg-type]
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert run.summary.with_findings == n
        return top

    small, large = peak(100, keep=False), peak(1000, keep=False)
    assert large < small * 1.3, (small, large)  # flat: ten times the findings, about the same peak
    kept = peak(1000, keep=True)
    assert kept > large * 1.5, (large, kept)  # what -o json / --report keep
