"""A real control plane for tests and benchmarks: etcd + kube-apiserver on loopback, the envtest way.

The binaries come from ``KUBEBUILDER_ASSETS`` (a directory with ``kube-apiserver`` and ``etcd``, what
``setup-envtest use -p path`` prints) or from ``scripts/envtest``'s cache. Everything else is made here: a CA,
the API server's serving certificate, an admin client certificate (group ``system:masters``), a service
account signing key, a kubeconfig. The API server can be stopped and started again on the same port and etcd
(to test watch recovery); ``close()`` always leaves no process behind.

``register`` applies our own ``vm-admission webhook-config`` output for a running webhook, as a user registers it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.testkit.paths import DATA, REPO
from webhook import certs

if TYPE_CHECKING:
    from tests.testkit.server import ServerProcess

# KubeVirt's VMI/VM CRDs are the copy `review --schema` ships (webhook/data); the KubeVirt CR's is the tests'
CRD_FILES = (REPO / "webhook" / "data" / "kubevirt-crds.yaml", DATA / "kubevirt-cr-crd.yaml")
HOW_TO_GET = (
    "no kube-apiserver/etcd for the e2e tests: run `export KUBEBUILDER_ASSETS=$(scripts/envtest)` (builds them "
    "once with Go >= 1.25), or point KUBEBUILDER_ASSETS at `setup-envtest use -p path`"
)


class AssetsMissing(RuntimeError):
    pass


def find_assets() -> Path:
    """The directory with kube-apiserver and etcd, or :class:`AssetsMissing` saying how to get one."""
    env = os.environ.get("KUBEBUILDER_ASSETS")
    if env:
        path = Path(env)
        missing = [b for b in ("kube-apiserver", "etcd") if not (path / b).is_file()]
        if missing:
            raise AssetsMissing(f"KUBEBUILDER_ASSETS={env} lacks {', '.join(missing)}")
        return path
    script = REPO / "scripts" / "envtest"
    result = subprocess.run([str(script), "--check"], capture_output=True, text=True, check=False)
    if result.returncode == 0 and result.stdout.strip():
        return Path(result.stdout.strip())
    raise AssetsMissing(HOW_TO_GET)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait(check: Any, timeout: float, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        with contextlib.suppress(OSError, urllib.error.URLError, ssl.SSLError):
            if check():
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {timeout}s:\n{log.read_text(errors='replace')[-4000:]}")


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class ControlPlane:
    """etcd + kube-apiserver in ``workdir``; ``kubeconfig`` is an admin kubeconfig for kubectl and the client."""

    def __init__(self, assets: Path, workdir: Path | None = None, extra_apiserver_args: tuple[str, ...] = ()) -> None:
        self.assets = assets
        self._own_dir = workdir is None
        self.dir = workdir or Path(tempfile.mkdtemp(prefix="envtest-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.extra_args = extra_apiserver_args
        self.etcd_port, self.etcd_peer_port, self.port = free_port(), free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.etcd: subprocess.Popen[bytes] | None = None
        self.apiserver: subprocess.Popen[bytes] | None = None
        self._make_credentials()

    # ------------------------------------------------------------------------------------------ setup

    def _make_credentials(self) -> None:
        ca = certs.make_ca("envtest CA")
        serving = certs.issue_cert(ca, ["127.0.0.1", "localhost", "kubernetes", "kubernetes.default.svc"])
        admin = certs.issue_cert(ca, ["envtest-admin"], client=True, organizations=["system:masters"])
        self.ca_file = self.dir / "ca.crt"
        self.ca_file.write_bytes(ca.cert_pem())
        (self.dir / "ca.key").write_bytes(ca.key_pem())
        (self.dir / "apiserver.crt").write_bytes(serving.cert_pem())
        (self.dir / "apiserver.key").write_bytes(serving.key_pem())
        self.admin_cert, self.admin_key = self.dir / "admin.crt", self.dir / "admin.key"
        self.admin_cert.write_bytes(admin.cert_pem())
        self.admin_key.write_bytes(admin.key_pem())
        self._ca = ca
        sa = ec.generate_private_key(ec.SECP256R1())
        (self.dir / "sa.key").write_bytes(
            sa.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (self.dir / "sa.pub").write_bytes(
            sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        self.kubeconfig = self.dir / "kubeconfig"
        self.write_kubeconfig(
            self.kubeconfig, {"client-certificate": str(self.admin_cert), "client-key": str(self.admin_key)}
        )

    def write_kubeconfig(self, path: Path, user: dict[str, str], name: str = "envtest") -> Path:
        """A kubeconfig for this API server with the given ``user`` stanza (certificate or token)."""
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "envtest", "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)}}
            ],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": "envtest", "user": name}}],
            "current-context": name,
        }
        path.write_text(yaml.safe_dump(doc))
        return path

    def client_cert(self, user: str, groups: tuple[str, ...] = ()) -> tuple[Path, Path]:
        """A client certificate for ``user`` in ``groups`` (for RBAC tests)."""
        pair = certs.issue_cert(self._ca, [user], client=True, organizations=groups)
        crt, key = self.dir / f"{user}.crt", self.dir / f"{user}.key"
        crt.write_bytes(pair.cert_pem())
        key.write_bytes(pair.key_pem())
        return crt, key

    # ------------------------------------------------------------------------------------------ run

    def start(self) -> ControlPlane:
        try:
            self.start_etcd()
            self.start_apiserver()
            self.install_crds()
        except BaseException:
            self.close()
            raise
        return self

    def start_etcd(self) -> None:
        log = self.dir / "etcd.log"
        data = self.dir / "etcd-data"
        cmd = [
            str(self.assets / "etcd"),
            "--name=envtest",
            f"--data-dir={data}",
            f"--listen-client-urls=http://127.0.0.1:{self.etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{self.etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{self.etcd_peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{self.etcd_peer_port}",
            f"--initial-cluster=envtest=http://127.0.0.1:{self.etcd_peer_port}",
            "--unsafe-no-fsync",  # a test store: durability is not the point, speed on a shared disk is
            "--log-level=warn",
        ]
        self.etcd = subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT)

        def healthy() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.etcd_port}/health", timeout=2) as resp:
                return bool(resp.status == 200)

        _wait(healthy, 30, "etcd", self.etcd, log)

    def start_apiserver(self, timeout: float = 90) -> None:
        """Start (or start again) kube-apiserver on the same port and etcd; waits for /readyz."""
        log = self.dir / "kube-apiserver.log"
        d = self.dir
        cmd = [
            str(self.assets / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--tls-cert-file={d / 'apiserver.crt'}",
            f"--tls-private-key-file={d / 'apiserver.key'}",
            f"--client-ca-file={self.ca_file}",
            f"--service-account-key-file={d / 'sa.pub'}",
            f"--service-account-signing-key-file={d / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            # No controller-manager creates the default ServiceAccount (envtest disables this plugin too).
            "--disable-admission-plugins=ServiceAccount",
            f"--cert-dir={d / 'apiserver-certs'}",
            "--profiling=false",
            "--v=1",
            *self.extra_args,
        ]
        self.apiserver = subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(str(self.admin_cert), str(self.admin_key))

        def ready() -> bool:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2, context=ctx) as resp:
                return bool(resp.status == 200)

        _wait(ready, timeout, "kube-apiserver", self.apiserver, log)

    def stop_apiserver(self) -> None:
        _stop(self.apiserver)
        self.apiserver = None

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this API server (``check``: raise with its stderr on failure)."""
        result = subprocess.run(
            ["kubectl", f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def install_crds(self) -> None:
        """KubeVirt's VMI/VM CRDs and the KubeVirt CR CRD (vendored copies), waited on until Established."""
        names = []
        for path in CRD_FILES:
            self.kubectl("apply", "--server-side", "-f", str(path))
            names += [d["metadata"]["name"] for d in yaml.safe_load_all(path.read_text()) if d]
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in names])

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` with the admin credentials."""
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=cfg)
        return client.ApiClient(cfg)

    def metrics(self) -> str:
        """The API server's own /metrics text."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(str(self.admin_cert), str(self.admin_key))
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10, context=ctx) as resp:
            return str(resp.read().decode())

    def close(self) -> None:
        _stop(self.apiserver)
        _stop(self.etcd)
        self.apiserver = self.etcd = None
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- registering a webhook with the control plane -----------------------------------------------------------------


def webhook_config(server_url: str, ca_file: Path, *extra: str) -> list[dict[str, Any]]:
    """Our own ``vm-admission webhook-config --url ... --ca-file ...`` output, parsed."""
    out = subprocess.run(
        [sys.executable, "-m", "webhook.cli", "webhook-config", "--url", server_url, "--ca-file", str(ca_file), *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def register(cp: ControlPlane, server: ServerProcess, *extra: str) -> None:
    """Apply our webhook configurations for ``server`` (replacing any earlier registration)."""
    register_url(cp, server.url, server.ca, *extra)


def register_url(cp: ControlPlane, url: str, ca_file: Path, *extra: str) -> None:
    """The same for any webhook at ``url`` whose certificate ``ca_file`` signed (a baseline, say)."""
    docs = webhook_config(url, ca_file, *extra)
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def unregister(cp: ControlPlane) -> None:
    cp.kubectl("delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", "vm-admission",
               "--ignore-not-found")  # fmt: skip
