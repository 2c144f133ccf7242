"""The assemble stage: one Report, what limited formats hold, and the exit code.

Everything a renderer could be tempted to decide is decided here, once, before any renderer
runs: the order of the findings, the rules they need, and for formats with a cap (GitHub code
scanning reads at most 25,000 results of a SARIF run) which findings are kept and what is
left out. Renderers then write what the Report says and never filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from checker.errors import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK
from checker.model import Finding, Report, Rule, Selection, Severity
from checker.rules import BUILTIN_RULES

__all__ = ["EXIT_ERROR", "EXIT_FINDINGS", "EXIT_OK", "SARIF", "SARIF_ACCEPTED",
           "SARIF_MAX_RESULTS", "assemble", "exit_code", "rules_for", "sarif_groups",
           "sarif_selection", "select"]
SARIF_MAX_RESULTS = 25_000  # GitHub code scanning reads at most this many results per run
SARIF = "sarif"                    # the uploaded file: active findings
SARIF_ACCEPTED = "sarif-accepted"  # the opt-in file of accepted findings


def select(findings: Iterable[Finding], limit: int | None = SARIF_MAX_RESULTS,
           ) -> tuple[list[Finding], int]:
    """At most ``limit`` findings, the most severe first, and how many were left out.

    Cutting in file order would let thousands of warnings push every error out (and, on the
    default branch, close its alerts). So errors are kept before warnings and warnings before
    notes; within a severity the report's order decides. The chosen findings keep the report's
    order. ``limit=None``: no cap.
    """
    items = list(findings)
    if limit is None or len(items) <= limit:
        return items, 0
    ranked = sorted(range(len(items)), key=lambda i: (-int(items[i].severity), i))
    keep = sorted(ranked[:limit])
    return [items[i] for i in keep], len(items) - len(keep)


def sarif_groups(report: Report, findings: Sequence[Finding]) -> list[tuple[str, list[Finding]]]:
    """The runs of a SARIF file, in order: (cluster, its findings).

    Grouped per cluster, every cluster always gets its run (GitHub closes an alert only when a
    later analysis of the same category lacks it) and findings of no cluster the first run.
    Otherwise there is one run, named "".
    """
    if not (report.group_by == "cluster" and report.clusters):
        return [("", list(findings))]
    by_cluster: dict[str, list[Finding]] = {c: [] for c in report.clusters}
    loose: list[Finding] = []
    for f in findings:
        by_cluster.get(f.cluster, loose).append(f)
    return [("", loose), *by_cluster.items()]


def sarif_selection(report: Report, *, accepted: bool = False,
                    limit: int | None = SARIF_MAX_RESULTS) -> tuple[Selection, ...]:
    """The runs of the uploaded SARIF file (``accepted``: of the accepted-findings file)."""
    findings = report.suppressed if accepted else report.active
    out = []
    for run, items in sarif_groups(report, findings):
        kept, _ = select(items, limit)
        chosen = {id(f) for f in kept}
        left: dict[str, int] = {}
        for f in items:
            if id(f) not in chosen:
                left[f.severity.label] = left.get(f.severity.label, 0) + 1
        out.append(Selection(run=run, kept=tuple(kept),
                             left_out={s.label: left[s.label] for s in
                                       sorted(Severity, reverse=True) if s.label in left},
                             limit=limit or 0))
    return tuple(out)


def rules_for(findings: Iterable[Finding], rules: Mapping[str, Rule]) -> dict[str, Rule]:
    """``rules`` plus the built-in rule of every finding that has one, sorted by id."""
    out = dict(rules)
    for f in findings:
        if f.rule_id not in out and f.rule_id in BUILTIN_RULES:
            out[f.rule_id] = BUILTIN_RULES[f.rule_id]
    return dict(sorted(out.items()))


def assemble(report: Report) -> Report:
    """The final Report: findings in their deterministic order, rules completed, and the
    selection of every limited format made."""
    findings = tuple(sorted(report.findings, key=Finding.sort_key))
    report = replace(report, findings=findings, rules=rules_for(findings, report.rules),
                     errors=tuple(dict.fromkeys(report.errors)))
    cap = SARIF_MAX_RESULTS
    return replace(report, selections={
        SARIF: sarif_selection(report, limit=cap),
        SARIF_ACCEPTED: sarif_selection(report, accepted=True, limit=cap)})


def exit_code(report: Report, fail_on: Severity | None) -> int:
    """0: nothing at or above the threshold; 1: findings; 2: configuration or tool errors.

    A file that could not be read is never a pass, whatever the threshold.
    """
    if report.errors:
        return EXIT_ERROR
    for f in report.active:
        if f.category == "input" and f.severity is Severity.ERROR:
            return EXIT_FINDINGS
        if fail_on is not None and f.severity >= fail_on:
            return EXIT_FINDINGS
    return EXIT_OK
