"""One file watcher for everything ``serve`` reloads: the config file and the serving certificate pair
(docs/operations.md, "Config reload" and "Certificates and rotation").

The protocol, the same for both: poll the files' *content* (a hash, so a Secret volume's ``..data`` symlink swap
is seen as well as a plain rewrite, and a touch without a change is not); when it changed, load the new version
and apply it only if the load succeeds; otherwise keep the last good one and report the failure once per
content, not on every poll. Callers poll :meth:`FileWatcher.check` (``serve`` does it every
``--reload-interval`` seconds, on the event loop thread).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


def fingerprint(paths: Sequence[Path]) -> str:
    """A hash of the files' contents (raises OSError when one cannot be read)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


class FileWatcher(Generic[T]):
    """Watches ``paths``: :meth:`check` loads a changed version with ``load`` and hands it to ``apply``; a load
    that raises one of ``errors`` goes to ``reject`` (its message), once per content.

    The content at construction is the one already in use (the caller loaded it).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        load: Callable[[], T],
        apply: Callable[[T], None],
        reject: Callable[[str], None],
        errors: tuple[type[Exception], ...],
    ) -> None:
        self.paths = tuple(paths)
        self._load, self._apply, self._reject, self._errors = load, apply, reject, errors
        self._seen = self.fingerprint()
        self._failed: str | None = None

    def fingerprint(self) -> str:
        """:func:`fingerprint` of the files, or ``unreadable: ...`` (a content of its own: reported once)."""
        try:
            return fingerprint(self.paths)
        except OSError as exc:
            return f"unreadable: {exc}"

    def check(self) -> bool | None:
        """True reloaded, False rejected (the last good version kept), None unchanged."""
        fp = self.fingerprint()
        if fp == self._seen:
            self._failed = None
            return None
        try:
            value = self._load()
        except self._errors as exc:
            if fp != self._failed:
                self._failed = fp
                self._reject(str(exc))
            return False
        self._seen, self._failed = fp, None
        self._apply(value)
        return True
