"""What limited formats hold: the choices the assemble stage makes, without rendering.

Pure functions of findings and the report: the ranking caps keep (new, then most severe),
the SARIF runs (clusters per run, at most 20) and their results, one finding per source
location, and the findings tables of the Markdown summary. ``checker.assemble`` adds what
needs a render to measure (a SARIF file's compressed size, the summary's bytes); the
renderers use these functions for a report that did not go through it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from operator import attrgetter
from typing import Any

from checker.model import NEW, Finding, ObjectRef, Report, Selection, Severity

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


AFFECTS_SHOWN = 5  # objects a merged finding names in its resource text; the rest counted


def by_location(findings: Sequence[Finding]) -> list[Finding]:
    """One finding per (cluster, rule, source location, field and message): what one line of
    a manifest causes, however many objects render from it.

    A base line that N overlays render gives N findings, one per object (the JSON report and
    the delta keep them so); the formats a reviewer reads show it once, naming every object in
    ``affects`` (and the first ``AFFECTS_SHOWN`` in ``resource``). The finding that stands for
    them is the one of the first object (``ObjectRef`` order), so its identity and SARIF
    fingerprint stay the same while that object is rendered. Findings of different clusters,
    severities, newness or acceptances are never merged: each cluster has its own SARIF run
    and an alert is closed only by its own category. The order of the findings is kept (a
    merged finding takes the place of its first one).
    """
    groups: dict[tuple[Any, ...], list[Finding]] = {}
    order: list[tuple[Any, ...]] = []
    for f in findings:
        if f.ref is None:
            key: tuple[Any, ...] = ("one", id(f))
        else:
            loc = f.location
            key = (f.cluster, f.rule_id, f.category, f.severity, loc.path, loc.line,
                   loc.column, f.field_path, f.identity[-1], f.baseline, f.suppression)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(f)
    out = []
    for key in order:
        members = groups[key]
        if len(members) == 1:
            out.append(members[0])
            continue
        members = sorted(members, key=lambda f: f.ref or ObjectRef("", "", "", "", "", ""))
        refs = tuple(dict.fromkeys(f.ref for f in members if f.ref is not None))
        shown = ", ".join(r.display for r in refs[:AFFECTS_SHOWN])
        more = len(refs) - AFFECTS_SHOWN
        out.append(replace(members[0], affects=refs, resource=shown + (
            f" and {more} more" if more > 0 else "")))
    return out


LOCATED = "located"  # the active findings, one per source location (JUnit, annotations)


def located(report: Report) -> tuple[Finding, ...]:
    """The report's active findings one per source location (``by_location``), as the
    assemble stage chose them; for a report built by hand, chosen now."""
    chosen = report.selections.get(LOCATED)
    if chosen is not None:
        return chosen[0].kept
    return tuple(by_location(report.active))


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
    active, suppressed = by_location(report.active), by_location(report.suppressed)
    out: dict[str, tuple[Selection, ...]] = {"markdown-top": (_top(active, caps["top"]),)}
    if report.base:  # the delta: what the change brings and what it fixes, new first
        out["markdown-new"] = (_top(by_location(report.new), caps["top"]),)
        out["markdown-fixed"] = (_top(by_location(
            tuple(f for f in report.fixed if f.suppression is None)), caps["top"]),)
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



def sarif_parts(report: Report, *, accepted: bool = False, limit: int | None = SARIF_MAX_RESULTS,
                ) -> tuple[Selection, ...]:
    """The runs of a SARIF file with at most ``limit`` results each (``None``: all), before
    the file's compressed size is considered (``assemble.sarif_selection`` does that)."""
    findings = by_location(report.suppressed if accepted else report.active)
    why = _WHY_RESULTS.format(limit=limit)
    return tuple(_part(report, run, clusters, items, limit, why)
                 for run, clusters, items in sarif_groups(report, findings))
