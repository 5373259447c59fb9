"""Shared fixtures: a real vm-admission server over HTTPS, verified with its generated CA like kube-apiserver.

``https_server`` (session) runs ``python -m webhook.cli serve`` in a subprocess on a free port; tests that need
a server of their own (rotation, reload, client CA, shutdown) use ``start_server``. The process itself is
``tests.testkit.server.ServerProcess``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.testkit.server import ServerProcess, StartServer


@pytest.fixture(scope="session")
def container_image() -> str:
    """The container image to check (``scripts/image``, ``VM_ADMISSION_IMAGE``): skip, or fail under CI=true,
    without one; session-scoped so that it skips before a control plane starts for nothing."""
    from tests.testkit.container import image_name

    return image_name()


@pytest.fixture(scope="session")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The shared server: generated certs, default config; ``.url``, ``.ca``, ``.cert_dir``, ``.post()``."""
    base = tmp_path_factory.mktemp("https_server")
    server = ServerProcess(base / "certs", ["--shutdown-delay", "0"])
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start servers of a test's own: ``start_server(*args, cert_dir=None, client_cert=None, ready=True)``."""
    servers: list[ServerProcess] = []

    def start(
        *args: str, cert_dir: Path | None = None, client_cert: tuple[str, str] | None = None, ready: bool = True
    ) -> ServerProcess:
        # --shutdown-delay 0 unless the test gives its own (argparse keeps the last one)
        server = ServerProcess(cert_dir or tmp_path / "certs", ["--shutdown-delay", "0", *args], client_cert)
        servers.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def config_file(tmp_path: Path) -> Callable[[str], Path]:
    """Write YAML text to a config file in ``tmp_path`` and return its path (call again to rewrite it)."""
    path = tmp_path / "config.yaml"

    def write(text: str) -> Path:
        tmp = path.with_name(".config.yaml.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        return path

    return write
