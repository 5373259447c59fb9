"""Rule ids (docs/rules.md): on every cause, documented, counted by rule, never on the wire.

The fuzz and hostile corpora check every verdict's causes through ``tests.test_hostile.review_in_process``; the
rule unit tests check the id of the rule each case is about. Here: every example under ``examples/`` under
several configs and operations, the docs table against the code, the denials metric and ``review -o json``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.edge.test_server import _post
from tests.testkit.paths import REPO
from tests.testkit.review import make_review
from webhook import catalog, engine
from webhook.cli import build_parser
from webhook.commands import review as offline
from webhook.config import Config, parse_config
from webhook.engine import Verdict
from webhook.rules import registry
from webhook.rules.base import Cause
from webhook.server import AppState

EXAMPLES = REPO / "examples"
RULES_DOC = REPO / "docs" / "rules.md"
RULE_ID = registry.RULE_ID  # ids in words: area.what-is-wrong
CONFIGS = {
    "default": Config(),
    "warn": parse_config({"enforcement": "warn"}),
    "no-cpu-manager": parse_config({"cpuManager": {"enabled": False}}),
    "permitted-only": parse_config(
        {
            "passthrough": {
                "permittedOnly": True,
                "maxCount": 2,
                "permittedDevices": [{"selector": "10de:1eb8", "resourceName": "nvidia.com/TU104GL_Tesla_T4"}],
            }
        }
    ),
    "arm64": parse_config({"kubevirt": {"defaultArchitecture": "arm64"}}),
}


def documented() -> dict[str, str]:
    """docs/rules.md's tables: id -> kind."""
    rows = re.findall(r'^\| <a id="[^"]+"></a>`([^`]+)` \| ([^|]+) \|', RULES_DOC.read_text(encoding="utf-8"), re.M)
    return {rule: kind.strip() for rule, kind in rows}


def example_objects() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict):
                out.append((str(path.relative_to(EXAMPLES)), doc))
    return out


def all_causes(*verdicts: Verdict) -> list[Cause]:
    return [c for v in verdicts for c in (*v.causes, *v.would_deny)]


@pytest.mark.parametrize("config_name", CONFIGS)
def test_every_cause_of_every_example_carries_a_documented_rule_id(config_name: str) -> None:
    config, docs, seen = CONFIGS[config_name], documented(), 0
    for name, obj in example_objects():
        runs = [engine.chain(obj, config)]
        if obj.get("kind") == "VirtualMachine":
            runs.append(engine.chain(obj, config, "UPDATE", old_object=obj))
        for result in runs:
            for cause in all_causes(result.mutation, result.validation):
                seen += 1
                assert RULE_ID.fullmatch(cause.rule), f"{name}: cause without a rule id: {cause}"
                assert docs.get(cause.rule) == "deny", f"{name}: {cause.rule} is not a deny row of docs/rules.md"
    assert seen > 20  # the examples do exercise denials


def test_docs_rules_md_is_generated_from_the_registry() -> None:
    """CI fails when a rule is added, renamed or retitled without regenerating the page."""
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "rules-doc"), "--check"], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    assert catalog.render() == RULES_DOC.read_text(encoding="utf-8")  # the same page, rendered in process
    assert documented() == {r.id: r.kind for r in catalog.rules()}


def test_the_renaming_table_lists_old_codes_in_their_order_then_the_old_words() -> None:
    table = RULES_DOC.read_text(encoding="utf-8").split("## Renamed ids", 1)[1]
    olds = re.findall(r"^\| `([^`]+)` \| \[`([^`]+)`\]\(#([^)]+)\) \|$", table, re.M)
    assert [old for old, _, _ in olds][:3] == ["cpu.G1", "cpu.G2", "cpu.G3"]
    assert [old for old, _, _ in olds].index("cpu.R2") < [old for old, _, _ in olds].index("cpu.R10")
    assert all(new == anchor and registry.get(new) is not None for _, new, anchor in olds)
    assert registry._code_order("network.N12") == ("network", "N", 12)
    assert registry._code_order("qos.quantity") == ("qos", "~quantity", 0)


def test_every_denying_rule_is_used_where_it_is_defined() -> None:
    """A registered rule of kind deny, cluster, preflight or warning is emitted by its module: its constant is
    used beyond its ``define``. Reserved ids are not, and review's own ids are emitted outside the rules."""
    catalog.rules()
    for path in sorted((REPO / "webhook").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for const, rule_id in re.findall(r'^(\w+) = define\(\s*"([^"]+)"', text, re.M):
            info = registry.get(rule_id)
            assert info is not None
            used = len(re.findall(rf"\b{const}\b", text)) > 1
            assert used == (info.kind != "reserved") or info.kind == "review", f"{path.name}: {rule_id}"


def test_old_ids_are_in_the_renaming_table() -> None:
    """Every id that was a code (cpu.R7, network.N12, preflight.K1) names the id that replaced it."""
    replaced = {r.replaces for r in registry.all_rules() if r.replaces}
    codes = {f"cpu.{c}{i}" for c, n in (("R", 15), ("G", 12)) for i in range(1, n + 1)}
    codes |= {f"network.N{i}" for i in range(1, 20)} | {f"preflight.K{i}" for i in range(1, 7)}
    assert codes <= replaced
    table = RULES_DOC.read_text(encoding="utf-8").split("## Renamed ids", 1)[1]
    assert all(f"| `{old}` |" in table for old in replaced)


def test_readme_links_the_rules_table() -> None:
    assert "docs/rules.md" in (REPO / "README.md").read_text(encoding="utf-8")


FRACTIONAL_VMI = {
    "apiVersion": "kubevirt.io/v1",
    "kind": "VirtualMachineInstance",
    "metadata": {"name": "half", "namespace": "default"},
    "spec": {
        "domain": {
            "cpu": {"dedicatedCpuPlacement": True},
            "resources": {"requests": {"memory": "1Gi"}, "limits": {"cpu": "1500m", "memory": "1Gi"}},
            "devices": {},
        }
    },
}


def metric(state: AppState, name: str, webhook: str, rule: str) -> float:
    text = state.metrics.render()[0].decode()
    m = re.search(rf'^{name}\{{rule="{re.escape(rule)}",webhook="{webhook}"\}} (\S+)$', text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


def test_denials_are_counted_by_rule_and_ids_stay_off_the_wire() -> None:
    state = AppState(config=Config(), certs_loaded=True)
    resp = _post(state, "/validate", make_review(FRACTIONAL_VMI)).json()["response"]
    assert resp["allowed"] is False
    causes = resp["status"]["details"]["causes"]
    assert causes and all(set(c) == {"reason", "type", "field", "message"} for c in causes)  # StatusCause, no rule
    assert metric(state, "vm_admission_denials_total", "validate", "cpu.fractional-cpu-request") == 1
    assert metric(state, "vm_admission_denials_total", "validate", "cpu.fractional-cpu-limit") == 1
    _post(state, "/validate", make_review(FRACTIONAL_VMI))
    assert metric(state, "vm_admission_denials_total", "validate", "cpu.fractional-cpu-request") == 2
    assert metric(state, "vm_admission_would_deny_total", "validate", "cpu.fractional-cpu-request") == 0


def test_warn_mode_counts_would_deny_causes_by_rule() -> None:
    state = AppState(config=parse_config({"enforcement": "warn"}), certs_loaded=True)
    resp = _post(state, "/validate", make_review(FRACTIONAL_VMI)).json()["response"]
    assert resp["allowed"] is True and resp["warnings"]
    assert metric(state, "vm_admission_would_deny_total", "validate", "cpu.fractional-cpu-limit") == 1
    assert metric(state, "vm_admission_denials_total", "validate", "cpu.fractional-cpu-limit") == 0


def test_admitted_reviews_count_no_denials() -> None:
    state = AppState(config=Config(), certs_loaded=True)
    _post(state, "/validate", make_review({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}))
    assert "vm_admission_denials_total{" not in state.metrics.render()[0].decode()


def test_a_cause_without_a_valid_id_is_counted_as_other() -> None:
    state = AppState(config=Config(), certs_loaded=True)
    state.metrics.count_denials("validate", Verdict(allowed=False, causes=[Cause("spec.x", "bad")]))
    assert metric(state, "vm_admission_denials_total", "validate", "other") == 1


def test_warn_verdict_keeps_the_would_deny_causes() -> None:
    request = make_review(FRACTIONAL_VMI)["request"]
    verdict = engine.handle(request, "validate", parse_config({"enforcement": "warn"}))
    assert verdict.allowed and verdict.causes == []
    assert {c.rule for c in verdict.would_deny} == {"cpu.fractional-cpu-request", "cpu.fractional-cpu-limit"}


def review_json(capsys: pytest.CaptureFixture[str], tmp_path: Path, *extra: str) -> dict[str, Any]:
    path = tmp_path / "vmi.json"
    path.write_text(json.dumps(FRACTIONAL_VMI), encoding="utf-8")
    args = offline_args(str(path), *extra)
    offline.review_command(args)
    [result] = json.loads(capsys.readouterr().out)
    out: dict[str, Any] = result
    return out


def offline_args(*argv: str) -> Any:
    return build_parser().parse_args(["review", *argv, "-o", "json"])


def test_review_json_causes_carry_their_rule(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = review_json(capsys, tmp_path)
    assert [(c["field"], c["rule"]) for c in result["causes"]] == [
        ("spec.domain.resources.requests.cpu", "cpu.fractional-cpu-request"),
        ("spec.domain.resources.limits.cpu", "cpu.fractional-cpu-limit"),
    ]
    assert result["wouldDeny"] == []


def test_review_json_in_warn_mode_lists_would_deny_causes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("enforcement: warn\n", encoding="utf-8")
    result = review_json(capsys, tmp_path, "--config", str(config))
    assert result["verdict"] == "admitted" and result["causes"] == []
    assert [c["rule"] for c in result["wouldDeny"]] == ["cpu.fractional-cpu-request", "cpu.fractional-cpu-limit"]


def test_a_rule_id_is_defined_once_in_words_of_a_known_area() -> None:
    for bad in ("cpu.R1", "cpu.memoryHotplug", "nope.something", "cpu.-x", "cpu"):
        with pytest.raises(ValueError, match="malformed rule id"):
            registry.define(bad, "t", field="", page="rules.md")
    taken = registry.get("cpu.memory-required")
    assert taken is not None
    assert (
        registry.define(taken.id, taken.title, field=taken.field, page=taken.page, replaces=taken.replaces) == taken.id
    )
    with pytest.raises(ValueError, match="defined twice"):
        registry.define(taken.id, "another title", field=taken.field, page=taken.page)
