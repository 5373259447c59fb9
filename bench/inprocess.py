"""In-process benchmark: µs per review on the full path, against a naive reference and bare orjson.

- ``ours``: bytes -> ``envelope.parse_review`` -> ``engine.handle`` -> ``endpoint.response`` -> ``orjson.dumps``,
  what the server does per request minus HTTP;
- ``naive``: how a webhook is commonly written: ``json.loads``, ``copy.deepcopy`` of the object, the same
  rules run on the copy, ``jsonpatch.make_patch(original, copy)``, base64, ``json.dumps`` (the rules are
  ours in both, so the ratio measures the envelope and patch strategy, not different policies);
- ``bare``: ``orjson.dumps(orjson.loads(body))``, the floor any Python webhook pays for the same envelope.
"""

from __future__ import annotations

import base64
import copy
import gc
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import jsonpatch
import orjson

from bench.payloads import Payload, Webhook, payloads
from webhook import endpoint, engine, envelope
from webhook.config import Config

Runner = Callable[[bytes], bytes]


def ours(webhook: Webhook, config: Config) -> Runner:
    """The production path for one webhook, bytes in, bytes out."""

    def run(body: bytes) -> bytes:
        doc = envelope.parse_review(body)
        request = doc["request"]
        verdict = engine.handle(request, webhook, config)
        resp = endpoint.response(doc["apiVersion"], request["uid"], verdict, allow_patch=webhook == "mutate")
        return orjson.dumps(resp)

    return run


def naive(webhook: Webhook, config: Config) -> Runner:
    """The naive reference: stdlib json, deepcopy, the same rules on the copy, then a diff for the patch."""

    def run(body: bytes) -> bytes:
        doc = json.loads(body)
        request = doc["request"]
        original = request["object"]
        mutated = copy.deepcopy(original)
        verdict = engine.handle({**request, "object": mutated}, webhook, config)
        resp: dict[str, object] = {"uid": request["uid"], "allowed": verdict.allowed}
        if not verdict.allowed:
            resp["status"] = {"code": verdict.code, "message": verdict.message}
        if verdict.warnings:
            resp["warnings"] = verdict.warnings
        if webhook == "mutate" and verdict.allowed:
            ops = jsonpatch.make_patch(original, mutated).patch
            if ops:
                resp["patchType"] = "JSONPatch"
                resp["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
        return json.dumps({"apiVersion": doc["apiVersion"], "kind": "AdmissionReview", "response": resp}).encode()

    return run


def bare(body: bytes) -> bytes:
    """The floor: decode and re-encode the same envelope with orjson."""
    return orjson.dumps(orjson.loads(body))


@dataclass(frozen=True, slots=True)
class Timing:
    median_us: float
    p99_us: float


@dataclass(frozen=True, slots=True)
class Row:
    payload: Payload
    ours: Timing
    naive: Timing
    bare: Timing

    @property
    def vs_naive(self) -> float:
        """How many times faster than the naive reference (median)."""
        return self.naive.median_us / self.ours.median_us

    @property
    def vs_bare(self) -> float:
        """Our median as a multiple of the bare orjson round trip."""
        return self.ours.median_us / self.bare.median_us


def measure(fn: Runner, body: bytes, iterations: int) -> Timing:
    """Median and p99 of ``iterations`` timed calls after a short warm-up."""
    for _ in range(min(iterations, 200)):
        fn(body)
    samples: list[int] = []
    clock = time.perf_counter_ns
    gc.collect()
    for _ in range(iterations):
        t0 = clock()
        fn(body)
        samples.append(clock() - t0)
    samples.sort()
    median = samples[len(samples) // 2]
    p99 = samples[min(len(samples) - 1, (len(samples) * 99) // 100)]
    return Timing(median / 1000, p99 / 1000)


def check_equivalent(p: Payload, config: Config) -> None:
    """Refuse to compare paths that disagree: ours and naive must give the same verdict and final object."""
    mine = orjson.loads(ours(p.webhook, config)(p.body))["response"]
    ref = json.loads(naive(p.webhook, config)(p.body))["response"]
    if mine["allowed"] != ref["allowed"]:
        raise AssertionError(f"{p.name}/{p.webhook}: ours and naive disagree on allowed")
    obj = orjson.loads(p.body)["request"]["object"]
    patched = [
        jsonpatch.JsonPatch(orjson.loads(base64.b64decode(r["patch"])) if "patch" in r else []).apply(obj)
        for r in (mine, ref)
    ]
    if patched[0] != patched[1]:
        raise AssertionError(f"{p.name}/{p.webhook}: ours and naive patch to different objects")


def run(iterations: int = 5000, config: Config | None = None) -> list[Row]:
    config = config or Config()
    rows = []
    for p in payloads():
        check_equivalent(p, config)
        rows.append(
            Row(
                p,
                ours=measure(ours(p.webhook, config), p.body, iterations),
                naive=measure(naive(p.webhook, config), p.body, max(1, iterations // 4)),
                bare=measure(bare, p.body, iterations),
            )
        )
    return rows


def table(rows: list[Row]) -> str:
    """A Markdown table of the results."""
    lines = [
        "| payload | webhook | bytes | ours median / p99 µs | naive median µs | bare orjson median µs "
        "| naive ÷ ours | ours ÷ bare |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.payload.name} | {r.payload.webhook} | {len(r.payload.body)} "
            f"| {r.ours.median_us:.1f} / {r.ours.p99_us:.1f} | {r.naive.median_us:.1f} | {r.bare.median_us:.1f} "
            f"| {r.vs_naive:.1f}x | {r.vs_bare:.2f}x |"
        )
    return "\n".join(lines)


def verdicts(rows: list[Row]) -> list[str]:
    """The issue's in-process targets, each with PASS/FAIL."""
    out = []
    pod = [r for r in rows if r.payload.name == "launcher-pod"]
    for r in pod:
        out.append(
            _target(f"launcher-pod {r.payload.webhook}: ≥ 3x faster than naive", r.vs_naive >= 3, f"{r.vs_naive:.1f}x")
        )
        out.append(_target(f"launcher-pod {r.payload.webhook}: ≤ 2x bare orjson", r.vs_bare <= 2, f"{r.vs_bare:.2f}x"))
    for r in rows:
        if r.payload.name == "unrelated-pod":
            out.append(_target("fast path ≤ 20 µs", r.ours.median_us <= 20, f"{r.ours.median_us:.1f} µs"))
    return out


def _target(what: str, ok: bool, got: str) -> str:
    return f"{'PASS' if ok else 'FAIL'}  {what} (measured {got})"


if __name__ == "__main__":
    result = run()
    print(table(result))
    print("\n".join(verdicts(result)))
