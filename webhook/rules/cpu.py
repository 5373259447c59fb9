"""Dedicated-CPU validation (CONTRACT §2, §3). Placeholder until issue 3 lands: no findings."""

from __future__ import annotations

from typing import Any

from webhook.rules.base import Context, Findings


def validate_vmi(obj: dict[str, Any], ctx: Context) -> Findings:
    return Findings()


def validate_vm(obj: dict[str, Any], ctx: Context) -> Findings:
    return Findings()


def validate_pod(obj: dict[str, Any], ctx: Context) -> Findings:
    return Findings()
