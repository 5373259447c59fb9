"""The AdmissionReview envelope: read a request, write a response in the request's apiVersion.

Pydantic is not used for the object: the raw dict travels untouched so no field a model does not know is
lost. The envelope itself is checked by hand here, field by field, with errors that name the field.
"""

from __future__ import annotations

import binascii
from typing import Any, Literal, TypedDict, cast

import orjson

from webhook.engine import Verdict

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
ApiVersion = Literal["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]


class EnvelopeError(ValueError):
    """The body is not an AdmissionReview we can answer (HTTP 400)."""


class Review(TypedDict):
    apiVersion: str
    request: dict[str, Any]


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


def response(api_version: str, uid: str, verdict: Verdict, *, allow_patch: bool) -> dict[str, Any]:
    """Build the AdmissionReview response; ``patch`` and ``patchType`` only together, and only if allowed."""
    resp: dict[str, Any] = {"uid": uid, "allowed": verdict.allowed}
    if not verdict.allowed:
        status: dict[str, Any] = {
            "status": "Failure",
            "code": verdict.code,
            "reason": verdict.reason,
            "message": verdict.message,
        }
        if verdict.causes:
            # metav1.StatusCause's Go field Type travels as JSON "reason" (the API server keeps only that);
            # "type" is sent too, as the contract names it, for clients that read our answer directly.
            status["details"] = {
                "causes": [
                    {"reason": c.type, "type": c.type, "field": c.field, "message": c.message}
                    for c in verdict.causes[:10]
                ]
            }
        resp["status"] = status
    if verdict.warnings:
        resp["warnings"] = verdict.warnings
    if verdict.audit:
        resp["auditAnnotations"] = verdict.audit
    if allow_patch and verdict.allowed and verdict.patch:
        resp["patchType"] = "JSONPatch"
        resp["patch"] = binascii.b2a_base64(orjson.dumps(verdict.patch), newline=False).decode("ascii")
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": resp}


def errored(api_version: str, uid: str, code: int, message: str) -> dict[str, Any]:
    """A response for a request we could not review (KubeVirt's ``ToAdmissionResponseError`` shape)."""
    verdict = Verdict(
        allowed=False, code=code, message=message, reason="InternalError" if code >= 500 else "BadRequest"
    )
    return response(api_version, uid, verdict, allow_patch=False)
