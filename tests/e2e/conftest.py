"""Fixtures for the end-to-end tests: a real etcd + kube-apiserver (``tests.testkit.controlplane``) and our webhook
registered with it by our own ``vm-admission webhook-config`` output, exactly as a user registers it.

Without assets the tests skip with one line saying how to get them; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from tests.testkit.controlplane import AssetsMissing, ControlPlane, find_assets, register, unregister
from tests.testkit.paths import REPO
from tests.testkit.server import ServerProcess

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
