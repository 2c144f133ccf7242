"""Walk paths, parse manifests with positions, render Kustomize folders."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from checker.load import kustomize
from checker.load.objects import (
    RULE_HELM_SKIPPED,
    RULE_MISSING_PATH,
    YAML_SUFFIXES,
    LoadResult,
    input_finding,
    load_file,
    paused_gc,
    relpath,
)
from checker.model import Severity

HELM_CHART = "Chart.yaml"
SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".tox"})


def _walk(directory: Path, charts: list[Path]) -> Iterator[Path]:
    """Files below ``directory``; Helm chart folders (with Chart.yaml) go to ``charts``."""
    for dirpath, dirnames, filenames in os.walk(directory):
        if HELM_CHART in filenames:
            charts.append(Path(dirpath))
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            yield Path(dirpath, name)


def discover(paths: Iterable[Path],
             charts: list[Path] | None = None) -> tuple[list[Path], list[Path], list[Path]]:
    """Split the given paths into plain YAML files, Kustomize roots to render, missing paths.

    Helm chart folders are not walked (their templates are not YAML until rendered); they are
    appended to ``charts`` so the caller can say so.
    """
    charts = [] if charts is None else charts
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
        for file in _walk(given, charts):
            if file.suffix in YAML_SUFFIXES:
                files.append(file)
            if file.name in kustomize.KUSTOMIZATION_NAMES and file.parent != given:
                kustomize_dirs.append(file.parent)
    kustomize_dirs = sorted(set(kustomize_dirs))
    roots, owned = kustomize.plan(kustomize_dirs)
    rendered_dirs = {d.resolve() for d in kustomize_dirs}
    plain = [f for f in dict.fromkeys(files)
             if f.resolve() not in owned and f.resolve().parent not in rendered_dirs]
    return plain, roots, missing


def load_paths(paths: Iterable[Path], root: Path) -> LoadResult:
    """Load everything under ``paths``; every problem is a finding, nothing raises."""
    with paused_gc():
        return _load_paths(paths, root)


def _load_paths(paths: Iterable[Path], root: Path) -> LoadResult:
    charts: list[Path] = []
    plain, roots, missing = discover(paths, charts)
    result = LoadResult()
    for path in missing:
        result.findings.append(input_finding(
            RULE_MISSING_PATH, f"path does not exist: {path}", relpath(path, root)))
    for chart in charts:
        result.findings.append(input_finding(
            RULE_HELM_SKIPPED, f"Helm chart {relpath(chart, root)} is not rendered, so its "
            "templates were not checked (render it, e.g. with helm template, and scan the "
            "output)", relpath(chart / HELM_CHART, root), severity=Severity.NOTE))
    for file in plain:
        result.extend(load_file(file, root))
    for rendered in kustomize.render_all(roots, root):
        result.extend(rendered)
    result.resources.sort(key=lambda r: (r.location.path, r.location.line, r.key))
    return result
