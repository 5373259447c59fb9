"""Admission end to end through a real kube-apiserver: defaulting, QoS, reinvocation, CRD pruning and strict
field validation, matchConditions in the API server's CEL, failure policies, dry-run.

Every webhook here is registered with ``vm-admission webhook-config`` output (see conftest.register).
"""

from __future__ import annotations

import base64
import copy
import http.server
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.e2e.conftest import Load
from tests.testkit import objects
from tests.testkit.controlplane import ControlPlane, register
from tests.testkit.server import ServerProcess
from webhook import certs

pytestmark = pytest.mark.e2e

GROUP, VERSION = "kubevirt.io", "v1"
PASSTHROUGH = "devices.kubevirt.io/10de_1eb8"


def launcher_pod() -> dict[str, Any]:
    """The Istio launcher example (hook sidecar, native sidecar, injected proxy) plus a passthrough GPU, without
    its name, namespace and owner (the test's namespace holds it; no VMI owns it)."""
    pod = objects.launcher_pod(passthrough="10de:1eb8")
    for key in ("name", "namespace", "ownerReferences"):
        pod["metadata"].pop(key)
    return pod


def plain_pod(name: str = "plain") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "nginx", "resources": {"requests": {"cpu": "100m"}}}]},
    }


def containers(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = pod["spec"]
    return {c["name"]: c for c in [*spec.get("initContainers", []), *spec["containers"]]}


def create_pod(api: Any, ns: str, body: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_pod(ns, body, dry_run="All" if dry_run else None, _preload_content=False)
    result: dict[str, Any] = json.loads(created.data)
    return result


def create_custom(api: Any, ns: str, plural: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    objects = client.CustomObjectsApi(api)
    created = objects.create_namespaced_custom_object(GROUP, VERSION, ns, plural, body, _preload_content=False, **kw)
    result: dict[str, Any] = json.loads(created.data)
    return result


def denial(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


# --------------------------------------------------------------------------------------------- 1. pods


@pytest.mark.parametrize("dry_run", [True, False], ids=["dryRun=All", "created"])
def test_launcher_pod_is_guaranteed_after_the_api_server_admits_it(
    api: Any, e2e_server: ServerProcess, namespace: str, example: Load, dry_run: bool
) -> None:
    pod = create_pod(api, namespace, launcher_pod(), dry_run=dry_run)
    # The API server computes the QoS class itself, after our patch and its own defaulting.
    assert pod["status"]["qosClass"] == "Guaranteed"
    by_name = containers(pod)
    assert set(by_name) >= {"hook-sidecar-0", "guest-console-log", "istio-proxy", "istio-validation", "compute"}
    for name, c in by_name.items():
        res = c["resources"]
        assert res["requests"]["cpu"] == res["limits"]["cpu"], name
        assert res["requests"]["memory"] == res["limits"]["memory"], name
    compute = by_name["compute"]["resources"]
    assert compute["requests"][PASSTHROUGH] == compute["limits"][PASSTHROUGH] == "1"
    assert all(PASSTHROUGH not in c["resources"].get("limits", {}) for n, c in by_name.items() if n != "compute")
    if not dry_run:  # what was stored is what the API server answered
        stored = client.CoreV1Api(api).read_namespaced_pod(pod["metadata"]["name"], namespace)
        assert stored.status.qos_class == "Guaranteed"


def test_plain_pod_comes_back_untouched(api: Any, e2e_server: ServerProcess, namespace: str) -> None:
    before = e2e_server.metric("vm_admission_requests_total", webhook="mutate", kind="Pod", operation="CREATE",
                               verdict="allowed")  # fmt: skip
    pod = create_pod(api, namespace, plain_pod())
    assert pod["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "100m"}}
    assert pod["status"]["qosClass"] == "Burstable"
    assert "vm-admission" not in json.dumps(pod["metadata"].get("annotations", {}))
    after = e2e_server.metric("vm_admission_requests_total", webhook="mutate", kind="Pod", operation="CREATE",
                              verdict="allowed")  # fmt: skip
    assert after == before  # matchConditions kept it from us altogether


# ----------------------------------------------------------------------------------- 2. reinvocation


class _Injector(http.server.BaseHTTPRequestHandler):
    """A second mutating webhook, like Istio's: adds a sidecar with requests only (no limits)."""

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["content-length"])))
        req = review["request"]
        names = [c["name"] for c in req["object"]["spec"]["containers"]]
        response: dict[str, Any] = {"uid": req["uid"], "allowed": True}
        if "late-proxy" not in names:
            sidecar = {"name": "late-proxy", "image": "proxy", "resources": {"requests": {"cpu": "50m"}}}
            patch = [{"op": "add", "path": "/spec/containers/-", "value": sidecar}]
            response |= {"patchType": "JSONPatch", "patch": base64.b64encode(orjson.dumps(patch)).decode()}
        body = orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def injector(tmp_path: Path, control_plane: ControlPlane) -> Iterator[None]:
    ca = certs.make_ca("injector CA")
    serving = certs.issue_cert(ca, ["127.0.0.1"])
    (tmp_path / "i.crt").write_bytes(serving.cert_pem())
    (tmp_path / "i.key").write_bytes(serving.key_pem())
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Injector)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "i.crt", tmp_path / "i.key")
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "zz-sidecar-injector"},  # sorts after vm-admission: called after us
        "webhooks": [
            {
                "name": "inject.example.com",
                "clientConfig": {
                    "url": f"https://127.0.0.1:{httpd.server_address[1]}/inject",
                    "caBundle": base64.b64encode(ca.cert_pem()).decode(),
                },
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
                "namespaceSelector": {"matchLabels": {"inject": "true"}},
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "failurePolicy": "Fail",
                "timeoutSeconds": 5,
            }
        ],
    }
    control_plane.kubectl("apply", "-f", "-", input=json.dumps(config))
    yield
    control_plane.kubectl("delete", "mutatingwebhookconfiguration", "zz-sidecar-injector", "--ignore-not-found")
    httpd.shutdown()


def test_sidecar_injected_after_us_is_completed_on_reinvocation(
    api: Any, e2e_server: ServerProcess, namespace: str, example: Load, control_plane: ControlPlane, injector: None
) -> None:
    control_plane.kubectl("label", "namespace", namespace, "inject=true")
    pod = create_pod(api, namespace, launcher_pod(), dry_run=True)
    late = containers(pod)["late-proxy"]["resources"]
    assert late["requests"] == {"cpu": "50m", "memory": "64M"}
    assert late["limits"] == {"cpu": "50m", "memory": "64M"}
    assert pod["status"]["qosClass"] == "Guaranteed"


# ------------------------------------------------------------------------------------- 3. VMIs and VMs


def test_vmi_denial_carries_every_cause_to_the_client(
    api: Any, e2e_server: ServerProcess, namespace: str, example: Load
) -> None:
    from webhook.config import Config
    from webhook.engine import chain

    vmi = example("cpu/vmi-dedicated-many-problems.yaml")
    expected = chain(copy.deepcopy(vmi), Config()).validation.causes
    assert len(expected) >= 4
    with pytest.raises(ApiException) as err:
        create_custom(api, namespace, "virtualmachineinstances", vmi)
    status = denial(err.value)
    assert err.value.status == 422 and status["reason"] == "Invalid"
    assert 'admission webhook "virtualmachineinstances.validate.vm-admission.io" denied' in status["message"]
    # the API server keeps a cause's type as "reason" (metav1.StatusCause's JSON name)
    got = [(c["field"], c["reason"], c["message"]) for c in status["details"]["causes"]]
    assert got == [(c.field, c.type, c.message) for c in expected]


def test_passthrough_annotation_becomes_host_devices(
    api: Any, e2e_server: ServerProcess, namespace: str, example: Load
) -> None:
    vmi = create_custom(api, namespace, "virtualmachineinstances", example("passthrough/vmi-gpu-annotation.yaml"))
    assert vmi["spec"]["domain"]["devices"]["hostDevices"] == [{"name": "pt-10de-1eb8-0", "deviceName": PASSTHROUGH}]
    vm = create_custom(api, namespace, "virtualmachines", example("passthrough/vm-template-annotation.yaml"))
    devices = vm["spec"]["template"]["spec"]["domain"]["devices"]
    assert devices["hostDevices"][0]["name"].startswith("pt-")


def test_spec_passthrough_is_rejected_strictly_or_pruned_before_us(
    api: Any, e2e_server: ServerProcess, namespace: str, example: Load
) -> None:
    vmi = example("passthrough/vmi-spec-passthrough.yaml")
    assert "passthrough" in vmi["spec"]["domain"]["devices"]
    with pytest.raises(ApiException) as err:
        create_custom(api, namespace, "virtualmachineinstances", vmi, field_validation="Strict")
    assert err.value.status == 400
    assert 'unknown field "spec.domain.devices.passthrough"' in denial(err.value)["message"]
    # Without strict validation the API server prunes the field before admission: nothing is translated.
    pruned = create_custom(api, namespace, "virtualmachineinstances", vmi, field_validation="Ignore")
    devices = pruned["spec"]["domain"]["devices"]
    assert "passthrough" not in devices and "hostDevices" not in devices


# ------------------------------------------------------------------------------- 4. matchConditions


def test_objects_no_rule_concerns_never_reach_the_webhook(
    api: Any, e2e_server: ServerProcess, namespace: str, example: Load
) -> None:
    def reviews(kind: str) -> float:
        text = e2e_server.get("/metrics").text
        return sum(
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith("vm_admission_requests_total{") and f'kind="{kind}"' in line
        )

    pods, vmis = reviews("Pod"), reviews("VirtualMachineInstance")
    for i in range(5):
        create_pod(api, namespace, plain_pod(f"plain-{i}"), dry_run=True)
    plain_vmi = example("passthrough/vmi-gpu-annotation.yaml")
    del plain_vmi["metadata"]["annotations"]
    create_custom(api, namespace, "virtualmachineinstances", plain_vmi, dry_run="All")
    assert reviews("Pod") == pods  # neither webhook saw the plain pods
    # a VMI without passthrough skips mutation but is validated (the general CPU/memory rules apply to all)
    assert reviews("VirtualMachineInstance") == vmis + 1
    assert e2e_server.metric(
        "vm_admission_requests_total", webhook="mutate", kind="VirtualMachineInstance", operation="CREATE",
        verdict="allowed",
    ) == 0  # fmt: skip


# ----------------------------------------------------------------------------------- 5. failure policy


def dedicated_vmi(example: Load) -> dict[str, Any]:
    return example("cpu/vmi-dedicated.yaml")


def _blackhole() -> socket.socket:
    """A listener that accepts TCP connections and never answers (a hung webhook)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def test_failure_policy_when_the_webhook_is_down_or_hangs(
    api: Any, control_plane: ControlPlane, e2e_server: ServerProcess, namespace: str, example: Load,
    tmp_path: Path,
) -> None:  # fmt: skip
    server = ServerProcess(tmp_path / "certs", ["--shutdown-delay", "0"])
    server.wait_ready()
    register(control_plane, server)
    try:
        assert create_pod(api, namespace, launcher_pod(), dry_run=True)["status"]["qosClass"] == "Guaranteed"
        server.stop()  # down: connection refused

        started = time.monotonic()
        pod = create_pod(api, namespace, launcher_pod(), dry_run=True)
        assert pod["status"]["qosClass"] != "Guaranteed"  # admitted unmutated (mutating Ignore)
        assert PASSTHROUGH not in containers(pod)["compute"]["resources"].get("limits", {})
        with pytest.raises(ApiException) as err:
            create_custom(api, namespace, "virtualmachineinstances", dedicated_vmi(example), dry_run="All")
        assert (
            'failed calling webhook "virtualmachineinstances.validate.vm-admission.io"' in denial(err.value)["message"]
        )
        assert time.monotonic() - started < 5

        hung = _blackhole()
        try:  # same certificate and CA, a listener that never answers: the API server gives up at timeoutSeconds
            server.url = f"https://127.0.0.1:{hung.getsockname()[1]}"
            register(control_plane, server)
            # Each call waits timeoutSeconds (5) at most: a pod goes to two webhooks (both Ignore), the VMI to
            # one (its mutation is skipped by matchConditions), which fails closed.
            started = time.monotonic()
            create_pod(api, namespace, launcher_pod(), dry_run=True)
            assert time.monotonic() - started < 2 * 5 + 2
            started = time.monotonic()
            with pytest.raises(ApiException) as err:
                create_custom(api, namespace, "virtualmachineinstances", dedicated_vmi(example), dry_run="All")
            assert time.monotonic() - started < 5 + 2
            message = denial(err.value)["message"]
            assert "failed calling webhook" in message and ("deadline" in message or "timeout" in message.lower())
        finally:
            hung.close()

        restarted = ServerProcess(tmp_path / "certs", ["--shutdown-delay", "0"])  # same certs: same CA bundle
        try:
            restarted.wait_ready()
            register(control_plane, restarted)
            assert create_pod(api, namespace, launcher_pod(), dry_run=True)["status"]["qosClass"] == "Guaranteed"
            create_custom(api, namespace, "virtualmachineinstances", dedicated_vmi(example), dry_run="All")
        finally:
            restarted.stop()
    finally:
        server.stop()
        register(control_plane, e2e_server)
