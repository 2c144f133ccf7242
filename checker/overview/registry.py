"""Read the tags of a repository from an OCI distribution registry (``GET /v2/<name>/tags/list``).

Read-only, bounded (page count and timeout) and opt-in: only registries named on the command
line are contacted. Credentials come from the environment and are sent only to those
registries (and to the token realm they name); they never appear in messages.

Authentication follows the distribution spec: a static bearer token
(``GITOPS_CHECKER_REGISTRY_TOKEN``) is sent as is; a user name and password
(``GITOPS_CHECKER_REGISTRY_USERNAME``/``_PASSWORD``) are sent as Basic credentials, and, when
the registry answers ``401`` with a ``Bearer`` challenge, exchanged at the challenge's realm
for a token scoped to ``repository:<name>:pull``. Anonymous token exchange works the same way.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from checker.errors import CheckerError

ENV_TOKEN = "GITOPS_CHECKER_REGISTRY_TOKEN"
ENV_USERNAME = "GITOPS_CHECKER_REGISTRY_USERNAME"
ENV_PASSWORD = "GITOPS_CHECKER_REGISTRY_PASSWORD"
PAGE_SIZE = 1000
MAX_PAGES = 50
TIMEOUT_SECONDS = 15.0
API_HOST = {"docker.io": "registry-1.docker.io"}
_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(CheckerError):
    """A registry could not be read; the message never contains credentials."""


@dataclass(frozen=True)
class Credentials:
    """A bearer token, or a user name and password. ``repr`` hides the secrets."""

    token: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Credentials:
        """Read ``GITOPS_CHECKER_REGISTRY_TOKEN`` or ``..._USERNAME``/``..._PASSWORD``."""
        return cls(env.get(ENV_TOKEN, ""), env.get(ENV_USERNAME, ""), env.get(ENV_PASSWORD, ""))

    def basic(self) -> str | None:
        """The Basic ``Authorization`` value, if a user name is set."""
        if not self.username:
            return None
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow redirects: they could carry the Authorization header to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def base_url(registry: str) -> str:
    """``https://host`` (``http://`` for loopback hosts or an explicit ``http://`` prefix)."""
    if registry.startswith(("http://", "https://")):
        return registry.rstrip("/")
    host = API_HOST.get(registry, registry)
    return f"{'http' if _is_loopback(host) else 'https'}://{host}"


def registry_host(spec: str) -> str:
    """The registry host a ``--registry`` value names (scheme stripped)."""
    return spec.split("://", 1)[-1].rstrip("/")


def next_link(header: str | None, current: str) -> str | None:
    """The ``rel="next"`` URL of an RFC 5988 ``Link`` header, resolved against ``current``."""
    if not header:
        return None
    match = _LINK.search(header)
    return urllib.parse.urljoin(current, match.group(1)) if match else None


@dataclass
class RegistryClient:
    """Lists tags; one client per run (it caches tokens per registry and repository)."""

    credentials: Credentials = field(default_factory=Credentials)
    timeout: float = TIMEOUT_SECONDS
    max_pages: int = MAX_PAGES
    page_size: int = PAGE_SIZE
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)

    def _open(self, url: str, authorization: str | None) -> tuple[int, Mapping[str, str], bytes]:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        if authorization:
            request.add_unredirected_header("Authorization", authorization)
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=self.timeout) as response:
                return response.status, dict(response.headers.items()), response.read(8 << 20)
        except urllib.error.HTTPError as err:
            headers = dict(err.headers.items()) if err.headers else {}
            return err.code, headers, b""
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise RegistryError(f"cannot reach {_origin(url)}: {reason}") from None

    def _token(self, challenge: str, repository: str) -> str:
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.get("realm")
        if not realm:
            raise RegistryError("registry sent a Bearer challenge without a realm")
        realm_parts = urllib.parse.urlsplit(realm)
        if realm_parts.scheme not in ("https", "http") or (
                realm_parts.scheme == "http" and not _is_loopback(realm_parts.netloc)
                and self.credentials.basic()):
            raise RegistryError(f"token realm {_origin(realm)} is not HTTPS; credentials are "
                                "not sent there")
        query = {"scope": f"repository:{repository}:pull"}
        if params.get("service"):
            query["service"] = params["service"]
        separator = "&" if "?" in realm else "?"
        url = f"{realm}{separator}{urllib.parse.urlencode(sorted(query.items()))}"
        status, _, body = self._open(url, self.credentials.basic())
        if status != 200:
            raise RegistryError(f"token service {_origin(url)} answered HTTP {status}")
        try:
            data = json.loads(body)
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"token service {_origin(url)} returned no token")
        return token

    def tags(self, registry: str, repository: str) -> list[str]:
        """Every tag of ``registry/repository``, following ``Link`` pagination."""
        base = base_url(registry)
        url: str | None = f"{base}/v2/{repository}/tags/list?n={self.page_size}"
        cache_key = f"{base}/{repository}"
        out: list[str] = []
        pages = 0
        while url is not None:
            pages += 1
            if pages > self.max_pages:
                raise RegistryError(f"{registry}/{repository}: more than {self.max_pages} "
                                    "pages of tags")
            authorization = None
            if cache_key in self._tokens:
                authorization = f"Bearer {self._tokens[cache_key]}"
            elif self.credentials.token:
                authorization = f"Bearer {self.credentials.token}"
            else:
                authorization = self.credentials.basic()
            status, headers, body = self._open(url, authorization)
            challenge = _header(headers, "WWW-Authenticate")
            if (status == 401 and challenge and challenge.lower().startswith("bearer ")
                    and cache_key not in self._tokens and not self.credentials.token):
                self._tokens[cache_key] = self._token(challenge[7:], repository)
                pages -= 1
                continue
            if status != 200:
                what = {401: "unauthorized", 403: "forbidden", 404: "repository not found"}
                raise RegistryError(f"{registry}/{repository}: tags/list answered HTTP {status}"
                                    f"{' (' + what[status] + ')' if status in what else ''}")
            try:
                data = json.loads(body)
            except ValueError:
                raise RegistryError(f"{registry}/{repository}: tags/list did not return JSON"
                                    ) from None
            tags = data.get("tags") if isinstance(data, dict) else None
            if tags is not None and not isinstance(tags, list):
                raise RegistryError(f"{registry}/{repository}: tags/list 'tags' is not a list")
            out.extend(t for t in tags or [] if isinstance(t, str))
            link = next_link(_header(headers, "Link"), url)
            if link is not None and _origin(link) != _origin(url):
                raise RegistryError(f"{registry}/{repository}: pagination link leaves the "
                                    "registry")
            url = link
        return sorted(set(out))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}"
