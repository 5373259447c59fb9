"""Passthrough devices (docs/passthrough.md): PCI vendor/device declarations become extended resources.

Objects go through ``engine.handle`` inside real AdmissionReviews; returned patches are applied with
``jsonpatch`` and the results checked against the Kubernetes schema (Pods, ``kubernetes-validate``) or
KubeVirt's own CRD schemas (VMIs and VMs, ``webhook/data/kubevirt-crds.yaml``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.testkit import objects, paths
from tests.testkit.review import apply_response, assert_crd_valid, make_review, patch_ops
from webhook import engine
from webhook.config import Config, parse_config
from webhook.endpoint import response
from webhook.k8s import qos
from webhook.k8s.defaults import default_pod_requests
from webhook.rules import passthrough

EXAMPLES = paths.EXAMPLES / "passthrough"
K8S_VERSION = "1.34"
ANN = "vm-admission.io/passthrough"
ANN_FIELD = "metadata.annotations.vm-admission.io/passthrough"
VM_ANN_FIELD = "spec.template.metadata.annotations.vm-admission.io/passthrough"
T4 = "devices.kubevirt.io/10de_1eb8"
VF = "devices.kubevirt.io/8086_10c9"
DEFAULT = Config()
PERMITTED = parse_config(
    {
        "passthrough": {
            "permittedDevices": [{"selector": "10DE:1EB8", "resourceName": "nvidia.com/TU104GL_Tesla_T4"}],
            "permittedOnly": True,
        }
    }
)


# ---------------------------------------------------------------------------------------------------------
# helpers


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8"))
    return doc


def run(
    obj: dict[str, Any], webhook: engine.Webhook = "mutate", config: Config = DEFAULT, **review: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send ``obj`` to a webhook; return the AdmissionReview response and the object with its patch applied."""
    request = make_review(obj, **review)
    verdict = engine.handle(request["request"], webhook, config)
    resp = response(request["apiVersion"], request["request"]["uid"], verdict, allow_patch=webhook == "mutate")
    return resp, apply_response(obj, resp)


def causes(resp: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, field, message) of each cause of a denial; [] when allowed."""
    status = resp["response"].get("status", {})
    return [(c["type"], c["field"], c["message"]) for c in status.get("details", {}).get("causes", [])]


def pod(
    annotation: str | None = None, containers: list[Any] | None = None, target: str | None = None
) -> dict[str, Any]:
    ann: dict[str, str] = {}
    if target is not None:
        ann[passthrough.CONTAINER_ANNOTATION] = target
    if annotation is not None:
        ann[ANN] = annotation
    return objects.pod(containers, annotations=ann)


def vmi(annotation: str | None = None, devices: dict[str, Any] | None = None) -> dict[str, Any]:
    return objects.vmi(objects.vmi_spec(devices=devices), annotations=None if annotation is None else {ANN: annotation})


def vm(annotation: str | None = None, devices: dict[str, Any] | None = None) -> dict[str, Any]:
    template = vmi(annotation, devices)
    template_meta = {k: v for k, v in template["metadata"].items() if k == "annotations"}
    return objects.vm(template["spec"], template_metadata=template_meta, runStrategy="Always")


MAKERS: dict[str, Callable[[str], dict[str, Any]]] = {
    "Pod": lambda a: pod(a),
    "VirtualMachineInstance": lambda a: vmi(a),
    "VirtualMachine": lambda a: vm(a),
}


def host_devices(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]["template"]["spec"] if obj["kind"] == "VirtualMachine" else obj["spec"]
    result: list[dict[str, Any]] = spec["domain"]["devices"].get("hostDevices", [])
    return result


def container_resources(obj: dict[str, Any], name: str) -> dict[str, Any]:
    (container,) = [c for c in obj["spec"]["containers"] if c["name"] == name]
    resources: dict[str, Any] = container.get("resources", {})
    return resources


# ---------------------------------------------------------------------------------------------------------
# declaration forms


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10de:1eb8", [("10de", "1eb8", 1)]),
        ("10DE:1EB8", [("10de", "1eb8", 1)]),
        ("10de:1eb8, 8086:10c9=2", [("10de", "1eb8", 1), ("8086", "10c9", 2)]),
        (" 10de : 1eb8 = 3 ,\n\t8086:10C9 ", [("10de", "1eb8", 3), ("8086", "10c9", 1)]),
        ("10de:1eb8=08", [("10de", "1eb8", 8)]),
        ("", []),
        ("  \n", []),
    ],
)
def test_annotation_entries_parse_with_counts_whitespace_and_any_case(
    value: str, expected: list[tuple[str, str, int]]
) -> None:
    assert passthrough.parse_annotation(value, ("a",), 8) == (tuple(expected), ())


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("10de:1eb", "device '1eb' is not 4 hex digits"),
        ("g0de:1eb8", "vendor 'g0de' is not 4 hex digits"),
        ("10de", "'10de' is malformed: write VENDOR:DEVICE[=COUNT]"),
        ("10de:1eb8:0000", "is malformed"),
        ("10de:1eb8=0", "count 0 is out of range: use 1 to 8"),
        ("10de:1eb8=9", "count 9 is out of range: use 1 to 8"),
        ("10de:1eb8=" + "9" * 5000, "is out of range: use 1 to 8"),
        ("10de:1eb8=two", "count 'two' is not a whole number"),
        ("10de:1eb8=-1", "count '-1' is not a whole number"),
        ("10de:1eb8=", "count '' is not a whole number"),
        ("10de:1eb8,,8086:10c9", "entry 2 is empty"),
        ("10de:1eb8,", "entry 2 is empty"),
    ],
)
def test_malformed_annotation_is_denied_on_the_annotation_field(value: str, fragment: str) -> None:
    resp, _ = run(vmi(value))

    assert resp["response"]["allowed"] is False
    assert resp["response"]["status"]["code"] == 422
    found = causes(resp)
    assert {(t, f) for t, f, _ in found} == {("FieldValueInvalid", ANN_FIELD)}
    assert any(fragment in m for _, _, m in found), found
    assert patch_ops(resp) == []


def test_every_bad_annotation_entry_gets_its_own_cause() -> None:
    resp, _ = run(vmi("10de:1eb, 8086:10c9=0, 10de, 1af4:1041"))

    messages = [m for _, _, m in causes(resp)]
    assert len(messages) == 3
    assert messages[0].startswith("entry 1 '10de:1eb'")
    assert messages[1].startswith("entry 2 '8086:10c9=0'")
    assert messages[2].startswith("entry 3 '10de'")


def test_annotation_that_is_not_a_string_is_a_cause_not_a_crash() -> None:
    obj = vmi()
    obj["metadata"]["annotations"] = {ANN: 3}

    resp, _ = run(obj)

    assert causes(resp) == [
        ("FieldValueInvalid", ANN_FIELD, 'must be a string such as "10de:1eb8, 8086:10c9=2", got number')
    ]


def test_empty_annotation_declares_nothing() -> None:
    resp, _ = run(vmi(""))

    assert resp["response"]["allowed"] is True
    assert patch_ops(resp) == []
    assert "warnings" not in resp["response"]


def test_repeated_devices_add_up() -> None:
    _, admitted = run(vmi("10de:1eb8, 10de:1eb8=2"))

    assert [h["name"] for h in host_devices(admitted)] == ["pt-10de-1eb8-0", "pt-10de-1eb8-1", "pt-10de-1eb8-2"]


def test_repeated_devices_beyond_max_count_in_total_are_denied() -> None:
    resp, _ = run(vmi("10de:1eb8=5, 10DE:1EB8=4"))

    assert causes(resp) == [
        (
            "FieldValueInvalid",
            ANN_FIELD,
            "10de:1eb8 is declared 9 times in total (repeated declarations add up), more than passthrough.maxCount (8)",
        )
    ]


def test_max_count_is_configurable() -> None:
    config = parse_config({"passthrough": {"maxCount": 2}})

    resp, _ = run(vmi("10de:1eb8=3"), config=config)

    assert [m for _, _, m in causes(resp)] == [
        "entry 1 '10de:1eb8=3': count 3 is out of range: use 1 to 2 (passthrough.maxCount)"
    ]


def test_spec_form_entries_become_host_devices_with_defaults_for_type_and_count() -> None:
    obj = vmi(
        devices={
            "passthrough": [
                {"vendor": "10DE", "device": "1eb8"},
                {"type": "pci", "vendor": "8086", "device": "10c9", "count": 2},
            ]
        }
    )

    resp, admitted = run(obj)

    assert resp["response"]["allowed"] is True
    assert host_devices(admitted) == [
        {"name": "pt-10de-1eb8-0", "deviceName": T4},
        {"name": "pt-8086-10c9-0", "deviceName": VF},
        {"name": "pt-8086-10c9-1", "deviceName": VF},
    ]
    # the declaration stays: it is the source of truth for the next pass
    assert admitted["spec"]["domain"]["devices"]["passthrough"] == obj["spec"]["domain"]["devices"]["passthrough"]


def test_both_forms_on_one_vmi_add_up() -> None:
    obj = vmi("10de:1eb8", devices={"passthrough": [{"vendor": "10de", "device": "1eb8"}]})

    _, admitted = run(obj)

    assert [h["name"] for h in host_devices(admitted)] == ["pt-10de-1eb8-0", "pt-10de-1eb8-1"]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {"type": "usb", "vendor": "046d", "device": "c52b"},
            ("FieldValueNotSupported", "type 'usb' is not supported"),
        ),
        (
            {"type": "mdev", "vendor": "10de", "device": "1eb8"},
            ("FieldValueNotSupported", "type 'mdev' is not supported"),
        ),
        ({"device": "1eb8"}, ("FieldValueRequired", "vendor is required")),
        ({"vendor": "10de"}, ("FieldValueRequired", "device is required")),
        ({"vendor": "", "device": "1eb8"}, ("FieldValueRequired", "vendor is required")),
        (
            {"vendor": 1000, "device": "1eb8"},
            ("FieldValueInvalid", "vendor must be a string of 4 hex digits (quote it in YAML)"),
        ),
        ({"vendor": "10de", "device": "1eb"}, ("FieldValueInvalid", "device '1eb' is not 4 hex digits")),
        (
            {"vendor": "10de", "device": "1eb8", "count": 0},
            ("FieldValueInvalid", "count 0 is out of range: use 1 to 8"),
        ),
        ({"vendor": "10de", "device": "1eb8", "count": 16}, ("FieldValueInvalid", "count 16 is out of range")),
        ({"vendor": "10de", "device": "1eb8", "count": "2"}, ("FieldValueInvalid", "count must be a whole number")),
        ({"vendor": "10de", "device": "1eb8", "count": True}, ("FieldValueInvalid", "count must be a whole number")),
        ({"vendor": "10de", "device": "1eb8", "cuont": 2}, ("FieldValueInvalid", "unknown key(s) 'cuont'")),
        ("10de:1eb8", ("FieldValueInvalid", "must be a map {type, vendor, device, count}, got string")),
    ],
)
def test_bad_spec_entry_is_denied_on_the_entry(entry: Any, expected: tuple[str, str]) -> None:
    obj = vmi(devices={"passthrough": [{"vendor": "8086", "device": "10c9"}, entry]})

    resp, _ = run(obj)

    (found,) = causes(resp)
    assert found[:2] == (expected[0], "spec.domain.devices.passthrough[1]")
    assert expected[1] in found[2]


def test_passthrough_that_is_not_a_list_is_a_cause() -> None:
    resp, _ = run(vmi(devices={"passthrough": {"vendor": "10de", "device": "1eb8"}}))

    assert [(t, f) for t, f, _ in causes(resp)] == [("FieldValueInvalid", "spec.domain.devices.passthrough")]


def test_vm_causes_are_on_the_template_paths() -> None:
    obj = vm(
        "10de:zzzz",
        devices={
            "passthrough": [{"vendor": "10de", "device": "1eb8"}, {"type": "usb", "vendor": "046d", "device": "c52b"}]
        },
    )

    resp, _ = run(obj)

    assert [(t, f) for t, f, _ in causes(resp)] == [
        ("FieldValueInvalid", VM_ANN_FIELD),
        ("FieldValueNotSupported", "spec.template.spec.domain.devices.passthrough[1]"),
    ]


@pytest.mark.parametrize(
    "obj",
    [
        vmi("10de:1eb, 8086:10c9=0"),
        vmi(devices={"passthrough": [{"type": "usb", "vendor": "046d", "device": "c52b", "count": 99}]}),
        vm("10de"),
        pod("10de:1eb8=12"),
        pod("10de:1eb8", target="gpu"),
    ],
    ids=["vmi-annotation", "vmi-spec", "vm", "pod-count", "pod-container"],
)
def test_mutation_and_validation_deny_a_bad_declaration_with_the_same_causes(obj: dict[str, Any]) -> None:
    mutated, _ = run(obj, "mutate")
    validated, _ = run(obj, "validate")

    assert mutated["response"]["allowed"] is False
    assert causes(mutated) == causes(validated) != []


def test_vm_update_is_validated_like_create() -> None:
    resp, _ = run(vm("10de:1eb8=0"), "validate", operation="UPDATE", old=vm())

    assert [(t, f) for t, f, _ in causes(resp)] == [("FieldValueInvalid", VM_ANN_FIELD)]


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        (
            {**pod(), "metadata": {"name": "p", "annotations": ["vm-admission.io/passthrough=10de:1eb8"]}},
            "metadata.annotations",
        ),
        ({**pod("10de:1eb8"), "spec": "containers"}, "spec"),
        ({**pod("10de:1eb8"), "spec": {"containers": {"name": "main"}}}, "spec.containers"),
        (pod("10de:1eb8", containers=["main"]), "spec.containers[0]"),
        (pod("10de:1eb8", containers=[{"name": "main", "resources": "big"}]), "spec.containers[0].resources"),
        (
            pod("10de:1eb8", containers=[{"name": "main", "resources": {"limits": ["x"]}}]),
            "spec.containers[0].resources.limits",
        ),
        (vmi(devices="gpu"), "spec.domain.devices"),  # type: ignore[arg-type]
        ({**vmi(), "spec": {"domain": []}}, "spec.domain"),
        (vmi("10de:1eb8", devices={"hostDevices": {"name": "x"}}), "spec.domain.devices.hostDevices"),
        ({**vm(), "spec": {"template": "vmi"}}, "spec.template"),
        (
            {**vm(), "spec": {"template": {"metadata": 7, "spec": {"domain": {"devices": {}}}}}},
            "spec.template.metadata",
        ),
    ],
)
@pytest.mark.parametrize("webhook", ["mutate", "validate"])
def test_unreadable_shapes_are_a_bad_request_naming_the_field(
    obj: dict[str, Any], field: str, webhook: engine.Webhook
) -> None:
    resp, _ = run(obj, webhook)

    assert resp["response"]["allowed"] is False
    assert resp["response"]["status"]["code"] == 400
    assert resp["response"]["status"]["message"].startswith(f"{field}: must be")


# ---------------------------------------------------------------------------------------------------------
# Pods


def test_pod_example_gets_requests_and_limits_on_the_named_container() -> None:
    obj = load("pod-annotation")

    resp, admitted = run(obj)

    assert resp["response"]["allowed"] is True
    assert container_resources(admitted, "app") == {
        "requests": {"cpu": "2", "memory": "2Gi", VF: "2"},
        "limits": {"cpu": "2", "memory": "2Gi", VF: "2"},
    }
    assert container_resources(admitted, "metrics") == {}
    default_pod_requests(admitted)
    kubernetes_validate.validate(admitted, K8S_VERSION, strict=True)


def test_pod_patch_is_minimal_adds_with_escaped_resource_names() -> None:
    resp, _ = run(pod("10de:1eb8", containers=[{"name": "main", "image": "x", "resources": {"limits": {"cpu": "1"}}}]))

    assert patch_ops(resp) == [
        {"op": "add", "path": "/spec/containers/0/resources/requests", "value": {T4: "1"}},
        {"op": "add", "path": "/spec/containers/0/resources/limits/devices.kubevirt.io~110de_1eb8", "value": "1"},
    ]


def test_pod_target_defaults_to_compute_then_to_the_first_container() -> None:
    with_compute = [{"name": "sidecar", "image": "x"}, {"name": "compute", "image": "y"}]
    without = [{"name": "first", "image": "x"}, {"name": "second", "image": "y"}]

    _, a = run(pod("10de:1eb8", containers=with_compute))
    _, b = run(pod("10de:1eb8", containers=without))

    assert container_resources(a, "compute")["limits"] == {T4: "1"}
    assert container_resources(a, "sidecar") == {}
    assert container_resources(b, "first")["limits"] == {T4: "1"}
    assert container_resources(b, "second") == {}


def test_pod_resource_name_comes_from_the_permitted_mapping_or_the_prefix() -> None:
    mapped = parse_config(
        {
            "passthrough": {
                "permittedDevices": [{"selector": "10DE:1EB8", "resourceName": "nvidia.com/TU104GL_Tesla_T4"}]
            }
        }
    )
    prefixed = parse_config({"passthrough": {"resourcePrefix": "mpolednik.github.io"}})

    resp, a = run(pod("10de:1eb8, 8086:10c9"), config=mapped)
    _, b = run(pod("10de:1eb8"), config=prefixed)

    assert container_resources(a, "main")["limits"] == {"nvidia.com/TU104GL_Tesla_T4": "1", VF: "1"}
    assert "/spec/containers/0/resources/requests/nvidia.com~1TU104GL_Tesla_T4" not in [
        o["path"] for o in patch_ops(resp)
    ]
    assert container_resources(b, "main")["requests"] == {"mpolednik.github.io/10de_1eb8": "1"}
    kubernetes_validate.validate(a, K8S_VERSION, strict=True)


SHARED_POOL = parse_config(
    {
        "passthrough": {
            "permittedDevices": [
                {"selector": "10de:1eb8", "resourceName": "nvidia.com/T4_POOL"},
                {"selector": "10de:1eb9", "resourceName": "nvidia.com/T4_POOL"},
            ]
        }
    }
)


def test_devices_mapped_to_one_resource_add_up_on_a_pod() -> None:
    _, admitted = run(pod("10de:1eb8=2, 10de:1eb9"), config=SHARED_POOL)

    assert container_resources(admitted, "main") == {
        "requests": {"nvidia.com/T4_POOL": "3"},
        "limits": {"nvidia.com/T4_POOL": "3"},
    }
    assert patch_ops(run(admitted, config=SHARED_POOL)[0]) == []
    conflict, _ = run(
        pod(
            "10de:1eb8=2, 10de:1eb9",
            containers=[{"name": "main", "image": "x", "resources": {"limits": {"nvidia.com/T4_POOL": "2"}}}],
        ),
        config=SHARED_POOL,
    )
    assert [m for _, _, m in causes(conflict)] == [
        "spec.containers[0].resources.limits.nvidia.com/T4_POOL is '2' but the declaration asks for "
        "2 of 10de:1eb8 + 1 of 10de:1eb9: make them equal or drop one of them"
    ]


def test_devices_mapped_to_one_resource_get_their_own_host_devices() -> None:
    _, admitted = run(vmi("10de:1eb8, 10de:1eb9"), config=SHARED_POOL)

    assert host_devices(admitted) == [
        {"name": "pt-10de-1eb8-0", "deviceName": "nvidia.com/T4_POOL"},
        {"name": "pt-10de-1eb9-0", "deviceName": "nvidia.com/T4_POOL"},
    ]
    again, _ = run(admitted, config=SHARED_POOL)
    assert again["response"]["allowed"] is True
    assert patch_ops(again) == []


def test_pod_with_equal_existing_values_is_left_alone() -> None:
    containers = [{"name": "main", "image": "x", "resources": {"requests": {T4: "2"}, "limits": {T4: 2}}}]

    resp, _ = run(pod("10de:1eb8=2", containers=containers))

    assert resp["response"]["allowed"] is True
    assert patch_ops(resp) == []


def test_pod_with_only_an_equal_request_gets_the_limit() -> None:
    containers = [{"name": "main", "image": "x", "resources": {"requests": {T4: "1"}}}]

    resp, _ = run(pod("10de:1eb8", containers=containers))

    assert patch_ops(resp) == [{"op": "add", "path": "/spec/containers/0/resources/limits", "value": {T4: "1"}}]


def test_pod_conflicting_request_and_limit_are_denied_naming_both_values() -> None:
    resp, _ = run(load("bad-pod-conflict"))

    assert causes(resp) == [
        (
            "FieldValueInvalid",
            ANN_FIELD,
            f"spec.containers[0].resources.requests.{T4} is '1' but the declaration asks for 2 of 10de:1eb8: "
            "make them equal or drop one of them",
        ),
        (
            "FieldValueInvalid",
            ANN_FIELD,
            f"spec.containers[0].resources.limits.{T4} is '1' but the declaration asks for 2 of 10de:1eb8: "
            "make them equal or drop one of them",
        ),
    ]


def test_pod_target_container_that_does_not_exist_is_not_found() -> None:
    resp, _ = run(load("bad-pod-missing-container"))

    assert causes(resp) == [
        (
            "FieldValueNotFound",
            ANN_FIELD,
            "target container 'gpu-worker' (annotation vm-admission.io/passthrough-container) does not exist; "
            "containers: cuda",
        )
    ]


def test_pod_without_containers_has_no_target() -> None:
    obj = pod("10de:1eb8")
    obj["spec"]["containers"] = []

    resp, _ = run(obj)

    assert [(t, f) for t, f, _ in causes(resp)] == [("FieldValueNotFound", ANN_FIELD)]


def test_pods_are_validated_with_their_declarations() -> None:
    resp, _ = run(pod("10de:1eb8=0"), "validate")

    assert [(t, f) for t, f, _ in causes(resp)] == [("FieldValueInvalid", ANN_FIELD)]


def test_permitted_only_denies_an_unlisted_device_and_maps_a_listed_one() -> None:
    denied, _ = run(pod("8086:10c9"), config=PERMITTED)
    allowed, admitted = run(pod("10DE:1eb8"), config=PERMITTED)

    assert causes(denied) == [
        (
            "FieldValueNotSupported",
            ANN_FIELD,
            "device 8086:10c9 is not in passthrough.permittedDevices (permitted: 10de:1eb8)",
        )
    ]
    assert allowed["response"]["allowed"] is True
    assert container_resources(admitted, "main")["requests"] == {"nvidia.com/TU104GL_Tesla_T4": "1"}


def test_pod_without_declaration_is_untouched() -> None:
    resp, _ = run(pod(None, target="nope"))

    assert resp["response"] == {"uid": resp["response"]["uid"], "allowed": True}


# ---------------------------------------------------------------------------------------------------------
# VMIs and VMs


def test_vmi_example_gets_a_host_device_and_stays_schema_valid() -> None:
    obj = load("vmi-gpu-annotation")
    assert_crd_valid(obj)

    resp, admitted = run(obj)

    assert resp["response"]["allowed"] is True
    assert host_devices(admitted) == [{"name": "pt-10de-1eb8-0", "deviceName": T4}]
    assert admitted["metadata"]["annotations"][ANN] == "10de:1eb8"
    assert_crd_valid(admitted)


def test_vmi_warns_about_the_feature_gate_and_the_permitted_host_devices_entry() -> None:
    resp, _ = run(load("vmi-gpu-annotation"))

    (warning,) = resp["response"]["warnings"]
    assert "HostDevices feature gate" in warning
    assert "permittedHostDevices.pciHostDevices" in warning
    assert 'pciVendorSelector: "10DE:1EB8"' in warning
    assert f'resourceName: "{T4}"' in warning
    assert "externalResourceProvider: true" in warning


def test_vm_example_translates_the_template_and_stays_schema_valid() -> None:
    obj = load("vm-template-annotation")
    assert_crd_valid(obj)

    resp, admitted = run(obj)

    assert resp["response"]["allowed"] is True
    assert host_devices(admitted) == [
        {"name": "pt-8086-10c9-0", "deviceName": VF},
        {"name": "pt-8086-10c9-1", "deviceName": VF},
        {"name": "pt-10de-1eb8-0", "deviceName": T4},
    ]
    assert [o["path"] for o in patch_ops(resp)] == [
        "/spec/template/spec/domain/devices/hostDevices",
        "/spec/template/spec/domain/devices/hostDevices/-",
        "/spec/template/spec/domain/devices/hostDevices/-",
    ]
    assert len(resp["response"]["warnings"]) == 2
    assert_crd_valid(admitted)


def test_vm_mapped_resource_names_are_used_for_host_devices() -> None:
    _, admitted = run(vm("10de:1eb8"), config=PERMITTED)

    assert host_devices(admitted) == [{"name": "pt-10de-1eb8-0", "deviceName": "nvidia.com/TU104GL_Tesla_T4"}]
    assert_crd_valid(admitted)


def test_host_devices_are_appended_after_existing_entries() -> None:
    existing = [{"name": "qat1", "deviceName": "intel.com/qat"}]

    _, admitted = run(vmi("10de:1eb8=2", devices={"hostDevices": copy.deepcopy(existing)}))

    assert host_devices(admitted) == [
        *existing,
        {"name": "pt-10de-1eb8-0", "deviceName": T4},
        {"name": "pt-10de-1eb8-1", "deviceName": T4},
    ]
    assert_crd_valid(admitted)


def test_existing_entries_with_our_names_count_towards_the_declaration() -> None:
    present = {"hostDevices": [{"name": "pt-10de-1eb8-1", "deviceName": T4}]}

    resp, admitted = run(vmi("10de:1eb8=2", devices=present))

    assert patch_ops(resp) == [
        {
            "op": "add",
            "path": "/spec/domain/devices/hostDevices/-",
            "value": {"name": "pt-10de-1eb8-0", "deviceName": T4},
        }
    ]
    assert sorted(h["name"] for h in host_devices(admitted)) == ["pt-10de-1eb8-0", "pt-10de-1eb8-1"]


@pytest.mark.parametrize(
    ("devices", "fragment"),
    [
        (
            {"hostDevices": [{"name": "pt-10de-1eb8-0", "deviceName": "nvidia.com/T4"}]},
            "spec.domain.devices.hostDevices[0] (pt-10de-1eb8-0) has deviceName 'nvidia.com/T4' but 10de:1eb8 maps to",
        ),
        (
            {"hostDevices": [{"name": "pt-10de-1eb8-3", "deviceName": T4}]},
            "spec.domain.devices.hostDevices[0] (pt-10de-1eb8-3) is beyond the declared count 2 of 10de:1eb8",
        ),
        (
            {"gpus": [{"name": "gpu1", "deviceName": T4}]},
            f"spec.domain.devices.gpus[0] (gpu1) already requests '{T4}'",
        ),
    ],
    ids=["other-device-name", "beyond-count", "declared-twice"],
)
def test_host_devices_that_contradict_the_declaration_are_denied(devices: dict[str, Any], fragment: str) -> None:
    resp, _ = run(vmi("10de:1eb8=2", devices=devices))

    (found,) = causes(resp)
    assert found[:2] == ("FieldValueInvalid", ANN_FIELD)
    assert fragment in found[2]


def test_permitted_only_checks_every_device_name_on_its_own_field() -> None:
    devices = {
        "hostDevices": [
            {"name": "ok", "deviceName": "nvidia.com/TU104GL_Tesla_T4"},
            {"name": "qat", "deviceName": "intel.com/qat"},
        ],
        "gpus": [{"name": "g", "deviceName": "nvidia.com/GRID_T4-1Q"}],
    }

    resp, _ = run(vm(devices=devices), "validate", config=PERMITTED)

    assert [(t, f) for t, f, _ in causes(resp)] == [
        ("FieldValueNotSupported", "spec.template.spec.domain.devices.hostDevices[1].deviceName"),
        ("FieldValueNotSupported", "spec.template.spec.domain.devices.gpus[0].deviceName"),
    ]
    assert "'intel.com/qat' is not a resource of passthrough.permittedDevices" in causes(resp)[0][2]


def test_without_permitted_only_any_device_name_is_admitted() -> None:
    devices = {"hostDevices": [{"name": "qat", "deviceName": "intel.com/qat"}]}

    resp, _ = run(vmi(devices=devices), "validate")

    assert resp["response"]["allowed"] is True


# ---------------------------------------------------------------------------------------------------------
# idempotency


@pytest.mark.parametrize(
    "name", ["vmi-gpu-annotation", "vm-template-annotation", "vmi-spec-passthrough", "pod-annotation"]
)
def test_a_translated_object_translates_to_itself(name: str) -> None:
    first, admitted = run(load(name))
    assert patch_ops(first) != []

    second, again = run(admitted)

    assert second["response"]["allowed"] is True
    assert patch_ops(second) == []
    assert again == admitted
    validated, _ = run(admitted, "validate")
    assert validated["response"]["allowed"] is True


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["10de", "10DE", "8086", "1af4", "zz", ""]),
            st.sampled_from(["1eb8", "10c9", "1041", "1x"]),
            st.one_of(st.none(), st.integers(-1, 12), st.text(max_size=3)),
        ),
        max_size=4,
    ),
    st.sampled_from(["Pod", "VirtualMachineInstance", "VirtualMachine"]),
)
def test_any_annotation_is_answered_and_an_admitted_result_is_stable(
    entries: list[tuple[str, str, int | str | None]], kind: str
) -> None:
    value = ", ".join(f"{v}:{d}" + ("" if c is None else f"={c}") for v, d, c in entries)
    obj = MAKERS[kind](value)

    first, admitted = run(obj)

    if first["response"]["allowed"]:
        assert {c[0] for c in causes(run(admitted, "validate")[0])} == set()
        second, _ = run(admitted)
        assert patch_ops(second) == []
    else:
        assert first["response"]["status"]["code"] == 422
        assert {f for _, f, _ in causes(first)} <= {ANN_FIELD, VM_ANN_FIELD}


# ---------------------------------------------------------------------------------------------------------
# with the QoS mutation on one launcher pod


def launcher_pod() -> dict[str, Any]:
    """A dedicated-CPU virt-launcher pod whose hook sidecar has limits only and which declares a T4."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "virt-launcher-gpu-vm-x7k2p",
            "namespace": "default",
            "labels": {"kubevirt.io": "virt-launcher"},
            "annotations": {"kubevirt.io/domain": "gpu-vm", ANN: "10de:1eb8"},
        },
        "spec": {
            "nodeSelector": {"kubevirt.io/cpumanager": "true"},
            "containers": [
                {
                    "name": "compute",
                    "image": "quay.io/kubevirt/virt-launcher:v1.4.0",
                    "resources": {
                        "requests": {"cpu": "4", "memory": "8Gi"},
                        "limits": {"cpu": "4", "memory": "8Gi"},
                    },
                },
                {
                    "name": "hook-sidecar-0",
                    "image": "quay.io/kubevirt/sidecar-shim:v1.4.0",
                    "resources": {"limits": {"cpu": "200m", "memory": "64M"}},
                },
                {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.0"},
            ],
        },
    }


def test_qos_and_passthrough_share_one_patch_on_a_launcher_pod() -> None:
    obj = launcher_pod()
    assert qos.qos_class(obj) != "Guaranteed"

    resp, admitted = run(obj)

    assert resp["response"]["allowed"] is True
    paths = [o["path"] for o in patch_ops(resp)]
    assert any(p.startswith("/spec/containers/1/") for p in paths)  # QoS: the sidecar
    assert any(p.startswith("/spec/containers/2/") for p in paths)  # QoS: the injected proxy
    assert "/spec/containers/0/resources/requests/devices.kubevirt.io~110de_1eb8" in paths  # passthrough
    assert container_resources(admitted, "compute")["limits"] == {"cpu": "4", "memory": "8Gi", T4: "1"}
    default_pod_requests(admitted)
    assert qos.qos_class(admitted) == "Guaranteed"
    kubernetes_validate.validate(admitted, K8S_VERSION, strict=True)
    second, _ = run(admitted)
    assert patch_ops(second) == []


# ---------------------------------------------------------------------------------------------------------
# the examples through `review`'s chain


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_examples_are_admitted_or_denied_as_their_names_say(path: Path) -> None:
    obj = yaml.safe_load(path.read_text(encoding="utf-8"))

    result = engine.chain(obj, DEFAULT)

    assert result.allowed is not path.stem.startswith("bad-")
    if path.stem.startswith("bad-"):
        # declarations are denied by both webhooks (mutation first); device entries by validation only
        causes = result.mutation.causes or result.validation.causes
        assert causes and all(c.field for c in causes)
    else:
        assert result.validation.causes == []


def test_long_annotation_values_parse_like_short_ones_and_stay_out_of_the_cache() -> None:
    short = "10de:1eb8=2, 8086:10c9"
    padded = short + " " * 300  # whitespace is ignored, so the same declaration, but too long to cache
    before = passthrough._parse_annotation_cached.cache_info().currsize
    assert passthrough.parse_annotation(padded, ("a",), 8) == passthrough.parse_annotation(short, ("a",), 8)
    assert passthrough._parse_annotation_cached.cache_info().currsize <= before + 1  # only the short one


# ---------------------------------------------------------------------------------------------------------
# edges found by mutation testing


@pytest.mark.parametrize("count", ["2x", "1.5", "+2", "0x2"])
def test_annotation_counts_that_are_not_digits_are_malformed(count: str) -> None:
    entries, found = passthrough.parse_annotation(f"10de:1eb8={count}", ("a",), 8)
    assert entries == ()
    assert [(c.field, c.type, c.rule, c.message) for c in found] == [
        (
            "a",
            "FieldValueInvalid",
            "passthrough.malformed",
            f"entry 1 '10de:1eb8={count}': count '{count}' is not a whole number",
        )
    ]


@pytest.mark.parametrize(("count", "n"), [("0001", 1), ("0" * 10 + "8", 8), ("0" * 300 + "2", 2)])
def test_annotation_counts_with_leading_zeros_are_their_number(count: str, n: int) -> None:
    assert passthrough.parse_annotation(f"10de:1eb8={count}", ("a",), 8) == ((("10de", "1eb8", n),), ())


def test_annotation_count_of_seven_significant_digits_is_out_of_range() -> None:
    _, found = passthrough.parse_annotation("10de:1eb8=1000000", ("a",), 8)
    assert [(c.rule, c.message) for c in found] == [
        (
            "passthrough.count-out-of-range",
            "entry 1 '10de:1eb8=1000000': count '1000000' is out of range: use 1 to 8 (passthrough.maxCount)",
        )
    ]
    _, found = passthrough.parse_annotation("10de:1eb8=100000", ("a",), 8)
    assert [c.message for c in found] == [
        "entry 1 '10de:1eb8=100000': count 100000 is out of range: use 1 to 8 (passthrough.maxCount)"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10de0:1eb8", "entry 1 '10de0:1eb8': vendor '10de0' is not 4 hex digits"),
        ("10de:1eb80", "entry 1 '10de:1eb80': device '1eb80' is not 4 hex digits"),
    ],
)
def test_five_digit_vendor_and_device_ids_are_malformed(value: str, message: str) -> None:
    resp, _ = run(vmi(value))
    assert causes(resp) == [("FieldValueInvalid", ANN_FIELD, message)]
    obj = vmi(devices={"passthrough": [{"vendor": value.split(":")[0], "device": value.split(":")[1]}]})
    resp, _ = run(obj)
    assert resp["response"]["allowed"] is False
    assert len(causes(resp)) == 1 and causes(resp)[0][2].endswith("is not 4 hex digits")


def test_a_total_count_equal_to_max_count_is_admitted() -> None:
    resp, admitted = run(vmi("10de:1eb8=4, 10de:1eb8=4"))
    assert resp["response"]["allowed"] is True
    assert [h["name"] for h in host_devices(admitted)] == [f"pt-10de-1eb8-{i}" for i in range(8)]
    resp, _ = run(vmi(devices={"passthrough": [{"vendor": "10de", "device": "1eb8", "count": 8}]}))
    assert resp["response"]["allowed"] is True


def test_a_host_device_of_ours_at_index_count_is_beyond_the_declaration() -> None:
    beyond = {"name": "pt-10de-1eb8-2", "deviceName": "devices.kubevirt.io/10de_1eb8"}
    resp, _ = run(vmi("10de:1eb8=2", devices={"hostDevices": [beyond]}))
    assert causes(resp) == [
        (
            "FieldValueInvalid",
            ANN_FIELD,
            "spec.domain.devices.hostDevices[0] (pt-10de-1eb8-2) is beyond the declared count 2 of 10de:1eb8: "
            "remove the entry or raise the count",
        )
    ]
    last = {"name": "pt-10de-1eb8-1", "deviceName": "devices.kubevirt.io/10de_1eb8"}
    resp, _ = run(vmi("10de:1eb8=2", devices={"hostDevices": [last]}))
    assert resp["response"]["allowed"] is True
    assert [op["value"]["name"] for op in patch_ops(resp)] == ["pt-10de-1eb8-0"]
