"""Sidecar limits for dedicated-CPU pods (CONTRACT §4). Placeholder until issue 4 lands: no changes."""

from __future__ import annotations

from typing import Any

from webhook.rules.base import Context, Findings


def mutate_pod(obj: dict[str, Any], ctx: Context) -> Findings:
    return Findings()
