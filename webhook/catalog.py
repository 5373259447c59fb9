"""Every rule id vm-admission can emit: the registry (:mod:`webhook.rules.registry`) once every module that
defines ids is imported. ``scripts/rules-doc`` writes docs/rules.md from it; the tests check the page is current.

The admission rules register through the engine (which imports every rule module); ``review`` registers its own
ids in the modules that emit them (its input, its schema check, its expansions, its CI output).
"""

from __future__ import annotations

import importlib

from webhook.rules import registry

MODULES = ("webhook.engine", "webhook.manifests", "webhook.schema", "webhook.expand", "webhook.ci_output")


def rules() -> list[registry.RuleInfo]:
    for name in MODULES:
        importlib.import_module(name)
    return registry.all_rules()


def render() -> str:
    """docs/rules.md as it should read."""
    rules()
    return registry.render_markdown()
