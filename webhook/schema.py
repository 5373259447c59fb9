"""``review --schema``: the schema checks the API server runs before it calls any webhook.

VirtualMachineInstances and VirtualMachines (with their templates) are checked against KubeVirt's own CRD
``openAPIV3Schema`` (``webhook/data/kubevirt-crds.yaml``, vendored from KubeVirt), Pods against the Kubernetes
OpenAPI schema that ``kubernetes-validate`` ships for the chosen version (its ``-strict`` variant, its
``$ref``s inlined). The validator is ``jsonschema-rs`` (the Rust implementation of JSON Schema; the pure-Python
``jsonschema`` takes ~5 ms per virt-launcher pod, more than the rules and the YAML parsing together, while the
issue bounds the schema check to the cost of the rules alone). This module only turns the CRD's structural
schema into what the API server enforces with strict field validation (``kubectl apply``'s default since 1.27):

- a property without ``x-kubernetes-preserve-unknown-fields`` and without ``additionalProperties`` takes no
  other keys (an unknown field is an error, not pruned silently);
- ``nullable: true`` admits ``null``; ``x-kubernetes-int-or-string`` fields carry their ``anyOf`` of integer and
  string; ``required``, ``type``, ``enum``, ``pattern``, ``format`` (``date-time``, ``byte``),
  ``minimum``/``maximum`` and ``maxItems`` are checked as written;
- ``x-kubernetes-list-type: map`` lists take no two items with the same ``x-kubernetes-list-map-keys`` (a
  custom keyword of the validator), ``set`` lists no repeated item;
- the CEL rules (``x-kubernetes-validations``, 4 in these CRDs) are not evaluated.

``metadata`` is checked as ObjectMeta's few fields users write (strings; labels and annotations map strings
to strings), ``status`` not at all (the API server ignores it on create). Each problem becomes a
:class:`~webhook.rules.base.Cause` with a ``schema.*`` rule id and the field path. The compiled validators are
built once per process and kept (:func:`kubevirt_validator`, :func:`pod_validator`).

The running webhook does not do this: the API server already has when it calls us.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
import yaml

from webhook.k8s.paths import field as field_path
from webhook.rules.base import Cause, CauseType, json_type
from webhook.rules.registry import define

SCHEMA_REQUIRED = define(
    "schema.required",
    "a field the CRD or OpenAPI schema requires is missing (FieldValueRequired; positioned at its nearest parent)",
    field="the missing field",
    page="review-and-deploy.md",
    kind="review",
)
SCHEMA_UNKNOWN_FIELD = define(
    "schema.unknown-field",
    "a field the schema does not know, where it does not preserve unknown fields: strict field validation "
    "rejects it (FieldValueNotFound)",
    field="the unknown field",
    page="review-and-deploy.md",
    kind="review",
)
SCHEMA_TYPE = define(
    "schema.type",
    "a value of the wrong type, or neither integer nor string for an int-or-string field",
    field="the field",
    page="review-and-deploy.md",
    kind="review",
)
SCHEMA_ENUM = define(
    "schema.enum",
    "a value outside the schema's enum (FieldValueNotSupported)",
    field="the field",
    page="review-and-deploy.md",
    kind="review",
)
SCHEMA_PATTERN = define(
    "schema.pattern",
    "a string that does not match the schema's pattern (e.g. a quantity)",
    field="the field",
    page="review-and-deploy.md",
    kind="review",
)
SCHEMA_FORMAT = define(
    "schema.format",
    "a string or number not of the schema's format (`date-time`, `byte`, `int32`, `int64`)",
    field="the field",
    page="review-and-deploy.md",
    kind="review",
)
SCHEMA_RANGE = define(
    "schema.range",
    "a number below the schema's minimum or above its maximum",
    field="the field",
    page="review-and-deploy.md",
    kind="review",
)
SCHEMA_SIZE = define(
    "schema.size",
    "too many or too few items, characters or properties",
    field="the field",
    page="review-and-deploy.md",
    kind="review",
)
SCHEMA_DUPLICATE = define(
    "schema.duplicate",
    "a list item repeating the keys of an earlier one in an `x-kubernetes-list-type: map` list (its "
    "`x-kubernetes-list-map-keys`), or a repeated item of a `set` (FieldValueDuplicate)",
    field="the repeated item",
    page="review-and-deploy.md",
    kind="review",
)
SCHEMA_INVALID = define(
    "schema.invalid",
    "any other schema keyword the value breaks",
    field="the field",
    page="review-and-deploy.md",
    kind="review",
)

KUBEVIRT_GROUP = "kubevirt.io"
KUBEVIRT_KINDS = ("VirtualMachineInstance", "VirtualMachine")
_SCHEMA_KEYWORDS_OF_SCHEMAS = ("items", "not", "additionalProperties")
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf")
_DROPPED = ("description", "x-kubernetes-validations", "default", "example")
_DNS_LABEL_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
OBJECT_META: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": _DNS_LABEL_MAP,
        "annotations": _DNS_LABEL_MAP,
    },
}
# rule id (docs/rules.md) and cause type of each kind of error
RULES: dict[str, tuple[str, CauseType]] = {  # by jsonschema-rs's ValidationErrorKind
    "Required": (SCHEMA_REQUIRED, "FieldValueRequired"),
    "AdditionalProperties": (SCHEMA_UNKNOWN_FIELD, "FieldValueNotFound"),
    "Type": (SCHEMA_TYPE, "FieldValueInvalid"),
    "AnyOf": (SCHEMA_TYPE, "FieldValueInvalid"),
    "Enum": (SCHEMA_ENUM, "FieldValueNotSupported"),
    "Format": (SCHEMA_FORMAT, "FieldValueInvalid"),
    "Pattern": (SCHEMA_PATTERN, "FieldValueInvalid"),
    "Minimum": (SCHEMA_RANGE, "FieldValueInvalid"),
    "Maximum": (SCHEMA_RANGE, "FieldValueInvalid"),
    "ExclusiveMinimum": (SCHEMA_RANGE, "FieldValueInvalid"),
    "ExclusiveMaximum": (SCHEMA_RANGE, "FieldValueInvalid"),
    "MinItems": (SCHEMA_SIZE, "FieldValueInvalid"),
    "MaxItems": (SCHEMA_SIZE, "FieldValueInvalid"),
    "MinLength": (SCHEMA_SIZE, "FieldValueInvalid"),
    "MaxLength": (SCHEMA_SIZE, "FieldValueInvalid"),
    "MinProperties": (SCHEMA_SIZE, "FieldValueInvalid"),
    "MaxProperties": (SCHEMA_SIZE, "FieldValueInvalid"),
    "UniqueItems": (SCHEMA_DUPLICATE, "FieldValueDuplicate"),
    "Custom": (SCHEMA_DUPLICATE, "FieldValueDuplicate"),  # the one custom keyword: x-kubernetes-list-map-keys
}
OTHER_RULE: tuple[str, CauseType] = (SCHEMA_INVALID, "FieldValueInvalid")


class SchemaError(ValueError):
    """The schema check cannot run as asked (an unsupported ``--kubernetes-version``)."""


# --- formats -----------------------------------------------------------------------------------------------


def _byte(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


# jsonschema-rs checks date-time itself; these are the Kubernetes string formats it does not know (formats of
# numbers, int32 and int64, are not checked by the API server for CRDs either)
FORMATS: dict[str, Callable[[str], bool]] = {"byte": _byte}


# --- KubeVirt's CRDs -----------------------------------------------------------------------------------------


def structural(node: Any) -> Any:
    """One CRD schema node as strict field validation reads it (see the module docstring)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: structural(sub) for name, sub in value.items()}
        elif key in _SCHEMA_KEYWORDS_OF_SCHEMAS and isinstance(value, dict):
            out[key] = structural(value)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [structural(sub) for sub in value]
        else:
            out[key] = value
    kind = out.get("type")
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if node.get("nullable") is True and isinstance(kind, str):
        out["type"] = [kind, "null"]
    if (
        kind == "object"
        and node.get("x-kubernetes-preserve-unknown-fields") is not True
        and "additionalProperties" not in out
    ):
        out["additionalProperties"] = False
    return out


def _crd_schemas() -> dict[str, dict[str, Any]]:
    text = resources.files("webhook").joinpath("data/kubevirt-crds.yaml").read_text(encoding="utf-8")
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out: dict[str, dict[str, Any]] = {}
    for crd in yaml.load_all(text, Loader=loader):
        if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
            continue
        kind = crd["spec"]["names"]["kind"]
        [version] = [v for v in crd["spec"]["versions"] if v.get("storage")]
        schema = structural(version["schema"]["openAPIV3Schema"])
        schema["properties"]["metadata"] = OBJECT_META
        schema["properties"].pop("status", None)
        out[kind] = schema
    return out


class ListMapKeys:
    """``x-kubernetes-list-type: map``: no two items of the list may have the same values of the
    ``x-kubernetes-list-map-keys`` (the API server refuses such a list as a duplicate)."""

    def __init__(self, parent_schema: dict[str, Any], value: Any, schema_path: list[str | int]) -> None:
        self.keys = [str(k) for k in value] if isinstance(value, list) else []
        self.map = parent_schema.get("x-kubernetes-list-type") == "map"

    def iter_errors(self, instance: Any) -> Iterator[ValueError]:
        if not self.map or not isinstance(instance, list):
            return
        seen: dict[tuple[Any, ...], int] = {}
        for i, item in enumerate(instance):
            if not isinstance(item, dict):
                continue
            key = tuple(repr(item.get(k)) for k in self.keys)
            if key in seen:
                named = ", ".join(f"{k}={item.get(k)!r}" for k in self.keys)
                yield ValueError(
                    f"[{i}]: Duplicate value: {named}, as item [{seen[key]}] (keys: {', '.join(self.keys)})"
                )
            else:
                seen[key] = i

    def validate(self, instance: Any) -> None:
        for error in self.iter_errors(instance):
            raise error


KEYWORDS: dict[str, Any] = {"x-kubernetes-list-map-keys": ListMapKeys}


@cache
def kubevirt_validator(kind: str) -> jsonschema_rs.Validator:
    """The compiled validator of a KubeVirt kind's CRD schema (built once, then kept)."""
    return jsonschema_rs.Draft7Validator(
        _crd_schemas()[kind], formats=FORMATS, validate_formats=True, keywords=KEYWORDS
    )


# --- Pods: kubernetes-validate's schemas ---------------------------------------------------------------------


def kubernetes_versions() -> list[str]:
    """The Kubernetes versions whose schemas kubernetes-validate ships, oldest first (``1.35.0``, ...)."""
    from kubernetes_validate import utils

    return list(utils.all_versions())


def resolve_version(wanted: str | None) -> str:
    """The shipped schema version to use for ``--kubernetes-version`` (default: the newest)."""
    versions = kubernetes_versions()
    if wanted is None:
        return versions[-1]
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", wanted.strip())
    if not m:
        raise SchemaError(f"--kubernetes-version {wanted!r}: give a version such as 1.33")
    want = (int(m.group(1)), int(m.group(2)))
    usable = [v for v in versions if tuple(int(p) for p in v.split(".")[:2]) <= want]
    if not usable or want > tuple(int(p) for p in versions[-1].split(".")[:2]):
        raise SchemaError(
            f"--kubernetes-version {wanted}: kubernetes-validate ships schemas for {versions[0]} to {versions[-1]}"
        )
    return usable[-1]


def inline_refs(node: Any, definitions: dict[str, Any]) -> Any:
    """``node`` with every ``$ref`` into ``definitions`` replaced by the (inlined) definition, descriptions
    dropped: one self-contained schema (a definition used twice is one shared object, built once)."""
    memo: dict[str, Any] = {}

    def walk(n: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(n, list):
            return [walk(v, stack) for v in n]
        if not isinstance(n, dict):
            return n
        ref = n.get("$ref")
        if isinstance(ref, str) and "#/$defs/" in ref:
            name = ref.split("#/$defs/", 1)[1]
            if name in stack or name not in definitions:  # a recursive type: kept as it is (not in a Pod)
                return n
            if name not in memo:
                memo[name] = walk(definitions[name], (*stack, name))
            rest = {k: walk(v, stack) for k, v in n.items() if k not in ("$ref", "description")}
            return {**memo[name], **rest} if rest else memo[name]
        return {k: walk(v, stack) for k, v in n.items() if k != "description"}

    out = walk(node, ())
    for key in ("$id", "$schema"):
        out.pop(key, None)
    return out


@cache
def pod_validator(version: str) -> jsonschema_rs.Validator:
    """The compiled validator of the Pod schema of ``version`` (strict: unknown fields are errors), kept."""
    from kubernetes_validate import utils

    directory = f"kubernetes-json-schema/v{version}-local-strict"
    schema = utils.schema_contents(f"{directory}/pod-v1.json", version)
    definitions = utils.schema_contents(f"{directory}/_definitions.json", version)["$defs"]
    flat = inline_refs(schema, definitions)
    return jsonschema_rs.Draft202012Validator(flat, formats=FORMATS, validate_formats=True)


# --- errors as causes ----------------------------------------------------------------------------------------


def _types(kinds: list[str]) -> str:
    return " or ".join(k for k in kinds if k != "null") + (" (or null)" if "null" in kinds else "")


def causes_of(error: jsonschema_rs.ValidationError, kind: str) -> Iterator[Cause]:
    """The causes of one validation error (an ``additionalProperties`` error gives one per unknown field)."""
    path = tuple(error.instance_path)
    where = field_path(path)
    name = type(error.kind).__name__
    rule, ctype = RULES.get(name, OTHER_RULE)
    detail: dict[str, Any] = error.kind.as_dict()
    instance = error.instance
    if name == "Required":
        missing = str(detail.get("property"))
        yield Cause(
            field_path((*path, missing)),
            f"Required value: the {kind} schema requires {missing}" + (f" in {where}" if where else ""),
            ctype,
            rule,
        )
        return
    if name == "AdditionalProperties":
        for extra in sorted(detail.get("unexpected") or []):
            unknown = field_path((*path, extra))
            why = (
                "vm-admission's spec form of passthrough, which KubeVirt's CRD does not know: in a cluster use "
                "the vm-admission.io/passthrough annotation (docs/passthrough.md)"
                if path[-2:] == ("domain", "devices") and extra == "passthrough"
                else "check its spelling and where it is indented"
            )
            message = f'unknown field "{unknown}": the {kind} schema has no such field (strict field validation, '
            yield Cause(unknown, message + f"kubectl's default, rejects it): {why}", ctype, rule)
        return
    if name == "Type":
        message = f"must be of type {_types(list(detail.get('types') or []))}, got {json_type(instance)}"
    elif name == "AnyOf":
        message = f"must be an integer or a string (int-or-string), got {json_type(instance)}"
    elif name == "Enum":
        allowed = ", ".join(repr(v) for v in detail.get("options") or [])
        message = f"Unsupported value: {instance!r}: supported values: {allowed}"
    elif name == "Pattern":
        message = f"Invalid value: {instance!r}: must match {detail.get('pattern')}"
    elif name == "Format":
        message = f"Invalid value: {instance!r}: not a valid {detail.get('format')}"
    elif name == "UniqueItems":
        message = "Duplicate value: the list is a set (x-kubernetes-list-type: set): its items must be unique"
    elif name == "Custom":
        index, _, message = str(detail.get("message") or error.message).partition(": ")
        where = field_path(path) + index if index.startswith("[") else where
    else:
        message = f"Invalid value: {error.message}"
    yield Cause(where, message, ctype, rule)


class SchemaValidator:
    """``review``'s schema check: call it with an object, get its schema causes (none for other kinds)."""

    def __init__(self, kubernetes_version: str | None = None) -> None:
        self.kubernetes_version = resolve_version(kubernetes_version)

    def __call__(self, obj: dict[str, Any]) -> list[Cause]:
        kind = obj.get("kind")
        group, _, _ = str(obj.get("apiVersion") or "").rpartition("/")
        if kind in KUBEVIRT_KINDS and group == KUBEVIRT_GROUP:
            validator: jsonschema_rs.Validator = kubevirt_validator(str(kind))
        elif kind == "Pod" and obj.get("apiVersion") == "v1":
            validator = pod_validator(self.kubernetes_version)
        else:
            return []
        if "status" in obj:
            obj = {k: v for k, v in obj.items() if k != "status"}
        return [cause for error in validator.iter_errors(obj) for cause in causes_of(error, str(kind))]
