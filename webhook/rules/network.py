"""Network interfaces (CONTRACT §6). Placeholder until issue 9 lands: no findings."""

from __future__ import annotations

from typing import Any

from webhook.rules.base import Context, Findings


def validate_vmi(obj: dict[str, Any], ctx: Context) -> Findings:
    return Findings()


def validate_vm(obj: dict[str, Any], ctx: Context) -> Findings:
    return Findings()
