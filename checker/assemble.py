"""The assemble stage: one Report, what limited formats hold, and the exit code.

Everything a renderer could be tempted to decide is decided here, once, before any renderer
runs: the order of the findings, the rules they need, and for formats with a cap (GitHub code
scanning reads at most 25,000 results of a SARIF run) which findings are kept and what is
left out. Renderers then write what the Report says and never filter.
"""

from __future__ import annotations

import gzip
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import replace

from checker.changes import Changes
from checker.delta import Baseline, classify, gated, newness_rank
from checker.errors import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK
from checker.model import NEW, Annotations, Finding, Report, Rule, Selection, Severity
from checker.report import markdown, sarif
from checker.rules import BUILTIN_RULES
from checker.selection import (
    _WHY_BYTES,
    _WHY_RESULTS,
    AFFECTS_SHOWN,
    GROUP_PREFIX,
    LOCATED,
    MARKDOWN,
    SARIF,
    SARIF_ACCEPTED,
    SARIF_LIMIT_BYTES,
    SARIF_MAX_BYTES,
    SARIF_MAX_RESULTS,
    SARIF_MAX_RUNS,
    SUMMARY_CAPS,
    SUMMARY_LIMIT_BYTES,
    SUMMARY_MAX_BYTES,
    _part,
    by_location,
    cluster_group,
    located,
    markdown_selection,
    rank,
    sarif_groups,
    sarif_parts,
    select,
)

__all__ = ["AFFECTS_SHOWN", "ANNOTATIONS_LISTED", "ANNOTATIONS_PER_JOB", "ANNOTATIONS_PER_KIND",
           "ANNOTATION_KIND", "EXIT_ERROR", "EXIT_FINDINGS", "EXIT_OK", "GROUP_PREFIX",
           "LOCATED", "MARKDOWN", "SARIF", "SARIF_ACCEPTED", "SARIF_LIMIT_BYTES",
           "SARIF_MAX_BYTES", "SARIF_MAX_RESULTS", "SARIF_MAX_RUNS", "SUMMARY_CAPS",
           "SUMMARY_LIMIT_BYTES", "SUMMARY_MAX_BYTES", "annotation_selection",
           "annotation_tier", "assemble", "by_location", "cluster_group", "exit_code",
           "located", "markdown_selection", "rank", "relocate", "report_order", "rules_for",
           "sarif_groups", "sarif_parts", "sarif_selection", "sarif_size", "select",
           "summary_caps"]
# GitHub's limits of workflow-command annotations (actions/toolkit docs/problem-matchers.md,
# "Limitations"): 10 error, 10 warning and 10 notice annotations per step, 50 per job; the
# rest are dropped in the order they were written, silently.
ANNOTATIONS_PER_KIND = 10
ANNOTATIONS_PER_JOB = 50
ANNOTATION_KIND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}
ANNOTATIONS_LISTED = 50  # rows of the job summary's table of findings not annotated


def sarif_size(report: Report, parts: tuple[Selection, ...], *, accepted: bool = False) -> int:
    """Bytes of the SARIF file of ``parts``, gzip-compressed as upload-sarif sends it."""
    key = SARIF_ACCEPTED if accepted else SARIF
    probe = replace(report, selections={**report.selections, key: parts})
    text = sarif.render_accepted(probe) if accepted else sarif.render(probe)
    return len(gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0))


def _bound(report: Report, parts: tuple[Selection, ...]) -> int:
    """An upper bound of the uncompressed file's bytes, without writing it: a JSON string
    escape takes at most 12 bytes per character, a result's fixed text less than 700, a
    rule's (with its help text) 12 times its text and 1,000."""
    size = 2_000 + sum(12 * len(c.what + c.reason + c.path) + 700 for c in report.coverage)
    for rule in report.rules.values():
        size += 1_000 + 12 * (len(rule.id) * 3 + len(rule.title) * 2 + len(rule.description)
                              + len(rule.help) * 2 + len(rule.help_uri) + 60 * len(
                                  rule.controls))
    for part in parts:
        size += 3_000 + 12 * len(part.run)
        for f in part.kept:
            size += 700 + 12 * (len(f.message) + len(f.resource) + len(f.location.path)
                                + len(f.rule_id) + len(f.cluster) + len(f.category))
            if f.suppression is not None:
                s = f.suppression
                size += 200 + 12 * (len(s.justification) + len(s.owner) + len(s.expires))
    return size


SAMPLE = 4_000  # results rendered to estimate the compressed size of a large file


def _estimate(report: Report, parts: tuple[Selection, ...], *, accepted: bool) -> float:
    """The compressed size of the file, from a render of every k-th result (about
    ``SAMPLE``), scaled to all of them. A sample compresses worse than the whole (its results
    are less alike), so this errs high; the caller acts on it only with a wide margin."""
    total = sum(len(p.kept) for p in parts)
    step = max(total // SAMPLE, 1)
    if step == 1:
        return sarif_size(report, parts, accepted=accepted)
    sample = tuple(replace(p, kept=p.kept[::step]) for p in parts)
    kept = sum(len(p.kept) for p in sample)
    return sarif_size(report, sample, accepted=accepted) * total / max(kept, 1)


def sarif_selection(report: Report, *, accepted: bool = False,
                    limit: int | None = SARIF_MAX_RESULTS,
                    max_bytes: int | None = SARIF_MAX_BYTES) -> tuple[Selection, ...]:
    """The runs of the uploaded SARIF file (``accepted``: of the accepted-findings file).

    Each run holds at most ``limit`` results; when the file would still be over ``max_bytes``
    compressed, every run keeps the same, smaller share of its results (new and most severe
    first) until it fits. A run's ``why`` says which limit left results out.
    """
    findings = by_location(report.suppressed if accepted else report.active)
    groups = sarif_groups(report, findings)
    why = _WHY_RESULTS.format(limit=limit)
    parts = tuple(_part(report, run, clusters, items, limit, why)
                  for run, clusters, items in groups)
    if max_bytes is None or _bound(report, parts) <= max_bytes:
        return parts
    estimate = _estimate(report, parts, accepted=accepted)
    if estimate <= max_bytes * 0.7:
        return parts
    counts = [len(p.kept) for p in parts]
    share = max_bytes * 0.9 / estimate
    for _ in range(8):
        parts = tuple(_part(report, run, clusters, items, int(n * share),
                            f"{why} and {_WHY_BYTES}")
                      for (run, clusters, items), n in zip(groups, counts, strict=True))
        size = sarif_size(report, parts, accepted=accepted)
        if size <= max_bytes:
            break
        share *= max_bytes / size * 0.95
    return parts


def summary_caps(report: Report) -> tuple[dict[str, int], dict[str, tuple[Selection, ...]]]:
    """The caps of the Markdown summary and its findings tables, so that it is at most
    ``SUMMARY_MAX_BYTES``: the default caps, halved while the rendered summary is larger
    (every cell is at most ``markdown.CELL_MAX`` characters, so a row is bounded). Every table
    is capped, so the summary is small and is rendered to be measured."""
    caps = dict(SUMMARY_CAPS)
    for _ in range(12):
        chosen = markdown_selection(report, caps)
        probe = replace(report, caps=caps, selections={**report.selections, **chosen})
        if len(markdown.render(probe).encode("utf-8")) <= SUMMARY_MAX_BYTES:
            break
        caps = {k: max(v // 2, 1) for k, v in caps.items()}
    return caps, chosen


def rules_for(findings: Iterable[Finding], rules: Mapping[str, Rule]) -> dict[str, Rule]:
    """``rules`` plus the built-in rule of every finding that has one, sorted by id."""
    out = dict(rules)
    for f in findings:
        if f.rule_id not in out and f.rule_id in BUILTIN_RULES:
            out[f.rule_id] = BUILTIN_RULES[f.rule_id]
    return dict(sorted(out.items()))


def report_order(finding: Finding) -> tuple[object, ...]:
    """The order of a report's findings: new ones first (with a base), then by file and line."""
    return (newness_rank(finding), *finding.sort_key())


def assemble(report: Report, baseline: Baseline | None = None) -> Report:
    """The final Report: with ``baseline``, the delta against it (every finding new or
    unchanged, the base's other findings ``fixed``); findings in their deterministic order,
    new ones first; rules completed, and the selection of every limited format made."""
    if baseline is not None:
        report = classify(report, baseline.report, baseline.commit)
    findings = report.findings
    if report.base and not all(f.baseline for f in findings):  # added after the delta (the
        findings = tuple(f if f.baseline else replace(f, baseline=NEW)  # what-if's problems):
                         for f in findings)  # about this run, so new
    findings = tuple(sorted(findings, key=report_order))
    fixed = tuple(sorted(report.fixed, key=Finding.sort_key))
    report = replace(report, findings=findings, fixed=fixed,
                     rules=rules_for((*findings, *fixed), report.rules),
                     errors=tuple(dict.fromkeys(report.errors)))
    cap = SARIF_MAX_RESULTS
    report = replace(report, selections={
        SARIF: sarif_selection(report, limit=cap),
        SARIF_ACCEPTED: sarif_selection(report, accepted=True, limit=cap)})
    caps, chosen = summary_caps(report)
    chosen[LOCATED] = (Selection(run="", kept=tuple(by_location(report.active))),)
    return replace(report, caps=caps, selections={**report.selections, **chosen})


def annotation_tier(finding: Finding, changes: Changes | None) -> int:
    """0: new and on a changed line; 1: new; 2: on a changed line; 3: the rest.

    "New" is the delta's word (``baseline == "new"``); without a base every finding is of
    tier 2 or 3, so the changed lines still come first.
    """
    loc = finding.location
    changed = changes is not None and changes.touches(loc.path, loc.line, loc.end_line)
    new = finding.baseline == NEW
    return (0 if changed else 1) if new else (2 if changed else 3)


def annotation_selection(report: Report, changes: Changes | None, *, limit: int,
                         reserved: Mapping[str, int] | None = None, note: str = "",
                         per_kind: int = ANNOTATIONS_PER_KIND) -> Report:
    """The report with the findings the Action annotates chosen (``Report.annotations``).

    The reviewer's change first: new findings on changed lines, then other new findings,
    then other findings on changed lines, then the rest; within each, the most severe first,
    then the report's order. GitHub keeps ``per_kind`` annotations of each kind per step and
    50 per job, so no more are written: of each kind ``per_kind`` less what the step writes
    anyway (``reserved``: kind -> count, its tool errors, the comment's line), and at most
    ``limit`` in all. When any finding is left out, one notice slot is kept for the line that
    says so; the job summary lists what was left out. A line several overlays render is one
    annotation naming the objects (``located``).
    """
    taken = dict(reserved or {})
    active = located(report)  # one per source location, as SARIF and JUnit show them
    order = sorted(range(len(active)), key=lambda i: (
        annotation_tier(active[i], changes), -int(active[i].severity), i))
    total = max(0, min(limit, ANNOTATIONS_PER_JOB - sum(taken.values())))

    def choose(notice_kept: int) -> tuple[list[Finding], list[Finding]]:
        room = {kind: max(0, per_kind - taken.get(kind, 0)) for kind in ANNOTATION_KIND.values()}
        room["notice"] = max(0, room["notice"] - notice_kept)
        budget = max(0, min(total, ANNOTATIONS_PER_JOB - sum(taken.values()) - notice_kept))
        kept: list[Finding] = []
        left: list[Finding] = []
        for i in order:
            f = active[i]
            kind = ANNOTATION_KIND[f.severity]
            if budget > 0 and room[kind] > 0:
                kept.append(f)
                room[kind] -= 1
                budget -= 1
            else:
                left.append(f)
        return kept, left

    kept, left = choose(0)
    if left:
        kept, left = choose(1)
    on_changed = sum(1 for f in kept if annotation_tier(f, changes) in (0, 2))
    return replace(report, annotations=Annotations(
        kept=tuple(kept), left_out=tuple(left), listed=tuple(left[:ANNOTATIONS_LISTED]),
        on_changed_lines=on_changed,
        base=changes.base if changes is not None else "",
        changed_lines=len(changes) if changes is not None else 0, note=note,
        per_kind=per_kind, limit=total))


def _under(prefix: str, path: str) -> str:
    if not path or path == ".":
        return prefix
    return posixpath.normpath(posixpath.join(prefix, path))


def relocate(report: Report, prefix: str) -> Report:
    """The report with every path relative to the repository root, ``prefix`` being where
    the scan root is in the repository (``clusters``; "" or "." for the root itself).

    Annotations, summary links and code scanning resolve a path against the repository, not
    against the folder a run happened to start in: a scan of ``clusters/`` reports
    ``clusters/prod/app.yaml``. Every path of the report moves (findings, the coverage
    ledger, the fixed findings of a delta, the rows of a policy change's impact), so all
    formats agree; the selection is made again
    on the moved findings.
    """
    prefix = prefix.strip("/")
    if prefix in ("", "."):
        return report
    findings = tuple(replace(f, location=replace(f.location, path=_under(prefix, f.location.path)))
                     for f in report.findings)
    fixed = tuple(replace(f, location=replace(f.location, path=_under(prefix, f.location.path)))
                  for f in report.fixed)
    coverage = tuple(replace(c, path=_under(prefix, c.path)) for c in report.coverage)
    impact = report.impact
    if impact is not None:
        impact = replace(impact, entries=tuple(
            replace(e, location=replace(e.location, path=_under(prefix, e.location.path)))
            for e in impact.entries))
    return assemble(replace(report, findings=findings, fixed=fixed, coverage=coverage,
                            impact=impact))


def exit_code(report: Report, fail_on: Severity | None) -> int:
    """0: nothing at or above the threshold; 1: findings; 2: configuration or tool errors.

    A file that could not be read is never a pass, whatever the threshold or the gate. With
    ``report.gate == "new"`` only new findings weigh against ``fail_on`` (existing ones are
    counted and shown, not gated).
    """
    if report.errors:
        return EXIT_ERROR
    for f in report.active:
        if f.category == "input" and f.severity is Severity.ERROR:
            return EXIT_FINDINGS
    for f in gated(report, report.gate):
        if fail_on is not None and f.severity >= fail_on:
            return EXIT_FINDINGS
    return EXIT_OK
