"""Walk paths, parse manifests with positions, render Kustomize folders."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from checker.load import helm, kustomize, workspace, yamlfile
from checker.load.objects import (
    RULE_MISSING_PATH,
    YAML_SUFFIXES,
    LoadResult,
    file_result,
    input_finding,
    load_file,
    read_documents,
    relpath,
)
from checker.load.packed import PackedDocument, pack
from checker.model import Finding, Severity
from checker.parallel import available_cpus, can_fork, fork_map, no_cycle_collection, shares

HELM_CHART = "Chart.yaml"
SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".tox"})


def _walk(directory: Path, charts: list[Path], root: Path | None = None,
          refused: list[tuple[Path, str]] | None = None) -> Iterator[Path]:
    """Files below ``directory``; Helm chart folders (with Chart.yaml) go to ``charts``.

    Symlinked folders are not walked (kubectl does not walk them either); one that points
    out of ``root`` goes to ``refused`` with its target, to be reported. Symlinked files are
    yielded: reading them checks where they point.
    """
    for dirpath, dirnames, filenames in os.walk(directory):
        if HELM_CHART in filenames:
            charts.append(Path(dirpath))
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        if root is not None and refused is not None:
            for name in dirnames:
                sub = Path(dirpath, name)
                target = workspace.escapes(sub, root) if sub.is_symlink() else None
                if target is not None:
                    refused.append((sub, target))
        for name in sorted(filenames):
            yield Path(dirpath, name)


def discover(paths: Iterable[Path], charts: list[Path] | None = None,
             problems: list[Finding] | None = None, root: Path | None = None,
             exclude: Iterable[Path] = (), refused: list[tuple[Path, str]] | None = None,
             ) -> tuple[list[Path], list[Path], list[Path]]:
    """Split the given paths into plain YAML files, Kustomize roots to render, missing paths.

    Helm chart folders are not walked (their templates are not YAML until rendered); they are
    appended to ``charts`` so the caller can say so. Kustomization cycles and self-references
    are appended to ``problems``. Files and roots inside ``exclude`` (folders a Flux
    Kustomization syncs, which are rendered as Flux renders them) are left out; what their
    kustomizations include is still owned, so a base of a synced overlay is not a root.
    With ``root``, folders inside it that resolve outside it (a given path or a symlinked
    folder met on the way) are not walked; they go to ``refused`` with their target.
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
        target = workspace.escapes(given, root) if root is not None else None
        if target is not None:
            if refused is not None:
                refused.append((given, target))
            continue
        if kustomize.kustomization_file(given) is not None:
            kustomize_dirs.append(given)
        for file in _walk(given, charts, root, refused):
            if file.suffix in YAML_SUFFIXES:
                files.append(file)
            if file.name in kustomize.KUSTOMIZATION_NAMES and file.parent != given:
                kustomize_dirs.append(file.parent)
    excluded = [e.resolve() for e in exclude]
    for folder in excluded:  # what a synced overlay includes is not a root of its own
        if kustomize.kustomization_file(folder) is not None:
            kustomize_dirs.append(folder)
    kustomize_dirs = sorted(set(kustomize_dirs))
    planned = kustomize.plan(kustomize_dirs, root)
    if problems is not None:
        problems.extend(planned.findings)
    rendered_dirs = {d.resolve() for d in kustomize_dirs}

    def kept(path: Path) -> bool:
        return not any(_within(path, e) for e in excluded)

    plain = [f for f in dict.fromkeys(files)
             if f.resolve() not in planned.owned and f.resolve().parent not in rendered_dirs
             and kept(f)]
    return plain, [r for r in planned.roots if kept(r)], missing


def _within(path: Path, folder: Path) -> bool:
    resolved = path.resolve()
    return resolved == folder or folder in resolved.parents


PARALLEL_BYTES = 2 * 1024 * 1024  # below this much YAML, one process parses faster


def _load_files(files: list[Path], root: Path) -> list[LoadResult]:
    """``load_file`` of each file, in order; large sets are parsed in several processes.

    The first share is parsed here; the others in forked processes, which send their
    documents back packed (``checker.load.packed``): data as JSON text, spans as a flat array.
    """
    sizes = [_size(f) for f in files]
    parts = available_cpus() if sum(sizes) >= PARALLEL_BYTES and can_fork() else 1
    if parts <= 1 or len(files) < 2 * parts:
        return [load_file(f, root) for f in files]
    here = os.getpid()
    budget = yamlfile.run_budget_now()
    start = budget.left
    share = max(start, 0) // parts  # each parser spends at most its share of the run's

    def parse(bounds: tuple[int, int]) -> tuple[list[tuple[str, list[Any], list[Finding]]],
                                                 int]:
        forked = os.getpid() != here
        budget.left = share
        out: list[tuple[str, list[Any], list[Finding]]] = []
        for file in files[bounds[0]:bounds[1]]:
            rel = relpath(file, root)
            docs, findings = read_documents(file, rel, root)
            out.append((rel, [pack(d) for d in docs] if forked else docs, findings))
        return out, share - budget.left

    results = fork_map(parse, shares(sizes, parts, LEAD))
    budget.left = start - sum(spent for _, spent in results)
    parsed = itertools.chain.from_iterable(out for out, _ in results)
    return [file_result(file, rel, [d.unpack() if isinstance(d, PackedDocument) else d
                                    for d in docs], findings)
            for file, (rel, docs, findings) in zip(files, parsed, strict=True)]


LEAD = 1.3  # the first share is parsed here and not packed: it takes this much more


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except OSError:
        return 0  # read_documents reports it


def load_paths(paths: Iterable[Path], root: Path, *, exclude: Iterable[Path] = (),
               remote_hosts: Sequence[str] = ()) -> LoadResult:
    """Load everything under ``paths``; every problem is a finding, nothing raises.

    ``exclude``: folders left out (rendered elsewhere, as a Flux Kustomization syncs them);
    ``remote_hosts``: hosts the trusted config lets Kustomize fetch remote bases from.
    Alias expansion shares one budget per call, or the scan's (``yamlfile.run_budget``).
    """
    with no_cycle_collection(), yamlfile.run_budget():
        return _load_paths(paths, root, tuple(exclude), tuple(remote_hosts))


def _load_paths(paths: Iterable[Path], root: Path, exclude: tuple[Path, ...],
                remote_hosts: tuple[str, ...]) -> LoadResult:
    charts: list[Path] = []
    result = LoadResult()
    refused: list[tuple[Path, str]] = []
    plain, roots, missing = discover(paths, charts, result.findings, root, exclude, refused)
    for folder, target in refused:
        rel = relpath(folder, root)
        result.not_checked("symlink", f"folder {rel}", rel,
                           f"it is a symlink to {target}, outside the repository, and was not "
                           "followed", severity=Severity.ERROR)
    for path in missing:
        result.findings.append(input_finding(
            RULE_MISSING_PATH, f"path does not exist: {path}", relpath(path, root)))
    for chart in charts:  # a HelmRelease that names the chart replaces this (helm.py)
        leaving = kustomize.links_out(chart, root)  # Helm, too, reads what links point at
        if leaving:
            rel = relpath(chart, root)
            result.not_checked(
                "helm-chart", f"Helm chart {rel}", relpath(chart / HELM_CHART, root),
                f"{relpath(leaving[0][0], root)} resolves to {leaving[0][1]}, outside the "
                "repository; the chart was not rendered", severity=Severity.ERROR)
            continue
        if not helm.in_chart_home(chart, root):
            result.extend(helm.render_default(chart, root))
    for loaded in _load_files(plain, root):
        result.extend(loaded)
    for rendered in kustomize.render_all(roots, root, remote_hosts):
        result.extend(rendered)
    result.resources.sort(key=lambda r: (r.location.path, r.location.line, r.key))
    return result
