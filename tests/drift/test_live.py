"""The live source against a local HTTPS server on 127.0.0.1 that speaks the list API.

The server has a self-signed CA made in the test, checks a bearer token, serves discovery and
paginated lists (``limit``/``continue``) and returns 401/403/410/429/500 or stalls on demand.
It stops when the test ends (and after a safety timeout in any case).
"""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from checker.cli import cli
from checker.drift.live import LiveSource, load_configuration
from checker.drift.secrets import SecretHasher
from checker.drift.sources import FileSource, KindRef, write_snapshot
from checker.errors import ClusterError
from checker.options import DriftRunOptions
from checker.pipeline import drift as run_drift

TOKEN = "test-token-0123"
SECRET_VALUE = "s3cr3t-live-value"
HASHER = SecretHasher(b"live-test-key")
SAFETY_SECONDS = 60
DISCOVERY: dict[str, Any] = {
    "/api": {"kind": "APIVersions", "versions": ["v1"]},
    "/apis": {"kind": "APIGroupList", "groups": [
        {"name": "apps", "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
         "versions": [{"groupVersion": "apps/v1", "version": "v1"}]},
        {"name": "metrics.k8s.io", "preferredVersion": {"groupVersion": "metrics.k8s.io/v1beta1",
                                                        "version": "v1beta1"}},
    ]},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "namespaces", "namespaced": False, "kind": "Namespace",
         "verbs": ["get", "list", "watch"]},
        {"name": "configmaps", "namespaced": True, "kind": "ConfigMap",
         "verbs": ["get", "list", "watch"]},
        {"name": "secrets", "namespaced": True, "kind": "Secret",
         "verbs": ["get", "list", "watch"]},
        {"name": "pods", "namespaced": True, "kind": "Pod", "verbs": ["get", "list"]},
        {"name": "pods/log", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
    ]},
    "/apis/apps/v1": {"kind": "APIResourceList", "groupVersion": "apps/v1", "resources": [
        {"name": "deployments", "namespaced": True, "kind": "Deployment",
         "verbs": ["get", "list", "watch"]},
        {"name": "deployments/scale", "namespaced": True, "kind": "Scale",
         "verbs": ["get", "update"]},
    ]},
}


def deployment(name: str, image: str = "nginx:1.27") -> dict[str, Any]:
    """A Deployment as the API server returns it: with defaults and status."""
    container = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                 "terminationMessagePath": "/dev/termination-log",
                 "terminationMessagePolicy": "File", "resources": {}}
    pod = {"containers": [container], "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
           "schedulerName": "default-scheduler", "securityContext": {},
           "terminationGracePeriodSeconds": 30}
    return {"metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}",
                         "resourceVersion": "1", "generation": 1},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                         "maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod}},
            "status": {"replicas": 1}}


@dataclass
class State:
    """What the fake API server serves and what it saw."""

    lists: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    faults: dict[str, list[int]] = field(default_factory=dict)   # path -> statuses, consumed
    forbidden: set[str] = field(default_factory=set)
    stall: dict[str, float] = field(default_factory=dict)
    trickle: dict[str, float] = field(default_factory=dict)  # path -> seconds between bytes
    trickle_headers: set[str] = field(default_factory=set)    # ... of the headers, not body
    repeat_continue: set[str] = field(default_factory=set)    # paths whose token never moves
    requests: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_state() -> State:
    state = State()
    state.lists["/apis/apps/v1/deployments"] = [deployment(f"web-{i}") for i in range(5)]
    state.lists["/api/v1/secrets"] = [{
        "metadata": {"name": "db", "namespace": "shop",
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                                     json.dumps({"stringData": {"password": SECRET_VALUE}})}},
        "type": "Opaque",
        "data": {"password": base64.b64encode(SECRET_VALUE.encode()).decode()}}]
    state.lists["/api/v1/configmaps"] = [
        {"metadata": {"name": "owned", "namespace": "shop", "labels": {
            "kustomize.toolkit.fluxcd.io/name": "apps",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}, "data": {"a": "b"}},
        {"metadata": {"name": "not-owned", "namespace": "shop"}, "data": {}},
    ]
    state.lists["/api/v1/namespaces"] = [{"metadata": {"name": "shop"}}]
    state.lists["/api/v1/pods"] = []
    return state


class Handler(BaseHTTPRequestHandler):
    """Kubernetes-style GET handler over ``self.server.state``."""

    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None,
              ) -> None:
        raw = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)
        except (OSError, ssl.SSLError):  # the client gave up (timeout test)
            return

    def _status(self, code: int, message: str) -> None:
        self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                          "message": message, "code": code},
                   {"Retry-After": "1"} if code == 429 else None)

    def do_GET(self) -> None:
        state: State = self.server.state
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        with state.lock:
            state.requests.append(("GET", url.path, query))
            fault = state.faults.get(url.path, [])
            status = fault.pop(0) if fault else 200
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._status(401, "Unauthorized")
            return
        delay = state.stall.get(url.path)
        if delay:
            time.sleep(delay)
        if url.path in state.forbidden:
            self._status(403, f'secrets is forbidden: User "reader" cannot list {url.path}')
            return
        if status != 200:
            self._status(status, f"injected {status}")
            return
        if url.path in state.trickle:
            self._trickle(state.trickle[url.path], url.path in state.trickle_headers)
            return
        if url.path in DISCOVERY:
            self._send(200, DISCOVERY[url.path])
            return
        if url.path not in state.lists:
            self._status(404, "the server could not find the requested resource")
            return
        items = state.lists[url.path]
        selector = query.get("labelSelector", [""])[0]
        if selector:
            items = [i for i in items if selector in (i["metadata"].get("labels") or {})]
        given = query.get("continue", ["0"])[0]
        start = int(given) if given.isdigit() else 0
        limit = int(query.get("limit", ["500"])[0])
        page = items[start:start + limit]
        more = start + limit < len(items)
        token = str(start + limit) if more else ""
        if url.path in state.repeat_continue:
            page, token = items[:limit], "same-token"
        self._send(200, {"kind": "List", "apiVersion": "v1", "items": page,
                         "metadata": {"continue": token}})

    def _trickle(self, interval: float, headers: bool) -> None:
        """One byte every ``interval`` seconds, each within the client's read timeout."""
        body = json.dumps({"kind": "List", "items": [], "metadata": {}}).encode() * 1000
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Pad: {'p' * 5000}"
                f"\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        slow, fast = (head, body) if headers else (b"", head + body[:1])
        try:
            self.wfile.write(fast)
            self.wfile.flush()
            for index in range(len(slow if headers else body) - (0 if headers else 1)):
                time.sleep(interval)
                self.wfile.write((slow if headers else body[1:])[index:index + 1])
                self.wfile.flush()
        except (OSError, ssl.SSLError):  # the client gave up, as it should
            return

    def do_POST(self) -> None:
        self.server.state.requests.append(("POST", self.path, {}))
        self._status(405, "read-only test server")

    do_PUT = do_PATCH = do_DELETE = do_POST


@dataclass
class Pki:
    ca_pem: bytes
    cert_file: Path
    key_file: Path


def _pki(directory: Path, name: str) -> Pki:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Pki(ca.public_bytes(serialization.Encoding.PEM), cert_file, key_file)


@dataclass
class Cluster:
    url: str
    state: State
    kubeconfig: Path
    pki: Pki


def write_kubeconfig(path: Path, url: str, ca_pem: bytes, token: str = TOKEN) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {
            "server": url, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": "reader", "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "reader"}}],
    }))
    return path


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    pki = _pki(tmp_path, "server")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.state = make_state()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    safety = threading.Timer(SAFETY_SECONDS, server.shutdown)
    safety.daemon = True
    safety.start()
    url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        yield Cluster(url, server.state, write_kubeconfig(tmp_path / "kubeconfig", url,  # type: ignore[attr-defined]
                                                          pki.ca_pem), pki)
    finally:
        safety.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


KINDS = {KindRef("apps", "Deployment"), KindRef("", "Secret"), KindRef("", "Namespace")}


def source(cluster: Cluster, kinds: set[KindRef] = KINDS, **kwargs: Any) -> LiveSource:
    cfg = load_configuration(str(cluster.kubeconfig), "test", False)
    sleeps: list[float] = []
    kwargs.setdefault("sleep", sleeps.append)
    return LiveSource(cfg, kinds, HASHER, page_size=2, **kwargs)


def test_reads_with_pagination_hashing_and_ownership_sweep(cluster: Cluster) -> None:
    snap = source(cluster).read()
    names = sorted((o["kind"], o["metadata"]["name"]) for o in snap.objects)
    assert names == sorted([("Deployment", f"web-{i}") for i in range(5)] + [
        ("Secret", "db"), ("Namespace", "shop"), ("ConfigMap", "owned")])
    assert snap.read_kinds == KINDS
    assert snap.unreadable == []
    # discovery's scope of each kind is kept, for object identity
    assert snap.scopes[KindRef("", "Namespace")] is False
    assert snap.scopes[KindRef("apps", "Deployment")] is True
    pages = [q.get("continue", [""])[0] for m, p, q in cluster.state.requests
             if p == "/apis/apps/v1/deployments"]
    assert pages == ["", "2", "4"]
    assert all(m == "GET" for m, _, _ in cluster.state.requests)
    # other kinds are only listed by ownership label; pods are never swept
    selectors = {q.get("labelSelector", [""])[0] for _, p, q in cluster.state.requests
                 if p == "/api/v1/configmaps"}
    assert selectors == {"kustomize.toolkit.fluxcd.io/name", "app.kubernetes.io/instance"}
    assert not any(p == "/api/v1/pods" for _, p, _ in cluster.state.requests)
    secret = next(o for o in snap.objects if o["kind"] == "Secret")
    assert secret["data"]["password"].startswith("hmac-sha256:")
    assert "annotations" not in secret["metadata"] or not secret["metadata"]["annotations"]
    assert SECRET_VALUE not in json.dumps(snap.to_data())


def test_snapshot_file_round_trip_never_holds_secret_values(cluster: Cluster,
                                                           tmp_path: Path) -> None:
    snap = source(cluster).read()
    out = tmp_path / "snap.json"
    write_snapshot(snap, out)
    text = out.read_text()
    assert SECRET_VALUE not in text
    assert base64.b64encode(SECRET_VALUE.encode()).decode() not in text
    again = FileSource(out, HASHER).read()
    assert again.read_kinds == snap.read_kinds
    assert again.key_id == HASHER.key_id
    assert len(again.objects) == len(snap.objects)
    write_snapshot(again, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == text


def test_forbidden_kind_is_unreadable_not_missing(cluster: Cluster, tmp_path: Path) -> None:
    cluster.state.forbidden.update({"/api/v1/secrets", "/api/v1/configmaps"})
    snap = source(cluster).read()
    # a kind outside the desired state that cannot be searched is recorded apart
    assert [(u.kind, u.reason.split(":")[0]) for u in snap.not_searched] == [
        ("ConfigMap", "HTTP 403 forbidden")]
    cluster.state.forbidden.discard("/api/v1/configmaps")
    snap = source(cluster).read()
    assert [(u.kind, u.reason.split(":")[0]) for u in snap.unreadable] == [
        ("Secret", "HTTP 403 forbidden")]
    assert KindRef("", "Secret") not in snap.read_kinds
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: shop\n"
        "stringData:\n  password: x\n")
    report = run_drift(DriftRunOptions(paths=(repo,), root=repo, packs=("none",)),
                       source=source(cluster), hasher=HASHER)
    found = sorted((f.rule_id, f.resource) for f in report.findings)
    # the Secret is not called missing; the swept Flux-owned ConfigMap is unmanaged
    assert found == [("drift.unmanaged", "ConfigMap shop/owned"), ("drift.unreadable", "Secret")]
    unreadable = next(f for f in report.findings if f.rule_id == "drift.unreadable")
    assert "403" in unreadable.message and unreadable.location.path == "secret.yaml"


def test_429_and_5xx_are_retried_a_bounded_number_of_times(cluster: Cluster) -> None:
    cluster.state.faults["/apis/apps/v1/deployments"] = [429, 503]
    sleeps: list[float] = []
    snap = source(cluster, sleep=sleeps.append).read()
    assert len([o for o in snap.objects if o["kind"] == "Deployment"]) == 5
    assert sleeps[0] == 1.0  # Retry-After honoured
    cluster.state.requests.clear()
    cluster.state.faults["/api/v1/namespaces"] = [500] * 10
    snap = source(cluster, max_attempts=3).read()
    assert [u.kind for u in snap.unreadable] == ["Namespace"]
    assert "after 3 attempts" in snap.unreadable[0].reason
    assert sum(1 for _, p, _ in cluster.state.requests if p == "/api/v1/namespaces") == 3


def test_timeouts_are_bounded(cluster: Cluster) -> None:
    cluster.state.stall["/api/v1/namespaces"] = 1.0
    snap = source(cluster, timeout=0.2, max_attempts=2).read()
    assert [u.kind for u in snap.unreadable] == ["Namespace"]
    assert "timeout" in snap.unreadable[0].reason


def test_expired_continue_token_restarts_the_list_once(cluster: Cluster) -> None:
    cluster.state.faults["/apis/apps/v1/deployments"] = [200, 410]
    snap = source(cluster).read()
    assert len([o for o in snap.objects if o["kind"] == "Deployment"]) == 5


def test_unavailable_aggregated_group_does_not_stop_the_read(cluster: Cluster) -> None:
    snap = source(cluster).read()  # metrics.k8s.io discovery answers 404 here
    assert snap.read_kinds == KINDS


def test_wrong_token_is_a_clear_error(cluster: Cluster, tmp_path: Path) -> None:
    bad = write_kubeconfig(tmp_path / "bad", cluster.url, cluster.pki.ca_pem, "wrong")
    cfg = load_configuration(str(bad), None, False)
    with pytest.raises(ClusterError, match="401"):
        LiveSource(cfg, KINDS, HASHER).read()
    assert TOKEN not in str(cluster.state.requests)


def test_untrusted_certificate_is_a_tls_error(cluster: Cluster, tmp_path: Path) -> None:
    other = _pki(tmp_path, "other")
    bad = write_kubeconfig(tmp_path / "other-ca", cluster.url, other.ca_pem)
    cfg = load_configuration(str(bad), None, False)
    with pytest.raises(ClusterError, match="TLS"):
        LiveSource(cfg, KINDS, HASHER, max_attempts=1).read()


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pki = _pki(tmp_path, "gone")
    config = write_kubeconfig(tmp_path / "gone", f"https://127.0.0.1:{port}", pki.ca_pem)
    cfg = load_configuration(str(config), None, False)
    with pytest.raises(ClusterError, match="cannot reach"):
        LiveSource(cfg, KINDS, HASHER, max_attempts=2, backoff=0.01).read()


def test_bad_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="cannot load cluster credentials"):
        load_configuration(str(tmp_path / "absent"), None, False)


def test_cli_snapshot_then_drift_and_live_drift(cluster: Cluster, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_CHECKER_SECRET_KEY", "shared-ci-key")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "web.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-0\n  namespace: shop\n"
        "spec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: web-0\n"
        "  template:\n    metadata:\n      labels:\n        app: web-0\n    spec:\n"
        "      containers:\n        - name: web-0\n          image: nginx:1.26\n")
    (repo / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: shop\n"
        f"stringData:\n  password: {SECRET_VALUE}\n")
    out = tmp_path / "snap.json"
    runner = CliRunner()
    result = runner.invoke(cli, ["snapshot", str(repo), "--root", str(repo), "--out", str(out),
                                 "--kubeconfig", str(cluster.kubeconfig)])  # current context
    assert result.exit_code == 0, result.output
    assert SECRET_VALUE not in out.read_text()
    assert json.loads(out.read_text())["context"] == "test"
    common = [str(repo), "--root", str(repo), "--pack", "none", "--format", "json"]
    for how in (["--snapshot", str(out)],
                ["--kubeconfig", str(cluster.kubeconfig), "--context", "test"]):
        result = runner.invoke(cli, ["drift", *common, *how])
        assert result.exit_code == 1, result.output
        data = json.loads(result.stdout)
        found = sorted((f["rule"], f["location"]["line"], f["details"].get("field"))
                       for f in data["findings"])
        # the image differs; the Secret value in Git equals the live one under the shared key
        assert found == [
            ("drift.modified", 18, "spec.template.spec.containers[web-0].image"),
            ("drift.unmanaged", 1, None),  # the Flux-owned ConfigMap found by the sweep
        ]
        assert SECRET_VALUE not in result.output
    result = runner.invoke(cli, ["snapshot", "--out", str(out), "--kubeconfig",
                                 str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "cannot load cluster credentials" in result.output


def test_trickling_server_gives_up(cluster: Cluster) -> None:
    """A byte every 50 ms never trips the socket timeout; the request's own time does."""
    cluster.state.trickle["/api/v1/namespaces"] = 0.05
    started = time.monotonic()
    snap = source(cluster, timeout=0.6, max_attempts=2).read()
    assert time.monotonic() - started < 8
    assert [u.kind for u in snap.unreadable] == ["Namespace"]
    reason = snap.unreadable[0].reason
    assert "no complete response within 0.6 s" in reason and "after 2 attempts" in reason
    assert len([o for o in snap.objects if o["kind"] == "Deployment"]) == 5  # others still read


def test_trickling_headers_give_up_too(cluster: Cluster) -> None:
    """Slow headers (before any body) are bounded by the same watchdog."""
    cluster.state.trickle["/api/v1/namespaces"] = 0.05
    cluster.state.trickle_headers.add("/api/v1/namespaces")
    started = time.monotonic()
    snap = source(cluster, timeout=0.5, max_attempts=1).read()
    assert time.monotonic() - started < 6
    assert [u.kind for u in snap.unreadable] == ["Namespace"]
    assert "no complete response within 0.5 s" in snap.unreadable[0].reason


def test_repeated_continue_token_is_detected(cluster: Cluster) -> None:
    """A server that hands back the same token forever makes the kind unreadable."""
    cluster.state.repeat_continue.add("/apis/apps/v1/deployments")
    snap = source(cluster).read()
    assert [u.kind for u in snap.unreadable] == ["Deployment"]
    assert "continue token 'same-token' again" in snap.unreadable[0].reason
    pages = [p for _, p, _ in cluster.state.requests if p == "/apis/apps/v1/deployments"]
    assert len(pages) == 2  # the first page, then the repeat: no third request
    assert not any(o["kind"] == "Deployment" for o in snap.objects)


def test_overall_deadline_marks_the_rest_unreadable(cluster: Cluster) -> None:
    """When the whole read's time is up nothing more is requested; what is left says why."""
    def clock() -> float:  # one second passes with each list request the server answers
        return float(sum(1 for _, p, _ in cluster.state.requests
                         if p in cluster.state.lists))

    snap = source(cluster, deadline=3, clock=clock).read()
    # ConfigMaps are swept (2 requests), Namespaces listed (1): then the time is up
    assert snap.read_kinds == {KindRef("", "Namespace")}
    reasons = {u.kind: u.reason for u in snap.unreadable}
    assert set(reasons) == {"Secret", "Deployment"}
    assert all("overall deadline of 3 s was reached" in r for r in reasons.values())
    assert reasons["Deployment"].startswith("not read: ")
    listed = [p for _, p, _ in cluster.state.requests if p in cluster.state.lists]
    assert listed == ["/api/v1/configmaps", "/api/v1/configmaps", "/api/v1/namespaces"]


def test_deadline_in_discovery_is_a_clear_error(cluster: Cluster) -> None:
    """No time left before discovery finishes: a ClusterError, not an empty snapshot."""
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    with pytest.raises(ClusterError, match="overall deadline of 2 s"):
        source(cluster, deadline=2, clock=clock).read()
