"""The assemble stage: one Report, what limited formats hold, and the exit code.

Everything a renderer could be tempted to decide is decided here, once, before any renderer
runs: the order of the findings, the rules they need, and for formats with a cap (GitHub code
scanning reads at most 25,000 results of a SARIF run) which findings are kept and what is
left out. Renderers then write what the Report says and never filter.
"""

from __future__ import annotations

import gzip
import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from operator import attrgetter

from checker.errors import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK
from checker.model import NEW, Finding, Report, Rule, Selection, Severity
from checker.rules import BUILTIN_RULES

__all__ = ["EXIT_ERROR", "EXIT_FINDINGS", "EXIT_OK", "SARIF", "SARIF_ACCEPTED",
           "SARIF_MAX_BYTES", "SARIF_MAX_RESULTS", "SARIF_MAX_RUNS", "SUMMARY_CAPS",
           "SUMMARY_MAX_BYTES", "assemble", "exit_code", "markdown_selection", "rank",
           "rules_for", "sarif_groups", "sarif_selection", "select", "summary_caps"]
# GitHub's documented limits of one SARIF upload ("SARIF support for code scanning", "SARIF
# results exceed limit", "SARIF file is too large"): over any of them the upload is rejected.
SARIF_MAX_RESULTS = 25_000  # results per run
SARIF_MAX_RUNS = 20         # runs per file (upload-sarif merges a directory into one upload)
SARIF_LIMIT_BYTES = 10_000_000  # the gzip-compressed file
# what this tool writes at most, compressed: a tenth below GitHub's limit, so another gzip
# implementation (upload-sarif compresses with Node's zlib) cannot take it over
SARIF_MAX_BYTES = 9_000_000
SARIF = "sarif"                    # the uploaded file: active findings
SARIF_ACCEPTED = "sarif-accepted"  # the opt-in file of accepted findings
GROUP_PREFIX = "clusters-"         # the run of a group of clusters: clusters-01 ... clusters-19
_WHY_RESULTS = "code scanning reads at most {limit} results per run"
_WHY_BYTES = (f"code scanning rejects a SARIF file over {SARIF_LIMIT_BYTES // 1_000_000} MB "
              "compressed")


def rank(finding: Finding) -> tuple[int, int]:
    """What a cap keeps first: new findings (the pull request's), then the most severe."""
    return (0 if finding.baseline == NEW else 1, -int(finding.severity))


def select(findings: Iterable[Finding], limit: int | None = SARIF_MAX_RESULTS,
           ) -> tuple[list[Finding], int]:
    """At most ``limit`` findings, new and most severe first, and how many were left out.

    Cutting in file order would let thousands of warnings push every error out (and, on the
    default branch, close its alerts), and an old finding push out the one the pull request
    adds. So new findings are kept before the others (see ``rank``); then errors before
    warnings and warnings before notes; then the report's order decides. The chosen findings
    keep the report's order. ``limit=None``: no cap.
    """
    items = list(findings)
    if limit is None or len(items) <= limit:
        return items, 0
    ranked = sorted(range(len(items)), key=lambda i: (*rank(items[i]), i))
    keep = sorted(ranked[:max(limit, 0)])
    return [items[i] for i in keep], len(items) - len(keep)


def cluster_group(cluster: str, groups: int) -> int:
    """The run (1 ... ``groups``) a cluster's findings go to when clusters share runs.

    A digest of the name, not its place in a list: adding or removing a cluster never moves
    another one to a different run (a run is a code scanning category, and an alert is closed
    only by a later analysis of its own category).
    """
    digest = hashlib.sha256(cluster.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % groups + 1


def sarif_groups(report: Report, findings: Sequence[Finding],
                 ) -> list[tuple[str, tuple[str, ...], list[Finding]]]:
    """The runs of a SARIF file, in order: (run name, its clusters, its findings).

    Grouped per cluster, every cluster always gets its run (GitHub closes an alert only when a
    later analysis of the same category lacks it) and findings of no cluster the first run
    (named ""). A file holds at most ``SARIF_MAX_RUNS`` runs: with more clusters than fit,
    the clusters share ``SARIF_MAX_RUNS - 1`` runs named ``clusters-01`` ... (``cluster_group``)
    and every result still names its cluster. Otherwise there is one run, named "".
    """
    if not (report.group_by == "cluster" and report.clusters):
        return [("", tuple(sorted({f.cluster for f in findings if f.cluster})), list(findings))]
    loose: list[Finding] = []
    if len(report.clusters) < SARIF_MAX_RUNS:
        by_cluster: dict[str, list[Finding]] = {c: [] for c in report.clusters}
        for f in findings:
            by_cluster.get(f.cluster, loose).append(f)
        return [("", (), loose), *((c, (c,), items) for c, items in by_cluster.items())]
    groups = SARIF_MAX_RUNS - 1
    member = {c: cluster_group(c, groups) for c in report.clusters}
    by_group: dict[int, list[Finding]] = {g: [] for g in range(1, groups + 1)}
    for f in findings:
        g = member.get(f.cluster)
        (loose if g is None else by_group[g]).append(f)
    return [("", (), loose), *(
        (f"{GROUP_PREFIX}{g:02d}", tuple(sorted(c for c in report.clusters if member[c] == g)),
         items) for g, items in by_group.items())]


def _severities(report: Report, kept: Sequence[Finding]) -> dict[str, Severity]:
    """Rule id -> the one severity all its kept findings have, where it is not the rule's."""
    seen: dict[str, set[Severity]] = {}
    for f in kept:
        seen.setdefault(f.rule_id, set()).add(f.severity)
    out = {}
    for rule_id, levels in sorted(seen.items()):
        rule = report.rules.get(rule_id)
        if len(levels) == 1 and rule is not None and rule.severity not in levels:
            out[rule_id] = next(iter(levels))
    return out


def _part(report: Report, run: str, clusters: tuple[str, ...], items: list[Finding],
          limit: int | None, why: str) -> Selection:
    kept, _ = select(items, limit)
    chosen = {id(f) for f in kept}
    left: dict[str, int] = {}
    for f in items:
        if id(f) not in chosen:
            left[f.severity.label] = left.get(f.severity.label, 0) + 1
    return Selection(run=run, kept=tuple(kept),
                     left_out={s.label: left[s.label] for s in sorted(Severity, reverse=True)
                               if s.label in left},
                     limit=limit or 0, clusters=clusters, why=why if left else "",
                     severities=_severities(report, kept))


def sarif_size(report: Report, parts: tuple[Selection, ...], *, accepted: bool = False) -> int:
    """Bytes of the SARIF file of ``parts``, gzip-compressed as upload-sarif sends it."""
    from checker.report import sarif  # the renderer imports this module

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
    findings = report.suppressed if accepted else report.active
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


MARKDOWN = "markdown"  # the job summary: its findings tables are the selections markdown-*
SUMMARY_LIMIT_BYTES = 1_048_576  # the runner drops a step summary over 1 MiB
# what the summary may take: room is left for what the Action or a workflow appends
SUMMARY_MAX_BYTES = 800_000
SUMMARY_CAPS: Mapping[str, int] = {
    "top": 50,            # rows of the top findings
    "cluster": 20,        # rows of each cluster's findings
    "clusters": 50,       # clusters with a section and a row of counts
    "accepted": 100,      # accepted risks
    "drift": 100,         # drifted fields
    "coverage": 100,      # inputs rendered, followed, not checked
    "exemptions": 50,     # exempt namespace groups
    "errors": 50,         # errors
    "requirements": 200,  # requirements of a standard
}


_SEVERITY = attrgetter("severity")
_BASELINE = attrgetter("baseline")


def _ranked(findings: Sequence[Finding]) -> list[Finding]:
    """``findings`` in ``rank`` order, the report's order within a rank: two stable sorts on
    C-level keys (a large scan has tens of thousands of findings)."""
    ordered = sorted(findings, key=_SEVERITY, reverse=True)
    if NEW in set(map(_BASELINE, ordered)):
        ordered.sort(key=lambda f: f.baseline != NEW)
    return ordered


def _top(findings: Sequence[Finding], n: int) -> Selection:
    """The ``n`` findings a summary table shows, in the order it shows them: new first, then
    the most severe, then the report's order (``rank``); the rest counted by severity."""
    n = max(n, 0)
    kept = _ranked(findings)[:n]
    per = Counter(map(_SEVERITY, findings))
    per.subtract(map(_SEVERITY, kept))
    return Selection(run="", kept=tuple(kept), left_out={
        s.label: per[s] for s in sorted(Severity, reverse=True) if per[s] > 0}, limit=n)


def markdown_selection(report: Report, caps: Mapping[str, int] = SUMMARY_CAPS,
                       ) -> dict[str, tuple[Selection, ...]]:
    """The findings tables of the Markdown summary: ``markdown-top``, one ``markdown-cluster``
    part per cluster that gets a section (named by its cluster), ``markdown-accepted`` and
    ``markdown-drift`` (those two in the report's order)."""
    active, suppressed = report.active, report.suppressed
    out: dict[str, tuple[Selection, ...]] = {"markdown-top": (_top(active, caps["top"]),)}
    if report.group_by == "cluster" and report.clusters:
        per: dict[str, list[Finding]] = {c: [] for c in report.clusters[:caps["clusters"]]}
        for f in active:
            if f.cluster in per:
                per[f.cluster].append(f)
        out["markdown-cluster"] = tuple(replace(_top(items, caps["cluster"]), run=c)
                                        for c, items in per.items())
    drift = [f for f in active if f.category == "drift"]
    for key, items in (("markdown-accepted", suppressed), ("markdown-drift", drift)):
        n = caps["accepted" if key == "markdown-accepted" else "drift"]
        left: dict[str, int] = {}
        for f in items[n:]:
            left[f.severity.label] = left.get(f.severity.label, 0) + 1
        out[key] = (Selection(run="", kept=tuple(items[:n]), left_out=left, limit=n),)
    return out


def summary_caps(report: Report) -> tuple[dict[str, int], dict[str, tuple[Selection, ...]]]:
    """The caps of the Markdown summary and its findings tables, so that it is at most
    ``SUMMARY_MAX_BYTES``: the default caps, halved while the rendered summary is larger
    (every cell is at most ``markdown.CELL_MAX`` characters, so a row is bounded). Every table
    is capped, so the summary is small and is rendered to be measured."""
    from checker.report import markdown  # the renderer imports this module

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


def assemble(report: Report) -> Report:
    """The final Report: findings in their deterministic order, rules completed, and the
    selection of every limited format made."""
    findings = tuple(sorted(report.findings, key=Finding.sort_key))
    report = replace(report, findings=findings, rules=rules_for(findings, report.rules),
                     errors=tuple(dict.fromkeys(report.errors)))
    cap = SARIF_MAX_RESULTS
    report = replace(report, selections={
        SARIF: sarif_selection(report, limit=cap),
        SARIF_ACCEPTED: sarif_selection(report, accepted=True, limit=cap)})
    caps, chosen = summary_caps(report)
    return replace(report, caps=caps, selections={**report.selections, **chosen})


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
