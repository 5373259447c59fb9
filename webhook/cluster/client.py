"""The API client layer: every call vm-admission makes to the API server goes through :class:`Client`.

What the cluster view (:mod:`webhook.cluster.view`, docs/cluster-view.md) and ``vm-admission audit``
(:mod:`webhook.audit`, docs/audit.md) share: one list page as raw JSON decoded with orjson (no model objects),
the pager (``limit``/``continue``; a continue token that expired, 410, goes on with the token the API server
offers, as client-go's pager may), watches, server-side apply, a count of the requests made, and the API
server's errors as one line (:func:`error_message`). Credentials: :func:`api_client`.

The ``kubernetes`` client is imported only here (``lint-imports`` checks it: pyproject.toml); nothing else in
vm-admission talks to the API server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson


class Resource(Protocol):
    """A kind the client lists: its name, group (``""`` for the core group), version and plural."""

    @property
    def kind(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def plural(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Gvr:
    """A :class:`Resource` by value."""

    kind: str
    group: str
    version: str
    plural: str


# The core-group resources the client lists: their namespaced and cluster-wide list calls (CoreV1Api).
_CORE_LISTS = {"pods": ("list_namespaced_pod", "list_pod_for_all_namespaces"), "nodes": ("", "list_node")}


def status_message(exc: Any) -> str:
    """The API server's own one-line message from an ApiException's Status body."""
    body = getattr(exc, "body", None)
    try:
        message = orjson.loads(body).get("message") if body else None
    except (orjson.JSONDecodeError, AttributeError):
        message = None
    return str(message or getattr(exc, "reason", "") or exc).replace("\n", " ")


def terminating(exc: BaseException) -> bool:
    """A 403 because the namespace is being deleted (its Status cause ``NamespaceTerminating``)."""
    if getattr(exc, "status", None) != 403:
        return False
    try:
        details = orjson.loads(getattr(exc, "body", None) or b"{}").get("details") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return False
    causes = details.get("causes") or []
    return any(isinstance(c, dict) and "NamespaceTerminating" in (c.get("reason"), c.get("type")) for c in causes)


def inconsistent_continue(exc: BaseException) -> str | None:
    """The continue token a 410 ResourceExpired offers to go on with an inconsistent list, if any."""
    if getattr(exc, "status", None) != 410:
        return None
    try:
        token = (orjson.loads(getattr(exc, "body", None) or b"{}").get("metadata") or {}).get("continue")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return token if isinstance(token, str) and token else None


def error_message(exc: BaseException, verb: str, what: str) -> str:
    """``exc`` from the client as one line: ``cannot list pods in all namespaces: 403 Forbidden: ...``."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status:
        reason = getattr(exc, "reason", "") or ""
        return f"cannot {verb} {what}: {status} {reason}: {status_message(exc)}"
    import urllib3

    text = (str(getattr(exc, "reason", None) or exc).splitlines() or [repr(exc)])[0][:300]
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return f"cannot {verb} {what}: the API server is unreachable: {text}"
    return f"cannot {verb} {what}: {type(exc).__name__}: {text}"


class Client:
    """The calls vm-admission makes, through the ``kubernetes`` client; ``requests`` counts them.

    ``timeout``: the read timeout of a list or apply (seconds; connecting gets 5). ``inconsistent``: the kinds
    whose paged list went on past an expired continue token (:meth:`pages`).
    """

    def __init__(self, api_client: Any, timeout: float = 60.0) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.core: Any = client.CoreV1Api(api_client)
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.timeout = (5.0, timeout)
        self.requests = 0
        self.inconsistent: set[str] = set()

    def _list_call(self, res: Resource, namespace: str | None) -> Callable[..., Any]:
        """The list call of ``res`` (in ``namespace``, or cluster-wide), as a function without a docstring
        (so a watch finds no model type in it: it yields plain JSON objects, see :meth:`watch`)."""
        if res.group == "":
            namespaced, everywhere = _CORE_LISTS[res.plural]
            if namespace:
                return lambda **kw: getattr(self.core, namespaced)(namespace, **kw)
            return lambda **kw: getattr(self.core, everywhere)(**kw)
        if namespace:
            return lambda **kw: self.custom.list_namespaced_custom_object(
                res.group, res.version, namespace, res.plural, **kw
            )
        return lambda **kw: self.custom.list_cluster_custom_object(res.group, res.version, res.plural, **kw)

    def list_page(
        self,
        res: Resource,
        namespace: str | None,
        limit: int,
        token: str | None = None,
        *,
        field_selector: str | None = None,
        label_selector: str | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> dict[str, Any]:
        """One page of a list (one request; raises the client's exceptions), as the decoded JSON List."""
        kw: dict[str, Any] = {"limit": limit, "_preload_content": False, "_request_timeout": timeout or self.timeout}
        if token:
            kw["_continue"] = token
        if field_selector:
            kw["field_selector"] = field_selector
        if label_selector:
            kw["label_selector"] = label_selector
        call = self._list_call(res, namespace)
        self.requests += 1
        resp = call(**kw)
        page: dict[str, Any] = orjson.loads(resp.data)
        return page

    def pages(
        self,
        res: Resource,
        namespace: str | None,
        limit: int,
        field_selector: str | None = None,
        label_selector: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """The items of ``res``, one page at a time (raises the client's exceptions); the selectors narrow the
        list on the API server's side."""
        token: str | None = None
        while True:
            try:
                page = self.list_page(
                    res, namespace, limit, token, field_selector=field_selector, label_selector=label_selector
                )
            except Exception as exc:
                fresh = inconsistent_continue(exc) if token else None
                if fresh is None:
                    raise
                # The continue token expired (410, a long list across an etcd compaction): go on from where
                # we were with the token the API server offers, as client-go's pager may; say so.
                self.inconsistent.add(res.kind)
                token = fresh
                continue
            batch = [i for i in page.get("items") or [] if isinstance(i, dict)]
            token = (page.get("metadata") or {}).get("continue") or None
            del page
            yield batch
            # Drop this page before the next one is fetched and parsed: only one page of objects is ever held.
            del batch
            if token is None:
                return

    def list_whole(self, res: Resource) -> dict[str, Any]:
        """A cluster-wide list of a custom resource in one request, without paging (small kinds: ``review
        --cluster``'s instance types, preferences and presets)."""
        self.requests += 1
        listed: dict[str, Any] = self.custom.list_cluster_custom_object(
            res.group, res.version, res.plural, _request_timeout=self.timeout
        )
        return listed

    def watch(self, res: Resource, resource_version: str, seconds: int) -> Iterator[dict[str, Any]]:
        """Events of ``res`` cluster-wide from ``resource_version``, with bookmarks, for ``seconds``.

        Called through a function without a docstring, ``Watch`` finds no model type: it yields plain JSON
        objects (no model building per event) and still turns ERROR events, 410 among them, into ApiException.
        (``deserialize=False`` would skip the models too, but it breaks on ERROR events.)
        """
        from kubernetes import watch

        self.requests += 1
        watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
        stream: Iterator[dict[str, Any]] = watcher.stream(
            self._list_call(res, None),
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=seconds,
            _request_timeout=(5.0, float(seconds + 30)),
        )
        return stream

    def apply(self, res: Resource, namespace: str, name: str, body: dict[str, Any], field_manager: str) -> None:
        """Server-side apply of ``body`` (a namespaced custom object), forcing conflicts."""
        self.requests += 1
        self.custom.patch_namespaced_custom_object(
            res.group,
            res.version,
            namespace,
            res.plural,
            name,
            body,  # sent as JSON, which is YAML: the apply body as the API server reads it
            field_manager=field_manager,
            force=True,
            _content_type="application/apply-patch+yaml",
            _request_timeout=self.timeout,
        )


def api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """A ``kubernetes`` ApiClient: the kubeconfig (and context) when given, else the in-cluster account."""
    from kubernetes import client, config

    cfg = client.Configuration()
    if kubeconfig:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=cfg
        )
    else:
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    return client.ApiClient(cfg)
