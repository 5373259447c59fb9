"""The audit's output (docs/audit.md): findings streamed as ``review`` prints them, the summary table, the
JSON/YAML document, and the progress line on a terminal."""

from __future__ import annotations

import time
from typing import Any, Literal, TextIO

import orjson
import yaml

from webhook.audit.reports import REPORT_NAME
from webhook.audit.run import Audited, AuditRun, Summary

Output = Literal["text", "json", "yaml"]
_MARK = {"fail": "✗", "warn": "!", "error": "?"}


class Progress:
    """``scanned N objects (R/s)`` overwritten in place on a terminal; nothing when stderr is not one."""

    def __init__(self, stream: TextIO, interval: float = 0.2) -> None:
        self.stream = stream
        self.on = bool(getattr(stream, "isatty", lambda: False)())
        self.started = self.last = time.monotonic()
        self.interval = interval
        self.shown = False

    def tick(self, scanned: int, force: bool = False) -> None:
        if not self.on:
            return
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        rate = scanned / max(now - self.started, 1e-6)
        self.stream.write(f"\r\x1b[Kscanned {scanned} objects ({rate:,.0f}/s)")
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        """Erase the line (before other output goes to the same terminal, and at the end)."""
        if self.on and self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False





def render_block(a: Audited) -> str:
    """One object as ``review`` prints it: the title, then each finding with its field and rule id."""
    lines = [f"{a.ref.title}:"]
    for f in a.findings:
        where = f"{f.field}: " if f.field else ""
        lines.append(f"  {_MARK[f.result]} {where}{f.message} [{f.rule}]")
    return "\n".join(lines) + "\n"


def render_summary(s: Summary) -> str:
    scanned = ", ".join(f"{n} {k}" for k, n in s.scanned.items())
    r = s.results
    lines = [
        f"{s.objects} objects scanned ({scanned}) in {s.seconds:.1f}s, {s.requests} API requests: "
        f"{s.with_findings} with findings ({r['fail']} fail, {r['warn']} warn, {r['error']} error)"
    ]
    if s.by_namespace:
        rows = [
            (ns, rule, counts) for ns in sorted(s.by_namespace) for rule, counts in sorted(s.by_namespace[ns].items())
        ]
        width_ns = max(len("NAMESPACE"), *(len(ns) for ns, _, _ in rows))
        width_rule = max(len("RULE"), *(len(rule) for _, rule, _ in rows))
        lines.append(f"{'NAMESPACE':<{width_ns}}  {'RULE':<{width_rule}}  FAIL  WARN  ERROR")
        for ns, rule, c in rows:
            lines.append(f"{ns:<{width_ns}}  {rule:<{width_rule}}  {c['fail']:>4}  {c['warn']:>4}  {c['error']:>5}")
    return "\n".join(lines) + "\n"


def as_document(run: AuditRun, reports: list[str] | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "objects": [a.as_json() for a in run.found],
        "summary": run.summary.as_json(),
        "notes": run.notes,
    }
    if reports is not None:
        doc["reports"] = reports
    return doc




def render_output(run: AuditRun, reports: list[str] | None, output: Output) -> str:
    """What the audit prints on stdout at its end: in text the summary (the findings were streamed), else the
    whole document."""
    if output == "text":
        text = render_summary(run.summary)
        if reports is not None:
            text += f"PolicyReports {REPORT_NAME} written in {len(reports)} namespaces\n"
        return text
    if output == "json":
        return orjson.dumps(as_document(run, reports), option=orjson.OPT_INDENT_2).decode("utf-8") + "\n"
    return yaml.safe_dump(as_document(run, reports), sort_keys=False, allow_unicode=True)
