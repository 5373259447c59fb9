"""Multus network selection, parsed the way Multus parses it (docs/networks.md). No policy here.

A pod selects secondary networks with the annotation ``k8s.v1.cni.cncf.io/networks``, in one of two forms
(multus-cni ``pkg/k8sclient``, ``parsePodNetworkAnnotation``):

- **JSON** when the value contains ``[``, ``{`` or ``"``: a list of NetworkSelectionElements (``name``;
  optional ``namespace``, ``interface``, ``mac``, ``ips``, ...). Field names match as Go's ``encoding/json``
  matches them (exact, else case-insensitively); a field of the wrong type fails the whole value.
- **text** otherwise: comma-separated ``[namespace/]name[@interface]`` items, whitespace around each part
  trimmed; every non-empty part a DNS-1123 label.

The namespace defaults to the pod's. The same network may be selected several times (one attachment each).
Multus reports only the first problem and fails the pod at sandbox creation; :func:`parse_selection`
reports every problem it finds, each naming its item, so an admission check can say all of them at once.

:func:`parse_mac` is Go's ``net.ParseMAC`` (Go 1.26), which both Multus and KubeVirt use.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
DEFAULT_INTERFACE = "eth0"  # the pod's cluster-network interface; Multus names attachments net1, net2, ...
MAX_PROBLEMS = 10  # problems listed per value (a hostile value could have thousands)
_SHOWN = 40  # characters of a user's item quoted back in a message
_CACHED_LENGTH = 1024  # values up to this length are parsed once (lru cache); launcher pods repeat theirs
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_JSON_MARKERS = ("[", "{", '"')
_HEX = frozenset("0123456789abcdefABCDEF")
_MAC_LENGTHS = (6, 8, 20)  # bytes: EUI-48, EUI-64, 20-octet IP over InfiniBand
# NetworkSelectionElement fields whose type parsing checks (Go's json fails the whole value on a wrong type).
_STRING_FIELDS = ("name", "namespace", "interface", "interfaceRequest", "mac", "infiniband-guid")
_STRING_LIST_FIELDS = ("ips", "default-route")
_OBJECT_FIELDS = ("cni-args", "bandwidth")
_JSON_KINDS: dict[type, str] = {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "a list"}


@dataclass(frozen=True, slots=True)
class Attachment:
    """One selected network: the NAD ``namespace/name`` and the interface asked for ("" when none)."""

    index: int  # position in the annotation, from 0
    namespace: str
    name: str
    interface: str

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def describe(self) -> str:
        """``item 2 (default/sriov-a)``: how messages name it."""
        return f"item {self.index + 1} ({self.ref})"


@dataclass(frozen=True, slots=True)
class Selection:
    """A parsed annotation: its attachments, or the problems that make Multus fail it."""

    attachments: tuple[Attachment, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[: _SHOWN - 1] + "…")


def parse_mac(value: str) -> bytes | None:
    """Go's ``net.ParseMAC``: 6, 8 or 20 bytes as hex pairs split by ``:`` or ``-``, hex quads split by ``.``,
    or (Go 1.26) bare hex digits; None when Go would refuse it."""
    if not value.isascii() or len(value) < 12:
        return None
    if value[2] in ":-":
        sep, width, digits = value[2], 3, 2
    elif value[4] == ".":
        sep, width, digits = ".", 5, 4
    else:
        sep, width, digits = "", 2, 2
    if (len(value) + len(sep)) % width:
        return None
    groups = [value[i : i + digits] for i in range(0, len(value), width)]
    if sep and any(value[i + digits] != sep for i in range(0, len(value) - digits, width)):
        return None
    hexed = "".join(groups)
    if len(hexed) // 2 not in _MAC_LENGTHS or not _HEX.issuperset(hexed):
        return None
    return bytes.fromhex(hexed)


def _valid_ip(value: str, cidr: bool) -> bool:
    """Go's ``net.ParseIP`` (``net.ParseCIDR`` with a ``/``): no zones, no leading zeros in IPv4."""
    if "%" in value:
        return False
    try:
        if cidr:
            ipaddress.ip_network(value, strict=False)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _go_field(element: dict[str, Any], name: str) -> Any:
    """The value Go's ``encoding/json`` would decode into field ``name``: the exact key, else one that
    matches case-insensitively (the last such key in the object wins, as in Go)."""
    if name in element:
        return element[name]
    found = None
    lowered = name.lower()
    for key, value in element.items():
        if key.lower() == lowered:
            found = value
    return found


def _element(i: int, raw: Any, default_namespace: str, problems: list[str]) -> Attachment | None:
    where = f"item {i + 1}"
    if not isinstance(raw, dict):
        problems.append(f"{where} must be an object with a name, got {_JSON_KINDS.get(type(raw), 'null')}")
        return None
    fields: dict[str, Any] = {}
    bad = False
    for name in (*_STRING_FIELDS, *_STRING_LIST_FIELDS, *_OBJECT_FIELDS):
        value = _go_field(raw, name)
        if value is None:
            continue
        if name in _STRING_FIELDS:
            ok = isinstance(value, str)
            want = "a string"
        elif name in _STRING_LIST_FIELDS:
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            want = "a list of strings"
        else:
            ok = isinstance(value, dict)
            want = "an object"
        if not ok:
            problems.append(f"{where}: {name!r} must be {want}")
            bad = True
        fields[name] = value
    if bad:
        return None
    name = fields.get("name") or ""
    namespace = fields.get("namespace") or default_namespace
    interface = fields.get("interface") or fields.get("interfaceRequest") or ""
    if not name:
        problems.append(f"{where} names no network (its 'name' is missing or empty)")
    mac = fields.get("mac")
    if mac and parse_mac(mac) is None:
        problems.append(f"{where}: mac {_shown(mac)} is not a MAC address")
    for ip in fields.get("ips") or ():
        if not _valid_ip(ip, cidr="/" in ip):
            problems.append(f"{where}: ips entry {_shown(ip)} is not an IP address or CIDR")
    for ip in fields.get("default-route") or ():
        if not _valid_ip(ip, cidr=False):
            problems.append(f"{where}: default-route entry {_shown(ip)} is not an IP address")
    return Attachment(i, namespace, name, interface) if name else None


def _parse_json(value: str, default_namespace: str, problems: list[str]) -> list[Attachment]:
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        problems.append(f"not valid JSON ({exc}); write a JSON list of objects with a name, or name[@interface] items")
        return []
    if not isinstance(data, list):
        problems.append("must be a JSON list of objects with a name (the value is JSON, not a list)")
        return []
    out = []
    for i, raw in enumerate(data):
        a = _element(i, raw, default_namespace, problems)
        if a is not None:
            out.append(a)
    return out


def _label_problem(part: str) -> bool:
    return bool(part) and _DNS1123_LABEL.fullmatch(part) is None


def _parse_text(value: str, default_namespace: str, problems: list[str]) -> list[Attachment]:
    out = []
    for i, raw in enumerate(value.split(",")):
        item = raw.strip()
        where = f"item {i + 1} {_shown(item)}"
        slashes = item.split("/")
        if len(slashes) > 2:
            problems.append(f"{where} has more than one '/': write [namespace/]name[@interface]")
            continue
        namespace = slashes[0].strip() if len(slashes) == 2 else ""
        ats = slashes[-1].split("@")
        if len(ats) > 2:
            problems.append(f"{where} has more than one '@': write [namespace/]name[@interface]")
            continue
        name, interface = ats[0].strip(), ats[1].strip() if len(ats) == 2 else ""
        labels = [p for p in (namespace, name, interface) if _label_problem(p)]
        if labels:
            problems.append(
                f"{where}: {_shown(labels[0])} is not a DNS-1123 label (lower-case letters, digits and '-', "
                "starting and ending with a letter or digit)"
            )
            continue
        if not name:
            problems.append(f"item {i + 1} names no network: separate [namespace/]name[@interface] items by one comma")
            continue
        out.append(Attachment(i, namespace or default_namespace, name, interface))
    return out


def _collisions(attachments: list[Attachment]) -> list[str]:
    """Interface names used twice: explicit ones, the pod's eth0, and the ``net<N>`` Multus generates."""
    problems = []
    taken: dict[str, str] = {DEFAULT_INTERFACE: "the pod's own interface"}
    for a in attachments:
        name = a.interface or f"net{a.index + 1}"
        if name in taken:
            problems.append(f"{a.describe()}: interface {name!r} is already {taken[name]}")
        else:
            taken[name] = f"{a.describe()}'s" if a.interface else f"the name Multus gives {a.describe()}"
    return problems


def _parse_selection(value: str, default_namespace: str) -> Selection:
    problems: list[str] = []
    if any(m in value for m in _JSON_MARKERS):
        attachments = _parse_json(value, default_namespace, problems)
    elif not value:
        return Selection()  # an empty annotation selects nothing (Multus skips it; blanks are an empty item)
    else:
        attachments = _parse_text(value, default_namespace, problems)
    problems.extend(_collisions(attachments))
    if len(problems) > MAX_PROBLEMS:
        problems[MAX_PROBLEMS:] = [f"and {len(problems) - MAX_PROBLEMS} more"]
    return Selection(tuple(attachments), tuple(problems))


_parse_selection_cached = lru_cache(maxsize=1024)(_parse_selection)


def parse_selection(value: str, default_namespace: str) -> Selection:
    """Parse the networks annotation's ``value`` for a pod in ``default_namespace``."""
    if len(value) <= _CACHED_LENGTH:
        return _parse_selection_cached(value, default_namespace)
    return _parse_selection(value, default_namespace)


def network_ref(network_name: str, default_namespace: str) -> tuple[str, str]:
    """KubeVirt's reading of ``multus.networkName``: ``namespace/name`` split at the first ``/``, else the
    name in ``default_namespace``."""
    namespace, sep, name = network_name.partition("/")
    return (namespace, name) if sep else (default_namespace, network_name)
