"""Manifest files as ``vm-admission review`` reads them: documents, objects, and where each field is written.

Paths are read as ``kubectl apply -f`` reads them: a file (any name), ``-`` for stdin, or a directory, whose
``.json``, ``.yaml`` and ``.yml`` files are read in lexical order of their names (with ``-R``, its
subdirectories too, depth first, in the same order: kubectl's ``ExpandPathsToFileVisitors``, a
``filepath.Walk``). A YAML stream is split into documents at ``---`` lines, as kubectl's ``YAMLReader`` does,
and each document is parsed on its own: one broken document costs only itself, the others are still read.

Every object keeps a :class:`Locator`, the document's YAML node tree with its marks (PyYAML's composer, in C
with libyaml), so a finding on ``spec.domain.cpu.cores`` can say ``vm.yaml:14:9``, or the line of the nearest
parent that exists when the field itself is missing. Values are built from the same nodes by PyYAML's safe
constructor (timestamps stay strings, as ``sigs.k8s.io/yaml`` leaves them); JSON documents take their values
from orjson (exact JSON numbers) and their positions from the YAML composer, which reads JSON too.

The reader yields, in input order, :class:`Source` (an object), :class:`Unreadable` (a document that cannot
be read: bad YAML, not UTF-8, a ``kind`` without ``apiVersion``, a list item that is not an object) and
:class:`Skipped` (a document that is not meant as a Kubernetes object: a values file, a CI workflow).
"""

from __future__ import annotations

import io
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import orjson
import yaml

from webhook.rules.registry import define

# what kubectl reads from a directory (FilenameParam's FileExtensions); files named on the command line are read
# whatever their name
MANIFEST_EXTENSIONS = (".json", ".yaml", ".yml")
STDIN_LABEL = "<stdin>"
UNREADABLE_RULE = define(
    "input.unreadable",
    "a document that cannot be read: invalid YAML, not UTF-8, a `kind` without `apiVersion` (or the other way "
    "round), a `List` item that is not an object, a file that cannot be opened (exit 2)",
    field="—",
    page="review-and-deploy.md",
    kind="review",
)
_SEPARATOR = re.compile(r"^---(?:[ \t].*)?$")
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ManifestLoader(_Loader):  # type: ignore[misc]
    """The safe loader, with timestamps kept as the strings they are (``sigs.k8s.io/yaml`` does the same)."""


_ManifestLoader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


class InputError(ValueError):
    """The input cannot be reviewed at all; the message names the file (a bad ``--old``, stdin read twice)."""


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A place in a file: line and column, both counted from 1, as compilers print them."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


class Locator:
    """Where the fields of one object are written: its YAML node with the marks of every key and item.

    ``find`` walks a rendered field path (``spec.domain.devices.interfaces[0].name``) down the nodes as far as
    they go and answers the position of the last key or item found: the field itself, or its nearest parent
    that exists. Keys that contain dots (annotation names) are matched whole, the longest key first.
    """

    __slots__ = ("node", "offset", "start")

    def __init__(self, node: yaml.Node | None, offset: int, start: Position) -> None:
        self.node = node
        self.offset = offset  # the line (0-based) in the file where the node's document starts
        self.start = start

    def _at(self, node: yaml.Node) -> Position:
        mark = node.start_mark
        return Position(mark.line + self.offset + 1, mark.column + 1)

    def find(self, field: str) -> Position:
        node, pos, rest = self.node, self.start, field
        while rest and node is not None:
            if rest.startswith("["):
                close = rest.find("]")
                if close < 0:
                    break
                token = rest[1:close]
                if isinstance(node, yaml.SequenceNode) and token.isdigit() and int(token) < len(node.value):
                    node = node.value[int(token)]
                    pos = self._at(node)
                elif isinstance(node, yaml.MappingNode) and (pair := _pair(node, token.strip("'\""))) is not None:
                    pos, node = self._at(pair[0]), pair[1]
                else:
                    break
                rest = rest[close + 1 :]
            elif isinstance(node, yaml.MappingNode):
                best: tuple[yaml.Node, yaml.Node] | None = None
                for key, value in _pairs(node):
                    name = key.value if isinstance(key, yaml.ScalarNode) else None
                    if (
                        isinstance(name, str)
                        and rest.startswith(name)
                        and (len(rest) == len(name) or rest[len(name)] in ".[")
                        and (best is None or len(name) > len(best[0].value))
                    ):
                        best = (key, value)
                if best is None:
                    break
                pos, node = self._at(best[0]), best[1]
                rest = rest[len(best[0].value) :]
            else:
                break
            rest = rest[1:] if rest.startswith(".") else rest
        return pos


def _pairs(node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
    """The key/value nodes of a mapping, then those a ``<<`` merge key brings in (the mapping's own win)."""
    merged: list[yaml.Node] = []
    for key, value in node.value:
        if key.tag == "tag:yaml.org,2002:merge":
            merged.extend(value.value if isinstance(value, yaml.SequenceNode) else [value])
        else:
            yield key, value
    for m in merged:
        if isinstance(m, yaml.MappingNode):
            yield from _pairs(m)


def _pair(node: yaml.MappingNode, name: str) -> tuple[yaml.Node, yaml.Node] | None:
    return next(((k, v) for k, v in _pairs(node) if isinstance(k, yaml.ScalarNode) and k.value == name), None)


def item_locator(parent: Locator, index: int) -> Locator:
    """The locator of ``items[index]`` of a ``List`` document."""
    node = parent.node
    items = _pair(node, "items") if isinstance(node, yaml.MappingNode) else None
    seq = items[1] if items is not None else None
    if isinstance(seq, yaml.SequenceNode) and index < len(seq.value):
        item = seq.value[index]
        return Locator(item, parent.offset, parent._at(item))
    return Locator(None, parent.offset, parent.find("items"))


@dataclass(frozen=True, slots=True)
class Source:
    """One object read from the input, with where it came from (``doc`` counts from 1 within the file)."""

    file: str
    doc: int
    obj: dict[str, Any]
    locator: Locator | None = None

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

    @property
    def position(self) -> Position:
        """Where the object starts."""
        return self.locator.start if self.locator is not None else Position(1, 1)

    def find(self, field: str) -> Position:
        """Where ``field`` (or its nearest existing parent) is written; the object's start without a locator."""
        return self.locator.find(field) if self.locator is not None else self.position

    def where(self, field: str = "") -> str:
        """``file:line:col`` of ``field``, as compilers and linters print it."""
        return f"{self.file}:{self.find(field)}"


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A document (or a part of one) that cannot be read; it gets an error instead of a verdict."""

    file: str
    doc: int
    position: Position
    message: str
    rule: str = UNREADABLE_RULE

    @property
    def where(self) -> str:
        return f"{self.file}:{self.position}"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A document that is not meant as a Kubernetes object (neither ``apiVersion`` nor ``kind``)."""

    file: str
    doc: int
    position: Position

    @property
    def note(self) -> str:
        return (
            f"{self.file}:{self.position}: document {self.doc} is not a Kubernetes object (no apiVersion or kind): "
            "skipped"
        )


Item = Source | Unreadable | Skipped


# --- files -----------------------------------------------------------------------------------------------


def open_lines(path: str, stdin: TextIO) -> TextIO:
    """The file (``-``: stdin) to read line by line; raises :class:`InputError` when it cannot be opened."""
    if path == "-":
        return stdin
    try:
        return open(path, encoding="utf-8-sig")  # universal newlines: CRLF reads as LF; the BOM is dropped
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def read_text(path: str, stdin: TextIO) -> str:
    """The whole text of ``path`` (``-``: stdin) without a byte-order mark; raises :class:`InputError`."""
    fh = open_lines(path, stdin)
    try:
        return fh.read().removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    finally:
        if fh is not stdin:
            fh.close()


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


# --- documents -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Document:
    """One document of a file: its value, the node tree its positions come from, or why it cannot be read."""

    index: int  # from 1, counting the documents that hold something
    value: Any
    locator: Locator
    error: str | None = None


def split_documents(text: str | Iterable[str]) -> Iterator[tuple[int, str]]:
    """``(first line, text)`` of each document of a YAML stream (a text, or its lines as a file gives them),
    split at ``---`` lines (kubectl's reader); the separator stays at the head of its document so line
    numbers stay those of the file. Lines are read as they come: one document is in memory at a time."""
    lines = io.StringIO(text, newline=None) if isinstance(text, str) else text
    start, buf = 0, list[str]()
    for i, line in enumerate(lines):
        if buf and line.startswith("---") and _SEPARATOR.match(line.rstrip("\r\n")):
            yield start, "".join(buf)
            start, buf = i, []
        buf.append(line)
    if buf:
        yield start, "".join(buf)


def _problem(exc: yaml.YAMLError, offset: int) -> tuple[Position, str]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    pos = Position(mark.line + offset + 1, mark.column + 1) if mark is not None else Position(offset + 1, 1)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    return pos, f"not valid YAML: {problem}" + (f" ({context})" if context else "")


def _json_document(text: str) -> Document | None:
    """A JSON document: orjson's values, the YAML composer's positions; None if it is not JSON."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None  # YAML flow style also starts with { or [: let the YAML parser read it (and say what is wrong)
    try:
        node = yaml.compose(text, Loader=_ManifestLoader)  # positions only: the values are orjson's
    except yaml.YAMLError:
        node = None
    stripped = text.lstrip()
    first = text[: len(text) - len(stripped)].count("\n")
    start = Position(node.start_mark.line + 1, node.start_mark.column + 1) if node else Position(first + 1, 1)
    return Document(1, value, Locator(node, 0, start))


def documents(text: str | Iterable[str]) -> Iterator[Document]:
    """The documents of a file (its text, or its lines): one JSON value, or a YAML stream whose documents
    are parsed one at a time."""
    lines: Iterator[str] = iter(io.StringIO(text, newline=None) if isinstance(text, str) else text)
    head: list[str] = []
    for line in lines:  # the first line with something on it says JSON or YAML
        head.append(line.removeprefix("\ufeff") if not head else line)
        if head[-1].strip():
            break
    if head and head[-1].lstrip().startswith(("{", "[")):
        whole = "".join(head) + "".join(lines)
        doc = _json_document(whole)
        if doc is not None:
            yield doc
            return
        lines = iter(io.StringIO(whole, newline=None))
    else:
        lines = itertools.chain(head, lines)
    n = 0
    for offset, chunk in split_documents(lines):
        loader = _ManifestLoader(chunk)
        try:
            while loader.check_node():
                node = loader.get_node()
                if node is None:
                    continue
                value = loader.construct_document(node)
                if value is None:
                    continue
                n += 1
                start = Position(node.start_mark.line + offset + 1, node.start_mark.column + 1)
                yield Document(n, value, Locator(node, offset, start))
        except yaml.YAMLError as exc:
            n += 1
            pos, message = _problem(exc, offset)
            yield Document(n, None, Locator(None, offset, pos), message)
        finally:
            loader.dispose()


def is_kubernetes_object(doc: Any) -> bool:
    """Whether a document is meant as a Kubernetes object: a mapping with ``apiVersion`` or ``kind``.

    Anything else (a list, a scalar, a mapping with neither key: a values file, a CI workflow) is not ours to
    review; a mapping with only one of the two is a broken manifest, which :func:`objects` reports."""
    return isinstance(doc, dict) and ("apiVersion" in doc or "kind" in doc)


def objects(file: str, doc: int, value: Any, locator: Locator, label: str = "") -> Iterator[Source | Unreadable]:
    """The objects in one document: the document itself, or the items of a ``List`` / ``<Kind>List``; what
    cannot be read becomes an :class:`Unreadable` at its position and the other items are still read."""
    where = f"{label}: " if label else ""
    if not isinstance(value, dict):
        got = "a list" if isinstance(value, list) else type(value).__name__
        yield Unreadable(
            file, doc, locator.start, f"{where}expected an object (a mapping with apiVersion and kind), got {got}"
        )
        return
    kind = value.get("kind")
    if not isinstance(kind, str) or not kind:
        yield Unreadable(
            file, doc, locator.start, f"{where}the object has no kind: add one (e.g. kind: VirtualMachine)"
        )
        return
    api_version = value.get("apiVersion")
    if not isinstance(api_version, str) or not api_version:
        yield Unreadable(
            file, doc, locator.start, f"{where}the {kind} has no apiVersion: add one (e.g. apiVersion: kubevirt.io/v1)"
        )
        return
    if kind.endswith("List") and "items" in value:
        items = value["items"]
        if items is None:
            return
        if not isinstance(items, list):
            yield Unreadable(file, doc, locator.find("items"), f"{where}{kind}.items must be a list")
            return
        # typed lists (PodList) may omit kind/apiVersion on their items: take them from the list
        item_kind = kind[: -len("List")] if kind != "List" else None
        for i, item in enumerate(items):
            if isinstance(item, dict) and item_kind:
                item = {"apiVersion": api_version, "kind": item_kind, **item}
            yield from objects(file, doc, item, item_locator(locator, i), f"{where}items[{i}]")
        return
    yield Source(file, doc, value, locator)


def read_items(paths: Sequence[str], stdin: TextIO, recursive: bool = False) -> Iterator[Item]:
    """Every object, unreadable document and skipped document in ``paths``, in input order (``-`` = stdin;
    directories as kubectl reads them), read as they come. A file that cannot be opened or decoded is an
    :class:`Unreadable` (at the point where decoding failed: what came before it was read)."""
    for path in expand_paths(paths, recursive):
        file = STDIN_LABEL if path == "-" else path
        try:
            fh = open_lines(path, stdin)
        except InputError as exc:
            yield Unreadable(file, 0, Position(1, 1), str(exc).removeprefix(f"{path}: "))
            continue
        try:
            yield from file_items(file, fh)
        except UnicodeDecodeError as exc:
            yield Unreadable(file, 0, Position(1, 1), f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        finally:
            if fh is not stdin:
                fh.close()


def file_items(file: str, text: str | Iterable[str]) -> Iterator[Item]:
    """The items of one file (its text, or its lines)."""
    for d in documents(text):
        if d.error is not None:
            yield Unreadable(file, d.index, d.locator.start, d.error)
        elif not is_kubernetes_object(d.value):
            yield Skipped(file, d.index, d.locator.start)
        else:
            yield from objects(file, d.index, d.value, d.locator)
