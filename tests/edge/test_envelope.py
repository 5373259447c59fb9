"""The AdmissionReview envelope (webhook.envelope): what a malformed review is told, and the response's status,
causes and patch as the API server reads them."""

from __future__ import annotations

import base64

import orjson
import pytest

from webhook import endpoint, engine, envelope
from webhook.config import load_config
from webhook.rules.base import Cause, Findings


def test_envelope_errors_name_what_is_wrong() -> None:
    for body, msg in [
        (b"{", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"kind": "Pod"}', "kind must be AdmissionReview"),
        (b'{"kind": "AdmissionReview", "apiVersion": "v1"}', "apiVersion"),
        (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}', "request"),
        (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {}}', "uid"),
    ]:
        with pytest.raises(envelope.EnvelopeError, match=msg):
            envelope.parse_review(body)


def test_denial_lists_ten_causes_then_counts_the_rest() -> None:
    causes = [Cause(f"spec.f{i}", f"problem {i}") for i in range(12)]
    verdict = engine.to_verdict(Findings(causes=causes), load_config(None))
    resp = endpoint.response("admission.k8s.io/v1beta1", "u1", verdict, allow_patch=True)
    assert resp["apiVersion"] == "admission.k8s.io/v1beta1"
    r = resp["response"]
    assert r["uid"] == "u1" and r["allowed"] is False and "patch" not in r
    assert r["status"]["code"] == 422 and r["status"]["reason"] == "Invalid"
    assert len(r["status"]["details"]["causes"]) == 10
    assert r["status"]["message"].endswith(", and 2 more")
    assert r["status"]["details"]["causes"][0] == {
        "reason": "FieldValueInvalid",  # metav1.StatusCause's JSON name for its type (what the API server keeps)
        "type": "FieldValueInvalid",
        "field": "spec.f0",
        "message": "problem 0",
    }


def test_patched_response_carries_patch_and_patch_type_together() -> None:
    verdict = engine.Verdict(patch=[{"op": "add", "path": "/a", "value": 1}])
    r = endpoint.response("admission.k8s.io/v1", "u", verdict, allow_patch=True)["response"]
    assert r["patchType"] == "JSONPatch"
    assert orjson.loads(base64.b64decode(r["patch"])) == verdict.patch
    assert "patch" not in endpoint.response("admission.k8s.io/v1", "u", verdict, allow_patch=False)["response"]
