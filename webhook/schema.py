"""``review --schema``: the schema checks the API server runs before it calls any webhook.

VirtualMachineInstances and VirtualMachines (with their templates) are checked against KubeVirt's own CRD
``openAPIV3Schema`` (``webhook/data/kubevirt-crds.yaml``, vendored from KubeVirt), Pods against the Kubernetes
OpenAPI schema that ``kubernetes-validate`` ships for the chosen version (its ``-strict`` variant). The
validator is ``jsonschema``'s; this module only turns the CRD's structural schema into what the API server
enforces with strict field validation (``kubectl apply``'s default since 1.27):

- a property without ``x-kubernetes-preserve-unknown-fields`` and without ``additionalProperties`` takes no
  other keys (an unknown field is an error, not pruned silently);
- ``nullable: true`` admits ``null``; ``x-kubernetes-int-or-string`` fields carry their ``anyOf`` of integer and
  string; ``required``, ``type``, ``enum``, ``pattern``, ``format`` (``date-time``, ``byte``, ``int32``,
  ``int64``), ``minimum``/``maximum`` and ``maxItems`` are checked as written;
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
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import yaml

from webhook.k8s.paths import field as field_path
from webhook.rules.base import Cause, CauseType, json_type

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
# jsonschema keyword -> rule id (docs/rules.md) and cause type
RULES: dict[str, tuple[str, CauseType]] = {
    "required": ("schema.required", "FieldValueRequired"),
    "additionalProperties": ("schema.unknown-field", "FieldValueNotFound"),
    "type": ("schema.type", "FieldValueInvalid"),
    "anyOf": ("schema.type", "FieldValueInvalid"),
    "enum": ("schema.enum", "FieldValueNotSupported"),
    "format": ("schema.format", "FieldValueInvalid"),
    "pattern": ("schema.pattern", "FieldValueInvalid"),
    "minimum": ("schema.range", "FieldValueInvalid"),
    "maximum": ("schema.range", "FieldValueInvalid"),
    "exclusiveMinimum": ("schema.range", "FieldValueInvalid"),
    "exclusiveMaximum": ("schema.range", "FieldValueInvalid"),
    "minItems": ("schema.size", "FieldValueInvalid"),
    "maxItems": ("schema.size", "FieldValueInvalid"),
    "minLength": ("schema.size", "FieldValueInvalid"),
    "maxLength": ("schema.size", "FieldValueInvalid"),
    "minProperties": ("schema.size", "FieldValueInvalid"),
    "maxProperties": ("schema.size", "FieldValueInvalid"),
}
OTHER_RULE: tuple[str, CauseType] = ("schema.invalid", "FieldValueInvalid")


class SchemaError(ValueError):
    """The schema check cannot run as asked (an unsupported ``--kubernetes-version``)."""


# --- formats -----------------------------------------------------------------------------------------------

FORMATS = jsonschema.FormatChecker([])  # only the formats below: jsonschema's others need extra packages
_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


def _date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_DATE_TIME.fullmatch(value))


def _byte(value: object) -> bool:
    if isinstance(value, str):
        base64.b64decode(value, validate=True)
    return True


def _int32(value: object) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


def _int64(value: object) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


FORMATS.checks("date-time")(_date_time)
FORMATS.checks("byte", raises=(binascii.Error, ValueError))(_byte)
FORMATS.checks("int32")(_int32)
FORMATS.checks("int64")(_int64)


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


@cache
def kubevirt_validator(kind: str) -> Any:
    """The compiled validator of a KubeVirt kind's CRD schema (built once, then kept)."""
    schema = _crd_schemas()[kind]
    cls = jsonschema.Draft7Validator
    return cls(schema, format_checker=FORMATS)


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


@cache
def pod_validator(version: str) -> Any:
    """The compiled validator of the Pod schema of ``version`` (strict: unknown fields are errors), kept."""
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    directory = f"kubernetes-json-schema/v{version}-local-strict"
    schema = utils.schema_contents(f"{directory}/pod-v1.json", version)
    definitions = utils.schema_contents(f"{directory}/_definitions.json", version)
    registry: Any = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry, format_checker=FORMATS)


# --- errors as causes ----------------------------------------------------------------------------------------


def _expected(schema: Any) -> str:
    kinds = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kinds, list):
        return " or ".join(k for k in kinds if k != "null") + (" (or null)" if "null" in kinds else "")
    return str(kinds)


def causes_of(error: Any, kind: str) -> Iterator[Cause]:
    """The causes of one jsonschema error (an ``additionalProperties`` error gives one per unknown field)."""
    path = tuple(error.absolute_path)
    where = field_path(path)
    rule, ctype = RULES.get(error.validator, OTHER_RULE)
    instance = error.instance
    if error.validator == "required":
        missing = error.message.split("'")[1] if error.message.count("'") >= 2 else str(error.validator_value)
        yield Cause(
            field_path((*path, missing)),
            f"Required value: the {kind} schema requires {missing}" + (f" in {where}" if where else ""),
            ctype,
            rule,
        )
        return
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties") or ())
        for name in sorted(k for k in instance if k not in known):
            unknown = field_path((*path, name))
            why = (
                "vm-admission's spec form of passthrough, which KubeVirt's CRD does not know: in a cluster use "
                "the vm-admission.io/passthrough annotation (docs/passthrough.md)"
                if path[-2:] == ("domain", "devices") and name == "passthrough"
                else "check its spelling and where it is indented"
            )
            message = f'unknown field "{unknown}": the {kind} schema has no such field (strict field validation, '
            yield Cause(unknown, message + f"kubectl's default, rejects it): {why}", ctype, rule)
        return
    if error.validator == "type":
        message = f"must be of type {_expected(error.schema)}, got {json_type(instance)}"
    elif error.validator == "anyOf" and all(
        isinstance(s, dict) and s.get("type") in ("integer", "string") for s in error.validator_value
    ):
        message = f"must be an integer or a string (int-or-string), got {json_type(instance)}"
    elif error.validator == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value)
        message = f"Unsupported value: {instance!r}: supported values: {allowed}"
    elif error.validator == "pattern":
        message = f"Invalid value: {instance!r}: must match {error.validator_value}"
    elif error.validator == "format":
        message = f"Invalid value: {instance!r}: not a valid {error.validator_value}"
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
            validator = kubevirt_validator(str(kind))
        elif kind == "Pod" and obj.get("apiVersion") == "v1":
            validator = pod_validator(self.kubernetes_version)
        else:
            return []
        if "status" in obj:
            obj = {k: v for k, v in obj.items() if k != "status"}
        errors = sorted(validator.iter_errors(obj), key=lambda e: tuple(map(str, e.absolute_path)))
        return [cause for error in errors for cause in causes_of(error, str(kind))]
