"""Markdown for pull-request reviewers and the GitHub job summary."""

from __future__ import annotations

from checker.model import Finding, Report
from checker.report.common import by_severity, standards

TOP = 50
ICON = {"error": "🔴", "warning": "🟠", "note": "🔵"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _where(f: Finding, report: Report) -> str:
    label = f"{f.location.path}:{f.location.line}"
    if report.link_base:
        return f"[{label}]({report.link_base.rstrip('/')}/{f.location.path}#L{f.location.line})"
    return f"`{label}`"


def _table(findings: list[Finding], report: Report, accepted: bool = False) -> list[str]:
    if accepted:
        out = ["| Rule | Resource | Where | Owner | Expires | Justification |",
               "| --- | --- | --- | --- | --- | --- |"]
        for f in findings:
            s = f.suppression
            assert s is not None
            out.append(f"| `{f.rule_id}` | {_cell(f.resource)} | {_where(f, report)} | "
                       f"{_cell(s.owner)} | {s.expires or 'never'} | {_cell(s.justification)} |")
        return out
    out = ["| Severity | Rule | Message | Resource | Where |",
           "| --- | --- | --- | --- | --- |"]
    for f in findings:
        out.append(f"| {ICON[f.severity.label]} {f.severity.label} | `{f.rule_id}` | "
                   f"{_cell(f.message)} | {_cell(f.resource)} | {_where(f, report)} |")
    return out


def _clusters(report: Report) -> list[str]:
    """Counts per cluster, then one section per cluster with its failing findings."""
    out = ["### By cluster", "", "| Cluster | " + " | ".join(
        f"{ICON[label]} {label}" for label in report.counts()) + " | accepted |",
        "| --- |" + " ---: |" * (len(report.counts()) + 1)]
    for cluster in report.clusters:
        mine = [f for f in report.active if f.cluster == cluster]
        counts = [sum(1 for f in mine if f.severity.label == label) for label in report.counts()]
        accepted = sum(1 for f in report.suppressed if f.cluster == cluster)
        out.append(f"| {_cell(cluster)} | " + " | ".join(str(n) for n in counts)
                   + f" | {accepted} |")
    out.append("")
    for cluster in report.clusters:
        mine = by_severity([f for f in report.active if f.cluster == cluster])
        out += [f"### Cluster {_cell(cluster)}", ""]
        if not mine:
            out += ["✅ No findings.", ""]
            continue
        out += _table(mine[:TOP], report)
        if len(mine) > TOP:
            out.append(f"\n{len(mine) - TOP} more in the JSON and SARIF reports.")
        out.append("")
    return out


def render(report: Report) -> str:
    """Summary counts, counts by standard, the top findings, accepted risks and errors."""
    counts = report.counts()
    failing = sum(counts.values())
    lines = ["## gitops-checker", ""]
    verdict = "✅ No findings." if failing == 0 and not report.errors else (
        f"❌ {failing} finding{'s' if failing != 1 else ''}.")
    lines += [f"{verdict} Checked {report.resources_checked} resources in "
              f"{report.files_checked} files"
              + (f" with packs {', '.join(report.packs)}." if report.packs else "."), ""]
    lines += ["| Severity | Count |", "| --- | ---: |"]
    lines += [f"| {ICON[label]} {label} | {n} |" for label, n in counts.items()]
    if report.suppressed:
        lines.append(f"| accepted risk | {len(report.suppressed)} |")
    lines.append("")
    per_standard = standards(report)
    if per_standard:
        lines += ["### By standard", "", "| Standard | Findings |", "| --- | ---: |"]
        lines += [f"| {std} | {n} |" for std, n in per_standard.items()]
        lines.append("")
    if report.group_by == "cluster" and report.clusters:
        lines += _clusters(report)
    active = by_severity(report.active)
    if active:
        lines += [f"### Top findings ({min(TOP, len(active))} of {len(active)})", ""]
        lines += _table(active[:TOP], report)
        lines.append("")
    if report.suppressed:
        lines += ["### Accepted risks", ""]
        lines += _table(list(report.suppressed), report, accepted=True)
        lines.append("")
    if report.errors:
        lines += ["### Errors", ""]
        lines += [f"- {_cell(e)}" for e in report.errors]
        lines.append("")
    return "\n".join(lines)
