"""Host devices and GPUs: deviceName or a DRA claim request (docs/passthrough.md).

KubeVirt's DRA admitter, on VMI CREATE and VM CREATE/UPDATE (paths under ``spec.template.spec``):

- every ``hostDevices[i]`` / ``gpus[i]`` names exactly one of ``deviceName`` (a device-plugin resource) and a
  claim request (``claimName`` + ``requestName``, inlined in the entry): neither is FieldValueRequired, both
  FieldValueInvalid. We put the cause on the entry (``gpus[1]``); KubeVirt puts it on the list.
- GPUs may not mix DRA and non-DRA entries (one cause on ``gpus``, and the other GPU checks are skipped);
  host devices may.
- a DRA entry needs a non-empty ``claimName`` and ``requestName``, and no claim/request pair twice;
- every claimName must be listed in ``spec.resourceClaims``, whose entries each need a unique name and
  exactly one of ``resourceClaimName`` / ``resourceClaimTemplateName``.

An entry is DRA when its ``deviceName`` is empty and it carries a claim request; an empty entry is non-DRA
(so ``[{}, {claimName...}]`` on GPUs is the mixing error, as in KubeVirt). DRA entries become pod
``resources.claims``, never extended resources (the preflight counts only deviceNames, preflight.not-enough-devices).

Messages are ours; the DRA feature gates (GPUsWithDRA, HostDevicesWithDRA; Beta, on by default) are left to
KubeVirt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from webhook.k8s.paths import Path
from webhook.k8s.paths import field as field_path
from webhook.rules.base import Cause, Context, Findings, json_type
from webhook.rules.fields import VM_ROOT, VMI_ROOT, Reader, map_at, wrong_type
from webhook.rules.registry import define

NAME_OR_CLAIM_REQUIRED = define(
    "devices.name-or-claim-required",
    "neither deviceName nor a DRA claim request (Required), or both (Invalid)",
    field="`spec.domain.devices.hostDevices[i]` / `gpus[i]`",
    page="passthrough.md#host-devices-and-gpus-devicename-or-a-dra-claim",
    replaces="devices.deviceNameOrClaim",
)
DRA_MIXED_WITH_DEVICE_PLUGIN = define(
    "devices.dra-mixed-with-device-plugin",
    "GPUs mixing DRA and device-plugin entries",
    field="`spec.domain.devices.gpus`",
    page="passthrough.md#host-devices-and-gpus-devicename-or-a-dra-claim",
    replaces="devices.draMixed",
)
BAD_CLAIM_REQUEST = define(
    "devices.bad-claim-request",
    "a DRA entry without claimName/requestName, or a claim/request pair used twice",
    field="`...gpus[i].claimName` / `.requestName`, `...gpus[i]`",
    page="passthrough.md#host-devices-and-gpus-devicename-or-a-dra-claim",
    replaces="devices.claimRequest",
)
CLAIM_NOT_LISTED = define(
    "devices.claim-not-listed",
    "a claimName not listed in `spec.resourceClaims`",
    field="`spec.resourceClaims`",
    page="passthrough.md#host-devices-and-gpus-devicename-or-a-dra-claim",
    replaces="devices.claimNotListed",
)
BAD_RESOURCE_CLAIM = define(
    "devices.bad-resource-claim",
    "a resource claim without a unique DNS-label name, or without exactly one of "
    "`resourceClaimName`/`resourceClaimTemplateName`",
    field="`spec.resourceClaims[i]` (`.name`)",
    page="passthrough.md#host-devices-and-gpus-devicename-or-a-dra-claim",
    replaces="devices.resourceClaim",
)

LISTS = (("gpus", "GPU"), ("hostDevices", "host device"))
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``gpus[i]`` / ``hostDevices[i]`` entry, read."""

    index: int
    name: str
    device_name: str
    claim: bool  # a claim request is present (claimName or requestName set)
    claim_name: str
    request_name: str

    @property
    def dra(self) -> bool:
        return not self.device_name and self.claim


def read_entries(spec: dict[str, Any], root: Path, problems: list[str]) -> dict[str, list[Entry]]:
    """The gpus and hostDevices entries of the VMI spec at ``root``; type errors go to ``problems``."""
    out: dict[str, list[Entry]] = {"gpus": [], "hostDevices": []}
    domain = spec.get("domain")
    devices = domain.get("devices") if isinstance(domain, dict) else None
    if not isinstance(devices, dict):
        return out  # absent, or a type problem the other rules report
    r = Reader(problems)
    for key, _ in LISTS:
        at: Path = (*root, "domain", "devices", key)
        for i, raw in enumerate(r.items(devices, key, at) or []):
            where = (*at, i)
            if not isinstance(raw, dict):
                problems.append(wrong_type(where, "an object", raw))
                continue
            claim = raw.get("claimName") is not None or raw.get("requestName") is not None
            name, device_name, claim_name, request_name = (
                r.string(raw, part, (*where, part)) or "" for part in ("name", "deviceName", "claimName", "requestName")
            )
            out[key].append(Entry(i, name, device_name, claim, claim_name, request_name))
    return out


def _entry_label(what: str, e: Entry) -> str:
    return f'{what} "{e.name}"' if e.name else f"{what} #{e.index}"


def check(spec: dict[str, Any], root: Path) -> Findings:
    """Every deviceName/claim problem of the VMI spec at ``root``."""
    problems: list[str] = []
    lists = read_entries(spec, root, problems)
    claims_raw = Reader(problems).items(spec, "resourceClaims", (*root, "resourceClaims"))
    if problems:
        return Findings(bad_request="; ".join(problems))
    causes: list[Cause] = []
    pairs: dict[tuple[str, str], str] = {}
    used: dict[str, str] = {}  # claimName -> the first entry using it, for messages
    for key, what in LISTS:
        entries = lists[key]
        at: Path = (*root, "domain", "devices", key)
        dra = [e for e in entries if e.dra]
        if key == "gpus" and dra and len(dra) < len(entries):
            causes.append(
                Cause.at(
                    at,
                    f"GPUs mix DRA entries (claimName/requestName) and device-plugin entries (deviceName): "
                    f"KubeVirt takes one kind or the other; make all {len(entries)} GPUs the same kind",
                    rule=DRA_MIXED_WITH_DEVICE_PLUGIN,
                )
            )
            continue
        for e in entries:
            where = (*at, e.index)
            label = _entry_label(what, e)
            if e.dra:
                continue
            if not e.device_name:
                causes.append(
                    Cause.at(
                        where,
                        f"{label} names no device: set deviceName (a device-plugin resource such as "
                        "nvidia.com/TU104GL_Tesla_T4) or claimName and requestName (a DRA claim)",
                        "FieldValueRequired",
                        rule=NAME_OR_CLAIM_REQUIRED,
                    )
                )
            elif e.claim:
                causes.append(
                    Cause.at(
                        where,
                        f"{label} sets both deviceName {e.device_name!r} and a DRA claim request: keep deviceName "
                        "for a device plugin, or claimName/requestName for DRA, not both",
                        rule=NAME_OR_CLAIM_REQUIRED,
                    )
                )
        for e in dra:
            where = (*at, e.index)
            label = _entry_label(what, e)
            valid = True
            for part, value in (("claimName", e.claim_name), ("requestName", e.request_name)):
                if not value:
                    causes.append(
                        Cause.at(
                            (*where, part),
                            f"{label} is a DRA device and needs {part}",
                            "FieldValueRequired",
                            rule=BAD_CLAIM_REQUEST,
                        )
                    )
                    valid = False
            if not valid:
                continue
            pair = (e.claim_name, e.request_name)
            if pair in pairs:
                causes.append(
                    Cause.at(
                        where,
                        f"{label} asks for claim {e.claim_name!r} request {e.request_name!r}, which "
                        f"{pairs[pair]} already uses: each claim request attaches one device once",
                        "FieldValueDuplicate",
                        rule=BAD_CLAIM_REQUEST,
                    )
                )
            pairs.setdefault(pair, field_path(where))
            used.setdefault(e.claim_name, field_path(where))
    causes += _check_resource_claims(claims_raw or [], root, used)
    return Findings(causes=causes)


def _check_resource_claims(claims: list[Any], root: Path, used: dict[str, str]) -> list[Cause]:
    causes: list[Cause] = []
    at: Path = (*root, "resourceClaims")
    names: set[str] = set()
    for i, rc in enumerate(claims):
        where = (*at, i)
        if not isinstance(rc, dict):
            causes.append(Cause.at(where, f"must be an object, got {json_type(rc)}", rule=BAD_RESOURCE_CLAIM))
            continue
        name = rc.get("name")
        if not isinstance(name, str) or not name:
            causes.append(
                Cause.at(
                    (*where, "name"),
                    "a resource claim needs a name",
                    "FieldValueRequired",
                    rule=BAD_RESOURCE_CLAIM,
                )
            )
        elif name in names:
            causes.append(
                Cause.at(
                    (*where, "name"),
                    f"resource claim name {name!r} is used more than once",
                    "FieldValueDuplicate",
                    rule=BAD_RESOURCE_CLAIM,
                )
            )
        elif len(name) > 63 or not DNS_LABEL.fullmatch(name):
            causes.append(
                Cause.at(
                    (*where, "name"),
                    f"resource claim name {name!r} must be a DNS label (lower-case letters, digits and '-', "
                    "at most 63 characters)",
                    rule=BAD_RESOURCE_CLAIM,
                )
            )
        if isinstance(name, str):
            names.add(name)
        sources = [k for k in ("resourceClaimName", "resourceClaimTemplateName") if rc.get(k)]
        if len(sources) != 1:
            label = f"resource claim {name!r}" if isinstance(name, str) and name else f"resource claim #{i}"
            said = "sets neither" if not sources else "sets both"
            causes.append(
                Cause.at(
                    where,
                    f"{label} {said} of resourceClaimName and resourceClaimTemplateName: set exactly one",
                    "FieldValueRequired" if not sources else "FieldValueInvalid",
                    rule=BAD_RESOURCE_CLAIM,
                )
            )
    missing = [claim for claim in used if claim not in names]
    if missing:
        listed = ", ".join(f"{claim!r} ({used[claim]})" for claim in missing)
        causes.append(
            Cause.at(
                at,
                f"claims used by gpus/hostDevices are not listed in {field_path(at)}: {listed}; add an entry "
                "{name, resourceClaimName or resourceClaimTemplateName} for each",
                rule=CLAIM_NOT_LISTED,
            )
        )
    return causes


def _validate(obj: dict[str, Any], root: Path) -> Findings:
    spec, problem = map_at(obj, root)
    if problem is not None:
        return Findings(bad_request=problem)
    return check(spec, root) if spec is not None else Findings()


def validate_vmi(obj: dict[str, Any], ctx: Context) -> Findings:
    """VMI CREATE (VMI updates are KubeVirt's own; the engine never sends them here)."""
    return _validate(obj, VMI_ROOT)


def validate_vm(obj: dict[str, Any], ctx: Context) -> Findings:
    """VM CREATE and UPDATE, on ``spec.template.spec``."""
    return _validate(obj, VM_ROOT)
