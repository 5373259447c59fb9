"""The webhook's lifecycle under a real kube-apiserver's calls: certificate rotation and SIGTERM."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from kubernetes.client.rest import ApiException

from tests.e2e.conftest import Load
from tests.e2e.test_apiserver_admission import create_custom, create_pod, dedicated_vmi, denial, launcher_pod
from tests.testkit.controlplane import ControlPlane, register
from tests.testkit.server import ServerProcess
from webhook import certs

pytestmark = pytest.mark.e2e


Outcomes = list[tuple[float, str]]


def create_loop(api: Any, ns: str, pod: dict[str, Any], stop: threading.Event, out: Outcomes) -> None:
    """Dry-run creates until ``stop``; records (time answered, 'guaranteed' | 'unmutated' | 'failed: why')."""
    while not stop.is_set():
        try:
            created = create_pod(api, ns, pod, dry_run=True)
            outcome = "guaranteed" if created["status"]["qosClass"] == "Guaranteed" else "unmutated"
        except ApiException as exc:
            outcome = f"failed: {denial(exc).get('message', exc.reason)[:200]}"
        out.append((time.monotonic(), outcome))


def run_loops(
    api: Any, ns: str, pod: dict[str, Any], threads: int = 4
) -> tuple[threading.Event, Outcomes, list[threading.Thread]]:
    stop, out = threading.Event(), Outcomes()
    workers = [threading.Thread(target=create_loop, args=(api, ns, pod, stop, out)) for _ in range(threads)]
    for w in workers:
        w.start()
    return stop, out, workers


def served_serial(port: int) -> int:
    import ssl

    pem = ssl.get_server_certificate(("127.0.0.1", port))
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def test_certificates_rotate_under_api_server_traffic_with_no_failed_create(
    api: Any, control_plane: ControlPlane, e2e_server: ServerProcess, namespace: str, example: Load, tmp_path: Path
) -> None:
    ca = certs.make_ca()
    certs.write_pair(tmp_path / "certs", ca, certs.issue_cert(ca, ["127.0.0.1", "localhost"]))
    server = ServerProcess(tmp_path / "certs", ["--shutdown-delay", "0", "--reload-interval", "0.2"])
    try:
        server.wait_ready()
        register(control_plane, server)
        serials = {served_serial(server.port)}
        stop, out, workers = run_loops(api, namespace, launcher_pod())
        try:
            for _ in range(3):  # three rotations, same CA (the caBundle the API server holds stays valid)
                time.sleep(1.5)
                certs.write_pair(tmp_path / "certs", ca, certs.issue_cert(ca, ["127.0.0.1", "localhost"]))
                deadline = time.monotonic() + 10
                while served_serial(server.port) in serials and time.monotonic() < deadline:
                    time.sleep(0.1)
                serials.add(served_serial(server.port))
            time.sleep(1.5)
        finally:
            stop.set()
            for w in workers:
                w.join(30)
        assert len(serials) == 4, "every rotation was served"
        seen = Counter(o for _, o in out)
        assert set(seen) == {"guaranteed"}, seen
        assert seen["guaranteed"] >= 20
        assert server.metric("vm_admission_cert_reloads_total", result="success") >= 3
    finally:
        server.stop()
        register(control_plane, e2e_server)


def test_sigterm_while_the_api_server_calls_completes_in_flight_admissions(
    api: Any, control_plane: ControlPlane, e2e_server: ServerProcess, namespace: str, example: Load, tmp_path: Path
) -> None:
    """What a client sees: while the server drains (readiness off, --shutdown-delay) every create is still
    mutated; once the listener has closed, pods are admitted unmutated (their webhooks fail open) and a
    dedicated VMI is refused with the API server's 'failed calling webhook ... connection refused'."""
    drain = 2.0
    server = ServerProcess(tmp_path / "certs", ["--shutdown-delay", str(drain)])
    try:
        server.wait_ready()
        register(control_plane, server)
        stop, outcomes, workers = run_loops(api, namespace, launcher_pod())
        time.sleep(1.0)
        sigterm = time.monotonic()
        server.terminate()
        assert server.proc.wait(30) == 0
        exited = time.monotonic()
        time.sleep(0.5)
        stop.set()
        for w in workers:
            w.join(30)
        assert not [o for _, o in outcomes if o.startswith("failed")], Counter(o for _, o in outcomes)
        in_drain = Counter(o for t, o in outcomes if sigterm <= t < sigterm + drain - 0.2)
        assert in_drain["guaranteed"] >= 5 and set(in_drain) == {"guaranteed"}, in_drain
        after_exit = Counter(o for t, o in outcomes if t > exited + 0.2)
        assert after_exit and set(after_exit) == {"unmutated"}, after_exit
        with pytest.raises(ApiException) as err:
            create_custom(api, namespace, "virtualmachineinstances", dedicated_vmi(example), dry_run="All")
        message = denial(err.value)["message"]
        assert "failed calling webhook" in message and "connection refused" in message
    finally:
        server.stop()
        register(control_plane, e2e_server)
