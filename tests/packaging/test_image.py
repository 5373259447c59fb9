"""The container image as users run it: built from the Dockerfile by ``scripts/image`` and named by
``VM_ADMISSION_IMAGE`` (``tests/testkit/container.py``); skipped with one line without it, failed under ``CI=true``.

What a user hits first: the user it runs as, what the final stage holds (no wheel, compiler or pip cache), the
compiled hot path, ``serve`` with the Helm chart's own container arguments and mounts, the certificates it
generates without a mounted cert dir, and the Dockerfile's HEALTHCHECK. The image against a real API server:
``tests/e2e/test_image.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.testkit.container import Container, enter, netns
from tests.testkit.paths import REPO
from tests.testkit.server import ServerProcess, free_port
from webhook import certs

pytestmark = pytest.mark.image

CHART = REPO / "charts" / "vm-admission"
UID = 65532
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
# What the final stage may hold of wheels: the ones its Python distribution bundles for ensurepip/venv.
BUNDLED_WHEELS = ("usr/share/python-wheels/", "/ensurepip/_bundled/")
BUILD_TOOLS = ("gcc", "cc", "c++", "g++", "cpp", "ld", "as", "make", "x86_64-linux-gnu-gcc-12", "mypyc", "mypy")


def chart_args() -> list[str]:
    """The webhook container's ``args`` in the chart's Deployment template."""
    text = (CHART / "templates" / "deployment.yaml").read_text()
    match = re.search(r"^\s+args: (\[.*\])$", text, flags=re.MULTILINE)
    assert match, "no args: [...] line in the chart's deployment.yaml"
    args: list[str] = yaml.safe_load(match.group(1))
    return args


def chart_config() -> str:
    """The config file the chart's ConfigMap mounts at /config/config.yaml with the default values."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    return yaml.safe_dump(values["config"])


def with_port(args: list[str], port: int) -> list[str]:
    """``args`` listening on ``port`` instead (the host's network is shared: 8443 may be taken)."""
    i = args.index("--port")
    return [*args[: i + 1], str(port), *args[i + 2 :]]


def secret_volume(directory: Path, *dns_names: str) -> Path:
    """A CA and serving certificate as a Kubernetes Secret volume mounts them: owned by root, mode 0644."""
    certs.ensure_certs(directory, dns_names)
    (directory / certs.KEY_FILE).chmod(0o644)
    return directory


@pytest.fixture
def container(container_image: str) -> Iterator[Container]:
    c = Container(container_image)
    yield c
    c.close()


def start_chart_server(image: str, base: Path) -> tuple[ServerProcess, Container]:
    """The image's ``serve`` with the chart's args, its cert dir and config mounted read-only where the chart
    mounts them; on the host's network, on a free port."""
    cert_dir = secret_volume(base / "certs")
    config_dir = base / "config"
    config_dir.mkdir()
    (config_dir / "config.yaml").write_text(chart_config())
    container = Container(image)
    port = free_port()
    argv = container.entrypoint(*with_port(chart_args(), port))
    command = container.command(argv, volumes={cert_dir: "/certs", config_dir: "/config"})
    server = ServerProcess(cert_dir, [], port=port, command=command)
    try:
        server.wait_ready(60)
    except BaseException:
        server.stop()
        container.close()
        raise
    return server, container


@pytest.fixture(scope="module")
def chart_server(container_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server, container = start_chart_server(container_image, tmp_path_factory.mktemp("image_chart"))
    yield server
    server.stop()
    container.close()


def test_runs_as_the_non_root_user_65532(container: Container) -> None:
    assert container.config["User"] == f"{UID}:{UID}"
    run = container.run(["python", "-c", "import os; print(os.getuid(), os.getgid())"])
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(UID), str(UID)]


def test_the_final_stage_holds_no_wheel_build_tool_pip_cache_or_tests(container: Container) -> None:
    root = container.root
    wheels, caches, headers, tests = [], [], [], []
    for top in ("usr", "opt", "root", "home", "tmp", "var", "src", "wheels", "certs", "config"):
        for dirpath, dirnames, filenames in os.walk(root / top):
            rel = "/" + str(Path(dirpath).relative_to(root))
            bundled = any(b in rel + "/" for b in BUNDLED_WHEELS)
            wheels += [f"{rel}/{f}" for f in filenames if f.endswith(".whl") and not bundled]
            # pip's cache (~/.cache/pip) and build directories (/tmp/pip-*)
            caches += [f"{rel}/{d}" for d in dirnames if d == ".cache" or (rel == "/tmp" and d.startswith("pip-"))]
            headers += [f"{rel}/{f}" for f in filenames if f == "Python.h"]
            tests += [f"{rel}/{d}" for d in dirnames if d == "tests" and "site-packages/webhook" in rel]
    assert wheels == [] and caches == [] and headers == [] and tests == []
    assert not (root / "wheels").exists() and not (root / "src").exists()
    bin_dirs = [root / d for d in ("usr/local/bin", "usr/local/sbin", "usr/bin", "usr/sbin")]
    assert [str(d / t) for d in bin_dirs for t in BUILD_TOOLS if (d / t).exists()] == []
    site = next((root / "usr/local/lib").glob("python3.*/site-packages"))
    assert (site / "webhook").is_dir() and not (site / "mypy").exists() and not (site / "tests").exists()


def test_version_names_the_compiled_build(container: Container) -> None:
    run = container.run(container.entrypoint("--version"))
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"vm-admission {VERSION} (build: mypyc)\n"


def test_serve_with_the_charts_arguments_answers_readyz_over_tls(chart_server: ServerProcess) -> None:
    # chart_server's client trusts only the mounted CA and checks the name (127.0.0.1), as the API server does
    ready = chart_server.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    assert chart_server.get("/healthz").status_code == 200
    lines = [json.loads(line) for line in chart_server.log.splitlines() if line.startswith("{")]
    (serving,) = [line for line in lines if line["msg"] == "serving"]
    assert serving["url"] == f"https://0.0.0.0:{chart_server.port}"
    assert (serving["certDir"], serving["config"], serving["build"]) == ("/certs", "/config/config.yaml", "mypyc")
    assert not [line for line in lines if line["msg"] == "generated certificates" or line["level"] == "error"]


def test_metrics_show_the_compiled_hot_path(chart_server: ServerProcess) -> None:
    assert chart_server.metric("vm_admission_build_info", build="mypyc") == 1.0
    assert chart_server.metric("vm_admission_build_info", build="python") == 0.0


def test_without_a_cert_dir_it_generates_certificates_as_the_user_and_the_healthcheck_passes(
    container: Container, tmp_path: Path
) -> None:
    """``docker run IMAGE`` with nothing mounted: the image's own ENTRYPOINT and CMD on its port 8443, in a
    network namespace of its own (8443 on the host may be taken), and the HEALTHCHECK run as Docker runs it."""
    config = container.config
    kind, *check = config["Healthcheck"]["Test"]
    check = check if kind == "CMD" else ["/bin/sh", "-c", *check]
    assert kind in ("CMD", "CMD-SHELL") and "8443" in " ".join(check)
    # with no server the check fails: it does check something
    nothing = subprocess.run(netns(container.command(check)), capture_output=True, text=True, timeout=60, check=False)
    assert nothing.returncode != 0

    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(netns(container.command([*config["Entrypoint"], *config["Cmd"]])), stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
    try:
        cert_dir = container.root / "certs"
        passed = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            passed = subprocess.run(enter(proc.pid, container.command(check)), capture_output=True, text=True,
                                    timeout=30, check=False)  # fmt: skip
            if passed.returncode == 0:
                break
            time.sleep(0.5)
        assert passed is not None and passed.returncode == 0, (passed, log.read_text())

        files = {p.name: p.stat() for p in cert_dir.iterdir()}
        assert set(files) == {"ca.crt", "tls.crt", "tls.key"}
        assert {(s.st_uid, s.st_gid) for s in files.values()} == {(UID, UID)}
        assert files["tls.key"].st_mode & 0o777 == 0o600
        # the generated CA verifies the server (name 127.0.0.1), from inside its namespace
        verify = (
            "import ssl, sys, urllib.request; ctx = ssl.create_default_context(cafile=sys.argv[1]); "
            "r = urllib.request.urlopen('https://127.0.0.1:8443/readyz', context=ctx, timeout=5); "
            "print(r.status, r.read().decode())"
        )
        ready = subprocess.run(enter(proc.pid, [sys.executable, "-c", verify, str(cert_dir / "ca.crt")]),
                               capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
        assert ready.stdout.split(None, 1) == ["200", '{"status":"ready"}\n'], ready.stderr
    finally:
        proc.terminate()
        proc.wait(30)
