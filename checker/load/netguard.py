"""The network a Kustomize build may use: one proxy that checks every connection when it is made.

Checking a remote base's host before the build is not enough: Kustomize (and the ``git`` it
runs) resolves the name again, and a hostile DNS server can answer with a public address the
first time and ``127.0.0.1`` or a cloud metadata address the second (DNS rebinding). So the build
runs with every proxy variable pointing at this loopback proxy, which accepts only ``CONNECT``
(HTTPS) to a host the trusted config allows, resolves it itself, checks every address with
:func:`checker.load.helmfetch.checked_address` and connects to the address it checked. Plain
HTTP, other methods and other hosts get ``403``. The build also gets a minimal environment: no
tokens or cloud credentials of the job, a fresh ``HOME`` (no ``~/.netrc``, ``~/.gitconfig`` or
credential helper), no system git config, and git may speak HTTPS only (no ``ssh``, ``file``
or ``ext`` transports).
"""

from __future__ import annotations

import os
import select
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from checker.load import helmfetch

MAX_REQUEST_BYTES = 8192
CONNECT_TIMEOUT_SECONDS = 15.0
IDLE_TIMEOUT_SECONDS = 60.0
CLOSED = "http://127.0.0.1:9"  # nothing listens: a build without remote bases gets no network
_PASSED = ("PATH", "LANG", "LC_ALL", "TMPDIR", "TZ", "SYSTEMROOT")


def build_environment(home: Path, proxy: str = CLOSED) -> dict[str, str]:
    """The environment of a Kustomize build: only what it needs, every proxy set to ``proxy``."""
    env = {k: os.environ[k] for k in _PASSED if k in os.environ}
    env.update({
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0", "GIT_ALLOW_PROTOCOL": "https",
        "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false",
    })
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        env[name] = env[name.upper()] = proxy
    env["no_proxy"] = env["NO_PROXY"] = ""
    return env


class ConnectProxy:
    """A loopback HTTPS proxy for one build (use as a context manager; see the module)."""

    def __init__(self, allowed_hosts: Sequence[str]) -> None:
        self.allowed = tuple(allowed_hosts)
        self.refused: list[str] = []  # why each refused connection was refused, in order
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The proxy URL to put in the build's environment."""
        host, port = self._server.getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ConnectProxy:
        accept = threading.Thread(target=self._accept, name="gitops-checker-proxy", daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(target=self._serve, args=(client,), daemon=True)
            with self._lock:
                self._threads.append(worker)
            worker.start()

    def _refuse(self, client: socket.socket, why: str) -> None:
        with self._lock:
            self.refused.append(why)
        try:
            body = why.encode("utf-8", "replace")
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                           b"Connection: close\r\nContent-Length: "
                           + str(len(body)).encode() + b"\r\n\r\n" + body)
        except OSError:
            pass

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(CONNECT_TIMEOUT_SECONDS)
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(1024)
                if not chunk:
                    return
                head += chunk
                if len(head) > MAX_REQUEST_BYTES:
                    self._refuse(client, "request header too long")
                    return
            header, _, extra = head.partition(b"\r\n\r\n")
            first = header.partition(b"\r\n")[0]
            parts = first.decode("latin-1").split()
            if len(parts) != 3 or parts[0] != "CONNECT":
                what = parts[0] if parts else "?"
                self._refuse(client, f"only HTTPS (CONNECT) is allowed, not {what}")
                return
            host, _, port_text = parts[1].rpartition(":")
            host = host.strip("[]")
            if not port_text.isdigit() or not host:
                self._refuse(client, f"bad CONNECT target {parts[1]!r}")
                return
            port = int(port_text)
            if not helmfetch.host_allowed(host, port, self.allowed):
                self._refuse(client, f"host {host} is not allowed by the trusted config")
                return
            try:
                address = helmfetch.checked_address(host, port)  # resolved now, checked now
                upstream = socket.create_connection((address, port), CONNECT_TIMEOUT_SECONDS)
            except helmfetch.FetchRefused as err:
                self._refuse(client, str(err))
                return
            except OSError as err:
                self._refuse(client, f"cannot connect to {host}: {err.strerror or err}")
                return
            with upstream:
                client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                if extra:
                    upstream.sendall(extra)
                self._splice(client, upstream)
        except OSError:
            return
        finally:
            client.close()

    def _splice(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        while not self._stop.is_set():
            ready, _, _ = select.select(list(peers), [], [], IDLE_TIMEOUT_SECONDS)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                peers[sock].sendall(data)
