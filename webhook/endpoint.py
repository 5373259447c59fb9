"""The admission endpoints (``POST /mutate``, ``POST /validate``) as a raw ASGI handler: the hot path.

Per review: one bounded body read -> ``envelope.parse_review`` -> ``engine.handle`` -> :func:`response` (the
verdict as one of the envelope's constructors) -> ``orjson.dumps``, two plain-number metric updates and, at
the default log level, a log line only for denials and errors. The edge rules (docs/operations.md, "Serving")
live here: 415 for another content type, 413 by Content-Length first and by counted bytes, 400 with a JSON
error for a body that is not an AdmissionReview, the uid echoed after a rule's exception, 405 for other
methods, never a 500 page.

No web framework is imported: the module is compiled with mypyc with the rest of the hot path (setup.py).
:class:`Front` is the ASGI app uvicorn runs; :mod:`webhook.server` gives it the FastAPI app for everything else.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter
from typing import Any, Protocol, cast

import orjson

from webhook import engine, envelope
from webhook.config import Config
from webhook.k8s.snapshot import ClusterSnapshot
from webhook.metrics import Metrics

log = logging.getLogger("vm_admission.server")
review_log = logging.getLogger("vm_admission.review")

MAX_BODY = 7 * 1024 * 1024  # kube-apiserver's own request limit is 3 MiB; objects fit well within 7 MiB
DRAIN_CAP = 2 * MAX_BODY  # read (and drop) this much of an oversized body so the client sees the 413
JSON = "application/json"

# The ASGI callables (the same shapes as starlette.types, without importing a web stack).
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


ADMISSION_PATHS: dict[str, engine.Webhook] = {"/mutate": "mutate", "/validate": "validate"}


class ReviewState(Protocol):
    """What a review reads of the server's state (``webhook.server.AppState``)."""

    config: Config
    metrics: Metrics

    def snapshot(self) -> ClusterSnapshot | None: ...


# Responses of the admission endpoints are raw ASGI messages; these headers are the same on every one.
_JSON_HEADERS = [(b"content-type", JSON.encode())]
_JSON_BYTES = JSON.encode()
_TOO_LARGE = f"body larger than {MAX_BODY} bytes"


def response(api_version: str, uid: str, verdict: engine.Verdict, *, allow_patch: bool) -> envelope.ReviewResponse:
    """The verdict as the AdmissionReview response: denied with its first causes, or allowed with its warnings,
    audit annotations and, when ``allow_patch`` (the mutating webhook), its patch."""
    if not verdict.allowed:
        causes = [envelope.status_cause(c.type, c.field, c.message) for c in verdict.causes[: envelope.MAX_CAUSES]]
        return envelope.denied(
            api_version,
            uid,
            verdict.code,
            verdict.reason,
            verdict.message,
            causes,
            warnings=verdict.warnings,
            audit=verdict.audit,
        )
    patch = verdict.patch if allow_patch else None
    return envelope.allowed(api_version, uid, warnings=verdict.warnings, audit=verdict.audit, patch=patch)


class BodyError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


class ClientGone(Exception):
    """The client disconnected before its body was read: there is nobody to answer."""


def _start(status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> Message:
    """The ``http.response.start`` message of a JSON answer ``body``."""
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _send(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send(_start(status, body, extra))
    await send({"type": "http.response.body", "body": body})


def _declared_length(scope: Scope) -> int:
    """Check the request's Content-Type (415) and return its Content-Length (-1 when it has none)."""
    ctype = b""
    declared: bytes | None = None
    for name, value in scope["headers"]:  # ASGI servers give header names in lower case
        if name == b"content-type":
            ctype = value
        elif name == b"content-length":
            declared = value
    if ctype != _JSON_BYTES and ctype.split(b";", 1)[0].strip().lower() != _JSON_BYTES:
        got = ctype.decode("latin-1")
        raise BodyError(415, "content_type", f"content type must be {JSON}, got {got or 'none'!r}")
    if declared is None:
        return -1
    try:
        return int(declared)
    except ValueError:
        raise BodyError(400, "bad_json", "invalid Content-Length") from None


async def _streamed_body(receive: Receive, first: dict[str, Any]) -> bytes:
    """A body whose first message ``first`` is not all of it, counted against :data:`MAX_BODY` (a disconnect
    instead of a body is :class:`ClientGone`).

    The usual body (uvicorn hands it over in one message) is read inline by :func:`admit`: one coroutine less
    per review.
    """
    if first["type"] != "http.request":
        raise ClientGone
    body: bytes = first.get("body", b"")
    chunks = [body]
    size = len(body)
    while True:
        message = _dict(await receive())
        if message["type"] != "http.request":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            if message.get("more_body", False):
                await _drain(receive, size)
            raise BodyError(413, "too_large", _TOO_LARGE)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _dict(message: Message) -> dict[str, Any]:
    """An ASGI message as the dict servers send (compiled code reads a dict much faster than a mapping)."""
    return message if isinstance(message, dict) else dict(message)


async def _drain(receive: Receive, seen: int = 0) -> None:
    """Discard the rest of an oversized body (up to a cap), so an ordinary client reads the 413 cleanly."""
    with contextlib.suppress(Exception):
        while seen <= DRAIN_CAP:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


def _text(value: Any, limit: int = 253) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _log_review(
    level: int, req: dict[str, Any], uid: str, webhook: str, operation: str, label: str, ops: int, seconds: float
) -> None:
    req_kind = req.get("kind")
    review_log.log(
        level,
        "review",
        extra={
            "fields": {
                "uid": uid,
                "webhook": webhook,
                "kind": _text(req_kind.get("kind")) if isinstance(req_kind, dict) else "",
                "namespace": _text(req.get("namespace")),
                "name": _text(req.get("name")),
                "operation": operation,
                "dryRun": req.get("dryRun") is True,
                "verdict": label,
                "patchOps": ops,
                "durationMs": round(seconds * 1000, 3),
            }
        },
    )


async def admit(state: ReviewState, webhook: engine.Webhook, scope: Scope, receive: Receive, send: Send) -> None:
    """``POST /mutate`` and ``POST /validate`` as a raw ASGI handler: no routing, no Request/Response objects.

    Per review: one body read, ``parse_review`` -> ``engine.handle`` -> :func:`response` -> ``orjson.dumps``,
    two plain-integer metric updates and, at the default log level, a log line only for denials and errors
    (allowed and patched reviews are logged at ``debug``).
    """
    if scope["method"] != "POST":
        await _send(send, 405, b'{"error":"method not allowed; use POST"}', [(b"allow", b"POST")])
        return
    metrics = state.metrics
    tally = metrics.reviews.tally  # plain numbers (webhook.review_counters), compiled: native updates
    gauge = tally.in_flight_for(webhook)
    gauge.inc()
    started = perf_counter()
    try:
        try:
            if _declared_length(scope) > MAX_BODY:  # the 415 and a bad Content-Length's 400 are raised there
                await _drain(receive)
                raise BodyError(413, "too_large", _TOO_LARGE)
            message = _dict(await receive())
            if message["type"] == "http.request" and not message.get("more_body", False):
                body: bytes = message.get("body", b"")  # the usual case: the whole body in one message
                if len(body) > MAX_BODY:
                    raise BodyError(413, "too_large", _TOO_LARGE)
            else:
                body = await _streamed_body(receive, message)
            doc = envelope.parse_review(body)
        # Each except clause binds its own name: compiled, one name would keep the type of its first binding.
        except BodyError as refused:
            metrics.errors.labels(refused.reason).inc()
            await _send(send, refused.status, orjson.dumps({"error": str(refused)}))
            return
        except envelope.EnvelopeError as not_review:
            text = str(not_review)
            reason = "bad_json" if text.startswith("body is not valid JSON") else "not_admission_review"
            metrics.errors.labels(reason).inc()
            await _send(send, 400, orjson.dumps({"error": text}))
            return
        api_version, req = doc["apiVersion"], cast(dict[str, Any], doc["request"])
        uid: str = req["uid"]
        kind = engine.object_kind(req) or "other"
        operation = _text(req.get("operation")) or "other"
        patch_ops = 0
        level = logging.DEBUG
        try:
            verdict = engine.handle(req, webhook, state.config, state.snapshot())
            if verdict.causes or verdict.would_deny:
                metrics.count_denials(webhook, verdict)
            out = response(api_version, uid, verdict, allow_patch=webhook == "mutate")
            patch_ops = len(verdict.patch) if "patch" in out["response"] else 0
            if patch_ops:
                label = "patched"
            elif not verdict.allowed:
                label, level = "denied", logging.INFO
            else:
                label = "warned" if verdict.warnings else "allowed"
                if "would-deny" in verdict.audit:  # enforcement: warn turned a denial into warnings
                    level = logging.INFO
        except Exception as exc:
            log.exception("review failed inside the rules", extra={"fields": {"uid": uid, "webhook": webhook}})
            metrics.errors.labels("internal").inc()
            out = envelope.errored(api_version, uid, 500, f"internal error while reviewing: {type(exc).__name__}")
            label, level = "error", logging.ERROR
        payload = orjson.dumps(out)
        seconds = perf_counter() - started
        tally.observe(webhook, kind, operation, label, seconds)
        if review_log.isEnabledFor(level):
            _log_review(level, req, uid, webhook, operation, label, patch_ops, seconds)
        await send(_start(200, payload))  # _send's two messages, inline: no coroutine per answered review
        await send({"type": "http.response.body", "body": payload})
    except ClientGone:
        return
    except Exception:  # a bug in this function: still never a 500 page
        log.exception("unexpected error at the edge")
        metrics.errors.labels("internal").inc()
        with contextlib.suppress(Exception):
            await _send(send, 400, b'{"error":"the request could not be processed"}')
    finally:
        gauge.dec()


class Front:
    """The ASGI app ``vm-admission serve`` runs: ``/mutate`` and ``/validate`` are answered by :func:`admit`,
    every other request and the lifespan by ``fallback`` (the FastAPI app: health, readiness, metrics).

    A compiled class, so a review enters compiled code at once, without an interpreted frame in front of it.
    """

    def __init__(self, state: ReviewState, fallback: App) -> None:
        self.state = state
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            webhook = ADMISSION_PATHS.get(scope["path"])
            if webhook is not None:
                await admit(self.state, webhook, scope, receive, send)
                return
        await self.fallback(scope, receive, send)
