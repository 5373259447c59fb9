"""The AdmissionReview envelope: read a request, write a response in the request's apiVersion.

A leaf: it knows the wire format (``admission.k8s.io/v1`` and ``v1beta1``) and nothing of the engine, so the
engine's callers (:mod:`webhook.endpoint`) turn a verdict into one of the response constructors below, in the
way of kopf's ``reviews.py`` and controller-runtime's ``response.go``: :func:`allowed` (with warnings, audit
annotations and a patch when there are any), :func:`denied` (a metav1.Status with causes) and :func:`errored`.
The wire shape is the one README.md ("What it checks and changes") and docs/operations.md describe.

Pydantic is not used for the object: the raw dict travels untouched so no field a model does not know is
lost. The envelope itself is checked by hand here, field by field, with errors that name the field.
"""

from __future__ import annotations

import binascii
from typing import Any, Literal, TypedDict, cast

import orjson

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
ApiVersion = Literal["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]
Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
MAX_CAUSES = 10  # causes listed in a denial; the message says "and N more"


class EnvelopeError(ValueError):
    """The body is not an AdmissionReview we can answer (HTTP 400)."""


class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


class AdmissionRequest(TypedDict, total=False):
    """``request`` of an AdmissionReview as the API server sends it; only ``uid`` is checked to be there.

    Rules read the raw dict (``object``, ``oldObject``) and check every field they use: this type says what the
    fields are, not that a caller sent them.
    """

    uid: str
    kind: GroupVersionKind
    resource: GroupVersionResource
    subResource: str
    requestKind: GroupVersionKind
    requestResource: GroupVersionResource
    requestSubResource: str
    name: str
    namespace: str
    operation: Operation
    userInfo: dict[str, Any]
    object: dict[str, Any] | None
    oldObject: dict[str, Any] | None
    dryRun: bool
    options: dict[str, Any] | None


class Review(TypedDict):
    """A checked AdmissionReview: its apiVersion (one of :data:`API_VERSIONS`) and its request."""

    apiVersion: str
    request: AdmissionRequest


class StatusCause(TypedDict):
    """One ``status.details.causes[]`` entry (metav1.StatusCause)."""

    reason: str
    type: str
    field: str
    message: str


class AdmissionResponse(TypedDict, total=False):
    uid: str
    allowed: bool
    status: dict[str, Any]
    warnings: list[str]
    auditAnnotations: dict[str, str]
    patchType: Literal["JSONPatch"]
    patch: str


class ReviewResponse(TypedDict):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    response: AdmissionResponse


def parse_review(body: bytes) -> Review:
    """Decode and check an AdmissionReview body; raise :class:`EnvelopeError` naming what is wrong."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise EnvelopeError("body must be a JSON object (an AdmissionReview)")
    if doc.get("kind") != "AdmissionReview":
        raise EnvelopeError(f"kind must be AdmissionReview, got {doc.get('kind')!r}")
    api_version = doc.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise EnvelopeError(f"apiVersion must be one of {', '.join(API_VERSIONS)}, got {api_version!r}")
    request = doc.get("request")
    if not isinstance(request, dict):
        raise EnvelopeError("request is missing or not an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise EnvelopeError("request.uid is missing or not a string")
    return cast(Review, doc)  # checked above; the document itself, not a copy of its two members


def status_cause(type_: str, field: str, message: str) -> StatusCause:
    """A cause of a denial.

    metav1.StatusCause's Go field Type travels as JSON "reason" (the API server keeps only that); "type" is
    sent too, for clients that read our answer directly.
    """
    return {"reason": type_, "type": type_, "field": field, "message": message}


def _wrap(api_version: str, resp: AdmissionResponse) -> ReviewResponse:
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": resp}


def _extras(
    resp: AdmissionResponse, warnings: list[str] | None, audit: dict[str, str] | None
) -> AdmissionResponse:
    """Warnings and audit annotations, each only when there is one (the lists and dicts themselves, not copies)."""
    if warnings:
        resp["warnings"] = warnings
    if audit:
        resp["auditAnnotations"] = audit
    return resp


def allowed(
    api_version: str,
    uid: str,
    *,
    warnings: list[str] | None = None,
    audit: dict[str, str] | None = None,
    patch: list[dict[str, Any]] | None = None,
) -> ReviewResponse:
    """Allowed, with ``warnings``, ``auditAnnotations`` and a JSON ``patch`` (``patchType`` with it) when given."""
    resp = _extras({"uid": uid, "allowed": True}, warnings, audit)
    if patch:
        resp["patchType"] = "JSONPatch"
        resp["patch"] = binascii.b2a_base64(orjson.dumps(patch), newline=False).decode("ascii")
    return _wrap(api_version, resp)


def denied(
    api_version: str,
    uid: str,
    code: int,
    reason: str,
    message: str,
    causes: list[StatusCause] | None = None,
    *,
    warnings: list[str] | None = None,
    audit: dict[str, str] | None = None,
) -> ReviewResponse:
    """Denied with a metav1.Status (``Failure``, ``code``, ``reason``, ``message``, ``details.causes`` when any:
    the caller lists at most :data:`MAX_CAUSES`). No patch is ever sent with a denial."""
    status: dict[str, Any] = {"status": "Failure", "code": code, "reason": reason, "message": message}
    if causes:
        status["details"] = {"causes": causes}
    return _wrap(api_version, _extras({"uid": uid, "allowed": False, "status": status}, warnings, audit))


def errored(api_version: str, uid: str, code: int, message: str) -> ReviewResponse:
    """A response for a request we could not review (KubeVirt's ``ToAdmissionResponseError`` shape)."""
    return denied(api_version, uid, code, "InternalError" if code >= 500 else "BadRequest", message)
