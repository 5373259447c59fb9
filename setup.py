"""Build hook for the optional compiled build.

``pip install .`` (and ``pip install -e .``) install pure Python. With ``VM_ADMISSION_COMPILE=1`` the hot path
— the engine, the AdmissionReview envelope, the rules and their Kubernetes helpers — is compiled to C
extensions with mypyc (the same code, type-checked by mypy --strict, about twice as fast). mypyc type-checks
against the installed dependencies, so build without isolation, in an environment that has them:

    pip install '.[compile]' && VM_ADMISSION_COMPILE=1 pip install --no-build-isolation --force-reinstall .

The Dockerfile builds the image this way; ``scripts/compiled`` runs the tests or the benchmarks against a
compiled scratch copy of the tree (compiled modules in a working tree would shadow edits to the sources).
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup

# The modules every review runs through: the ones worth compiling.
HOT_PATH = ["webhook/engine.py", "webhook/review.py", "webhook/k8s", "webhook/rules"]


def hot_path_files() -> list[str]:
    files: list[str] = []
    for entry in HOT_PATH:
        path = Path(entry)
        found = sorted(p for p in path.glob("*.py") if p.name != "__init__.py") if path.is_dir() else [path]
        files.extend(str(p) for p in found)
    return files


def ext_modules() -> list[object]:
    if os.environ.get("VM_ADMISSION_COMPILE") != "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        raise SystemExit(
            "VM_ADMISSION_COMPILE=1 needs mypyc and the runtime dependencies installed, and a build without "
            "isolation: pip install '.[compile]' && "
            "VM_ADMISSION_COMPILE=1 pip install --no-build-isolation --force-reinstall ."
        ) from exc
    return list(mypycify(hot_path_files(), opt_level="3"))


if __name__ == "__main__":  # pip, build and `python setup.py` run this file as __main__; tests import it
    setup(ext_modules=ext_modules())
