"""The servers the webhook is measured against, and how to start each: pinned to one core, TLS, 127.0.0.1.

- ``webhook``: ``vm-admission serve`` itself (default settings and log level), run from a scratch directory
  with the very ``webhook`` package the bench imported first on its path: the build the bench reports in its
  first line (``scripts/bench``: a fresh ``pip install .``, compiled as the README's ``serve`` runs it;
  ``scripts/compiled``: the compiled scratch copy; a development venv: the sources);
- ``python``: :mod:`bench.floor`, a raw ASGI decode-and-echo on uvicorn with httptools (the Python floor);
- ``go``: ``bench/goecho`` (``net/http`` + ``crypto/tls`` + ``encoding/json``), built with the machine's Go
  into ``bench/.cache/`` (git-ignored) on first use and whenever its source or the Go version changes.

All three use the same generated certificate (P-256) and speak HTTP/1.1.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import webhook
from webhook import certs

ROOT = Path(__file__).resolve().parent.parent
GOECHO = ROOT / "bench" / "goecho"
CACHE = ROOT / "bench" / ".cache"
HOST = "127.0.0.1"
GO_HINT = "Go is not installed (needed for the Go baseline): see https://go.dev/doc/install, then re-run"


class GoMissing(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (``VmRSS`` in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def go_available() -> bool:
    return shutil.which("go") is not None


def go_binary() -> Path:
    """Build ``bench/goecho`` with the machine's Go (cached by source and Go version); raise GoMissing."""
    go = shutil.which("go")
    if go is None:
        raise GoMissing(GO_HINT)
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    version = subprocess.run([go, "version"], capture_output=True, text=True, check=True, env=env).stdout
    h = hashlib.sha256(version.encode())
    for name in ("go.mod", "main.go"):
        h.update((GOECHO / name).read_bytes())
    binary = CACHE / f"goecho-{h.hexdigest()[:16]}"
    if not binary.exists():
        CACHE.mkdir(exist_ok=True)
        tmp = binary.with_suffix(".tmp")
        subprocess.run([go, "build", "-trimpath", "-o", str(tmp), "."], cwd=GOECHO, env=env, check=True, timeout=600)
        os.replace(tmp, binary)
    return binary


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    cert_dir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert_dir / "ca.crt"))

    def request(self, method: str, path: str, body: bytes | None = None, timeout: float = 5) -> tuple[int, bytes]:
        """One request over a fresh, CA-verified TLS connection: (status, body)."""
        conn = http.client.HTTPSConnection(HOST, self.port, context=self.ssl_context(), timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body, headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def get(self, path: str) -> int:
        return self.request("GET", path)[0]


def _command(kind: str, port: int, cert_dir: Path, log_level: str, extra: Sequence[str] = ()) -> list[str]:
    if kind == "webhook":
        return [sys.executable, "-m", "webhook.cli", "serve", "--host", HOST, "--port", str(port),
                "--cert-dir", str(cert_dir), "--log-level", log_level, "--shutdown-delay", "0", *extra]  # fmt: skip
    if kind == "python":
        return [sys.executable, "-m", "bench.floor", "--host", HOST, "--port", str(port), "--cert-dir", str(cert_dir)]
    if kind == "go":
        return [str(go_binary()), "-addr", f"{HOST}:{port}", "-cert", str(cert_dir / "tls.crt"),
                "-key", str(cert_dir / "tls.key")]  # fmt: skip
    raise ValueError(f"unknown server {kind!r}")


@contextlib.contextmanager
def server(
    kind: str = "webhook", core: int | None = 0, log_level: str = "info", extra: Sequence[str] = ()
) -> Iterator[Server]:
    """Start one server (``webhook``, ``python`` or ``go``) pinned to ``core``; stop it when done.

    ``log_level`` and ``extra`` (more ``serve`` flags, e.g. ``--config``) are for the webhook only; ``log_level``
    defaults to ``serve``'s own default; the log goes to a file.
    """
    with tempfile.TemporaryDirectory(prefix=f"vm-admission-bench-{kind}-") as tmp:
        cert_dir = Path(tmp) / "certs"
        certs.ensure_certs(cert_dir)
        port = free_port()
        cmd = _command(kind, port, cert_dir, log_level, extra)
        if core is not None:
            cmd = ["taskset", "-c", str(core), *cmd]
        env = dict(os.environ)
        if kind == "webhook":  # the webhook package this process runs, wherever it lives
            env["PYTHONPATH"] = str(Path(webhook.__file__ or "").resolve().parent.parent)
        elif kind == "python":  # bench.floor from the repository
            env["PYTHONPATH"] = str(ROOT)
        log_path = Path(tmp) / "server.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=log, stderr=log)
        srv = Server(kind, proc, port, cert_dir, log_path)
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{kind} server exited with {proc.returncode}:\n{log_path.read_text()}")
                with contextlib.suppress(OSError, ssl.SSLError, http.client.HTTPException):
                    if srv.get("/healthz") == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} server did not become healthy within 60 s")
                time.sleep(0.1)
            yield srv
        finally:
            # SIGTERM would make the webhook drain readiness first; two SIGINTs exit at once.
            proc.send_signal(signal.SIGINT)
            time.sleep(0.2)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def served_build(srv: Server) -> str:
    """The build a running webhook reports (``vm_admission_build_info{build=...}``)."""
    _, body = srv.request("GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith("vm_admission_build_info{"):
            return line.split('build="', 1)[1].split('"', 1)[0]
    return "unknown"
