"""Image reference parsing (docker.io defaults, ports, digests) and tag version ordering."""

from __future__ import annotations

import pytest

from checker.overview.reference import is_older, newest, parse_image, tag_version

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("raw", "registry", "repository", "tag", "digest"), [
    ("nginx", "docker.io", "library/nginx", "", ""),
    ("nginx:1.25", "docker.io", "library/nginx", "1.25", ""),
    ("bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", ""),
    ("docker.io/nginx", "docker.io", "library/nginx", "", ""),
    ("index.docker.io/foo/bar:1", "docker.io", "foo/bar", "1", ""),
    ("ghcr.io/stefanprodan/podinfo:6.7.1", "ghcr.io", "stefanprodan/podinfo", "6.7.1", ""),
    ("localhost:5000/app", "localhost:5000", "app", "", ""),
    ("localhost/app:v1", "localhost", "app", "v1", ""),
    ("127.0.0.1:5000/team/app:1.0@" + DIGEST, "127.0.0.1:5000", "team/app", "1.0", DIGEST),
    ("registry.example.com:8443/a/b/c", "registry.example.com:8443", "a/b/c", "", ""),
    ("quay.io/prometheus/node-exporter@" + DIGEST, "quay.io", "prometheus/node-exporter", "",
     DIGEST),
    ("my_registry/app", "docker.io", "my_registry/app", "", ""),
])
def test_parse(raw: str, registry: str, repository: str, tag: str, digest: str) -> None:
    ref = parse_image(raw)
    assert (ref.registry, ref.repository, ref.tag, ref.digest, ref.error) == (
        registry, repository, tag, digest, "")
    assert ref.name == f"{registry}/{repository}"


def test_canonical_and_mutability() -> None:
    assert parse_image("nginx").canonical == "docker.io/library/nginx"
    assert parse_image("nginx").mutable
    assert parse_image("nginx:latest").mutable
    assert not parse_image("nginx:1.25").mutable
    assert not parse_image("nginx@" + DIGEST).mutable
    assert not parse_image("nginx:latest@" + DIGEST).mutable  # the digest decides
    assert parse_image("a:1@" + DIGEST).canonical == f"docker.io/library/a:1@{DIGEST}"


@pytest.mark.parametrize(("raw", "error"), [
    ("", "empty image reference"),
    ("Nginx:1", "invalid repository name 'Nginx'"),
    ("${IMAGE}", "invalid repository name '${IMAGE}'"),
    ("nginx:-bad", "invalid tag '-bad'"),
    ("nginx@sha256:short", "invalid digest 'sha256:short'"),
    ("bad_host.example.com:x/app", "invalid registry host 'bad_host.example.com:x'"),
])
def test_invalid(raw: str, error: str) -> None:
    assert parse_image(raw).error == error


def test_tag_versions_and_variants() -> None:
    assert tag_version("latest") is None
    assert tag_version("main") is None
    assert tag_version("sha-1f2e3d") is None
    assert tag_version("20240101") is None  # a date, not a version
    v = tag_version("v1.8.2")
    assert v is not None and v.numbers == (1, 8, 2) and v.variant == ("v", 3, "")
    alpine = tag_version("1.25.3-alpine")
    assert alpine is not None and alpine.variant == ("", 3, "-alpine")
    rc = tag_version("2.0.0-rc.1")
    assert rc is not None and rc.prerelease and rc.variant == ("", 3, "")


def test_ordering() -> None:
    assert is_older("1.9.9", "1.10.0")
    assert not is_older("1.10.0", "1.9.9")
    assert is_older("2.0.0-rc.1", "2.0.0")
    assert is_older("2.0.0-beta.2", "2.0.0-rc.1")
    assert not is_older("1.25.3", "1.26.0-alpine")  # different variants never compare
    assert not is_older("1.25", "1.25.3")
    assert not is_older("latest", "1.0.0")
    assert not is_older("1.0.0+build.1", "1.0.0+build.2")


def test_newest() -> None:
    tags = ["1.2.3", "1.10.0", "1.9.9", "2.0.0-rc.1", "latest", "1.10.0-alpine", "v9.9.9"]
    assert newest(tags, "1.2.3") == "1.10.0"
    assert newest(tags, "2.0.0-rc.0") == "2.0.0-rc.1"
    assert newest(tags, "1.0.0-alpine") == "1.10.0-alpine"
    assert newest(tags, "v1.0.0") == "v9.9.9"
    assert newest(tags, "latest") is None
    assert newest(["v1", "v2", "v10"], "v1") == "v10"
