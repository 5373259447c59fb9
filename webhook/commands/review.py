"""``vm-admission review``: the webhook's verdict on manifest files, without a cluster (docs/review-and-deploy.md).

Every object in the files goes through :func:`webhook.engine.chain`, the same mutate -> patch -> defaulting
-> validate sequence the API server runs with our two webhooks, so a CI job sees what ``kubectl apply`` would
see; with ``--schema strict`` (the default) also through the KubeVirt CRD and Kubernetes OpenAPI schemas the
API server checks before any webhook (:mod:`webhook.schema`). Presets, instance types and preferences found
in the input are applied first, as KubeVirt expands them (:mod:`webhook.expand`).

Reading (:mod:`webhook.manifests`) is streamed: one object is read, reviewed, printed and dropped before the
next, so memory stays flat with the number of documents for text, SARIF and JUnit output. No document is
lost: one that cannot be read (bad YAML, a ``kind`` without ``apiVersion``, a list item that is not an object,
a file that cannot be opened) is reported with its position and every other document still gets its
verdict. Documents that are not Kubernetes objects at all (neither ``apiVersion`` nor ``kind``: a values
file, a CI workflow that a directory or a pre-commit run hands us) are skipped with a note on stderr.

Every cause and warning carries its position: file, document, and the line and column of its field (or of the
nearest parent that exists). Exit 2 when any document could not be read (or the command itself cannot run:
a bad ``--config``, nothing to read), otherwise 1 when any object is denied, otherwise 0.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO, cast

import orjson
import yaml

from webhook.ci_output import NO_TEMPLATE_RULE
from webhook.config import Config, ConfigError, load_config
from webhook.engine import ChainResult, chain, object_kind
from webhook.expand import CLUSTER_RESOURCES, PRESET_AVOIDABLE, Expansions
from webhook.k8s.snapshot import ClusterSnapshot
from webhook.manifests import (
    InputError,
    Item,
    Position,
    Skipped,
    Source,
    Unreadable,
    read_items,
)
from webhook.rules.base import Cause, CauseType, Operation

__all__ = ["InputError", "Outcome", "Source", "cause_json", "find_old", "review_command"]

EXIT_ADMITTED, EXIT_DENIED, EXIT_BAD_INPUT = 0, 1, 2
NOT_REVIEWED = "not reviewed: no rule concerns this kind"
Output = Literal["text", "json", "yaml", "sarif", "junit"]
SchemaMode = Literal["strict", "warn", "off"]
# a field path at the head of a warning (``spec.domain: ...``) or in parentheses (``container "x" (spec.x[1])``)
_WARNING_FIELD = re.compile(r"(?:^|\(|: )((?:spec|metadata)(?:\.[A-Za-z0-9_/.-]*[A-Za-z0-9_]|\[\d+\])*)")


@dataclass(frozen=True, slots=True)
class Located:
    """A cause or warning of one object, with where its field is written (``rule`` may be "" for a warning)."""

    severity: Literal["error", "warning"]
    field: str
    message: str
    rule: str
    position: Position
    type: CauseType = "FieldValueInvalid"

    def as_json(self, src: Source) -> dict[str, Any]:
        return {
            "type": self.type,
            "field": self.field,
            "message": self.message,
            "rule": self.rule,
            "file": src.file,
            "document": src.doc,
            "line": self.position.line,
            "column": self.position.column,
        }

    @property
    def text(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def locate(src: Source, c: Cause, severity: Literal["error", "warning"] = "error") -> Located:
    return Located(severity, c.field, c.message, c.rule, src.find(c.field), c.type)


def warning_field(text: str) -> str:
    """The field a warning's text names, if any (warnings travel as text; their position comes from this)."""
    m = _WARNING_FIELD.search(text)
    return m.group(1) if m else ""


@dataclass(slots=True)
class Outcome:
    """The review of one object: the engine's mutating and validating verdicts, the schema's causes, the notes
    of the review itself (missing template, instance types that are not in the input)."""

    source: Source
    reviewed: bool
    result: ChainResult
    schema: list[Cause] = field(default_factory=list)  # denying under --schema strict, warnings under warn
    schema_denies: bool = True
    notes: list[Cause] = field(default_factory=list)  # review's own warnings, with rule ids
    expansion: list[Cause] = field(default_factory=list)  # denying: what KubeVirt refuses in the expansion
    # a VM whose instance type or presets were expanded: the chain on the VM as written, which is what the API
    # server stores and what -o yaml prints (KubeVirt expands it only into the VMI it starts)
    stored: ChainResult | None = None
    hints: list[str] = field(default_factory=list)  # appended to a denial: what a preset could have given

    @property
    def admitted(self) -> bool:
        return self.result.allowed and not (self.schema and self.schema_denies) and not self.expansion

    @property
    def denial(self) -> tuple[int, str, list[Cause]]:
        """(code, message, causes) of what denied, or (200, "", []) when admitted. Schema causes come first:
        the API server checks the schema before it calls any webhook."""
        schema = [*(self.schema if self.schema_denies else []), *self.expansion]
        for verdict in (self.result.mutation, self.result.validation):
            if not verdict.allowed:
                if verdict.code == 400 and schema:
                    return 422, _message(schema), schema
                return verdict.code, verdict.message, [*schema, *verdict.causes]
        if schema:
            return 422, _message(schema), schema
        return 200, "", []

    @property
    def would_deny(self) -> list[Cause]:
        """Causes that would have denied: ``enforcement: warn``'s, and the schema's under ``--schema warn``."""
        schema = [] if self.schema_denies else self.schema
        return [*schema, *self.result.mutation.would_deny, *self.result.validation.would_deny]

    @property
    def warnings(self) -> list[str]:
        """The engine's warnings, as the API server would send them."""
        seen: dict[str, None] = {}
        for w in [*self.result.mutation.warnings, *self.result.validation.warnings]:
            seen.setdefault(w, None)
        return list(seen)

    @property
    def patch(self) -> list[dict[str, Any]]:
        return (self.stored or self.result).mutation.patch

    @property
    def admitted_object(self) -> dict[str, Any]:
        return (self.stored or self.result).admitted

    def located(self) -> list[Located]:
        """Every cause, would-deny and warning of this object with its position, in print order."""
        src = self.source
        _, _, causes = self.denial
        out = [locate(src, c) for c in causes]
        out += [locate(src, c, "warning") for c in self.would_deny]
        out += [locate(src, c, "warning") for c in self.notes]
        # the engine's "would deny" warnings are the would-deny causes above, which carry their rule ids
        plain = [w for w in self.warnings if not w.startswith("would deny: ")]
        out += [Located("warning", "", w, "", src.find(warning_field(w))) for w in plain]
        return out

    def as_json(self) -> dict[str, Any]:
        code, message, causes = self.denial
        src = self.source
        pos = src.position
        return {
            "file": src.file,
            "document": src.doc,
            "line": pos.line,
            "column": pos.column,
            "apiVersion": src.obj.get("apiVersion"),
            "kind": src.kind,
            "namespace": src.namespace,
            "name": src.name,
            "verdict": "admitted" if self.admitted else "denied",
            "reviewed": self.reviewed,
            "code": code,
            "message": message if not self.admitted else ("" if self.reviewed else NOT_REVIEWED),
            "causes": [locate(src, c).as_json(src) for c in causes],
            "wouldDeny": [locate(src, c).as_json(src) for c in self.would_deny],
            "warnings": self.warnings,
            "notes": [locate(src, c, "warning").as_json(src) for c in self.notes],
            "hints": self.hints,
            "patch": self.patch,
        }


def _message(causes: list[Cause]) -> str:
    from webhook.engine import deny_message

    return deny_message(causes)


def cause_json(c: Cause) -> dict[str, str]:
    """A cause as ``review -o json`` prints it without a position: {type, field, message, rule}."""
    return {"type": c.type, "field": c.field, "message": c.message, "rule": c.rule}


def unreadable_json(u: Unreadable) -> dict[str, Any]:
    return {
        "file": u.file,
        "document": u.doc,
        "line": u.position.line,
        "column": u.position.column,
        "verdict": "error",
        "rule": u.rule,
        "message": u.message,
    }


# --- reading -------------------------------------------------------------------------------------------


def read_sources(paths: Sequence[str], stdin: TextIO, recursive: bool = False) -> list[Source]:
    """Every object in ``paths``, all at once (``--old``); raise :class:`InputError` on anything unreadable."""
    out: list[Source] = []
    for item in read_items(paths, stdin, recursive):
        if isinstance(item, Unreadable):
            raise InputError(f"{item.where}: document {item.doc}: {item.message}")
        if isinstance(item, Source):
            out.append(item)
    return out


def _group(obj: dict[str, Any]) -> str:
    group, _, _ = str(obj.get("apiVersion") or "").rpartition("/")
    return group


def _key(src: Source) -> tuple[str, str, str]:
    return (src.kind, src.namespace, src.name)


def find_old(new: Source, olds: Sequence[Source]) -> dict[str, Any] | None:
    """The old object for ``new``: same kind, namespace and name; else same kind and name; else the only one."""
    exact = [o for o in olds if _key(o) == _key(new)]
    named = [o for o in olds if (o.kind, o.name) == (new.kind, new.name)]
    if exact or named:
        return (exact or named)[0].obj
    return olds[0].obj if len(olds) == 1 else None


# --- reviewing -----------------------------------------------------------------------------------------


class SchemaCheck(Protocol):
    def __call__(self, obj: dict[str, Any]) -> list[Cause]: ...


class Expander(Protocol):
    def expand(self, src: Source) -> tuple[dict[str, Any], list[Cause], list[Cause], list[str]]: ...


@dataclass(slots=True)
class Reviewer:
    """What reviewing one object needs besides the object; built once per run."""

    config: Config
    operation: Operation = "CREATE"
    olds: Sequence[Source] = ()
    cluster: ClusterSnapshot | None = None
    schema: SchemaCheck | None = None
    schema_mode: SchemaMode = "off"
    expander: Expander | None = None

    def review(self, src: Source) -> Outcome:
        reviewed = bool(object_kind({"kind": {"group": _group(src.obj), "kind": src.kind}}))
        old = find_old(src, self.olds) if self.operation == "UPDATE" else None
        schema = self.schema(src.obj) if self.schema is not None and self.schema_mode != "off" else []
        schema.sort(key=lambda c: src.find(c.field))  # in the order they are written
        obj, expansion, notes, hints = src.obj, list[Cause](), list[Cause](), list[str]()
        if self.expander is not None and reviewed:
            obj, expansion, notes, hints = self.expander.expand(src)
        if (
            reviewed
            and src.kind == "VirtualMachine"
            and not _has_template(src.obj)
            and not (self.schema_mode == "strict" and schema)
        ):
            notes.append(
                Cause(
                    "spec.template",
                    "the VirtualMachine has no spec.template: its CPUs, memory, devices and networks are not "
                    "examined (the API server refuses a VM without one)",
                    "FieldValueRequired",
                    NO_TEMPLATE_RULE,
                )
            )
        result = chain(obj, self.config, self.operation, old, src.namespace, self.cluster)
        outcome = Outcome(src, reviewed, result, schema, self.schema_mode == "strict", notes, expansion)
        if obj is not src.obj and src.kind == "VirtualMachine":
            outcome.stored = chain(src.obj, self.config, self.operation, old, src.namespace, self.cluster)
        if hints and not outcome.admitted:
            _, _, causes = outcome.denial
            if any(c.rule in PRESET_AVOIDABLE for c in [*causes, *outcome.would_deny]):
                outcome.hints = hints
        return outcome


def _has_template(obj: dict[str, Any]) -> bool:
    spec = obj.get("spec")
    return isinstance(spec, dict) and isinstance(spec.get("template"), dict)


# --- printing ------------------------------------------------------------------------------------------


def _compact(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


class Emitter(Protocol):
    """One output format, fed in input order; ``finish`` writes what it kept (the summary, a whole document)."""

    def outcome(self, o: Outcome) -> None: ...

    def unreadable(self, u: Unreadable) -> None: ...

    def finish(self, counts: Counts) -> None: ...


@dataclass(slots=True)
class Counts:
    objects: int = 0
    denied: int = 0
    unreadable: int = 0
    skipped: int = 0

    @property
    def exit_code(self) -> int:
        if self.unreadable:
            return EXIT_BAD_INPUT
        return EXIT_DENIED if self.denied else EXIT_ADMITTED

    def summary(self) -> str:
        noun = "object" if self.objects == 1 else "objects"
        line = f"{self.objects} {noun}: {self.objects - self.denied} admitted, {self.denied} denied"
        if self.unreadable:
            line += f", {self.unreadable} unreadable document{'s' if self.unreadable != 1 else ''}"
        return line


def text_block(o: Outcome) -> list[str]:
    """One object: the verdict line, then causes (✗), would-deny and warnings (!), each with ``file:line:col``,
    and the patch ops (+)."""
    src = o.source
    verdict = "ADMITTED" if o.admitted else "DENIED"
    suffix = "" if o.reviewed else f" ({NOT_REVIEWED})"
    lines = [f"{src.title}: {verdict}{suffix}"]
    code, message, causes = o.denial
    if not o.admitted and not causes:
        lines.append(f"  ✗ {src.where(message.partition(':')[0])}: {message} (code {code})")
    for loc in o.located():
        where = f"{src.file}:{loc.position}"
        rule = f" [{loc.rule}]" if loc.rule else ""
        if loc.severity == "error":
            lines.append(f"  ✗ {where}: {loc.text}{rule}")
        elif any(loc.field == c.field and loc.message == c.message for c in o.would_deny):
            lines.append(f"  ! {where}: would deny: {loc.text}{rule}")
        else:
            lines.append(f"  ! {where}: {loc.text}{rule}")
    lines.extend(f"  ? hint: {h}" for h in o.hints)
    for op in o.patch:
        value = f" = {_compact(op['value'])}" if "value" in op else ""
        lines.append(f"  + {op['op']} {op['path']}{value}")
    return lines


class TextEmitter:
    """Streams: each block is written as soon as its object is reviewed."""

    def __init__(self, out: TextIO, many_files: bool) -> None:
        self.out, self.many_files = out, many_files
        self.current: str | None = None

    def _file(self, file: str) -> None:
        if self.many_files and file != self.current:
            self.current = file
            self.out.write(f"# {file}\n")

    def outcome(self, o: Outcome) -> None:
        self._file(o.source.file)
        self.out.write("\n".join(text_block(o)) + "\n")

    def unreadable(self, u: Unreadable) -> None:
        self._file(u.file)
        doc = f"document {u.doc}: " if u.doc else ""
        self.out.write(f"{u.where}: {doc}UNREADABLE: {u.message} [{u.rule}]\n")

    def finish(self, counts: Counts) -> None:
        self.out.write(counts.summary() + "\n")


class JsonEmitter:
    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out, self.err = out, err
        self.entries: list[dict[str, Any]] = []

    def outcome(self, o: Outcome) -> None:
        self.entries.append(o.as_json())

    def unreadable(self, u: Unreadable) -> None:
        self.entries.append(unreadable_json(u))
        self.err.write(f"vm-admission review: error: {u.where}: document {u.doc}: {u.message}\n")

    def finish(self, counts: Counts) -> None:
        self.out.write(orjson.dumps(self.entries, option=orjson.OPT_INDENT_2).decode("utf-8") + "\n")


class YamlEmitter:
    """The admitted objects as the API server would store them (after our patch and defaulting), streamed;
    what was left out, and why, on stderr with file and document (stdout stays applicable YAML)."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out, self.err, self.first = out, err, True

    def outcome(self, o: Outcome) -> None:
        if o.admitted:
            if not self.first:
                self.out.write("---\n")
            self.first = False
            self.out.write(
                yaml.safe_dump(o.admitted_object, sort_keys=False, allow_unicode=True, default_flow_style=False)
            )
            return
        src = o.source
        _, message, _ = o.denial
        self.err.write(f"{src.where()}: document {src.doc}: {src.title}: DENIED: {message}\n")

    def unreadable(self, u: Unreadable) -> None:
        self.err.write(f"{u.where}: document {u.doc}: UNREADABLE: {u.message}\n")

    def finish(self, counts: Counts) -> None:
        pass


def make_emitter(output: Output, stdout: TextIO, stderr: TextIO, many_files: bool, tool: ToolInfo) -> Emitter:
    if output == "json":
        return JsonEmitter(stdout, stderr)
    if output == "yaml":
        return YamlEmitter(stdout, stderr)
    if output in ("sarif", "junit"):
        from webhook.ci_output import JunitEmitter, SarifEmitter

        return SarifEmitter(stdout, stderr, tool) if output == "sarif" else JunitEmitter(stdout, stderr)
    return TextEmitter(stdout, many_files)


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """What SARIF says about the run: the command line and the schema mode."""

    arguments: tuple[str, ...] = ()
    schema_mode: SchemaMode = "strict"


def run_review(items: Iterable[Item], reviewer: Reviewer, emitter: Emitter, stderr: TextIO) -> Counts:
    """Review ``items`` one by one into ``emitter`` (nothing is kept here); return the counts."""
    counts = Counts()
    for item in items:
        if isinstance(item, Skipped):
            counts.skipped += 1
            print(
                f"vm-admission review: note: {item.file}: document {item.doc} is not a Kubernetes object "
                "(no apiVersion or kind): skipped",
                file=stderr,
            )
        elif isinstance(item, Unreadable):
            counts.unreadable += 1
            emitter.unreadable(item)
        else:
            outcome = reviewer.review(item)
            counts.objects += 1
            counts.denied += not outcome.admitted
            emitter.outcome(outcome)
    return counts


# --- command -------------------------------------------------------------------------------------------


def cluster_snapshot(args: argparse.Namespace) -> ClusterSnapshot:
    """``--cluster``: list the cluster's nodes and KubeVirt CRs once (raises InputError saying why not)."""
    from webhook.cluster.client import api_client
    from webhook.cluster.view import ClusterView

    try:
        kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        annotation = load_config(args.config).networks.resourceNameAnnotation
        return ClusterView(api_client(kubeconfig, args.context), resource_annotation=annotation).list_once()
    except ConfigError:
        raise
    except Exception as exc:
        reason = getattr(exc, "reason", None) or exc
        raise InputError(f"--cluster: cannot read the cluster's nodes, KubeVirt CR and NADs: {reason}") from None


def cluster_expansions(args: argparse.Namespace, expansions: Expansions, stderr: TextIO) -> None:
    """``--cluster``: add the cluster's instance types, preferences and presets (listed once, read-only) to
    those of the input, which win on the same kind, namespace and name. A kind the cluster does not serve (404)
    or that the credentials may not list (403) is left out with a note."""
    from webhook.cluster.client import Client, Gvr, api_client

    kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    try:
        api = Client(api_client(kubeconfig, args.context))
    except Exception as exc:
        raise InputError(f"--cluster: cannot load credentials from {kubeconfig}: {exc}") from None
    for group, version, plural, kind in CLUSTER_RESOURCES:
        try:
            listed: Any = api.list_whole(Gvr(kind, group, version, plural))
        except Exception as exc:
            status = getattr(exc, "status", None)
            if status in (403, 404):
                why = "not served" if status == 404 else "forbidden"
                print(f"vm-admission review: note: --cluster: {plural}.{group} {why}: not looked up", file=stderr)
                continue
            raise InputError(
                f"--cluster: cannot list {plural}.{group}: {getattr(exc, 'reason', None) or exc}"
            ) from None
        for item in listed.get("items") or []:
            if isinstance(item, dict):
                expansions.add({"apiVersion": f"{group}/{version}", "kind": kind, **item}, replace=False)
    expansions.where = " or the cluster"


def _spooled_stdin(paths: Sequence[str], stdin: TextIO) -> TextIO:
    """Standard input copied once to a spooled temporary file (in memory up to 8 MiB, then on disk), so the
    pre-pass for presets and instance types can read it and the review read it again, in flat memory."""
    if "-" not in paths:
        return stdin
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+", encoding="utf-8")  # noqa: SIM115 (read until the run ends)
    shutil.copyfileobj(stdin, spool)
    spool.seek(0)
    return cast(TextIO, spool)


def review_command(
    args: argparse.Namespace,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """``vm-admission review``; returns the exit code (0 all admitted, 1 some denied, 2 unreadable input)."""
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    output: Output = args.output
    operation: Operation = args.operation
    schema_mode: SchemaMode = getattr(args, "schema", "strict")
    recursive = bool(getattr(args, "recursive", False))
    try:
        if args.old is not None and operation != "UPDATE":
            raise InputError("--old is only meaningful with --operation UPDATE")
        if list(args.files).count("-") + (args.old == "-") > 1:
            raise InputError("standard input (-) can be read only once")
        config = load_config(args.config)
        olds = read_sources([args.old], stdin) if args.old is not None else []
        cluster = cluster_snapshot(args) if getattr(args, "cluster", False) else None
        schema = None
        if schema_mode != "off":
            from webhook.schema import SchemaError, SchemaValidator

            try:
                schema = SchemaValidator(getattr(args, "kubernetes_version", None))
            except SchemaError as exc:
                raise InputError(str(exc)) from None
        files = list(args.files)
        stdin = _spooled_stdin(files, stdin)
        expansions = Expansions.scan(files, stdin, recursive)
        if cluster is not None:
            cluster_expansions(args, expansions, stderr)
    except (InputError, ConfigError) as exc:
        print(f"vm-admission review: {exc}", file=stderr)
        return EXIT_BAD_INPUT
    reviewer = Reviewer(config, operation, olds, cluster, schema, schema_mode, expansions)
    many_files = len(files) > 1 or any(f != "-" and os.path.isdir(f) for f in files)
    tool = ToolInfo(tuple(sys.argv[1:]) if stdout is sys.stdout else (), schema_mode)
    emitter = make_emitter(output, stdout, stderr, many_files, tool)
    counts = run_review(read_items(files, stdin, recursive), reviewer, emitter, stderr)
    if not counts.objects and not counts.skipped and not counts.unreadable:
        print("vm-admission review: no objects found in the input", file=stderr)
        return EXIT_BAD_INPUT
    emitter.finish(counts)
    return counts.exit_code
