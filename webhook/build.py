"""Which build is running: pure Python, or the hot path compiled with mypyc (``VM_ADMISSION_COMPILE=1``, setup.py)."""

from __future__ import annotations

from webhook import engine


def flavor() -> str:
    """``"mypyc"`` when the engine is a compiled extension module, else ``"python"``."""
    return "python" if engine.__file__ is None or engine.__file__.endswith(".py") else "mypyc"
