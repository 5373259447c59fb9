"""Passthrough devices (CONTRACT §5). Placeholder until issue 5 lands: no findings, no changes."""

from __future__ import annotations

from typing import Any

from webhook.rules.base import Context, Findings


def mutate_pod(obj: dict[str, Any], ctx: Context) -> Findings:
    return Findings()


def mutate_vmi(obj: dict[str, Any], ctx: Context) -> Findings:
    return Findings()


def mutate_vm(obj: dict[str, Any], ctx: Context) -> Findings:
    return Findings()


def validate_pod(obj: dict[str, Any], ctx: Context) -> Findings:
    return Findings()


def validate_vmi(obj: dict[str, Any], ctx: Context) -> Findings:
    return Findings()


def validate_vm(obj: dict[str, Any], ctx: Context) -> Findings:
    return Findings()
