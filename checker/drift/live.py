"""Read a live cluster through the Kubernetes API, read-only.

Configuration (kubeconfig with a context, or the in-cluster service account) is loaded by the
``kubernetes`` client; requests go through the client's TLS-configured connection pool. Only
``get`` and ``list`` are used: discovery (``/api``, ``/apis``), then one paginated list per kind
(``limit``/``continue``). Kinds present in the desired state are listed completely; every other
listable kind is listed with label selectors for the GitOps ownership labels.

Faults are results, not crashes: 401 and an unreachable or untrusted server stop the read with
a ``ClusterError``; 403, 404 and persistent 429/5xx/timeouts on one kind mark that kind
unreadable; 429 and 5xx are retried a bounded number of times, honouring ``Retry-After``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import urllib3

from checker.drift.secrets import SecretHasher
from checker.drift.sources import KindRef, Snapshot, Unreadable, protect
from checker.errors import ClusterError

OWNERSHIP_SELECTORS = ("kustomize.toolkit.fluxcd.io/name", "app.kubernetes.io/instance")
SWEEP_SKIP = frozenset({
    KindRef("", "Event"), KindRef("events.k8s.io", "Event"), KindRef("", "Endpoints"),
    KindRef("discovery.k8s.io", "EndpointSlice"), KindRef("", "Pod"),
    KindRef("apps", "ReplicaSet"), KindRef("apps", "ControllerRevision"),
    KindRef("coordination.k8s.io", "Lease"), KindRef("", "ComponentStatus"),
})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ApiResource:
    """A listable resource found by discovery."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def ref(self) -> KindRef:
        """The kind, without version."""
        return KindRef(self.group, self.kind)

    @property
    def api_version(self) -> str:
        """``group/version`` or ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_path(self) -> str:
        """Cluster-wide list URL path."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{base}/{self.plural}"


class HttpFault(Exception):
    """A request that failed after retries: status (0 when no response) and a short reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def load_configuration(kubeconfig: str | None, context: str | None,
                       in_cluster: bool) -> Any:
    """A ``kubernetes.client.Configuration`` from a kubeconfig or the in-cluster account."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    cfg = client.Configuration()
    try:
        if in_cluster:
            config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=cfg)
        else:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context,
                                    client_configuration=cfg, persist_config=False)
    except (ConfigException, OSError, ValueError, TypeError) as err:
        where = "in-cluster service account" if in_cluster else (kubeconfig or "kubeconfig")
        raise ClusterError(f"cannot load cluster credentials from {where}: {err}") from err
    return cfg


def context_name(kubeconfig: str | None, context: str | None, in_cluster: bool) -> str:
    """The context that ``load_configuration`` uses: the given one or the kubeconfig's current."""
    if context or in_cluster:
        return context or "in-cluster"
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        _, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=kubeconfig)
    except (ConfigException, OSError, ValueError, TypeError):
        return ""
    return str((active or {}).get("name", ""))


class LiveSource:
    """A read-only ``SnapshotSource`` over the Kubernetes API."""

    def __init__(self, configuration: Any, kinds: Iterable[KindRef], hasher: SecretHasher, *,
                 context: str = "", page_size: int = 500, max_attempts: int = 4,
                 backoff: float = 0.5, max_backoff: float = 10.0, timeout: float = 30.0,
                 sweep: bool = True, sleep: Callable[[float], None] = time.sleep) -> None:
        from kubernetes.client.rest import RESTClientObject

        self.cfg = configuration
        self.kinds = set(kinds)
        self.hasher = hasher
        self.context = context
        self.page_size = page_size
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = urllib3.Timeout(connect=min(timeout, 10.0), read=timeout)
        self.sweep = sweep
        self.sleep = sleep
        self.host = str(configuration.host).rstrip("/")
        self.pool = RESTClientObject(configuration).pool_manager
        self.requests = 0

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "gitops-checker"}
        for setting in self.cfg.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[str(setting["key"])] = str(setting["value"])
        return headers

    def _get(self, path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
        """GET with bounded retries; raises ClusterError for fatal faults, HttpFault otherwise."""
        url = self.host + path
        last = HttpFault(0, "no attempt")
        for attempt in range(1, self.max_attempts + 1):
            delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
            self.requests += 1
            try:
                resp = self.pool.request("GET", url, fields=query, headers=self._headers(),
                                         timeout=self.timeout, retries=False,
                                         preload_content=True)
            except urllib3.exceptions.SSLError as err:
                raise ClusterError(f"TLS error talking to {self.host}: {_short(err)}") from err
            except urllib3.exceptions.NewConnectionError as err:
                raise ClusterError(f"cannot reach {self.host}: {_short(err)}") from err
            except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError) as err:
                last = HttpFault(0, f"timeout or connection reset ({_short(err)})")
            except urllib3.exceptions.HTTPError as err:
                reason = getattr(err, "reason", None)
                if isinstance(reason, urllib3.exceptions.SSLError):
                    raise ClusterError(
                        f"TLS error talking to {self.host}: {_short(reason)}") from err
                raise ClusterError(f"cannot reach {self.host}: {_short(err)}") from err
            else:
                if resp.status == 200:
                    try:
                        data = json.loads(resp.data)
                    except ValueError as err:
                        raise HttpFault(200, "response is not JSON") from err
                    if not isinstance(data, dict):
                        raise HttpFault(200, "response is not a JSON object")
                    return data
                if resp.status == 401:
                    raise ClusterError(f"{self.host} rejected the credentials (401 "
                                       "Unauthorized); check the token or kubeconfig user")
                if resp.status not in RETRY_STATUSES:
                    raise HttpFault(resp.status, _status_reason(resp.status, resp.data))
                last = HttpFault(resp.status, _status_reason(resp.status, resp.data))
                retry_after = resp.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    delay = min(self.max_backoff, float(retry_after))
            if attempt < self.max_attempts:
                self.sleep(delay)
        raise HttpFault(last.status, f"{last.reason} (after {self.max_attempts} attempts)")

    def _fatal_get(self, path: str) -> dict[str, Any]:
        try:
            return self._get(path)
        except HttpFault as fault:
            if fault.status == 0:
                raise ClusterError(f"cannot read {self.host}{path}: {fault.reason}") from fault
            raise ClusterError(f"discovery {path} failed: {fault.reason}") from fault

    def discover(self, unreadable: list[Unreadable]) -> list[ApiResource]:
        """Listable resources of the preferred version of every group."""
        group_versions: list[tuple[str, str]] = []
        core = self._fatal_get("/api")
        group_versions += [("", str(v)) for v in core.get("versions") or []]
        groups = self._fatal_get("/apis")
        for group in groups.get("groups") or []:
            preferred = (group.get("preferredVersion") or {}).get("version")
            if not preferred and group.get("versions"):
                preferred = group["versions"][0].get("version")
            if preferred:
                group_versions.append((str(group.get("name", "")), str(preferred)))
        found: dict[KindRef, ApiResource] = {}
        for group, version in group_versions:
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                data = self._get(path)
            except HttpFault as fault:
                for ref in sorted(k for k in self.kinds if k.group == group):
                    unreadable.append(Unreadable(ref.group, ref.kind,
                                                 f"discovery failed: {fault.reason}"))
                continue
            for res in data.get("resources") or []:
                name = str(res.get("name", ""))
                if "/" in name or "list" not in (res.get("verbs") or []):
                    continue
                api = ApiResource(group, version, str(res.get("kind", "")), name,
                                  bool(res.get("namespaced")))
                found.setdefault(api.ref, api)
        for ref in sorted(self.kinds - found.keys()):
            if not any(u.ref == ref for u in unreadable):
                unreadable.append(Unreadable(ref.group, ref.kind, "kind not served by the cluster"))
        return [found[k] for k in sorted(found)]

    def list_all(self, api: ApiResource, selector: str = "") -> list[dict[str, Any]]:
        """Every object of one resource, page by page; raises HttpFault."""
        items: list[dict[str, Any]] = []
        token = ""
        restarted = False
        while True:
            query = {"limit": str(self.page_size)}
            if token:
                query["continue"] = token
            if selector:
                query["labelSelector"] = selector
            try:
                data = self._get(api.list_path, query)
            except HttpFault as fault:
                if fault.status == 410 and not restarted:  # continue token expired
                    items, token, restarted = [], "", True
                    continue
                raise
            for item in data.get("items") or []:
                if isinstance(item, dict):
                    item = dict(item)
                    item["apiVersion"] = api.api_version
                    item["kind"] = api.kind
                    items.append(protect(item, self.hasher))
            token = str((data.get("metadata") or {}).get("continue") or "")
            if not token:
                return items

    def read(self) -> Snapshot:
        """Discover, then list; returns objects, complete kinds and unreadable kinds."""
        snapshot = Snapshot(key_id=self.hasher.key_id, source=self.host, context=self.context)
        resources = self.discover(snapshot.unreadable)
        seen: set[tuple[str, str, str, str]] = set()
        for api in resources:
            wanted = api.ref in self.kinds
            if not wanted and (not self.sweep or api.ref in SWEEP_SKIP):
                continue
            selectors = [""] if wanted else list(OWNERSHIP_SELECTORS)
            try:
                for selector in selectors:
                    for obj in self.list_all(api, selector):
                        meta = obj.get("metadata") or {}
                        ident = (api.group, api.kind, str(meta.get("namespace", "")),
                                 str(meta.get("name", "")))
                        if ident not in seen:
                            seen.add(ident)
                            snapshot.objects.append(obj)
            except HttpFault as fault:
                target = snapshot.unreadable if wanted else snapshot.not_searched
                target.append(Unreadable(api.group, api.kind, fault.reason))
                continue
            if wanted:
                snapshot.read_kinds.add(api.ref)
        return snapshot


def _short(err: BaseException) -> str:
    text = str(err)
    return text if len(text) <= 200 else text[:197] + "..."


def _status_reason(status: int, body: bytes) -> str:
    names = {403: "forbidden", 404: "not found", 410: "gone", 429: "too many requests",
             500: "internal server error", 502: "bad gateway", 503: "service unavailable",
             504: "gateway timeout"}
    message = ""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            message = ": " + _short(data["message"])
    except ValueError:
        pass
    return f"HTTP {status} {names.get(status, 'error')}{message}"
