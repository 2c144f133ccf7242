"""Render Kustomize folders with the real Kustomize and map objects back to their sources.

Each root is rendered through a throw-away wrapper kustomization that turns on
``buildMetadata: [originAnnotations]``, so every rendered object says which file it came from;
the user's files are never modified.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from checker.load.objects import (
    RULE_KUSTOMIZE,
    LoadResult,
    Marks,
    input_finding,
    is_k8s_object,
    make_resource,
    read_documents,
    relpath,
    resources_from_document,
)
from checker.load.yamlfile import SAFE_LOADER, Document, YamlProblem, parse_documents
from checker.model import Resource, SourceLocation

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ORIGIN = "config.kubernetes.io/origin"
TIMEOUT_SECONDS = 120


class KustomizeUnavailable(Exception):
    """Neither ``kustomize`` nor ``kubectl`` is installed."""


def kustomization_file(directory: Path) -> Path | None:
    """The kustomization file of a folder, if it has one."""
    for name in KUSTOMIZATION_NAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _references(directory: Path) -> list[Path]:
    file = kustomization_file(directory)
    if file is None:
        return []
    try:
        data = yaml.load(file.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    if not isinstance(data, dict):
        return []
    refs: list[Path] = []
    for key in ("resources", "bases", "components", "patchesStrategicMerge"):
        entries = data.get(key)
        if isinstance(entries, list):
            refs.extend((directory / e).resolve() for e in entries if isinstance(e, str)
                        and "://" not in e)
    for key in ("patches", "patchesJson6902"):
        entries = data.get(key)
        if isinstance(entries, list):
            refs.extend((directory / e["path"]).resolve() for e in entries
                        if isinstance(e, dict) and isinstance(e.get("path"), str))
    return refs


def plan(directories: Sequence[Path]) -> tuple[list[Path], set[Path]]:
    """Choose which folders to render (those no other scanned kustomization includes).

    Returns the roots and the set of files and folders owned by some kustomization.
    """
    owned: set[Path] = set()
    referenced_dirs: set[Path] = set()
    for directory in directories:
        for ref in _references(directory):
            owned.add(ref)
            if ref.is_dir():
                referenced_dirs.add(ref)
    roots = [d for d in directories if d.resolve() not in referenced_dirs]
    return roots, owned


def command() -> list[str]:
    """The Kustomize command line available here."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    raise KustomizeUnavailable


def _render(directory: Path) -> tuple[str, Path]:
    """Render ``directory``; return the output and the wrapper folder origins are relative to."""
    wrapper = Path(tempfile.mkdtemp(prefix="gitops-checker-kustomize-"))
    target = os.path.relpath(directory.resolve(), wrapper)
    (wrapper / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": [target], "buildMetadata": ["originAnnotations"]}),
        encoding="utf-8",
    )
    try:
        proc = subprocess.run(
            [*command(), str(wrapper)], capture_output=True, text=True,
            timeout=TIMEOUT_SECONDS, check=False,
        )
    finally:
        shutil.rmtree(wrapper, ignore_errors=True)
    if proc.returncode != 0:
        message = proc.stderr.strip().splitlines()
        raise RuntimeError(message[-1] if message else f"exit code {proc.returncode}")
    return proc.stdout, wrapper


def _strip_origin(data: dict[str, Any]) -> str | None:
    meta = data.get("metadata")
    if not isinstance(meta, dict):
        return None
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict) or ORIGIN not in annotations:
        return None
    origin = annotations.pop(ORIGIN)
    if not annotations:
        del meta["annotations"]
    return origin if isinstance(origin, str) else None


class _Sources:
    """Cache of parsed source files, to find the document a rendered object came from."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[Path, list[Document]] = {}

    def find(self, file: Path, data: dict[str, Any]) -> tuple[str, Document | None]:
        rel = relpath(file, self.root)
        if file not in self.cache:
            docs, _ = read_documents(file, rel) if file.is_file() else ([], [])
            self.cache[file] = [d for d in docs if is_k8s_object(d.data)]
        same_kind = [d for d in self.cache[file] if d.data.get("kind") == data.get("kind")]
        name = str((data.get("metadata") or {}).get("name", ""))

        def source_name(doc: Document) -> str:
            meta = doc.data.get("metadata")
            return str(meta.get("name", "")) if isinstance(meta, dict) else ""

        for candidates in (
            [d for d in same_kind if source_name(d) == name],
            [d for d in same_kind if source_name(d) and name.endswith(source_name(d))],
            [d for d in same_kind if source_name(d) and source_name(d) in name],
            same_kind if len(same_kind) == 1 else [],
        ):
            if candidates:
                return rel, candidates[0]
        return rel, None


def _resource(data: dict[str, Any], origin: str | None, wrapper: Path, kdir: Path,
              sources: _Sources) -> Resource:
    source_file: Path | None = None
    if origin:
        try:
            info = yaml.load(origin, Loader=SAFE_LOADER)
        except yaml.YAMLError:
            info = None
        if isinstance(info, dict):
            where = info.get("path") or info.get("configuredIn")
            if isinstance(where, str) and "://" not in where:
                source_file = Path(os.path.normpath(wrapper / where))
    if source_file is None:
        source_file = kustomization_file(kdir) or kdir
    rel, doc = sources.find(source_file, data)
    if doc is None:
        return make_resource(data, SourceLocation(rel, 1, 1), {})
    return make_resource(data, doc.location(rel), Marks(doc.spans, rel))


def render(directory: Path, root: Path) -> LoadResult:
    """Render one Kustomize root into Resources that point at their source files."""
    kfile = kustomization_file(directory)
    rel_dir = relpath(kfile or directory, root)
    result = LoadResult(files={rel_dir})
    try:
        output, wrapper = _render(directory)
    except KustomizeUnavailable:
        result.findings.append(input_finding(
            RULE_KUSTOMIZE,
            f"cannot render Kustomize folder {relpath(directory, root)}: neither 'kustomize' "
            "nor 'kubectl' is installed",
            rel_dir,
        ))
        return result
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as err:
        result.findings.append(input_finding(
            RULE_KUSTOMIZE, f"kustomize build {relpath(directory, root)} failed: {err}", rel_dir))
        return result
    sources = _Sources(root)
    for item in parse_documents(output):
        if isinstance(item, YamlProblem) or not is_k8s_object(item.data):
            continue
        for res in resources_from_document(item, rel_dir):
            body = dict(res.body)
            origin = _strip_origin(body)
            result.resources.append(_resource(body, origin, wrapper, directory, sources))
            result.files.add(result.resources[-1].location.path)
    return result


def render_all(directories: Iterable[Path], root: Path) -> Iterator[LoadResult]:
    """Render folders concurrently (each is a separate process); results in input order."""
    dirs = list(directories)
    if not dirs:
        return
    with ThreadPoolExecutor(max_workers=min(4, len(dirs))) as pool:
        yield from pool.map(lambda d: render(d, root), dirs)
