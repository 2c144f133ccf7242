"""Fetch remote Helm charts (HTTP chart repositories and OCI registries) safely, into a cache.

Remote charts are named by repository content (a ``HelmRepository``, an ``OCIRepository``, a
kustomization's ``helmCharts:``), which is untrusted. So:

- only hosts listed in the trusted config (``helm.allowedHosts`` in ``.gitops-checker.yaml``)
  are contacted; ``*.example.com`` allows the subdomains of example.com;
- each host name is resolved here, every address it resolves to must be a public one (not
  loopback, private, link-local, multicast, reserved or unspecified), and the connection is made
  to that checked address (TLS still verifies the certificate against the host name), so a DNS
  answer cannot switch to an internal address between the check and the connection;
- redirects and token services are followed only to hosts that pass the same checks;
- responses are size- and time-bounded, and a chart archive is checked against the digest the
  index or the registry manifest gives.

The fetching is done here, not by Helm, so that these checks hold for the ``helm`` binary and
for the SDK alike; Helm then renders the archive from the cache folder. The cache folder is
``$GITOPS_CHECKER_HELM_CACHE`` or ``~/.cache/gitops-checker/helm``: a workflow keeps it with
``actions/cache``. A chart whose version is exact is taken from the cache without any network.

Loopback servers used by the tests are reachable only through :func:`allow_loopback_for_tests`,
a context manager called from Python; nothing in a repository, the config or the environment
can turn it on.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import ipaddress
import json
import os
import re
import socket
import ssl
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from checker.load.yamlfile import SAFE_LOADER

CACHE_ENV = "GITOPS_CHECKER_HELM_CACHE"
TIMEOUT_SECONDS = 30
MAX_INDEX_BYTES = 32 * 1024 * 1024
MAX_CHART_BYTES = 64 * 1024 * 1024
MAX_REDIRECTS = 5
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json, "
                  "application/vnd.docker.distribution.manifest.v2+json")

_LOOPBACK_FOR_TESTS: list[bool] = [False]


class FetchRefused(Exception):
    """A chart was not fetched; the message says why (host not allowed, unreachable...)."""


@contextlib.contextmanager
def allow_loopback_for_tests() -> Iterator[None]:
    """Let fetches reach 127.0.0.1 while the block runs (tests start servers there).

    Only Python code can call this; no configuration or repository content can.
    """
    _LOOPBACK_FOR_TESTS[0] = True
    try:
        yield
    finally:
        _LOOPBACK_FOR_TESTS[0] = False


def default_cache_dir() -> Path:
    """``$GITOPS_CHECKER_HELM_CACHE`` or ``~/.cache/gitops-checker/helm``."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache",
                "gitops-checker", "helm")


def host_allowed(host: str, port: int | None, allowed: Sequence[str]) -> bool:
    """Whether ``host`` (and port) matches an entry: ``host``, ``host:port`` or ``*.domain``."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.strip().lower()
        name, _, want_port = entry.partition(":") if entry.count(":") == 1 else (
            entry.strip("[]"), "", "")  # an IPv6 literal has several colons and no port
        if want_port and (port is None or str(port) != want_port):
            continue
        if name.startswith("*."):
            if host.endswith(name[1:]) and host != name[2:]:
                return True
        elif host == name:
            return True
    return False


def is_public(address: str) -> bool:
    """Whether ``address`` may be contacted: global, and not loopback, private, link-local,
    multicast, reserved or unspecified (an IPv4-mapped IPv6 address is judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if _LOOPBACK_FOR_TESTS[0] and ip.is_loopback:
        return True
    return bool(ip.is_global) and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified)


def checked_address(host: str, port: int) -> str:
    """The address to connect to: every address of ``host`` must be public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise FetchRefused(f"cannot resolve {host}: {err}") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses:
        raise FetchRefused(f"cannot resolve {host}")
    bad = [a for a in addresses if not is_public(a)]
    if bad:
        raise FetchRefused(f"{host} resolves to a loopback, private or link-local address "
                           f"({', '.join(bad)}); such addresses are never contacted")
    return addresses[0]


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address; the certificate is verified against the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _PinnedHTTP(http.client.HTTPConnection):
    """Plain HTTP to a checked address."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


@dataclass(frozen=True)
class Response:
    """A bounded HTTP response."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str


class Fetcher:
    """HTTP GETs limited to allowed hosts with public addresses."""

    def __init__(self, allowed_hosts: Sequence[str], cache_dir: Path | None = None) -> None:
        self.allowed_hosts = tuple(allowed_hosts)
        self.cache_dir = cache_dir or default_cache_dir()

    def get(self, url: str, headers: Mapping[str, str] | None = None,
            limit: int = MAX_INDEX_BYTES) -> Response:
        """GET ``url``, following redirects to allowed hosts only. Raises FetchRefused."""
        for _ in range(MAX_REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise FetchRefused(f"unsupported URL {url!r}")
            host, port = parts.hostname, parts.port
            if not host_allowed(host, port, self.allowed_hosts):
                raise FetchRefused(f"host {host} is not in helm.allowedHosts of the trusted "
                                   "config")
            port = port or (443 if parts.scheme == "https" else 80)
            address = checked_address(host, port)
            conn_type = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
            conn = conn_type(host, port, address, TIMEOUT_SECONDS)
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            try:
                conn.request("GET", target, headers={"User-Agent": "gitops-checker",
                                                     **(headers or {})})
                resp = conn.getresponse()
                body = resp.read(limit + 1)
            except (OSError, http.client.HTTPException) as err:
                raise FetchRefused(f"cannot reach {host}: {err}") from None
            finally:
                conn.close()
            if len(body) > limit:
                raise FetchRefused(f"{url} is larger than {limit} bytes")
            found = {k.lower(): v for k, v in resp.getheaders()}
            if resp.status in (301, 302, 303, 307, 308) and "location" in found:
                url = urllib.parse.urljoin(url, found["location"])
                headers = {k: v for k, v in (headers or {}).items()
                           if k.lower() != "authorization"}
                continue
            return Response(resp.status, found, body, url)
        raise FetchRefused(f"too many redirects from {url}")

    # ---- cache ------------------------------------------------------------------------------

    def _cached(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.cache_dir / f"{digest}.tgz"

    def _store(self, key: str, data: bytes) -> Path:
        path = self._cached(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.part")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path

    # ---- HTTP chart repositories --------------------------------------------------------------

    def http_chart(self, repo_url: str, chart: str, version: str) -> tuple[Path, str]:
        """The archive of ``chart`` (version constraint ``version``) from an HTTP repository.

        Returns the cached archive path and the version chosen.
        """
        base = repo_url.rstrip("/") + "/"
        if is_exact(version):
            cached = self._cached(f"{base}|{chart}|{version}")
            if cached.is_file():
                return cached, version
        resp = self.get(base + "index.yaml")
        if resp.status != 200:
            raise FetchRefused(f"{base}index.yaml answered HTTP {resp.status}")
        try:
            index = yaml.load(resp.body.decode("utf-8"), Loader=SAFE_LOADER)
        except (UnicodeDecodeError, yaml.YAMLError) as err:
            raise FetchRefused(f"{base}index.yaml is not a chart repository index: "
                               f"{str(err).splitlines()[0]}") from None
        entries = index.get("entries") if isinstance(index, dict) else None
        versions = entries.get(chart) if isinstance(entries, dict) else None
        if not isinstance(versions, list) or not versions:
            raise FetchRefused(f"chart {chart!r} is not in {base}index.yaml")
        by_version = {str(v.get("version")): v for v in versions if isinstance(v, dict)}
        chosen = pick_version(list(by_version), version)
        if chosen is None:
            raise FetchRefused(f"no version of {chart!r} in {base}index.yaml matches "
                               f"{version or '*'!r}")
        key = f"{base}|{chart}|{chosen}"
        cached = self._cached(key)
        if cached.is_file():
            return cached, chosen
        entry = by_version[chosen]
        urls = entry.get("urls")
        if not isinstance(urls, list) or not urls or not isinstance(urls[0], str):
            raise FetchRefused(f"{chart} {chosen} has no download URL in {base}index.yaml")
        archive = self.get(urllib.parse.urljoin(base, urls[0]), limit=MAX_CHART_BYTES)
        if archive.status != 200:
            raise FetchRefused(f"{archive.url} answered HTTP {archive.status}")
        want = str(entry.get("digest") or "")
        if want and hashlib.sha256(archive.body).hexdigest() != want.removeprefix("sha256:"):
            raise FetchRefused(f"{archive.url} does not match the digest in the index")
        return self._store(key, archive.body), chosen

    # ---- OCI registries ---------------------------------------------------------------------

    def oci_chart(self, reference: str, version: str = "", digest: str = "",
                  plain_http: bool = False) -> tuple[Path, str]:
        """The chart archive at ``oci://host/path`` with a tag (version constraint) or digest."""
        ref = reference.removeprefix("oci://").rstrip("/")
        host, _, name = ref.partition("/")
        if not name:
            raise FetchRefused(f"OCI reference {reference!r} has no repository path")
        scheme = "http" if plain_http else "https"
        registry = f"{scheme}://{host}/v2/{name}"
        if digest:
            key = f"oci://{ref}@{digest}"
        elif is_exact(version):
            key = f"oci://{ref}:{version}"
        else:
            key = ""
        if key and self._cached(key).is_file():
            return self._cached(key), version or digest
        token: list[str] = []
        chosen = version
        if not digest:
            if not is_exact(version):
                tags = self._registry_json(f"{registry}/tags/list", token)
                names = [str(t).replace("_", "+") for t in tags.get("tags") or []]
                found = pick_version(names, version)
                if found is None:
                    raise FetchRefused(f"no tag of oci://{ref} matches {version or '*'!r}")
                chosen = found
            key = f"oci://{ref}:{chosen}"
            if self._cached(key).is_file():
                return self._cached(key), chosen
        manifest = self._registry_json(
            f"{registry}/manifests/{digest or chosen.replace('+', '_')}", token,
            accept=MANIFEST_TYPES)
        layers = [layer for layer in manifest.get("layers") or []
                  if isinstance(layer, dict) and layer.get("mediaType") == HELM_LAYER]
        if not layers:
            raise FetchRefused(f"oci://{ref} is not a Helm chart (no {HELM_LAYER} layer)")
        blob_digest = str(layers[0].get("digest") or "")
        blob = self._registry_get(f"{registry}/blobs/{blob_digest}", token, MAX_CHART_BYTES)
        if "sha256:" + hashlib.sha256(blob.body).hexdigest() != blob_digest:
            raise FetchRefused(f"oci://{ref} layer does not match its digest")
        return self._store(key, blob.body), chosen or digest

    def _registry_get(self, url: str, token: list[str], limit: int = MAX_INDEX_BYTES,
                      accept: str = "") -> Response:
        headers = {"Accept": accept} if accept else {}
        if token:
            headers["Authorization"] = f"Bearer {token[0]}"
        resp = self.get(url, headers, limit)
        if resp.status == 401 and not token:
            token.append(self._anonymous_token(resp.headers.get("www-authenticate", "")))
            headers["Authorization"] = f"Bearer {token[0]}"
            resp = self.get(url, headers, limit)
        if resp.status in (401, 403):
            raise FetchRefused(f"{url} needs credentials (HTTP {resp.status}); only anonymous "
                               "pulls are made")
        if resp.status != 200:
            raise FetchRefused(f"{url} answered HTTP {resp.status}")
        return resp

    def _registry_json(self, url: str, token: list[str], accept: str = "") -> dict[str, Any]:
        resp = self._registry_get(url, token, accept=accept)
        try:
            data = json.loads(resp.body)
        except ValueError:
            raise FetchRefused(f"{url} did not answer JSON") from None
        if not isinstance(data, dict):
            raise FetchRefused(f"{url} did not answer a JSON object")
        return data

    def _anonymous_token(self, challenge: str) -> str:
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        if not challenge.lower().startswith("bearer") or "realm" not in params:
            raise FetchRefused("the registry needs credentials; only anonymous pulls are made")
        query = urllib.parse.urlencode({k: v for k, v in params.items()
                                        if k in ("service", "scope")})
        resp = self.get(params["realm"] + ("?" + query if query else ""))
        try:
            data = json.loads(resp.body) if resp.status == 200 else {}
        except ValueError:
            data = {}
        tok = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(tok, str):
            raise FetchRefused(f"the registry token service answered HTTP {resp.status}")
        return tok


# ---- versions (the subset of Masterminds semver constraints Flux users write) -------------

_SEMVER = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?"
                     r"(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_OPS = re.compile(r"^(>=|<=|!=|=|>|<|\^|~)?\s*(v?[0-9xX*][0-9A-Za-z.*+-]*)$")


def _parse(text: str) -> tuple[int, int, int, tuple[Any, ...]] | None:
    m = _SEMVER.match(text.strip())
    if not m:
        return None
    pre = m.group(4)
    pre_key: tuple[Any, ...] = (1,) if pre is None else (0, *(
        (0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")))
    return int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0), pre_key


def is_exact(constraint: str) -> bool:
    """Whether a version constraint names one version (``1.2.3``, ``v1.2.3-rc.1``)."""
    m = _SEMVER.match(constraint.strip())
    return bool(m and m.group(3) is not None)


def _term(version: tuple[int, int, int, tuple[Any, ...]], term: str) -> bool:
    m = _OPS.match(term.strip())
    if not m:
        raise ValueError(term)
    op, text = m.group(1) or "", m.group(2)
    parts = re.split(r"[.]", text.lstrip("v").split("-")[0].split("+")[0])
    wild = [p in ("x", "X", "*") for p in parts]
    if text in ("*", "x", "X") or (wild and wild[0]):
        return True
    nums = [int(p) if p.isdigit() else -1 for p in parts]
    if any(n == -1 and not w for n, w in zip(nums, wild, strict=True)):
        raise ValueError(term)
    fixed = next((i for i, w in enumerate(wild) if w), len(parts))
    if fixed < 3 and op in ("", "="):  # 1.2.x, 1.x, 1.2
        return list(version[:fixed]) == nums[:fixed]
    wanted = _parse(text.replace("x", "0").replace("X", "0").replace("*", "0"))
    if wanted is None:
        raise ValueError(term)
    if op == "^":
        upper = ((wanted[0] + 1, 0, 0) if wanted[0] else
                 (0, wanted[1] + 1, 0) if wanted[1] else (0, 0, wanted[2] + 1))
        return wanted <= version and version[:3] < upper
    if op == "~":
        upper = (wanted[0], wanted[1] + 1, 0) if len(parts) > 1 else (wanted[0] + 1, 0, 0)
        return wanted <= version and version[:3] < upper
    return {"": version == wanted, "=": version == wanted, "!=": version != wanted,
            ">": version > wanted, ">=": version >= wanted, "<": version < wanted,
            "<=": version <= wanted}[op]


def matches(version: str, constraint: str) -> bool:
    """Whether ``version`` satisfies ``constraint`` (ranges joined by ``,``/space, ``||``)."""
    parsed = _parse(version)
    if parsed is None:
        return False
    constraint = constraint.strip() or "*"
    if parsed[3] != (1,) and not re.search(r"-", constraint):
        return False  # pre-releases only when the constraint names one, as in semver
    for alternative in constraint.split("||"):
        terms = [t for t in re.split(r"[,\s]+(?=[<>=!^~v0-9*xX])", alternative.strip()) if t]
        if all(_term(parsed, t) for t in terms):
            return True
    return False


def pick_version(versions: Sequence[str], constraint: str) -> str | None:
    """The highest version satisfying the constraint; ValueError-free (bad ones: None)."""
    best: tuple[tuple[Any, ...], str] | None = None
    for v in versions:
        try:
            ok = matches(v, constraint)
        except ValueError:
            return None
        parsed = _parse(v)
        if ok and parsed is not None and (best is None or parsed > best[0]):
            best = (parsed, v)
    return best[1] if best else None
