"""AdmissionReviews as kube-apiserver sends them (``make_review``, from :mod:`tests.testkit.objects`), reading a
response's patch and applying it, and KubeVirt's CRD schema as the cluster checks objects against it."""

from __future__ import annotations

import base64
import copy
import functools
from typing import Any

import jsonpatch
import jsonschema
import orjson
import pytest
import yaml

# the review builder lives with the objects (bench uses it too)
from tests.testkit.objects import make_review as make_review
from tests.testkit.paths import REPO
from webhook import build


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
