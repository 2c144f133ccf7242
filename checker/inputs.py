"""``gitops-checker inputs``: the render plan, per cluster, without evaluating any policy.

For each cluster: the coverage ledger of its load (Kustomize roots and Flux syncs rendered
with the objects each produced, Flux Kustomizations followed with their sources, Argo CD
applications and Helm releases when their loaders add entries, and every input not checked,
with the reason), then how many objects and files the cluster has in all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.model import Coverage, Finding
from checker.report.common import coverage_counts, coverage_dict, coverage_summary

STATE_ORDER = {"not-checked": 0, "rendered": 1, "followed": 2}


@dataclass(frozen=True)
class ClusterPlan:
    """What one cluster's load rendered, followed and did not check."""

    name: str
    coverage: tuple[Coverage, ...]
    objects: int
    files: int
    problems: tuple[Finding, ...]   # input errors met while loading (broken files, cycles)


def plan(root: Path, paths: tuple[Path, ...], config_file: Path | None = None,
         ) -> list[ClusterPlan]:
    """Load every configured cluster (as ``scan`` does) and return its ledger."""
    from checker.config import load_config
    from checker.pipeline import load_cluster

    config = load_config(root, config_file, paths)
    out: list[ClusterPlan] = []
    for cluster in config.clusters:
        loaded = load_cluster(cluster, root, config.helm, config.remote_hosts)
        problems = tuple(sorted((f for f in loaded.findings if f.category == "input"
                                 and f.rule_id != "input.not-checked"), key=Finding.sort_key))
        out.append(ClusterPlan(cluster.name, tuple(sorted(set(loaded.coverage))),
                               len(loaded.resources), len(loaded.files), problems))
    return out


def _sorted(entries: tuple[Coverage, ...]) -> list[Coverage]:
    return sorted(entries, key=lambda c: (STATE_ORDER.get(c.state, 3), c.kind, c.path, c.line,
                                          c.what))


def render_text(plans: list[ClusterPlan]) -> str:
    """One block per cluster: a line per ledger entry, then the totals."""
    lines: list[str] = []
    for p in plans:
        lines.append(f"cluster {p.name}:" if p.name else "inputs:")
        for c in _sorted(p.coverage):
            where = f"{c.path}:{c.line}"
            if c.state == "not-checked":
                tail = f"not checked: {c.reason}"
            elif c.state == "rendered":
                tail = f"{c.produced} object{'s' if c.produced != 1 else ''}"
            else:
                tail = c.reason
            lines.append(f"  {c.state:<11} {c.kind:<9} {c.what} ({where}): {tail}")
        for f in p.problems:
            lines.append(f"  problem     {f.location.path}:{f.location.line}: {f.message}")
        lines.append(f"  total: {p.objects} objects from {p.files} files; "
                     f"{coverage_summary(p.coverage)}")
    lines.append("")
    return "\n".join(lines)


def render_json(plans: list[ClusterPlan]) -> str:
    """The plan as JSON (keys sorted, entries in the text's order)."""
    data: dict[str, Any] = {"clusters": [{
        "name": p.name, "objects": p.objects, "files": p.files,
        "counts": coverage_counts(p.coverage),
        "entries": [coverage_dict(c) for c in _sorted(p.coverage)],
        "problems": [{"rule": f.rule_id, "message": f.message, "path": f.location.path,
                      "line": f.location.line} for f in p.problems],
    } for p in plans]}
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
