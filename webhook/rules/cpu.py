"""Dedicated-CPU validation of VMIs and VM templates (docs/dedicated-cpu.md; the rules: docs/rules.md).

VMIs (CREATE) and VM templates (CREATE/UPDATE, paths under ``spec.template.spec``) are judged the way
KubeVirt's own admitter judges them on real API traffic: KubeVirt's mutating webhook defaults the spec first,
so the rules here run on a defaulted **copy** (:func:`apply_kubevirt_defaults`), never on what the user wrote.
Every problem becomes one :class:`~webhook.rules.base.Cause`, all of them at once, with KubeVirt's field path
and cause type; the messages are ours and say what to change.

Dedicated-CPU pods (``validate_pod``) must be ``Guaranteed`` by kubelet's algorithm
(:func:`webhook.k8s.qos.gaps`) after our mutator has filled in sidecar limits. One cause per offending value:
on ``...resources.requests.<cpu|memory>``, except when the request is set and the limit is missing, where the
cause is on ``...resources.limits.<cpu|memory>`` (the value to add).

Values of the wrong JSON type (``resources: "x"``, ``cores: "2"``) make the object unreadable: the rule returns
``Findings(bad_request=...)`` naming every such field. An unparsable quantity or a negative count is a 422
cause on its field; rules that would read it are skipped rather than guessed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from webhook.k8s import quantity
from webhook.k8s.paths import Path
from webhook.k8s.paths import field as field_path
from webhook.rules.base import Cause, Context, Findings, default_architecture, json_type, quoted
from webhook.rules.fields import VM_ROOT, VMI_ROOT, Reader, vm_template_spec
from webhook.rules.registry import define

ONE_MEGABYTE = Decimal(1_000_000)  # KubeVirt's minimum memory request ("1M")

REQ_CPU, LIM_CPU, REQ_MEM, LIM_MEM = (
    ("requests", "cpu"),
    ("limits", "cpu"),
    ("requests", "memory"),
    ("limits", "memory"),
)
Resource = tuple[str, str]

ENABLE_CPU_MANAGER = (
    "to use dedicated CPUs enable KubeVirt's CPUManager feature gate, run the kubelet with the static CPU "
    "manager policy (cpuManagerPolicy: static) on the nodes, then set cpuManager.enabled: true in the "
    "vm-admission config"
)
DEDICATED_WITHOUT_MEMORY = define(
    "cpu.dedicated-without-memory",
    "dedicated CPUs without any memory (requests, limits, guest or hugepages)",
    field="`spec.domain.resources.limits.memory`",
    page="dedicated-cpu.md",
    replaces="cpu.R1",
)
FRACTIONAL_CPU_REQUEST = define(
    "cpu.fractional-cpu-request",
    "dedicated CPUs with a fractional CPU request",
    field="`spec.domain.resources.requests.cpu`",
    page="dedicated-cpu.md",
    replaces="cpu.R2",
)
FRACTIONAL_CPU_LIMIT = define(
    "cpu.fractional-cpu-limit",
    "dedicated CPUs with a fractional CPU limit",
    field="`spec.domain.resources.limits.cpu`",
    page="dedicated-cpu.md",
    replaces="cpu.R3",
)
MEMORY_REQUEST_NOT_LIMIT = define(
    "cpu.memory-request-not-limit",
    "dedicated CPUs with memory request ≠ limit",
    field="`spec.domain.resources.requests.memory`",
    page="dedicated-cpu.md",
    replaces="cpu.R4",
)
DEDICATED_WITHOUT_CPU_COUNT = define(
    "cpu.dedicated-without-cpu-count",
    "dedicated CPUs with no CPU count at all (only on an undefaulted spec)",
    field="`spec.domain.cpu.dedicatedCpuPlacement`",
    page="dedicated-cpu.md",
    replaces="cpu.R5",
)
CPU_REQUEST_NOT_LIMIT = define(
    "cpu.cpu-request-not-limit",
    "dedicated CPUs with CPU request ≠ limit",
    field="`spec.domain.cpu.dedicatedCpuPlacement`",
    page="dedicated-cpu.md",
    replaces="cpu.R6",
)
CORES_AND_CPU_DISAGREE = define(
    "cpu.cores-and-cpu-disagree",
    "CPU request and limit both disagree with sockets x cores x threads",
    field="`spec.domain.cpu.dedicatedCpuPlacement`",
    page="dedicated-cpu.md",
    replaces="cpu.R7",
)
ARM64_THREADS = define(
    "cpu.arm64-threads",
    "more than 1 thread with dedicated CPUs on arm64 (`spec.architecture`, else the cluster default)",
    field="`spec.architecture`",
    page="dedicated-cpu.md",
    replaces="cpu.R8",
)
TOO_MANY_THREADS = define(
    "cpu.too-many-threads",
    "more than 2 threads with dedicated CPUs",
    field="`spec.domain.cpu.dedicatedCpuPlacement`",
    page="dedicated-cpu.md",
    replaces="cpu.R9",
)
EMULATOR_THREAD_WITHOUT_DEDICATED = define(
    "cpu.emulator-thread-without-dedicated",
    "`isolateEmulatorThread` without dedicated CPUs",
    field="`spec.domain.cpu.isolateEmulatorThread`",
    page="dedicated-cpu.md",
    replaces="cpu.R10",
)
NUMA_GATE_OFF = define(
    "cpu.numa-gate-off",
    "reserved: KubeVirt's NUMA gate is GA, the rule never fires",
    field="`spec.domain.cpu.numa.guestMappingPassthrough`",
    page="dedicated-cpu.md",
    kind="reserved",
    replaces="cpu.R11",
)
NUMA_WITHOUT_DEDICATED = define(
    "cpu.numa-without-dedicated",
    "NUMA passthrough without dedicated CPUs",
    field="`spec.domain.cpu.numa.guestMappingPassthrough`",
    page="dedicated-cpu.md",
    replaces="cpu.R12",
)
NUMA_WITHOUT_HUGEPAGES = define(
    "cpu.numa-without-hugepages",
    "NUMA passthrough without hugepages",
    field="`spec.domain.cpu.numa.guestMappingPassthrough`",
    page="dedicated-cpu.md",
    replaces="cpu.R13",
)
REALTIME_WITHOUT_DEDICATED = define(
    "cpu.realtime-without-dedicated",
    "`realtime` without dedicated CPUs (FieldValueRequired)",
    field="`spec.domain.cpu.dedicatedCpuPlacement`",
    page="dedicated-cpu.md",
    replaces="cpu.R14",
)
REALTIME_WITHOUT_NUMA = define(
    "cpu.realtime-without-numa",
    "`realtime` without NUMA passthrough (FieldValueRequired)",
    field="`spec.domain.cpu.numa.guestMappingPassthrough`",
    page="dedicated-cpu.md",
    replaces="cpu.R15",
)
NEGATIVE_CPU_REQUEST = define(
    "cpu.negative-cpu-request",
    "negative CPU request",
    field="`spec.domain.resources.requests.cpu`",
    page="dedicated-cpu.md",
    replaces="cpu.G1",
)
NEGATIVE_CPU_LIMIT = define(
    "cpu.negative-cpu-limit",
    "negative CPU limit",
    field="`spec.domain.resources.limits.cpu`",
    page="dedicated-cpu.md",
    replaces="cpu.G2",
)
CPU_REQUEST_ABOVE_LIMIT = define(
    "cpu.cpu-request-above-limit",
    "CPU request greater than the limit",
    field="`spec.domain.resources.requests.cpu`",
    page="dedicated-cpu.md",
    replaces="cpu.G3",
)
NEGATIVE_MEMORY_REQUEST = define(
    "cpu.negative-memory-request",
    "negative memory request",
    field="`spec.domain.resources.requests.memory`",
    page="dedicated-cpu.md",
    replaces="cpu.G4",
)
MEMORY_REQUEST_BELOW_1M = define(
    "cpu.memory-request-below-1m",
    "memory request below 1M",
    field="`spec.domain.resources.requests.memory`",
    page="dedicated-cpu.md",
    replaces="cpu.G5",
)
NEGATIVE_MEMORY_LIMIT = define(
    "cpu.negative-memory-limit",
    "negative memory limit",
    field="`spec.domain.resources.limits.memory`",
    page="dedicated-cpu.md",
    replaces="cpu.G6",
)
MEMORY_REQUEST_ABOVE_LIMIT = define(
    "cpu.memory-request-above-limit",
    "memory request greater than the limit",
    field="`spec.domain.resources.requests.memory`",
    page="dedicated-cpu.md",
    replaces="cpu.G7",
)
BAD_HUGEPAGE_SIZE = define(
    "cpu.bad-hugepage-size",
    "hugepage size missing, unparsable or not positive",
    field="`spec.domain.memory.hugepages.pageSize`",
    page="dedicated-cpu.md",
    replaces="cpu.G8",
)
MEMORY_BELOW_HUGEPAGE = define(
    "cpu.memory-below-hugepage",
    "VM memory smaller than one hugepage",
    field="`spec.domain.resources.requests.memory`",
    page="dedicated-cpu.md",
    replaces="cpu.G9",
)
MEMORY_NOT_HUGEPAGE_MULTIPLE = define(
    "cpu.memory-not-hugepage-multiple",
    "VM memory not a multiple of the hugepage size",
    field="`spec.domain.resources.requests.memory`",
    page="dedicated-cpu.md",
    replaces="cpu.G10",
)
MEMORY_REQUIRED = define(
    "cpu.memory-required",
    "VMI CREATE with no memory anywhere (FieldValueRequired, no field, as KubeVirt)",
    field="(none)",
    page="dedicated-cpu.md",
    replaces="cpu.G11",
)
SOCKETS_ABOVE_MAX = define(
    "cpu.sockets-above-max",
    "sockets (given or defaulted) above `maxSockets`",
    field="`spec.domain.cpu.sockets`",
    page="dedicated-cpu.md",
    replaces="cpu.G12",
)
BAD_QUANTITY = define(
    "cpu.bad-quantity",
    "an unparsable CPU/memory quantity (`resources`, `memory.guest`, `memory.maxGuest`)",
    field="the quantity's field",
    page="dedicated-cpu.md",
    replaces="cpu.quantity",
)
NEGATIVE_COUNT = define(
    "cpu.negative-count",
    "a negative `cores`/`sockets`/`threads`/`maxSockets`/`supplementalPoolThreadCount`",
    field="the count's field",
    page="dedicated-cpu.md",
    replaces="cpu.count",
)
CPU_MANAGER_OFF = define(
    "cpu.cpu-manager-off",
    "dedicated CPUs while the config says `cpuManager.enabled: false`",
    field="`spec.domain.cpu.dedicatedCpuPlacement`",
    page="dedicated-cpu.md",
    replaces="cpu.cpuManager",
)
UNKNOWN_IO_THREADS_POLICY = define(
    "cpu.unknown-io-threads-policy",
    "a policy other than `shared`, `auto`, `supplementalPool`",
    field="`spec.domain.ioThreadsPolicy`",
    page="dedicated-cpu.md",
    replaces="cpu.ioThreadsPolicy",
)
IO_THREAD_POOL_MISSING = define(
    "cpu.io-thread-pool-missing",
    "`supplementalPool` without a positive pool thread count (KubeVirt names `ioThreads.count`)",
    field="`spec.domain.ioThreads.supplementalPoolThreadCount`",
    page="dedicated-cpu.md",
    replaces="cpu.ioThreads",
)
MEMORY_HOTPLUG_UNSUPPORTED = define(
    "cpu.memory-hotplug-unsupported",
    "VM template with `maxGuest` failing one of KubeVirt's hotplug conditions (one cause each)",
    field="`spec.template.spec.domain.memory.guest`",
    page="dedicated-cpu.md",
    replaces="cpu.memoryHotplug",
)


@dataclass(slots=True)
class CpuSpec:
    """The CPU- and memory-relevant part of a VMI spec, read and type-checked once.

    Quantities are ``None`` when absent; a quantity that failed to parse is named in ``invalid`` (its cause is
    already reported) and every rule reading it is skipped. ``derived`` records which values defaulting
    filled in, for messages.
    """

    root: Path
    dedicated: bool = False
    isolate_emulator_thread: bool = False
    realtime: bool = False
    numa_passthrough: bool = False
    cores: int = 0
    sockets: int = 0
    threads: int = 0
    max_sockets: int = 0
    architecture: str = ""  # spec.architecture; after defaulting, the cluster's default when that was empty
    io_threads_policy: str | None = None  # domain.ioThreadsPolicy as written (None when absent)
    pool_threads: int | None = None  # domain.ioThreads.supplementalPoolThreadCount (None when absent)
    launch_security: bool = False  # domain.launchSecurity present (SEV/TDX: an encrypted VM)
    max_guest: Decimal | None = None  # domain.memory.maxGuest (memory hotplug)
    max_guest_raw: Any = None
    has_memory: bool = False  # spec.domain.memory present
    hugepages: bool = False
    page_size: Decimal | None = None
    page_size_raw: Any = None
    guest: Decimal | None = None
    guest_raw: Any = None
    quantities: dict[Resource, Decimal] = field(default_factory=dict)
    raw: dict[Resource, Any] = field(default_factory=dict)
    invalid: set[str] = field(default_factory=set)
    derived: set[str] = field(default_factory=set)

    def path(self, *rel: str | int) -> Path:
        return self.root + rel

    def f(self, *rel: str | int) -> str:
        """The rendered field path of ``rel`` under this spec's root."""
        return field_path(self.root + rel)

    def q(self, res: Resource) -> Decimal:
        """The quantity, zero when absent (apimachinery's ``Requests.Cpu()`` of a missing key)."""
        return self.quantities.get(res, Decimal(0))

    def known(self, *names: str) -> bool:
        return not any(n in self.invalid for n in names)


def _name(res: Resource) -> str:
    return f"{res[0]}.{res[1]}"


def vcpus(cores: int, sockets: int, threads: int) -> int:
    """KubeVirt's ``GetNumberOfVCPUs``: the product of the non-zero topology fields (0 when all are 0)."""
    n = cores
    for x in (sockets, threads):
        if x:
            n = n * x if n else x
    return n


class _Reader(Reader):
    """The shared reader, plus the values the CPU rules deny rather than refuse to read (422 causes):
    negative counts and unparsable quantities."""

    causes: list[Cause]

    def __init__(self) -> None:
        super().__init__()
        self.causes = []

    def count(self, parent: dict[str, Any], key: str, path: Path) -> int:
        v = self.integer(parent, key, path)
        if v is None:
            return 0
        if v < 0:
            self.causes.append(Cause.at(path, f"must not be negative (got {v})", rule=NEGATIVE_COUNT))
            return 0
        return v

    def quantity(self, raw: Any, path: Path, rule: str = BAD_QUANTITY) -> Decimal | None:
        """Parse ``raw``; ``None`` (with a cause) when it is not a quantity."""
        try:
            return quantity.parse(raw)
        except quantity.QuantityError as exc:
            self.causes.append(Cause.at(path, str(exc), rule=rule))
            return None


def read_spec(spec: dict[str, Any], root: Path) -> tuple[CpuSpec, Findings]:
    """Read the fields the CPU rules use from a raw VMI spec; findings hold type problems and bad values."""
    r = _Reader()
    out = CpuSpec(root=root)
    out.architecture = r.string(spec, "architecture", (*root, "architecture")) or ""
    domain = r.mapping(spec, "domain", (*root, "domain")) or {}
    d = (*root, "domain")

    cpu = r.mapping(domain, "cpu", (*d, "cpu")) or {}
    c = (*d, "cpu")
    out.dedicated = r.flag(cpu, "dedicatedCpuPlacement", (*c, "dedicatedCpuPlacement"))
    out.isolate_emulator_thread = r.flag(cpu, "isolateEmulatorThread", (*c, "isolateEmulatorThread"))
    out.cores = r.count(cpu, "cores", (*c, "cores"))
    out.sockets = r.count(cpu, "sockets", (*c, "sockets"))
    out.threads = r.count(cpu, "threads", (*c, "threads"))
    out.max_sockets = r.count(cpu, "maxSockets", (*c, "maxSockets"))
    out.realtime = r.mapping(cpu, "realtime", (*c, "realtime")) is not None
    numa = r.mapping(cpu, "numa", (*c, "numa"))
    if numa is not None:
        out.numa_passthrough = (
            r.mapping(numa, "guestMappingPassthrough", (*c, "numa", "guestMappingPassthrough")) is not None
        )

    out.io_threads_policy = r.string(domain, "ioThreadsPolicy", (*d, "ioThreadsPolicy"))
    io_threads = r.mapping(domain, "ioThreads", (*d, "ioThreads")) or {}
    if io_threads.get("supplementalPoolThreadCount") is not None:
        out.pool_threads = r.count(
            io_threads, "supplementalPoolThreadCount", (*d, "ioThreads", "supplementalPoolThreadCount")
        )
    out.launch_security = r.mapping(domain, "launchSecurity", (*d, "launchSecurity")) is not None

    resources = r.mapping(domain, "resources", (*d, "resources")) or {}
    for section in ("requests", "limits"):
        values = r.mapping(resources, section, (*d, "resources", section)) or {}
        for name in ("cpu", "memory"):
            raw = values.get(name)
            if raw is None:
                continue
            res = (section, name)
            out.raw[res] = raw
            parsed = r.quantity(raw, (*d, "resources", section, name))
            if parsed is None:
                out.invalid.add(_name(res))
            else:
                out.quantities[res] = parsed

    memory = r.mapping(domain, "memory", (*d, "memory"))
    out.has_memory = memory is not None
    memory = memory or {}
    if memory.get("guest") is not None:
        out.guest_raw = memory["guest"]
        out.guest = r.quantity(out.guest_raw, (*d, "memory", "guest"))
        if out.guest is None:
            out.invalid.add("guest")
    if memory.get("maxGuest") is not None:
        out.max_guest_raw = memory["maxGuest"]
        out.max_guest = r.quantity(out.max_guest_raw, (*d, "memory", "maxGuest"))
        if out.max_guest is None:
            out.invalid.add("maxGuest")
    hugepages = r.mapping(memory, "hugepages", (*d, "memory", "hugepages"))
    if hugepages is not None:
        out.hugepages = True
        page_size = hugepages.get("pageSize")
        ps_path = (*d, "memory", "hugepages", "pageSize")
        out.page_size_raw = page_size
        # cpu.bad-hugepage-size: KubeVirt parses the string; absent or not a string fails too
        if not isinstance(page_size, str):
            r.causes.append(Cause.at(ps_path, "must be a page size such as 2Mi or 1Gi", rule=BAD_HUGEPAGE_SIZE))
            out.invalid.add("pageSize")
        else:
            out.page_size = r.quantity(page_size, ps_path, BAD_HUGEPAGE_SIZE)
            if out.page_size is None:
                out.invalid.add("pageSize")
            elif quantity.value(out.page_size) <= 0:
                r.causes.append(
                    Cause.at(
                        ps_path,
                        f"must be a positive page size such as 2Mi or 1Gi (got {page_size!r})",
                        rule=BAD_HUGEPAGE_SIZE,
                    )
                )
                out.page_size = None
                out.invalid.add("pageSize")

    findings = Findings(causes=r.causes)
    if r.problems:
        findings.bad_request = "; ".join(r.problems)
    return out, findings


def apply_kubevirt_defaults(spec: CpuSpec, default_architecture: str = "") -> CpuSpec:
    """KubeVirt's admission defaulting (DEF ``SetDefaultVirtualMachineInstanceSpec``) on a copy.

    ``requests.cpu`` from ``limits.cpu``; guest memory from requests.memory, else limits.memory, else the
    hugepage size; when cores, sockets and threads are all 0: sockets from limits.cpu, else requests.cpu,
    else 1, and cores = threads = 1; an empty ``architecture`` becomes ``default_architecture`` (the caller
    resolves it with :func:`webhook.rules.base.default_architecture`).
    """
    s = dataclasses.replace(
        spec,
        quantities=dict(spec.quantities),
        raw=dict(spec.raw),
        invalid=set(spec.invalid),
        derived=set(spec.derived),
    )
    if not s.architecture and default_architecture:
        s.architecture = default_architecture
        s.derived.add("architecture")
    if s.q(REQ_CPU) == 0 and _name(REQ_CPU) not in s.invalid:
        if _name(LIM_CPU) in s.invalid:
            s.invalid.add(_name(REQ_CPU))
        elif s.q(LIM_CPU) != 0:
            s.quantities[REQ_CPU], s.raw[REQ_CPU] = s.quantities[LIM_CPU], s.raw[LIM_CPU]
            s.derived.add(_name(REQ_CPU))

    if s.guest is None and "guest" not in s.invalid:
        if not s.known(_name(REQ_MEM)) or (s.q(REQ_MEM) == 0 and not s.known(_name(LIM_MEM))):
            s.invalid.add("guest")
        else:
            for source, raw in ((s.q(REQ_MEM), s.raw.get(REQ_MEM)), (s.q(LIM_MEM), s.raw.get(LIM_MEM))):
                if source != 0:
                    s.guest, s.guest_raw = source, raw
                    break
            else:
                if s.page_size is not None:
                    s.guest, s.guest_raw = s.page_size, s.page_size_raw
            if s.guest is not None:
                s.derived.add("guest")
                s.has_memory = True

    if s.cores == 0 and s.sockets == 0 and s.threads == 0:
        sockets = 1
        for res in (LIM_CPU, REQ_CPU):
            if _name(res) in s.invalid:
                s.invalid.add("topology")
                break
            if res in s.quantities:  # KubeVirt tests presence of the key, not a non-zero value
                sockets = max(quantity.value(s.quantities[res]), 0)
                break
        s.cores, s.sockets, s.threads = 1, sockets, 1
        s.derived.add("sockets")
    return s


IO_THREADS_POLICIES = ("shared", "auto", "supplementalPool")


def unknown_io_threads_policy(s: CpuSpec) -> Cause | None:
    """KubeVirt's ``validateIOThreadsPolicy``, on every VMI and VM template."""
    policy = s.io_threads_policy
    if policy is not None and policy not in IO_THREADS_POLICIES:
        message = f"ioThreadsPolicy {policy!r} is not supported: use shared, auto or supplementalPool"
        return Cause.at(s.path("domain", "ioThreadsPolicy"), message, rule=UNKNOWN_IO_THREADS_POLICY)
    return None


def io_thread_pool_missing(s: CpuSpec) -> Cause | None:
    """On ``ioThreads.supplementalPoolThreadCount``, the field to fix (KubeVirt names ``ioThreads.count``, a field
    that does not exist)."""
    if s.io_threads_policy == "supplementalPool" and not s.pool_threads:
        f_count = s.f("domain", "ioThreads", "supplementalPoolThreadCount")
        got = "is not set" if s.pool_threads is None else f"is {s.pool_threads}"
        message = (
            f"ioThreadsPolicy supplementalPool needs a pool of I/O threads, but {f_count} {got}: "
            "set it to a positive number (e.g. 2), or choose ioThreadsPolicy shared or auto"
        )
        return Cause.at(
            s.path("domain", "ioThreads", "supplementalPoolThreadCount"), message, rule=IO_THREAD_POOL_MISSING
        )
    return None


Check = Callable[[CpuSpec], Cause | None]


def _res(s: CpuSpec, res: Resource) -> Path:
    return s.path("domain", "resources", *res)


def _ded(s: CpuSpec) -> Path:
    return s.path("domain", "cpu", "dedicatedCpuPlacement")


def _numa(s: CpuSpec) -> Path:
    return s.path("domain", "cpu", "numa", "guestMappingPassthrough")


# --- memory requests and limits (every VMI and VM template) -----------------------------------------------


def _negative(s: CpuSpec, res: Resource, rule: str) -> Cause | None:
    if s.known(_name(res)) and s.q(res) < 0:
        return Cause.at(_res(s, res), f"must not be negative (got {quoted(s.raw[res])})", rule=rule)
    return None


def _request_above_limit(s: CpuSpec, req: Resource, lim: Resource, rule: str) -> Cause | None:
    if s.known(_name(req), _name(lim)) and s.q(lim) > 0 and s.q(req) > s.q(lim):
        message = (
            f"{quoted(s.raw[req])} is greater than {field_path(_res(s, lim))} {quoted(s.raw[lim])}: "
            "lower the request or raise the limit"
        )
        return Cause.at(_res(s, req), message, rule=rule)
    return None


def negative_memory_request(s: CpuSpec) -> Cause | None:
    return _negative(s, REQ_MEM, NEGATIVE_MEMORY_REQUEST)


def memory_request_below_1m(s: CpuSpec) -> Cause | None:
    if s.known("requests.memory") and 0 < s.q(REQ_MEM) < ONE_MEGABYTE:
        message = f"must be at least 1M (got {quoted(s.raw[REQ_MEM])}): a VM needs at least 1M of memory"
        return Cause.at(_res(s, REQ_MEM), message, rule=MEMORY_REQUEST_BELOW_1M)
    return None


def negative_memory_limit(s: CpuSpec) -> Cause | None:
    return _negative(s, LIM_MEM, NEGATIVE_MEMORY_LIMIT)


def memory_request_above_limit(s: CpuSpec) -> Cause | None:
    return _request_above_limit(s, REQ_MEM, LIM_MEM, MEMORY_REQUEST_ABOVE_LIMIT)


# --- hugepages (the page size itself is checked while reading: cpu.bad-hugepage-size) ---------------------


def _vm_memory(s: CpuSpec) -> tuple[int, str, int] | None:
    """(the VM's memory in bytes, the field it is taken from, the page size) when hugepages are readable."""
    if not s.hugepages or s.page_size is None or not s.known("requests.memory", "guest", "limits.memory"):
        return None
    vm_memory, source = quantity.value(s.q(REQ_MEM)), field_path(_res(s, REQ_MEM))
    if vm_memory == 0 and s.guest is not None:
        vm_memory, source = quantity.value(s.guest), s.f("domain", "memory", "guest")
    if vm_memory == 0:
        vm_memory, source = quantity.value(s.q(LIM_MEM)), field_path(_res(s, LIM_MEM))
    return vm_memory, source, quantity.value(s.page_size)


def memory_below_hugepage(s: CpuSpec) -> Cause | None:
    found = _vm_memory(s)
    if found is None:
        return None
    vm_memory, source, page = found
    if vm_memory != 0 and vm_memory < page:
        message = (
            f"the VM's memory ({source} = {vm_memory} bytes) is smaller than the hugepage size "
            f"{s.f('domain', 'memory', 'hugepages', 'pageSize')} {quoted(s.page_size_raw)}: give it at least one page"
        )
        return Cause.at(_res(s, REQ_MEM), message, rule=MEMORY_BELOW_HUGEPAGE)
    return None


def memory_not_hugepage_multiple(s: CpuSpec) -> Cause | None:
    found = _vm_memory(s)
    if found is None or memory_below_hugepage(s) is not None:
        return None
    vm_memory, source, page = found
    if vm_memory % page != 0:
        message = (
            f"the VM's memory ({source} = {vm_memory} bytes) is not a multiple of the hugepage size "
            f"{s.f('domain', 'memory', 'hugepages', 'pageSize')} {quoted(s.page_size_raw)}: round it to a whole "
            "number of pages"
        )
        return Cause.at(_res(s, REQ_MEM), message, rule=MEMORY_NOT_HUGEPAGE_MULTIPLE)
    return None


# --- CPU requests and limits -------------------------------------------------------------------------------


def negative_cpu_request(s: CpuSpec) -> Cause | None:
    return _negative(s, REQ_CPU, NEGATIVE_CPU_REQUEST)


def negative_cpu_limit(s: CpuSpec) -> Cause | None:
    return _negative(s, LIM_CPU, NEGATIVE_CPU_LIMIT)


def cpu_request_above_limit(s: CpuSpec) -> Cause | None:
    return _request_above_limit(s, REQ_CPU, LIM_CPU, CPU_REQUEST_ABOVE_LIMIT)


# --- dedicated CPUs: KubeVirt's validateCpuPinning ----------------------------------------------------------


def dedicated_without_memory(s: CpuSpec) -> Cause | None:
    guest_zero = s.guest is None or s.guest == 0
    if (
        s.dedicated
        and s.known("requests.memory", "limits.memory", "guest")
        and s.q(LIM_MEM) == 0
        and s.q(REQ_MEM) == 0
        and (not s.has_memory or (not s.hugepages and guest_zero))
    ):
        f_lm, f_rm = field_path(_res(s, LIM_MEM)), field_path(_res(s, REQ_MEM))
        message = (
            f"dedicated CPUs need a fixed amount of memory: set {f_lm} (or {f_rm}, "
            f"{s.f('domain', 'memory', 'guest')} or {s.f('domain', 'memory', 'hugepages')})"
        )
        return Cause.at(_res(s, LIM_MEM), message, rule=DEDICATED_WITHOUT_MEMORY)
    return None


def _fractional(s: CpuSpec, res: Resource, what: str, rule: str) -> Cause | None:
    value = s.q(res)
    if s.dedicated and s.known(_name(res)) and quantity.value(value) > 0 and not quantity.is_whole(value):
        origin = f" (taken from {field_path(_res(s, LIM_CPU))})" if _name(res) in s.derived else ""
        message = (
            f"CPU {what} {quoted(s.raw[res])}{origin} is not a whole number of CPUs: with dedicated CPUs every "
            "vCPU gets a whole host CPU, so use a whole number such as 1 or 2"
        )
        return Cause.at(_res(s, res), message, rule=rule)
    return None


def fractional_cpu_request(s: CpuSpec) -> Cause | None:
    return _fractional(s, REQ_CPU, "request", FRACTIONAL_CPU_REQUEST)


def fractional_cpu_limit(s: CpuSpec) -> Cause | None:
    return _fractional(s, LIM_CPU, "limit", FRACTIONAL_CPU_LIMIT)


def memory_request_not_limit(s: CpuSpec) -> Cause | None:
    rm, lm = s.q(REQ_MEM), s.q(LIM_MEM)
    if (
        s.dedicated
        and s.known("requests.memory", "limits.memory")
        and rm > 0
        and lm > 0
        and quantity.value(rm) != quantity.value(lm)
    ):
        message = (
            f"must equal {field_path(_res(s, LIM_MEM))} with dedicated CPUs (got {quoted(s.raw[REQ_MEM])} and "
            f"{quoted(s.raw[LIM_MEM])}): set both to the same value"
        )
        return Cause.at(_res(s, REQ_MEM), message, rule=MEMORY_REQUEST_NOT_LIMIT)
    return None


def dedicated_without_cpu_count(s: CpuSpec) -> Cause | None:
    """Cannot fire after defaulting, which always gives at least one socket."""
    rv, lv = quantity.value(s.q(REQ_CPU)), quantity.value(s.q(LIM_CPU))
    topology_known = s.known("requests.cpu", "limits.cpu", "topology")
    if s.dedicated and topology_known and rv == 0 and lv == 0 and vcpus(s.cores, s.sockets, s.threads) == 0:
        f_rq, f_lq = field_path(_res(s, REQ_CPU)), field_path(_res(s, LIM_CPU))
        message = f"dedicated CPUs need a CPU count: set {s.f('domain', 'cpu', 'cores')} (or {f_rq} / {f_lq})"
        return Cause.at(_ded(s), message, rule=DEDICATED_WITHOUT_CPU_COUNT)
    return None


def cpu_request_not_limit(s: CpuSpec) -> Cause | None:
    rv, lv = quantity.value(s.q(REQ_CPU)), quantity.value(s.q(LIM_CPU))
    if s.dedicated and s.known("requests.cpu", "limits.cpu") and rv > 0 and lv > 0 and rv != lv:
        f_rq, f_lq = field_path(_res(s, REQ_CPU)), field_path(_res(s, LIM_CPU))
        message = (
            f"{f_rq} ({quoted(s.raw[REQ_CPU])}) and {f_lq} ({quoted(s.raw[LIM_CPU])}) must be equal with dedicated "
            "CPUs: set both to the same whole number, or give only cores"
        )
        return Cause.at(_ded(s), message, rule=CPU_REQUEST_NOT_LIMIT)
    return None


def cores_and_cpu_disagree(s: CpuSpec) -> Cause | None:
    rv, lv = quantity.value(s.q(REQ_CPU)), quantity.value(s.q(LIM_CPU))
    n = vcpus(s.cores, s.sockets, s.threads)
    topology_known = s.known("requests.cpu", "limits.cpu", "topology")
    if s.dedicated and topology_known and (rv > 0 or lv > 0) and n > 0 and rv != n and lv != n:
        f_rq, f_lq = field_path(_res(s, REQ_CPU)), field_path(_res(s, LIM_CPU))
        given = " and ".join(
            f"{f} {quoted(s.raw[res])}" for f, res in ((f_rq, REQ_CPU), (f_lq, LIM_CPU)) if res in s.raw
        )
        message = (
            f"the CPU topology (cores x sockets x threads) gives {n} vCPUs but {given} say otherwise: "
            f"with dedicated CPUs give only {s.f('domain', 'cpu', 'cores')} (KubeVirt sets the CPU request "
            f"and limit from it) or make them equal to {n}"
        )
        return Cause.at(_ded(s), message, rule=CORES_AND_CPU_DISAGREE)
    return None


def arm64_threads(s: CpuSpec) -> Cause | None:
    """``spec.architecture``, else the cluster's default (see apply_kubevirt_defaults)."""
    if s.dedicated and s.threads > 1 and s.architecture == "arm64":
        arch_origin = " (the cluster's default architecture)" if "architecture" in s.derived else ""
        message = (
            f"{s.f('domain', 'cpu', 'threads')} is {s.threads} but dedicated CPUs on arm64{arch_origin} support 1 "
            "thread per core: set threads to 1 and use more cores"
        )
        return Cause.at(s.path("architecture"), message, rule=ARM64_THREADS)
    return None


def too_many_threads(s: CpuSpec) -> Cause | None:
    if s.dedicated and s.threads > 2:
        message = (
            f"{s.f('domain', 'cpu', 'threads')} is {s.threads} but dedicated CPUs allow at most 2 threads per core: "
            "use more cores instead"
        )
        return Cause.at(_ded(s), message, rule=TOO_MANY_THREADS)
    return None


# --- NUMA, emulator thread, sockets, realtime ----------------------------------------------------------------


def numa_without_dedicated(s: CpuSpec) -> Cause | None:
    """(KubeVirt's NUMA feature gate check, cpu.numa-gate-off, never fires: the gate is GA.)"""
    if s.numa_passthrough and not s.dedicated:
        message = (
            f"NUMA guestMappingPassthrough maps dedicated host CPUs into the guest: set {field_path(_ded(s))}: true"
        )
        return Cause.at(_numa(s), message, rule=NUMA_WITHOUT_DEDICATED)
    return None


def numa_without_hugepages(s: CpuSpec) -> Cause | None:
    if s.numa_passthrough and not s.hugepages:
        message = (
            "NUMA guestMappingPassthrough needs hugepages: set "
            f"{s.f('domain', 'memory', 'hugepages', 'pageSize')} (e.g. 2Mi or 1Gi)"
        )
        return Cause.at(_numa(s), message, rule=NUMA_WITHOUT_HUGEPAGES)
    return None


def emulator_thread_without_dedicated(s: CpuSpec) -> Cause | None:
    if s.isolate_emulator_thread and not s.dedicated:
        message = (
            "isolateEmulatorThread only works with dedicated CPUs: "
            f"set {field_path(_ded(s))}: true or remove isolateEmulatorThread"
        )
        return Cause.at(
            s.path("domain", "cpu", "isolateEmulatorThread"), message, rule=EMULATOR_THREAD_WITHOUT_DEDICATED
        )
    return None


def sockets_above_max(s: CpuSpec) -> Cause | None:
    if s.max_sockets != 0 and s.sockets > s.max_sockets:
        origin = " (derived from the CPU request/limit)" if "sockets" in s.derived else ""
        message = (
            f"{s.sockets} sockets{origin} is more than maxSockets {s.max_sockets}: "
            f"lower the sockets or raise {s.f('domain', 'cpu', 'maxSockets')}"
        )
        return Cause.at(s.path("domain", "cpu", "sockets"), message, rule=SOCKETS_ABOVE_MAX)
    return None


def realtime_without_dedicated(s: CpuSpec) -> Cause | None:
    if s.realtime and not s.dedicated:
        message = (
            f"must be true when {s.f('domain', 'cpu', 'realtime')} is set: realtime vCPUs need dedicated host CPUs"
        )
        return Cause.at(_ded(s), message, "FieldValueRequired", rule=REALTIME_WITHOUT_DEDICATED)
    return None


def realtime_without_numa(s: CpuSpec) -> Cause | None:
    if s.realtime and not s.numa_passthrough:
        message = (
            f"must be set when {s.f('domain', 'cpu', 'realtime')} is set: add guestMappingPassthrough: {{}} "
            "(it also needs hugepages)"
        )
        return Cause.at(_numa(s), message, "FieldValueRequired", rule=REALTIME_WITHOUT_NUMA)
    return None


def cpu_manager_off(s: CpuSpec) -> Cause:
    message = (
        "dedicated CPUs are turned off on this cluster (cpuManager.enabled: false), so this VM would stay "
        f"Pending: {ENABLE_CPU_MANAGER}; or remove dedicatedCpuPlacement"
    )
    return Cause.at(_ded(s), message, rule=CPU_MANAGER_OFF)


def memory_required(s: CpuSpec) -> Cause | None:
    """VMI CREATE only; no field, like KubeVirt."""
    if s.known("requests.memory", "guest") and s.q(REQ_MEM) == 0 and s.guest is None and not s.hugepages:
        f_rm, f_lm = field_path(_res(s, REQ_MEM)), field_path(_res(s, LIM_MEM))
        message = (
            f"no memory requested: set {f_rm} or {f_lm}, or {s.f('domain', 'memory', 'guest')}, "
            f"or {s.f('domain', 'memory', 'hugepages', 'pageSize')}"
        )
        return Cause("", message, "FieldValueRequired", rule=MEMORY_REQUIRED)
    return None


# Every check of a read (normally defaulted) spec, in the order of KubeVirt's causes: memory, hugepages, CPU
# quantities, CPU pinning, NUMA, emulator thread, hotplug sockets, realtime, I/O threads.
SPEC_CHECKS: tuple[Check, ...] = (
    negative_memory_request,
    memory_request_below_1m,
    negative_memory_limit,
    memory_request_above_limit,
    memory_below_hugepage,
    memory_not_hugepage_multiple,
    negative_cpu_request,
    negative_cpu_limit,
    cpu_request_above_limit,
    dedicated_without_memory,
    fractional_cpu_request,
    fractional_cpu_limit,
    memory_request_not_limit,
    dedicated_without_cpu_count,
    cpu_request_not_limit,
    cores_and_cpu_disagree,
    arm64_threads,
    too_many_threads,
    numa_without_dedicated,
    numa_without_hugepages,
    emulator_thread_without_dedicated,
    sockets_above_max,
    realtime_without_dedicated,
    realtime_without_numa,
    unknown_io_threads_policy,
    io_thread_pool_missing,
)


def check_spec(s: CpuSpec, *, vmi_create: bool, cpu_manager_enabled: bool = True) -> list[Cause]:
    """Every check of :data:`SPEC_CHECKS` on a read (normally defaulted) spec; first whether dedicated CPUs are
    on at all, last (VMI CREATE only) whether there is any memory."""
    out: list[Cause] = []
    if s.dedicated and not cpu_manager_enabled:
        out.append(cpu_manager_off(s))
    for check in SPEC_CHECKS:
        cause = check(s)
        if cause is not None:
            out.append(cause)
    if vmi_create:
        cause = memory_required(s)
        if cause is not None:
            out.append(cause)
    return out


GI = Decimal(1024**3)
TWO_MI = Decimal(2 * 1024**2)


def memory_hotplug(s: CpuSpec) -> list[Cause]:
    """KubeVirt's memory-hotplug conditions on a defaulted VM template with maxGuest (docs/dedicated-cpu.md).

    Every failing condition is one cause on ``spec.template.spec.domain.memory.guest``; KubeVirt
    stops at the first. KubeVirt runs them only under its default ``vmRolloutStrategy: LiveUpdate``, which we
    assume (the cluster view does not carry the rollout strategy).
    """
    if s.max_guest is None or not s.known("maxGuest"):
        return []
    at = s.path("domain", "memory", "guest")
    f_guest, f_max = s.f("domain", "memory", "guest"), s.f("domain", "memory", "maxGuest")
    out: list[str] = []
    if s.realtime:
        out.append(f"memory hotplug ({f_max}) does not work with realtime vCPUs: remove maxGuest or realtime")
    if s.numa_passthrough:
        out.append(
            f"memory hotplug ({f_max}) does not work with NUMA guestMappingPassthrough: remove maxGuest or the "
            "NUMA passthrough"
        )
    if s.launch_security:
        out.append(
            f"memory hotplug ({f_max}) does not work with launchSecurity (an encrypted VM): remove maxGuest or "
            "launchSecurity"
        )
    one_gi_pages = s.hugepages and s.page_size_raw == "1Gi"
    block, block_name = (GI, "1Gi") if one_gi_pages else (TWO_MI, "2Mi")
    why_block = " (the hugepage size)" if one_gi_pages else ""
    guest = quantity.value(s.guest) if s.guest is not None else None
    max_guest = quantity.value(s.max_guest)
    if s.known("guest") and guest is None:
        out.append(f"memory hotplug ({f_max}) needs the guest memory: set {f_guest} (or a memory request or limit)")
    if guest is not None and guest > max_guest:
        out.append(
            f"the guest memory {quoted(s.guest_raw)} is more than {f_max} {quoted(s.max_guest_raw)}: raise maxGuest "
            "or lower the guest memory"
        )
    if guest is not None and guest % block:
        origin = " (taken from the memory request or limit)" if "guest" in s.derived else ""
        out.append(
            f"the guest memory {quoted(s.guest_raw)}{origin} is not a multiple of {block_name}{why_block}: memory "
            f"hotplug adds memory in {block_name} blocks, so round it"
        )
    if max_guest % block:
        out.append(
            f"{f_max} {quoted(s.max_guest_raw)} is not a multiple of {block_name}{why_block}: memory hotplug adds "
            f"memory in {block_name} blocks, so round it"
        )
    if s.architecture != "amd64":
        origin = " (the cluster's default architecture)" if "architecture" in s.derived else ""
        out.append(
            f"memory hotplug ({f_max}) works only on amd64 (x86_64) VMs, this one is {s.architecture or 'unknown'}"
            f"{origin}: remove maxGuest"
        )
    if guest is not None and guest < GI:
        out.append(
            f"memory hotplug ({f_max}) needs at least 1Gi of guest memory, {f_guest} is {quoted(s.guest_raw)}: "
            "raise it or remove maxGuest"
        )
    return [Cause.at(at, message, rule=MEMORY_HOTPLUG_UNSUPPORTED) for message in out]


def consistent_duplicate_warning(user: CpuSpec) -> str | None:
    """The CPU count given twice, consistently (user's spec before defaulting, dedicated CPUs only).

    KubeVirt accepts cores/sockets/threads together with an equal CPU request or limit, but the CPU manager
    documentation advises giving only one; when they do not agree cpu.cores-and-cpu-disagree denies instead.
    """
    if not user.dedicated:
        return None
    n = vcpus(user.cores, user.sockets, user.threads)
    given = [res for res in (REQ_CPU, LIM_CPU) if res in user.raw]
    if n == 0 or not given or not user.known(*(_name(res) for res in given)):
        return None
    if any(user.quantities[res] != n for res in given):
        return None
    names = " and ".join(_name(res) for res in given)
    return (
        f"{user.f('domain')}: cpu topology and resources.{names} all give {n} CPUs; they agree, but give only the "
        "topology, as KubeVirt's dedicated CPU resources page advises"
    )


@dataclass(slots=True)
class SpecRead:
    """One VMI spec (or VM template spec) as the CPU rules see it: as written, defaulted, and what reading found
    (type problems make ``findings.bad_request``, and then there is no defaulted copy)."""

    user: CpuSpec
    defaulted: CpuSpec | None
    findings: Findings


def read(spec: dict[str, Any], root: Path, ctx: Context) -> SpecRead:
    """The spec at ``root`` read and defaulted once per review: the CPU rules and the preflight share it."""
    got = ctx.cpu_spec
    if got is None:
        user, findings = read_spec(spec, root)
        defaulted = None
        if findings.bad_request is None:
            defaulted = apply_kubevirt_defaults(user, default_architecture(ctx))
        got = ctx.cpu_spec = SpecRead(user, defaulted, findings)
    return got


def validate_spec(spec: Any, root: Path, ctx: Context, *, vmi_create: bool) -> Findings:
    """Read, default (on a copy) and check one VMI spec found at ``root``."""
    if spec is None:  # KubeVirt's CRDs require it; read as empty so the memory rules say what is missing
        spec = {}
    if not isinstance(spec, dict):
        return Findings(bad_request=f"{field_path(root)}: must be an object, got {json_type(spec)}")
    got = read(spec, root, ctx)
    findings = Findings(causes=list(got.findings.causes), bad_request=got.findings.bad_request)
    defaulted = got.defaulted
    if defaulted is None:
        return findings
    findings.causes.extend(
        check_spec(defaulted, vmi_create=vmi_create, cpu_manager_enabled=ctx.config.cpuManager.enabled)
    )
    if root == VM_ROOT:  # KubeVirt's VM admitter only: VMI CREATE has no maxGuest rule
        findings.causes.extend(memory_hotplug(defaulted))
    warning = consistent_duplicate_warning(got.user)
    if warning:
        findings.warnings.append(warning)
    return findings


def validate_vmi(obj: dict[str, Any], ctx: Context) -> Findings:
    """VMI CREATE (VMI UPDATE belongs to KubeVirt's own service accounts; the engine never sends it here)."""
    return validate_spec(obj.get("spec"), VMI_ROOT, ctx, vmi_create=True)


def validate_vm(obj: dict[str, Any], ctx: Context) -> Findings:
    """VM CREATE and UPDATE: the same rules on ``spec.template.spec`` (all but ``memory-required``, as KubeVirt's VM
    admitter)."""
    spec, problem = vm_template_spec(obj)  # a missing template (KubeVirt's CRD requires it) reads as empty
    if problem is not None:
        return Findings(bad_request=problem)
    return validate_spec(spec, VM_ROOT, ctx, vmi_create=False)
