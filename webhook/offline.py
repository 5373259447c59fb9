"""``vm-admission review``: the webhook's verdict on manifest files, without a cluster (CONTRACT §8).

Every object in the files goes through :func:`webhook.engine.chain`, the same mutate -> patch -> defaulting
-> validate sequence the API server runs with our two webhooks, so a CI job sees what ``kubectl apply`` would
see. Paths are read as ``kubectl apply -f`` reads them: a file (any name), ``-`` for stdin, or a directory,
whose ``.json``, ``.yaml`` and ``.yml`` files are read in lexical order of their names (with ``-R``, its
subdirectories too, depth first, in the same order: kubectl's ``ExpandPathsToFileVisitors``, a
``filepath.Walk``). Multi-document streams and ``List`` kinds hold many objects.

All input is read and checked before anything is reviewed: bad input (an unreadable file, bad YAML, a
document that has a ``kind`` but no ``apiVersion`` or the other way round, a bad ``--config``) exits 2 with a
message on stderr and prints no verdicts. Documents that are not Kubernetes objects at all (neither
``apiVersion`` nor ``kind``: a values file, a CI workflow that a directory or a pre-commit run hands us) are
skipped with a note on stderr. Exit 0 when every object is admitted, 1 when any is denied.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

import orjson
import yaml

from webhook.config import ConfigError, load_config
from webhook.engine import ChainResult, chain, object_kind
from webhook.k8s.snapshot import ClusterSnapshot
from webhook.rules.base import Cause, Operation

EXIT_ADMITTED, EXIT_DENIED, EXIT_BAD_INPUT = 0, 1, 2
NOT_REVIEWED = "not reviewed: no rule concerns this kind"
# what kubectl reads from a directory (FilenameParam's FileExtensions); files named on the command line are read
# whatever their name
MANIFEST_EXTENSIONS = (".json", ".yaml", ".yml")
Output = Literal["text", "json", "yaml"]


class InputError(ValueError):
    """The input cannot be reviewed; the message names the file and the document."""


@dataclass(frozen=True, slots=True)
class Source:
    """One object read from the input, with where it came from (``doc`` counts from 1 within the file)."""

    file: str
    doc: int
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def namespace(self) -> str:
        meta = self.obj.get("metadata")
        ns = meta.get("namespace") if isinstance(meta, dict) else None
        return ns if isinstance(ns, str) else ""

    @property
    def name(self) -> str:
        meta = self.obj.get("metadata")
        if not isinstance(meta, dict):
            return ""
        name, generate = meta.get("name"), meta.get("generateName")
        if isinstance(name, str) and name:
            return name
        return f"{generate}*" if isinstance(generate, str) and generate else ""

    @property
    def title(self) -> str:
        """``Kind namespace/name`` as kubectl users read it."""
        name = self.name or "(no name)"
        return f"{self.kind} {self.namespace}/{name}" if self.namespace else f"{self.kind} {name}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The review of one object, merged from the mutating and the validating verdict."""

    source: Source
    reviewed: bool
    result: ChainResult

    @property
    def admitted(self) -> bool:
        return self.result.allowed

    @property
    def denial(self) -> tuple[int, str, list[Cause]]:
        """(code, message, causes) of the verdict that denied, or (200, "", []) when admitted."""
        for verdict in (self.result.mutation, self.result.validation):
            if not verdict.allowed:
                return verdict.code, verdict.message, verdict.causes
        return 200, "", []

    @property
    def would_deny(self) -> list[Cause]:
        """With ``enforcement: warn``: the causes that would have denied (admitted, with warnings)."""
        return [*self.result.mutation.would_deny, *self.result.validation.would_deny]

    @property
    def warnings(self) -> list[str]:
        seen: dict[str, None] = {}
        for w in [*self.result.mutation.warnings, *self.result.validation.warnings]:
            seen.setdefault(w, None)
        return list(seen)

    @property
    def patch(self) -> list[dict[str, Any]]:
        return self.result.mutation.patch

    def as_json(self) -> dict[str, Any]:
        code, message, causes = self.denial
        out: dict[str, Any] = {
            "file": self.source.file,
            "document": self.source.doc,
            "apiVersion": self.source.obj.get("apiVersion"),
            "kind": self.source.kind,
            "namespace": self.source.namespace,
            "name": self.source.name,
            "verdict": "admitted" if self.admitted else "denied",
            "reviewed": self.reviewed,
            "code": code,
            "message": message if not self.admitted else ("" if self.reviewed else NOT_REVIEWED),
            "causes": [cause_json(c) for c in causes],
            "wouldDeny": [cause_json(c) for c in self.would_deny],
            "warnings": self.warnings,
            "patch": self.patch,
        }
        return out


def cause_json(c: Cause) -> dict[str, str]:
    """A cause as ``review -o json`` prints it: the wire's {type, field, message} plus its rule id."""
    return {"type": c.type, "field": c.field, "message": c.message, "rule": c.rule}


# --- reading -------------------------------------------------------------------------------------------


def _read(path: str, stdin: TextIO) -> str:
    if path == "-":
        return stdin.read()
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None


def _documents(text: str, label: str) -> list[Any]:
    """The documents in ``text``: one JSON value, or a YAML stream (which also covers most JSON)."""
    if text.lstrip().startswith(("{", "[")):
        try:
            return [orjson.loads(text)]
        except orjson.JSONDecodeError:
            pass  # YAML flow style also starts with { or [: let the YAML parser say what is wrong
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise InputError(f"{label}: not valid YAML or JSON: {exc}") from None


def is_kubernetes_object(doc: Any) -> bool:
    """Whether a document is meant as a Kubernetes object: a mapping with ``apiVersion`` or ``kind``.

    Anything else (a list, a scalar, a mapping with neither key: a values file, a CI workflow) is not ours to
    review; a mapping with only one of the two is a broken manifest, which :func:`_objects` reports."""
    return isinstance(doc, dict) and ("apiVersion" in doc or "kind" in doc)


def _objects(doc: Any, label: str) -> Iterator[dict[str, Any]]:
    """The objects in one document: the document itself, or the items of a ``List`` / ``<Kind>List``."""
    if not isinstance(doc, dict):
        raise InputError(f"{label}: expected an object (a mapping with apiVersion and kind), got {type(doc).__name__}")
    kind = doc.get("kind")
    if not isinstance(kind, str) or not kind:
        raise InputError(f"{label}: the object has no kind")
    api_version = doc.get("apiVersion")
    if not isinstance(api_version, str) or not api_version:
        raise InputError(f"{label}: the {kind} has no apiVersion")
    if kind.endswith("List") and "items" in doc:
        items = doc["items"]
        if items is None:
            return
        if not isinstance(items, list):
            raise InputError(f"{label}: {kind}.items must be a list")
        # typed lists (PodList) may omit kind/apiVersion on their items: take them from the list
        item_kind = kind[: -len("List")] if kind != "List" else None
        for i, item in enumerate(items):
            if isinstance(item, dict) and item_kind:
                item = {"apiVersion": api_version, "kind": item_kind, **item}
            yield from _objects(item, f"{label}, items[{i}]")
        return
    yield doc


def _walk(root: str, recursive: bool) -> Iterator[str]:
    """The manifest files under directory ``root`` in kubectl's order: ``filepath.Walk`` visits the entries of
    a directory in lexical order of their names, descending into a subdirectory where its name sorts (only
    with ``recursive``); files without a manifest extension are passed over."""
    try:
        with os.scandir(root) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise InputError(f"{root}: cannot read: {exc.strerror or exc}") from None
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):  # Walk does not follow symlinked directories either
            if recursive:
                yield from _walk(entry.path, recursive)
        elif os.path.splitext(entry.name)[1] in MANIFEST_EXTENSIONS:
            yield entry.path


def expand_paths(paths: Sequence[str], recursive: bool = False) -> list[str]:
    """The files to read, in order: each path as given (``-`` is stdin), a directory replaced by its files."""
    files: list[str] = []
    for path in paths:
        if path != "-" and os.path.isdir(path):
            files.extend(_walk(path, recursive))
        else:
            files.append(path)
    return files


def read_sources(
    paths: Sequence[str], stdin: TextIO, recursive: bool = False, notes: list[str] | None = None
) -> list[Source]:
    """Every object in ``paths`` (``-`` = ``stdin``; directories as kubectl reads them), in order; raise
    :class:`InputError` on bad input. Documents that are not Kubernetes objects are skipped, and a line saying
    so is appended to ``notes``."""
    sources: list[Source] = []
    for path in expand_paths(paths, recursive):
        file = "<stdin>" if path == "-" else path
        for n, doc in enumerate(_documents(_read(path, stdin), file), start=1):
            if not is_kubernetes_object(doc):
                if notes is not None:
                    notes.append(f"{file}: document {n} is not a Kubernetes object (no apiVersion or kind): skipped")
                continue
            sources.extend(Source(file, n, obj) for obj in _objects(doc, f"{file}: document {n}"))
    return sources


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


def review_sources(
    sources: Sequence[Source],
    config_path: str | None,
    operation: Operation = "CREATE",
    olds: Sequence[Source] = (),
    cluster: ClusterSnapshot | None = None,
) -> list[Outcome]:
    """Run the engine chain on every source (raises :class:`ConfigError` for a bad config file)."""
    config = load_config(config_path)
    outcomes = []
    for src in sources:
        reviewed = bool(object_kind({"kind": {"group": _group(src.obj), "kind": src.kind}}))
        old = find_old(src, olds) if operation == "UPDATE" else None
        result = chain(src.obj, config, operation, old, src.namespace, cluster)
        outcomes.append(Outcome(src, reviewed, result))
    return outcomes


# --- printing ------------------------------------------------------------------------------------------


def _compact(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


def render_text(outcomes: Sequence[Outcome]) -> str:
    """One block per object: the verdict line, then causes (✗), warnings (!) and patch ops (+)."""
    lines: list[str] = []
    many_files = len({o.source.file for o in outcomes}) > 1
    current_file = None
    for o in outcomes:
        if many_files and o.source.file != current_file:
            current_file = o.source.file
            lines.append(f"# {current_file}")
        verdict = "ADMITTED" if o.admitted else "DENIED"
        suffix = "" if o.reviewed else f" ({NOT_REVIEWED})"
        lines.append(f"{o.source.title}: {verdict}{suffix}")
        code, message, causes = o.denial
        if not o.admitted and not causes:
            lines.append(f"  ✗ {message} (code {code})")
        lines.extend(
            f"  ✗ {c.field}: {c.message} [{c.rule}]" if c.field else f"  ✗ {c.message} [{c.rule}]" for c in causes
        )
        lines.extend(f"  ! {w}" for w in o.warnings)
        for op in o.patch:
            value = f" = {_compact(op['value'])}" if "value" in op else ""
            lines.append(f"  + {op['op']} {op['path']}{value}")
    denied = sum(not o.admitted for o in outcomes)
    noun = "object" if len(outcomes) == 1 else "objects"
    lines.append(f"{len(outcomes)} {noun}: {len(outcomes) - denied} admitted, {denied} denied")
    return "\n".join(lines) + "\n"


def render_json(outcomes: Sequence[Outcome]) -> str:
    return orjson.dumps([o.as_json() for o in outcomes], option=orjson.OPT_INDENT_2).decode("utf-8") + "\n"


def render_yaml(outcomes: Sequence[Outcome]) -> str:
    """The admitted objects as the API server would store them (after our patch and defaulting)."""
    admitted = [o.result.admitted for o in outcomes if o.admitted]
    if not admitted:
        return ""
    return yaml.safe_dump_all(admitted, sort_keys=False, allow_unicode=True, default_flow_style=False)


def _denials_summary(outcomes: Sequence[Outcome]) -> str:
    """For ``-o yaml``: what was left out and why, on stderr (stdout stays applicable YAML)."""
    lines = []
    for o in outcomes:
        if o.admitted:
            continue
        _, message, _ = o.denial
        lines.append(f"{o.source.title}: DENIED: {message}")
    return "".join(line + "\n" for line in lines)


# --- command -------------------------------------------------------------------------------------------


def cluster_snapshot(args: argparse.Namespace) -> ClusterSnapshot:
    """``--cluster``: list the cluster's nodes and KubeVirt CRs once (raises InputError saying why not)."""
    from webhook.cluster.view import ClusterView, api_client

    try:
        kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        annotation = load_config(args.config).networks.resourceNameAnnotation
        return ClusterView(api_client(kubeconfig, args.context), resource_annotation=annotation).list_once()
    except ConfigError:
        raise
    except Exception as exc:
        reason = getattr(exc, "reason", None) or exc
        raise InputError(f"--cluster: cannot read the cluster's nodes, KubeVirt CR and NADs: {reason}") from None


def review_command(
    args: argparse.Namespace,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """``vm-admission review``; returns the exit code (0 all admitted, 1 some denied, 2 bad input)."""
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    output: Output = args.output
    operation: Operation = args.operation
    try:
        if args.old is not None and operation != "UPDATE":
            raise InputError("--old is only meaningful with --operation UPDATE")
        if list(args.files).count("-") + (args.old == "-") > 1:
            raise InputError("standard input (-) can be read only once")
        notes: list[str] = []
        sources = read_sources(args.files, stdin, getattr(args, "recursive", False), notes)
        olds = read_sources([args.old], stdin) if args.old is not None else []
        if not sources and not notes:
            raise InputError("no objects found in the input")
        cluster = cluster_snapshot(args) if getattr(args, "cluster", False) else None
        outcomes = review_sources(sources, args.config, operation, olds, cluster)
    except (InputError, ConfigError) as exc:
        print(f"vm-admission review: {exc}", file=stderr)
        return EXIT_BAD_INPUT
    for note in notes:
        print(f"vm-admission review: note: {note}", file=stderr)
    if output == "json":
        stdout.write(render_json(outcomes))
    elif output == "yaml":
        stdout.write(render_yaml(outcomes))
        stderr.write(_denials_summary(outcomes))
    else:
        stdout.write(render_text(outcomes))
    return EXIT_ADMITTED if all(o.admitted for o in outcomes) else EXIT_DENIED
