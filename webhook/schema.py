"""Schema validation for ``review`` (placeholder until the validators land)."""

from __future__ import annotations

from typing import Any

from webhook.rules.base import Cause


class SchemaValidator:
    def __init__(self, kubernetes_version: str | None = None) -> None:
        self.kubernetes_version = kubernetes_version

    def __call__(self, obj: dict[str, Any]) -> list[Cause]:
        return []
