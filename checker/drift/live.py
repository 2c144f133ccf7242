"""Read a live cluster through the Kubernetes API, read-only.

Configuration (kubeconfig with a context, or the in-cluster service account) is loaded by the
``kubernetes`` client; requests go through the client's TLS-configured connection pool. Only
``get`` and ``list`` are used: discovery (``/api``, ``/apis``), then one paginated list per kind
(``limit``/``continue``). Kinds present in the desired state are listed completely; every other
listable kind is listed with label selectors for the GitOps ownership labels.

Faults are results, not crashes: 401 and an unreachable or untrusted server stop the read with
a ``ClusterError``; 403, 404 and persistent 429/5xx/timeouts on one kind mark that kind
unreadable; 429 and 5xx are retried a bounded number of times, honouring ``Retry-After``.

Everything is bounded. Each request, from connecting to the last byte of the body, has
``timeout`` seconds: a watchdog shuts the connection's socket down when they are up, so a
server that trickles bytes (each within the socket's read timeout) still gives up. A response
larger than ``max_bytes`` is refused. A list whose server repeats a ``continue`` token is
unreadable (it would never end). The whole read has ``deadline`` seconds: when they are up,
the kinds not yet read are unreadable, with that reason.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import weakref
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
DEADLINE_SECONDS = 600.0
MAX_RESPONSE_BYTES = 512 * 1024 * 1024


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


class DeadlineReached(HttpFault):
    """The whole read's deadline is up: nothing more is requested."""


class TooSlow(HttpFault):
    """No complete response within the request's time (retried like a timeout)."""


class _Watchdog:
    """Shuts down the sockets of the source's connections when a request's time is up.

    The socket read timeout bounds one ``recv``; a server that sends a byte just within it,
    again and again, would hold a request open forever. Shutting the socket down from this
    timer ends the blocked read at once (the reader sees the connection closed).
    """

    def __init__(self) -> None:
        self.connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self.fired = False
        self._timer: threading.Timer | None = None

    def track(self, pool: Any) -> None:
        """Record every connection ``pool`` (a urllib3 connection pool) opens from now on."""
        if getattr(pool, "_gitops_checker_watched", False):
            return
        opener = pool._new_conn  # urllib3's one place where connections are made

        def new_conn() -> Any:
            conn = opener()
            self.connections.add(conn)
            return conn

        pool._new_conn = new_conn
        pool._gitops_checker_watched = True

    def _fire(self) -> None:
        self.fired = True
        for conn in list(self.connections):
            sock = getattr(conn, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def start(self, seconds: float) -> None:
        """Arm for one request."""
        self.fired = False
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        """Disarm after the request."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


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
                 deadline: float = DEADLINE_SECONDS, max_bytes: int = MAX_RESPONSE_BYTES,
                 sweep: bool = True, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from kubernetes.client.rest import RESTClientObject

        self.cfg = configuration
        self.kinds = set(kinds)
        self.hasher = hasher
        self.context = context
        self.page_size = page_size
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.request_seconds = timeout
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.sweep = sweep
        self.sleep = sleep
        self.clock = clock
        self.host = str(configuration.host).rstrip("/")
        self.pool = RESTClientObject(configuration).pool_manager
        self.requests = 0
        self._ends = clock() + deadline
        self._watchdog = _Watchdog()

    def _remaining(self) -> float:
        """Seconds left of the whole read; DeadlineReached when none."""
        left = self._ends - self.clock()
        if left <= 0:
            raise DeadlineReached(0, f"the live read's overall deadline of {self.deadline:g} s "
                                     "was reached")
        return left

    def _fetch(self, url: str, query: dict[str, str] | None, seconds: float) -> tuple[int, Any,
                                                                                    bytes]:
        """One GET bounded as a whole: status, headers and body within ``seconds``."""
        self._watchdog.track(self.pool.connection_from_url(url))
        timeout = urllib3.Timeout(connect=min(seconds, 10.0), read=seconds)
        started = self.clock()
        self._watchdog.start(seconds)
        try:
            resp = self.pool.request("GET", url, fields=query, headers=self._headers(),
                                     timeout=timeout, retries=False, preload_content=False)
            try:
                chunks: list[bytes] = []
                size = 0
                while True:
                    chunk = resp.read1(65536)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise HttpFault(0, f"response larger than {self.max_bytes} bytes")
                    chunks.append(chunk)
                complete = resp.length_remaining in (None, 0)
            finally:
                if self._watchdog.fired or size > self.max_bytes:
                    resp.close()  # the connection is in an unknown state: never reuse it
                resp.release_conn()
        except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError,
                urllib3.exceptions.SSLError, OSError) as err:
            if self._watchdog.fired:
                raise TooSlow(0, f"timeout: no complete response within {seconds:g} s "
                                 "(the server sends too slowly)") from err
            raise
        finally:
            self._watchdog.stop()
        if self._watchdog.fired or not complete:
            raise TooSlow(0, f"timeout: no complete response within {seconds:g} s (the server "
                             f"sends too slowly; {size} bytes in "
                             f"{self.clock() - started:.1f} s)")
        return resp.status, resp.headers, b"".join(chunks)

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
            seconds = min(self.request_seconds, self._remaining())
            self.requests += 1
            try:
                status, resp_headers, body = self._fetch(url, query, seconds)
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
            except TooSlow as fault:
                last = fault
            else:
                if status == 200:
                    try:
                        data = json.loads(body)
                    except ValueError as err:
                        raise HttpFault(200, "response is not JSON") from err
                    if not isinstance(data, dict):
                        raise HttpFault(200, "response is not a JSON object")
                    return data
                if status == 401:
                    raise ClusterError(f"{self.host} rejected the credentials (401 "
                                       "Unauthorized); check the token or kubeconfig user")
                if status not in RETRY_STATUSES:
                    raise HttpFault(status, _status_reason(status, body))
                last = HttpFault(status, _status_reason(status, body))
                retry_after = resp_headers.get("Retry-After", "")
                if retry_after.isdigit():
                    delay = min(self.max_backoff, float(retry_after))
            if attempt < self.max_attempts:
                self.sleep(min(delay, self._remaining()))
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
            except DeadlineReached as fault:
                raise ClusterError(f"discovery of {self.host} did not finish: "
                                   f"{fault.reason}") from fault
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
        seen: set[str] = set()
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
                    seen.clear()
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
            if token in seen:
                raise HttpFault(0, f"the server sent the continue token {token[:60]!r} "
                                   f"again after {len(items)} objects: the list would never end")
            seen.add(token)

    def read(self) -> Snapshot:
        """Discover, then list; returns objects, complete kinds and unreadable kinds."""
        self._ends = self.clock() + self.deadline
        snapshot = Snapshot(key_id=self.hasher.key_id, source=self.host, context=self.context)
        resources = self.discover(snapshot.unreadable)
        snapshot.scopes = {api.ref: api.namespaced for api in resources}
        seen: set[tuple[str, str, str, str]] = set()
        expired: DeadlineReached | None = None
        for api in resources:
            wanted = api.ref in self.kinds
            if not wanted and (not self.sweep or api.ref in SWEEP_SKIP):
                continue
            if expired is not None:
                target = snapshot.unreadable if wanted else snapshot.not_searched
                target.append(Unreadable(api.group, api.kind, f"not read: {expired.reason}"))
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
                if isinstance(fault, DeadlineReached):
                    expired = fault
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
