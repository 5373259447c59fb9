"""Passthrough devices (docs/passthrough.md): what each denial, bad request and warning says, in full.

Written against the survivors of ``scripts/mutation webhook/rules/passthrough.py``: every cause is checked
with its field, type, rule id and whole message (the rule id is what the denials metric, ``review -o json``
and ``vm-admission audit`` read), every 400 with its whole message, every warning with its whole text.
"""

from __future__ import annotations

from typing import Any

import jsonpatch
import pytest

from tests.rules.passthrough.test_passthrough import ANN, ANN_FIELD, PERMITTED, T4, VF, pod, vmi
from tests.testkit.review import make_review, pure_python_only
from webhook import engine
from webhook.config import Config, parse_config
from webhook.k8s.snapshot import ClusterSnapshot, KubeVirtView
from webhook.rules import passthrough

DEFAULT = Config()
MALFORMED, COUNT, PERMITTED_RULE = (
    "passthrough.malformed",
    "passthrough.count-out-of-range",
    "passthrough.not-permitted",
)
CONFLICT, CONTAINER = "passthrough.conflicting-request", "passthrough.container-not-found"
INVALID, NOT_FOUND, NOT_SUPPORTED, REQUIRED = (
    "FieldValueInvalid",
    "FieldValueNotFound",
    "FieldValueNotSupported",
    "FieldValueRequired",
)
LIST = "spec.domain.devices.passthrough"
HOST = "spec.domain.devices.hostDevices"
TWO_PERMITTED = parse_config(
    {
        "passthrough": {
            "permittedDevices": [
                {"selector": "8086:10c9", "resourceName": "intel.com/sriov_vf"},
                {"selector": "10de:1eb8", "resourceName": "nvidia.com/T4"},
            ],
            "permittedOnly": True,
        }
    }
)
NONE_PERMITTED = parse_config({"passthrough": {"permittedOnly": True}})


def verdict(
    obj: dict[str, Any],
    webhook: engine.Webhook = "mutate",
    config: Config = DEFAULT,
    cluster: ClusterSnapshot | None = None,
) -> engine.Verdict:
    return engine.handle(make_review(obj)["request"], webhook, config, cluster)


def found(v: engine.Verdict) -> list[tuple[str, str, str, str]]:
    """(field, type, rule, message) of each cause of a denial."""
    return [(c.field, c.type, c.rule, c.message) for c in v.causes]


def both(obj: dict[str, Any], config: Config = DEFAULT) -> list[tuple[str, str, str, str]]:
    """The causes, asserting that both webhooks deny with the same ones (422)."""
    mutation, validation = verdict(obj, "mutate", config), verdict(obj, "validate", config)
    assert (mutation.allowed, mutation.code, validation.code) == (False, 422, 422)
    assert found(mutation) == found(validation)
    return found(mutation)


def bad_request(obj: dict[str, Any]) -> str:
    v = verdict(obj)
    assert (v.allowed, v.code, v.reason) == (False, 400, "BadRequest"), v
    return v.message


def vmi_with(*entries: Any, **devices: Any) -> dict[str, Any]:
    return vmi(devices={"passthrough": list(entries), **devices} if entries else devices)


# ---------------------------------------------------------------------------------------------------------
# the annotation form


def test_annotation_that_is_not_a_string_is_malformed_naming_its_json_type() -> None:
    obj = pod()
    obj["metadata"]["annotations"][ANN] = 5
    expected = 'must be a string such as "10de:1eb8, 8086:10c9=2", got number'
    assert both(obj) == [(ANN_FIELD, INVALID, MALFORMED, expected)]


def test_every_bad_annotation_entry_is_reported_with_its_rule_after_an_empty_or_malformed_one() -> None:
    obj = pod("10de:1eb8,,bad,zz:10c9=x,8086:10c9=0")
    assert both(obj) == [
        (ANN_FIELD, INVALID, MALFORMED, "entry 2 is empty: separate VENDOR:DEVICE[=COUNT] entries by one comma"),
        (ANN_FIELD, INVALID, MALFORMED, "entry 3 'bad' is malformed: write VENDOR:DEVICE[=COUNT], e.g. 10de:1eb8=2"),
        (ANN_FIELD, INVALID, MALFORMED, "entry 4 'zz:10c9=x': vendor 'zz' is not 4 hex digits"),
        (ANN_FIELD, INVALID, MALFORMED, "entry 4 'zz:10c9=x': count 'x' is not a whole number"),
        (
            ANN_FIELD,
            INVALID,
            COUNT,
            "entry 5 '8086:10c9=0': count 0 is out of range: use 1 to 8 (passthrough.maxCount)",
        ),
    ]


def test_a_user_value_is_quoted_whole_up_to_forty_characters_then_cut_with_an_ellipsis() -> None:
    forty, forty_one = "a" * 40, "b" * 41
    messages = [m for *_, m in both(pod(f"{forty},{forty_one}"))]
    tail = " is malformed: write VENDOR:DEVICE[=COUNT], e.g. 10de:1eb8=2"
    assert messages == [f"entry 1 '{forty}'{tail}", f"entry 2 '{'b' * 40}...'{tail}"]


def test_annotation_values_up_to_the_cached_length_go_through_the_cache() -> None:
    # (named "cache": scripts/mutation drops the lru_cache, so its runs deselect it with -k "not cache")
    value = "10de:1eb8=2".ljust(passthrough._CACHED_LENGTH)  # exactly the longest cached length
    passthrough._parse_annotation_cached.cache_clear()
    assert passthrough.parse_annotation(value, ("a",), 8) == ((("10de", "1eb8", 2),), ())
    assert passthrough._parse_annotation_cached.cache_info().currsize == 1
    passthrough.parse_annotation(value + " ", ("a",), 8)
    assert passthrough._parse_annotation_cached.cache_info().currsize == 1


# ---------------------------------------------------------------------------------------------------------
# the spec form


def test_spec_entry_that_is_not_a_map_is_malformed() -> None:
    expected = "must be a map {type, vendor, device, count}, got string"
    assert both(vmi_with("10de:1eb8")) == [(f"{LIST}[0]", INVALID, MALFORMED, expected)]


def test_spec_entry_problems_each_get_their_cause_type_and_rule() -> None:
    entry = {"type": "usb", "vendor": "", "device": 1234, "count": 0, "zeta": 1, "alpha": 2}
    at = f"{LIST}[0]"
    assert both(vmi_with(entry)) == [
        (at, INVALID, MALFORMED, "unknown key(s) 'alpha', 'zeta': an entry has type, vendor, device, count"),
        (at, NOT_SUPPORTED, "passthrough.unsupported-type", "type 'usb' is not supported: supported values: \"pci\""),
        (at, REQUIRED, MALFORMED, 'vendor is required: 4 hex digits, e.g. "10de"'),
        (at, INVALID, MALFORMED, "device must be a string of 4 hex digits (quote it in YAML), got 1234"),
        (at, INVALID, COUNT, "count 0 is out of range: use 1 to 8 (passthrough.maxCount)"),
    ]


def test_spec_entry_ids_and_counts_of_the_wrong_shape_are_malformed() -> None:
    entries = ({"vendor": "10de", "device": "1eb"}, {"vendor": "10de", "device": "1eb8", "count": True})
    assert both(vmi_with(*entries)) == [
        (f"{LIST}[0]", INVALID, MALFORMED, "device '1eb' is not 4 hex digits"),
        (f"{LIST}[1]", INVALID, MALFORMED, "count must be a whole number, got True"),
    ]


def test_spec_entry_count_above_max_count_is_out_of_range() -> None:
    entry = {"vendor": "10de", "device": "1eb8", "count": 9}
    expected = "count 9 is out of range: use 1 to 8 (passthrough.maxCount)"
    assert both(vmi_with(entry)) == [(f"{LIST}[0]", INVALID, COUNT, expected)]


def test_spec_passthrough_that_is_not_a_list_is_malformed_naming_its_json_type() -> None:
    obj = vmi(devices={"passthrough": {"vendor": "10de"}})
    expected = "must be a list of {type, vendor, device, count}, got object"
    assert both(obj) == [(LIST, INVALID, MALFORMED, expected)]


def test_a_pod_has_no_spec_form_only_the_annotation_declares_its_devices() -> None:
    obj = pod("10de:1eb8")
    obj["spec"]["domain"] = {"devices": {"passthrough": [{"vendor": "8086", "device": "10c9"}]}}
    v = verdict(obj)
    assert v.allowed
    admitted = jsonpatch.JsonPatch(v.patch).apply(obj)
    assert admitted["spec"]["containers"][0]["resources"] == {"requests": {T4: "1"}, "limits": {T4: "1"}}


# ---------------------------------------------------------------------------------------------------------
# totals and permittedDevices


def test_repeated_declarations_beyond_max_count_are_denied_with_the_count_rule() -> None:
    expected = (
        "10de:1eb8 is declared 10 times in total (repeated declarations add up), more than passthrough.maxCount (8)"
    )
    assert both(pod("10de:1eb8=5, 10DE:1EB8=5")) == [(ANN_FIELD, INVALID, COUNT, expected)]


@pytest.mark.parametrize(
    ("config", "permitted"),
    [(TWO_PERMITTED, "8086:10c9, 10de:1eb8"), (NONE_PERMITTED, "none"), (PERMITTED, "10de:1eb8")],
)
def test_permitted_only_names_every_permitted_selector_or_none(config: Config, permitted: str) -> None:
    expected = f"device 1234:abcd is not in passthrough.permittedDevices (permitted: {permitted})"
    assert both(pod("1234:ABCD"), config) == [(ANN_FIELD, NOT_SUPPORTED, PERMITTED_RULE, expected)]


@pytest.mark.parametrize(
    ("config", "permitted"),
    [(TWO_PERMITTED, "intel.com/sriov_vf, nvidia.com/T4"), (NONE_PERMITTED, "none")],
)
def test_permitted_only_names_the_permitted_resources_for_a_foreign_device_name(config: Config, permitted: str) -> None:
    obj = vmi(devices={"hostDevices": ["not a map", {"name": "h", "deviceName": "example.com/foo"}]})
    expected = (
        f"'example.com/foo' is not a resource of passthrough.permittedDevices (permitted: {permitted}); "
        "KubeVirt would only fail later, when it renders the pod"
    )
    # (the validating webhook's devices rule also reports the entry that is not a map: a 400 there)
    assert found(verdict(obj, "mutate", config)) == [(f"{HOST}[1].deviceName", NOT_SUPPORTED, PERMITTED_RULE, expected)]


# ---------------------------------------------------------------------------------------------------------
# pods: the target container and its resources


def test_missing_target_container_lists_the_containers() -> None:
    containers = [{"name": "main", "image": "a"}, {"name": "side", "image": "b"}]
    expected = (
        f"target container 'gpu' (annotation {passthrough.CONTAINER_ANNOTATION}) does not exist; containers: main, side"
    )
    assert both(pod("10de:1eb8", containers, target="gpu")) == [(ANN_FIELD, NOT_FOUND, CONTAINER, expected)]


def test_missing_target_container_of_a_pod_without_containers_lists_none() -> None:
    obj = pod("10de:1eb8", target="gpu")
    obj["spec"]["containers"] = []
    expected = (
        f"target container 'gpu' (annotation {passthrough.CONTAINER_ANNOTATION}) does not exist; containers: none"
    )
    assert both(obj) == [(ANN_FIELD, NOT_FOUND, CONTAINER, expected)]


def test_pod_without_containers_has_no_target_for_its_devices() -> None:
    obj = pod("10de:1eb8")
    obj["spec"]["containers"] = []
    expected = "the pod has no container to give the devices to"
    assert both(obj) == [(ANN_FIELD, NOT_FOUND, CONTAINER, expected)]


def test_existing_request_of_another_count_is_a_conflict() -> None:
    obj = pod("10de:1eb8", [{"name": "main", "image": "a", "resources": {"requests": {T4: "2"}}}])
    expected = (
        f"spec.containers[0].resources.requests.{T4} is '2' but the declaration asks for 1 of 10de:1eb8: "
        "make them equal or drop one of them"
    )
    assert both(obj) == [(ANN_FIELD, INVALID, CONFLICT, expected)]


def pod_with(container: Any = None, **spec: Any) -> dict[str, Any]:
    obj = pod("10de:1eb8")
    if container is not None:
        obj["spec"]["containers"] = [container]
    obj["spec"].update(spec)
    return obj


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (pod_with(containers={"name": "main"}), "spec.containers: must be a list, got object"),
        (pod_with("main"), "spec.containers[0]: must be an object, got string"),
        (pod_with({"name": "main", "resources": ["x"]}), "spec.containers[0].resources: must be an object, got list"),
        (
            pod_with({"name": "main", "resources": {"requests": "1", "limits": 2}}),
            # requests and limits are both read: the last one unreadable is the one named
            "spec.containers[0].resources.limits: must be a map of quantities, got number",
        ),
        (
            pod_with({"name": "main", "resources": {"requests": ["1"]}}),
            "spec.containers[0].resources.requests: must be a map of quantities, got list",
        ),
    ],
)
def test_unreadable_pod_shapes_are_a_bad_request_naming_field_and_json_type(obj: dict[str, Any], message: str) -> None:
    assert bad_request(obj) == message


@pytest.mark.parametrize(
    ("devices", "message"),
    [
        ("x", "spec.domain.devices: must be an object, got string"),
        ({"hostDevices": {"name": "h"}}, f"{HOST}: must be a list, got object"),
        ({"gpus": 1}, "spec.domain.devices.gpus: must be a list, got number"),
    ],
)
def test_unreadable_vmi_shapes_are_a_bad_request_naming_field_and_json_type(devices: Any, message: str) -> None:
    obj = vmi("10de:1eb8")
    obj["spec"]["domain"]["devices"] = devices
    assert bad_request(obj) == message


# ---------------------------------------------------------------------------------------------------------
# VMIs: existing hostDevices and gpus


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        (
            {"hostDevices": ["not a map", {"name": "pt-10de-1eb8-0", "deviceName": "other.com/gpu"}]},
            f"{HOST}[1] (pt-10de-1eb8-0) has deviceName 'other.com/gpu' but 10de:1eb8 maps to '{T4}': "
            "remove the entry to let it be recreated",
        ),
        (
            {"hostDevices": [{"name": "pt-10de-1eb8-1", "deviceName": T4}]},
            f"{HOST}[0] (pt-10de-1eb8-1) is beyond the declared count 1 of 10de:1eb8: "
            "remove the entry or raise the count",
        ),
        (
            {"hostDevices": [{"name": "mine", "deviceName": T4}]},
            f"{HOST}[0] (mine) already requests '{T4}', which 10de:1eb8 is declared as: "
            "declare the device once, either way",
        ),
        (
            {"gpus": [{"name": "pt-10de-1eb8-0", "deviceName": T4}]},
            f"spec.domain.devices.gpus[0] (pt-10de-1eb8-0) already requests '{T4}', which 10de:1eb8 is declared "
            "as: declare the device once, either way",
        ),
        (
            {"gpus": [{"deviceName": T4}]},
            f"spec.domain.devices.gpus[0] (None) already requests '{T4}', which 10de:1eb8 is declared as: "
            "declare the device once, either way",
        ),
    ],
)
def test_host_devices_and_gpus_that_contradict_the_declaration_are_conflicts(
    devices: dict[str, Any], expected: str
) -> None:
    obj = vmi("10de:1eb8", devices)
    assert found(verdict(obj)) == [("metadata.annotations.vm-admission.io/passthrough", INVALID, CONFLICT, expected)]


# ---------------------------------------------------------------------------------------------------------
# VMIs: the warning and the cluster view


def warning(names: str, selector: str = "10de:1eb8", resource: str = T4) -> str:
    return (
        f"{HOST}: {selector} is requested as {names} (deviceName {resource}); KubeVirt attaches it only with its "
        "HostDevices feature gate enabled and a permittedHostDevices.pciHostDevices entry "
        f'{{pciVendorSelector: "{selector.upper()}", resourceName: "{resource}", externalResourceProvider: true}}'
    )


@pytest.mark.parametrize(
    ("count", "names"),
    [
        (1, "pt-10de-1eb8-0"),
        (2, "pt-10de-1eb8-0 ... pt-10de-1eb8-1"),
        (3, "pt-10de-1eb8-0 ... pt-10de-1eb8-2"),
    ],
)
def test_vmi_warning_names_the_first_and_last_host_device_of_a_device(count: int, names: str) -> None:
    v = verdict(vmi(f"10de:1eb8={count}"))
    assert v.allowed
    assert v.warnings == [warning(names)]


def test_with_the_kubevirt_cr_known_every_device_is_translated_without_a_warning() -> None:
    cluster = ClusterSnapshot(synced=True, kubevirt=KubeVirtView("kubevirt", "kubevirt"))
    obj = vmi("10de:1eb8, 8086:10c9=2")
    v = verdict(obj, cluster=cluster)
    assert v.allowed and v.warnings == []
    assert jsonpatch.JsonPatch(v.patch).apply(obj)["spec"]["domain"]["devices"]["hostDevices"] == [
        {"name": "pt-10de-1eb8-0", "deviceName": T4},
        {"name": "pt-8086-10c9-0", "deviceName": VF},
        {"name": "pt-8086-10c9-1", "deviceName": VF},
    ]


# ---------------------------------------------------------------------------------------------------------
# what the engine is told and asked


@pytest.mark.parametrize(
    ("metadata", "concerned"),
    [
        (None, False),
        ({"name": "p"}, False),
        ({"annotations": {"other": "x"}}, False),
        ({"annotations": {ANN: ""}}, True),
        ({"annotations": "x"}, True),
        ("x", True),
    ],
)
def test_pods_concern_the_passthrough_rules_only_with_a_declaration_or_unreadable_metadata(
    metadata: Any, concerned: bool
) -> None:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "a"}]}}
    if metadata is not None:
        obj["metadata"] = metadata
    assert passthrough.concerns_pod(obj) is concerned


def test_pod_with_metadata_that_is_not_a_map_is_a_bad_request() -> None:
    request = make_review(pod("10de:1eb8"))["request"]
    request["object"]["metadata"] = "p"
    for webhook in ("mutate", "validate"):
        v = engine.handle(request, webhook, DEFAULT)
        assert (v.allowed, v.code, v.message) == (False, 400, "metadata: must be an object, got string")


@pure_python_only
def test_a_validation_review_checks_the_declaration_once_for_the_rule_and_the_preflight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    check = passthrough.check

    def counted(obj: dict[str, Any], ctx: Any) -> passthrough.Plan:
        calls.append(ctx.kind)
        return check(obj, ctx)

    monkeypatch.setattr(passthrough, "check", counted)
    cluster = ClusterSnapshot(synced=True, kubevirt=KubeVirtView("kubevirt", "kubevirt"))
    verdict(vmi("10de:1eb8"), "validate", cluster=cluster)
    assert calls == ["VirtualMachineInstance"]
