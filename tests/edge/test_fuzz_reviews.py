"""Hypothesis-generated AdmissionReviews through both webhooks: never an exception, always a well-formed answer.

Objects are built around the shapes the rules read (containers, resources, ``domain.cpu``, devices,
annotations) with arbitrary JSON at every level, plus arbitrary JSON dropped at random places of realistic
objects. The properties: ``engine.handle`` never raises, the response is well-formed and serialisable, any
patch applies with ``jsonpatch``, and the mutated object goes through validation without raising either.
"""

from __future__ import annotations

import copy
import os
from typing import Any
from unittest import mock

import jsonpatch
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.payloads import dedicated_vmi, launcher_pod, vm
from tests.edge.test_hostile import POD_PATHS, VM_PATHS, VMI_PATHS, assert_well_formed, put, review_in_process
from tests.testkit.review import make_review
from webhook import admission, engine
from webhook.config import Config, parse_config

# CI runs 120 examples per test; a longer run: VM_ADMISSION_FUZZ_EXAMPLES=20000 pytest tests/edge/test_fuzz_reviews.py
FUZZ = settings(
    max_examples=int(os.environ.get("VM_ADMISSION_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# JSON as the API server can send it: no NaN/inf, no lone surrogates, integers within 64 bits.
text = st.text(st.characters(codec="utf-8"), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12
)
quantities = st.sampled_from(
    [
        *("0", "1", "2", "4", "500m", "200m", "15m", "1.5", "0.1", "-1", "64M", "128Mi", "8Gi", "1e3", "2Mi"),
        *("1Gi", "NaN", "1e400", "-0", "x", "1ki", "", " 2", "9" * 30),
    ]
) | st.integers(min_value=-(2**63), max_value=2**63 - 1)
resource_names = st.sampled_from(
    ["cpu", "memory", "ephemeral-storage", "hugepages-2Mi", "devices.kubevirt.io/10de_1eb8", "nvidia.com/gpu"]
)
resource_map = st.dictionaries(resource_names, quantities | json_values, max_size=4) | json_values
resources = st.fixed_dictionaries({}, optional={"requests": resource_map, "limits": resource_map}) | json_values
names = st.sampled_from(["compute", "hook-sidecar-0", "istio-proxy", "guest-console-log", "c\u00e9-\U0001f680"]) | text
container = (
    st.fixed_dictionaries(
        {"name": names}, optional={"resources": resources, "restartPolicy": st.sampled_from(["Always", "Never"]) | text}
    )
    | json_values
)
passthrough_values = (
    st.sampled_from(
        ["10de:1eb8", "10de:1eb8=2, 8086:10c9", "10DE:1EB8=0", "10de:1eb8=99", "zz:1eb8", "", ",,", "10de:1eb8=-1"]
    )
    | text
)
annotation_maps = st.dictionaries(
    st.sampled_from(
        [
            "vm-admission.io/passthrough",
            "vm-admission.io/passthrough-container",
            "vm-admission.io/guaranteed-qos",
            "kubernetes.io/config.mirror",
        ]
    ),
    passthrough_values | st.sampled_from(["true", "false", "compute", "nope"]) | json_values,
    max_size=3,
)
node_selectors = st.sampled_from([{"kubevirt.io/cpumanager": "true"}, {"cpumanager": "true"}, {}]) | json_values


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": draw(st.lists(container, max_size=5) | json_values),
        "nodeSelector": draw(node_selectors),
    }
    if draw(st.booleans()):
        spec["initContainers"] = draw(st.lists(container, max_size=3) | json_values)
    if draw(st.integers(0, 4)) == 0:
        spec["resources"] = draw(resources)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "fuzz", "annotations": draw(annotation_maps | json_values)},
        "spec": spec,
    }


cpu_values = st.integers(-2, 300) | json_values
domain_cpu: st.SearchStrategy[Any] = (
    st.fixed_dictionaries(
        {},
        optional={
            "dedicatedCpuPlacement": st.booleans() | json_values,
            "isolateEmulatorThread": st.booleans() | json_values,
            "cores": cpu_values,
            "sockets": cpu_values,
            "threads": cpu_values,
            "maxSockets": cpu_values,
            "numa": st.just({"guestMappingPassthrough": {}}) | json_values,
            "realtime": st.just({}) | json_values,
        },
    )
    | json_values
)
passthrough_entry = (
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["pci", "usb"]) | json_values,
            "vendor": st.sampled_from(["10de", "8086", "10DE", "zz"]) | json_values,
            "device": st.sampled_from(["1eb8", "10c9"]) | json_values,
            "count": st.integers(-1, 10) | json_values,
        },
    )
    | json_values
)
interfaces = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["default", "storage", "x"]) | json_values},
        optional={
            "bridge": st.just({}),
            "masquerade": st.just({}),
            "sriov": st.just({}),
            "slirp": st.just({}),
            "macvtap": st.just({}),
            "state": st.sampled_from(["", "up", "down", "absent", "weird"]) | json_values,
        },
    )
    | json_values,
    max_size=3,
)
networks = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["default", "storage", "x"]) | json_values},
        optional={"pod": st.just({}), "multus": st.just({"networkName": "ns/net"}) | json_values},
    )
    | json_values,
    max_size=3,
)
claim_names = st.sampled_from(["gpu-claim", "", "other"]) | json_values
device_entry = st.fixed_dictionaries(
    {"name": text},
    optional={"deviceName": text | json_values, "claimName": claim_names, "requestName": claim_names},
)
resource_claims = st.lists(
    st.fixed_dictionaries(
        {"name": claim_names},
        optional={"resourceClaimName": text | json_values, "resourceClaimTemplateName": text | json_values},
    )
    | json_values,
    max_size=2,
)
devices = (
    st.fixed_dictionaries(
        {},
        optional={
            "passthrough": st.lists(passthrough_entry, max_size=3) | json_values,
            "hostDevices": st.lists(device_entry | json_values, max_size=3),
            "gpus": st.lists(device_entry | json_values, max_size=2),
            "interfaces": interfaces | json_values,
        },
    )
    | json_values
)
memory = (
    st.fixed_dictionaries(
        {},
        optional={
            "guest": quantities,
            "maxGuest": quantities,
            "hugepages": st.fixed_dictionaries({"pageSize": quantities}) | json_values,
        },
    )
    | json_values
)


@st.composite
def vmi_specs(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "architecture": draw(st.sampled_from(["amd64", "arm64", ""]) | json_values),
        "domain": draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "cpu": domain_cpu,
                    "resources": resources,
                    "devices": devices,
                    "memory": memory,
                    "ioThreadsPolicy": st.sampled_from(["shared", "auto", "supplementalPool", "bad"]) | json_values,
                    "ioThreads": st.fixed_dictionaries(
                        {}, optional={"supplementalPoolThreadCount": st.integers(-1, 4) | json_values}
                    )
                    | json_values,
                    "launchSecurity": st.just({}) | json_values,
                },
            )
            | json_values
        ),
        "networks": draw(networks | json_values),
        "resourceClaims": draw(resource_claims | st.none()),
    }


@st.composite
def vmis(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"name": "fuzz", "annotations": draw(annotation_maps | json_values)},
        "spec": draw(vmi_specs()),
    }


@st.composite
def vms(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": "fuzz"},
        "spec": {
            "runStrategy": draw(st.sampled_from(["Always", "Halted", "RerunOnFailure"]) | json_values),
            "running": draw(st.booleans() | json_values),
            "template": {"metadata": {"annotations": draw(annotation_maps | json_values)}, "spec": draw(vmi_specs())},
        },
    }


configs = st.sampled_from(
    [
        Config(),
        parse_config({"enforcement": "warn"}),
        parse_config({"cpuManager": {"enabled": False}}),
        parse_config(
            {
                "passthrough": {
                    "permittedOnly": True,
                    "maxCount": 2,
                    "permittedDevices": [{"selector": "10de:1eb8", "resourceName": "nvidia.com/TU104GL_Tesla_T4"}],
                }
            }
        ),
    ]
)


def _check(obj: dict[str, Any], config: Config, operation: str = "CREATE", old: Any = None) -> None:
    """Mutate, check, apply the patch, then validate the result: all well-formed, nothing raises."""
    doc = make_review(vm() if obj.get("kind") == "VirtualMachine" else launcher_pod(), operation=operation)
    doc["request"]["kind"] = make_review({"kind": obj["kind"]})["request"]["kind"]
    doc["request"]["object"] = obj
    doc["request"]["oldObject"] = old
    uid = doc["request"]["uid"]
    mutated = review_in_process(copy.deepcopy(doc), "mutate", config)
    patched = copy.deepcopy(obj)
    assert_well_formed(mutated, uid, "admission.k8s.io/v1", patched, webhook="mutate")
    doc["request"]["object"] = patched
    validated = review_in_process(doc, "validate", config)
    assert_well_formed(validated, uid, "admission.k8s.io/v1", None, webhook="validate")
    orjson.dumps(validated)


@FUZZ
@given(pods(), configs)
def test_generated_pods_get_well_formed_answers_and_patches_that_apply(pod: dict[str, Any], config: Config) -> None:
    _check(pod, config)


@FUZZ
@given(vmis(), configs)
def test_generated_vmis_get_well_formed_answers_and_patches_that_apply(vmi: dict[str, Any], config: Config) -> None:
    _check(vmi, config)


@FUZZ
@given(vms(), vms(), configs)
def test_generated_vm_creates_and_updates_get_well_formed_answers(
    new: dict[str, Any], old: dict[str, Any], config: Config
) -> None:
    _check(new, config)
    _check(copy.deepcopy(new), config, operation="UPDATE", old=old)


_BASES = [(launcher_pod, POD_PATHS), (dedicated_vmi, VMI_PATHS), (vm, VM_PATHS)]


@FUZZ
@given(
    st.sampled_from(_BASES).flatmap(
        lambda b: st.tuples(
            st.just(b[0]), st.lists(st.tuples(st.sampled_from(b[1]), json_values), min_size=1, max_size=3)
        )
    ),
    configs,
)
def test_realistic_objects_with_random_json_at_the_places_rules_read_are_answered(
    case: tuple[Any, list[tuple[tuple[Any, ...], Any]]], config: Config
) -> None:
    build, edits = case
    obj = build()
    for path, value in edits:
        obj = put(obj, path, value)
    _check(obj, config)


def test_patches_from_realistic_objects_apply_and_are_idempotent() -> None:
    """A control for the properties above: the realistic objects do get patched, and only once."""
    for build in (launcher_pod, dedicated_vmi, vm):
        doc = make_review(build())
        original = copy.deepcopy(doc["request"]["object"])
        first = review_in_process(copy.deepcopy(doc), "mutate")
        patched = copy.deepcopy(original)
        assert_well_formed(first, doc["request"]["uid"], "admission.k8s.io/v1", patched, webhook="mutate")
        doc["request"]["object"] = patched
        again = review_in_process(doc, "mutate")
        assert "patch" not in again["response"], jsonpatch.JsonPatch([]).to_string()


@FUZZ
@given(pods(), configs)
def test_pods_the_engine_answers_without_running_the_rules_get_what_the_rules_would_say(
    pod: dict[str, Any], config: Config
) -> None:
    """``engine.handle`` skips the Pod rules for pods ``pod_concerned`` does not flag: the verdict must not change."""
    for webhook in ("mutate", "validate"):
        gated = engine.handle(make_review(copy.deepcopy(pod))["request"], webhook, config)  # type: ignore[arg-type]
        with mock.patch.object(engine, "pod_concerned", lambda pod, config: True):  # every rule runs
            full = engine.handle(make_review(copy.deepcopy(pod))["request"], webhook, config)  # type: ignore[arg-type]
        assert gated == full


def test_the_pod_fast_path_is_on_for_the_shipped_rules() -> None:
    """Every Pod rule in the tables is a gated one, so pods no rule concerns skip the rules."""
    assert engine.GATED_POD_RULES.issuperset(admission.rules_for("Pod", "mutate", "CREATE"))
    assert engine.GATED_POD_RULES.issuperset(admission.rules_for("Pod", "validate", "CREATE"))
