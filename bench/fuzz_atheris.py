"""Coverage-guided fuzzing of the review path with atheris (libFuzzer), for runs longer than CI's.

    .venv/bin/pip install atheris
    .venv/bin/python -m bench.fuzz_atheris -max_total_time=300 -dict=bench/admission.dict

Each input is a request body. The seeds are the benchmark payloads, so mutations start from realistic
AdmissionReviews. The property: ``parse_review`` either refuses the body with ``EnvelopeError`` (the
server's 400) or both webhooks answer with a response that ``orjson`` serialises, and a patch only when
allowed. Any other exception is a crash that libFuzzer reports with the input that caused it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]

with atheris.instrument_imports():
    import orjson

    from webhook import endpoint, engine, envelope
    from webhook.config import Config

CONFIG = Config()


def one_input(data: bytes) -> None:
    try:
        doc = envelope.parse_review(data)
    except envelope.EnvelopeError:
        return
    for webhook in ("mutate", "validate"):
        request = orjson.loads(orjson.dumps(doc["request"]))  # handle() edits the object in place
        verdict = engine.handle(request, webhook, CONFIG)
        out = endpoint.response(doc["apiVersion"], request["uid"], verdict, allow_patch=webhook == "mutate")
        resp = out["response"]
        if "patch" in resp and (webhook != "mutate" or not resp["allowed"]):
            raise AssertionError("a patch on a denial or from the validating webhook")
        orjson.dumps(out)


def main() -> None:
    from bench.payloads import payloads

    corpus = Path(tempfile.mkdtemp(prefix="vm-admission-fuzz-"))
    for i, p in enumerate(payloads()):
        (corpus / f"seed-{i}.json").write_bytes(p.body)
    atheris.Setup([*sys.argv, str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
