"""Presets, instance types and preferences found in ``review``'s input, applied before the rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from webhook.manifests import Source
from webhook.rules.base import Cause


class Expansions:
    """What the input defines for other objects to use."""

    @classmethod
    def scan(cls, paths: Sequence[str], stdin: TextIO, recursive: bool = False) -> Expansions:
        return cls()

    def expand(self, src: Source) -> tuple[dict[str, Any], list[Cause], list[str]]:
        return src.obj, [], []
