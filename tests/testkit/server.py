"""A ``vm-admission serve`` process over HTTPS, verified with its generated CA like kube-apiserver: the tests'
fixtures (tests/conftest.py) and the benchmarks start the webhook with it."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.testkit.paths import REPO

STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ca_context(ca: str | Path, cert: tuple[str, str] | None = None) -> ssl.SSLContext:
    """A client context that trusts only ``ca`` (and presents ``cert``=(crt, key) when given)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        ctx.load_cert_chain(*cert)
    return ctx


class ServerProcess:
    """A ``vm-admission serve`` subprocess and an httpx client that verifies its certificate with ``ca``.

    ``command`` replaces ``python -m webhook.cli serve --port PORT --cert-dir CERT_DIR`` (the container image's
    ``serve`` in a ``buildah run``, say: it listens on ``port`` and writes its certificates where ``cert_dir`` sees
    them); ``args`` follow either."""

    def __init__(
        self,
        cert_dir: Path,
        args: list[str],
        client_cert: tuple[str, str] | None = None,
        python: str = sys.executable,
        *,
        port: int | None = None,
        command: list[str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.cert_dir = cert_dir
        self.port = port or free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.log_path = (log_dir or cert_dir.parent) / f"server-{self.port}.log"
        cmd = command or [python, "-m", "webhook.cli", "serve", "--port", str(self.port), "--cert-dir", str(cert_dir)]
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop())
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if python != sys.executable:  # another install's webhook (bench: the compiled build), not the tree's
            env["PYTHONSAFEPATH"] = "1"
        self.proc = subprocess.Popen([*cmd, *args], cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self._client_cert = client_cert
        self._client: httpx.Client | None = None

    @property
    def ca(self) -> Path:
        return self.cert_dir / "ca.crt"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, verify=ca_context(self.ca, self._client_cert), timeout=30)
        return self._client

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log}")
            if self.ca.exists():
                try:
                    if self.get("/readyz").status_code == 200:
                        return
                except (httpx.TransportError, ssl.SSLError, OSError):
                    self._client = None
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log}")

    def post(
        self, path: str, body: dict[str, Any] | list[Any] | bytes | str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST JSON (a dict/list is encoded; bytes/str go as they are) with content type application/json."""
        content = body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else orjson.dumps(body)
        hdrs = {"content-type": "application/json", **(headers or {})}
        return self.client.post(path, content=content, headers=hdrs)

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path)

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample on /metrics (0.0 when absent)."""
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        key = f"{name}{{{want}}}" if want else name
        for line in self.get("/metrics").text.splitlines():
            if line.startswith("#"):
                continue
            sample, _, value = line.rpartition(" ")
            if _normalize(sample) == key:
                return float(value)
        return 0.0

    def close_client(self) -> None:
        """Drop the kept-alive connection (an idle client that never reads delays a graceful TLS close)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> int:
        self.close_client()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def _normalize(sample: str) -> str:
    """``name{b="2",a="1"}`` -> ``name{a="1",b="2"}`` so label order does not matter."""
    if "{" not in sample:
        return sample
    name, _, rest = sample.partition("{")
    labels = sorted(p for p in rest.rstrip("}").split(",") if p)
    return f"{name}{{{','.join(labels)}}}"


StartServer = Callable[..., ServerProcess]
