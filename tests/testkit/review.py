"""AdmissionReviews as kube-apiserver sends them (``make_review``, the kinds' GVK and resource), reading a
response's patch and applying it, and KubeVirt's CRD schema as the cluster checks objects against it."""

from __future__ import annotations

import base64
import copy
import functools
import uuid
from typing import Any

import jsonpatch
import jsonschema
import orjson
import pytest
import yaml

from tests.testkit.objects import GVK, RESOURCE
from tests.testkit.paths import REPO
from webhook import build


def make_review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    api_version: str = "admission.k8s.io/v1",
    dry_run: bool = False,
    kind: str | None = None,
) -> dict[str, Any]:
    """An AdmissionReview request for ``obj`` (kind taken from the object unless given)."""
    k = kind or (obj or old or {}).get("kind", "Pod")
    gvk = GVK.get(k, {"group": "example.com", "version": "v1", "kind": k})
    resource = {"group": gvk["group"], "version": gvk["version"], "resource": RESOURCE.get(k, k.lower() + "s")}
    meta = (obj or old or {}).get("metadata", {})
    return {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": gvk,
            "resource": resource,
            "requestKind": gvk,
            "requestResource": resource,
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", "default"),
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
            "object": copy.deepcopy(obj),
            "oldObject": copy.deepcopy(old),
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def patch_ops(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON Patch a response carries ([] when none); asserts patch and patchType travel together."""
    resp = response["response"]
    assert ("patch" in resp) == ("patchType" in resp), resp
    if "patch" not in resp:
        return []
    assert resp["patchType"] == "JSONPatch"
    ops: list[dict[str, Any]] = orjson.loads(base64.b64decode(resp["patch"]))
    return ops


def apply_response(obj: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """Apply a response's patch to a copy of ``obj`` with jsonpatch (RFC 6902), as the API server does."""
    return jsonpatch.JsonPatch(patch_ops(response)).apply(copy.deepcopy(obj))  # type: ignore[no-any-return]


# KubeVirt's VMI and VM CRDs: the copy `review --schema` ships
CRDS = REPO / "webhook" / "data" / "kubevirt-crds.yaml"


@functools.cache
def _crd_validator(kind: str) -> Any:
    for doc in yaml.safe_load_all(CRDS.read_text(encoding="utf-8")):
        if doc and doc.get("kind") == "CustomResourceDefinition" and doc["spec"]["names"]["kind"] == kind:
            schema = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            return cls(schema)
    raise LookupError(f"no CRD for kind {kind}")


def assert_crd_valid(obj: dict[str, Any]) -> None:
    """The VMI/VM is one a cluster with KubeVirt's CRDs accepts (openAPIV3Schema, via jsonschema)."""
    _crd_validator(obj["kind"]).validate(obj)


# Tests that count calls by monkeypatching a module function: compiled callers call it natively and never see
# the patch, so those tests check the pure build only (the behaviour they count is the same in both).
pure_python_only = pytest.mark.skipif(
    build.flavor() == "mypyc", reason="counts calls through a monkeypatched module function (pure build only)"
)
