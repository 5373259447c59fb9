"""Build hook: the hot path compiled with mypyc by default, pure Python for development.

The hot path — the engine, the AdmissionReview envelope, the rules and their Kubernetes helpers — is the
same type-annotated code either way (mypy --strict clean); compiled to C extensions with mypyc it reviews
1.6-2x faster (docs/benchmarks.md). ``VM_ADMISSION_COMPILE`` chooses:

- unset (``auto``): ``pip install .`` and wheel builds compile (mypyc and the packages it type-checks against
  come from ``[build-system] requires``); ``pip install -e .`` stays pure Python, so edits to the sources take
  effect and tests run them. Without a C compiler or the Python headers, ``auto`` installs pure Python and
  says so;
- ``1``: always compile (fail if that is impossible), e.g. ``scripts/compiled``'s ``build_ext --inplace``;
- ``0``: never compile.

The Dockerfile builds the image compiled; ``scripts/compiled`` runs the tests against a compiled scratch copy
of the tree (compiled modules in a working tree would shadow edits to the sources).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import setup

# The modules every review runs through: the ones worth compiling.
HOT_PATH = [
    "webhook/endpoint.py",
    "webhook/review_counters.py",
    "webhook/engine.py",
    "webhook/admission.py",
    "webhook/envelope.py",
    "webhook/k8s",
    "webhook/rules",
]


def hot_path_files() -> list[str]:
    files: list[str] = []
    for entry in HOT_PATH:
        path = Path(entry)
        found = sorted(p for p in path.glob("*.py") if p.name != "__init__.py") if path.is_dir() else [path]
        files.extend(str(p) for p in found)
    return files


def _editable(argv: list[str]) -> bool:
    """pip's ``install -e`` runs setuptools' ``editable_wheel`` (PEP 660); old-style ``develop`` is the same."""
    return any(cmd in argv for cmd in ("editable_wheel", "develop"))


def _can_compile() -> str | None:
    """Why this machine cannot build C extensions (None when it can)."""
    if shutil.which(os.environ.get("CC", "cc")) is None and shutil.which("gcc") is None:
        return "no C compiler (cc/gcc)"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return "no Python headers (Python.h)"
    return None


def wants_compile(mode: str | None, argv: list[str]) -> bool:
    """Whether this build compiles the hot path (``mode`` is VM_ADMISSION_COMPILE)."""
    mode = (mode or "auto").strip().lower()
    if mode in ("1", "0"):
        return mode == "1"
    if mode != "auto":
        raise SystemExit(f"VM_ADMISSION_COMPILE must be 1, 0 or auto, got {mode!r}")
    if _editable(argv):
        return False
    why = _can_compile()
    if why is not None:
        print(f"vm-admission: installing pure Python ({why}); the compiled hot path is 1.6-2x faster", file=sys.stderr)
        return False
    return True


def ext_modules() -> list[object]:
    if not wants_compile(os.environ.get("VM_ADMISSION_COMPILE"), sys.argv):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        raise SystemExit(
            "compiling the hot path needs mypyc (build requirements in pyproject.toml); without build isolation "
            "install them first: pip install '.[compile]'; or build pure Python with VM_ADMISSION_COMPILE=0"
        ) from exc
    return list(mypycify(hot_path_files(), opt_level="3"))


if __name__ == "__main__":  # pip, build and `python setup.py` run this file as __main__; tests import it
    setup(ext_modules=ext_modules())
