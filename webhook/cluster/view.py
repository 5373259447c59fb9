"""The cluster view (docs/cluster-view.md): list + watch of Nodes, KubeVirt CRs and NetworkAttachmentDefinitions,
off the request path.

One reflector thread per kind does what client-go's reflector does: a paged list (``limit``/``continue``),
then a watch from the list's resourceVersion with bookmarks; a watch that ends (its timeout) is resumed from
the last resourceVersion seen, a 410 Gone relists, any other error backs off with jitter and relists. Each change
publishes a new immutable :class:`~webhook.k8s.snapshot.ClusterSnapshot` by swapping one reference, so a
review reads ``view.snapshot`` once and never waits on the API or on a lock.

Every list page and watch goes through the client layer (:class:`webhook.cluster.client.Client`); the paging
and the 410 relist of a reflector stay here (a reflector relists where the audit's pager goes on).

The view is "synced" once every kind listed (a kind whose CRD is not installed counts as listed, and empty);
it counts as lost (unsynced, preflight off) when a kind has not been able to list or watch for ``lost_after``
seconds, and is synced again with its next list.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import Any, Protocol

from webhook.cluster.client import Client, Gvr
from webhook.cluster.fold import NodeKey, kubevirt_view, nad_view, node_class, node_key
from webhook.k8s.snapshot import ClusterSnapshot, KubeVirtView, NadKey, NadView, NodeClass

log = logging.getLogger("vm_admission.cluster")

NODES = Gvr("Node", "", "v1", "nodes")
KUBEVIRTS = Gvr("KubeVirt", "kubevirt.io", "v1", "kubevirts")
NADS = Gvr("NetworkAttachmentDefinition", "k8s.cni.cncf.io", "v1", "network-attachment-definitions")
LIST_TIMEOUT = (5.0, 30.0)  # connect, read: one list page
RESOURCE_NAME_ANNOTATION = "k8s.v1.cni.cncf.io/resourceName"
PAGE_SIZE = 500
WATCH_TIMEOUT = 300  # seconds the API server keeps one watch open; resuming after it is routine
BACKOFF_BASE, BACKOFF_CAP = 0.5, 15.0
MISSING_CRD_RETRY = 30.0  # without a kind's CRD (404: KubeVirt, NADs) the kind is empty; look again this often
# (config cluster.crdRetry)


class Observer(Protocol):
    """What the view reports (webhook.metrics.Metrics implements it; tests may pass their own)."""

    def cluster_synced(self, synced: bool) -> None: ...
    def cluster_objects(self, kind: str, count: int) -> None: ...
    def cluster_watch_restart(self, kind: str, reason: str) -> None: ...
    def cluster_event(self, kind: str) -> None: ...


class _NoObserver:
    def cluster_synced(self, synced: bool) -> None:
        pass

    def cluster_objects(self, kind: str, count: int) -> None:
        pass

    def cluster_watch_restart(self, kind: str, reason: str) -> None:
        pass

    def cluster_event(self, kind: str) -> None:
        pass


class NodeStore:
    """Nodes folded into classes; ``classes()`` rebuilds only the classes that changed."""

    kind = "Node"

    def __init__(self) -> None:
        self._nodes: dict[str, tuple[str, NodeKey]] = {}
        self._members: dict[NodeKey, tuple[set[str], set[str]]] = {}
        self._interned: dict[NodeKey, NodeKey] = {}
        self._built: dict[NodeKey, NodeClass] = {}

    def __len__(self) -> int:
        return len(self._nodes)

    def fresh(self) -> NodeStore:
        return NodeStore()

    def adopt(self, fresh: Store) -> None:
        """Take over ``fresh``'s contents (a completed relist)."""
        assert isinstance(fresh, NodeStore)
        self._nodes, self._members, self._interned, self._built = (
            fresh._nodes,
            fresh._members,
            fresh._interned,
            fresh._built,
        )

    def _remove(self, name: str) -> None:
        old = self._nodes.pop(name, None)
        if old is None:
            return
        hostname, key = old
        names, hostnames = self._members[key]
        names.discard(name)
        hostnames.discard(hostname)  # hostnames are unique per node in practice
        self._built.pop(key, None)
        if not names:
            del self._members[key]
            self._interned.pop(key, None)

    def apply(self, event: str, obj: dict[str, Any]) -> None:
        name, hostname, key = node_key(obj)
        if not name:
            return
        if event == "DELETED":
            self._remove(name)
            return
        key = self._interned.setdefault(key, key)
        if self._nodes.get(name) == (hostname, key):
            return  # a heartbeat or status change that rules do not read
        self._remove(name)
        self._nodes[name] = (hostname, key)
        names, hostnames = self._members.setdefault(key, (set(), set()))
        names.add(name)
        if hostname:
            hostnames.add(hostname)
        self._built.pop(key, None)

    def classes(self) -> tuple[NodeClass, ...]:
        out = []
        for key, (names, hostnames) in self._members.items():
            built = self._built.get(key)
            if built is None:
                built = self._built[key] = node_class(key, frozenset(names), frozenset(hostnames))
            out.append(built)
        return tuple(out)


class KubeVirtStore:
    """KubeVirt CRs by namespace/name; ``current()`` is the one virt-api would use (the first usable)."""

    kind = "KubeVirt"

    def __init__(self) -> None:
        self._crs: dict[tuple[str, str], KubeVirtView | None] = {}

    def __len__(self) -> int:
        return len(self._crs)

    def fresh(self) -> KubeVirtStore:
        return KubeVirtStore()

    def adopt(self, fresh: Store) -> None:
        assert isinstance(fresh, KubeVirtStore)
        self._crs = fresh._crs

    def apply(self, event: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        assert isinstance(meta, dict)
        ref = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        if event == "DELETED":
            self._crs.pop(ref, None)
        else:
            self._crs[ref] = kubevirt_view(obj)

    def current(self) -> KubeVirtView | None:
        return next((v for _, v in sorted(self._crs.items(), key=lambda kv: kv[0]) if v is not None), None)


class NadStore:
    """NetworkAttachmentDefinitions by (namespace, name), each folded to a :class:`NadView` (views interned:
    10,000 NADs share a handful of them). ``frozen()`` is the published mapping, rebuilt only after a change."""

    kind = "NetworkAttachmentDefinition"

    def __init__(self, resource_annotation: str = RESOURCE_NAME_ANNOTATION) -> None:
        self.resource_annotation = resource_annotation
        self._nads: dict[NadKey, NadView] = {}
        self._views: dict[NadView, NadView] = {}
        self._frozen: MappingProxyType[NadKey, NadView] | None = None

    def __len__(self) -> int:
        return len(self._nads)

    def fresh(self) -> NadStore:
        return NadStore(self.resource_annotation)

    def adopt(self, fresh: Store) -> None:
        assert isinstance(fresh, NadStore)
        self._nads, self._views, self._frozen = fresh._nads, fresh._views, None

    def apply(self, event: str, obj: dict[str, Any]) -> None:
        key, view = nad_view(obj, self.resource_annotation)
        if event == "DELETED":
            if self._nads.pop(key, None) is not None:
                self._frozen = None
            return
        view = self._views.setdefault(view, view)
        if self._nads.get(key) is not view:
            self._nads[key] = view
            self._frozen = None

    def frozen(self) -> MappingProxyType[NadKey, NadView]:
        if self._frozen is None:
            self._frozen = MappingProxyType(dict(self._nads))
        return self._frozen


Store = NodeStore | KubeVirtStore | NadStore
ListPage = Callable[[int, str | None], dict[str, Any]]
WatchStream = Callable[[str, int], Iterator[dict[str, Any]]]


class Gone(Exception):
    """The resourceVersion is too old (410): relist."""


class Reflector:
    """List + watch one kind into its store, forever (until ``stop``), calling ``changed`` after each change."""

    def __init__(
        self,
        store: Store,
        list_page: ListPage,
        watch: WatchStream | None,
        changed: Callable[[], None],
        observer: Observer,
        stop: threading.Event,
        page_size: int = PAGE_SIZE,
        watch_timeout: int = WATCH_TIMEOUT,
        crd_retry: float = MISSING_CRD_RETRY,
    ) -> None:
        self.store, self.kind = store, store.kind
        self.crd_retry = crd_retry
        self.watch_timeout = watch_timeout
        self._list_page, self._watch = list_page, watch
        self._changed, self._observer, self._stop = changed, observer, stop
        self.page_size = page_size
        self.listed = False  # a full list has completed at least once
        self.failing_since: float | None = None
        self.missing = False  # the kind's API is not served (404): empty until it appears
        # A kind the view can do without (NADs): a 403 (an upgrade that has not granted its RBAC yet) also reads
        # as "not served", so the rest of the view still syncs.
        self.optional = False
        self.resource_version = ""

    def list(self) -> None:
        """A full paged list into the store (replacing it once complete); raises on failure.

        Each page is folded into a fresh store and dropped: only one page of raw objects is ever held.
        """
        fresh = self.store.fresh()
        token: str | None = None
        while True:
            page = self._list_page(self.page_size, token)
            for item in page.get("items") or []:
                if isinstance(item, dict):
                    fresh.apply("ADDED", item)
            meta = page.get("metadata") or {}
            token = meta.get("continue") or None
            del page
            if token is None:
                self.resource_version = str(meta.get("resourceVersion") or "")
                break
        self.store.adopt(fresh)
        self.listed, self.failing_since, self.missing = True, None, False
        self._observer.cluster_objects(self.kind, len(self.store))
        self._changed()

    def _watch_once(self) -> None:
        assert self._watch is not None
        for event in self._watch(self.resource_version, self.watch_timeout):
            kind, obj = event.get("type"), event.get("object")
            if not isinstance(obj, dict):
                continue
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Gone(str(obj.get("message") or "resourceVersion too old"))
                raise RuntimeError(f"watch error: {obj.get('message')}")
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self.resource_version = str(rv)
            if kind == "BOOKMARK":
                continue
            self.store.apply(str(kind), obj)
            self._observer.cluster_event(self.kind)
            self._observer.cluster_objects(self.kind, len(self.store))
            self._changed()
            if self._stop.is_set():
                return
        self._observer.cluster_watch_restart(self.kind, "timeout")  # routine: resume from resourceVersion

    def run(self) -> None:
        attempt = 0
        need_list = True
        while not self._stop.is_set():
            try:
                if need_list:
                    self.list()
                    need_list = False
                if self._watch is None:
                    return
                self._watch_once()
                attempt = 0
            except Gone as exc:
                log.info("watch expired; relisting", extra={"fields": {"kind": self.kind, "reason": str(exc)}})
                self._observer.cluster_watch_restart(self.kind, "expired")
                need_list = True
            except Exception as exc:
                status = getattr(exc, "status", None)
                if status == 410:
                    self._observer.cluster_watch_restart(self.kind, "expired")
                    need_list = True
                    continue
                if (status == 404 and (not self.listed or self.missing)) or (status == 403 and self.optional):
                    self._not_served(status)  # no CRD (or, for NADs, no RBAC for it yet): look again later
                    self._stop.wait(self.crd_retry)
                    need_list = True
                    continue
                # Anything else (connection refused, timeouts, 5xx, a CRD briefly unserved after a restart):
                # keep the last data, back off, then relist, which also proves the API server answers again.
                self._fail(exc, attempt)
                attempt += 1
                self._stop.wait(min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt) * random.uniform(0.5, 1.0))
                need_list = True

    def _not_served(self, status: int = 404) -> None:
        if not self.missing:
            why = "not served by the API server"
            if status == 403:
                why = "forbidden to this account (grant it get/list/watch)"
            log.info(f"{why}; treated as none", extra={"fields": {"kind": self.kind}})
        self.store.adopt(self.store.fresh())
        self.listed, self.failing_since, self.missing, self.resource_version = True, None, True, ""
        self._observer.cluster_objects(self.kind, 0)
        self._changed()

    def _fail(self, exc: Exception, attempt: int) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        reason = getattr(exc, "reason", None) or type(exc).__name__
        if attempt == 0:
            log.warning(
                "list/watch failed; retrying with backoff",
                extra={"fields": {"kind": self.kind, "error": str(reason)[:300]}},
            )
        self._observer.cluster_watch_restart(self.kind, "error")
        self._changed()


class ClusterView:
    """The reflectors (Nodes, KubeVirt CRs, NADs) and the snapshot they publish (``view.snapshot``: read it
    once per review)."""

    def __init__(
        self,
        api_client: Any,
        observer: Observer | None = None,
        lost_after: float = 30.0,
        page_size: int = PAGE_SIZE,
        watch_timeout: int = WATCH_TIMEOUT,
        resource_annotation: str = RESOURCE_NAME_ANNOTATION,
        crd_retry: float = MISSING_CRD_RETRY,
    ) -> None:
        """``api_client``: a ``kubernetes`` ApiClient, or a :class:`~webhook.cluster.client.Client` whose request
        count the view's calls add to (the audit's). ``resource_annotation``: the NAD annotation naming its
        device plugin resource (``networks.resourceNameAnnotation``; read when the view starts)."""
        self.client = api_client if isinstance(api_client, Client) else Client(api_client, LIST_TIMEOUT[1])
        self.observer: Observer = observer or _NoObserver()
        self.lost_after = lost_after
        self.snapshot = ClusterSnapshot()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._was_synced = False
        self.nodes = NodeStore()
        self.kubevirts = KubeVirtStore()
        self.nads = NadStore(resource_annotation)
        common = (self._publish, self.observer, self._stop, page_size, watch_timeout, crd_retry)
        self._nad_reflector = Reflector(self.nads, self._lister(NADS), self._watcher(NADS), *common)
        self._nad_reflector.optional = True
        self._reflectors = [
            Reflector(self.nodes, self._lister(NODES), self._watcher(NODES), *common),
            Reflector(self.kubevirts, self._lister(KUBEVIRTS), self._watcher(KUBEVIRTS), *common),
            self._nad_reflector,
        ]

    # -- API calls (through the client layer, webhook.cluster.client) --------------------------------

    def _lister(self, res: Gvr) -> ListPage:
        return lambda limit, token: self.client.list_page(res, None, limit, token, timeout=LIST_TIMEOUT)

    def _watcher(self, res: Gvr) -> WatchStream:
        return lambda rv, seconds: self.client.watch(res, rv, seconds)

    # -- publishing ------------------------------------------------------------------------------------

    def _healthy(self, r: Reflector, now: float) -> bool:
        return r.listed and (r.failing_since is None or now - r.failing_since < self.lost_after)

    def _publish(self) -> None:
        with self._lock:  # two writers; readers never take it
            now = time.monotonic()
            synced = all(self._healthy(r, now) for r in self._reflectors)
            classes = self.nodes.classes()
            self.snapshot = ClusterSnapshot(
                synced=synced,
                node_classes=classes,
                node_count=len(self.nodes),
                kubevirt=self.kubevirts.current(),
                nads=None if self._nad_reflector.missing else self.nads.frozen(),
            )
            if synced != self._was_synced:
                self._was_synced = synced
                self.observer.cluster_synced(synced)
                if synced:
                    log.info(
                        "cluster view synced",
                        extra={"fields": {"nodes": len(self.nodes), "nodeClasses": len(classes),
                                          "nads": len(self.nads),
                                          "kubevirt": self.snapshot.kubevirt.ref if self.snapshot.kubevirt else None}},
                    )  # fmt: skip
                else:
                    log.warning("cluster view lost: preflight is off until the API server answers again")

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the reflector threads (daemons; ``stop()`` ends them)."""
        for r in self._reflectors:
            t = threading.Thread(target=r.run, name=f"cluster-view-{r.kind}", daemon=True)
            t.start()
            self._threads.append(t)

    def list_once(self) -> ClusterSnapshot:
        """List every kind once (no watch), for ``review --cluster`` and ``audit``; raises on API errors."""
        for r in self._reflectors:
            try:
                r.list()
            except Exception as exc:
                status = getattr(exc, "status", None)
                if status != 404 and not (status == 403 and r.optional):
                    raise
                r._not_served(status)
        return self.snapshot

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.snapshot.synced:
                return True
            time.sleep(0.05)
        return self.snapshot.synced

    def stop(self) -> None:
        self._stop.set()

