"""Fixtures for the end-to-end tests: a real etcd + kube-apiserver (``tests/envtest``) and our webhook
registered with it by our own ``vm-admission webhook-config`` output, exactly as a user registers it.

Without assets the tests skip with one line saying how to get them; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, ServerProcess
from tests.envtest.controlplane import AssetsMissing, ControlPlane, find_assets

pytestmark = pytest.mark.e2e
_ns_counter = itertools.count()


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    try:
        assets = find_assets()
    except AssetsMissing as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {exc}")
        pytest.skip(str(exc))
    cp = ControlPlane(assets, tmp_path_factory.mktemp("envtest"))
    cp.start()
    try:
        yield cp
    finally:
        cp.close()


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


@pytest.fixture(scope="session")
def e2e_server(tmp_path_factory: pytest.TempPathFactory, control_plane: ControlPlane) -> Iterator[ServerProcess]:
    """The webhook, registered with the control plane for the whole session (tests that stop or replace it
    register their own and put this one back)."""
    base = tmp_path_factory.mktemp("e2e_server")
    server = ServerProcess(base / "certs", ["--shutdown-delay", "0", "--reload-interval", "0.5"])
    try:
        server.wait_ready()
        register(control_plane, server)
        yield server
    finally:
        unregister(control_plane)
        server.stop()


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (nothing runs in it: no scheduler, no kubelet)."""
    name = f"e2e-{os.getpid()}-{next(_ns_counter)}"
    control_plane.kubectl("create", "namespace", name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def api(control_plane: ControlPlane) -> Any:
    return control_plane.api_client()


Load = Callable[[str], dict[str, Any]]


@pytest.fixture
def example() -> Load:
    """Load one example manifest (``examples/<path>``), without its namespace."""

    def load(path: str) -> dict[str, Any]:
        doc: dict[str, Any] = yaml.safe_load((REPO / "examples" / path).read_text())
        doc["metadata"].pop("namespace", None)
        return doc

    return load
