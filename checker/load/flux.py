"""Follow Flux ``Kustomization`` objects to the folders they sync, and apply what Flux applies.

A cluster's entry point is often a folder such as ``clusters/production`` that holds only Flux
``kustomize.toolkit.fluxcd.io`` Kustomizations; the workloads live where their ``spec.path``
points (relative to the repository root, which is the root of the GitRepository source). This
module finds those objects (recursively: a synced folder may hold further Kustomizations), and
applies ``spec.targetNamespace`` and ``spec.postBuild.substitute`` to the objects loaded from
the synced folder, the way kustomize-controller does after its build.
"""

from __future__ import annotations

import copy
import json
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pathspec
import yaml

from checker.load import workspace, yamlfile
from checker.load.kustomize import (
    BUILD_METADATA,
    KUSTOMIZATION_NAMES,
    applied_files,
    is_remote,
    kustomization_file,
    read_kustomization,
    render_prepared,
)
from checker.load.objects import (
    RULE_KUSTOMIZE,
    RULE_MISSING_PATH,
    YAML_SUFFIXES,
    LoadResult,
    input_finding,
    is_k8s_object,
    read_documents,
    relpath,
)
from checker.load.yamlfile import Document
from checker.model import Coverage, FieldPath, Finding, Resource, SourceLocation

FLUX_GROUP = "kustomize.toolkit.fluxcd.io"
# ``checker.load.loader.load_paths``, passed in by the caller: the loader imports Helm, which
# imports this module, so this module cannot import the loader.
FolderLoader = Callable[..., LoadResult]
SUBSTITUTE_OPT_OUT = "kustomize.toolkit.fluxcd.io/substitute"
_SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".tox"})
# ${var}, ${var:=default}, ${var:-default}; $${var} is an escaped literal.
_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[=-])([^}]*))?\}")

# Kinds that are never namespaced; targetNamespace leaves them alone.
CLUSTER_SCOPED = frozenset({
    "Namespace", "Node", "PersistentVolume", "StorageClass", "CSIDriver", "CSINode",
    "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "APIService",
    "PriorityClass", "RuntimeClass", "IngressClass", "VolumeAttachment",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    "PodSecurityPolicy", "ClusterIssuer", "ConstraintTemplate",
})


SOURCE_GROUP = "source.toolkit.fluxcd.io"
ARTIFACT_GROUP = "source.extensions.fluxcd.io"
THIS_REPOSITORY = ("flux-system", "flux-system")  # the GitRepository `flux bootstrap` writes
# Fields of a Flux Kustomization that only Kustomize can apply (see render_sync).
KUSTOMIZE_FIELDS = ("patches", "patchesStrategicMerge", "patchesJson6902", "images",
                    "components", "namePrefix", "nameSuffix")


@dataclass(frozen=True)
class FluxSync:
    """One Flux Kustomization: the folder it syncs and what Flux does to the objects.

    ``path`` is the folder in this repository; for an ``ExternalArtifact`` source it is the
    path inside the artifact, and ``artifact`` maps artifact files to repository files.
    """

    path: Path
    name: str
    target_namespace: str = ""
    substitute: Mapping[str, str] = field(default_factory=dict, compare=False)
    location: SourceLocation = field(default_factory=lambda: SourceLocation(""))
    source: str = ""               # "GitRepository flux-system/flux-system"
    spec: Mapping[str, Any] = field(default_factory=dict, compare=False)
    spec_key: str = ""             # the spec as sorted JSON: the identity of what Flux does
    spans: Mapping[FieldPath, tuple[int, int, int, int]] = field(default_factory=dict,
                                                                 compare=False)
    ignore: str = ""               # the GitRepository's spec.ignore (gitignore lines)
    artifact: tuple[tuple[str, str], ...] = ()   # (repository file, artifact file)
    artifact_path: str = ""        # spec.path inside the artifact

    @property
    def needs_kustomize(self) -> bool:
        """Whether this sync is built by Kustomize (Flux always does; plain folders without
        anything Kustomize-only are loaded directly, which gives the same objects faster)."""
        return bool(self.artifact or self.ignore
                    or kustomization_file(self.path) is not None
                    or any(self.spec.get(k) for k in (*KUSTOMIZE_FIELDS, "commonMetadata")))

    def locate(self, spec_path: FieldPath) -> SourceLocation:
        """Where a field of this Kustomization's spec is written (or the object's line)."""
        for end in range(len(spec_path), -1, -1):
            span = self.spans.get(("spec", *spec_path[:end]))
            if span is not None:
                return SourceLocation(self.location.path, span[0], span[1], span[2], span[3])
        return self.location


@dataclass
class FollowResult:
    """Flux Kustomizations followed from some paths, problems, and the coverage ledger."""

    syncs: list[FluxSync] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)

    def not_checked(self, what: str, path: str, line: int, reason: str) -> None:
        """A Kustomization whose source is not this repository: ledger entry and finding."""
        loaded = LoadResult()
        loaded.not_checked("flux", what, path, reason, line)
        self.coverage += loaded.coverage
        self.findings += loaded.findings


def mapping_of(value: Any) -> dict[str, Any]:
    """``value`` if it is a mapping, else an empty one."""
    return value if isinstance(value, dict) else {}


def is_flux_kustomization(data: Any) -> bool:
    """A ``kustomize.toolkit.fluxcd.io`` Kustomization object."""
    return (isinstance(data, dict) and data.get("kind") == "Kustomization"
            and str(data.get("apiVersion", "")).startswith(FLUX_GROUP + "/"))


def _is_source(data: Any) -> bool:
    api = str(data.get("apiVersion", "")) if isinstance(data, dict) else ""
    return api.startswith((SOURCE_GROUP + "/", ARTIFACT_GROUP + "/"))


def _yaml_files(path: Path) -> Iterator[Path]:
    if path.is_file():
        if path.suffix in YAML_SUFFIXES:
            yield path
        return
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if Path(name).suffix in YAML_SUFFIXES:
                yield Path(dirpath, name)



def _normal_url(url: str) -> str:
    text = url.strip().lower().rstrip("/")
    text = text.removesuffix(".git")
    for prefix in ("https://", "http://", "ssh://git@", "ssh://", "git@"):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    return text.replace(":", "/", 1) if "/" not in text.split(":", 1)[0] else text


@dataclass
class _Found:
    data: dict[str, Any]
    doc: Document
    rel: str

    @property
    def namespace(self) -> str:
        return str(mapping_of(self.data.get("metadata")).get("namespace") or "flux-system")

    @property
    def name(self) -> str:
        return str(mapping_of(self.data.get("metadata")).get("name") or "?")

    @property
    def spec(self) -> dict[str, Any]:
        return mapping_of(self.data.get("spec"))

    def line(self, *path: str | int) -> int:
        return self.doc.location(self.rel, tuple(path)).line


@dataclass(frozen=True)
class GitRef:
    """The Git reference a GitRepository checks out: its kind and value."""

    kind: str    # "branch", "tag", "semver", "name", "commit"
    value: str

    def __str__(self) -> str:
        return f"{self.kind} {self.value!r}"


def git_ref(spec: Mapping[str, Any]) -> GitRef:
    """``spec.ref`` with source-controller's precedence: commit, name, semver, tag, branch;
    branch ``master`` when none is set. ``name: refs/heads/x`` is branch x, ``refs/tags/x``
    tag x."""
    ref = mapping_of(spec.get("ref"))
    for kind in ("commit", "name", "semver", "tag", "branch"):
        value = ref.get(kind)
        if isinstance(value, str) and value.strip():
            value = value.strip()
            if kind == "name":
                for prefix, named in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
                    if value.startswith(prefix):
                        return GitRef(named, value[len(prefix):])
            return GitRef(kind, value.lower() if kind == "commit" else value)
    return GitRef("branch", "master")


@dataclass(frozen=True)
class Checkout:
    """What the checked-out tree is: refs, and where that is known from.

    ``strict``: known from the CI run (a pull request's base and head branch, a pushed branch
    or tag, the commit), so every GitRepository of this repository, ``flux-system`` too, must
    name one of them. Otherwise (a run on a plain checkout) the ``flux-system`` GitRepository's
    own ref is taken to be this checkout, and so is the local branch.
    """

    refs: frozenset[GitRef] = frozenset()
    strict: bool = False
    told: str = ""   # for people: "branch 'main' (the pull request's base)"

    def matches(self, ref: GitRef, home: GitRef | None) -> bool:
        """Whether ``ref`` is this checkout."""
        if ref.kind == "commit":
            return any(r.kind == "commit" and r.value.startswith(ref.value)
                       for r in self.refs) or (not self.strict and ref == home)
        if ref in self.refs:
            return True
        return not self.strict and ref == home


def checkout_of(root: Path) -> Checkout:
    """The checkout's refs: from GitHub Actions' variables when they are set, else the
    local branch of ``root`` when it is the top of a git work tree (``.git/HEAD``)."""
    env = os.environ
    refs: set[GitRef] = set()
    told: list[str] = []
    base, head = env.get("GITHUB_BASE_REF", ""), env.get("GITHUB_HEAD_REF", "")
    if base:
        refs.add(GitRef("branch", base))
        told.append(f"branch {base!r} (the pull request's base)")
        if head:
            refs.add(GitRef("branch", head))
            told.append(f"branch {head!r} (the pull request's head)")
    elif env.get("GITHUB_REF_TYPE") in ("branch", "tag") and env.get("GITHUB_REF_NAME"):
        kind, name = str(env["GITHUB_REF_TYPE"]), env["GITHUB_REF_NAME"]
        refs.add(GitRef(kind, name))
        told.append(f"{kind} {name!r} (this run's ref)")
        if env.get("GITHUB_SHA"):
            refs.add(GitRef("commit", env["GITHUB_SHA"].lower()))
    if refs:
        return Checkout(frozenset(refs), True, ", ".join(told))
    head_file = root / ".git" / "HEAD"
    try:
        text = head_file.read_text(encoding="utf-8").strip() if (
            head_file.is_file() and not head_file.is_symlink()) else ""
    except (OSError, UnicodeDecodeError):
        text = ""
    if text.startswith("ref: refs/heads/"):
        branch = text.removeprefix("ref: refs/heads/")
        return Checkout(frozenset({GitRef("branch", branch)}), False,
                        f"branch {branch!r} (checked out)")
    return Checkout()


def ref_problem(spec: Mapping[str, Any], home: Mapping[str, Any] | None,
                checkout: Checkout) -> str:
    """"" when a GitRepository of this repository checks out this checkout, else why not,
    naming the ref. ``home`` is the ``flux-system`` GitRepository's spec (its ref stands for
    the checkout when the run does not say what is checked out)."""
    ref = git_ref(spec)
    home_ref = git_ref(home) if home is not None else None
    if checkout.matches(ref, home_ref):
        return ""
    what = f"the tag that matches semver {ref.value!r}" if ref.kind == "semver" else str(ref)
    now = checkout.told or (f"{home_ref}, the ref of GitRepository flux-system/flux-system"
                            if home_ref is not None else "unknown")
    return (f"at {what} (spec.ref), which is not this checkout ({now}); the objects "
            "Flux applies from it are in that ref, not in the files checked here")


# source-controller's exclusions: version control files always; the rest unless
# ``.sourceignore`` files or ``spec.ignore`` give patterns (then those replace them).
VCS_IGNORE = (".git/", ".gitignore", ".gitmodules", ".gitattributes")
SOURCEIGNORE = ".sourceignore"


def _scoped(pattern: str, domain: str) -> str:
    """A gitignore pattern of the file in folder ``domain``, rewritten for the root."""
    if not domain:
        return pattern
    negate = pattern.startswith("!")
    body = pattern[1:] if negate else pattern
    anchored = body.startswith("/") or "/" in body.rstrip("/")
    scoped = f"{domain}/{body.lstrip('/')}" if anchored else f"{domain}/**/{body}"
    return ("!" if negate else "") + scoped


def sourceignore_patterns(root: Path) -> list[str]:
    """Patterns of every ``.sourceignore`` file, each scoped to its folder, in the order
    source-controller reads them (a folder's file, then its sub-folders' by name)."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        if SOURCEIGNORE not in filenames:
            continue
        file = Path(dirpath, SOURCEIGNORE)
        try:
            text = workspace.read_bytes(file, root, yamlfile.MAX_FILE_BYTES).decode(
                "utf-8", "replace")
        except (OSError, workspace.Refused):
            continue
        domain = Path(dirpath).relative_to(root).as_posix()
        domain = "" if domain == "." else domain
        for line in text.splitlines():
            if line.strip() and not line.startswith("#"):
                out.append(_scoped(line.rstrip("\r"), domain))
    return out


def ignore_rules(sourceignore: Sequence[str], spec_ignore: str | None) -> str:
    """The gitignore lines an artifact is filtered with ("" for the default exclusions)."""
    lines = [*sourceignore, *(ln for ln in (spec_ignore or "").splitlines()
                             if ln.strip() and not ln.startswith("#"))]
    return "\n".join([*VCS_IGNORE, *lines]) if lines else ""


class _Sources:
    """The Flux source objects found so far, and which of them are this repository."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects: dict[tuple[str, str, str], _Found] = {}
        self.artifacts: dict[tuple[str, str], tuple[_Found, dict[str, Any]]] = {}
        self._files: list[str] | None = None
        self._checkout: Checkout | None = None
        self.ref_problems: dict[tuple[str, str], str] = {}
        self._sourceignore: list[str] | None = None

    def add(self, found: _Found) -> None:
        kind = str(found.data.get("kind"))
        self.objects.setdefault((kind, found.namespace, found.name), found)
        if kind == "ArtifactGenerator":
            for artifact in found.spec.get("artifacts") or []:
                if isinstance(artifact, dict) and isinstance(artifact.get("name"), str):
                    self.artifacts.setdefault((found.namespace, artifact["name"]),
                                              (found, artifact))

    def this_repository(self, namespace: str, name: str) -> tuple[bool | None, str, str]:
        """(is this repository — None when unknown, a description, its ignore rules).

        False with a reason as the description also when it is this repository at a ref
        that is not this checkout (``spec.ref``, see :func:`ref_problem`). The ignore rules
        are source-controller's: ``.sourceignore`` files and ``spec.ignore`` ("" for the
        default exclusions).
        """
        found = self.objects.get(("GitRepository", namespace, name))
        label = f"GitRepository {namespace}/{name}"
        home = self.objects.get(("GitRepository", *THIS_REPOSITORY))
        if (namespace, name) != THIS_REPOSITORY:
            if found is None:
                return None, label, ""
            url = str(found.spec.get("url", ""))
            if home is None or not url or _normal_url(url) != _normal_url(
                    str(home.spec.get("url", ""))):
                return False, f"{label} ({url or 'no url'})", ""
        if found is not None:
            why = ref_problem(found.spec, home.spec if home is not None else None,
                              self.checkout)
            if why:
                self.ref_problems[(namespace, name)] = why
                return False, f"{label} {why}", ""
        ignore = found.spec.get("ignore") if found else None
        return True, label, ignore_rules(self.sourceignore(), ignore if isinstance(
            ignore, str) else None)

    @property
    def checkout(self) -> Checkout:
        """What this checkout is (branch, tag, commit), once per run."""
        if self._checkout is None:
            self._checkout = checkout_of(self.root)
        return self._checkout

    def sourceignore(self) -> list[str]:
        """The ``.sourceignore`` patterns of the repository, scoped to their folders."""
        if self._sourceignore is None:
            self._sourceignore = sourceignore_patterns(self.root)
        return self._sourceignore

    def files(self) -> list[str]:
        """Every regular file of the repository, relative, sorted (for artifact copy rules)."""
        if self._files is None:
            out: list[str] = []
            for dirpath, dirnames, filenames in os.walk(self.root):
                dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
                for name in sorted(filenames):
                    full = Path(dirpath, name)
                    if not full.is_symlink() and full.is_file():
                        out.append(full.relative_to(self.root).as_posix())
            self._files = out
        return self._files


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def copy_rules(rules: list[Any], files: list[str], alias_ok: Mapping[str, bool],
               ) -> tuple[list[tuple[str, str]], str]:
    """The files an ArtifactGenerator artifact holds: (repository file, artifact file) pairs,
    or "" and the reason when a rule copies from a source that is not this repository.

    ``@alias/dir/**`` copies the folder's tree into ``to``; a glob copies matching files into
    ``to`` (keeping the tree below a ``**``); a plain file goes to ``to`` (into it when ``to``
    ends with ``/``). Later rules overwrite earlier ones, as the generator does.
    """
    out: dict[str, str] = {}
    for rule in rules:
        if not isinstance(rule, dict):
            continue
        src, dst = str(rule.get("from", "")), str(rule.get("to", ""))
        alias, _, pattern = src.lstrip("@").partition("/")
        if not src.startswith("@") or alias not in alias_ok:
            return [], f"copy rule from {src!r} names no source of the generator"
        if not alias_ok[alias]:
            return [], f"copy rule from {src!r} reads a source that is not this repository"
        target = dst.removeprefix("@artifact").lstrip("/")
        excludes = [_glob_regex(str(e).lstrip("/")) for e in rule.get("exclude") or []]
        glob = any(c in pattern for c in "*?[")
        if glob:
            base = pattern.split("*", 1)[0].split("?", 1)[0].rsplit("/", 1)[0] \
                if "/" in pattern.split("*", 1)[0] else ""
            regex = _glob_regex(pattern)
            for f in files:
                if not regex.match(f):
                    continue
                below = f[len(base):].lstrip("/") if base else f
                if any(x.match(below) or x.match(f.rsplit("/", 1)[-1]) for x in excludes):
                    continue
                name = below if "**" in pattern else f.rsplit("/", 1)[-1]
                out[posixpath.normpath(posixpath.join(target, name))] = f
        else:
            literal = pattern.strip("/")
            if literal in files:
                dest = (posixpath.join(target, literal.rsplit("/", 1)[-1])
                        if dst.endswith("/") or not target else target)
                out[posixpath.normpath(dest)] = literal
            else:  # a folder: its tree goes below ``to``/<folder name>
                prefix = literal + "/"
                for f in files:
                    if f.startswith(prefix):
                        out[posixpath.normpath(posixpath.join(
                            target, literal.rsplit("/", 1)[-1], f[len(prefix):]))] = f
    return sorted((src, dst) for dst, src in out.items()), ""


def _sync_of(k: _Found, root: Path, sources: _Sources, final: bool,
             result: FollowResult) -> FluxSync | bool | None:
    """The sync of one Kustomization; None: its source is not known yet; False: reported."""
    name = f"{k.namespace}/{k.name}"
    spec = k.spec
    raw = spec.get("path") or "./"
    ref = mapping_of(spec.get("sourceRef"))
    kind = str(ref.get("kind") or "GitRepository")
    src_ns = str(ref.get("namespace") or k.namespace)
    src_name = str(ref.get("name") or "")
    what = f"Flux Kustomization {name}"
    if not isinstance(raw, str):
        result.findings.append(input_finding(RULE_MISSING_PATH, f"{what}: spec.path must be a "
                                             "string", k.rel, k.line("spec", "path")))
        return False
    rel_path = posixpath.normpath(raw.strip().lstrip("/") or ".")
    base: dict[str, Any] = dict(name=name, target_namespace=str(spec.get("targetNamespace") or ""),
                substitute={str(key): "" if v is None else str(v) for key, v in sorted(
                    mapping_of(mapping_of(spec.get("postBuild")).get("substitute")).items())},
                location=k.doc.location(k.rel), spec=spec,
                spec_key=json.dumps(spec, sort_keys=True, default=str), spans=k.doc.spans)
    line = k.line("spec", "sourceRef")
    if kind == "GitRepository":
        mine, label, ignore = sources.this_repository(src_ns, src_name)
        if mine is None and not final:
            return None
        if not mine:
            reason = (f"it reads {label}" if (src_ns, src_name) in sources.ref_problems else
                      f"it reads {label}, which is not this repository" if mine is False else
                      f"it reads {label}, which is not declared in the checked paths, so "
                      "it is not known to be this repository")
            result.not_checked(what, k.rel, line, reason)
            return False
        if rel_path.startswith("..") or rel_path.startswith("/"):
            result.findings.append(input_finding(
                RULE_MISSING_PATH, f"{what}: spec.path {raw!r} leaves the repository", k.rel,
                k.line("spec", "path")))
            return False
        target = Path(os.path.normpath(root / rel_path))
        if not workspace.resolves_inside(target, root):
            result.findings.append(input_finding(
                RULE_MISSING_PATH, f"{what}: spec.path {raw!r} leaves the repository", k.rel,
                k.line("spec", "path")))
            return False
        if not target.exists():
            result.findings.append(input_finding(
                RULE_MISSING_PATH, f"{what}: spec.path {raw!r} does not exist in the "
                "repository", k.rel, k.line("spec", "path")))
            return False
        return FluxSync(path=target, source=label, ignore=ignore, **base)
    if kind == "ExternalArtifact":
        found = sources.artifacts.get((src_ns, src_name))
        if found is None:
            if not final:
                return None
            result.not_checked(what, k.rel, line, f"it reads ExternalArtifact {src_ns}/"
                               f"{src_name}, which no ArtifactGenerator in the checked paths "
                               "produces")
            return False
        generator, artifact = found
        alias_ok: dict[str, bool] = {}
        for entry in generator.spec.get("sources") or []:
            if not isinstance(entry, dict):
                continue
            alias = str(entry.get("alias", ""))
            src = (str(entry.get("namespace") or generator.namespace), str(entry.get("name", "")))
            ok = (str(entry.get("kind", "")) == "GitRepository"
                  and sources.this_repository(*src)[0] is True)
            alias_ok[alias] = ok
            if src in sources.ref_problems and str(entry.get("kind", "")) == "GitRepository":
                result.not_checked(what, k.rel, line, f"it reads ExternalArtifact {src_ns}/"
                                   f"{src_name}, whose ArtifactGenerator copies from "
                                   f"GitRepository {src[0]}/{src[1]} "
                                   f"{sources.ref_problems[src]}")
                return False
        pairs, why = copy_rules(list(artifact.get("copy") or []), sources.files(), alias_ok)
        label = (f"ExternalArtifact {src_ns}/{src_name} (ArtifactGenerator "
                 f"{generator.namespace}/{generator.name})")
        if why:
            result.not_checked(what, k.rel, line, f"it reads {label}: {why}")
            return False
        inside = "" if rel_path == "." else rel_path + "/"
        if not any(dst.startswith(inside) for _, dst in pairs):
            result.findings.append(input_finding(
                RULE_MISSING_PATH, f"{what}: spec.path {raw!r} does not exist in {label}",
                k.rel, k.line("spec", "path")))
            return False
        return FluxSync(path=root / generator.rel, source=label, artifact=tuple(pairs),
                        artifact_path=rel_path, **base)
    result.not_checked(what, k.rel, line, f"it reads {kind} {src_ns}/{src_name}, which is "
                       "not this repository")
    return False


def _scan_targets(sync: FluxSync, root: Path) -> list[Path]:
    """The repository files and folders a sync reads (to look for further Flux objects)."""
    if not sync.artifact:
        return [f for f in applied_files(sync.path, root) if f.suffix in YAML_SUFFIXES]
    # every file of the artifact: its kustomizations may include any of them
    return [root / src for src, _ in sync.artifact]


def follow_all(paths: Iterable[Path], root: Path) -> FollowResult:
    """Flux Kustomizations reachable from ``paths``, followed recursively through their
    sources: this repository's GitRepository, or an ExternalArtifact whose ArtifactGenerator
    copies from it. Any other source is not this repository: a not-checked entry, never a
    missing path. Every synced folder is a sync of its own, even inside a given path (it is
    rendered as Flux renders it); the same folder with the same spec is followed once.
    """
    result = FollowResult()
    sources = _Sources(root)
    queue: list[Path] = [p for p in paths if p.exists()]
    seen_files: set[Path] = set()
    pending: list[_Found] = []
    seen_syncs: set[tuple[object, ...]] = set()
    while queue or pending:
        while queue:
            current = queue.pop(0)
            for file in _yaml_files(current):
                if file.resolve() in seen_files:
                    continue
                seen_files.add(file.resolve())
                try:
                    raw = workspace.read_bytes(file, root, yamlfile.MAX_FILE_BYTES)
                except (OSError, workspace.Refused):
                    continue  # the loader reports unreadable and refused files
                if b"fluxcd.io" not in raw:
                    continue  # cheap pre-check: most manifests are not Flux objects
                rel = relpath(file, root)
                docs, _problems = read_documents(file, rel, root)  # the loader reports them
                for doc in docs:
                    if is_flux_kustomization(doc.data):
                        pending.append(_Found(doc.data, doc, rel))
                    elif _is_source(doc.data):
                        sources.add(_Found(doc.data, doc, rel))
        progress = False
        waiting: list[_Found] = []
        for final in (False, True):
            for k in pending:
                found = _sync_of(k, root, sources, final, result)
                if found is None:
                    waiting.append(k)
                    continue
                progress = True
                if found is False:
                    continue
                assert isinstance(found, FluxSync)
                key = (found.path, found.artifact_path, found.spec_key)
                if key in seen_syncs:
                    continue
                seen_syncs.add(key)
                result.syncs.append(found)
                result.coverage.append(Coverage(
                    "followed", "flux", f"Flux Kustomization {found.name}", found.location.path,
                    found.location.line, reason=f"{found.source}, path "
                    f"{found.artifact_path or relpath(found.path, root)}"))
                queue.extend(_scan_targets(found, root))
            pending, waiting = waiting, []
            if progress or not pending:
                break
    return result


def follow(paths: Iterable[Path], root: Path) -> tuple[list[FluxSync], list[Finding]]:
    """``follow_all`` without the ledger: the syncs and the findings."""
    found = follow_all(paths, root)
    return found.syncs, found.findings


def _substitute_text(text: str, variables: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        escaped, name, op, default = match.groups()
        if escaped:
            return match.group(0)[1:]
        if name in variables and (variables[name] != "" or op != ":-"):
            return variables[name]
        if op is not None:
            return default or ""
        return match.group(0)  # unknown variable: left as written (substituteFrom not read)
    return _VAR.sub(one, text)


def _substitute(value: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, variables) for v in value]
    if isinstance(value, str) and "${" in value:
        out = _substitute_text(value, variables)
        if _VAR.fullmatch(value) and out != value:
            # Flux substitutes in the YAML text, so "${replicas}" -> 3 becomes a number.
            try:
                parsed = yaml.safe_load(out)
            except yaml.YAMLError:
                return out
            if isinstance(parsed, (int, float, bool)):
                return parsed
        return out
    return value


def _opted_out(body: Mapping[str, Any]) -> bool:
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        return False
    for key in ("annotations", "labels"):
        values = meta.get(key)
        if isinstance(values, dict) and str(values.get(SUBSTITUTE_OPT_OUT, "")) == "disabled":
            return True
    return False


def apply(resources: Iterable[Resource], sync: FluxSync,
          variables: Mapping[str, str] | None = None,
          set_namespace: bool = True) -> list[Resource]:
    """The objects as Flux applies them: target namespace set, variables substituted.

    ``variables`` (default: the sync's inline ``postBuild.substitute``) are the values from
    ``substituteFrom`` overridden by the inline ones; ``set_namespace`` is False for objects
    Kustomize rendered (its namespace transformer already applied ``targetNamespace``).
    """
    variables = sync.substitute if variables is None else variables
    out: list[Resource] = []
    for res in resources:
        body: dict[str, Any] = copy.deepcopy(dict(res.body))
        changed = False
        if variables and not _opted_out(body):
            new = _substitute(body, variables)
            if new != body:
                body, changed = new, True
        namespace = res.namespace
        if set_namespace and sync.target_namespace and res.kind not in CLUSTER_SCOPED:
            meta = body.setdefault("metadata", {})
            if isinstance(meta, dict) and meta.get("namespace") != sync.target_namespace:
                meta["namespace"] = sync.target_namespace
                namespace, changed = sync.target_namespace, True
        if not changed:
            out.append(res)
            continue
        meta = mapping_of(body.get("metadata"))
        name = str(meta.get("name") or res.name)
        namespace = str(meta.get("namespace") or "") if not set_namespace else namespace
        out.append(replace(res, body=body, namespace=namespace, name=name))
    return out


# What source-controller leaves out of a GitRepository artifact unless .sourceignore files or
# spec.ignore give patterns (then VCS_IGNORE and those patterns replace this list).
DEFAULT_IGNORE = (".git/", ".gitignore", ".gitmodules", ".gitattributes", "*.jpg", "*.jpeg",
                  "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip", ".github/",
                  ".circleci/", ".travis.yml", ".gitlab-ci.yml", "appveyor.yml", ".drone.yml",
                  "cloudbuild.yaml", "codeship-services.yml", "codeship-steps.yml",
                  "**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml")


def _ignore_spec(sync: FluxSync) -> pathspec.GitIgnoreSpec:
    """What the source leaves out of its artifact: ``sync.ignore`` (``.sourceignore`` files
    and ``spec.ignore``, after the version control files), else the default exclusions."""
    lines = sync.ignore.splitlines() if sync.ignore else list(DEFAULT_IGNORE)
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _scan_manifests(directory: Path, repo_rel: Callable[[Path], str],
                    ignored: pathspec.GitIgnoreSpec) -> tuple[list[Path], list[Path]]:
    """What kustomize-controller's generated kustomization lists for a folder without one:
    sub-folders with a kustomization (not descended into) and every YAML file below, except
    those the source leaves out. Returns (folders and files, files that are not manifests)."""
    entries: list[Path] = []
    bad: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(directory):
        here = Path(dirpath)
        kept = []
        for d in sorted(dirnames):
            sub = here / d
            if d in _SKIP_DIRS or sub.is_symlink() or ignored.match_file(repo_rel(sub) + "/"):
                continue
            if kustomization_file(sub) is not None:
                entries.append(sub)
            else:
                kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            file = here / name
            if file.suffix not in (".yaml", ".yml") or file.is_symlink():
                continue
            if ignored.match_file(repo_rel(file)):
                continue
            docs, problems = read_documents(file, repo_rel(file))
            if problems and not docs and problems[0].rule_id == "input.empty-file":
                entries.append(file)
                continue
            if problems or any(d.data is not None and not is_k8s_object(d.data) for d in docs):
                bad.append(file)
                continue
            entries.append(file)
    return entries, bad


def _kustomize_patch(patch: Any) -> dict[str, Any] | None:
    if not isinstance(patch, dict) or not isinstance(patch.get("patch"), str):
        return None
    out: dict[str, Any] = {"patch": patch["patch"]}
    target = patch.get("target")
    if isinstance(target, dict):
        out["target"] = {k: v for k, v in target.items() if k in (
            "group", "version", "kind", "name", "namespace", "labelSelector",
            "annotationSelector")}
    return out


def kustomization_for(sync: FluxSync, directory: Path, wrapper: Path,
                      entries: list[Path] | None, *, with_patches: bool = True,
                      root: Path | None = None, problems: list[str] | None = None,
                      own: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The kustomization kustomize-controller builds for this sync, written for ``wrapper``.

    As fluxcd/pkg's kustomize generator does: without a kustomization in the folder,
    ``entries`` are what its generated one lists (relative to ``wrapper``, where the files
    were copied); with one, ``own`` is that kustomization (its folder references already
    pointing from ``wrapper`` at the repository's folders), edited in place. Then
    ``targetNamespace`` replaces its ``namespace``, ``namePrefix``/``nameSuffix`` replace its
    own, ``patches`` and ``components`` are appended to its own, and ``images`` are merged
    into its entries of the same name (a new tag or digest replaces both).
    """
    spec = sync.spec
    kus: dict[str, Any]
    if own is not None:
        kus = copy.deepcopy(dict(own))
        kus.setdefault("apiVersion", "kustomize.config.k8s.io/v1beta1")
        kus.setdefault("kind", "Kustomization")
    else:
        kus = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
        if entries is None:
            kus["resources"] = [os.path.relpath(directory.resolve(), wrapper.resolve())]
        else:
            kus["resources"] = [os.path.relpath(e, wrapper) for e in entries]
    if sync.target_namespace:
        kus["namespace"] = sync.target_namespace
    for key in ("namePrefix", "nameSuffix"):
        if isinstance(spec.get(key), str) and spec[key]:
            kus[key] = spec[key]
    components = [c for c in spec.get("components") or [] if isinstance(c, str)]
    kept = []
    for component in components:
        target = directory / component
        if root is not None and not workspace.resolves_inside(target, root):
            if problems is not None:  # Flux requires local, relative component paths
                problems.append(f"component {component!r} leaves the repository")
            continue
        if not target.exists() and spec.get("ignoreMissingComponents"):
            continue
        kept.append(os.path.relpath(target.resolve(), wrapper.resolve()))
    if kept:
        kus["components"] = [*(kus.get("components") or []), *kept]
    if with_patches:
        patches = [p for p in map(_kustomize_patch, spec.get("patches") or []) if p]
        if patches:
            kus["patches"] = [*(kus.get("patches") or []), *patches]
        images = [dict(i) for i in spec.get("images") or [] if isinstance(i, dict)]
        if images:
            kus["images"] = _merge_images(list(kus.get("images") or []), images)
    metadata = [m for m in kus.get("buildMetadata") or [] if isinstance(m, str)]
    kus["buildMetadata"] = [*metadata, *(m for m in BUILD_METADATA if m not in metadata)]
    return kus


def _merge_images(own: list[Any], flux: list[dict[str, Any]]) -> list[Any]:
    """Flux's ``images`` merged into a kustomization's: an entry of the same name gets the
    new name, and a new tag or digest replaces both; others are appended."""
    out = [dict(i) if isinstance(i, dict) else i for i in own]
    for image in flux:
        same = next((i for i in out if isinstance(i, dict)
                     and i.get("name") == image.get("name")), None)
        if same is None:
            out.append({k: image[k] for k in ("name", "newName", "newTag", "digest")
                        if image.get(k)})
            continue
        if image.get("newName"):
            same["newName"] = image["newName"]
        if image.get("newTag") or image.get("digest"):
            for key in ("newTag", "digest"):
                if image.get(key):
                    same[key] = image[key]
                else:
                    same.pop(key, None)
    return out


# Kustomization fields whose entries may name folders (other kustomizations).
_FOLDER_ENTRIES = ("resources", "bases", "components", "generators", "transformers",
                   "validators")


def _rebased(data: Mapping[str, Any], directory: Path, wrapper: Path) -> dict[str, Any]:
    """A folder's kustomization for a copy of the folder in ``wrapper``: entries naming a
    folder point at the repository's (its own relative paths would not lead there from the
    copy); files are copied beside it, so their entries stay as written."""
    out = copy.deepcopy(dict(data))
    for key in _FOLDER_ENTRIES:
        entries = out.get(key)
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            if not isinstance(entry, str) or "\n" in entry or is_remote(entry):
                continue
            target = Path(os.path.normpath(directory.resolve() / entry))
            if target.is_dir():
                entries[index] = os.path.relpath(target, wrapper.resolve())
    return out


def _copy_folder(directory: Path, wrapper: Path, fs_root: Path,
                 ignored: pathspec.GitIgnoreSpec, repo_rel: Callable[[Path], str],
                 copies: Mapping[Path, Path], local: dict[Path, Path]) -> None:
    """The folder's regular files into ``wrapper`` (not its kustomization file, and not what
    the source leaves out of its artifact), each mapped to its repository file."""
    for dirpath, dirnames, filenames in os.walk(directory):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS
                             and not (here / d).is_symlink()
                             and not ignored.match_file(repo_rel(here / d) + "/"))
        for name in sorted(filenames):
            file = here / name
            if (here == directory and name in KUSTOMIZATION_NAMES) or file.is_symlink() \
                    or not file.is_file() or ignored.match_file(repo_rel(file)):
                continue
            if not workspace.resolves_inside(file, fs_root):
                continue
            dest = wrapper / file.relative_to(directory)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, dest)
            local[dest.resolve()] = copies.get(file.resolve(), file.resolve())


def render_sync(sync: FluxSync, root: Path, remote_hosts: Sequence[str] = ()) -> LoadResult:
    """Render a sync as kustomize-controller does, with the real Kustomize.

    The folder is read from this repository, or from a copy of the ExternalArtifact that its
    ArtifactGenerator would produce (objects still point at the repository's files). Then
    ``commonMetadata`` is applied; ``postBuild`` substitution is left to ``apply``. Fields
    Flux's ``patches`` and ``images`` changed point at those entries of the Kustomization.
    """
    artifact: Path | None = None
    copies: dict[Path, Path] = {}
    try:
        if sync.artifact:
            artifact = Path(tempfile.mkdtemp(prefix="gitops-checker-artifact-"))
            for src, dst in sync.artifact:
                target = artifact / dst
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / src, target)
                copies[target.resolve()] = (root / src).resolve()
            directory = artifact / sync.artifact_path
        else:
            directory = sync.path
        fs_root = artifact if artifact is not None else root
        result = _render_once(sync, directory, root, copies, remote_hosts, True, fs_root)
        if (sync.spec.get("patches") or sync.spec.get("images")) and result.resources:
            plain = _render_once(sync, directory, root, copies, remote_hosts, False, fs_root)
            result.resources = _attribute(result.resources, plain.resources, sync)
    finally:
        if artifact is not None:
            shutil.rmtree(artifact, ignore_errors=True)
    result.resources = _common_metadata(result.resources, sync)
    return result


def _render_once(sync: FluxSync, directory: Path, root: Path, copies: Mapping[Path, Path],
                 remote_hosts: Sequence[str], with_patches: bool, fs_root: Path) -> LoadResult:
    declared = sync.location.path
    problems: list[Finding] = []

    def repo_rel(path: Path) -> str:
        return relpath(copies.get(path.resolve(), path), root)

    def prepare(wrapper: Path) -> Mapping[Path, Path]:
        local: dict[Path, Path] = dict(copies)
        entries: list[Path] | None = None
        if kustomization_file(directory) is None:
            found, bad = _scan_manifests(directory, repo_rel, _ignore_spec(sync))
            for file in bad if with_patches else []:
                problems.append(input_finding(
                    RULE_KUSTOMIZE, f"Flux Kustomization {sync.name}: {repo_rel(file)} is not "
                    "a Kubernetes manifest, and kustomize-controller lists every YAML file of "
                    "a folder without a kustomization, so Flux fails to build this sync",
                    repo_rel(file)))
            entries = []
            for entry in found:
                if entry.is_dir():
                    entries.append(entry)
                    continue
                dest = wrapper / "files" / entry.relative_to(directory)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(entry, dest)
                local[dest.resolve()] = copies.get(entry.resolve(), entry.resolve())
                entries.append(dest)
        own: dict[str, Any] | None = None
        kfile = kustomization_file(directory)
        if kfile is not None and (sync.target_namespace or any(
                sync.spec.get(k) for k in KUSTOMIZE_FIELDS)):
            # Flux edits the folder's own kustomization: build a copy of the folder with it
            parsed = read_kustomization(directory)
            if parsed is not None and not parsed.problem:
                own = _rebased(parsed.data, directory, wrapper)
                _copy_folder(directory, wrapper, fs_root, _ignore_spec(sync), repo_rel,
                             copies, local)
        refused: list[str] = []
        kus = kustomization_for(sync, directory, wrapper, entries, with_patches=with_patches,
                                root=fs_root, problems=refused, own=own)
        for text in refused if with_patches else []:
            where = sync.locate(("components",))
            problems.append(input_finding(RULE_KUSTOMIZE, f"Flux Kustomization {sync.name}: "
                                          f"{text}, so it was not used", where.path,
                                          where.line))
        (wrapper / "kustomization.yaml").write_text(yaml.safe_dump(kus, sort_keys=False),
                                                    encoding="utf-8")
        return local

    where = sync.artifact_path or relpath(sync.path, root)
    result = render_prepared(
        prepare, root, what=f"Flux Kustomization {sync.name} (path {where})",
        declared=declared, fallback_dir=root / declared, graph=[directory],
        remote_hosts=remote_hosts, kind="flux", line=sync.location.line,
        graph_root=fs_root)
    result.findings[:0] = problems
    kfile = kustomization_file(directory)
    if kfile is not None:  # read, as a Kustomize root's file is
        result.files.add(repo_rel(kfile))
    return result


def _leaves(value: Any, path: FieldPath = ()) -> Iterator[tuple[FieldPath, Any]]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path, value


def _get(value: Any, path: FieldPath) -> Any:
    for part in path:
        if isinstance(value, dict):
            if part not in value:
                return _MISSING
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return _MISSING
    return value


_MISSING = object()


class _Overlay(Mapping[FieldPath, SourceLocation]):
    """Marks of a rendered object with the fields a Flux patch or image changed on top."""

    def __init__(self, base: Mapping[FieldPath, SourceLocation],
                 changed: Mapping[FieldPath, SourceLocation]) -> None:
        self._base = base
        self._changed = changed

    def __getitem__(self, key: FieldPath) -> SourceLocation:
        key = tuple(key)
        if key in self._changed:
            return self._changed[key]
        return self._base[key]

    def __iter__(self) -> Iterator[FieldPath]:
        yield from self._changed
        yield from (k for k in self._base if k not in self._changed)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _targets(patch: Any, res: Resource) -> bool:
    target = mapping_of(patch.get("target")) if isinstance(patch, dict) else {}
    for key, actual in (("kind", res.kind), ("name", res.name), ("namespace", res.namespace)):
        want = target.get(key)
        if isinstance(want, str) and want and not re.fullmatch(want, actual):
            return False
    return True


def _attribute(full: list[Resource], plain: list[Resource], sync: FluxSync) -> list[Resource]:
    """Point fields that Flux's patches or images changed at the Kustomization's lines.

    The sync is rendered twice, with and without them; a field that differs came from the
    Flux object: from the image entry for container images, else from the first patch whose
    target selects the object (the first patch when the selection is ambiguous).
    """
    before = {r.key: r for r in plain}
    patches = list(sync.spec.get("patches") or [])
    out = []
    for res in full:
        old = before.get(res.key)
        changed: dict[FieldPath, SourceLocation] = {}
        chosen = next((i for i, p in enumerate(patches) if _targets(p, res)), 0)
        for path, value in _leaves(dict(res.body)):
            if old is not None and _get(old.body, path) == value:
                continue
            if path and path[-1] == "image" and sync.spec.get("images"):
                where = sync.locate(_image_entry(sync, old, path))
            elif patches:
                where = sync.locate(("patches", chosen))
            else:
                where = sync.locate(("images",))
            for end in range(1, len(path) + 1):
                if old is None or _get(old.body, path[:end]) is _MISSING or end == len(path):
                    changed.setdefault(path[:end], where)
        if changed:
            res = replace(res, marks=_Overlay(res.marks, changed))
        out.append(res)
    return out


def _image_entry(sync: FluxSync, old: Resource | None, path: FieldPath) -> FieldPath:
    """``("images", j)`` of the entry that matches the image the field had before."""
    before = _get(old.body, path) if old is not None else _MISSING
    name = str(before).split("@", 1)[0] if isinstance(before, str) else ""
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    for j, entry in enumerate(sync.spec.get("images") or []):
        if isinstance(entry, dict) and entry.get("name") == name:
            return ("images", j)
    return ("images",)


def _common_metadata(resources: list[Resource], sync: FluxSync) -> list[Resource]:
    """``spec.commonMetadata``: labels and annotations set on every object's metadata (not on
    selectors or templates), after the build and before substitution, as Flux does."""
    common = mapping_of(sync.spec.get("commonMetadata"))
    labels = {str(k): str(v) for k, v in mapping_of(common.get("labels")).items()}
    annotations = {str(k): str(v) for k, v in mapping_of(common.get("annotations")).items()}
    if not labels and not annotations:
        return resources
    out = []
    for res in resources:
        body: dict[str, Any] = copy.deepcopy(dict(res.body))
        meta = body.setdefault("metadata", {})
        if isinstance(meta, dict):
            if labels:
                meta["labels"] = {**mapping_of(meta.get("labels")), **labels}
            if annotations:
                meta["annotations"] = {**mapping_of(meta.get("annotations")), **annotations}
        out.append(replace(res, body=body))
    return out


def load_sync(sync: FluxSync, root: Path, load_folder: FolderLoader,
              remote_hosts: Sequence[str] = ()) -> LoadResult:
    """The objects of one sync before ``postBuild`` substitution (see ``apply``).

    A plain folder with nothing Kustomize-only is loaded directly by ``load_folder`` (the
    loader's ``load_paths``: same objects, exact positions, faster); everything else is
    rendered by ``render_sync``.
    """
    if sync.needs_kustomize:
        return render_sync(sync, root, remote_hosts)
    part = load_folder([sync.path], root, remote_hosts=remote_hosts)
    part.coverage.append(Coverage("rendered", "flux", f"Flux Kustomization {sync.name} "
                                  f"(path {relpath(sync.path, root)})", sync.location.path,
                                  sync.location.line, produced=len(part.resources)))
    return part


def variables(sync: FluxSync, resources: Iterable[Resource], part: LoadResult,
              ) -> dict[str, str]:
    """The variables of ``postBuild``: ``substituteFrom`` ConfigMaps and Secrets found among
    ``resources`` (in order, later ones win), then the inline ``substitute`` over them.

    One that is not in the repository (kustomize-controller reads it from the cluster) is
    recorded in ``part`` as not checked, unless ``optional``. Secrets are never substituted
    (their values must not reach a report): each is recorded as not checked. Their variables
    are left as written.
    """
    post = mapping_of(sync.spec.get("postBuild"))
    refs = [r for r in post.get("substituteFrom") or [] if isinstance(r, dict)]
    if not refs:
        return dict(sync.substitute)
    namespace = sync.name.split("/", 1)[0]
    index: dict[tuple[str, str], list[Resource]] = {}
    for res in resources:
        if res.kind in ("ConfigMap", "Secret") and res.api_version == "v1":
            index.setdefault((res.kind, res.name), []).append(res)
    out: dict[str, str] = {}
    for number, ref in enumerate(refs):
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        where = sync.locate(("postBuild", "substituteFrom", number))
        found = [r for r in index.get((kind, name), []) if r.namespace in (namespace, "")]
        if not found:
            if not ref.get("optional"):
                part.not_checked("flux", f"postBuild.substituteFrom {kind} {namespace}/{name} "
                                 f"of Flux Kustomization {sync.name}", where.path,
                                 "it is not in the checked paths (Flux reads it from the "
                                 "cluster), so its variables were left as written", where.line)
            continue
        body = found[0].body
        if kind == "Secret":
            reason = ("it is encrypted with SOPS" if "sops" in body else
                      "Secret values never reach a report, so they are not substituted")
            part.not_checked("flux", f"postBuild.substituteFrom Secret {namespace}/{name} of "
                             f"Flux Kustomization {sync.name}", where.path,
                             f"{reason}; its variables were left as written", where.line)
            for key in (*mapping_of(body.get("data")), *mapping_of(body.get("stringData"))):
                out.pop(str(key), None)  # an earlier ConfigMap's value is not what Flux uses
            continue
        data = mapping_of(body.get("data"))
        out.update({str(k): "" if v is None else str(v) for k, v in data.items()})
    out.update(sync.substitute)
    return out


def load_syncs(syncs: Sequence[FluxSync], root: Path, load_folder: FolderLoader,
               remote_hosts: Sequence[str] = ()) -> list[LoadResult]:
    """``load_sync`` of each sync, in order. Kustomize builds run concurrently (each is a
    separate process), as Kustomize roots are; plain folders load here, in this thread, since
    a large one is parsed in forked processes."""
    built = [s for s in syncs if s.needs_kustomize]
    rendered: dict[int, LoadResult] = {}
    if len(built) > 1:
        with ThreadPoolExecutor(max_workers=min(4, len(built))) as pool:
            rendered = dict(zip(map(id, built), pool.map(
                lambda s: render_sync(s, root, remote_hosts), built), strict=True))
    return [rendered[id(s)] if id(s) in rendered else load_sync(s, root, load_folder,
                                                                 remote_hosts)
            for s in syncs]
