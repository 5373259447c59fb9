"""hostDevices / gpus: deviceName xor a DRA claim request, and resourceClaims (docs/passthrough.md).

Through the engine on a VMI (paths under ``spec``) and a VM (``spec.template.spec``, CREATE and UPDATE). One
deliberate difference: KubeVirt puts the neither/both cause on the list (``spec.domain.devices.gpus``), we
put it on the entry (``...gpus[1]``), as docs/passthrough.md says.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.testkit.paths import EXAMPLES
from tests.testkit.review import apply_response, assert_crd_valid, make_review
from webhook import endpoint, engine
from webhook.config import Config
from webhook.engine import Verdict

ROOTS = {"VirtualMachineInstance": "spec", "VirtualMachine": "spec.template.spec"}
CASES = [("VirtualMachineInstance", "CREATE"), ("VirtualMachine", "CREATE"), ("VirtualMachine", "UPDATE")]
T4 = "nvidia.com/TU104GL_Tesla_T4"
CLAIMS = [{"name": "gpu-claim", "resourceClaimTemplateName": "single-gpu"}]


def dra(name: str, claim: str = "gpu-claim", request: str = "gpu") -> dict[str, Any]:
    return {"name": name, "claimName": claim, "requestName": request}


def plugin(name: str, device: str = T4) -> dict[str, Any]:
    return {"name": name, "deviceName": device}


def make(
    kind: str, gpus: list[Any] | None = None, host: list[Any] | None = None, claims: list[Any] | None = None
) -> dict[str, Any]:
    devs: dict[str, Any] = {}
    if gpus is not None:
        devs["gpus"] = copy.deepcopy(gpus)
    if host is not None:
        devs["hostDevices"] = copy.deepcopy(host)
    spec: dict[str, Any] = {"domain": {"resources": {"requests": {"memory": "1Gi"}}, "devices": devs}}
    if claims is not None:
        spec["resourceClaims"] = copy.deepcopy(claims)
    meta = {"name": "gpu-vm", "namespace": "ml"}
    if kind == "VirtualMachineInstance":
        return {"apiVersion": "kubevirt.io/v1", "kind": kind, "metadata": meta, "spec": spec}
    return {"apiVersion": "kubevirt.io/v1", "kind": kind, "metadata": meta, "spec": {"template": {"spec": spec}}}


def validate(obj: dict[str, Any], operation: str = "CREATE") -> Verdict:
    old = obj if operation == "UPDATE" else None
    return engine.handle(make_review(obj, operation=operation, old=old)["request"], "validate", Config())


def causes(verdict: Verdict) -> list[tuple[str, str, str]]:
    return [(c.field, c.type, c.rule) for c in verdict.causes]


@pytest.mark.parametrize(("kind", "operation"), CASES)
@pytest.mark.parametrize("key", ["gpus", "hostDevices"])
def test_an_entry_with_neither_device_name_nor_claim_is_required_on_the_entry(
    kind: str, operation: str, key: str
) -> None:
    entries = [plugin("ok"), {"name": "nothing"}]
    obj = make(kind, gpus=entries if key == "gpus" else None, host=entries if key == "hostDevices" else None)
    verdict = validate(obj, operation)
    assert not verdict.allowed and verdict.code == 422
    assert causes(verdict) == [
        (f"{ROOTS[kind]}.domain.devices.{key}[1]", "FieldValueRequired", "devices.name-or-claim-required")
    ]
    assert '"nothing" names no device' in verdict.causes[0].message
    assert "deviceName" in verdict.causes[0].message and "claimName" in verdict.causes[0].message


@pytest.mark.parametrize(("kind", "operation"), CASES)
@pytest.mark.parametrize("key", ["gpus", "hostDevices"])
def test_an_entry_with_both_device_name_and_claim_is_invalid_on_the_entry(kind: str, operation: str, key: str) -> None:
    entries = [plugin("ok"), {**plugin("both"), "claimName": "gpu-claim", "requestName": "gpu"}]
    obj = make(kind, gpus=entries if key == "gpus" else None, host=entries if key == "hostDevices" else None)
    verdict = validate(obj, operation)
    assert causes(verdict) == [
        (f"{ROOTS[kind]}.domain.devices.{key}[1]", "FieldValueInvalid", "devices.name-or-claim-required")
    ]
    assert "both deviceName" in verdict.causes[0].message


@pytest.mark.parametrize(("kind", "operation"), CASES)
def test_dra_entries_are_valid_without_a_device_name(kind: str, operation: str) -> None:
    obj = make(kind, gpus=[dra("g1"), dra("g2", request="gpu2")], host=[plugin("nic", "intel.com/qat")], claims=CLAIMS)
    verdict = validate(obj, operation)
    assert verdict.allowed and not verdict.causes
    assert_crd_valid(obj)


@pytest.mark.parametrize(("kind", "operation"), CASES)
def test_gpus_may_not_mix_dra_and_device_plugin_entries(kind: str, operation: str) -> None:
    obj = make(kind, gpus=[plugin("a"), dra("b"), {"name": "empty"}], claims=CLAIMS)
    verdict = validate(obj, operation)
    # one cause on the list, and the other GPU checks are skipped (the empty entry is not reported)
    assert causes(verdict) == [
        (f"{ROOTS[kind]}.domain.devices.gpus", "FieldValueInvalid", "devices.dra-mixed-with-device-plugin")
    ]
    assert "mix DRA" in verdict.causes[0].message


def test_host_devices_may_mix_dra_and_device_plugin_entries() -> None:
    verdict = validate(make("VirtualMachine", host=[plugin("a", "intel.com/qat"), dra("b")], claims=CLAIMS))
    assert verdict.allowed


def test_an_empty_gpu_beside_a_dra_gpu_is_the_mixing_error() -> None:
    # KubeVirt counts an empty entry as non-DRA, so this is "mixed", not "without deviceName"
    verdict = validate(make("VirtualMachineInstance", gpus=[{"name": "e"}, dra("b")], claims=CLAIMS))
    assert [c.rule for c in verdict.causes] == ["devices.dra-mixed-with-device-plugin"]


@pytest.mark.parametrize(("kind", "operation"), CASES)
def test_a_claim_name_must_be_listed_in_resource_claims(kind: str, operation: str) -> None:
    obj = make(kind, gpus=[dra("g1", claim="other")], claims=CLAIMS)
    verdict = validate(obj, operation)
    assert causes(verdict) == [(f"{ROOTS[kind]}.resourceClaims", "FieldValueInvalid", "devices.claim-not-listed")]
    assert "'other'" in verdict.causes[0].message and "gpus[0]" in verdict.causes[0].message


@pytest.mark.parametrize(
    ("claim", "ctype", "word"),
    [
        ({"name": "gpu-claim"}, "FieldValueRequired", "sets neither"),
        ({"name": "gpu-claim", "resourceClaimName": "a", "resourceClaimTemplateName": "b"}, "FieldValueInvalid",
         "sets both"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("kind", ROOTS)
def test_each_resource_claim_names_exactly_one_source(kind: str, claim: dict[str, Any], ctype: str, word: str) -> None:
    verdict = validate(make(kind, gpus=[dra("g1")], claims=[claim]))
    assert causes(verdict) == [(f"{ROOTS[kind]}.resourceClaims[0]", ctype, "devices.bad-resource-claim")]
    assert word in verdict.causes[0].message


def test_resource_claim_names_are_unique_dns_labels() -> None:
    claims = [*CLAIMS, {**CLAIMS[0]}, {"name": "Bad_Name", "resourceClaimName": "x"}]
    verdict = validate(make("VirtualMachineInstance", gpus=[dra("g1")], claims=claims))
    assert causes(verdict) == [
        ("spec.resourceClaims[1].name", "FieldValueDuplicate", "devices.bad-resource-claim"),
        ("spec.resourceClaims[2].name", "FieldValueInvalid", "devices.bad-resource-claim"),
    ]


def test_a_dra_entry_needs_claim_and_request_names_and_no_pair_twice() -> None:
    gpus = [{"name": "g0", "claimName": "gpu-claim"}, dra("g1"), dra("g2")]
    verdict = validate(make("VirtualMachineInstance", gpus=gpus, claims=CLAIMS))
    assert causes(verdict) == [
        ("spec.domain.devices.gpus[0].requestName", "FieldValueRequired", "devices.bad-claim-request"),
        ("spec.domain.devices.gpus[2]", "FieldValueDuplicate", "devices.bad-claim-request"),
    ]


def test_dra_entries_are_never_counted_as_extended_resources() -> None:
    from webhook.rules import preflight
    from webhook.rules.base import Context

    obj = make("VirtualMachineInstance", gpus=[dra("g1")], host=[plugin("a"), plugin("b"), dra("c")])
    demand = preflight.vmi_demand(obj, obj["spec"], ("spec",), Context(Config(), "VirtualMachineInstance"), "it")
    assert demand is not None and demand.devices == {T4: 2}


def test_dra_entries_are_not_translated_and_pass_permitted_only() -> None:
    obj = make("VirtualMachineInstance", gpus=[dra("g1")], claims=CLAIMS)
    obj["metadata"]["annotations"] = {"vm-admission.io/passthrough": "10de:1eb8"}
    config = Config.model_validate(
        {"passthrough": {"permittedOnly": True, "permittedDevices": [{"selector": "10de:1eb8", "resourceName": T4}]}}
    )
    request = make_review(obj)["request"]
    mutated = engine.handle(request, "mutate", config)
    out = apply_response(obj, endpoint.response("admission.k8s.io/v1", "u", mutated, allow_patch=True))
    assert out["spec"]["domain"]["devices"]["gpus"] == [dra("g1")]  # untouched
    assert out["spec"]["domain"]["devices"]["hostDevices"] == [{"name": "pt-10de-1eb8-0", "deviceName": T4}]
    verdict = engine.handle(make_review(out)["request"], "validate", config)
    assert verdict.allowed, verdict.causes


def test_wrong_types_are_a_bad_request_naming_the_field() -> None:
    obj = make("VirtualMachineInstance", gpus=[{"name": "g", "deviceName": 7}])
    verdict = validate(obj)
    assert (verdict.allowed, verdict.code) == (False, 400)
    assert "spec.domain.devices.gpus[0].deviceName: must be a string" in verdict.message


NEW_EXAMPLES = [
    "cpu/vm-memory-hotplug.yaml",
    "cpu/vm-memory-hotplug-bad.yaml",
    "cpu/vmi-iothreads-supplemental-pool.yaml",
    "network/vm-slirp-only.yaml",
    "passthrough/vmi-dra-gpu.yaml",
    "passthrough/bad-device-entries.yaml",
]


@pytest.mark.parametrize("name", NEW_EXAMPLES)
def test_fidelity_examples_are_valid_kubevirt_objects(name: str) -> None:
    # the denials come from KubeVirt's admission rules, not from its schema: the CRDs accept every one
    path = EXAMPLES / name
    assert_crd_valid(yaml.safe_load(path.read_text(encoding="utf-8")))
