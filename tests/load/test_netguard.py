"""Kustomize's network goes through a proxy that checks each address when it connects.

The host check before a build resolves the name once; Kustomize's git resolves it again. A DNS
server that answers a public address first and loopback next (rebinding) must not get the
build to connect to the loopback address.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checker.load import helmfetch, kustomize, netguard
from tests.conftest import needs_kustomize


def _request(proxy: netguard.ConnectProxy, text: str) -> bytes:
    host, port = proxy.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(text.encode())
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
            if b"\r\n\r\n" in data and data.startswith(b"HTTP/1.1 200"):
                break
        return data


class Resolver:
    """``socket.getaddrinfo`` for ``name``: the addresses in ``answers``, one per call (the
    last repeats); other names resolve normally. Records each lookup of ``name``."""

    def __init__(self, name: str, answers: list[str]) -> None:
        self.name, self.answers, self.calls = name, answers, 0
        self.real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != self.name:
            return self.real(host, port, *args, **kwargs)
        address = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]


@pytest.fixture
def echo() -> Iterator[int]:
    """A loopback server that echoes one message: stands for an internal service."""
    server = socket.create_server(("127.0.0.1", 0))
    hits: list[bytes] = []

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            data = conn.recv(1024)
            hits.append(data)
            conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()


def test_plain_http_and_other_hosts_are_refused() -> None:
    with netguard.ConnectProxy(["git.example.com"]) as proxy:
        plain = _request(proxy, "GET http://git.example.com/x HTTP/1.1\r\nHost: x\r\n\r\n")
        other = _request(proxy, "CONNECT evil.example.net:443 HTTP/1.1\r\n\r\n")
    assert plain.startswith(b"HTTP/1.1 403") and other.startswith(b"HTTP/1.1 403")
    assert proxy.refused == ["only HTTPS (CONNECT) is allowed, not GET",
                             "host evil.example.net is not allowed by the trusted config"]


def test_a_name_that_rebinds_to_loopback_is_refused_at_connect_time(
        monkeypatch: pytest.MonkeyPatch, echo: int) -> None:
    resolver = Resolver("git.example.com", ["93.184.216.34", "127.0.0.1"])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    assert kustomize.host_allowed("git.example.com", ["git.example.com"]) == ""  # first answer
    with netguard.ConnectProxy(["git.example.com"]) as proxy:
        reply = _request(proxy, f"CONNECT git.example.com:{echo} HTTP/1.1\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 403")
    assert resolver.calls == 2
    assert "127.0.0.1" in proxy.refused[0]


def test_an_allowed_public_host_is_tunnelled_to_the_address_checked(
        monkeypatch: pytest.MonkeyPatch, echo: int) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", Resolver("git.example.com", ["127.0.0.1"]))
    with helmfetch.allow_loopback_for_tests(), \
            netguard.ConnectProxy(["git.example.com"]) as proxy:
        host, port = proxy.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(f"CONNECT git.example.com:{echo} HTTP/1.1\r\n\r\nping".encode())
            data = b""
            while not data.endswith(b"ping"):
                chunk = sock.recv(1024)
                assert chunk, data
                data += chunk
    assert data.startswith(b"HTTP/1.1 200") and proxy.refused == []


def test_the_build_environment_holds_no_secret_and_no_other_transport(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws_secret")
    env = netguard.build_environment(tmp_path, "http://127.0.0.1:1")
    assert "GITHUB_TOKEN" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert not any("secret" in v for v in env.values())
    assert env["GIT_ALLOW_PROTOCOL"] == "https" and env["HOME"] == str(tmp_path)
    assert env["https_proxy"] == env["HTTPS_PROXY"] == env["ALL_PROXY"] == "http://127.0.0.1:1"
    assert env["NO_PROXY"] == ""


@needs_kustomize
def test_a_rebinding_remote_base_fails_the_build_without_reaching_loopback(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """End to end with the real Kustomize: its git asks our proxy, which resolves the name
    again, gets loopback and refuses; the build fails as a finding."""
    resolver = Resolver("git.example.com", ["93.184.216.34", "127.0.0.1"])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    app = tmp_path / "app"
    app.mkdir()
    (app / "kustomization.yaml").write_text(
        "resources:\n  - https://git.example.com/org/repo//base?ref=v1\n")
    result = kustomize.render(app, tmp_path, remote_hosts=["git.example.com"])
    assert result.resources == []
    (finding,) = result.findings
    assert finding.rule_id == "input.kustomize-error" and "failed" in finding.message
    assert resolver.calls >= 2  # the proxy resolved the name again when git connected
