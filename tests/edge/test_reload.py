"""Live changes without a restart: certificate rotation, config reload, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from tests.testkit.paths import REPO
from tests.testkit.review import make_review, patch_ops
from tests.testkit.server import ServerProcess, StartServer, ca_context
from webhook import certs

FAST = ("--reload-interval", "0.1")
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "default"}}
DEDICATED_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "virt-launcher-vm1-abcde", "namespace": "default"},
    "spec": {
        "nodeSelector": {"kubevirt.io/cpumanager": "true"},
        "containers": [
            {"name": "compute", "image": "virt-launcher",
             "resources": {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}},
            {"name": "sidecar", "image": "proxy"},
        ],
    },
}  # fmt: skip


def eventually(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``check`` until true (the server polls files every 0.1 s here); fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def served_serial(server: ServerProcess) -> int:
    """The serial number of the certificate the server presents on a new connection."""
    pem = ssl.get_server_certificate(("127.0.0.1", server.port))
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def secret_volume(base: Path, files: dict[str, bytes], generation: int) -> None:
    """Lay out (or atomically update) files as kubelet does for a Secret volume: ``..data`` symlink swap."""
    data_dir = base / f"..2026_11_23_{generation:04d}"
    data_dir.mkdir(parents=True)
    for name, content in files.items():
        (data_dir / name).write_bytes(content)
    tmp_link = base / "..data_tmp"
    tmp_link.symlink_to(data_dir.name)
    os.replace(tmp_link, base / "..data")
    for name in files:
        link = base / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")


def pair_files(ca: certs.KeyPair, leaf: certs.KeyPair) -> dict[str, bytes]:
    return {"ca.crt": ca.cert_pem(), "tls.crt": leaf.cert_pem(), "tls.key": leaf.key_pem()}


# ----------------------------------------------------------------------------------------- rotation


def test_rewritten_pair_is_served_without_restart_and_in_flight_traffic_never_fails(
    tmp_path: Path, start_server: StartServer
) -> None:
    ca = certs.make_ca()
    first = certs.issue_cert(ca, ["localhost", "127.0.0.1"])
    certs.write_pair(tmp_path / "certs", ca, first)
    server = start_server(*FAST)
    assert served_serial(server) == first.cert.serial_number

    failures: list[str] = []
    answered = 0
    stop = threading.Event()

    def traffic() -> None:  # new and kept-alive connections, all verified against the CA
        nonlocal answered
        with httpx.Client(base_url=server.url, verify=ca_context(server.ca)) as keep_alive:
            while not stop.is_set():
                for client in (keep_alive, None):
                    try:
                        if client is None:
                            with httpx.Client(base_url=server.url, verify=ca_context(server.ca)) as fresh:
                                r = fresh.post("/validate", json=make_review(CONFIGMAP))
                        else:
                            r = client.post("/validate", json=make_review(CONFIGMAP))
                        if r.status_code != 200:
                            failures.append(f"HTTP {r.status_code}")
                        answered += 1
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        second = certs.issue_cert(ca, ["localhost", "127.0.0.1"])
        certs.write_pair(tmp_path / "certs", ca, second)
        eventually(lambda: served_serial(server) == second.cert.serial_number, what="the new certificate")
        before = answered
        eventually(lambda: answered > before + 5, what="traffic after the rotation")
    finally:
        stop.set()
        thread.join()
    assert failures == []
    assert server.metric("vm_admission_cert_reloads_total", result="success") == 1


def test_secret_volume_symlink_swap_is_picked_up_and_a_broken_pair_keeps_the_last_good(
    tmp_path: Path, start_server: StartServer
) -> None:
    volume = tmp_path / "secret"
    ca = certs.make_ca()
    first = certs.issue_cert(ca, ["127.0.0.1"])
    secret_volume(volume, pair_files(ca, first), 1)
    server = start_server(*FAST, cert_dir=volume)
    assert served_serial(server) == first.cert.serial_number

    second = certs.issue_cert(ca, ["127.0.0.1"])
    secret_volume(volume, pair_files(ca, second), 2)
    eventually(lambda: served_serial(server) == second.cert.serial_number, what="the swapped certificate")

    # A cert whose key does not match: rejected, reported, and the last good pair keeps serving.
    third, other = certs.issue_cert(ca, ["127.0.0.1"]), certs.issue_cert(ca, ["127.0.0.1"])
    broken = {**pair_files(ca, third), "tls.key": other.key_pem()}
    secret_volume(volume, broken, 3)
    eventually(
        lambda: server.metric("vm_admission_cert_reloads_total", result="failure") == 1, what="the failure metric"
    )
    assert served_serial(server) == second.cert.serial_number
    assert server.get("/readyz").status_code == 200
    assert server.post("/mutate", make_review(CONFIGMAP)).json()["response"]["allowed"] is True
    assert "new certificate pair rejected" in server.log

    # Garbage in the files: still the last good pair.
    secret_volume(volume, {"ca.crt": b"x", "tls.crt": b"not a cert", "tls.key": b"not a key"}, 4)
    eventually(
        lambda: server.metric("vm_admission_cert_reloads_total", result="failure") == 2, what="the second failure"
    )
    assert served_serial(server) == second.cert.serial_number
    assert server.metric("vm_admission_cert_reloads_total", result="success") == 1


# ------------------------------------------------------------------------------------------- config


def sidecar_ops(server: ServerProcess) -> list[dict[str, Any]]:
    r = server.post("/mutate", make_review(DEDICATED_POD))
    assert r.status_code == 200
    return patch_ops(r.json())


def test_config_change_applies_without_restart_and_a_broken_file_keeps_the_last_good(
    start_server: StartServer, config_file: Callable[[str], Path]
) -> None:
    path = config_file("sidecars: {cpu: 250m, memory: 100M}\n")
    server = start_server(*FAST, "--config", str(path))
    assert "250m" in str(sidecar_ops(server))

    config_file("sidecars: {cpu: 300m, memory: 100M}\n")
    eventually(lambda: "300m" in str(sidecar_ops(server)), what="the new sidecar defaults")
    assert server.metric("vm_admission_config_reloads_total", result="success") == 1
    last_ok = server.metric("vm_admission_config_last_reload_success_timestamp_seconds")
    assert last_ok > 0

    for broken in ("sidecars: {cpu: lots}\n", "enforcement: [\n", "nosuchkey: 1\n"):
        failures = server.metric("vm_admission_config_reloads_total", result="failure")
        config_file(broken)
        eventually(
            lambda f=failures: server.metric("vm_admission_config_reloads_total", result="failure") == f + 1,  # type: ignore[misc]
            what=f"the failure metric for {broken!r}",
        )
        assert "300m" in str(sidecar_ops(server))
        assert server.get("/readyz").status_code == 200
    assert server.metric("vm_admission_config_last_reload_success_timestamp_seconds") == last_ok
    assert "config reload failed" in server.log


@pytest.mark.parametrize(
    ("text", "named"),
    [("enforcement: sometimes\n", "enforcement"), ("passthrough: {maxCount: 0}\n", "passthrough.maxCount")],
)
def test_a_bad_config_at_start_is_a_clear_error_and_exit_2(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "webhook.cli", "serve", "--cert-dir", str(tmp_path / "c"), "--config", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert named in proc.stderr and str(path) in proc.stderr


# ----------------------------------------------------------------------------------------- shutdown


def test_sigterm_fails_readiness_first_completes_in_flight_reviews_and_exits_0(start_server: StartServer) -> None:
    server = start_server("--shutdown-delay", "1.5")
    review = make_review(DEDICATED_POD)
    body = httpx.Request("POST", "/", json=review).content
    started = threading.Event()
    results: list[httpx.Response | Exception] = []

    def slow_body() -> Iterator[bytes]:  # a review still being received when SIGTERM arrives ...
        started.set()
        pieces = [body[i : i + 64] for i in range(0, len(body), 64)]
        for piece in pieces:
            yield piece
            time.sleep(4.0 / len(pieces))  # ... and still after the listener has closed (4 s in total)

    def send() -> None:
        try:
            with httpx.Client(base_url=server.url, verify=ca_context(server.ca), timeout=30) as c:
                results.append(c.post("/mutate", content=slow_body(), headers={"content-type": "application/json"}))
        except Exception as exc:
            results.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    started.wait(10)
    time.sleep(0.3)
    server.terminate()
    eventually(lambda: server.get("/readyz").status_code == 503, what="readiness to fail")
    assert server.get("/healthz").status_code == 200  # still serving while draining
    server.close_client()
    sender.join(30)
    assert server.proc.wait(30) == 0
    [result] = results
    assert isinstance(result, httpx.Response), result
    assert result.status_code == 200
    assert result.json()["response"]["uid"] == review["request"]["uid"]
    assert result.json()["response"]["allowed"] is True
