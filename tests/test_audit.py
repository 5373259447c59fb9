"""``vm-admission audit`` without a cluster: findings from verdicts, the PolicyReport shape against the vendored
CRD's schema, rendering, progress. The audit against a real API server is tests/e2e/test_audit.py."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml

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
    request = {"uid": "u", "kind": {"group": "kubevirt.io", "version": "v1", "kind": "VirtualMachineInstance"},
               "operation": "CREATE", "namespace": "ns", "object": vmi}  # fmt: skip
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
    assert bad.result == "error" and bad.rule == "object.unreadable"


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
            (Finding("cpu.R2", "fail", "spec.domain.resources.requests.cpu", "must be whole"),
             Finding("preflight.K1", "warn", "spec.domain.cpu.dedicatedCpuPlacement", "no node"),
             Finding("object.unreadable", "error", "", "spec: must be an object")),
        )
    ]  # fmt: skip


def test_policy_report_validates_against_the_crd_schema_and_counts_its_results() -> None:
    crd = yaml.safe_load((REPO / "manifests" / "crds" / "policyreport-crd.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    report = policy_report("ns", _found(), 1_700_000_000.5)
    jsonschema.validate(report, schema)
    assert report["metadata"] == {"name": "vm-admission", "namespace": "ns",
                                  "labels": {"app.kubernetes.io/managed-by": "vm-admission"}}  # fmt: skip
    assert report["summary"] == {"pass": 0, "fail": 1, "warn": 1, "error": 1, "skip": 0}
    first = report["results"][0]
    assert first["policy"] == first["source"] == "vm-admission" and first["rule"] == "cpu.R2"
    assert first["properties"] == {"field": "spec.domain.resources.requests.cpu"}
    assert first["resources"] == [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                                   "namespace": "ns", "name": "db", "uid": "1234"}]  # fmt: skip
    assert first["timestamp"] == {"seconds": 1_700_000_000, "nanos": 0} and first["scored"] is True
    assert report["results"][1]["scored"] is False and "properties" not in report["results"][2]
    empty = policy_report("clean", [], 0)
    jsonschema.validate(empty, schema)
    assert empty["results"] == [] and set(empty["summary"].values()) == {0}


def test_a_huge_report_keeps_the_failures_first_and_says_how_many_it_left_out() -> None:
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
    assert err.startswith("cannot list pods in namespace x: the API server is unreachable: ") and "\n" not in err
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
