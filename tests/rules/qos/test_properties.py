"""Properties of the Guaranteed-QoS mutation (docs/guaranteed-qos.md) over generated pods.

Pods have random containers and init containers (native sidecars among them), each with a random mix of
cpu/memory requests and limits (missing, request only, limit only, equal — possibly written differently, such
as ``1`` and ``1000m`` — or unequal), sometimes pod-level ``spec.resources``. For dedicated-CPU pods:
the patch applies cleanly and only adds cpu/memory requests/limits that were absent; a second pass returns no
patch; every value already written survives; the pod ends Guaranteed exactly when nothing was unequal (and,
at pod level, when cpu and memory were each given at least once), and then the validator admits it.
"""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from typing import Any

import jsonpatch
import jsonpointer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.testkit.review import make_review
from webhook import engine
from webhook.config import Config
from webhook.k8s import qos, quantity
from webhook.k8s.defaults import default_pod_requests

CONFIG = Config()
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pairs of spellings of one amount, so "equal" pairs are not always written identically.
CPU = [("100m", "0.1"), ("250m", "250m"), ("1", "1000m"), ("2", "2"), ("1500m", "1.5"), ("4", 4), ("15m", "15m")]
MEMORY = [("64M", "64M"), ("128Mi", "131072Ki"), ("1Gi", "1073741824"), ("35M", "35e6"), ("8Gi", "8Gi")]
STATES = ("none", "request", "limit", "equal", "unequal")
OWNED_OP = re.compile(
    r"^/spec/(?:(?:initContainers|containers)/\d+/)?resources(?:/(?:requests|limits)(?:/(?:cpu|memory))?)?$"
)


@st.composite
def resource_state(draw: st.DrawFn, pairs: list[tuple[Any, Any]]) -> tuple[str, Any, Any]:
    """(state, request, limit) for one resource; None for what is absent."""
    state = draw(st.sampled_from(STATES))
    a, b = draw(st.sampled_from(pairs))
    if state == "none":
        return state, None, None
    if state == "request":
        return state, a, None
    if state == "limit":
        return state, None, a
    if state == "equal":
        return state, a, b if draw(st.booleans()) else a
    other = draw(st.sampled_from([p for p in pairs if quantity.parse(p[0]) != quantity.parse(a)]))[0]
    return state, a, other


@st.composite
def resources_block(draw: st.DrawFn) -> tuple[dict[str, str], Any]:
    """(states by resource, the resources value or a sentinel for "no resources key")."""
    states: dict[str, str] = {}
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for name, pairs in (("cpu", CPU), ("memory", MEMORY)):
        state, req, lim = draw(resource_state(pairs))
        states[name] = state
        if req is not None:
            requests[name] = req
        if lim is not None:
            limits[name] = lim
    if draw(st.booleans()):  # resources that do not count for QoS
        extra = draw(st.sampled_from(["ephemeral-storage", "devices.kubevirt.io/kvm", "hugepages-2Mi"]))
        requests[extra] = limits[extra] = "1" if extra.startswith("devices") else "2Mi"
    res: dict[str, Any] = {}
    if requests or draw(st.booleans()):
        res["requests"] = requests
    if limits or draw(st.booleans()):
        res["limits"] = limits
    if not res and draw(st.booleans()):
        return states, MISSING
    return states, res


MISSING = object()


@st.composite
def container(draw: st.DrawFn, name: str, native_sidecar: bool) -> tuple[dict[str, str], dict[str, Any]]:
    states, res = draw(resources_block())
    c: dict[str, Any] = {"name": name, "image": "registry.example.com/app:1"}
    if native_sidecar:
        c["restartPolicy"] = "Always"
    if res is not MISSING:
        c["resources"] = res
    return states, c


@st.composite
def pods(draw: st.DrawFn, dedicated: bool = True) -> tuple[dict[str, Any], bool]:
    """A pod and whether it should be Guaranteed after mutation."""
    n_containers = draw(st.integers(1, 4))
    n_init = draw(st.integers(0, 3))
    all_states: list[dict[str, str]] = []
    init: list[dict[str, Any]] = []
    for i in range(n_init):
        states, c = draw(container(f"init-{i}", draw(st.booleans())))
        all_states.append(states)
        init.append(c)
    containers: list[dict[str, Any]] = []
    for i in range(n_containers):
        states, c = draw(container("compute" if i == 0 else f"sidecar-{i}", False))
        all_states.append(states)
        containers.append(c)
    spec: dict[str, Any] = {"containers": containers}
    if init:
        spec["initContainers"] = init
    metadata: dict[str, Any] = {"name": "virt-launcher-vm-abcde", "namespace": "default"}
    if dedicated:
        how = draw(st.sampled_from(["kubevirt.io/cpumanager", "cpumanager", "annotation"]))
        if how == "annotation":
            metadata["annotations"] = {"vm-admission.io/guaranteed-qos": "true"}
        else:
            spec["nodeSelector"] = {how: "true", "kubevirt.io/schedulable": "true"}
    expected = all("unequal" not in s.values() for s in all_states)
    if draw(st.integers(0, 4)) == 0:
        pod_states, pod_res = draw(resources_block())
        if pod_res is not MISSING:
            spec["resources"] = pod_res
            if pod_res:  # a non-empty pod-level block alone decides QoS; no defaults are added there
                expected = all(s in ("request", "limit", "equal") for s in pod_states.values())
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}, expected


def mutate(pod: dict[str, Any]) -> engine.Verdict:
    return engine.handle(make_review(pod)["request"], "mutate", CONFIG)


def blocks(pod: dict[str, Any]) -> dict[tuple[Any, ...], Any]:
    """Every written (block path, section, resource) -> value, pod level and containers alike."""
    out: dict[tuple[Any, ...], Any] = {}
    spec = pod["spec"]
    candidates: list[tuple[tuple[Any, ...], Any]] = [(("spec", "resources"), spec.get("resources"))]
    for key in ("initContainers", "containers"):
        candidates += [(("spec", key, i), c.get("resources")) for i, c in enumerate(spec.get(key, []))]
    for path, res in candidates:
        for section in ("requests", "limits"):
            for name, value in ((res or {}).get(section) or {}).items():
                out[(*path, section, name)] = value
    return out


def only_cpu_memory(value: Any) -> bool:
    """True when an added value holds nothing but cpu/memory (possibly under requests/limits maps)."""
    if not isinstance(value, dict):
        return True
    return all(
        (k in ("cpu", "memory") and not isinstance(v, dict)) or (k in ("requests", "limits") and only_cpu_memory(v))
        for k, v in value.items()
    )


@SETTINGS
@given(pods())
def test_patch_adds_only_missing_cpu_memory_fields_and_applies_cleanly(case: tuple[dict[str, Any], bool]) -> None:
    pod, _ = case
    verdict = mutate(pod)

    assert verdict.allowed
    for op in verdict.patch:
        assert op["op"] == "add"
        assert OWNED_OP.match(op["path"]), op
        assert only_cpu_memory(op["value"]), op
        # An add never replaces something written: the target was absent (or null) before.
        assert jsonpointer.resolve_pointer(pod, op["path"], None) is None, op
    patched = jsonpatch.JsonPatch(verdict.patch).apply(copy.deepcopy(pod))
    before = blocks(pod)
    after = blocks(patched)
    assert {k: after[k] for k in before} == before
    assert {k[-1] for k in set(after) - set(before)} <= {"cpu", "memory"}


@SETTINGS
@given(pods())
def test_mutation_is_idempotent(case: tuple[dict[str, Any], bool]) -> None:
    pod, _ = case
    patched = jsonpatch.JsonPatch(mutate(pod).patch).apply(copy.deepcopy(pod))

    assert mutate(patched).patch == []
    default_pod_requests(patched)  # as the API server does after a mutating webhook
    assert mutate(patched).patch == []


@SETTINGS
@given(pods())
def test_pod_is_guaranteed_exactly_when_no_written_pair_disagrees(case: tuple[dict[str, Any], bool]) -> None:
    pod, expected = case
    verdict = mutate(pod)
    patched = jsonpatch.JsonPatch(verdict.patch).apply(copy.deepcopy(pod))
    default_pod_requests(patched)

    assert (qos.qos_class(patched) == "Guaranteed") is expected
    # A request is never raised above a limit: every pair the webhook completed is equal.
    added = set(blocks(patched)) - set(blocks(pod))
    for *path, _section, name in added:
        req = blocks(patched).get((*path, "requests", name))
        lim = blocks(patched).get((*path, "limits", name))
        assert quantity.parse(req) == quantity.parse(lim) > Decimal(0)


@SETTINGS
@given(pods())
def test_validator_admits_what_the_mutator_made_guaranteed(case: tuple[dict[str, Any], bool]) -> None:
    pod, expected = case
    result = engine.chain(pod, CONFIG)

    assert result.mutation.allowed
    if expected:
        assert result.validation.allowed, result.validation.message


@settings(max_examples=100, deadline=None)
@given(pods(dedicated=False))
def test_pods_that_are_not_dedicated_are_never_patched(case: tuple[dict[str, Any], bool]) -> None:
    pod, _ = case
    verdict = mutate(pod)

    assert verdict.patch == []
    assert verdict.warnings == []
