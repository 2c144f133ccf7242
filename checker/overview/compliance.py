"""Compliance matrix: policies (grouped by standard and pack) as rows, clusters as columns.

A cell says whether the policy is active for the cluster (its packs, or its repository policy
folders), with which enforcement action, how many violations remain and how many are accepted
risks. With a snapshot of the live Constraints of a cluster, the cell also says whether the
constraint exists live and with which enforcement action. Rows are flagged where a policy is
missing in some cluster, runs only in dryrun, or differs live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.config import Config
from checker.errors import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK
from checker.model import Exemption, Report, Resource
from checker.options import ScanOptions
from checker.overview.images import read_snapshot
from checker.policy.model import Policy
from checker.policy.packs import Catalog
from checker.report.common import exemption_groups

CONSTRAINT_GROUP = "constraints.gatekeeper.sh"
REPOSITORY = "repository"
LIVE_ONLY = "live-only"


@dataclass(frozen=True)
class Cell:
    """One policy in one cluster."""

    status: str  # deny, warn, dryrun or missing
    violations: int = 0
    accepted: int = 0
    live: str = ""  # with a snapshot: the live enforcementAction, or "absent"; else ""

    @property
    def active(self) -> bool:
        """Selected for the cluster and enforcing (deny or warn)."""
        return self.status in ("deny", "warn")


@dataclass(frozen=True)
class Row:
    """A policy under a pack (a policy in several packs has one row per pack)."""

    standard: str
    pack: str
    policy: str
    title: str
    constraint: str  # Kind/name of the Constraint
    cells: Mapping[str, Cell]
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RequirementCell:
    """One requirement of a standard in one cluster.

    ``status``: ``complete`` (every policy serving it enforces, deny or warn), ``partial`` (some
    do), ``missing`` (none does) or ``outside`` (not decidable from manifests: never covered).
    """

    status: str
    enforcing: int = 0
    violations: int = 0
    accepted: int = 0


@dataclass(frozen=True)
class RequirementRow:
    """A requirement (or, for a standard that is not enumerated, a control the policies name)."""

    standard: str
    id: str
    title: str
    checks: str  # manifests, partly, outside; "mapped" when the standard is not enumerated
    note: str
    policies: tuple[str, ...]
    cells: Mapping[str, RequirementCell]


@dataclass(frozen=True)
class Matrix:
    """Everything the compliance renderers read."""

    clusters: tuple[str, ...]
    environments: Mapping[str, str]
    rows: tuple[Row, ...]
    snapshots: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    input_findings: int = 0
    requirements: tuple[RequirementRow, ...] = ()
    exemptions: tuple[Exemption, ...] = ()  # namespaces each policy skips, per cluster

    def standards(self) -> list[dict[str, Any]]:
        """Coverage per standard and cluster: requirements in all, how many manifests cannot
        decide, and of the others how many are enforced completely, partly or not at all."""
        out: dict[str, dict[str, Any]] = {}
        for req in self.requirements:
            entry = out.setdefault(req.standard, {
                "standard": req.standard, "requirements": 0, "outside": 0,
                "enumerated": req.checks != "mapped",
                "cells": {c: {"complete": 0, "partial": 0, "missing": 0, "violations": 0,
                              "accepted": 0} for c in self.clusters}})
            entry["requirements"] += 1
            entry["outside"] += req.checks == "outside"
            for cluster, cell in req.cells.items():
                if cell.status != "outside":
                    slot = entry["cells"][cluster]
                    slot[cell.status] += 1
                    slot["violations"] += cell.violations
                    slot["accepted"] += cell.accepted
        return list(out.values())

    def packs(self) -> list[dict[str, Any]]:
        """One summary per pack (not repository or live-only rows): per cluster, how many of
        its policies enforce (deny/warn), are in dryrun or missing, and its finding counts;
        ``status`` is ``complete``, ``partial`` or ``missing``."""
        out: list[dict[str, Any]] = []
        for row in self.rows:
            if row.pack in (REPOSITORY, LIVE_ONLY):
                continue
            if not out or out[-1]["pack"] != row.pack:
                out.append({"pack": row.pack, "standard": row.standard, "policies": 0,
                            "cells": {c: {"enforcing": 0, "dryrun": 0, "missing": 0,
                                          "violations": 0, "accepted": 0}
                                      for c in self.clusters}})
            summary = out[-1]
            summary["policies"] += 1
            for cluster, cell in row.cells.items():
                slot = summary["cells"][cluster]
                slot["enforcing"] += cell.active
                slot["dryrun"] += cell.status == "dryrun"
                slot["missing"] += cell.status == "missing"
                slot["violations"] += cell.violations
                slot["accepted"] += cell.accepted
        for summary in out:
            for slot in summary["cells"].values():
                slot["status"] = ("complete" if slot["enforcing"] == summary["policies"] else
                                  "missing" if slot["missing"] == summary["policies"] else
                                  "partial")
        return out

    def exit_code(self, strict: bool) -> int:
        """2 on a tool error, 1 for gaps with ``strict``, else 0."""
        if self.errors:
            return EXIT_ERROR
        return EXIT_FINDINGS if strict and self.gaps() else EXIT_OK

    def gaps(self) -> list[Row]:
        """Rows with at least one flag."""
        return [r for r in self.rows if r.flags]

    def totals(self) -> dict[str, dict[str, int]]:
        """Per cluster: active policies, missing, dryrun, violations and accepted risks.

        Constraints that exist only live are not counted (they have their own flagged rows).
        """
        out: dict[str, dict[str, int]] = {}
        seen: set[tuple[str, str]] = set()
        for cluster in self.clusters:
            out[cluster] = {"active": 0, "warn": 0, "dryrun": 0, "missing": 0,
                            "violations": 0, "accepted": 0}
        for row in self.rows:
            if row.pack == LIVE_ONLY:
                continue
            for cluster, cell in row.cells.items():
                if (row.policy, cluster) in seen:
                    continue
                seen.add((row.policy, cluster))
                t = out[cluster]
                t["active"] += cell.status == "deny"
                t["warn"] += cell.status == "warn"
                t["dryrun"] += cell.status == "dryrun"
                t["missing"] += cell.status == "missing"
                t["violations"] += cell.violations
                t["accepted"] += cell.accepted
        return out


def live_constraints(resources: Sequence[Resource]) -> dict[tuple[str, str], str]:
    """(Kind, name) -> enforcementAction of the Constraints in a snapshot."""
    out: dict[tuple[str, str], str] = {}
    for res in resources:
        if res.group == CONSTRAINT_GROUP:
            spec = res.body.get("spec")
            action = spec.get("enforcementAction") if isinstance(spec, Mapping) else None
            out[(res.kind, res.name)] = str(action or "deny")
    return out


def _flags(cells: Mapping[str, Cell], snapshot_clusters: Sequence[str]) -> tuple[str, ...]:
    flags = []
    statuses = {c: cell.status for c, cell in cells.items()}
    missing = [c for c, s in statuses.items() if s == "missing"]
    if missing and len(missing) < len(statuses):
        flags.append(f"missing in {', '.join(missing)}")
    dryrun = [c for c, s in statuses.items() if s == "dryrun"]
    if dryrun:
        flags.append(f"dryrun only in {', '.join(dryrun)}")
    if len({s for s in statuses.values() if s != "missing"}) > 1:
        flags.append("enforcement differs between clusters")
    for cluster in snapshot_clusters:
        cell = cells[cluster]
        if cell.status != "missing" and cell.live == "absent":
            flags.append(f"not live in {cluster}")
        elif cell.status != "missing" and cell.live and cell.live != cell.status:
            flags.append(f"live {cell.live} in {cluster}, repository says {cell.status}")
        elif cell.status == "missing" and cell.live not in ("", "absent"):
            flags.append(f"live in {cluster} but not in the repository")
    return tuple(flags)


def build(config: Config, catalog: Catalog, selected: Mapping[str, Sequence[Policy]],
          report: Report, snapshots: Mapping[str, Sequence[Resource]] | None = None,
          errors: Sequence[str] = ()) -> Matrix:
    """The matrix from each cluster's selected policies and the scan report's findings."""
    snapshots = snapshots or {}
    clusters = tuple(c.name for c in config.clusters)
    counts: dict[tuple[str, str], list[int]] = {}
    for finding in report.findings:
        slot = counts.setdefault((finding.rule_id, finding.cluster), [0, 0])
        slot[1 if finding.suppression is not None else 0] += 1
    live = {name: live_constraints(res) for name, res in snapshots.items()}
    rows: list[Row] = []

    def cell(policy_id: str, constraint: tuple[str, str], cluster: str,
             action: str | None) -> Cell:
        violations, accepted = counts.get((policy_id, cluster), [0, 0])
        live_action = ""
        if cluster in live:
            live_action = live[cluster].get(constraint, "absent")
        if action is None:
            return Cell("missing", 0, 0, live_action)
        return Cell(action, violations, accepted, live_action)

    by_cluster: dict[str, dict[str, Policy]] = {
        c: {p.rule.id: p for p in policies} for c, policies in selected.items()}
    for pack_name in sorted(catalog.packs):
        pack = catalog.packs[pack_name]
        for pid in catalog.resolve([pack_name]):
            pdef = catalog.policies[pid]
            known = next((by_cluster[c][pid] for c in clusters if pid in by_cluster[c]), None)
            constraint = ((known.constraint.kind, known.constraint.name) if known else ("", ""))
            cells = {c: cell(pid, constraint, c, by_cluster[c][pid].constraint.enforcement_action
                             if pid in by_cluster[c] else None) for c in clusters}
            rows.append(Row(pack.standard, pack_name, pid, pdef.rule.title,
                            "/".join(constraint) if known else "", cells,
                            _flags(cells, [c for c in clusters if c in live])))
    repo_ids = sorted({pid for c in clusters for pid, p in by_cluster[c].items()
                       if p.source == REPOSITORY})
    for pid in repo_ids:
        known = next(by_cluster[c][pid] for c in clusters if pid in by_cluster[c])
        constraint = (known.constraint.kind, known.constraint.name)
        cells = {c: cell(pid, constraint, c, by_cluster[c][pid].constraint.enforcement_action
                         if pid in by_cluster[c] and by_cluster[c][pid].source == REPOSITORY
                         else None) for c in clusters}
        rows.append(Row("Repository policies", REPOSITORY, pid, known.rule.title, pid, cells,
                        _flags(cells, [c for c in clusters if c in live])))
    shown = {r.constraint for r in rows}
    live_only = sorted({f"{kind}/{name}" for actions in live.values() for kind, name in actions
                        if f"{kind}/{name}" not in shown})
    for constraint_id in live_only:
        kind, _, name = constraint_id.partition("/")
        cells = {c: Cell("missing", 0, 0, live[c].get((kind, name), "absent") if c in live
                         else "") for c in clusters}
        rows.append(Row("Live only", LIVE_ONLY, constraint_id, "Constraint not in the repository",
                        constraint_id, cells, _flags(cells, [c for c in clusters if c in live])))
    inputs = sum(1 for f in report.findings if f.category == "input")
    return Matrix(clusters, {c.name: c.environment for c in config.clusters}, tuple(rows),
                  tuple(sorted(live)), tuple([*errors, *report.errors]), inputs,
                  requirement_rows(catalog, clusters, by_cluster, counts),
                  exemptions=report.exemptions)


def requirement_rows(catalog: Catalog, clusters: Sequence[str],
                     by_cluster: Mapping[str, Mapping[str, Policy]],
                     counts: Mapping[tuple[str, str], Sequence[int]]) -> tuple[RequirementRow, ...]:
    """Every requirement of every standard, with the state of its policies in each cluster."""
    from checker.policy.docs import standard_rows

    out: list[RequirementRow] = []
    for key in sorted(catalog.standards):
        for r in standard_rows(catalog, key):
            cells: dict[str, RequirementCell] = {}
            for cluster in clusters:
                if r["checks"] == "outside":
                    cells[cluster] = RequirementCell("outside")
                    continue
                enforcing = [pid for pid in r["policies"] if pid in by_cluster[cluster]
                             and by_cluster[cluster][pid].constraint.enforcement_action
                             in ("deny", "warn")]
                status = ("complete" if len(enforcing) == len(r["policies"]) else
                          "partial" if enforcing else "missing")
                violations = sum(counts.get((pid, cluster), (0, 0))[0] for pid in enforcing)
                accepted = sum(counts.get((pid, cluster), (0, 0))[1] for pid in enforcing)
                cells[cluster] = RequirementCell(status, len(enforcing), violations, accepted)
            out.append(RequirementRow(key, r["id"], r["title"], r["checks"], r["note"],
                                      tuple(r["policies"]), cells))
    return tuple(out)


def run(root: Path, config: Config, snapshot_files: Mapping[str, Path],
        options: ScanOptions) -> Matrix:
    """Scan every cluster of the config and build the matrix (snapshots read here)."""
    from checker.pipeline import cluster_policies, scan
    from checker.policy.packs import load_catalog

    catalog = load_catalog()
    selected = {}
    errors: list[str] = []
    for cluster in config.clusters:
        policies, problems, _ = cluster_policies(options, cluster, catalog)
        selected[cluster.name] = policies
        errors += problems
    report = scan(options, config)
    snapshots: dict[str, Sequence[Resource]] = {}
    for name, file in snapshot_files.items():
        if not file.is_file():
            errors.append(f"snapshot file does not exist: {file}")
            continue
        resources, unreadable = read_snapshot(file, root)
        errors += [f"{p.location}: {p.message}" for p in unreadable]
        snapshots[name] = resources
    return build(config, catalog, selected, report, snapshots, list(dict.fromkeys(errors)))


def as_json(matrix: Matrix) -> dict[str, Any]:
    """The JSON object of the matrix (keys sorted by the renderer)."""
    return {
        "clusters": [{"name": c, "environment": matrix.environments.get(c, "")}
                     for c in matrix.clusters],
        "rows": [{"standard": r.standard, "pack": r.pack, "policy": r.policy,
                  "title": r.title, "constraint": r.constraint, "flags": list(r.flags),
                  "cells": {c: {"status": cell.status, "violations": cell.violations,
                                "accepted": cell.accepted, "live": cell.live}
                            for c, cell in r.cells.items()}} for r in matrix.rows],
        "totals": matrix.totals(),
        "packs": matrix.packs(),
        "standards": matrix.standards(),
        "requirements": [{"standard": r.standard, "id": r.id, "title": r.title,
                          "checks": r.checks, "note": r.note, "policies": list(r.policies),
                          "cells": {c: {"status": cell.status, "enforcing": cell.enforcing,
                                        "violations": cell.violations,
                                        "accepted": cell.accepted}
                                    for c, cell in r.cells.items()}}
                         for r in matrix.requirements],
        "snapshots": list(matrix.snapshots),
        "errors": list(matrix.errors),
        "gaps": len(matrix.gaps()),
        "exemptions": exemption_groups(matrix.exemptions),
    }
