"""Walk paths, parse manifests with positions, render Kustomize folders."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from checker.load import kustomize
from checker.load.objects import (
    RULE_MISSING_PATH,
    YAML_SUFFIXES,
    LoadResult,
    input_finding,
    load_file,
    relpath,
)

SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".tox"})


def _walk(directory: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            yield Path(dirpath, name)


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[Path], list[Path]]:
    """Split the given paths into plain YAML files, Kustomize roots to render, missing paths."""
    files: list[Path] = []
    kustomize_dirs: list[Path] = []
    missing: list[Path] = []
    for given in paths:
        if not given.exists():
            missing.append(given)
            continue
        if given.is_file():
            files.append(given)
            continue
        if kustomize.kustomization_file(given) is not None:
            kustomize_dirs.append(given)
        for file in _walk(given):
            if file.suffix in YAML_SUFFIXES:
                files.append(file)
            if file.name in kustomize.KUSTOMIZATION_NAMES and file.parent != given:
                kustomize_dirs.append(file.parent)
    kustomize_dirs = sorted(set(kustomize_dirs))
    roots, owned = kustomize.plan(kustomize_dirs)
    plain = [f for f in dict.fromkeys(files)
             if f.resolve() not in owned and f.resolve().parent not in {d.resolve() for d in
                                                                         kustomize_dirs}]
    return plain, roots, missing


def load_paths(paths: Iterable[Path], root: Path) -> LoadResult:
    """Load everything under ``paths``; every problem is a finding, nothing raises."""
    plain, roots, missing = discover(paths)
    result = LoadResult()
    for path in missing:
        result.findings.append(input_finding(
            RULE_MISSING_PATH, f"path does not exist: {path}", relpath(path, root)))
    for file in plain:
        result.extend(load_file(file, root))
    for rendered in kustomize.render_all(roots, root):
        result.extend(rendered)
    result.resources.sort(key=lambda r: (r.location.path, r.location.line, r.key))
    return result
