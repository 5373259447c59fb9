"""The container image under test and containers of it, run with buildah as CI runs them.

``scripts/image`` builds the image from the Dockerfile (on stand-in bases where the official ones cannot be
pulled) and prints its name; ``VM_ADMISSION_IMAGE`` hands that name to the tests (``.ci/run`` sets it). Without
it the image tests skip with one line; under ``CI=true`` they fail instead (``tests/tools.require``).

A :class:`Container` is ``buildah from IMAGE``; its commands run with ``buildah run --isolation chroot`` (the
isolation that works in this sandbox), as the image's user, on the host's network: a server in it listening on
127.0.0.1 is reachable from the tests as it is from a pod's neighbours. ``netns`` puts a command in a network
namespace of its own, for what must listen on the image's fixed port 8443 (the HEALTHCHECK).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cached_property
from pathlib import Path
from typing import Any

from tests.testkit.tools import require

ENV = "VM_ADMISSION_IMAGE"
HOW = f"no container image to check: run `export {ENV}=$(scripts/image)` (root, buildah and mmdebstrap)"


def buildah(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"buildah {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def image_name() -> str:
    """The image to check; skip (fail under CI=true) when there is none."""
    name = os.environ.get(ENV, "")
    if not name:
        require(HOW)
    if shutil.which("buildah") is None:
        require(f"{ENV} is set but buildah is not installed (apt-get install buildah)")
    if subprocess.run(["buildah", "inspect", "--type", "image", name], capture_output=True, check=False).returncode:
        require(f"{ENV}={name} is not in local container storage: run scripts/image")
    return name


def netns(argv: list[str]) -> list[str]:
    """``argv`` in a new network namespace with only loopback, up (root; ``unshare`` execs, so the pid of the
    process started with this command names the namespace: ``/proc/PID/ns/net``)."""
    return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


def enter(pid: int, argv: list[str]) -> list[str]:
    """``argv`` in the network namespace of process ``pid``."""
    return ["nsenter", f"--net=/proc/{pid}/ns/net", *argv]


class Container:
    """A working container of ``image``: ``command()`` builds a ``buildah run`` of it, ``root`` is its file system
    as the host sees it. ``close()`` removes it (and unmounts it)."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.id = buildah("from", "--pull=never", image).strip()

    @cached_property
    def config(self) -> dict[str, Any]:
        """The image's Docker config (User, Entrypoint, Cmd, Healthcheck, ...)."""
        doc = json.loads(buildah("inspect", "--type", "image", self.image))
        config: dict[str, Any] = doc["Docker"]["config"]
        return config

    @cached_property
    def root(self) -> Path:
        return Path(buildah("mount", self.id).strip())

    def entrypoint(self, *args: str) -> list[str]:
        """``args`` after the image's ENTRYPOINT, as Kubernetes runs a container's ``args``."""
        return [*self.config["Entrypoint"], *args]

    def command(
        self,
        argv: list[str],
        volumes: dict[Path, str] | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
    ) -> list[str]:
        """``buildah run`` of ``argv`` (as the image's user unless ``user``) with host paths mounted read-only."""
        cmd = ["buildah", "run", "--isolation", "chroot"]
        for host, path in (volumes or {}).items():
            cmd += ["--volume", f"{host}:{path}:ro"]
        for key, value in (env or {}).items():
            cmd += ["--env", f"{key}={value}"]
        if user is not None:
            cmd += ["--user", user]
        return [*cmd, self.id, "--", *argv]

    def run(self, argv: list[str], timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(argv, **kw), capture_output=True, text=True, timeout=timeout, check=False)

    def close(self) -> None:
        subprocess.run(["buildah", "rm", self.id], capture_output=True, check=False)
