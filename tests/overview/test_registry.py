"""OCI distribution ``tags/list`` client against a real registry server started by the test.

The server is Debian's ``docker-registry`` (the CNCF distribution registry), bound to
127.0.0.1 with a temporary config and htpasswd (Basic) authentication; tags are pushed with raw
distribution API calls (blob upload + manifest). The Bearer token exchange needs a token
service that the packaged registry cannot be given without signing keys, so that flow is
tested against a small loopback server written here.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.overview.registry import (
    Credentials,
    RegistryClient,
    RegistryError,
    base_url,
    next_link,
)

USER, PASSWORD = "ci-reader", "s3cr3t-pass"
REGISTRY_BIN = shutil.which("docker-registry") or shutil.which("registry")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for htpasswd: libxcrypt through ``crypt`` (Python <= 3.12) or htpasswd."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        hashed = crypt.crypt(password, "$2b$05$" + "abcdefghijklmnopqrstuu")
        if hashed and hashed.startswith("$2b$"):
            return hashed
    except ImportError:
        pass
    if shutil.which("htpasswd"):
        out = subprocess.run(["htpasswd", "-nbB", USER, password], capture_output=True,
                             text=True, check=True).stdout
        return out.strip().split(":", 1)[1]
    pytest.skip("no bcrypt implementation (crypt module or htpasswd) to configure the registry")


def basic() -> str:
    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def call(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, data=body if method != "GET" else None,
                                     method=method, headers={"Authorization": basic(),
                                                             **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers.items())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items())


def push_blob(base: str, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, headers = call("POST", f"{base}/v2/{repo}/blobs/uploads/")
    assert status == 202, status
    location = urllib.parse.urljoin(base, headers["Location"])
    sep = "&" if "?" in location else "?"
    status, _ = call("PUT", f"{location}{sep}digest={digest}", data,
                     {"Content-Type": "application/octet-stream"})
    assert status == 201, status
    return digest


def push_tag(base: str, repo: str, tag: str) -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
    layer = f"layer of {tag}".encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": push_blob(base, repo, config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": push_blob(base, repo, layer), "size": len(layer)}],
    }
    status, _ = call("PUT", f"{base}/v2/{repo}/manifests/{tag}", json.dumps(manifest).encode(),
                     {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert status == 201, status


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    tmp = tmp_path_factory.mktemp("registry")
    port = free_port()
    (tmp / "htpasswd").write_text(f"{USER}:{bcrypt_hash(PASSWORD)}\n", encoding="utf-8")
    (tmp / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  htpasswd:\n    realm: test-registry\n    path: {tmp / 'htpasswd'}\n",
        encoding="utf-8")
    log = (tmp / "registry.log").open("wb")
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(tmp / "config.yml")],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):  # bounded wait for the server to listen
            if proc.poll() is not None:
                raise RuntimeError((tmp / "registry.log").read_text(errors="replace"))
            try:
                status, _ = call("GET", f"{base}/v2/")
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("registry did not start")
        for tag in ("1.2.0", "1.10.0", "1.9.3", "2.0.0-rc.1", "latest", "1.10.0-alpine",
                    "1.2.0-alpine", "sha-1f2e3d"):
            push_tag(base, "team/app", tag)
        push_tag(base, "team/other", "v3")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_lists_tags_with_basic_credentials(registry: str) -> None:
    client = RegistryClient(Credentials(username=USER, password=PASSWORD))
    assert client.tags(registry, "team/app") == sorted(
        ["1.2.0", "1.10.0", "1.9.3", "2.0.0-rc.1", "latest", "1.10.0-alpine", "1.2.0-alpine",
         "sha-1f2e3d"])


def test_small_page_size_still_lists_every_tag(registry: str) -> None:
    # distribution 2.8 ignores ``n`` on tags/list (pagination came with v3); the Link-following
    # itself is exercised against the loopback server below.
    client = RegistryClient(Credentials(username=USER, password=PASSWORD), page_size=3)
    assert len(client.tags(registry, "team/app")) == 8


def test_wrong_or_missing_credentials_are_errors_without_secrets(registry: str) -> None:
    with pytest.raises(RegistryError) as err:
        RegistryClient(Credentials(username=USER, password="wrong")).tags(registry, "team/app")
    assert "HTTP 401 (unauthorized)" in str(err.value)
    assert "wrong" not in str(err.value)
    with pytest.raises(RegistryError, match="HTTP 401"):
        RegistryClient().tags(registry, "team/app")
    assert "s3cr3t" not in repr(Credentials(username=USER, password=PASSWORD))


def test_unknown_repository(registry: str) -> None:
    with pytest.raises(RegistryError, match="HTTP 404 \\(repository not found\\)"):
        RegistryClient(Credentials(username=USER, password=PASSWORD)).tags(registry, "no/such")


def test_images_command_flags_outdated_from_registry(registry: str, tmp_path: Path) -> None:
    (tmp_path / "deploy.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app, namespace: team}\n"
        "spec:\n  template:\n    spec:\n      containers:\n"
        f"        - name: app\n          image: {registry}/team/app:1.9.3\n"
        f"        - name: side\n          image: {registry}/team/app:1.2.0-alpine\n"
        f"        - name: other\n          image: {registry}/team/other:v3\n",
        encoding="utf-8")
    env = {"GITOPS_CHECKER_REGISTRY_USERNAME": USER, "GITOPS_CHECKER_REGISTRY_PASSWORD": PASSWORD}
    result = CliRunner().invoke(cli, ["images", str(tmp_path), "--root", str(tmp_path),
                                      "--registry", registry, "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    data = json.loads(result.output)
    by_container = {u["container"]: u for u in data["images"]}
    assert by_container["app"]["newestInRegistry"] == "1.10.0"  # not 2.0.0-rc.1, not alpine
    assert "outdated" in by_container["app"]["flags"]
    assert by_container["side"]["newestInRegistry"] == "1.10.0-alpine"
    assert by_container["other"]["newestInRegistry"] == ""
    assert "outdated" not in by_container["other"]["flags"]
    assert data["registryTags"][f"{registry}/team/other"] == ["v3"]
    # Without credentials the registry refuses: a tool error (exit 2), never "not outdated".
    denied = CliRunner().invoke(cli, ["images", str(tmp_path), "--root", str(tmp_path),
                                      "--registry", registry, "--format", "json"], env={
        "GITOPS_CHECKER_REGISTRY_USERNAME": "", "GITOPS_CHECKER_REGISTRY_PASSWORD": ""})
    assert denied.exit_code == 2
    assert "HTTP 401" in denied.stderr


# --- Bearer token flow against a loopback server --------------------------------------------

class _TokenRegistry(http.server.BaseHTTPRequestHandler):
    """Answers like Docker Hub / GHCR: 401 + Bearer challenge, token endpoint, paged tags."""

    seen: list[dict[str, Any]] = []  # noqa: RUF012 - per-test log of requests

    def log_message(self, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        host = self.headers["Host"]
        type(self).seen.append({"path": self.path, "auth": self.headers.get("Authorization")})
        if self.path.startswith("/token"):
            if self.headers.get("Authorization") != basic():
                self.send_response(401)
                self.end_headers()
                return
            self._json({"token": "tok-" + self.path.split("scope=")[1].split("&")[0]})
            return
        if self.headers.get("Authorization") != "Bearer tok-repository%3Ateam%2Fapp%3Apull":
            self.send_response(401)
            self.send_header("WWW-Authenticate",
                             f'Bearer realm="http://{host}/token",service="test",'
                             'scope="repository:team/app:pull"')
            self.end_headers()
            return
        if "last=" in self.path:
            self._json({"name": "team/app", "tags": ["v1.0.10", "v1.0.9"]})
        else:
            self._json({"name": "team/app", "tags": ["v1.0.1", "v1.0.2"]},
                       {"Link": '</v2/team/app/tags/list?n=2&last=v1.0.2>; rel="next"'})

    def _json(self, data: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def token_registry() -> Iterator[str]:
    _TokenRegistry.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_bearer_challenge_is_exchanged_for_a_scoped_token(token_registry: str) -> None:
    client = RegistryClient(Credentials(username=USER, password=PASSWORD))
    assert client.tags(token_registry, "team/app") == ["v1.0.1", "v1.0.10", "v1.0.2", "v1.0.9"]
    token_calls = [s for s in _TokenRegistry.seen if s["path"].startswith("/token")]
    assert len(token_calls) == 1  # token cached for the second page
    assert "scope=repository%3Ateam%2Fapp%3Apull" in token_calls[0]["path"]
    assert "service=test" in token_calls[0]["path"]
    assert _TokenRegistry.seen[0]["auth"] == basic()
    assert _TokenRegistry.seen[-1]["auth"] == "Bearer tok-repository%3Ateam%2Fapp%3Apull"


def test_page_limit_is_enforced(token_registry: str) -> None:
    client = RegistryClient(Credentials(username=USER, password=PASSWORD), max_pages=1)
    with pytest.raises(RegistryError, match="more than 1 pages"):
        client.tags(token_registry, "team/app")


def test_images_command_against_a_token_registry(token_registry: str, tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: team}\nspec:\n"
        f"  containers:\n    - name: app\n      image: {token_registry}/team/app:v1.0.2\n",
        encoding="utf-8")
    env = {"GITOPS_CHECKER_REGISTRY_USERNAME": USER, "GITOPS_CHECKER_REGISTRY_PASSWORD": PASSWORD}
    result = CliRunner().invoke(cli, ["images", str(tmp_path), "--root", str(tmp_path),
                                      "--registry", token_registry, "--format", "json",
                                      "--fail-on", "warning"], env=env)
    assert result.exit_code == 1, result.output  # outdated is a warning
    use = json.loads(result.stdout)["images"][0]
    assert use["newestInRegistry"] == "v1.0.10"
    assert use["flags"] == ["not-pinned", "outdated"]
    assert PASSWORD not in result.output


def test_static_bearer_token_is_sent_as_is(token_registry: str) -> None:
    client = RegistryClient(Credentials(token="tok-repository%3Ateam%2Fapp%3Apull"))
    assert len(client.tags(token_registry, "team/app")) == 4
    assert not any(s["path"].startswith("/token") for s in _TokenRegistry.seen)


def test_token_service_refusal_is_an_error(token_registry: str) -> None:
    with pytest.raises(RegistryError, match=r"token service .* answered HTTP 401"):
        RegistryClient().tags(token_registry, "team/app")


def test_credentials_never_go_to_a_plain_http_realm(monkeypatch: pytest.MonkeyPatch) -> None:
    client = RegistryClient(Credentials(username=USER, password=PASSWORD))
    sent: list[str] = []

    def fake_open(url: str, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        sent.append(url)
        return 401, {"WWW-Authenticate": 'Bearer realm="http://auth.example.com/token"'}, b""

    monkeypatch.setattr(client, "_open", fake_open)
    with pytest.raises(RegistryError, match="is not HTTPS; credentials are not sent"):
        client.tags("registry.example.com", "team/app")
    assert sent == ["https://registry.example.com/v2/team/app/tags/list?n=1000"]


def test_urls_and_links() -> None:
    assert base_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert base_url("localhost:5000") == "http://localhost:5000"
    assert base_url("ghcr.io") == "https://ghcr.io"
    assert base_url("docker.io") == "https://registry-1.docker.io"
    assert base_url("http://mirror.internal:5000/") == "http://mirror.internal:5000"
    assert next_link('</v2/a/tags/list?n=2&last=b>; rel="next"', "http://h:1/v2/a/tags/list") \
        == "http://h:1/v2/a/tags/list?n=2&last=b"
    assert next_link(None, "http://h") is None
    assert next_link('<x>; rel="prev"', "http://h") is None
