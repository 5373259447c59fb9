"""``review -o sarif`` and ``review -o junit``: the verdicts in the formats CI systems read.

SARIF 2.1.0 (OASIS) is what GitHub code scanning and GitLab's SAST reports read: one ``run`` of the tool
``vm-admission``, one ``reportingDescriptor`` per rule id seen (with its docs URL: ``docs/rules.md`` under
``VM_ADMISSION_DOCS_URL``), one ``result`` per cause (``error``), would-deny cause and warning (``warning``)
and review note (``note``), located at ``file:line:col`` and at the object (a logical location). It is
written with the standard library's ``json``: the Python SARIF object models on PyPI (``sarif-om``, last
released 2019) are not maintained, and SARIF is plain JSON. ``tests/commands/review/test_ci_output.py`` validates
the output against the official SARIF 2.1.0 JSON schema.

JUnit XML is what Jenkins, GitLab's test reports and most CI dashboards read: one ``testcase`` per document
(``classname`` the file, ``name`` the object), a ``failure`` for a denied object with its causes, an
``error`` for a document that cannot be read. It is written with ``junitparser``.

Both keep only the findings (small records), never the objects: memory grows with the findings, not with
the documents.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TextIO
from urllib.parse import quote

import orjson

from webhook.manifests import STDIN_LABEL, Position, Unreadable
from webhook.rules import registry
from webhook.rules.registry import define

if TYPE_CHECKING:
    from webhook.commands.review import Counts, Outcome, ToolInfo

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL = "vm-admission"
DEFAULT_DOCS_URL = "https://github.com/vm-admission/vm-admission/blob/main/docs/"
Level = Literal["error", "warning", "note"]

# review's ids for what is not a rule's cause (the input's is manifests.UNREADABLE_RULE)
WARNING_RULE = define(
    "review.warning",
    "a warning of the webhook that carries no rule id of its own (advice on an admitted object), as SARIF needs a "
    "rule for every result",
    field="the field the warning names",
    page="review-and-deploy.md",
    kind="review",
)
BAD_REQUEST_RULE = define(
    "review.bad-request",
    "an object the rules cannot read: the webhook would answer 400 (SARIF; text and JSON show the code)",
    field="the field the message names",
    page="review-and-deploy.md",
    kind="review",
)
NO_TEMPLATE_RULE = define(
    "review.no-template",
    "a VirtualMachine without `spec.template` under `--schema warn` or `off`: a note, its CPUs, devices and "
    "networks are not examined",
    field="`spec.template`",
    page="review-and-deploy.md",
    kind="review",
)


def _plain(markdown: str) -> str:
    return markdown.replace("`", "")


def descriptor(rule: str) -> dict[str, Any]:
    """The SARIF ``reportingDescriptor`` of one rule id: its registry entry as descriptions, its docs as help."""
    info = registry.get(rule)
    url = docs_url(rule)
    if info is not None:
        short = info.title
        full = f"{short} (field: {info.field or '—'}; kind: {info.kind})"
    else:
        short = full = f"vm-admission rule {rule}"
    return {
        "id": rule,
        "name": rule,
        "shortDescription": {"text": _plain(short)},
        "fullDescription": {"text": _plain(full), "markdown": full},
        "help": {"text": f"{_plain(short)}: {url}", "markdown": f"{short}: [{rule} in docs/rules.md]({url})"},
        "helpUri": url,
        "defaultConfiguration": {"level": "error" if rule != WARNING_RULE else "warning"},
        "properties": {"tags": ["kubernetes", "kubevirt", rule.partition(".")[0]]},
    }


def tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vm-admission")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without an install
        return "0.0.0"


def docs_url(rule: str) -> str:
    """Where ``rule`` is documented: its row of ``docs/rules.md`` under ``VM_ADMISSION_DOCS_URL``."""
    base = os.environ.get("VM_ADMISSION_DOCS_URL") or DEFAULT_DOCS_URL
    base = base if base.endswith("/") else base + "/"
    return f"{base}rules.md#{rule}"


def artifact_uri(file: str) -> str:
    """A file as a SARIF ``artifactLocation.uri``: relative to the working directory (the repository root in
    CI) when it is below it, with ``/`` separators, percent-encoded."""
    if file == STDIN_LABEL:
        return quote("stdin")
    path = os.path.relpath(file) if os.path.isabs(file) else file
    if path.startswith(".."):
        return "file://" + quote(os.path.abspath(file).replace(os.sep, "/"))
    return quote(path.replace(os.sep, "/"))


@dataclass(slots=True)
class SarifEmitter:
    """Streams SARIF results as objects are reviewed: the log is opened at the first result, each result is
    written as it comes, and the run's ``tool`` (the rules seen) and ``invocations`` close it at the end. JSON
    does not order keys, so ``results`` may come before ``tool``; memory holds the rule table only."""

    out: TextIO
    err: TextIO
    tool: ToolInfo
    rules: dict[str, int] = field(default_factory=dict)  # rule id -> index in tool.driver.rules
    written: int = 0
    opened: bool = False

    def _rule(self, rule: str) -> int:
        return self.rules.setdefault(rule, len(self.rules))

    def _result(
        self,
        rule: str,
        level: Level,
        text: str,
        file: str,
        pos: Position,
        logical: str | None = None,
        fingerprint: str = "",
    ) -> None:
        location: dict[str, Any] = {
            "physicalLocation": {
                "artifactLocation": {"uri": artifact_uri(file)},
                "region": {"startLine": pos.line, "startColumn": pos.column},
            }
        }
        if logical:
            location["logicalLocations"] = [{"fullyQualifiedName": logical, "kind": "object"}]
        result: dict[str, Any] = {
            "ruleId": rule,
            "ruleIndex": self._rule(rule),
            "level": level,
            "message": {"text": text},
            "locations": [location],
        }
        if fingerprint:
            digest = hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:32]
            result["partialFingerprints"] = {"vmAdmissionFinding/v1": digest}
        self._open()
        self.out.write((",\n" if self.written else "") + orjson.dumps(result).decode("utf-8"))
        self.written += 1

    def _open(self) -> None:
        if not self.opened:
            self.opened = True
            head = orjson.dumps({"$schema": SARIF_SCHEMA, "version": SARIF_VERSION}).decode("utf-8")
            self.out.write(head[:-1] + ',"runs":[{"columnKind":"unicodeCodePoints","results":[\n')

    def outcome(self, o: Outcome) -> None:
        src = o.source
        logical = f"{src.title}"
        would = {(c.field, c.message) for c in o.would_deny}
        notes = {(c.field, c.message) for c in o.notes}
        for loc in o.located():
            level: Level = "error" if loc.severity == "error" else "warning"
            if (loc.field, loc.message) in notes:
                level = "note"
            prefix = "would deny: " if (loc.field, loc.message) in would else ""
            text = f"{src.title}: {prefix}{loc.text}"
            rule = loc.rule or WARNING_RULE
            key = f"{src.file}|{src.kind}|{src.namespace}|{src.name}|{rule}|{loc.field}|{loc.message}"
            self._result(rule, level, text, src.file, loc.position, logical, key)
        code, message, causes = o.denial
        if not o.admitted and not causes:  # a 400: the rules could not read the object
            self._result(
                BAD_REQUEST_RULE,
                "error",
                f"{src.title}: {message} (code {code})",
                src.file,
                src.find(message.partition(":")[0]),
                logical,
            )

    def unreadable(self, u: Unreadable) -> None:
        doc = f"document {u.doc}: " if u.doc else ""
        self._result(u.rule, "error", f"{doc}{u.message}", u.file, u.position, None, f"{u.file}|{u.doc}|{u.message}")
        self.err.write(f"vm-admission review: error: {u.where}: {doc}{u.message}\n")

    def finish(self, counts: Counts) -> None:
        rules = sorted(self.rules, key=self.rules.__getitem__)
        descriptors = [descriptor(rule) for rule in rules]
        invocation: dict[str, Any] = {
            "executionSuccessful": True,
            "exitCode": counts.exit_code,
            "arguments": list(self.tool.arguments),
            "properties": {
                "objects": counts.objects,
                "denied": counts.denied,
                "unreadableDocuments": counts.unreadable,
                "schema": self.tool.schema_mode,
            },
        }
        driver = {
            "name": TOOL,
            "version": tool_version(),
            "semanticVersion": tool_version(),
            "informationUri": docs_url("").rsplit("/", 1)[0] + "/review-and-deploy.md",
            "rules": descriptors,
        }
        self._open()
        tail = orjson.dumps({"tool": {"driver": driver}, "invocations": [invocation]}).decode("utf-8")
        self.out.write("\n]," + tail[1:-1] + "}]}\n")


@dataclass(slots=True)
class JunitEmitter:
    """One JUnit test case per document, collected as objects are reviewed; written with junitparser."""

    out: TextIO
    err: TextIO
    cases: list[Any] = field(default_factory=list)

    def outcome(self, o: Outcome) -> None:
        from junitparser import Failure, TestCase

        from webhook.commands.review import text_block

        src = o.source
        case = TestCase(f"{src.title} (document {src.doc})", src.file, 0.0)
        lines = text_block(o)
        if not o.admitted:
            _, message, _ = o.denial
            failure = Failure(message[:1000], "denied")
            failure.text = "\n".join(lines[1:])
            case.result = [failure]
        elif len(lines) > 1:
            case.system_out = "\n".join(lines[1:])
        self.cases.append(case)

    def unreadable(self, u: Unreadable) -> None:
        from junitparser import Error, TestCase

        case = TestCase(f"document {u.doc} (line {u.position.line})", u.file, 0.0)
        error = Error(u.message, u.rule)
        error.text = f"{u.where}: {u.message}"
        case.result = [error]
        self.cases.append(case)
        self.err.write(f"vm-admission review: error: {u.where}: document {u.doc}: {u.message}\n")

    def finish(self, counts: Counts) -> None:
        from junitparser import JUnitXml, TestSuite

        suite = TestSuite("vm-admission review")
        for case in self.cases:
            suite.add_testcase(case)
        suite.update_statistics()  # type: ignore[no-untyped-call]
        xml = JUnitXml("vm-admission")
        xml.add_testsuite(suite)
        buf = io.BytesIO()
        xml.write(buf, pretty=True)
        self.out.write(buf.getvalue().decode("utf-8"))
