"""The HTTPS service (docs/operations.md): FastAPI routes, edge limits, reloads, and the uvicorn server.

The hot path (``/mutate``, ``/validate``) is a raw ASGI handler (:mod:`webhook.endpoint`, compiled with the rest
of the hot path) in front of the FastAPI app, on uvicorn with the httptools parser. FastAPI serves health,
readiness and metrics. Nothing on the hot path touches the disk: the config is swapped by reference when the
file changes, and the certificate is reloaded into the live TLS context by a background poll.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response

from webhook import certs
from webhook.cluster.client import api_client
from webhook.cluster.view import ClusterView
from webhook.config import Config, ConfigError, load_config
from webhook.endpoint import JSON, Front
from webhook.k8s.snapshot import ClusterSnapshot
from webhook.metrics import Metrics
from webhook.reload import FileWatcher

log = logging.getLogger("vm_admission.server")


# --------------------------------------------------------------------------------------------- logging


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message and the record's ``fields`` extra."""

    _second: int = -1
    _stamp: str = ""

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # one strftime per second, not per line (a line per review adds up)
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": self._timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    # Our lines name neither thread nor process: don't collect them for every record.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True


# ----------------------------------------------------------------------------------------------- state


class ConfigWatcher:
    """Reloads the config file when its content changes (:class:`webhook.reload.FileWatcher`, the certificates'
    watcher too); a bad file keeps the last good config."""

    def __init__(self, path: str | Path, apply: Callable[[Config], None], on_reload: Callable[[bool], None]) -> None:
        self.path = Path(path)
        self._apply, self._on_reload = apply, on_reload
        self._watcher = FileWatcher(
            (self.path,), lambda: load_config(self.path), self._loaded, self._rejected, (ConfigError,)
        )

    def check(self) -> bool | None:
        """True reloaded, False rejected (last good kept), None unchanged."""
        return self._watcher.check()

    def _loaded(self, config: Config) -> None:
        self._apply(config)
        log.info("config reloaded", extra={"fields": {"config": str(self.path)}})
        self._on_reload(True)

    def _rejected(self, error: str) -> None:
        log.error("config reload failed; keeping the last good config", extra={"fields": {"error": error}})
        self._on_reload(False)


@dataclass
class AppState:
    """What the routes read. ``config`` is replaced whole on reload (a reference swap, no locking needed)."""

    config: Config = field(default_factory=Config)
    metrics: Metrics = field(default_factory=Metrics)
    certs: certs.CertReloader | None = None
    config_watcher: ConfigWatcher | None = None
    certs_loaded: bool = False
    shutting_down: bool = False
    reload_interval: float = 5.0
    cluster: ClusterView | None = None  # the cluster view (docs/cluster-view.md), when cluster.watch is on
    started: float = field(default_factory=time.monotonic)
    _sync_timed_out: bool = False

    @property
    def ready(self) -> bool:
        return self.certs_loaded and not self.shutting_down and self.cluster_ready

    @property
    def cluster_ready(self) -> bool:
        """True once the view synced, or once ``cluster.syncTimeout`` passed without it (said once)."""
        if self.cluster is None or self.cluster.snapshot.synced:
            return True
        timeout = self.config.cluster.syncTimeout
        if time.monotonic() - self.started < timeout:
            return False
        if not self._sync_timed_out:
            self._sync_timed_out = True
            log.warning(
                "cluster view not synced; serving without preflight until it syncs",
                extra={"fields": {"syncTimeoutSeconds": timeout}},
            )
        return True

    def snapshot(self) -> ClusterSnapshot | None:
        """The cluster snapshot a review reads (one reference, taken once per review)."""
        return self.cluster.snapshot if self.cluster is not None else None

    def poll_once(self) -> None:
        """One round of reload checks (certificate and config); never raises."""
        for check in (
            self.certs.check if self.certs else None,
            self.config_watcher.check if self.config_watcher else None,
        ):
            if check is None:
                continue
            try:
                check()
            except Exception:
                log.exception("reload check failed")

    async def poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.reload_interval)
            self.poll_once()

    def set_config(self, config: Config) -> None:
        self.config = config

    def config_reloaded(self, ok: bool) -> None:
        self.metrics.config_reloads.labels("success" if ok else "failure").inc()
        if ok:
            self.metrics.config_last_reload.set(time.time())

    def cert_reloaded(self, ok: bool) -> None:
        self.metrics.cert_reloads.labels("success" if ok else "failure").inc()
        if ok:
            self.metrics.cert_last_reload.set(time.time())


# ---------------------------------------------------------------------------------------------- routes


def create_app(state: AppState) -> Front:
    """The ASGI app over ``state``: :class:`webhook.endpoint.Front` answers ``/mutate`` and ``/validate``, in
    front of a FastAPI app that serves health, readiness and metrics and runs the lifespan (reload polling when
    ``state`` has watchers, the cluster view when it is on).

    The admission endpoints bypass FastAPI: each review would otherwise pay Starlette's middleware stack,
    routing, a Request and a Response object (about a third of a request's time under load, see
    docs/benchmarks.md).
    """

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = None
        if state.certs is not None or state.config_watcher is not None:
            task = asyncio.create_task(state.poll_forever())
        if state.cluster is not None:
            state.started = time.monotonic()
            state.cluster.start()
        try:
            yield
        finally:
            state.shutting_down = True
            if state.cluster is not None:
                state.cluster.stop()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(title="vm-admission", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    @app.get("/readyz")
    async def readyz() -> Response:
        if state.ready:
            return Response(b'{"status":"ready"}', media_type=JSON)
        why = (
            "shutting down"
            if state.shutting_down
            else "certificates not loaded"
            if not state.certs_loaded
            else "cluster view not synced yet"
        )
        return Response(orjson.dumps({"status": "not ready", "reason": why}), status_code=503, media_type=JSON)

    @app.get("/metrics")
    async def metrics() -> Response:
        if state.certs is not None:
            state.metrics.cert_expiry.set(state.certs.seconds_left())
        body, ctype = state.metrics.render()
        return Response(body, media_type=ctype)

    return Front(state, app)


# ---------------------------------------------------------------------------------------------- runner


class WebhookServer(uvicorn.Server):
    """uvicorn's server with a readiness drain: on SIGTERM/SIGINT ``/readyz`` fails for ``drain_seconds``
    while requests are still served (so endpoints are updated first), then uvicorn's graceful shutdown runs
    (listeners closed, in-flight requests completed). A second signal exits at once.
    """

    def __init__(self, config: uvicorn.Config, state: AppState, drain_seconds: float) -> None:
        super().__init__(config)
        self.state = state
        self.drain_seconds = drain_seconds
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not recorded in _captured_signals: uvicorn would re-raise it after shutdown and we exit 0 instead.
        if self._drain_until is not None:
            self.should_exit = True
            if sig == signal.SIGINT:
                self.force_exit = True
            return
        self.state.shutting_down = True
        self._drain_until = time.monotonic() + self.drain_seconds
        log.info("shutdown requested; readiness off, draining", extra={"fields": {"drainSeconds": self.drain_seconds}})

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and time.monotonic() >= self._drain_until:
            return True
        return await super().on_tick(counter)


def build_state(args: argparse.Namespace) -> AppState:
    """Load certs and config for ``serve``; raises ConfigError / OSError / ssl.SSLError with a clear message."""
    state = AppState(reload_interval=float(getattr(args, "reload_interval", 5.0)))
    if args.config:
        state.config = load_config(args.config)
        state.config_watcher = ConfigWatcher(args.config, state.set_config, state.config_reloaded)
    else:
        state.config = load_config(None)
    state.metrics.config_last_reload.set(time.time())
    state.cluster = build_cluster_view(state, getattr(args, "kubeconfig", None))
    certs.ensure_certs(args.cert_dir, args.dns_name)
    state.certs = certs.CertReloader(args.cert_dir, args.client_ca, state.cert_reloaded)
    state.metrics.cert_last_reload.set(time.time())
    state.certs_loaded = True
    return state


def build_cluster_view(state: AppState, kubeconfig: str | None) -> ClusterView | None:
    """The cluster view when ``cluster.watch`` is on (started by the app's lifespan); None otherwise.

    Credentials that cannot be loaded are logged and leave the view off: the webhook still serves.
    """
    cfg = state.config.cluster
    if not cfg.watch:
        return None
    path = kubeconfig or cfg.kubeconfig
    try:
        client = api_client(path)
    except Exception as exc:
        log.error(
            "cluster view off: cannot load API credentials",
            extra={"fields": {"kubeconfig": path or "(in-cluster service account)", "error": str(exc)[:300]}},
        )
        return None
    log.info("cluster view on", extra={"fields": {"kubeconfig": path or "(in-cluster service account)"}})
    state.metrics.cluster_view_enabled.set(1)
    return ClusterView(
        client,
        observer=state.metrics,
        lost_after=max(cfg.syncTimeout, 1.0),
        resource_annotation=state.config.networks.resourceNameAnnotation,
        crd_retry=cfg.crdRetry,
    )
