"""Dedicated-CPU rules on VMIs and VM templates (docs/dedicated-cpu.md, docs/rules.md).

Every row of the rule table has a denying and an allowing case, each run on a VMI (paths ``spec.domain...``)
and on a VM template (paths ``spec.template.spec.domain...``). Objects that are allowed are also checked
against KubeVirt's own CRD schema, so the tests never pass on objects a cluster would refuse anyway.
"""

from __future__ import annotations

import copy
import json
import os
import re
from typing import Any

import pytest

from tests.testkit import objects
from tests.testkit.paths import DATA
from tests.testkit.review import assert_crd_valid, make_review
from tests.testkit.server import ServerProcess
from webhook import endpoint, engine
from webhook.config import Config, parse_config
from webhook.rules import cpu
from webhook.rules.base import Context, Findings

DEFAULT = Config()
RULE_ID = re.compile(r"[a-z]+\.[A-Za-z0-9-]+")
MEM = {"requests": {"memory": "1Gi"}, "limits": {"memory": "1Gi"}}


def vmi(spec: dict[str, Any]) -> dict[str, Any]:
    s = copy.deepcopy(spec)
    s.setdefault("domain", {}).setdefault("devices", {})
    return objects.vmi(s, name="testvmi")


def vm(spec: dict[str, Any]) -> dict[str, Any]:
    return objects.vm(vmi(spec)["spec"], name="testvm", template_metadata={}, runStrategy="Always")


def run(obj: dict[str, Any], config: Config = DEFAULT, operation: str = "CREATE") -> Findings:
    ctx = Context(config=config, kind=obj["kind"], operation=operation)  # type: ignore[arg-type]
    if obj["kind"] == "VirtualMachine":
        return cpu.validate_vm(obj, ctx)
    return cpu.validate_vmi(obj, ctx)


def wrap(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return vmi(spec) if kind == "VirtualMachineInstance" else vm(spec)


def prefix(kind: str) -> str:
    return "spec." if kind == "VirtualMachineInstance" else "spec.template.spec."


def got(findings: Findings) -> list[tuple[str, str]]:
    assert findings.bad_request is None, findings.bad_request
    assert all(RULE_ID.fullmatch(c.rule) for c in findings.causes), findings.causes
    return [(c.field, c.type) for c in findings.causes]


def expect(kind: str, causes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Expected causes: relative fields get the kind's prefix; G11 (field "") exists on VMIs only."""
    out = []
    for rel, typ in causes:
        if rel == "":
            if kind == "VirtualMachineInstance":
                out.append(("", typ))
        else:
            out.append((prefix(kind) + rel, typ))
    return out


KINDS = ["VirtualMachineInstance", "VirtualMachine"]
INV, REQ = "FieldValueInvalid", "FieldValueRequired"
DED = "domain.cpu.dedicatedCpuPlacement"
NUMA_PT = "domain.cpu.numa.guestMappingPassthrough"


def dedicated(cpu_: dict[str, Any] | None = None, resources: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "domain": {
            "cpu": {"dedicatedCpuPlacement": True, **(cpu_ or {})},
            "resources": copy.deepcopy(MEM if resources is None else resources),
        }
    }


def shared(cpu_: dict[str, Any] | None = None, resources: dict[str, Any] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"domain": {"resources": copy.deepcopy(MEM if resources is None else resources)}}
    if cpu_ is not None:
        d["domain"]["cpu"] = cpu_
    return d


def hugepages(spec: dict[str, Any], size: str = "2Mi") -> dict[str, Any]:
    spec["domain"]["memory"] = {"hugepages": {"pageSize": size}}
    return spec


NUMA: dict[str, Any] = {"numa": {"guestMappingPassthrough": {}}}

DENIED: list[Any] = [
    pytest.param(
        dedicated({"cores": 2}, {}),
        [("domain.resources.limits.memory", INV), ("", REQ)],
        id="dedicated-without-memory dedicated without any memory",
    ),
    pytest.param(
        dedicated(None, {**MEM, "requests": {"memory": "1Gi", "cpu": "800m"}}),
        [("domain.resources.requests.cpu", INV)],
        id="fractional-cpu-request fractional cpu request",
    ),
    pytest.param(
        dedicated(None, {**MEM, "limits": {"memory": "1Gi", "cpu": "1500m"}}),
        [("domain.resources.requests.cpu", INV), ("domain.resources.limits.cpu", INV)],
        id="fractional-cpu-limit fractional cpu limit (the request defaulted from it is fractional too)",
    ),
    pytest.param(
        dedicated({"cores": 2}, {"requests": {"memory": "1Gi"}, "limits": {"memory": "2Gi"}}),
        [("domain.resources.requests.memory", INV)],
        id="memory-request-not-limit memory request differs from limit",
    ),
    pytest.param(
        dedicated({"cores": 2}, {"requests": {"memory": "1Gi", "cpu": "2"}, "limits": {"memory": "1Gi", "cpu": "4"}}),
        [(DED, INV)],
        id="cpu-request-not-limit cpu request differs from limit",
    ),
    pytest.param(
        dedicated({"cores": 2}, {**MEM, "limits": {"memory": "1Gi", "cpu": "4"}}),
        [(DED, INV)],
        id="cores-and-cpu-disagree cores disagree with cpu limit",
    ),
    pytest.param(
        {"architecture": "arm64", **dedicated({"cores": 1, "threads": 2})},
        [("architecture", INV)],
        id="arm64-threads two threads on arm64",
    ),
    pytest.param(dedicated({"cores": 1, "threads": 3}), [(DED, INV)], id="too-many-threads three threads per core"),
    pytest.param(
        shared({"cores": 2, "isolateEmulatorThread": True}),
        [("domain.cpu.isolateEmulatorThread", INV)],
        id="emulator-thread-without-dedicated isolateEmulatorThread without dedicated cpus",
    ),
    pytest.param(
        hugepages(shared({"cores": 2, **NUMA})),
        [(NUMA_PT, INV)],
        id="numa-without-dedicated numa passthrough without dedicated cpus",
    ),
    pytest.param(
        dedicated({"cores": 2, **NUMA}),
        [(NUMA_PT, INV)],
        id="numa-without-hugepages numa passthrough without hugepages",
    ),
    pytest.param(
        hugepages(shared({"cores": 2, "realtime": {}, **NUMA})),
        [(NUMA_PT, INV), (DED, REQ)],
        id="realtime-without-dedicated realtime without dedicated cpus",
    ),
    pytest.param(
        dedicated({"cores": 2, "realtime": {}}),
        [(NUMA_PT, REQ)],
        id="realtime-without-numa realtime without numa passthrough",
    ),
    pytest.param(
        shared(None, {**MEM, "requests": {"memory": "1Gi", "cpu": "-1"}}),
        [("domain.resources.requests.cpu", INV)],
        id="negative-cpu-request negative cpu request",
    ),
    pytest.param(
        shared(None, {**MEM, "limits": {"memory": "1Gi", "cpu": "-1"}}),
        [("domain.resources.requests.cpu", INV), ("domain.resources.limits.cpu", INV)],
        id="negative-cpu-limit negative cpu limit (and the request defaulted from it)",
    ),
    pytest.param(
        shared(None, {"requests": {"memory": "1Gi", "cpu": "2"}, "limits": {"memory": "1Gi", "cpu": "1"}}),
        [("domain.resources.requests.cpu", INV)],
        id="cpu-request-above-limit cpu request above limit",
    ),
    pytest.param(
        shared(None, {"requests": {"memory": "-1Gi"}}),
        [("domain.resources.requests.memory", INV)],
        id="negative-memory-request negative memory request",
    ),
    pytest.param(
        shared(None, {"requests": {"memory": "512k"}}),
        [("domain.resources.requests.memory", INV)],
        id="memory-request-below-1m memory request below 1M",
    ),
    pytest.param(
        shared(None, {"requests": {"memory": "1Gi"}, "limits": {"memory": "-1Gi"}}),
        [("domain.resources.limits.memory", INV)],
        id="negative-memory-limit negative memory limit",
    ),
    pytest.param(
        shared(None, {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}),
        [("domain.resources.requests.memory", INV)],
        id="memory-request-above-limit memory request above limit",
    ),
    pytest.param(
        hugepages(shared(), "2X"),
        [("domain.memory.hugepages.pageSize", INV)],
        id="bad-hugepage-size unparsable hugepage size",
    ),
    pytest.param(
        hugepages(shared(None, {"requests": {"memory": "1Mi"}}), "1Gi"),
        [("domain.resources.requests.memory", INV)],
        id="memory-below-hugepage memory smaller than one hugepage",
    ),
    pytest.param(
        hugepages(shared(None, {"requests": {"memory": "1025Mi"}}), "2Mi"),
        [("domain.resources.requests.memory", INV)],
        id="memory-not-hugepage-multiple memory not a multiple of the hugepage size",
    ),
    pytest.param(shared(None, {}), [("", REQ)], id="memory-required no memory anywhere (VMI create only)"),
    pytest.param(
        shared({"sockets": 4, "maxSockets": 2}),
        [("domain.cpu.sockets", INV)],
        id="sockets-above-max sockets above maxSockets",
    ),
    pytest.param(
        shared({"maxSockets": 2}, {**MEM, "limits": {"memory": "1Gi", "cpu": "4"}}),
        [("domain.cpu.sockets", INV)],
        id="sockets-above-max sockets derived from the cpu limit above maxSockets",
    ),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("spec", "causes"), DENIED)
def test_rule_denies_with_kubevirt_field_and_type(
    kind: str, spec: dict[str, Any], causes: list[tuple[str, str]], request: pytest.FixtureRequest
) -> None:
    obj = wrap(kind, spec)
    before = copy.deepcopy(obj)
    findings = run(obj)
    assert got(findings) == expect(kind, causes)
    assert all(c.message for c in findings.causes)
    row = request.node.callspec.id.split()[
        0
    ]  # "dedicated-without-memory", ...: the rule the case is about carries its id
    if findings.causes:  # (G11 is VMI-only: a VM template gets no cause)
        assert f"cpu.{row}" in {c.rule for c in findings.causes}, findings.causes
    assert obj == before, "rules must default a copy, never the object"


ALLOWED: list[Any] = [
    pytest.param(
        dedicated({"cores": 2}, {"requests": {"memory": "1Gi"}}),
        id="dedicated-without-memory memory from the request alone",
    ),
    pytest.param(
        dedicated({"cores": 2}, {"limits": {"memory": "1Gi"}}),
        id="dedicated-without-memory memory from the limit alone (guest defaulted from it)",
    ),
    pytest.param(
        {"domain": {"cpu": {"cores": 2, "dedicatedCpuPlacement": True}, "memory": {"guest": "1Gi"}}},
        id="dedicated-without-memory memory from memory.guest",
    ),
    pytest.param(
        dedicated(None, {**MEM, "requests": {"memory": "1Gi", "cpu": "2"}}),
        id="fractional-cpu-request whole cpu request",
    ),
    pytest.param(
        dedicated(None, {**MEM, "limits": {"memory": "1Gi", "cpu": "2000m"}}),
        id="fractional-cpu-limit whole cpu limit written in millicores",
    ),
    pytest.param(
        dedicated({"cores": 2}, {"requests": {"memory": "1024Mi"}, "limits": {"memory": "1Gi"}}),
        id="memory-request-not-limit equal memory in other units",
    ),
    pytest.param(
        dedicated(None, {"requests": {"memory": "1Gi"}}),
        id="dedicated-without-cpu-count no cpu count at all: defaulting gives one socket",
    ),
    pytest.param(
        dedicated(None, {"requests": {"memory": "1Gi", "cpu": "4"}, "limits": {"memory": "1Gi", "cpu": "4"}}),
        id="cpu-request-not-limit cpu request equals limit",
    ),
    pytest.param(
        dedicated({"cores": 4}, {**MEM, "limits": {"memory": "1Gi", "cpu": "4"}}),
        id="cores-and-cpu-disagree cores agree with cpu limit",
    ),
    pytest.param(
        {"architecture": "arm64", **dedicated({"cores": 2, "threads": 1})}, id="arm64-threads one thread on arm64"
    ),
    pytest.param(
        {"architecture": "amd64", **dedicated({"cores": 1, "threads": 2})}, id="arm64-threads two threads on amd64"
    ),
    pytest.param(
        {"architecture": "arm64", **shared({"cores": 1, "threads": 2})},
        id="arm64-threads two threads on arm64 without dedicated cpus",
    ),
    pytest.param(shared({"cores": 1, "threads": 4}), id="too-many-threads four threads without dedicated cpus"),
    pytest.param(dedicated({"cores": 1, "threads": 2}), id="too-many-threads two threads per core"),
    pytest.param(
        dedicated({"cores": 2, "isolateEmulatorThread": True}),
        id="emulator-thread-without-dedicated isolateEmulatorThread with dedicated cpus",
    ),
    pytest.param(
        hugepages(dedicated({"cores": 2, **NUMA})),
        id="numa-without-dedicated numa-without-hugepages numa passthrough with dedicated cpus and hugepages",
    ),
    pytest.param(
        hugepages(dedicated({"cores": 2, "realtime": {"mask": "0"}, **NUMA})),
        id="realtime-without-dedicated realtime-without-numa realtime with dedicated cpus and numa",
    ),
    pytest.param(
        shared(
            {"cores": 2},
            {**MEM, "requests": {"memory": "1Gi", "cpu": "1500m"}, "limits": {"memory": "1Gi", "cpu": "2"}},
        ),
        id="negative-cpu-request cpu-request-above-limit fractional request below limit without dedicated cpus",
    ),
    pytest.param(
        shared(None, {"requests": {"memory": "1M"}}),
        id="negative-memory-request memory-request-below-1m memory request of exactly 1M",
    ),
    pytest.param(
        shared(None, {"requests": {"memory": "1Gi"}, "limits": {"memory": "2Gi"}}),
        id="negative-memory-limit memory-request-above-limit memory request below limit without dedicated cpus",
    ),
    pytest.param(
        hugepages(shared(None, {"requests": {"memory": "1Gi"}}), "2Mi"),
        id="bad-hugepage-size memory-below-hugepage memory-not-hugepage-multiple memory a multiple of the page size",
    ),
    pytest.param(shared(None, {"limits": {"memory": "1Gi"}}), id="memory-required memory from the limit alone"),
    pytest.param(shared({"sockets": 2, "maxSockets": 4}), id="sockets-above-max sockets within maxSockets"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("spec", ALLOWED)
def test_rule_allows_consistent_spec(kind: str, spec: dict[str, Any]) -> None:
    obj = wrap(kind, spec)
    assert_crd_valid(obj)
    assert got(run(obj)) == []


def test_r5_fires_on_an_undefaulted_spec_with_no_cpu_count() -> None:
    # KubeVirt's own unit tests run the validator without defaulting; R5 then asks for a CPU count.
    user, findings = cpu.read_spec({"domain": {"cpu": {"dedicatedCpuPlacement": True}, "resources": MEM}}, ("spec",))
    assert not findings.causes and findings.bad_request is None
    causes = cpu.check_spec(user, vmi_create=True)
    assert [(c.field, c.type) for c in causes] == [("spec.domain.cpu.dedicatedCpuPlacement", INV)]
    assert "cores" in causes[0].message
    assert cpu.check_spec(cpu.apply_kubevirt_defaults(user), vmi_create=True) == []


def test_defaulting_follows_kubevirt_on_a_copy() -> None:
    user, _ = cpu.read_spec(dedicated(None, {"limits": {"cpu": "3", "memory": "2Gi"}}), ("spec",))
    d = cpu.apply_kubevirt_defaults(user)
    assert (d.cores, d.sockets, d.threads) == (1, 3, 1)
    assert d.q(cpu.REQ_CPU) == 3 and d.guest == 2 * 1024**3
    assert (user.cores, user.sockets, user.threads, user.guest) == (0, 0, 0, None)
    assert cpu.REQ_CPU not in user.quantities
    # requests alone also give the sockets; nothing at all gives one socket
    only_req, _ = cpu.read_spec(dedicated(None, {"requests": {"cpu": "2", "memory": "1Gi"}}), ("spec",))
    assert cpu.apply_kubevirt_defaults(only_req).sockets == 2
    nothing, _ = cpu.read_spec({"domain": {}}, ("spec",))
    assert cpu.apply_kubevirt_defaults(nothing).sockets == 1


@pytest.mark.parametrize(
    ("cores", "sockets", "threads", "n"), [(2, 0, 0, 2), (2, 2, 2, 8), (0, 0, 3, 3), (0, 2, 0, 2), (0, 0, 0, 0)]
)
def test_vcpu_count_skips_zero_fields_like_kubevirt(cores: int, sockets: int, threads: int, n: int) -> None:
    assert cpu.vcpus(cores, sockets, threads) == n


def test_all_problems_are_reported_at_once() -> None:
    spec = dedicated(
        {"cores": 2, "threads": 3},
        {"requests": {"memory": "1Gi", "cpu": "1500m"}, "limits": {"memory": "2Gi", "cpu": "4"}},
    )
    fields = [f for f, _ in got(run(vmi(spec)))]
    assert fields == [
        "spec.domain.resources.requests.cpu",  # R2
        "spec.domain.resources.requests.memory",  # R4
        "spec.domain.cpu.dedicatedCpuPlacement",  # R6
        "spec.domain.cpu.dedicatedCpuPlacement",  # R7 (6 vCPUs vs 2 and 4)
        "spec.domain.cpu.dedicatedCpuPlacement",  # R9
    ]


# --- warnings -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_warns_when_cores_and_cpu_resources_agree_on_dedicated_cpus(kind: str) -> None:
    obj = wrap(
        kind,
        dedicated({"cores": 2}, {"requests": {"memory": "1Gi", "cpu": "2"}, "limits": {"memory": "1Gi", "cpu": "2"}}),
    )
    assert_crd_valid(obj)
    findings = run(obj)
    assert got(findings) == []
    assert len(findings.warnings) == 1
    w = findings.warnings[0]
    assert w.startswith(f"{prefix(kind)}domain: ") and "requests.cpu and limits.cpu all give 2 CPUs" in w
    assert "give only the topology" in w


def test_no_duplicate_warning_without_dedicated_cpus_or_without_both() -> None:
    assert run(vmi(shared({"cores": 2}, {**MEM, "limits": {"memory": "1Gi", "cpu": "2"}}))).warnings == []
    assert run(vmi(dedicated({"cores": 2}))).warnings == []
    assert run(vmi(dedicated(None, {**MEM, "limits": {"memory": "1Gi", "cpu": "2"}}))).warnings == []


def test_no_duplicate_warning_when_they_disagree_r7_denies_instead() -> None:
    findings = run(vmi(dedicated({"cores": 2}, {**MEM, "limits": {"memory": "1Gi", "cpu": "4"}})))
    assert findings.warnings == [] and got(findings) == [("spec.domain.cpu.dedicatedCpuPlacement", INV)]


# --- cpuManager.enabled: false ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_cpu_manager_disabled_rejects_dedicated_cpus_saying_how_to_enable(kind: str) -> None:
    off = parse_config({"cpuManager": {"enabled": False}})
    findings = run(wrap(kind, dedicated({"cores": 2})), off)
    assert got(findings) == [(prefix(kind) + DED, INV)]
    msg = findings.causes[0].message
    assert "CPUManager feature gate" in msg and "static" in msg and "cpuManager.enabled: true" in msg
    assert got(run(wrap(kind, shared({"cores": 2})), off)) == []


# --- bad values and bad shapes --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_unparsable_quantity_is_a_cause_on_its_field_and_nothing_is_guessed(kind: str) -> None:
    spec = dedicated({"cores": 2}, {**MEM, "requests": {"memory": "1Gi", "cpu": "two"}})
    findings = run(wrap(kind, spec))
    assert got(findings) == [(prefix(kind) + "domain.resources.requests.cpu", INV)]
    assert "'two' is not a quantity" in findings.causes[0].message
    spec = dedicated(None, {**MEM, "limits": {"memory": "1Gi", "cpu": {}}})
    assert got(run(wrap(kind, spec))) == [(prefix(kind) + "domain.resources.limits.cpu", INV)]
    spec = shared(None, {"requests": {"memory": "1 Gi"}})
    assert got(run(wrap(kind, spec))) == [(prefix(kind) + "domain.resources.requests.memory", INV)]


def test_negative_cores_is_a_cause_on_cores() -> None:
    assert got(run(vmi(dedicated({"cores": -2})))) == [("spec.domain.cpu.cores", INV)]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"domain": {"resources": "x"}}, "spec.domain.resources"),
        ({"domain": {"resources": {"requests": ["cpu"]}}}, "spec.domain.resources.requests"),
        ({"domain": {"cpu": {"cores": "2"}}}, "spec.domain.cpu.cores"),
        ({"domain": {"cpu": {"dedicatedCpuPlacement": "yes"}}}, "spec.domain.cpu.dedicatedCpuPlacement"),
        (
            {"domain": {"cpu": {"numa": {"guestMappingPassthrough": True}}}},
            "spec.domain.cpu.numa.guestMappingPassthrough",
        ),
        ({"domain": {"memory": 5}}, "spec.domain.memory"),
        ({"architecture": 64, "domain": {}}, "spec.architecture"),
        ({"domain": []}, "spec.domain"),
    ],
)
def test_wrong_types_are_a_bad_request_naming_the_field(spec: dict[str, Any], field: str) -> None:
    obj = {"kind": "VirtualMachineInstance", "spec": spec}
    findings = run(obj)
    assert findings.bad_request is not None and findings.bad_request.startswith(field + ":")
    vm_findings = run({"kind": "VirtualMachine", "spec": {"template": {"spec": spec}}})
    assert vm_findings.bad_request is not None
    assert vm_findings.bad_request.startswith(field.replace("spec.", "spec.template.spec.", 1) + ":")


def test_missing_spec_or_template_reads_as_empty_and_wrong_types_are_a_bad_request() -> None:
    assert got(run({"kind": "VirtualMachineInstance"})) == [("", REQ)]  # G11: no memory anywhere
    assert got(run({"kind": "VirtualMachine", "spec": {"runStrategy": "Always"}})) == []
    assert run({"kind": "VirtualMachineInstance", "spec": []}).bad_request == "spec: must be an object, got list"
    assert run({"kind": "VirtualMachine", "spec": {"template": "x"}}).bad_request == (
        "spec.template: must be an object, got string"
    )
    assert run({"kind": "VirtualMachine", "spec": {"template": {"spec": 3}}}).bad_request == (
        "spec.template.spec: must be an object, got number"
    )


def test_vm_being_deleted_is_let_through() -> None:
    obj = vm(dedicated({"cores": 2, "threads": 3}))
    assert not engine.handle(make_review(obj, operation="UPDATE", old=obj)["request"], "validate", DEFAULT).allowed
    obj["metadata"]["deletionTimestamp"] = "2026-11-23T10:00:00Z"
    assert engine.handle(make_review(obj, operation="UPDATE", old=obj)["request"], "validate", DEFAULT).allowed


# --- KubeVirt's upstream examples (VCAT), through the engine as the API server would send them -----------------

UPSTREAM: list[Any] = [
    pytest.param(
        dedicated({"cores": 2}, {**MEM, "limits": {"memory": "1Gi", "cpu": "4"}}), [DED], id="cores vs limits"
    ),
    pytest.param(
        dedicated(
            None, {**MEM, "requests": {"memory": "1Gi", "cpu": "800m"}, "limits": {"memory": "1Gi", "cpu": "800m"}}
        ),
        ["domain.resources.requests.cpu", "domain.resources.limits.cpu"],
        id="800m CPUs",
    ),
    pytest.param(
        dedicated(None, {"requests": {"memory": "1Gi", "cpu": "1"}, "limits": {"memory": "1Gi", "cpu": "2"}}),
        [DED],
        id="cpu requests differ from limits",
    ),
    pytest.param(
        dedicated({"cores": 2}, {"requests": {"memory": "64M"}, "limits": {"memory": "128M"}}),
        ["domain.resources.requests.memory"],
        id="memory requests differ from limits",
    ),
    pytest.param(
        shared({"isolateEmulatorThread": True}), ["domain.cpu.isolateEmulatorThread"], id="isolateEmulatorThread alone"
    ),
    pytest.param(dedicated({"cores": 2, **NUMA}), [NUMA_PT], id="NUMA passthrough without hugepages"),
    pytest.param(hugepages(dedicated({"cores": 2, "realtime": {}})), [NUMA_PT], id="realtime without NUMA"),
    pytest.param(
        {"architecture": "arm64", **dedicated({"cores": 2, "threads": 2})}, ["architecture"], id="threads on arm64"
    ),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("spec", "fields"), UPSTREAM)
def test_kubevirt_upstream_example_is_denied_on_the_documented_field(
    kind: str, spec: dict[str, Any], fields: list[str]
) -> None:
    obj = wrap(kind, spec)
    assert_crd_valid(obj)  # a real cluster would pass it on to admission
    verdict = engine.handle(make_review(obj)["request"], "validate", DEFAULT)
    assert not verdict.allowed and verdict.code == 422 and verdict.reason == "Invalid"
    assert [c.field for c in verdict.causes] == [prefix(kind) + f for f in fields]


# --- the response as the API server reads it ---------------------------------------------------------------------


def many_problems() -> dict[str, Any]:
    spec = dedicated(
        {"cores": 4, "sockets": 2, "maxSockets": 1, "threads": 3, **NUMA},
        {"requests": {"memory": "512k", "cpu": "1500m"}, "limits": {"memory": "256k", "cpu": "500m"}},
    )
    spec["architecture"] = "arm64"
    return vmi(spec)


def test_denial_response_has_422_invalid_causes_and_joined_message() -> None:
    rev = make_review(vmi(dedicated({"cores": 2}, {**MEM, "limits": {"memory": "1Gi", "cpu": "4"}})))
    verdict = engine.handle(rev["request"], "validate", DEFAULT)
    resp = endpoint.response(rev["apiVersion"], rev["request"]["uid"], verdict, allow_patch=False)
    r = resp["response"]
    assert r["uid"] == rev["request"]["uid"] and r["allowed"] is False
    assert "patch" not in r and "patchType" not in r
    status = r["status"]
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert status["details"]["causes"] == [
        {
            "reason": INV,
            "type": INV,
            "field": "spec.domain.cpu.dedicatedCpuPlacement",
            "message": verdict.causes[0].message,
        }
    ]
    assert status["message"] == f"spec.domain.cpu.dedicatedCpuPlacement: {verdict.causes[0].message}"


def test_more_than_ten_causes_are_listed_ten_then_counted() -> None:
    rev = make_review(many_problems())
    verdict = engine.handle(rev["request"], "validate", DEFAULT)
    assert len(verdict.causes) == 12
    r = endpoint.response(rev["apiVersion"], rev["request"]["uid"], verdict, allow_patch=False)["response"]
    assert len(r["status"]["details"]["causes"]) == 10
    assert r["status"]["message"].endswith(", and 2 more")
    assert r["status"]["message"].count(", spec.") == 9


def test_bad_shape_is_a_400_naming_the_field() -> None:
    rev = make_review(
        {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "spec": {"domain": {"resources": "x"}}}
    )
    verdict = engine.handle(rev["request"], "validate", DEFAULT)
    assert (verdict.allowed, verdict.code) == (False, 400)
    assert "spec.domain.resources" in verdict.message


def test_warn_enforcement_admits_with_warnings_and_an_audit_annotation() -> None:
    rev = make_review(vm(dedicated({"cores": 2}, {**MEM, "limits": {"memory": "1Gi", "cpu": "4"}})))
    verdict = engine.handle(rev["request"], "validate", parse_config({"enforcement": "warn"}))
    assert verdict.allowed and not verdict.causes
    assert any(
        w.startswith("would deny: spec.template.spec.domain.cpu.dedicatedCpuPlacement: ") for w in verdict.warnings
    )
    assert "spec.template.spec.domain.cpu.dedicatedCpuPlacement" in verdict.audit["would-deny"]


def test_vmi_update_is_allowed_untouched_but_vm_update_is_validated() -> None:
    bad = dedicated({"cores": 2, "threads": 3})
    v = vmi(bad)
    assert engine.handle(make_review(v, operation="UPDATE", old=v)["request"], "validate", DEFAULT).allowed
    m = vm(bad)
    verdict = engine.handle(make_review(m, operation="UPDATE", old=m)["request"], "validate", DEFAULT)
    assert not verdict.allowed
    assert [c.field for c in verdict.causes] == ["spec.template.spec.domain.cpu.dedicatedCpuPlacement"]


def test_allowed_dedicated_vmi_passes_schema_and_engine() -> None:
    obj = vmi(hugepages(dedicated({"cores": 2, "isolateEmulatorThread": True, **NUMA}), "1Gi"))
    assert_crd_valid(obj)
    verdict = engine.handle(make_review(obj)["request"], "validate", DEFAULT)
    assert verdict.allowed and verdict.code == 200 and not verdict.warnings


# --- over HTTPS, as kube-apiserver calls the validating webhook -------------------------------------------------


def test_https_denial_carries_422_invalid_with_every_cause(https_server: ServerProcess) -> None:
    rev = make_review(many_problems(), api_version="admission.k8s.io/v1beta1")
    reply = https_server.post("/validate", rev)
    assert reply.status_code == 200
    body = reply.json()
    assert (body["apiVersion"], body["kind"]) == ("admission.k8s.io/v1beta1", "AdmissionReview")
    r = body["response"]
    assert r["uid"] == rev["request"]["uid"] and r["allowed"] is False
    assert "patch" not in r and "patchType" not in r
    status = r["status"]
    assert (status["code"], status["reason"]) == (422, "Invalid")
    causes = status["details"]["causes"]
    assert len(causes) == 10 and status["message"].endswith(", and 2 more")
    assert causes[0] == {
        "reason": INV,
        "type": INV,
        "field": "spec.domain.resources.requests.memory",
        "message": "must be at least 1M (got '512k'): a VM needs at least 1M of memory",
    }
    assert status["message"].startswith(f"{causes[0]['field']}: {causes[0]['message']}, {causes[1]['field']}: ")
    assert {c["field"] for c in causes} >= {"spec.architecture", "spec.domain.cpu.dedicatedCpuPlacement"}


def test_https_vm_template_paths_and_consistent_spec_warning(https_server: ServerProcess) -> None:
    bad = vm(dedicated({"cores": 2}, {**MEM, "limits": {"memory": "1Gi", "cpu": "4"}}))
    r = https_server.post("/validate", make_review(bad)).json()["response"]
    assert r["allowed"] is False
    assert [c["field"] for c in r["status"]["details"]["causes"]] == [
        "spec.template.spec.domain.cpu.dedicatedCpuPlacement"
    ]
    good = vm(dedicated({"cores": 2}, {**MEM, "limits": {"memory": "1Gi", "cpu": "2"}}))
    assert_crd_valid(good)
    r = https_server.post("/validate", make_review(good)).json()["response"]
    assert r["allowed"] is True and "status" not in r
    assert [w for w in r["warnings"] if w.startswith("spec.template.spec.domain: cpu topology")]


def _causes(findings: Findings) -> list[tuple[str, str, str]]:
    assert findings.bad_request is None, findings.bad_request
    return [(c.field, c.type, c.rule) for c in findings.causes]


def _res(cpu_req: str | None, cpu_lim: str | None, mem: str = "1Gi") -> dict[str, Any]:
    out: dict[str, Any] = {"requests": {"memory": mem}, "limits": {"memory": mem}}
    if cpu_req is not None:
        out["requests"]["cpu"] = cpu_req
    if cpu_lim is not None:
        out["limits"]["cpu"] = cpu_lim
    return out


def test_cores_true_is_a_bad_request_naming_cores() -> None:
    findings = run(vmi(dedicated({"cores": True})))
    assert findings.bad_request == "spec.domain.cpu.cores: must be an integer, got boolean"
    assert findings.causes == []


def test_explicit_zero_cores_sockets_threads_are_defaulted_like_absent_ones() -> None:
    spec = dedicated({"cores": 0, "sockets": 0, "threads": 0}, _res("2", "2"))
    findings = run(vmi(spec))
    assert _causes(findings) == [] and findings.warnings == []
    findings = run(vmi(dedicated({"cores": 0, "sockets": 0, "threads": 0}, _res("1500m", "1500m"))))
    assert [rule for _, _, rule in _causes(findings)] == ["cpu.fractional-cpu-request", "cpu.fractional-cpu-limit"]


def test_sockets_are_defaulted_from_the_cpu_limit_before_the_request_g12() -> None:
    findings = run(vmi(shared({"maxSockets": 3}, _res("2", "4"))))
    assert _causes(findings) == [("spec.domain.cpu.sockets", "FieldValueInvalid", "cpu.sockets-above-max")]
    assert findings.causes[0].message == (
        "4 sockets (derived from the CPU request/limit) is more than maxSockets 3: "
        "lower the sockets or raise spec.domain.cpu.maxSockets"
    )
    findings = run(vmi(shared({"maxSockets": 3}, _res("4", None))))
    assert [rule for _, _, rule in _causes(findings)] == ["cpu.sockets-above-max"]


def test_sockets_equal_to_max_sockets_are_admitted() -> None:
    assert _causes(run(vmi(shared({"maxSockets": 4}, _res("2", "4"))))) == []
    assert _causes(run(vmi(shared({"sockets": 4, "maxSockets": 4})))) == []
    findings = run(vmi(shared({"sockets": 5, "maxSockets": 4})))
    assert findings.causes[0].message.startswith("5 sockets is more than maxSockets 4")


def test_hugepages_check_the_memory_request_not_the_guest_memory() -> None:
    spec = shared(None, {"requests": {"memory": "3Mi"}})
    spec["domain"]["memory"] = {"guest": "4Mi", "hugepages": {"pageSize": "2Mi"}}
    findings = run(vmi(spec))
    assert _causes(findings) == [
        ("spec.domain.resources.requests.memory", "FieldValueInvalid", "cpu.memory-not-hugepage-multiple")
    ]
    assert "(spec.domain.resources.requests.memory = 3145728 bytes)" in findings.causes[0].message
    spec = shared(None, {"requests": {"memory": "4Mi"}})
    spec["domain"]["memory"] = {"guest": "3Mi", "hugepages": {"pageSize": "2Mi"}}
    assert _causes(run(vmi(spec))) == []
    spec = shared(None, {})
    spec["domain"]["memory"] = {"guest": "3Mi", "hugepages": {"pageSize": "2Mi"}}
    findings = run(vmi(spec))
    assert [rule for _, _, rule in _causes(findings)] == ["cpu.memory-not-hugepage-multiple"]
    assert "(spec.domain.memory.guest = 3145728 bytes)" in findings.causes[0].message
    spec = shared(None, {"requests": {"memory": "1Mi"}})
    spec["domain"]["memory"] = {"guest": "4Mi", "hugepages": {"pageSize": "2Mi"}}
    assert [rule for _, _, rule in _causes(run(vmi(spec)))] == ["cpu.memory-below-hugepage"]


def test_guest_memory_zero_on_a_dedicated_vmi_needs_fixed_memory_r1() -> None:
    spec = dedicated({"cores": 2}, {})
    spec["domain"]["memory"] = {"guest": "0"}
    findings = run(vmi(spec))
    assert _causes(findings) == [
        ("spec.domain.resources.limits.memory", "FieldValueInvalid", "cpu.dedicated-without-memory")
    ]
    spec["domain"]["memory"] = {"guest": "1Gi"}
    assert _causes(run(vmi(spec))) == []


def test_no_duplicate_warning_when_only_one_of_request_and_limit_matches_the_cores() -> None:
    findings = run(vmi(dedicated({"cores": 2}, _res("2", "3"))))
    assert [rule for _, _, rule in _causes(findings)] == ["cpu.cpu-request-not-limit"]
    assert findings.warnings == []
    findings = run(vmi(dedicated({"cores": 2}, _res("3", "2"))))
    assert findings.warnings == []
    findings = run(vmi(dedicated({"cores": 2}, _res("2", None))))
    assert findings.warnings == [
        "spec.domain: cpu topology and resources.requests.cpu all give 2 CPUs; they agree, but give only the "
        "topology, as KubeVirt's dedicated CPU resources page advises"
    ]
    findings = run(vmi(dedicated({"cores": 2}, _res("2", "2"))))
    assert findings.warnings[0].startswith("spec.domain: cpu topology and resources.requests.cpu and limits.cpu all")


PINNING_MESSAGES = [
    pytest.param({'domain': {'cpu': {'dedicatedCpuPlacement': True, 'cores': 2}, 'resources': {}}}, [('domain.resources.limits.memory', 'cpu.dedicated-without-memory', 'dedicated CPUs need a fixed amount of memory: set {P}domain.resources.limits.memory (or {P}domain.resources.requests.memory, {P}domain.memory.guest or {P}domain.memory.hugepages)')], id='R1'),  # noqa: E501
    pytest.param({'domain': {'cpu': {'dedicatedCpuPlacement': True}, 'resources': {'requests': {'cpu': '1500m', 'memory': '1Gi'}, 'limits': {'cpu': '1500m', 'memory': '1Gi'}}}}, [('domain.resources.requests.cpu', 'cpu.fractional-cpu-request', "CPU request '1500m' is not a whole number of CPUs: with dedicated CPUs every vCPU gets a whole host CPU, so use a whole number such as 1 or 2"), ('domain.resources.limits.cpu', 'cpu.fractional-cpu-limit', "CPU limit '1500m' is not a whole number of CPUs: with dedicated CPUs every vCPU gets a whole host CPU, so use a whole number such as 1 or 2")], id='R2R3'),  # noqa: E501
    pytest.param({'domain': {'cpu': {'dedicatedCpuPlacement': True}, 'resources': {'requests': {'memory': '1Gi'}, 'limits': {'cpu': '1500m', 'memory': '1Gi'}}}}, [('domain.resources.requests.cpu', 'cpu.fractional-cpu-request', "CPU request '1500m' (taken from {P}domain.resources.limits.cpu) is not a whole number of CPUs: with dedicated CPUs every vCPU gets a whole host CPU, so use a whole number such as 1 or 2"), ('domain.resources.limits.cpu', 'cpu.fractional-cpu-limit', "CPU limit '1500m' is not a whole number of CPUs: with dedicated CPUs every vCPU gets a whole host CPU, so use a whole number such as 1 or 2")], id='R2derived'),  # noqa: E501
    pytest.param({'domain': {'cpu': {'dedicatedCpuPlacement': True, 'cores': 2}, 'resources': {'requests': {'memory': '1Gi'}, 'limits': {'memory': '2Gi'}}}}, [('domain.resources.requests.memory', 'cpu.memory-request-not-limit', "must equal {P}domain.resources.limits.memory with dedicated CPUs (got '1Gi' and '2Gi'): set both to the same value")], id='R4'),  # noqa: E501
    pytest.param({'domain': {'cpu': {'dedicatedCpuPlacement': True, 'cores': 2}, 'resources': {'requests': {'cpu': '2', 'memory': '1Gi'}, 'limits': {'cpu': '3', 'memory': '1Gi'}}}}, [('domain.cpu.dedicatedCpuPlacement', 'cpu.cpu-request-not-limit', "{P}domain.resources.requests.cpu ('2') and {P}domain.resources.limits.cpu ('3') must be equal with dedicated CPUs: set both to the same whole number, or give only cores")], id='R6'),  # noqa: E501
    pytest.param({'domain': {'cpu': {'dedicatedCpuPlacement': True, 'cores': 2}, 'resources': {'requests': {'cpu': '3', 'memory': '1Gi'}, 'limits': {'cpu': '3', 'memory': '1Gi'}}}}, [('domain.cpu.dedicatedCpuPlacement', 'cpu.cores-and-cpu-disagree', "the CPU topology (cores x sockets x threads) gives 2 vCPUs but {P}domain.resources.requests.cpu '3' and {P}domain.resources.limits.cpu '3' say otherwise: with dedicated CPUs give only {P}domain.cpu.cores (KubeVirt sets the CPU request and limit from it) or make them equal to 2")], id='R7'),  # noqa: E501
    pytest.param({'domain': {'cpu': {'dedicatedCpuPlacement': True, 'cores': 2}, 'resources': {'requests': {'cpu': '3', 'memory': '1Gi'}, 'limits': {'memory': '1Gi'}}}}, [('domain.cpu.dedicatedCpuPlacement', 'cpu.cores-and-cpu-disagree', "the CPU topology (cores x sockets x threads) gives 2 vCPUs but {P}domain.resources.requests.cpu '3' say otherwise: with dedicated CPUs give only {P}domain.cpu.cores (KubeVirt sets the CPU request and limit from it) or make them equal to 2")], id='R7req'),  # noqa: E501
    pytest.param({'domain': {'cpu': {'dedicatedCpuPlacement': True, 'cores': 1, 'threads': 2}, 'resources': {'requests': {'memory': '1Gi'}, 'limits': {'memory': '1Gi'}}}, 'architecture': 'arm64'}, [('architecture', 'cpu.arm64-threads', '{P}domain.cpu.threads is 2 but dedicated CPUs on arm64 support 1 thread per core: set threads to 1 and use more cores')], id='R8'),  # noqa: E501
    pytest.param({'domain': {'cpu': {'dedicatedCpuPlacement': True, 'cores': 1, 'threads': 3}, 'resources': {'requests': {'memory': '1Gi'}, 'limits': {'memory': '1Gi'}}}}, [('domain.cpu.dedicatedCpuPlacement', 'cpu.too-many-threads', '{P}domain.cpu.threads is 3 but dedicated CPUs allow at most 2 threads per core: use more cores instead')], id='R9'),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("spec", "expected"), PINNING_MESSAGES)
def test_pinning_causes_say_what_to_change(
    kind: str, spec: dict[str, Any], expected: list[tuple[str, str, str]]
) -> None:
    p = prefix(kind)
    found = [(c.field, c.rule, c.message) for c in run(wrap(kind, spec)).causes if c.rule != "cpu.memory-required"]
    assert found == [(p + field, rule, message.replace("{P}", p)) for field, rule, message in expected]


def test_memory_causes_quote_the_value_as_written() -> None:
    findings = run(vmi(shared(None, {"requests": {"memory": -1}, "limits": {"memory": "-1Gi"}})))
    assert [(c.field, c.rule, c.message) for c in findings.causes] == [
        ("spec.domain.resources.requests.memory", "cpu.negative-memory-request", "must not be negative (got '-1')"),
        ("spec.domain.resources.limits.memory", "cpu.negative-memory-limit", "must not be negative (got '-1Gi')"),
    ]
    findings = run(vmi(shared(None, {"requests": {"memory": "500m"}})))
    assert [(c.rule, c.message) for c in findings.causes] == [
        ("cpu.memory-request-below-1m", "must be at least 1M (got '500m'): a VM needs at least 1M of memory")
    ]
    findings = run(vmi(shared(None, {"requests": {"memory": "2Gi"}, "limits": {"memory": 1073741824}})))
    assert [(c.rule, c.message) for c in findings.causes] == [
        (
            "cpu.memory-request-above-limit",
            "'2Gi' is greater than spec.domain.resources.limits.memory '1073741824': lower the request or raise "
            "the limit",
        )
    ]


def test_cpu_manager_disabled_message_says_how_to_enable_it() -> None:
    findings = run(vmi(dedicated({"cores": 2})), config=parse_config({"cpuManager": {"enabled": False}}))
    assert [(c.field, c.rule, c.message) for c in findings.causes] == [
        (
            "spec.domain.cpu.dedicatedCpuPlacement",
            "cpu.cpu-manager-off",
            "dedicated CPUs are turned off on this cluster (cpuManager.enabled: false), so this VM would stay "
            "Pending: to use dedicated CPUs enable KubeVirt's CPUManager feature gate, run the kubelet with the "
            "static CPU manager policy (cpuManagerPolicy: static) on the nodes, then set cpuManager.enabled: true "
            "in the vm-admission config; or remove dedicatedCpuPlacement",
        )
    ]


def test_duplicate_warning_counts_sockets_and_threads_and_one_cpu() -> None:
    spec = dedicated({"cores": 1, "sockets": 2, "threads": 2}, _res("4", None))
    assert run(vmi(spec)).warnings == [
        "spec.domain: cpu topology and resources.requests.cpu all give 4 CPUs; they agree, but give only the "
        "topology, as KubeVirt's dedicated CPU resources page advises"
    ]
    assert (
        run(vmi(dedicated({"cores": 1}, _res("1", None))))
        .warnings[0]
        .startswith("spec.domain: cpu topology and resources.requests.cpu all give 1 CPUs")
    )


def test_a_vm_spec_that_is_not_a_map_is_a_bad_request() -> None:
    assert run({**vm({}), "spec": "x"}).bad_request == "spec: must be an object, got string"


def _hugepages_vmi(resources: dict[str, Any], memory: dict[str, Any]) -> dict[str, Any]:
    spec = shared(None, resources)
    spec["domain"]["memory"] = {**memory, "hugepages": {"pageSize": "2Mi"}}
    return vmi(spec)


def _all(findings: Findings) -> list[tuple[str, str, str]]:
    return [(c.field, c.rule, c.message) for c in findings.causes]


REQ_MEM_F = "spec.domain.resources.requests.memory"
NOT_Q = "is not a quantity: use a number with an optional suffix, e.g. 2, 500m, 4Gi"


def test_hugepage_rules_wait_for_readable_memory() -> None:
    assert _all(run(_hugepages_vmi({"requests": {"memory": "3Mi"}}, {"guest": "lots"}))) == [
        ("spec.domain.memory.guest", "cpu.bad-quantity", f"'lots' {NOT_Q}")
    ]
    assert _all(run(_hugepages_vmi({"requests": {"memory": "lots"}}, {"guest": "3Mi"}))) == [
        (REQ_MEM_F, "cpu.bad-quantity", f"'lots' {NOT_Q}")
    ]


def test_hugepage_messages_name_the_memory_they_measured() -> None:
    page = "the hugepage size spec.domain.memory.hugepages.pageSize '2Mi'"
    assert _all(run(_hugepages_vmi({"requests": {"memory": "3Mi"}}, {}))) == [
        (REQ_MEM_F, "cpu.memory-not-hugepage-multiple",
         f"the VM's memory ({REQ_MEM_F} = 3145728 bytes) is not a multiple of {page}: "
         "round it to a whole number of pages"),
    ]  # fmt: skip
    assert _all(run(_hugepages_vmi({"limits": {"memory": "3Mi"}}, {"guest": "0"}))) == [
        (REQ_MEM_F, "cpu.memory-not-hugepage-multiple",
         "the VM's memory (spec.domain.resources.limits.memory = 3145728 bytes) is not a multiple of "
         f"{page}: round it to a whole number of pages"),
    ]  # fmt: skip
    assert _all(run(_hugepages_vmi({"requests": {"memory": "1"}}, {}))) == [
        (REQ_MEM_F, "cpu.memory-request-below-1m", "must be at least 1M (got '1'): a VM needs at least 1M of memory"),
        (REQ_MEM_F, "cpu.memory-below-hugepage",
         f"the VM's memory ({REQ_MEM_F} = 1 bytes) is smaller than {page}: give it at least one page"),
    ]  # fmt: skip


def test_cpu_quantity_causes_quote_the_value_as_written() -> None:
    findings = run(
        vmi(shared(None, {"requests": {"cpu": "-1", "memory": "1Gi"}, "limits": {"cpu": -2, "memory": "1Gi"}}))
    )
    assert _all(findings) == [
        ("spec.domain.resources.requests.cpu", "cpu.negative-cpu-request", "must not be negative (got '-1')"),
        ("spec.domain.resources.limits.cpu", "cpu.negative-cpu-limit", "must not be negative (got '-2')"),
    ]
    findings = run(
        vmi(shared(None, {"requests": {"cpu": "3", "memory": "1Gi"}, "limits": {"cpu": 2, "memory": "1Gi"}}))
    )
    assert _all(findings) == [
        (
            "spec.domain.resources.requests.cpu",
            "cpu.cpu-request-above-limit",
            "'3' is greater than spec.domain.resources.limits.cpu '2': lower the request or raise the limit",
        )
    ]


# --- every message as a user sees it (tests/data/cpu-messages.json) ---------------------------------------
# The causes and bad requests of the rule tables above, word for word: a changed message shows up here. After
# a deliberate change, regenerate with VM_ADMISSION_UPDATE_SNAPSHOTS=1 and review the diff.

MESSAGES = DATA / "cpu-messages.json"

EVERY_WRONG_TYPE: dict[str, Any] = {
    "architecture": 64,
    "domain": {
        "cpu": {
            "dedicatedCpuPlacement": "yes",
            "isolateEmulatorThread": "no",
            "cores": "2",
            "sockets": 1.5,
            "threads": True,
            "maxSockets": "4",
            "realtime": 1,
            "numa": {"guestMappingPassthrough": True},
        },
        "ioThreadsPolicy": 3,
        "ioThreads": {"supplementalPoolThreadCount": "2"},
        "launchSecurity": "sev",
        "resources": {"requests": ["cpu"], "limits": 3},
        "memory": {"hugepages": "2Mi"},
    },
}
EVERY_BAD_VALUE: dict[str, Any] = {
    "domain": {
        "cpu": {"cores": -1, "sockets": -2, "threads": -3, "maxSockets": -4},
        "ioThreads": {"supplementalPoolThreadCount": -5},
        "resources": {"requests": {"cpu": "x", "memory": "y"}, "limits": {"cpu": [], "memory": {}}},
        "memory": {"guest": "g", "maxGuest": "m", "hugepages": {"pageSize": "0"}},
    }
}


def _message_cases() -> dict[str, Any]:
    cases: dict[str, Any] = {}
    for table in (DENIED, PINNING_MESSAGES):
        for param in table:
            cases[param.id] = param.values[0]
    cases["every wrong type"] = EVERY_WRONG_TYPE
    cases["every bad value"] = EVERY_BAD_VALUE
    cases["page size absent"] = {"domain": {"memory": {"hugepages": {}}, "resources": MEM}}
    cases["page size not a quantity"] = {"domain": {"memory": {"hugepages": {"pageSize": "big"}}, "resources": MEM}}
    cases["supplementalPool without a count"] = {"domain": {"ioThreadsPolicy": "supplementalPool", "resources": MEM}}
    cases["supplementalPool with count 0"] = {
        "domain": {
            "ioThreadsPolicy": "supplementalPool",
            "ioThreads": {"supplementalPoolThreadCount": 0},
            "resources": MEM,
        }
    }
    cases["unknown ioThreadsPolicy"] = {"domain": {"ioThreadsPolicy": "lots", "resources": MEM}}
    cases["cpu limit unreadable, request from it"] = dedicated(
        {"cores": 2}, {**MEM, "limits": {"cpu": "x", "memory": "1Gi"}}
    )
    cases["memory request unreadable"] = dedicated({"cores": 2}, {"requests": {"memory": "y"}})
    cases["guest memory unreadable"] = {"domain": {"memory": {"guest": "g"}}}
    cases["memory request above a 1-byte limit"] = shared(
        None, {"requests": {"memory": "2"}, "limits": {"memory": "1"}}
    )
    cases["cpu request unreadable beside a limit"] = dedicated(
        {"cores": 2}, {**MEM, "requests": {"cpu": "x", "memory": "1Gi"}, "limits": {"cpu": "3", "memory": "1Gi"}}
    )
    return cases


def _messages() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in _message_cases().items():
        for kind in KINDS:
            findings = run(wrap(kind, spec))
            out[f"{kind}: {name}"] = {
                "bad_request": findings.bad_request,
                "causes": [[c.field, c.type, c.rule, c.message] for c in findings.causes],
                "warnings": findings.warnings,
            }
    return out


def test_every_cpu_message_is_as_recorded() -> None:
    found = _messages()
    if os.environ.get("VM_ADMISSION_UPDATE_SNAPSHOTS") == "1":
        MESSAGES.write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    recorded = json.loads(MESSAGES.read_text(encoding="utf-8"))
    assert found.keys() == recorded.keys()
    for key in found:
        assert found[key] == recorded[key], key
