"""Remote charts: an HTTP chart repository and an OCI registry, both real, on loopback.

The chart repository is Python's http.server serving an ``index.yaml`` and packaged ``.tgz``
archives that the test builds with the Helm SDK (``package``, ``repo_index_generate``). The OCI
registry is Debian's ``docker-registry`` (the CNCF distribution registry); the chart is pushed
to it with the Helm SDK's ``push``. Loopback is reachable only inside
``helmfetch.allow_loopback_for_tests()``; the tests also show it is refused without it.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from checker.config import load_config
from checker.errors import ConfigError
from checker.load import helm, helmfetch
from checker.model import Resource
from checker.pipeline import load_cluster
from tests.conftest import FIXTURES

helm_python = pytest.importorskip("helm_python")

FIXTURES = FIXTURES / "helm"
REGISTRY_BIN = shutil.which("docker-registry") or shutil.which("registry")
CONTAINER = ("spec", "template", "spec", "containers", 0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def package(tmp: Path, version: str, privileged_default: bool = False) -> Path:
    """The web chart packaged at ``version`` (its default privileged setting chosen)."""
    src = tmp / f"src-{version}" / "web"
    shutil.copytree(FIXTURES / "web", src)
    meta = yaml.safe_load((src / "Chart.yaml").read_text(encoding="utf-8"))
    meta["version"] = version
    (src / "Chart.yaml").write_text(yaml.safe_dump(meta), encoding="utf-8")
    if privileged_default:
        (src / "values.yaml").write_text(
            (src / "values.yaml").read_text(encoding="utf-8").replace(
                "runAsNonRoot: true", "privileged: true"), encoding="utf-8")
    out = tmp / "dist"
    out.mkdir(exist_ok=True)
    return Path(helm_python.package(str(src), destination=str(out)))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def chart_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:PORT`` serving a chart repository with web 1.0.0, 1.1.0 and 2.0.0-rc.1."""
    tmp = tmp_path_factory.mktemp("chartrepo")
    package(tmp, "1.0.0")
    package(tmp, "1.1.0", privileged_default=True)
    package(tmp, "2.0.0-rc.1")
    helm_python.repo_index_generate(str(tmp / "dist"))
    handler = functools.partial(_Quiet, directory=str(tmp / "dist"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path_factory.mktemp("helm-cache")
    monkeypatch.setenv(helmfetch.CACHE_ENV, str(folder))
    return folder


def write_repo(root: Path, source: str, release_spec: str, allowed: list[str]) -> None:
    (root / "apps").mkdir(parents=True, exist_ok=True)
    (root / "apps" / "source.yaml").write_text(source.lstrip(), encoding="utf-8")
    (root / "apps" / "release.yaml").write_text(f"""\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: apps
spec:
  interval: 10m
{release_spec}""", encoding="utf-8")
    (root / ".gitops-checker.yaml").write_text(
        yaml.safe_dump({"helm": {"allowedHosts": allowed}}), encoding="utf-8")


def http_release(version: str) -> str:
    return f"""\
  chart:
    spec:
      chart: web
      version: "{version}"
      sourceRef:
        kind: HelmRepository
        name: charts
  values:
    replicas: 2
"""


def http_source(host: str) -> str:
    return f"""
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: charts
  namespace: apps
spec:
  interval: 1h
  url: http://{host}
"""


def load(root: Path) -> tuple[dict[str, Resource], helm.LoadResult]:
    config = load_config(root)
    loaded = load_cluster(config.clusters[0], root, config.helm)
    return {r.key: r for r in loaded.resources}, loaded


def not_checked(loaded: helm.LoadResult) -> list[str]:
    return [f.message for f in loaded.findings if f.rule_id == "input.not-checked"]


def test_http_repository_chart_is_fetched_and_rendered(chart_repo: str, cache: Path,
                                                       tmp_path: Path) -> None:
    write_repo(tmp_path, http_source(chart_repo), http_release(">=1.0.0"), [chart_repo])
    with helmfetch.allow_loopback_for_tests():
        objects, loaded = load(tmp_path)
    assert not_checked(loaded) == []
    deploy = objects["apps/v1/Deployment/apps/web-web"]
    # >=1.0.0 picks 1.1.0 (2.0.0-rc.1 is a pre-release), whose default is privileged: true
    container = deploy.body["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"] == {"privileged": True}
    assert deploy.body["spec"]["replicas"] == 2
    # the chart is not in the repository: objects point at the HelmRelease, values at its lines
    assert str(deploy.location) == "apps/release.yaml:1"
    assert str(deploy.locate(("spec", "replicas"))) == "apps/release.yaml:16"
    (entry,) = [c for c in loaded.coverage if c.kind == "helm"]
    assert entry.state == "rendered"
    assert f"chart web 1.1.0 from http://{chart_repo}" in entry.reason
    assert len(list(cache.glob("*.tgz"))) == 1


def test_exact_version_comes_from_the_cache_without_network(
        chart_repo: str, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_repo(tmp_path, http_source(chart_repo), http_release("1.0.0"), [chart_repo])
    with helmfetch.allow_loopback_for_tests():
        first, _ = load(tmp_path)
    assert "apps/v1/Deployment/apps/web-web" in first
    assert len(list(cache.glob("*.tgz"))) == 1

    def no_network(*_args: object, **_kwargs: object) -> helmfetch.Response:
        raise helmfetch.FetchRefused("the network was used although the chart is cached")

    monkeypatch.setattr(helmfetch.Fetcher, "get", no_network)
    helm._render_cache.clear()
    with helmfetch.allow_loopback_for_tests():
        again, loaded = load(tmp_path)
    assert not_checked(loaded) == []
    assert again["apps/v1/Deployment/apps/web-web"].body == \
        first["apps/v1/Deployment/apps/web-web"].body
    # a range needs the index, so without the network it is reported, not guessed
    write_repo(tmp_path, http_source(chart_repo), http_release("1.x"), [chart_repo])
    with helmfetch.allow_loopback_for_tests():
        _objects, loaded = load(tmp_path)
    assert [m.rsplit(": ", 1)[1] for m in not_checked(loaded)] == [
        "the network was used although the chart is cached"]


def test_loopback_is_refused_without_the_test_override(chart_repo: str, cache: Path,
                                                       tmp_path: Path) -> None:
    write_repo(tmp_path, http_source(chart_repo), http_release("1.0.0"), [chart_repo])
    objects, loaded = load(tmp_path)
    assert not any(r.kind == "Deployment" for r in objects.values())
    (message,) = not_checked(loaded)
    assert message == ("HelmRelease apps/web was not checked: the chart was not fetched: "
                       "127.0.0.1 resolves to a loopback, private or link-local address "
                       "(127.0.0.1); such addresses are never contacted")
    assert list(cache.glob("*")) == []


def test_host_not_allowed_is_not_checked(chart_repo: str, cache: Path,
                                         tmp_path: Path) -> None:
    write_repo(tmp_path, http_source(chart_repo), http_release("1.0.0"), ["charts.example.com"])
    with helmfetch.allow_loopback_for_tests():
        _objects, loaded = load(tmp_path)
    (finding,) = [f for f in loaded.findings if f.rule_id == "input.not-checked"]
    assert finding.message.endswith("host 127.0.0.1 is not in helm.allowedHosts of the "
                                    "trusted config")
    assert str(finding.location) == "apps/release.yaml:1"


def test_no_version_matches(chart_repo: str, cache: Path, tmp_path: Path) -> None:
    write_repo(tmp_path, http_source(chart_repo), http_release("3.x"), [chart_repo])
    with helmfetch.allow_loopback_for_tests():
        _objects, loaded = load(tmp_path)
    (message,) = not_checked(loaded)
    assert "no version of 'web' in" in message and "matches '3.x'" in message


def test_the_config_cannot_open_loopback(tmp_path: Path) -> None:
    (tmp_path / ".gitops-checker.yaml").write_text(
        "helm:\n  allowedHosts: [127.0.0.1]\n  allowLoopback: true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="allowLoopback"):
        load_config(tmp_path)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.0.5",
                                     "169.254.169.254", "::1", "fe80::1", "fd00::1",
                                     "::ffff:127.0.0.1", "0.0.0.0", "100.64.0.1", "224.0.0.1"])
def test_internal_addresses_are_never_public(address: str) -> None:
    assert not helmfetch.is_public(address)


def test_public_addresses_and_host_patterns() -> None:
    assert helmfetch.is_public("140.82.112.3")
    assert helmfetch.is_public("2606:4700::1111")
    allowed = ["ghcr.io", "*.example.org", "charts.local:8443"]
    assert helmfetch.host_allowed("GHCR.io", None, allowed)
    assert helmfetch.host_allowed("a.b.example.org", 443, allowed)
    assert not helmfetch.host_allowed("example.org", None, allowed)
    assert not helmfetch.host_allowed("evilghcr.io", None, allowed)
    assert helmfetch.host_allowed("charts.local", 8443, allowed)
    assert not helmfetch.host_allowed("charts.local", 443, allowed)


@pytest.mark.parametrize(("constraint", "expected"), [
    ("", "1.10.0"), ("*", "1.10.0"), ("1.2.0", "1.2.0"), ("1.2.x", "1.2.3"),
    (">=1.0.0 <1.5.0", "1.2.3"), (">=1.0.0, <1.5.0", "1.2.3"), ("^1.2.0", "1.10.0"),
    ("~1.2.0", "1.2.3"), ("<1.0.0 || >=2.0.0-0", "2.0.0-rc.1"), ("3.x", None),
    (">=2.0.0-rc.0", "2.0.0-rc.1"),
])
def test_version_constraints(constraint: str, expected: str | None) -> None:
    versions = ["1.2.0", "1.2.3", "1.10.0", "2.0.0-rc.1", "0.9.0"]
    assert helmfetch.pick_version(versions, constraint) == expected


# ---- OCI ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:PORT``: a distribution registry (anonymous) holding charts/web 1.0.0, 1.1.0."""
    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    tmp = tmp_path_factory.mktemp("oci")
    port = free_port()
    (tmp / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n", encoding="utf-8")
    log = (tmp / "registry.log").open("wb")
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(tmp / "config.yml")],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):  # bounded wait for the server to listen
            if proc.poll() is not None:
                raise RuntimeError((tmp / "registry.log").read_text(errors="replace"))
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        else:
            raise RuntimeError("registry did not start")
        for version, privileged in (("1.0.0", False), ("1.1.0", True)):
            archive = package(tmp, version, privileged_default=privileged)
            helm_python.push(str(archive), f"oci://127.0.0.1:{port}/charts", plain_http=True)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_oci_helm_repository(oci_registry: str, cache: Path, tmp_path: Path) -> None:
    source = f"""
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: charts
  namespace: apps
spec:
  type: oci
  insecure: true
  url: oci://{oci_registry}/charts
"""
    write_repo(tmp_path, source, http_release("1.0.x"), [oci_registry])
    with helmfetch.allow_loopback_for_tests():
        objects, loaded = load(tmp_path)
    assert not_checked(loaded) == []
    container = objects["apps/v1/Deployment/apps/web-web"].body["spec"]["template"]["spec"][
        "containers"][0]
    assert container["securityContext"] == {"runAsNonRoot": True}  # 1.0.0, not 1.1.0


def test_oci_repository_chart_ref(oci_registry: str, cache: Path, tmp_path: Path) -> None:
    source = f"""
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: web-chart
  namespace: apps
spec:
  interval: 1h
  insecure: true
  url: oci://{oci_registry}/charts/web
  ref:
    semver: ">=1.0.0"
  layerSelector:
    mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip
    operation: copy
"""
    spec = """\
  chartRef:
    kind: OCIRepository
    name: web-chart
  values:
    securityContext:
      privileged: false
"""
    write_repo(tmp_path, source, spec, [oci_registry])
    with helmfetch.allow_loopback_for_tests():
        objects, loaded = load(tmp_path)
    assert not_checked(loaded) == []
    deploy = objects["apps/v1/Deployment/apps/web-web"]
    container = deploy.body["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"] == {"privileged": False}
    assert str(deploy.locate((*CONTAINER, "securityContext", "privileged"))) == \
        "apps/release.yaml:13"
    (entry,) = [c for c in loaded.coverage if c.kind == "helm"]
    assert f"chart oci://{oci_registry}/charts/web:1.1.0" in entry.reason


def test_oci_without_override_is_refused(oci_registry: str, cache: Path,
                                         tmp_path: Path) -> None:
    source = f"""
apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: OCIRepository
metadata:
  name: web-chart
  namespace: apps
spec:
  url: oci://{oci_registry}/charts/web
  ref:
    tag: 1.0.0
"""
    write_repo(tmp_path, source, "  chartRef:\n    kind: OCIRepository\n    name: web-chart\n",
               [oci_registry])
    _objects, loaded = load(tmp_path)
    (message,) = not_checked(loaded)
    assert "resolves to a loopback, private or link-local address" in message
