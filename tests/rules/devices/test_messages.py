"""What each host-device, GPU and resource-claim problem tells the user: field, cause type, rule id and message,
all at once (webhook.rules.devices.check on a VMI spec; a VM template's paths are the same under
spec.template.spec)."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.rules import devices
from webhook.rules.fields import VM_ROOT, VMI_ROOT

NAME_OR_CLAIM = "devices.name-or-claim-required"
MIXED = "devices.dra-mixed-with-device-plugin"
CLAIM_REQUEST = "devices.bad-claim-request"
RESOURCE_CLAIM = "devices.bad-resource-claim"
NOT_LISTED = "devices.claim-not-listed"
REQ, INV, DUP = "FieldValueRequired", "FieldValueInvalid", "FieldValueDuplicate"
DNS = "must be a DNS label (lower-case letters, digits and '-', at most 63 characters)"
EXACTLY_ONE = "of resourceClaimName and resourceClaimTemplateName: set exactly one"


def devs(**lists: Any) -> dict[str, Any]:
    return {"domain": {"devices": lists}}


CASES = [
    pytest.param(
        devs(gpus=[{"name": "g"}], hostDevices=[{"deviceName": "a/b", "claimName": "c", "requestName": "r"}]),
        [
            (
                "spec.domain.devices.gpus[0]",
                REQ,
                NAME_OR_CLAIM,
                'GPU "g" names no device: set deviceName (a device-plugin resource such as '
                "nvidia.com/TU104GL_Tesla_T4) or claimName and requestName (a DRA claim)",
            ),
            (
                "spec.domain.devices.hostDevices[0]",
                INV,
                NAME_OR_CLAIM,
                "host device #0 sets both deviceName 'a/b' and a DRA claim request: keep deviceName for a device "
                "plugin, or claimName/requestName for DRA, not both",
            ),
        ],
        id="name-or-claim-required",
    ),
    pytest.param(
        devs(gpus=[{"name": "a", "deviceName": "x/y"}, {"name": "b", "claimName": "c", "requestName": "r"}]),
        [
            (
                "spec.domain.devices.gpus",
                INV,
                MIXED,
                "GPUs mix DRA entries (claimName/requestName) and device-plugin entries (deviceName): KubeVirt takes "
                "one kind or the other; make all 2 GPUs the same kind",
            )
        ],
        id="dra-mixed-with-device-plugin",
    ),
    pytest.param(
        {
            **devs(
                hostDevices=[
                    {"claimName": "c"},
                    {"name": "n", "requestName": "r"},
                    {"claimName": "c", "requestName": "r"},
                    {"name": "dup", "claimName": "c", "requestName": "r"},
                ]
            ),
            "resourceClaims": [{"name": "c", "resourceClaimName": "x"}],
        },
        [
            (
                "spec.domain.devices.hostDevices[0].requestName",
                REQ,
                CLAIM_REQUEST,
                "host device #0 is a DRA device and needs requestName",
            ),
            (
                "spec.domain.devices.hostDevices[1].claimName",
                REQ,
                CLAIM_REQUEST,
                'host device "n" is a DRA device and needs claimName',
            ),
            (
                "spec.domain.devices.hostDevices[3]",
                DUP,
                CLAIM_REQUEST,
                "host device \"dup\" asks for claim 'c' request 'r', which spec.domain.devices.hostDevices[2] already "
                "uses: each claim request attaches one device once",
            ),
        ],
        id="bad-claim-request",
    ),
    pytest.param(
        {
            **devs(gpus=[{"name": "g", "claimName": "missing", "requestName": "r"}]),
            "resourceClaims": [
                5,
                {"resourceClaimName": "a"},
                {"name": "ok", "resourceClaimName": "a", "resourceClaimTemplateName": "b"},
                {"name": "ok"},
                {"name": "Bad_Name", "resourceClaimName": "a"},
                {"name": "x" * 64, "resourceClaimTemplateName": "t"},
                {"name": "y" * 63, "resourceClaimTemplateName": "t"},
                {},
            ],
        },
        [
            ("spec.resourceClaims[0]", INV, RESOURCE_CLAIM, "must be an object, got number"),
            ("spec.resourceClaims[1].name", REQ, RESOURCE_CLAIM, "a resource claim needs a name"),
            ("spec.resourceClaims[2]", INV, RESOURCE_CLAIM, f"resource claim 'ok' sets both {EXACTLY_ONE}"),
            ("spec.resourceClaims[3].name", DUP, RESOURCE_CLAIM, "resource claim name 'ok' is used more than once"),
            ("spec.resourceClaims[3]", REQ, RESOURCE_CLAIM, f"resource claim 'ok' sets neither {EXACTLY_ONE}"),
            ("spec.resourceClaims[4].name", INV, RESOURCE_CLAIM, f"resource claim name 'Bad_Name' {DNS}"),
            ("spec.resourceClaims[5].name", INV, RESOURCE_CLAIM, f"resource claim name '{'x' * 64}' {DNS}"),
            ("spec.resourceClaims[7].name", REQ, RESOURCE_CLAIM, "a resource claim needs a name"),
            ("spec.resourceClaims[7]", REQ, RESOURCE_CLAIM, f"resource claim #7 sets neither {EXACTLY_ONE}"),
            (
                "spec.resourceClaims",
                INV,
                NOT_LISTED,
                "claims used by gpus/hostDevices are not listed in spec.resourceClaims: 'missing' "
                "(spec.domain.devices.gpus[0]); add an entry {name, resourceClaimName or resourceClaimTemplateName} "
                "for each",
            ),
        ],
        id="resource-claims",
    ),
]


@pytest.mark.parametrize(("spec", "expected"), CASES)
def test_every_problem_is_one_cause_with_its_field_type_rule_and_message(
    spec: dict[str, Any], expected: list[tuple[str, str, str, str]]
) -> None:
    findings = devices.check(spec, VMI_ROOT)
    assert findings.bad_request is None
    assert [(c.field, c.type, c.rule, c.message) for c in findings.causes] == expected
    on_vm = devices.check(spec, VM_ROOT)
    assert [c.field for c in on_vm.causes] == [f.replace("spec.", "spec.template.spec.", 1) for f, *_ in expected]


def test_values_of_the_wrong_type_are_one_bad_request_naming_each_field() -> None:
    spec = {
        **devs(gpus="x", hostDevices=[3, {"name": 1, "deviceName": [], "claimName": {}, "requestName": 2}]),
        "resourceClaims": {},
    }
    findings = devices.check(spec, VMI_ROOT)
    assert findings.causes == []
    assert findings.bad_request == (
        "spec.domain.devices.gpus: must be a list, got string; "
        "spec.domain.devices.hostDevices[0]: must be an object, got number; "
        "spec.domain.devices.hostDevices[1].name: must be a string, got number; "
        "spec.domain.devices.hostDevices[1].deviceName: must be a string, got list; "
        "spec.domain.devices.hostDevices[1].claimName: must be a string, got object; "
        "spec.domain.devices.hostDevices[1].requestName: must be a string, got number; "
        "spec.resourceClaims: must be a list, got object"
    )


def test_a_spec_without_devices_or_with_devices_of_another_shape_has_nothing_to_say() -> None:
    for spec in ({}, {"domain": "x"}, {"domain": {"devices": []}}, devs(gpus=None), {"resourceClaims": None}):
        assert devices.check(spec, VMI_ROOT).causes == []
        assert devices.check(spec, VMI_ROOT).bad_request is None
    listed = {
        **devs(gpus=[{"claimName": "c", "requestName": "r"}]),
        "resourceClaims": [{"name": "c", "resourceClaimName": "x"}],
    }
    assert devices.check(listed, VMI_ROOT).causes == []
