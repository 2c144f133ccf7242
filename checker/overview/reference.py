"""Container image references: parsing, normalisation and version ordering of tags.

The grammar is the one of the distribution project's reference package: an optional registry
host (recognised by a dot, a port or ``localhost``), a repository path of lower-case
components, an optional tag and an optional digest. References without a registry are Docker
Hub's, and one-component Docker Hub names live under ``library/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_REGISTRY = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_HOST = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$"
)
MUTABLE_TAGS = frozenset({"latest"})


@dataclass(frozen=True, order=True)
class ImageRef:
    """A parsed image reference. ``error`` is set (and the parts may be partial) when invalid."""

    raw: str
    registry: str = ""
    repository: str = ""
    tag: str = ""
    digest: str = ""
    error: str = ""

    @property
    def name(self) -> str:
        """``registry/repository``: the identity of an image, whatever its version."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @property
    def version(self) -> str:
        """The tag, or the digest when there is no tag."""
        return self.tag or self.digest

    @property
    def canonical(self) -> str:
        """Fully qualified form: ``registry/repository[:tag][@digest]``."""
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def mutable(self) -> bool:
        """No tag and no digest (means ``latest``), or a tag known to move, without a digest."""
        if self.digest:
            return False
        return not self.tag or self.tag in MUTABLE_TAGS


def parse_image(raw: str) -> ImageRef:
    """Parse an image reference; an invalid one comes back with ``error`` set."""
    text = raw.strip()
    if not text:
        return ImageRef(raw, error="empty image reference")
    remainder, _, digest = text.partition("@")
    if digest and not _DIGEST.match(digest):
        return ImageRef(raw, error=f"invalid digest {digest!r}")
    name, tag = remainder, ""
    colon = remainder.rfind(":")
    if colon > remainder.rfind("/"):
        name, tag = remainder[:colon], remainder[colon + 1:]
        if not _TAG.match(tag):
            return ImageRef(raw, error=f"invalid tag {tag!r}")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, path = first, rest
        if not _HOST.match(registry):
            return ImageRef(raw, error=f"invalid registry host {registry!r}")
        if registry.lower() in _DOCKER_HUB_ALIASES:
            registry = DEFAULT_REGISTRY
    else:
        registry, path = DEFAULT_REGISTRY, name
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    components = path.split("/")
    for component in components:
        if not _COMPONENT.match(component):
            return ImageRef(raw, error=f"invalid repository name {name!r}")
    if len(name) > 255:
        return ImageRef(raw, error="repository name longer than 255 characters")
    return ImageRef(raw, registry, path, tag, digest)


# --- version ordering of tags --------------------------------------------------------------

_VERSION = re.compile(r"^(?P<prefix>[A-Za-z]*?)(?P<nums>\d+(?:\.\d+)*)(?P<rest>[^+]*)(?:\+.*)?$")
_PRE = re.compile(r"^[-.]?(?P<label>alpha|beta|rc|pre|preview|dev|a|b)[.-]?(?P<n>\d*)$",
                  re.IGNORECASE)
_PRE_RANK = {"dev": 0, "a": 1, "alpha": 1, "b": 2, "beta": 2, "pre": 3, "preview": 3, "rc": 4}


@dataclass(frozen=True, order=True)
class TagVersion:
    """A tag read as a version. Only tags of the same ``variant`` are comparable.

    ``variant`` is (prefix, number of numeric parts, suffix): ``v1.2.3`` and ``v1.3.0`` compare,
    ``1.25.3-alpine`` compares with ``1.26.0-alpine`` but not with ``1.26.0``. Pre-release
    suffixes (``-rc.1``, ``-beta2``) belong to the release's variant and sort below it.
    """

    variant: tuple[str, int, str]
    numbers: tuple[int, ...]
    release: int  # 1 for a release, 0 for a pre-release
    pre: tuple[int, int]
    tag: str

    @property
    def order(self) -> tuple[tuple[int, ...], int, tuple[int, int]]:
        """What versions of one variant are ordered by (build metadata is ignored)."""
        return (self.numbers, self.release, self.pre)

    @property
    def prerelease(self) -> bool:
        """``-rc``, ``-beta`` and similar."""
        return self.release == 0


def tag_version(tag: str) -> TagVersion | None:
    """Read a tag as a version, or None for tags such as ``latest``, ``main`` or ``sha-1f2e``."""
    match = _VERSION.match(tag)
    if not match or match["prefix"].lower() not in ("", "v"):
        return None
    numbers = tuple(int(n) for n in match["nums"].split("."))
    if len(numbers) == 1 and len(match["nums"]) >= 6:
        return None  # a date or a build number is not a version we can order safely
    rest = match["rest"]
    pre = _PRE.match(rest) if rest else None
    if pre:
        rank = (_PRE_RANK[pre["label"].lower()], int(pre["n"] or 0))
        return TagVersion((match["prefix"].lower(), len(numbers), ""), numbers, 0, rank, tag)
    return TagVersion((match["prefix"].lower(), len(numbers), rest), numbers, 1, (0, 0), tag)


def newest(tags: list[str] | tuple[str, ...], like: str) -> str | None:
    """The newest tag among ``tags`` of the same variant as ``like``.

    Pre-releases count only when ``like`` is itself a pre-release. None when ``like`` is not a
    version or no tag of its variant exists.
    """
    ref = tag_version(like)
    if ref is None:
        return None
    best: TagVersion | None = None
    for tag in tags:
        version = tag_version(tag)
        if version is None or version.variant != ref.variant:
            continue
        if version.prerelease and not ref.prerelease:
            continue
        if best is None or (version.order, version.tag) > (best.order, best.tag):
            best = version
    return best.tag if best else None


def is_older(tag: str, than: str) -> bool:
    """``tag`` is an older version than ``than`` (False when they are not comparable)."""
    a, b = tag_version(tag), tag_version(than)
    return a is not None and b is not None and a.variant == b.variant and a.order < b.order
